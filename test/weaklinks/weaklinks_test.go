// Package weaklinks tests a meeting whose members' links are weak, in network namespaces that
// the tests create (test/netlab), with LiveKit Go SDK clients: what the server sends a
// subscriber whose downlink carries less than the meeting. Needs root, iproute2, nftables and
// ffmpeg.
package weaklinks

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/test/media"
	"github.com/ingeco/hemicycle/test/netlab"
)

const (
	room = "weak"

	publishers = 4
	window     = 30 * time.Second // the audio loss is measured over this, on the weak link
	resumeIn   = 10 * time.Second // every video flows again within this once the link is lifted
	maxLoss    = 0.02
)

// downlinkSubscriber joins WS with TOKEN inside the namespace, subscribes to everything, and
// reports every half second what it received of each track.
var downlinkSubscriber netlab.Role = func(ctx context.Context, t testing.TB, report func(any)) {
	var mu sync.Mutex
	tracks := map[string]*received{}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		r := &received{Kind: track.Kind().String(), Owner: rp.Identity()}
		mu.Lock()
		tracks[pub.SID()] = r
		mu.Unlock()
		go func() {
			for {
				pkt, _, err := track.ReadRTP()
				if err != nil {
					return
				}
				mu.Lock()
				r.add(pkt.SequenceNumber, len(pkt.Payload))
				mu.Unlock()
			}
		}()
	}
	signalingtest.Connect(t, os.Getenv("WS"), os.Getenv("TOKEN"), cb)
	netlab.Every(ctx, 500*time.Millisecond, func() {
		mu.Lock()
		snap := make(map[string]received, len(tracks))
		for sid, r := range tracks {
			snap[sid] = *r
		}
		mu.Unlock()
		report(snap)
	})
}

// received is what a subscriber got of one track, cumulated.
type received struct {
	Kind, Owner string
	Media       int   // packets with a payload (padding-only probes excluded)
	Bytes       int   // of payload
	First, High int64 // extended sequence numbers, to count what was sent
	seen        bool
}

func (r *received) add(sn uint16, payload int) {
	ext := int64(sn)
	if r.seen {
		ext = r.High + int64(int16(sn-uint16(r.High)))
	} else {
		r.First, r.High, r.seen = ext, ext, true
	}
	r.High = max(r.High, ext)
	if payload > 0 {
		r.Media++
		r.Bytes += payload
	}
}

// TestSubscriberOnAWeakLink: four members publish audio and a 500 kbit/s camera, and one member
// subscribes over a downlink of 1 Mbit/s (then 600 kbit/s). Its audio loses at most 2 % over
// 30 s, the server pauses the videos that do not fit, and every video flows again within
// 10 s once the limit is lifted.
func TestSubscriberOnAWeakLink(t *testing.T) {
	clip := makeClip(t)
	for _, kbit := range []int{1000, 600} {
		t.Run(fmt.Sprintf("%dkbit", kbit), func(t *testing.T) { weakDownlink(t, clip, kbit) })
	}
}

