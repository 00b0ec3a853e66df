package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/cluster"
	"github.com/ingeco/hemicycle/configs/profiles"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/httpapi"
	"github.com/ingeco/hemicycle/signaling/programme"
	"github.com/ingeco/hemicycle/store"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, flagsFirst bool) error {
	fs := subcommandFlags("serve", stdout, stderr)
	dev := fs.Bool("dev", false, "development mode: 127.0.0.1, keys devkey/secret, loopback candidates, text logs")
	configPath := fs.String("config", "", "configuration file (see configs/hemicycle.yaml)")
	bind := fs.String("bind", "", "HTTP/WebSocket bind address")
	port := fs.Int("port", -1, "HTTP/WebSocket port (0: any free port)")
	udpPort := fs.Int("udp-port", -1, "UDP port for all media (0: any free port)")
	tcpPort := fs.Int("tcp-port", -1, "TCP port for ICE over TCP (0: any free port)")
	publicIP := fs.String("public-ip", "", "comma-separated public IPs announced in ICE candidates")
	logLevel := fs.String("log-level", "", "debug, info, warn or error")
	profilerAddr := fs.String("pprof", "", "serve Go's profiler (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060")
	if err := parseOptions(fs, args); err != nil {
		return err
	}
	if flagsFirst && !*dev && *configPath == "" {
		return errors.New("say --dev for the development server, or use: hemicycle serve --config FILE")
	}

	cfg := defaultConfig()
	if *dev {
		cfg = devConfig()
	}
	if *configPath != "" {
		if err := loadConfigFile(*configPath, &cfg); err != nil {
			return err
		}
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return err
	}
	if *bind != "" {
		cfg.Bind = *bind
	}
	overridePort(&cfg.Port, *port)
	overridePort(&cfg.RTC.UDPPort, *udpPort)
	overridePort(&cfg.RTC.TCPPort, *tcpPort)
	if *publicIP != "" {
		cfg.RTC.PublicIPs = strings.Split(*publicIP, ",")
	}
	if *logLevel != "" {
		cfg.Logging.Level = *logLevel
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if *profilerAddr != "" {
		if err := checkProfilerAddr(*profilerAddr); err != nil {
			return err
		}
		cfg.profilerAddr = *profilerAddr
	}
	return serve(ctx, cfg, stdout, stderr)
}

// programmeConfig sets up the public programme: WebRTC viewers always, recording when the
// privacy notice says sessions are recorded (with its retention), HLS and RTMP when configured.
func programmeConfig(cfg Config, log *slog.Logger) (*signaling.ProgrammeConfig, error) {
	b := cfg.Broadcast
	if !b.Enabled {
		return nil, nil
	}
	key, secret := firstKey(cfg.Keys)
	pc := &signaling.ProgrammeConfig{
		Broadcast: broadcast.Config{Delay: b.Delay, Logger: log.With("part", "programme")},
		Viewers:   programme.Viewers{Key: key, Secret: secret, MaxViewers: b.MaxViewers},
	}
	if cfg.Privacy.Recorded {
		if cfg.Privacy.RetentionDays <= 0 {
			return nil, errors.New("privacy.recorded is on: set privacy.retention_days (how long recordings are kept)")
		}
		pc.Recording = &broadcast.RecordingConfig{
			Dir:          filepath.Join(cfg.DataDir, "recordings"),
			CopyVideo:    !b.Recording.Interpreter,
			Height:       b.Recording.Height,
			VideoBitrate: b.Recording.VideoBitrate,
		}
	}
	if b.HLS {
		pc.HLS = &broadcast.HLSConfig{Dir: filepath.Join(cfg.DataDir, "hls")}
	}
	if b.RTMPURL != "" {
		pc.RTMP = &broadcast.RTMPConfig{URL: b.RTMPURL}
	}
	return pc, nil
}

// invitationConfig is how the members' invitations are made: links under the web client's
// address, join tokens signed with the first key, e-mail through the SMTP relay if one is set.
func invitationConfig(cfg Config, httpURL string) signaling.InvitationConfig {
	key, secret := firstKey(cfg.Keys)
	ic := signaling.InvitationConfig{PublicURL: cfg.invitationsBase(httpURL), Early: cfg.Invitations.Early, Key: key, Secret: secret}
	if cfg.SMTP.Addr != "" {
		relay := cfg.SMTP
		ic.Mail = &relay
	}
	return ic
}

// firstKey is the key pair that signs tokens the server mints itself (viewer tokens).
func firstKey(keys map[string]string) (string, string) {
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	return names[0], keys[names[0]]
}

// loadProfile reads one of the shipped legal profiles.
func loadProfile(name string) (*council.Profile, error) {
	data, err := profiles.Read(name)
	if err != nil {
		return nil, fmt.Errorf("no legal profile %q (shipped: %s)", name, strings.Join(profiles.Names(), ", "))
	}
	return council.ParseProfile(data)
}

// overridePort applies a port flag; -1 means the flag was not given.
func overridePort(dst *int, flagVal int) {
	if flagVal >= 0 {
		*dst = flagVal
	}
}

// serve runs the server until ctx ends.
func serve(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	log := cfg.logger(stderr)
	if cfg.profilerAddr != "" {
		if _, err := startProfiler(ctx, cfg.profilerAddr, log); err != nil {
			return err
		}
	}
	media, err := sfu.NewEngine(sfu.Config{
		UDPAddr:           net.JoinHostPort(mediaBind(cfg), strconv.Itoa(cfg.RTC.UDPPort)),
		TCPAddr:           net.JoinHostPort(mediaBind(cfg), strconv.Itoa(cfg.RTC.TCPPort)),
		PublicIPs:         cfg.RTC.PublicIPs,
		Loopback:          cfg.dev,
		BatchWrites:       cfg.RTC.BatchWrites,
		DisableAllocation: cfg.RTC.StreamAllocation != nil && !*cfg.RTC.StreamAllocation,
		Logger:            log.With("part", "sfu"),
	})
	if err != nil {
		return fmt.Errorf("start media: %w", err)
	}
	defer media.Close()
	relay, err := startTURN(cfg, media, log)
	if err != nil {
		return err
	}
	if relay != nil {
		defer relay.Close()
	}

	// Listening comes first: with several nodes, this node announces its address before it
	// serves.
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	addr := ln.Addr().(*net.TCPAddr)
	httpURL := fmt.Sprintf("http://%s", hostForURL(cfg.Bind, addr.Port))

	var sig *signaling.Server
	st, err := openStorage(cfg, httpURL, log, func() *signaling.Server { return sig })
	if err != nil {
		return err
	}
	defer st.close()

	verifier := auth.NewVerifier(cfg.Keys)
	programme, err := programmeConfig(cfg, log)
	if err != nil {
		return err
	}
	labels, err := cfg.labels()
	if err != nil {
		return err
	}
	webhooks, err := cfg.webhooks()
	if err != nil {
		return err
	}
	sig = signaling.NewServer(signaling.Config{
		Verifier: verifier, Media: media, Logger: log.With("part", "signaling"),
		Journal: st.journal, Profiles: loadProfile, NodeID: st.nodeID, Placement: st.placement,
		Programme: programme, Labels: labels, TURN: relay, JournalKeys: st.keys,
		Records: st.records, Invitations: invitationConfig(cfg, httpURL), Webhooks: webhooks,
		Speech: cfg.speech(), Sobriety: cfg.Sobriety.signaling(), Limits: cfg.Limits,
	})
	defer sig.Close()
	if err := st.start(ctx); err != nil {
		return err
	}
	wsURL := cfg.PublicURL
	if wsURL == "" {
		wsURL = "ws" + strings.TrimPrefix(httpURL, "http")
	}

	if programme != nil && programme.Recording != nil {
		rec := programme.Recording
		go broadcast.RunRetention(ctx, rec.Dir, time.Duration(cfg.Privacy.RetentionDays)*24*time.Hour, 0, log.With("part", "retention"))
	}
	handler := sig.Handler(binaryRoutes(cfg, sig, wsURL)...)

	proxies, err := parseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: behindProxies(proxies, handler), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	fmt.Fprintf(stdout, "hemicycle listening on %s (media: udp %d, tcp %d)\n", httpURL, media.UDPPort(), media.TCPPort())
	if cfg.dev {
		// The development pair is public; any other stays out of the output.
		keys := "API key devkey, secret secret"
		if key, secret := firstKey(cfg.Keys); key != "devkey" || secret != "secret" {
			keys = fmt.Sprintf("API key %s, with the secret you configured", key)
		}
		fmt.Fprintf(stdout, "Open %s/ in a browser to join; %s.\n", httpURL, keys)
		fmt.Fprintf(stdout, "Or mint an invitation: go run ./cmd/hemicycle token --room demo --identity alice --name Alice --url %s\n", httpURL)
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st.leave(shutdown) // other nodes take this node's rooms at once
	sig.Close()
	_ = srv.Shutdown(shutdown)
	log.Info("stopped")
	return nil
}

// mediaBind is where the media sockets listen: rtc.bind; without it every interface in
// development (a browser on the same machine may reach us from its non-loopback address),
// else the HTTP bind address.
func mediaBind(cfg Config) string {
	switch {
	case cfg.RTC.Bind != "":
		return cfg.RTC.Bind
	case cfg.dev:
		return "0.0.0.0"
	}
	return cfg.Bind
}

func hostForURL(bind string, port int) string {
	if bind == "" || bind == "0.0.0.0" || bind == "::" {
		bind = "127.0.0.1"
	}
	return net.JoinHostPort(bind, strconv.Itoa(port))
}

// devTokenHandler mints tokens for the development form, so a newcomer can try Hemicycle alone.
func devTokenHandler(cfg Config, wsURL string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Room, Identity, Name, Role string
			Seat                       int
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 8<<10)).Decode(&req); err != nil {
			httpapi.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be JSON {room, identity, name, role, seat}: " + err.Error()})
			return
		}
		if req.Room == "" || req.Identity == "" {
			httpapi.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "room and identity are required"})
			return
		}
		if req.Role == "" {
			req.Role = string(auth.RoleMember)
		}
		role, err := auth.ParseRole(req.Role)
		if err != nil {
			httpapi.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		tok, err := auth.Issue(auth.TokenOptions{
			Key: "devkey", Secret: cfg.Keys["devkey"], Identity: req.Identity, Name: req.Name, Room: req.Room,
			TTL: 4 * time.Hour, Video: auth.GrantsForRole(role, req.Room),
			Council: &auth.CouncilGrant{Role: role, Seat: req.Seat},
		})
		if err != nil {
			httpapi.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"token": tok, "url": wsURL})
	}
}

