package signaling_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

func TestPublishAndSubscribeRealMedia(t *testing.T) {
	ts := startServer(t)
	alice := join(t, ts, "council", "alice", nil)
	pub := publish(t, alice, true)

	bobRx, cb := signalingtest.NewReceiver()
	join(t, ts, "council", "bob", cb)

	signalingtest.Eventually(t, "bob receives audio and video from alice", 15*time.Second, func() bool {
		return bobRx.Audio() >= 50 && bobRx.Video() >= 30
	})
	signalingtest.Eventually(t, "bob receives a VP8 keyframe", 10*time.Second, func() bool { return bobRx.Keyframes() > 0 })
	if n := bobRx.Foreign(pub); n != 0 {
		t.Errorf("%d Opus payloads at the subscriber differ from every payload sent (want byte-identical)", n)
	}
	if bobRx.Matched(pub) < 50 {
		t.Errorf("only %d Opus payloads matched those sent", bobRx.Matched(pub))
	}

	// A late joiner gets the tracks already published.
	carolRx, cb2 := signalingtest.NewReceiver()
	join(t, ts, "council", "carol", cb2)
	signalingtest.Eventually(t, "carol, joining late, receives alice's media", 15*time.Second, func() bool {
		return carolRx.Audio() >= 25 && carolRx.Video() >= 15
	})
}

func TestSimulcastLayerFollowsTheSubscribersWish(t *testing.T) {
	ts := startServer(t)
	bobRx := simulcastToBob(t, ts, signalingtest.PublishSimulcast)
	for _, want := range []struct {
		q     livekit.VideoQuality
		width int
	}{{livekit.VideoQuality_LOW, 160}, {livekit.VideoQuality_MEDIUM, 320}, {livekit.VideoQuality_HIGH, 640}} {
		if err := bobRx.Publication("camera").SetVideoQuality(want.q); err != nil {
			t.Fatal(err)
		}
		signalingtest.Eventually(t, fmt.Sprintf("bob switched to the %d-wide layer", want.width), 10*time.Second, func() bool { return bobRx.KeyframeWidth() == want.width })
	}
}

func TestExplicitSubscriptionWithoutAutoSubscribe(t *testing.T) {
	ts := startServer(t)
	alice := join(t, ts, "r", "alice", nil)
	pubd := publish(t, alice, false)
	bobRx, cb := signalingtest.NewReceiver()
	var pub atomic.Pointer[lksdk.RemoteTrackPublication]
	cb.OnTrackPublished = func(p *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) { pub.Store(p) }
	bob := join(t, ts, "r", "bob", cb, lksdk.WithAutoSubscribe(false))
	signalingtest.Eventually(t, "bob learns of alice's track", 5*time.Second, func() bool {
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
	if n := bobRx.Audio(); n != 0 {
		t.Fatalf("bob received %d packets without subscribing", n)
	}
	if err := pub.Load().SetSubscribed(true); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "bob receives alice's audio once subscribed", 10*time.Second, func() bool { return bobRx.Matched(pubd) > 20 })
	if err := pub.Load().SetSubscribed(false); err != nil {
		t.Fatal(err)
	}
	if got := audioAfterSettling(bobRx); got > 0 {
		t.Errorf("%d packets after unsubscribing", got)
	}
}
