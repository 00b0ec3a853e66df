package signaling

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/ingeco/hemicycle/test/media"
)

const (
	livekitMic    = livekit.TrackSource_MICROPHONE
	livekitCamera = livekit.TrackSource_CAMERA
)

// receiver counts what a subscriber really gets, per track kind.
type receiver struct {
	audioPackets, videoPackets atomic.Int64
	opusMatched, opusForeign   atomic.Int64
	vp8Keyframes               atomic.Int64
	lastKeyWidth               atomic.Int64 // width of the last VP8 keyframe received
	from                       atomic.Pointer[publisher]

	mu     sync.Mutex
	muted  map[string]bool // track name -> muted, as seen by this client
	tracks map[string]*webrtc.TrackRemote
}

func newReceiver(from *publisher) (*receiver, *lksdk.RoomCallback) {
	rc := &receiver{muted: map[string]bool{}, tracks: map[string]*webrtc.TrackRemote{}}
	rc.from.Store(from)
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		rc.mu.Lock()
		rc.tracks[pub.Name()] = track
		rc.mu.Unlock()
		go rc.read(track)
	}
	cb.OnTrackMuted = func(pub lksdk.TrackPublication, _ lksdk.Participant) { rc.setMuted(pub.Name(), true) }
	cb.OnTrackUnmuted = func(pub lksdk.TrackPublication, _ lksdk.Participant) { rc.setMuted(pub.Name(), false) }
	return rc, cb
}

func (rc *receiver) setMuted(name string, m bool) {
	rc.mu.Lock()
	rc.muted[name] = m
	rc.mu.Unlock()
}

func (rc *receiver) isMuted(name string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.muted[name]
}

func (rc *receiver) read(track *webrtc.TrackRemote) {
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		switch track.Kind() {
		case webrtc.RTPCodecTypeAudio:
			rc.audioPackets.Add(1)
			if from := rc.from.Load(); from != nil && len(pkt.Payload) > 0 {
				if from.sent(pkt.Payload) {
					rc.opusMatched.Add(1)
				} else {
					rc.opusForeign.Add(1)
				}
			}
		case webrtc.RTPCodecTypeVideo:
			rc.videoPackets.Add(1)
			var vp8 codecs.VP8Packet
			if _, err := vp8.Unmarshal(pkt.Payload); err == nil && vp8.S == 1 && vp8.PID == 0 && len(vp8.Payload) > 0 && vp8.Payload[0]&1 == 0 {
				rc.vp8Keyframes.Add(1)
				rc.lastKeyWidth.Store(int64(media.KeyframeWidth(vp8.Payload)))
			}
		}
	}
}

func TestPublishAndSubscribeRealMedia(t *testing.T) {
	ts := startServer(t)
	alice := ts.join(t, "council", "alice", nil)
	pub := publish(t, alice, true)

	bobRx, cb := newReceiver(pub)
	ts.join(t, "council", "bob", cb)

	eventually(t, "bob receives audio and video from alice", 15*time.Second, func() bool {
		return bobRx.audioPackets.Load() >= 50 && bobRx.videoPackets.Load() >= 30
	})
	eventually(t, "bob receives a VP8 keyframe", 10*time.Second, func() bool { return bobRx.vp8Keyframes.Load() > 0 })
	if n := bobRx.opusForeign.Load(); n != 0 {
		t.Errorf("%d Opus payloads at the subscriber differ from every payload sent (want byte-identical)", n)
	}
	if bobRx.opusMatched.Load() < 50 {
		t.Errorf("only %d Opus payloads matched those sent", bobRx.opusMatched.Load())
	}

	// A late joiner gets the tracks already published.
	carolRx, cb2 := newReceiver(pub)
	ts.join(t, "council", "carol", cb2)
	eventually(t, "carol, joining late, receives alice's media", 15*time.Second, func() bool {
		return carolRx.audioPackets.Load() >= 25 && carolRx.videoPackets.Load() >= 15
	})
}

func TestSimulcastLayerFollowsTheSubscribersWish(t *testing.T) {
	ts := startServer(t)
	alice := ts.join(t, "r", "alice", nil)
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
	if _, err := alice.LocalParticipant.PublishSimulcastTrack(tracks, &lksdk.TrackPublicationOptions{Name: "camera", Source: livekitCamera}); err != nil {
		t.Fatalf("publish simulcast: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range tracks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx, clips[i], func(f media.Frame) error {
				return tracks[i].WriteSample(pionmedia.Sample{Data: f.Data, Duration: f.Duration}, nil)
			})
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	var pub atomic.Pointer[lksdk.RemoteTrackPublication]
	bobRx, cb := newReceiver(nil)
	sub := cb.OnTrackSubscribed
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, p *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		pub.Store(p)
		sub(track, p, rp)
	}
	ts.join(t, "r", "bob", cb)
	eventually(t, "bob receives the top layer (640 wide)", 15*time.Second, func() bool { return bobRx.lastKeyWidth.Load() == 640 })
	for _, want := range []struct {
		q     livekit.VideoQuality
		width int64
	}{{livekit.VideoQuality_LOW, 160}, {livekit.VideoQuality_MEDIUM, 320}, {livekit.VideoQuality_HIGH, 640}} {
		if err := pub.Load().SetVideoQuality(want.q); err != nil {
			t.Fatal(err)
		}
		eventually(t, fmt.Sprintf("bob switched to the %d-wide layer", want.width), 10*time.Second, func() bool { return bobRx.lastKeyWidth.Load() == want.width })
	}
}

func TestExplicitSubscriptionWithoutAutoSubscribe(t *testing.T) {
	ts := startServer(t)
	alice := ts.join(t, "r", "alice", nil)
	pubd := publish(t, alice, false)
	bobRx, cb := newReceiver(pubd)
	var pub atomic.Pointer[lksdk.RemoteTrackPublication]
	cb.OnTrackPublished = func(p *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) { pub.Store(p) }
	bob := ts.join(t, "r", "bob", cb, lksdk.WithAutoSubscribe(false))
	eventually(t, "bob learns of alice's track", 5*time.Second, func() bool {
		if rp := bob.GetParticipantByIdentity("alice"); rp != nil {
			for _, tp := range rp.TrackPublications() {
				if p, ok := tp.(*lksdk.RemoteTrackPublication); ok {
					pub.Store(p)
				}
			}
		}
		return pub.Load() != nil
	})
	time.Sleep(500 * time.Millisecond)
	if n := bobRx.audioPackets.Load(); n != 0 {
		t.Fatalf("bob received %d packets without subscribing", n)
	}
	if err := pub.Load().SetSubscribed(true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob receives alice's audio once subscribed", 10*time.Second, func() bool { return bobRx.opusMatched.Load() > 20 })
	if err := pub.Load().SetSubscribed(false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	before := bobRx.audioPackets.Load()
	time.Sleep(500 * time.Millisecond)
	if got := bobRx.audioPackets.Load() - before; got > 0 {
		t.Errorf("%d packets after unsubscribing", got)
	}
}
