package signaling_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/test/media"
)

// clipProvider loops a clip for the SDK's own writer, which honours the server's
// SubscribedQualityUpdate (a disabled layer is not written).
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

// TestDynacastStopsTheLayersNobodyReceives: when the only subscriber of a simulcast camera
// wants its lowest layer, the publisher (the LiveKit Go SDK) is told with a
// SubscribedQualityUpdate and stops sending the two others; they come back when it wants them.
func TestDynacastStopsTheLayersNobodyReceives(t *testing.T) {
	ts := startServer(t)
	alice := join(t, ts, "r", "alice", nil)
	var tracks []*lksdk.LocalTrack
	for _, l := range []struct {
		width   int
		quality livekit.VideoQuality
	}{{160, livekit.VideoQuality_LOW}, {320, livekit.VideoQuality_MEDIUM}, {640, livekit.VideoQuality_HIGH}} {
		frames, err := media.VP8Sized(l.width)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			lksdk.WithSimulcast("camera", &livekit.VideoLayer{Quality: l.quality, Width: uint32(l.width), Height: uint32(l.width * 3 / 4)}))
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.StartWrite(&clipProvider{frames: frames}, nil); err != nil {
			t.Fatal(err)
		}
		tracks = append(tracks, tr)
	}
	t.Cleanup(func() {
		for _, tr := range tracks {
			_ = tr.Close()
		}
	})
	if _, err := alice.LocalParticipant.PublishSimulcastTrack(tracks, &lksdk.TrackPublicationOptions{Name: "camera", Source: livekit.TrackSource_CAMERA}); err != nil {
		t.Fatalf("publish simulcast: %v", err)
	}
	var pub atomic.Pointer[lksdk.RemoteTrackPublication]
	bobRx, cb := signalingtest.NewReceiver()
	sub := cb.OnTrackSubscribed
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, p *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		pub.Store(p)
		sub(track, p, rp)
	}
	join(t, ts, "r", "bob", cb)
	signalingtest.Eventually(t, "bob receives the top layer (640 wide)", 15*time.Second, func() bool { return bobRx.KeyframeWidth() == 640 })
	live := func() []string {
		r, ok := ts.Signaling.Room("r")
		if !ok {
			return nil
		}
		return r.LiveVideoLayers()
	}
	if got := live(); len(got) != 3 {
		t.Fatalf("live layers %v, want all three while bob takes the top one", got)
	}
	if err := pub.Load().SetVideoQuality(livekit.VideoQuality_LOW); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "alice stops the layers nobody receives", 10*time.Second, func() bool { return slices.Equal(live(), []string{"q"}) })
	if err := pub.Load().SetVideoQuality(livekit.VideoQuality_HIGH); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "alice sends every layer again, and bob gets the top one", 10*time.Second, func() bool {
		return len(live()) == 3 && bobRx.KeyframeWidth() == 640
	})
	t.Log(fmt.Sprint("live layers at the end: ", live()))
}
