package signalingtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/test/media"
)

// Connect joins a real LiveKit Go SDK client at url with token; it leaves when the test ends.
// A nil cb is an empty callback.
func Connect(t testing.TB, url, token string, cb *lksdk.RoomCallback, opts ...lksdk.ConnectOption) *lksdk.Room {
	t.Helper()
	if cb == nil {
		cb = lksdk.NewRoomCallback()
	}
	r, err := lksdk.ConnectToRoomWithToken(url, token, cb, opts...)
	if err != nil {
		t.Fatalf("join at %s: %v", url, err)
	}
	t.Cleanup(r.Disconnect)
	return r
}

// Join connects identity to room on the server with a council role and seat (0 for none).
func (s *Server) Join(t testing.TB, room, identity string, role auth.Role, seat int, cb *lksdk.RoomCallback, opts ...lksdk.ConnectOption) *lksdk.Room {
	t.Helper()
	return Connect(t, s.WS, s.Token(t, room, identity, role, seat), cb, opts...)
}

// Clips says what Publish sends.
type Clips struct {
	Video  bool          // the VP8 test pattern besides the Opus tone
	Mic    []media.Frame // 20 ms Opus packets of the test's own instead of the tone
	Camera *Camera       // a clip of the test's own instead of the test pattern (Video is implied)
	Prefix string        // put before the track names "mic" and "camera"
}

// Camera is a VP8 clip and the size its publication announces.
type Camera struct {
	Frames        []media.Frame
	Width, Height int
}

