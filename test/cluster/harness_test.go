// Package cluster_test runs several hemicycle processes sharing a real redis-server on loopback,
// with LiveKit SDK clients, and kills things: nodes (SIGKILL) and Redis.
package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/redis/go-redis/v9"
	"github.com/twitchtv/twirp"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/store/redistest"
	"github.com/ingeco/hemicycle/test/media"
)

const (
	apiKey    = "clusterkey"
	apiSecret = "a-cluster-test-secret-of-at-least-32-bytes"
	keyPrefix = "hemicycle:"
)

// binary is the hemicycle executable built once by TestMain ("" when the build was skipped).
var binary string

func TestMain(m *testing.M) {
	if os.Getenv("HEMICYCLE_TEST_LOG") == "" {
		media.QuietSDK()
	}
	code := func() int {
		if _, err := exec.LookPath("redis-server"); err == nil || os.Getenv("HEMICYCLE_REQUIRE_REDIS") != "" {
			dir, err := os.MkdirTemp("", "hemicycle-cluster-")
			if err != nil {
				fmt.Fprintln(os.Stderr, "temp dir:", err)
				return 1
			}
			defer os.RemoveAll(dir)
			binary = filepath.Join(dir, "hemicycle")
			_, self, _, _ := runtime.Caller(0)
			build := exec.Command("go", "build", "-o", binary, "./cmd/hemicycle")
			build.Dir = filepath.Join(filepath.Dir(self), "..", "..")
			build.Stdout, build.Stderr = os.Stderr, os.Stderr
			if err := build.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "build hemicycle:", err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// testCluster is a redis-server and hemicycle nodes on loopback.
type testCluster struct {
	t     *testing.T
	redis *redistest.Redis
	rdb   *redis.Client
	dir   string
	nodes []*node
	extra string // YAML appended to every node's configuration
}

// node is one hemicycle process.
type node struct {
	id                   string
	cfgPath, logPath     string
	httpPort, udp, tcpPt int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func (n *node) url() string { return "http://127.0.0.1:" + strconv.Itoa(n.httpPort) }
func (n *node) ws() string  { return "ws://127.0.0.1:" + strconv.Itoa(n.httpPort) }

func startCluster(t *testing.T, nodes int) *testCluster {
	t.Helper()
	return startClusterWith(t, nodes, "")
}

// startClusterWith starts nodes whose configuration ends with extra (top-level YAML sections
// that the common one leaves out).
func startClusterWith(t *testing.T, nodes int, extra string) *testCluster {
	t.Helper()
	rs := redistest.StartRedis(t)
	if binary == "" {
		t.Fatal("hemicycle was not built")
	}
	c := &testCluster{t: t, redis: rs, rdb: rs.Client(t), dir: t.TempDir(), extra: extra}
	for i := range nodes {
		n := &node{id: fmt.Sprintf("node%d", i+1)}
		n.cfgPath = filepath.Join(c.dir, n.id+".yaml")
		n.logPath = filepath.Join(c.dir, n.id+".log")
		c.nodes = append(c.nodes, n)
		c.start(n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.kill()
		}
		if t.Failed() {
			for _, n := range c.nodes {
				log, _ := os.ReadFile(n.logPath)
				lines := strings.Split(strings.TrimSpace(string(log)), "\n")
				t.Logf("---- last lines of %s's log ----\n%s", n.id, strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
	})
	return c
}

// start runs the node, on new free ports if its own are taken.
func (c *testCluster) start(n *node) {
	c.t.Helper()
	var lastErr error
	for attempt := range 4 {
		if n.httpPort == 0 || attempt > 0 {
			n.httpPort, n.udp, n.tcpPt = freePorts(c.t)
		}
		cfg := fmt.Sprintf(`bind: 127.0.0.1
port: %d
rtc:
  udp_port: %d
  tcp_port: %d
keys:
  %s: %s
logging:
  level: info
  format: text
redis:
  address: %s
  key_prefix: %q
node:
  id: %s
  url: %s
data_dir: %q
`, n.httpPort, n.udp, n.tcpPt, apiKey, apiSecret, c.redis.Addr, keyPrefix, n.id, n.url(), filepath.Join(c.dir, n.id+"-data")) + c.extra
		if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o600); err != nil {
			c.t.Fatal(err)
		}
		if lastErr = n.run(); lastErr == nil {
			return
		}
	}
	c.t.Fatalf("start %s: %v", n.id, lastErr)
}

func freePorts(t *testing.T) (http, udp, tcp int) {
	var err error
	if http, err = redistest.FreePort(); err != nil {
		t.Fatal(err)
	}
	if tcp, err = redistest.FreePort(); err != nil {
		t.Fatal(err)
	}
	if udp, err = redistest.FreeUDPPort(); err != nil {
		t.Fatal(err)
	}
	return http, udp, tcp
}

func (n *node) run() error {
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(binary, "serve", "--dev", "--config", n.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.id, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(n.url() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited at start (log %s)", n.id, n.logPath)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.kill()
			return fmt.Errorf("%s not ready: %v", n.id, err)
		}
	}
}

// kill ends the node with SIGKILL, as a crash would, and waits for it to be gone.
func (n *node) kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// placement reads which node holds each room, from Redis.
func (c *testCluster) placement() map[string]string {
	c.t.Helper()
	m, err := c.rdb.HGetAll(context.Background(), keyPrefix+"{cluster}:rooms").Result()
	if err != nil {
		c.t.Fatalf("read placement: %v", err)
	}
	return m
}

func (c *testCluster) node(id string) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	c.t.Fatalf("no node %q", id)
	return nil
}

// others lists the nodes other than the given one.
func (c *testCluster) others(id string) []*node {
	var out []*node
	for _, n := range c.nodes {
		if n.id != id {
			out = append(out, n)
		}
	}
	return out
}

// ---- tokens and APIs ----

func token(t *testing.T, room, identity string, role auth.Role, seat int) string {
	t.Helper()
	tok, err := auth.Issue(auth.TokenOptions{
		Key: apiKey, Secret: apiSecret, Identity: identity, Name: identity, Room: room, TTL: time.Hour,
		Video: auth.GrantsForRole(role, room), Council: &auth.CouncilGrant{Role: role, Seat: seat},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// adminToken may create and list rooms, and administer room (when not empty).
func adminToken(t *testing.T, room string) string {
	t.Helper()
	tok, err := auth.Issue(auth.TokenOptions{
		Key: apiKey, Secret: apiSecret, Identity: "admin", TTL: time.Hour,
		Video: auth.VideoGrant{RoomCreate: true, RoomList: true, RoomAdmin: room != "", Room: room},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// roomService is LiveKit's RoomService client on a node, calling with tok.
func roomService(t *testing.T, n *node, tok string) (livekit.RoomService, context.Context) {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok)
	ctx, err := twirp.WithHTTPRequestHeaders(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	return livekit.NewRoomServiceProtobufClient(n.url(), http.DefaultClient), ctx
}

// call sends a deliberation API request to a node and decodes the JSON answer.
func call(t *testing.T, n *node, method, path, tok string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, n.url()+path, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.id, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if json.Unmarshal(raw, &out) != nil || len(out) == 0 {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, out
}

func must(t *testing.T, n *node, method, path, tok string, body any) map[string]any {
	t.Helper()
	status, out := call(t, n, method, path, tok, body)
	if status != 200 {
		t.Fatalf("%s %s on %s: %d %v", method, path, n.id, status, out)
	}
	return out
}

// ---- SDK clients and media ----

func join(t *testing.T, n *node, tok string, cb *lksdk.RoomCallback) *lksdk.Room {
	t.Helper()
	if cb == nil {
		cb = lksdk.NewRoomCallback()
	}
	r, err := lksdk.ConnectToRoomWithToken(n.ws(), tok, cb)
	if err != nil {
		t.Fatalf("join through %s: %v", n.id, err)
	}
	t.Cleanup(r.Disconnect)
	return r
}

// publish loops the test tone (and the test pattern) into published tracks until the test
// ends. After a full reconnect the SDK publishes the same tracks again, so the loop goes on.
func publish(t *testing.T, r *lksdk.Room, name string, withVideo bool) {
	t.Helper()
	opus, err := media.Opus()
	if err != nil {
		t.Fatal(err)
	}
	audio, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.LocalParticipant.PublishTrack(audio, &lksdk.TrackPublicationOptions{Name: name + "-mic", Source: livekit.TrackSource_MICROPHONE}); err != nil {
		t.Fatalf("publish audio: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		loop(ctx, opus, func(f media.Frame) error {
			return audio.WriteSample(pionmedia.Sample{Data: f.Data, Duration: f.Duration}, nil)
		})
	})
	if !withVideo {
		return
	}
	vp8, err := media.VP8()
	if err != nil {
		t.Fatal(err)
	}
	video, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.LocalParticipant.PublishTrack(video, &lksdk.TrackPublicationOptions{Name: name + "-camera", Source: livekit.TrackSource_CAMERA, VideoWidth: 320, VideoHeight: 240}); err != nil {
		t.Fatalf("publish video: %v", err)
	}
	wg.Go(func() {
		loop(ctx, vp8, func(f media.Frame) error {
			return video.WriteSample(pionmedia.Sample{Data: f.Data, Duration: f.Duration}, nil)
		})
	})
}

// loop writes frames at their real pace, over and over, until ctx ends.
func loop(ctx context.Context, frames []media.Frame, write func(media.Frame) error) {
	next := time.Now()
	for {
		for _, f := range frames {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(next)):
			}
			_ = write(f) // while (re)connecting writes fail; the loop goes on
			next = next.Add(f.Duration)
		}
	}
}

// receiver counts what a subscriber gets, per publisher track name, and when.
type receiver struct {
	mu      sync.Mutex
	packets map[string]int
	subs    []subscription
	arrival []time.Time // audio packets, for gaps
	keep    bool
}

// subscription is one track as the subscriber received it: a full reconnect makes new ones.
type subscription struct {
	name        string
	at          time.Time
	firstPacket time.Time
}

func newReceiver() (*receiver, *lksdk.RoomCallback) {
	rc := &receiver{packets: map[string]int{}}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		rc.mu.Lock()
		rc.subs = append(rc.subs, subscription{name: pub.Name(), at: time.Now()})
		idx := len(rc.subs) - 1
		rc.mu.Unlock()
		go rc.read(track, pub.Name(), idx)
	}
	return rc, cb
}

func (rc *receiver) read(track *webrtc.TrackRemote, name string, idx int) {
	for {
		if _, _, err := track.ReadRTP(); err != nil {
			return
		}
		now := time.Now()
		rc.mu.Lock()
		rc.packets[name]++
		if rc.subs[idx].firstPacket.IsZero() {
			rc.subs[idx].firstPacket = now
		}
		if rc.keep && track.Kind() == webrtc.RTPCodecTypeAudio {
			rc.arrival = append(rc.arrival, now)
		}
		rc.mu.Unlock()
	}
}

func (rc *receiver) count(name string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.packets[name]
}

// mediaBackAfter is when the first packet arrived on a track subscribed after t0, if any.
func (rc *receiver) mediaBackAfter(t0 time.Time) (time.Time, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var first time.Time
	for _, s := range rc.subs {
		if s.at.After(t0) && !s.firstPacket.IsZero() && (first.IsZero() || s.firstPacket.Before(first)) {
			first = s.firstPacket
		}
	}
	return first, !first.IsZero()
}

// recordArrivals starts keeping the arrival time of every audio packet.
func (rc *receiver) recordArrivals() {
	rc.mu.Lock()
	rc.keep = true
	rc.mu.Unlock()
}

// longestGap is the longest time without audio between from and to.
func (rc *receiver) longestGap(from, to time.Time) (time.Duration, time.Time) {
	rc.mu.Lock()
	times := append([]time.Time(nil), rc.arrival...)
	rc.mu.Unlock()
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	prev := from
	var longest time.Duration
	var at time.Time
	for _, ts := range append(times, to) {
		if ts.Before(from) {
			continue
		}
		if ts.After(to) {
			ts = to
		}
		if g := ts.Sub(prev); g > longest {
			longest, at = g, prev
		}
		prev = ts
		if ts.Equal(to) {
			break
		}
	}
	return longest, at
}

// eventually polls cond until it holds or the deadline passes. Deadlines are generous bounds
// for liveness, not performance assertions.
func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
