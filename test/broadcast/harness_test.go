// Package broadcast tests the public programme end to end: a signalling server with its media
// engine on loopback, members publishing the pre-encoded test clips with the LiveKit Go SDK, and
// viewers joining with a viewer token as the watch page does. The received audio is decoded
// with ffmpeg and its pitch measured, so a bleep is checked by ear, so to speak.
package broadcast

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/configs/profiles"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/store"
	"github.com/ingeco/hemicycle/test/media"
)

const (
	testKey    = "testkey"
	testSecret = "a-test-secret-long-enough-for-hs256-keys"
)

func TestMain(m *testing.M) {
	if os.Getenv("HEMICYCLE_TEST_LOG") == "" {
		media.QuietSDK()
	}
	os.Exit(m.Run())
}

func testLogger() *slog.Logger {
	if os.Getenv("HEMICYCLE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type server struct {
	sig  *signaling.Server
	http *httptest.Server
	ws   string
}

func startServer(t *testing.T, pc signaling.ProgrammeConfig, mutate ...func(*signaling.Config)) *server {
	t.Helper()
	log := testLogger()
	engine, err := sfu.NewEngine(sfu.Config{UDPAddr: "127.0.0.1:0", Loopback: true, LoopbackOnly: true, Logger: log})
	if err != nil {
		t.Fatalf("media engine: %v", err)
	}
	pc.Key, pc.Secret = testKey, testSecret
	if pc.Broadcast.Logger == nil {
		pc.Broadcast.Logger = log
	}
	cfg := signaling.Config{
		Verifier:  auth.NewVerifier(auth.KeySet{testKey: testSecret}),
		Media:     engine,
		Logger:    log,
		Programme: &pc,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	sig := signaling.NewServer(cfg)
	hs := httptest.NewServer(sig.Handler())
	t.Cleanup(func() {
		sig.Close()
		hs.Close()
		_ = engine.Close()
	})
	return &server{sig: sig, http: hs, ws: "ws" + strings.TrimPrefix(hs.URL, "http")}
}

func (s *server) token(t *testing.T, room, identity string, role auth.Role, seat int) string {
	t.Helper()
	tok, err := auth.Issue(auth.TokenOptions{
		Key: testKey, Secret: testSecret, Identity: identity, Name: identity, Room: room, TTL: time.Hour,
		Video: auth.GrantsForRole(role, room), Council: &auth.CouncilGrant{Role: role, Seat: seat},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *server) join(t *testing.T, room, identity string, role auth.Role, seat int, cb *lksdk.RoomCallback) *lksdk.Room {
	t.Helper()
	if cb == nil {
		cb = lksdk.NewRoomCallback()
	}
	r, err := lksdk.ConnectToRoomWithToken(s.ws, s.token(t, room, identity, role, seat), cb)
	if err != nil {
		t.Fatalf("%s joins %s: %v", identity, room, err)
	}
	t.Cleanup(r.Disconnect)
	return r
}

// post sends a JSON request and decodes the JSON answer; it returns the status.
func (s *server) post(t *testing.T, path, token string, body, into any) int {
	return s.request(t, http.MethodPost, path, token, body, into)
}

// request sends a JSON request and decodes the JSON answer; it returns the status.
func (s *server) request(t *testing.T, method, path, token string, body, into any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, s.http.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if into != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(data, into); err != nil {
			t.Fatalf("%s %s: answer %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// publisher loops the test clips (440 Hz tone, VP8 test pattern) and remembers when each
// Opus payload went out.
type publisher struct {
	mu   sync.Mutex
	sent map[string][]time.Time // Opus payload -> send times
	vp8  [][]byte

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func publish(t *testing.T, r *lksdk.Room, video bool) *publisher {
	t.Helper()
	opus, err := media.Opus()
	if err != nil {
		t.Fatal(err)
	}
	p := &publisher{sent: map[string][]time.Time{}}
	audio, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.LocalParticipant.PublishTrack(audio, &lksdk.TrackPublicationOptions{Name: "mic", Source: livekit.TrackSource_MICROPHONE}); err != nil {
		t.Fatalf("publish audio: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		loop(ctx, opus, func(f media.Frame) {
			p.mu.Lock()
			p.sent[string(f.Data)] = append(p.sent[string(f.Data)], time.Now())
			p.mu.Unlock()
			_ = audio.WriteSample(pionmedia.Sample{Data: f.Data, Duration: f.Duration}, nil)
		})
	}()
	if video {
		frames, err := media.VP8()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames {
			p.vp8 = append(p.vp8, f.Data)
		}
		cam, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.LocalParticipant.PublishTrack(cam, &lksdk.TrackPublicationOptions{Name: "camera", Source: livekit.TrackSource_CAMERA, VideoWidth: 320, VideoHeight: 240}); err != nil {
			t.Fatalf("publish video: %v", err)
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			loop(ctx, frames, func(f media.Frame) {
				_ = cam.WriteSample(pionmedia.Sample{Data: f.Data, Duration: f.Duration}, nil)
			})
		}()
	}
	t.Cleanup(p.stop)
	return p
}

func (p *publisher) stop() {
	p.cancel()
	p.wg.Wait()
}

// sentBefore returns the latest time payload was sent at or before at. The clip loops every
// 4 s, so a payload is sent many times: give at early enough to tell them apart.
func (p *publisher) sentBefore(payload []byte, at time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best time.Time
	for _, s := range p.sent[string(payload)] {
		if !s.After(at) && s.After(best) {
			best = s
		}
	}
	return best, !best.IsZero()
}

// loop writes frames at their real pace, over and over, until ctx ends.
func loop(ctx context.Context, frames []media.Frame, write func(media.Frame)) {
	next := time.Now()
	for {
		for _, f := range frames {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(next)):
			}
			write(f)
			next = next.Add(f.Duration)
		}
	}
}

// got is one packet received by a viewer.
type got struct {
	at  time.Time
	pkt *rtp.Packet
}

// viewer is a watch-only client holding what it received, per programme track name.
type viewer struct {
	room *lksdk.Room

	mu     sync.Mutex
	tracks map[string][]got
}

// watch gets a viewer token as the watch page does and joins with it.
func watch(t *testing.T, s *server, room string) *viewer {
	t.Helper()
	var tok struct {
		Token    string `json:"token"`
		Identity string `json:"identity"`
	}
	if code := s.post(t, "/api/rooms/"+room+"/viewer-token", "", nil, &tok); code != 200 {
		t.Fatalf("viewer token: status %d", code)
	}
	v := &viewer{tracks: map[string][]got{}}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		name := pub.Name()
		go func() {
			for {
				pkt, _, err := track.ReadRTP()
				if err != nil {
					return
				}
				v.mu.Lock()
				v.tracks[name] = append(v.tracks[name], got{at: time.Now(), pkt: pkt})
				v.mu.Unlock()
			}
		}()
	}
	r, err := lksdk.ConnectToRoomWithToken(s.ws, tok.Token, cb)
	if err != nil {
		t.Fatalf("viewer joins: %v", err)
	}
	v.room = r
	t.Cleanup(r.Disconnect)
	return v
}

func (v *viewer) packets(track string) []got {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]got(nil), v.tracks[track]...)
}

// eventually polls cond until it holds or the deadline passes: a bound for liveness, not a
// performance assertion.
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

// decodeOpus writes RTP Opus packets to an Ogg file and decodes it with ffmpeg to mono 48 kHz
// samples.
func decodeOpus(t *testing.T, pkts []got) []float64 {
	t.Helper()
	dir := t.TempDir()
	oggPath := filepath.Join(dir, "received.ogg")
	w, err := oggwriter.New(oggPath, 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range pkts {
		if err := w.WriteRTP(g.pkt); err != nil {
			t.Fatalf("ogg: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return media.PCM(t, oggPath)
}

// runs describes a classification as "440x12 1000x10 440x8".
func runs(cls []int) string {
	var b strings.Builder
	for i := 0; i < len(cls); {
		j := i
		for j < len(cls) && cls[j] == cls[i] {
			j++
		}
		fmt.Fprintf(&b, "%dx%d ", cls[i], j-i)
		i = j
	}
	return strings.TrimSpace(b.String())
}

// withCouncil gives the server a file journal and the shipped legal profiles, so that
// sessions can be held.
func withCouncil(t *testing.T) func(*signaling.Config) {
	j, err := store.OpenFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return func(c *signaling.Config) {
		c.Journal = j
		c.Profiles = func(name string) (*council.Profile, error) {
			data, err := profiles.Read(name)
			if err != nil {
				return nil, err
			}
			return council.ParseProfile(data)
		}
	}
}

// must posts and fails the test unless the answer is 200.
func (s *server) must(t *testing.T, path, token string, body any) {
	t.Helper()
	if code := s.post(t, path, token, body, nil); code != 200 {
		t.Fatalf("POST %s: status %d", path, code)
	}
}