// ---- several nodes: the journal and, with Redis, this node's membership (cluster) ----

// storage is where journals live and, with Redis configured, this node's place in the cluster.
type storage struct {
	journal   store.Journal
	keys      store.PublicKeys    // what the journal is signed with, as published
	records   store.Records       // bodies, rosters, prepared sittings: beside the journals
	placement signaling.Placement // nil when alone: signalling then places every room here
	node      *cluster.Node
	nodeID    string
	closers   []func()
}

// openStorage opens the file journal, or with Redis the Redis journal and the node's
// registration (started by start, once signalling exists to report its load).
func openStorage(cfg Config, httpURL string, log *slog.Logger, sig func() *signaling.Server) (*storage, error) {
	st := &storage{}
	ring, err := journalKeyring(cfg, log)
	if err != nil {
		return nil, err
	}
	st.keys = ring.Public()
	if !cfg.Redis.Enabled() {
		fj, err := store.OpenFile(filepath.Join(cfg.DataDir, "journal"), store.WithSigner(ring))
		if err != nil {
			return nil, fmt.Errorf("open the journal: %w", err)
		}
		for _, problem := range fj.Recovery() {
			log.Warn("journal recovery", "problem", problem)
		}
		st.journal, st.records, st.closers = fj, fj, []func(){func() { _ = fj.Close() }}
		return st, nil
	}
	// go-redis reports failed dials itself; an outage is logged once by the heartbeat instead.
	redis.SetLogger(quietRedisLogger{})
	client, err := cfg.Redis.NewClient()
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	rj := store.NewRedis(client, cfg.Redis.Prefix(), store.WithSigner(ring))
	st.journal, st.records = rj, rj
	st.closers = []func(){func() { _ = rj.Close() }, func() { _ = client.Close() }}
	st.nodeID = cfg.Node.ID
	if st.nodeID == "" {
		st.nodeID = "node-" + strings.ToLower(rand.Text()[:10])
	}
	nodeURL := cfg.Node.URL
	if nodeURL == "" {
		nodeURL = httpURL
		log.Warn("node.url is not set: other nodes will reach this one at "+httpURL+", which works only when every node runs on this machine", "set", "node.url or HEMICYCLE_NODE_URL")
	}
	node, err := cluster.New(client, cluster.Config{
		ID: st.nodeID, URL: nodeURL, Prefix: cfg.Redis.Prefix(), Logger: log.With("part", "cluster"),
		Load: func() cluster.Load {
			l := sig().Load()
			return cluster.Load{Rooms: l.Rooms, Participants: l.Participants, Tracks: l.Tracks}
		},
		OnLost: func(room string) { sig().Evict(room) },
	})
	if err != nil {
		st.close()
		return nil, err
	}
	st.node, st.placement = node, clusterPlacement{node}
	return st, nil
}

