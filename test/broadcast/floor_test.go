package broadcast

import (
	"context"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/ingeco/hemicycle/auth"
	bc "github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/test/media"
)

// memberTag ends every frame of the member's camera, so that the viewer can tell it from the
// chair's (a VP8 decoder ignores bytes after the frame's partitions).
const memberTag = 0xEE

// startTaggedCamera publishes the test pattern with memberTag appended to every frame, until
// stop is called; the track then stays published and unmuted, as a camera whose network was cut.
func startTaggedCamera(t *testing.T, r *lksdk.Room) (stop func()) {
	t.Helper()
	frames, err := media.VP8()
	if err != nil {
		t.Fatal(err)
	}
	cam, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.LocalParticipant.PublishTrack(cam, &lksdk.TrackPublicationOptions{Name: "camera", Source: livekit.TrackSource_CAMERA, VideoWidth: 320, VideoHeight: 240}); err != nil {
		t.Fatalf("publish the member's camera: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		signalingtest.Loop(ctx, frames, func(f media.Frame) error {
			tagged := append(append([]byte(nil), f.Data...), memberTag)
			return cam.WriteSample(pionmedia.Sample{Data: tagged, Duration: f.Duration}, nil)
		})
	}()
	return func() {
		cancel()
		<-done
	}
}

// startFloorSitting opens a sitting presided by the chair (seat 1, in the chamber, camera on)
// with a member (seat 2) at home whose tagged camera runs until stopMember, verified by the clerk.
func startFloorSitting(t *testing.T, room string, delay time.Duration) (s *signalingtest.Server, chairTok string, stopMember func()) {
	t.Helper()
	s = startServer(t, signaling.ProgrammeConfig{Broadcast: bc.Config{Delay: delay, KeyframeInterval: time.Second}}, withCouncil(t))
	chairTok = s.Token(t, room, "anne", auth.RoleChair, 1)
	clerkTok := s.Token(t, room, "greffe", auth.RoleClerk, 0)
	chair := s.Join(t, room, "anne", auth.RoleChair, 1, nil)
	publish(t, chair, true)
	must(t, s, "/api/rooms/"+room+"/session", clerkTok, map[string]any{
		"body":  map[string]string{"name": "Commune de Test", "kind": "commune", "profile": "generic"},
		"title": "Séance", "chair": 1,
		"rosterCsv": signalingtest.Roster(3),
	})
	must(t, s, "/api/rooms/"+room+"/attendance/arrival", clerkTok, map[string]any{"seat": 1, "place": "chamber"})
	member := s.Join(t, room, "bruno", auth.RoleMember, 2, nil)
	stopMember = startTaggedCamera(t, member)
	must(t, s, "/api/rooms/"+room+"/attendance/verify", clerkTok, map[string]any{"seat": 2})
	return s, chairTok, stopMember
}

// cameraFrames counts the complete frames of the chair's and the member's cameras that the
// viewer received from packet index from on, and returns the index to count from next time.
func cameraFrames(v *signalingtest.Receiver, from int) (chairs, members, last int) {
	pk := v.Packets(bc.TrackVideo)
	for _, g := range pk[min(from, len(pk)):] {
		if !g.Marker || len(g.Payload) < 20 { // the slate's frames are small
			continue
		}
		if g.Payload[len(g.Payload)-1] == memberTag {
			members++
		} else {
			chairs++
		}
	}
	return chairs, members, len(pk)
}

// TestProgrammeFollowsTheFloor: the programme shows the chair while nobody has the floor, the
// member the chair gives the floor to (from the member's keyframe, the delay after the grant),
// and the chair again once the floor is withdrawn.
func TestProgrammeFollowsTheFloor(t *testing.T) {
	const delay = time.Second
	const room = "floor"
	s, chairTok, stopMember := startFloorSitting(t, room, delay)
	defer stopMember()
	v := watch(t, s, room)
	whose := func(from int) (chairs, members, last int) { return cameraFrames(v, from) }
	signalingtest.Eventually(t, "the viewer sees the chair", 20*time.Second, func() bool {
		c, _, _ := whose(0)
		return c >= 15
	})
	if _, m, _ := whose(0); m > 0 {
		t.Errorf("the viewer saw %d frames of the member before the member had the floor", m)
	}

	_, _, mark := whose(0)
	granted := time.Now()
	must(t, s, "/api/rooms/"+room+"/floor/grant", chairTok, map[string]any{"seat": 2})
	signalingtest.Eventually(t, "the viewer sees the member who has the floor", 20*time.Second, func() bool {
		_, m, _ := whose(mark)
		return m >= 15
	})
	// The switch reached the viewer no earlier than the delay after the grant.
	pk := v.Packets(bc.TrackVideo)
	for _, g := range pk[mark:] {
		if g.Marker && len(g.Payload) >= 20 && g.Payload[len(g.Payload)-1] == memberTag {
			if d := g.At.Sub(granted); d < delay {
				t.Errorf("the member appeared %s after the grant, before the delay of %s", d, delay)
			} else {
				t.Logf("the member appeared on the programme %s after the floor was given (delay %s)", d, delay)
			}
			break
		}
	}

	_, _, mark = whose(0)
	must(t, s, "/api/rooms/"+room+"/floor/end", chairTok, nil)
	signalingtest.Eventually(t, "the viewer sees the chair again", 20*time.Second, func() bool {
		c, _, _ := whose(mark)
		return c >= 15
	})
	// After the switch back, the member's frames stop.
	time.Sleep(500 * time.Millisecond)
	_, _, mark = whose(0)
	time.Sleep(time.Second)
	if c, m, _ := whose(mark); m > 0 || c == 0 {
		t.Errorf("after the floor ended: %d chair frames and %d member frames, want the chair only", c, m)
	}
}

// TestStalledCameraLeavesTheProgramme: the floor holder's camera stops sending without being
// muted (its network cut); the programme goes back to the chair's camera instead of freezing.
func TestStalledCameraLeavesTheProgramme(t *testing.T) {
	const room = "stall"
	s, chairTok, stop := startFloorSitting(t, room, time.Second)
	defer stop()
	must(t, s, "/api/rooms/"+room+"/floor/grant", chairTok, map[string]any{"seat": 2})
	v := watch(t, s, room)
	frames := func(from int) (chairs, members, last int) { return cameraFrames(v, from) }
	signalingtest.Eventually(t, "the viewer sees the member who has the floor", 20*time.Second, func() bool {
		_, m, _ := frames(0)
		return m >= 15
	})
	stop() // still published, still unmuted, nothing more arrives
	_, _, mark := frames(0)
	signalingtest.Eventually(t, "the viewer sees the chair once the member's camera stalled", 20*time.Second, func() bool {
		c, _, _ := frames(mark)
		return c >= 15
	})
}
