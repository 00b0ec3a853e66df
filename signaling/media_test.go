package signaling

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
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