func weakDownlink(t *testing.T, clip []media.Frame, kbit int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	link := netlab.New(t)
	var srv *server
	if bin := os.Getenv("WEAKLINKS_LIVEKIT"); bin != "" {
		srv = startLiveKit(t, bin, link.HostIP.String())
	} else {
		srv = startServer(t, link.HostIP.String())
	}
	for i := range publishers {
		startPublisher(t, srv, fmt.Sprintf("member-%d", i+1), i+1, clip)
	}
	if err := link.Shape(netlab.ToPeer, kbit); err != nil {
		t.Fatal(err)
	}
	sub := netlab.Child(ctx, t, link, "subscriber", map[string]string{"WS": srv.WS, "TOKEN": srv.Token(t, room, "subscriber", auth.RoleMember, 9)})
	next := func() map[string]received {
		t.Helper()
		var snap map[string]received
		if err := sub.Next(ctx, &snap); err != nil {
			t.Fatal(err)
		}
		return snap
	}

	// Wait for every track to be subscribed and its audio to flow.
	joined := time.Now()
	var start map[string]received
	for start == nil {
		snap := next()
		if audio, video := count(snap); audio == publishers && video == publishers {
			start = snap
		}
		if time.Since(joined) > 30*time.Second {
			t.Fatalf("after 30 s the subscriber has %v", snap)
		}
	}
	t.Logf("every track subscribed %v after joining", time.Since(joined).Round(100*time.Millisecond))
	// 30 s on the weak link.
	var pausedAt time.Duration
	minFlowing, maxPaused := publishers, 0
	prev := start
	begin := time.Now()
	var last map[string]received
	for time.Since(begin) < window {
		last = next()
		minFlowing = min(minFlowing, flowing(prev, last))
		if p := srv.pausedVideos(t); p > maxPaused {
			maxPaused = p
			if pausedAt == 0 {
				pausedAt = time.Since(joined)
			}
		}
		prev = last
	}
	loss, lost, sent := audioLoss(start, last)
	videoRate := float64(videoBytes(last)-videoBytes(start)) * 8 / time.Since(begin).Seconds()
	t.Logf("%d kbit/s: audio lost %d of %d packets (%.2f %%) over %v; video received at %.0f kbit/s; "+
		"at most %d videos paused (first %v after joining), at least %d of %d flowing; estimate %.0f kbit/s",
		kbit, lost, sent, 100*loss, window, videoRate/1000, maxPaused, pausedAt.Round(100*time.Millisecond),
		minFlowing, publishers, srv.estimate(t)/1000)
	if loss > maxLoss {
		t.Errorf("the subscriber lost %.2f %% of its audio on a %d kbit/s link, want at most %.0f %%", 100*loss, kbit, 100*maxLoss)
	}
	if maxPaused == 0 && srv.metrics != "" {
		t.Errorf("no video was paused on a %d kbit/s link carrying %d cameras of 500 kbit/s", kbit, publishers)
	}

	// The limit is lifted: every video flows again.
	if err := link.Unshape(netlab.ToPeer); err != nil {
		t.Fatal(err)
	}
	lifted := time.Now()
	prev = last
	for {
		snap := next()
		flows, paused := flowing(prev, snap), srv.pausedVideos(t)
		if flows == publishers && paused == 0 {
			t.Logf("every video flows again %v after the limit was lifted (estimate %.0f kbit/s)",
				time.Since(lifted).Round(100*time.Millisecond), srv.estimate(t)/1000)
			break
		}
		prev = snap
		if time.Since(lifted) > resumeIn {
			t.Fatalf("%v after the limit was lifted, %d of %d videos flow, %d paused (estimate %.0f kbit/s)",
				resumeIn, flows, publishers, paused, srv.estimate(t)/1000)
		}
	}
}

func count(snap map[string]received) (audio, video int) {
	for _, r := range snap {
		switch {
		case r.Kind == "audio" && r.Media > 0:
			audio++
		case r.Kind == "video":
			video++
		}
	}
	return audio, video
}

// flowing counts the videos that received media between two reports.
func flowing(a, b map[string]received) int {
	n := 0
	for sid, r := range b {
		if r.Kind == "video" && r.Media > a[sid].Media {
			n++
		}
	}
	return n
}

// audioLoss is the share of the audio packets sent between two reports that did not arrive.
func audioLoss(a, b map[string]received) (loss float64, lost, sent int64) {
	for sid, r := range b {
		if r.Kind != "audio" {
			continue
		}
		s := r.High - a[sid].High
		got := int64(r.Media - a[sid].Media)
		sent += s
		lost += max(s-got, 0)
	}
	if sent == 0 {
		return 1, 0, 0
	}
	return float64(lost) / float64(sent), lost, sent
}

func videoBytes(snap map[string]received) int {
	n := 0
	for _, r := range snap {
		if r.Kind == "video" {
			n += r.Bytes
		}
	}
	return n
}

// server is Hemicycle in process on the host's end of the link, and its /metrics.
type server struct {
	*signalingtest.Server
	metrics string
}

