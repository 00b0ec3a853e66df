package signaling

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/test/media"
)

const (
	testKey    = "testkey"
	testSecret = "a-test-secret-long-enough-for-hs256-keys"
)

// testServer is a whole signalling server with its media engine, on loopback.
type testServer struct {
	srv  *Server
	http *httptest.Server
	url  string
}

// TestMain quiets the SDK's own logging unless HEMICYCLE_TEST_LOG is set.
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
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startServer(t *testing.T, mutate ...func(*Config)) *testServer {
	t.Helper()
	log := testLogger()
	engine, err := sfu.NewEngine(sfu.Config{UDPAddr: "127.0.0.1:0", Loopback: true, LoopbackOnly: true, Logger: log})
	if err != nil {
		t.Fatalf("media engine: %v", err)
	}
	cfg := Config{
		Verifier:     auth.NewVerifier(auth.KeySet{testKey: testSecret}),
		Media:        engine,
		Logger:       log,
		ResumeWindow: 5 * time.Second,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	srv := NewServer(cfg)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		_ = engine.Close()
	})
	return &testServer{srv: srv, http: hs, url: "ws" + strings.TrimPrefix(hs.URL, "http")}
}

func (ts *testServer) token(t *testing.T, room, identity string, role auth.Role) string {
	t.Helper()
	tok, err := auth.Issue(auth.TokenOptions{
		Key: testKey, Secret: testSecret, Identity: identity, Name: strings.ToUpper(identity[:1]) + identity[1:],
		Room: room, TTL: time.Hour, Video: auth.GrantsForRole(role, room),
		Council: &auth.CouncilGrant{Role: role},
	})
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	return tok
}

// join connects a real LiveKit Go SDK client.
func (ts *testServer) join(t *testing.T, room, identity string, cb *lksdk.RoomCallback, opts ...lksdk.ConnectOption) *lksdk.Room {
	t.Helper()
	if cb == nil {
		cb = lksdk.NewRoomCallback()
	}
	r, err := lksdk.ConnectToRoomWithToken(ts.url, ts.token(t, room, identity, auth.RoleMember), cb, opts...)
	if err != nil {
		t.Fatalf("%s joins %s: %v", identity, room, err)
	}
	t.Cleanup(r.Disconnect)
	return r
}

// publisher loops the test clips into published tracks until stopped.
type publisher struct {
	audio, video *lksdk.LocalTrack
	audioPub     *lksdk.LocalTrackPublication
	videoPub     *lksdk.LocalTrackPublication

	mu       sync.Mutex
	sentOpus map[string]bool // payloads sent, for byte-identity checks

	cancel context.CancelFunc
	done   sync.WaitGroup
}

func publish(t *testing.T, r *lksdk.Room, withVideo bool) *publisher {
	t.Helper()
	opus, err := media.Opus()
	if err != nil {
		t.Fatal(err)
	}
	p := &publisher{sentOpus: map[string]bool{}}
	p.audio, err = lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	p.audioPub, err = r.LocalParticipant.PublishTrack(p.audio, &lksdk.TrackPublicationOptions{Name: "mic", Source: livekitMic})
	if err != nil {
		t.Fatalf("publish audio: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		loop(ctx, opus, func(f media.Frame) error {
			p.mu.Lock()
			p.sentOpus[string(f.Data)] = true
			p.mu.Unlock()
			return p.audio.WriteSample(pionmedia.Sample{Data: f.Data, Duration: f.Duration}, nil)
		})
	}()
	if withVideo {
		vp8, err := media.VP8()
		if err != nil {
			t.Fatal(err)
		}
		p.video, err = lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
		if err != nil {
			t.Fatal(err)
		}
		p.videoPub, err = r.LocalParticipant.PublishTrack(p.video, &lksdk.TrackPublicationOptions{Name: "camera", Source: livekitCamera, VideoWidth: 320, VideoHeight: 240})
		if err != nil {
			t.Fatalf("publish video: %v", err)
		}
		p.done.Add(1)
		go func() {
			defer p.done.Done()
			loop(ctx, vp8, func(f media.Frame) error {
				return p.video.WriteSample(pionmedia.Sample{Data: f.Data, Duration: f.Duration}, nil)
			})
		}()
	}
	t.Cleanup(p.stop)
	return p
}

func (p *publisher) stop() {
	p.cancel()
	p.done.Wait()
}

func (p *publisher) sent(payload []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sentOpus[string(payload)]
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
			_ = write(f) // before the track is bound, writes fail; the loop just goes on
			next = next.Add(f.Duration)
		}
	}
}

// eventually polls cond until it holds or the deadline passes. Deadlines here are generous
// bounds for liveness, not performance assertions.
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