// developmentKeyring is the journal key of --dev nodes sharing a Redis, like the development
// API key: known to everyone, so that such nodes verify each other without any setup, and
// worthless as a proof.
const developmentKeyring = `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"dev-75479e2c",
"x":"p0L9-Al9pdBxBvAbLQRcUqj8GvwyM9wPaZ2Yo339zEA","d":"CsD9VHwhSAC_6GyjUSeuEtxWkb-vAW1Wrm79iBcVWn4","from":"2026-01-01T00:00:00Z"}]}`

// journalKeyring is the key ring this node signs the journals with: the configured file
// (made on first start in --dev), or in --dev without one the development key when nodes
// share a Redis, else a ring in the data directory made on first start. Outside --dev the
// file must be configured.
func journalKeyring(cfg Config, log *slog.Logger) (*store.Keyring, error) {
	path := cfg.JournalKeys
	switch {
	case path == "" && !cfg.dev:
		// Made here, the ring would sit beside the journals, copied with every backup of them.
		return nil, errors.New("journal_keys is not set: the journals are signed with a key ring file that the deployment keeps apart from the journals and their backups; make it once with `hemicycle journal keys new --ring FILE`, set journal_keys or HEMICYCLE_JOURNAL_KEYS to it, and with several nodes copy the same file to each")
	case path != "" && !cfg.dev:
		ring, err := store.LoadKeyring(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("journal_keys: %s does not exist: make it once with `hemicycle journal keys new --ring %s` (with several nodes, then copy it to each)", path, path)
		}
		if err != nil {
			return nil, fmt.Errorf("journal_keys: %w", err)
		}
		return ring, nil
	case path == "" && cfg.Redis.Enabled():
		log.Warn("development: journals signed with the published development key, which proves nothing; a deployment sets journal_keys")
		return store.ParseKeyring([]byte(developmentKeyring))
	case path == "":
		path = filepath.Join(cfg.DataDir, store.KeyringFile)
	}
	ring, created, err := store.LoadOrCreateKeyring(path, time.Now())
	if err != nil {
		return nil, fmt.Errorf("journal keys: %w", err)
	}
	if created {
		log.Warn("development: made a journal signing key ring on first start; a deployment makes its own with `hemicycle journal keys new` and sets journal_keys", "file", path, "key", ring.Current(time.Now()).ID)
	}
	return ring, nil
}

// start registers the node; a node that cannot reach Redis refuses to start.
func (st *storage) start(ctx context.Context) error {
	if st.node == nil {
		return nil
	}
	return st.node.Start(ctx)
}

// leave hands this node's rooms over before it stops.
func (st *storage) leave(ctx context.Context) {
	if st.node != nil {
		_ = st.node.Close(ctx)
	}
}

func (st *storage) close() {
	st.leave(context.Background())
	for i := len(st.closers) - 1; i >= 0; i-- {
		st.closers[i]()
	}
}

// clusterPlacement is the cluster's node as signalling's placement: neither package imports the
// other, so the cluster's "not placed yet" becomes signalling's ErrRoomMoving here.
type clusterPlacement struct{ *cluster.Node }

func (p clusterPlacement) Locate(ctx context.Context, room string) (bool, string, error) {
	local, nodeURL, err := p.Node.Locate(ctx, room)
	if errors.Is(err, cluster.ErrRoomMoving) {
		err = fmt.Errorf("%w: %w", signaling.ErrRoomMoving, err)
	}
	return local, nodeURL, err
}

type quietRedisLogger struct{}

func (quietRedisLogger) Printf(context.Context, string, ...any) {}