// Publisher loops the test clips into published tracks until the test ends, and remembers
// when each Opus payload went out.
type Publisher struct {
	AudioPub, VideoPub *lksdk.LocalTrackPublication // VideoPub is nil without video
	VP8                []media.Frame                // the frames the camera loops, with video

	mu   sync.Mutex
	sent map[string][]time.Time // Opus payload -> when it was sent

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Publish publishes the 440 Hz tone (or c.Mic) as "mic" (and the test pattern at 320x240 as
// "camera") and writes them at their real pace. After a full reconnect the SDK publishes the same tracks
// again, so the loop goes on.
func Publish(t testing.TB, r *lksdk.Room, c Clips) *Publisher {
	t.Helper()
	opus := c.Mic
	if opus == nil {
		var err error
		if opus, err = media.Opus(); err != nil {
			t.Fatal(err)
		}
	}
	audio, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := &Publisher{sent: map[string][]time.Time{}}
	p.AudioPub, err = r.LocalParticipant.PublishTrack(audio, &lksdk.TrackPublicationOptions{Name: c.Prefix + "mic", Source: livekit.TrackSource_MICROPHONE})
	if err != nil {
		t.Fatalf("publish audio: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	t.Cleanup(p.Stop)
	p.wg.Go(func() {
		Loop(ctx, opus, func(f media.Frame) error {
			p.mu.Lock()
			p.sent[string(f.Data)] = append(p.sent[string(f.Data)], time.Now())
			p.mu.Unlock()
			return writeTo(audio)(f)
		})
	})
	cam := c.Camera
	switch {
	case cam != nil:
	case c.Video:
		cam = &Camera{Width: 320, Height: 240}
		if cam.Frames, err = media.VP8(); err != nil {
			t.Fatal(err)
		}
	default:
		return p
	}
	p.VP8 = cam.Frames
	video, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if err != nil {
		t.Fatal(err)
	}
	p.VideoPub, err = r.LocalParticipant.PublishTrack(video, &lksdk.TrackPublicationOptions{
		Name: c.Prefix + "camera", Source: livekit.TrackSource_CAMERA, VideoWidth: cam.Width, VideoHeight: cam.Height})
	if err != nil {
		t.Fatalf("publish video: %v", err)
	}
	p.wg.Go(func() { Loop(ctx, p.VP8, writeTo(video)) })
	return p
}

// PublishSimulcast publishes the test pattern as "camera" in three simulcast layers, 160, 320
// and 640 pixels wide, each looped at its real pace until the test ends, whatever the server
// asks of the publisher.
func PublishSimulcast(t testing.TB, r *lksdk.Room) {
	t.Helper()
	tracks, clips := simulcastLayers(t)
	publishLayers(t, r, tracks)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range tracks {
		wg.Go(func() { Loop(ctx, clips[i], writeTo(tracks[i])) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// PublishDynacast publishes the same layers as PublishSimulcast through the SDK's own writer,
// which honours the server's SubscribedQualityUpdate as a browser does: a layer the server
// disabled is not written.
func PublishDynacast(t testing.TB, r *lksdk.Room) {
	t.Helper()
	tracks, clips := simulcastLayers(t)
	for i, tr := range tracks {
		if err := tr.StartWrite(&clipProvider{frames: clips[i]}, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, tr := range tracks {
			_ = tr.Close()
		}
	})
	publishLayers(t, r, tracks)
}

// simulcastLayers makes the three layers' tracks and the clips they loop.
func simulcastLayers(t testing.TB) ([]*lksdk.LocalTrack, [][]media.Frame) {
	t.Helper()
	layers := []struct {
		width   int
		quality livekit.VideoQuality
	}{{160, livekit.VideoQuality_LOW}, {320, livekit.VideoQuality_MEDIUM}, {640, livekit.VideoQuality_HIGH}}
	var tracks []*lksdk.LocalTrack
	var clips [][]media.Frame
	for _, l := range layers {
		frames, err := media.VP8Sized(l.width)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			lksdk.WithSimulcast("camera", &livekit.VideoLayer{Quality: l.quality, Width: uint32(l.width), Height: uint32(l.width * 3 / 4)}))
		if err != nil {
			t.Fatal(err)
		}
		tracks = append(tracks, tr)
		clips = append(clips, frames)
	}
	return tracks, clips
}

func publishLayers(t testing.TB, r *lksdk.Room, tracks []*lksdk.LocalTrack) {
	t.Helper()
	if _, err := r.LocalParticipant.PublishSimulcastTrack(tracks, &lksdk.TrackPublicationOptions{Name: "camera", Source: livekit.TrackSource_CAMERA}); err != nil {
		t.Fatalf("publish simulcast: %v", err)
	}
}

// clipProvider loops a clip for the SDK's own writer.
type clipProvider struct {
	frames []media.Frame
	next   int
}

func (c *clipProvider) NextSample(ctx context.Context) (pionmedia.Sample, error) {
	if err := ctx.Err(); err != nil {
		return pionmedia.Sample{}, err
	}
	f := c.frames[c.next%len(c.frames)]
	c.next++
	return pionmedia.Sample{Data: f.Data, Duration: f.Duration}, nil
}
func (c *clipProvider) OnBind() error   { return nil }
func (c *clipProvider) OnUnbind() error { return nil }
func (c *clipProvider) Close() error    { return nil }

// Stop ends the loops (the tracks stay published, silent).
func (p *Publisher) Stop() {
	p.cancel()
	p.wg.Wait()
}

// Sent says whether payload is one this publisher sent.
func (p *Publisher) Sent(payload []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sent[string(payload)]) > 0
}

// SentBefore returns the latest time payload was sent at or before at. The clip loops every
// 4 s, so a payload is sent many times: give at early enough to tell them apart.
func (p *Publisher) SentBefore(payload []byte, at time.Time) (time.Time, bool) {
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

// Loop writes frames at their real pace, over and over, until ctx ends. A write that fails
// (before the track is bound, or while reconnecting) is skipped: the loop goes on.
func Loop(ctx context.Context, frames []media.Frame, write func(media.Frame) error) {
	next := time.Now()
	for {
		for _, f := range frames {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(next)):
			}
			_ = write(f)
			next = next.Add(f.Duration)
		}
	}
}

// writeTo writes a frame as one sample of track.
func writeTo(track *lksdk.LocalTrack) func(media.Frame) error {
	return func(f media.Frame) error {
		return track.WriteSample(pionmedia.Sample{Data: f.Data, Duration: f.Duration}, nil)
	}
}
