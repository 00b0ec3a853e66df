package sfu

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/turn/v5"
)

// TURNConfig sets up the embedded TURN server (pion/turn): a relay for members whose network
// lets no UDP through, or nothing but TCP 443. It relays only to this server's own media
// sockets (turnrelay.go), so it is no open relay for anyone who holds a credential.
type TURNConfig struct {
	// Secret signs the credentials (the TURN REST API scheme); TURNSecret derives it from the
	// API secret.
	Secret string
	// Host is the name or address written in the turn: and turns: URLs that clients get; a TLS
	// certificate must name it.
	Host string
	// UDPAddr and TCPAddr are the plain TURN listeners ("0.0.0.0:3478", ":0" for a free port);
	// empty disables that transport.
	UDPAddr string
	TCPAddr string
	// TLSAddr is the TURN over TLS listener ("0.0.0.0:443"), the one that passes firewalls
	// letting only HTTPS out; it needs Certificate.
	TLSAddr     string
	Certificate *tls.Certificate
	// RelayIP is the relay address announced to clients, and RelayBind where the relay sockets
	// are opened; their ports are drawn from RelayPortMin-RelayPortMax. The relay talks only to
	// this machine's media sockets, so these ports need no opening in a firewall.
	RelayIP                    net.IP
	RelayBind                  string
	RelayPortMin, RelayPortMax uint16
	// CredentialTTL is how long a credential handed out at join stays valid. An allocation is
	// refreshed with the same credential, so it must outlast a sitting; a client that resumes
	// gets a new one.
	CredentialTTL time.Duration
	Logger        *slog.Logger
}

// ICEServer is one entry of a client's RTCIceServer list.
type ICEServer struct {
	URLs       []string
	Username   string
	Credential string
}

// TURNServer is the running relay.
type TURNServer struct {
	server *turn.Server
	secret string
	ttl    time.Duration
	urls   []string
}

// turnRealm is the realm of the long-term credentials; clients take it from the server.
const turnRealm = "hemicycle"

// TURNSecret derives the TURN credentials' secret from an API secret. The API secret signs
// every token, a room admin's included; the TURN secret only opens the relay. Deriving it keeps
// the two apart: a TURN password is an HMAC under a key that cannot sign a token, the secret can
// be given to an external TURN server (coturn's static-auth-secret) without the power to mint
// tokens, and it does not reveal the API secret.
func TURNSecret(apiSecret string) string {
	mac := hmac.New(sha256.New, []byte(apiSecret))
	mac.Write([]byte("hemicycle TURN credentials v1"))
	return base64.RawStdEncoding.EncodeToString(mac.Sum(nil))
}

// NewTURNServer opens the TURN listeners. The relay reaches only media's own sockets.
func NewTURNServer(cfg TURNConfig, media *Engine) (*TURNServer, error) {
	peers, err := media.mediaPeers()
	if err != nil {
		return nil, fmt.Errorf("sfu: TURN: %w", err)
	}
	return newTURNServer(cfg, peers)
}