// serverLog is the quiet logger of the harness, or with WEAKLINKS_LOG=file the server's debug
// log (the allocator's and REMB's decisions) written there.
func serverLog(t *testing.T) *slog.Logger {
	t.Helper()
	path := os.Getenv("WEAKLINKS_LOG")
	if path == "" {
		return signalingtest.Logger()
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer runs Hemicycle on the host's end of the link. HEMICYCLE_ALLOCATION=off turns the
// stream allocation off, to see what the test sees without it; WEAKLINKS_LOG=file writes the
// server's debug log (the allocator's decisions) there.
func startServer(t *testing.T, ip string) *server {
	t.Helper()
	log := serverLog(t)
	engine, err := sfu.NewEngine(sfu.Config{
		UDPAddr: net.JoinHostPort(ip, "0"), Logger: log,
		DisableAllocation: os.Getenv("HEMICYCLE_ALLOCATION") == "off",
	})
	if err != nil {
		t.Fatalf("media engine: %v", err)
	}
	t.Cleanup(func() { _ = engine.Close() })
	s := signalingtest.StartOn(t, ip, func(c *signaling.Config) { c.Media, c.Logger = engine, log })
	metrics := httptest.NewServer(signaling.NewMetrics(s.Signaling).Handler())
	t.Cleanup(metrics.Close)
	return &server{Server: s, metrics: metrics.URL}
}

// startLiveKit runs LiveKit's server (the binary at bin, built apart: not part of Hemicycle)
// on the host's end of the link in place of Hemicycle, to set the same load against it
// (WEAKLINKS_LIVEKIT=path, by hand: BENCHMARKS.md). It has no /metrics of ours: what the
// subscriber receives tells what it paused.
func startLiveKit(t *testing.T, bin, ip string) *server {
	t.Helper()
	free := func(network string) int {
		t.Helper()
		if network == "udp" {
			c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			return c.LocalAddr().(*net.UDPAddr).Port
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	port, udp, tcp := free("tcp"), free("udp"), free("tcp")
	cfg := filepath.Join(t.TempDir(), "livekit.yaml")
	keys := signalingtest.TestKeys
	yaml := fmt.Sprintf("port: %d\nbind_addresses: [%s]\nrtc:\n  udp_port: %d\n  tcp_port: %d\n  use_external_ip: false\n  congestion_control:\n    enabled: true\n    allow_pause: true\n"+
		"keys:\n  %s: %s\nlogging:\n  level: warn\n", port, ip, udp, tcp, keys.Key, keys.Secret)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg, "--node-ip", ip)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start LiveKit: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("LiveKit does not listen on %s", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &server{Server: &signalingtest.Server{Keys: keys, WS: "ws://" + addr}}
}

// metric reads one of the subscriber's gauges from /metrics, 0 when absent (or when the server
// is LiveKit's).
func (s *server) metric(t *testing.T, name string) float64 {
	t.Helper()
	if s.metrics == "" {
		return 0
	}
	resp, err := http.Get(s.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		line := lines.Text()
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, `participant="subscriber"`) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("metrics: %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

func (s *server) pausedVideos(t *testing.T) int {
	return int(s.metric(t, "hemicycle_subscriber_paused_videos"))
}

func (s *server) estimate(t *testing.T) float64 {
	return s.metric(t, "hemicycle_subscriber_bandwidth_estimate_bits_per_second")
}

// startPublisher joins a member who publishes the tone and the clip, looped, until the test ends.
func startPublisher(t *testing.T, s *server, identity string, seat int, clip []media.Frame) {
	t.Helper()
	r := s.Join(t, room, identity, auth.RoleMember, seat, nil, lksdk.WithAutoSubscribe(false))
	signalingtest.Publish(t, r, signalingtest.Clips{Camera: &signalingtest.Camera{Frames: clip, Width: 640, Height: 360}})
}

// makeClip encodes 4 s of a moving test pattern in VP8 at 500 kbit/s, 640x360 and 25 fps, a
// keyframe every 2 s, as a member's camera would send.
func makeClip(t *testing.T) []media.Frame {
	t.Helper()
	path := filepath.Join(t.TempDir(), "camera.ivf")
	out, err := exec.Command("ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "4",
		"-c:v", "libvpx", "-b:v", "500k", "-minrate", "500k", "-maxrate", "500k", "-g", "50", "-deadline", "realtime",
		"-cpu-used", "8", "-auto-alt-ref", "0", "-y", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg (scripts/test installs Debian's): %v\n%s", err, out)
	}
	ivf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := media.ReadVP8(ivf)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(frames) == 0 {
		t.Fatal("the clip has no frames")
	}
	var bytes int
	var length time.Duration
	for _, f := range frames {
		bytes += len(f.Data)
		length += f.Duration
	}
	t.Logf("camera clip: %d frames, %.0f kbit/s", len(frames), float64(bytes)*8/length.Seconds()/1000)
	return frames
}