// newTURNServer opens the TURN listeners with a relay that reaches only peers.
func newTURNServer(cfg TURNConfig, peers []mediaPeer) (*TURNServer, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "turn")
	switch {
	case cfg.Secret == "":
		return nil, errors.New("sfu: TURN: no secret to sign credentials with")
	case cfg.Host == "":
		return nil, errors.New("sfu: TURN: no host to write in the URLs clients get")
	case cfg.RelayIP == nil:
		return nil, errors.New("sfu: TURN: no relay address to announce")
	case cfg.RelayPortMin == 0 || cfg.RelayPortMax < cfg.RelayPortMin:
		return nil, fmt.Errorf("sfu: TURN: relay ports %d-%d: want 1 <= min <= max", cfg.RelayPortMin, cfg.RelayPortMax)
	case cfg.CredentialTTL <= 0:
		return nil, errors.New("sfu: TURN: credential lifetime must be positive")
	case cfg.TLSAddr != "" && cfg.Certificate == nil:
		return nil, errors.New("sfu: TURN: TLS listener without a certificate")
	case cfg.UDPAddr == "" && cfg.TCPAddr == "" && cfg.TLSAddr == "":
		return nil, errors.New("sfu: TURN: no listener")
	}
	relay := newMediaRelay(cfg, peers)
	t := &TURNServer{secret: cfg.Secret, ttl: cfg.CredentialTTL}
	lf := pionLoggerFactory{log: log}

	var sc turn.ServerConfig
	var err error
	closeAll := func() {
		for _, p := range sc.PacketConnConfigs {
			_ = p.PacketConn.Close()
		}
		for _, l := range sc.ListenerConfigs {
			_ = l.Listener.Close()
		}
	}
	if cfg.UDPAddr != "" {
		c, err := net.ListenPacket("udp4", cfg.UDPAddr)
		if err != nil {
			return nil, fmt.Errorf("sfu: TURN: listen on UDP %s: %w", cfg.UDPAddr, err)
		}
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn: c, RelayAddressGenerator: relay, PermissionHandler: relay.permit,
		})
		t.urls = append(t.urls, fmt.Sprintf("turn:%s?transport=udp", hostPort(cfg.Host, c.LocalAddr())))
	}
	listen := func(addr string, wrap func(net.Listener) net.Listener, scheme string) error {
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			return fmt.Errorf("sfu: TURN: listen on TCP %s: %w", addr, err)
		}
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{
			Listener: wrap(l), RelayAddressGenerator: relay, PermissionHandler: relay.permit,
		})
		t.urls = append(t.urls, fmt.Sprintf("%s:%s?transport=tcp", scheme, hostPort(cfg.Host, l.Addr())))
		return nil
	}
	if cfg.TCPAddr != "" {
		if err := listen(cfg.TCPAddr, func(l net.Listener) net.Listener { return l }, "turn"); err != nil {
			closeAll()
			return nil, err
		}
	}
	if cfg.TLSAddr != "" {
		tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cfg.Certificate}}
		err := listen(cfg.TLSAddr, func(l net.Listener) net.Listener { return tls.NewListener(l, tlsConfig) }, "turns")
		if err != nil {
			closeAll()
			return nil, err
		}
	}
	sc.Realm = turnRealm
	sc.LoggerFactory = lf
	sc.AuthHandler = turn.LongTermTURNRESTAuthHandler(cfg.Secret, lf.NewLogger("auth"))
	quota := &allocationQuota{open: map[string]int{}}
	sc.QuotaHandler = quota.allow
	sc.EventHandler = turn.EventHandler{OnAllocationCreated: quota.created, OnAllocationDeleted: quota.deleted}
	if t.server, err = turn.NewServer(sc); err != nil {
		closeAll()
		return nil, fmt.Errorf("sfu: TURN: %w", err)
	}
	log.Info("TURN relay listening", "urls", t.urls, "relay_ports", fmt.Sprintf("%d-%d", cfg.RelayPortMin, cfg.RelayPortMax), "relays_to", peers)
	return t, nil
}

// hostPort joins the announced host with the port a listener got.
func hostPort(host string, addr net.Addr) string {
	var port int
	switch a := addr.(type) {
	case *net.UDPAddr:
		port = a.Port
	case *net.TCPAddr:
		port = a.Port
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// URLs are the turn: and turns: URLs of the listeners, in the order UDP, TCP, TLS.
func (t *TURNServer) URLs() []string { return t.urls }

// ICEServer is a credential for identity, valid for the configured lifetime: username
// "expiry:identity", password base64(HMAC-SHA1(secret, username)) (the TURN REST API scheme,
// which coturn and pion verify alike).
func (t *TURNServer) ICEServer(identity string) (ICEServer, error) {
	user, pass, err := turn.GenerateLongTermTURNRESTCredentials(t.secret, identity, t.ttl)
	if err != nil {
		return ICEServer{}, fmt.Errorf("sfu: TURN credential for %q: %w", identity, err)
	}
	return ICEServer{URLs: t.urls, Username: user, Credential: pass}, nil
}

// allocationsPerIdentity caps the relays one participant holds, so that nobody exhausts the relay
// port range for the others. A browser opens one per TURN URL and peer connection (3 x 2), and
// an ICE restart opens new ones before the old expire.
const allocationsPerIdentity = 16

// allocationQuota counts the open allocations of each identity. The count is checked before an
// allocation and kept by pion's events after, so concurrent requests may overshoot by a few.
type allocationQuota struct {
	mu   sync.Mutex
	open map[string]int
}

// identityOf is the identity in a username "expiry:identity", read as pion's REST
// authenticator reads it (the userID it reports in events).
func identityOf(username string) string {
	if fields := strings.Split(username, ":"); len(fields) > 1 {
		return fields[1]
	}
	return username
}

func (q *allocationQuota) allow(username, _ string, _ net.Addr) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.open[identityOf(username)] < allocationsPerIdentity
}

func (q *allocationQuota) created(_, _ net.Addr, _, userID, _ string, _ net.Addr, _ int) {
	q.mu.Lock()
	q.open[userID]++
	q.mu.Unlock()
}

func (q *allocationQuota) deleted(_, _ net.Addr, _, userID, _ string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.open[userID]--; q.open[userID] <= 0 {
		delete(q.open, userID)
	}
}

// Allocations is how many relays are in use.
func (t *TURNServer) Allocations() int { return t.server.AllocationCount() }

// Close stops the listeners and every allocation.
func (t *TURNServer) Close() error {
	if err := t.server.Close(); err != nil {
		return fmt.Errorf("sfu: close TURN server: %w", err)
	}
	return nil
}
