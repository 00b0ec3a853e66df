package broadcast

import (
	"testing"
	"time"

	"github.com/ingeco/hemicycle/auth"
	bc "github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// A closed-door sitting (huis clos, CGCT L2121-18) takes the chamber off the public programme:
// from the delay after the vote the viewer gets neither the chair's pictures nor the chair's
// sound, only the slate and silence; from the delay after its end the chair is on air again.
// HLS, RTMP and the recording are fed by the same programme.
func TestClosedDoorTakesTheChamberOffTheProgramme(t *testing.T) {
	const delay = time.Second
	const room = "huis-clos"
	s := startServer(t, signaling.ProgrammeConfig{Broadcast: bc.Config{Delay: delay, KeyframeInterval: time.Second}}, withCouncil(t))
	chairTok := s.Token(t, room, "anne", auth.RoleChair, 1)
	clerkTok := s.Token(t, room, "greffe", auth.RoleClerk, 0)
	chair := s.Join(t, room, "anne", auth.RoleChair, 1, nil)
	pub := publish(t, chair, false) // the tone, whose packets the viewer's are matched with
	stopCamera := startTaggedCamera(t, chair)
	defer stopCamera()
	must(t, s, "/api/rooms/"+room+"/session", clerkTok, map[string]any{
		"body":  map[string]string{"name": "Commune de Test", "kind": "commune", "profile": "generic"},
		"title": "Séance", "chair": 1, "rosterCsv": signalingtest.Roster(3),
	})
	for seat := 1; seat <= 2; seat++ {
		must(t, s, "/api/rooms/"+room+"/attendance/arrival", clerkTok, map[string]any{"seat": seat, "place": "chamber"})
	}
	v := watch(t, s, room)
	chairFrames := func(from int) (int, int) { // the tagged camera's complete frames from packet from on
		_, tagged, last := cameraFrames(v, from)
		return tagged, last
	}
	chairSound := func(from int) (int, int) { // the viewer's audio packets that are the chair's
		pk := v.Packets(bc.TrackAudioPrefix + "0")
		n := 0
		for _, g := range pk[min(from, len(pk)):] {
			if _, ok := pub.SentBefore(g.Payload, g.At); ok {
				n++
			}
		}
		return n, len(pk)
	}
	signalingtest.Eventually(t, "the viewer sees and hears the chair", 20*time.Second, func() bool {
		c, _ := chairFrames(0)
		a, _ := chairSound(0)
		return c >= 15 && a >= 25
	})

	var state struct {
		Session struct {
			ClosedDoor bool `json:"closedDoor"`
		} `json:"session"`
	}
	if code := post(t, s, "/api/rooms/"+room+"/closed-door", chairTok, map[string]any{"for": 2, "against": 0}, &state); code != 200 || !state.Session.ClosedDoor {
		t.Fatalf("the closed-door vote: status %d, closed door %v", code, state.Session.ClosedDoor)
	}
	time.Sleep(delay + time.Second) // what went out before the vote has left the delay line
	_, frameMark := chairFrames(0)
	_, audioMark := chairSound(0)
	time.Sleep(3 * time.Second)
	if c, _ := chairFrames(frameMark); c > 0 {
		t.Errorf("the viewer got %d frames of the chair's camera during the closed-door passage", c)
	}
	if a, _ := chairSound(audioMark); a > 0 {
		t.Errorf("the viewer got %d of the chair's audio packets during the closed-door passage", a)
	}
	if got := len(v.Packets(bc.TrackVideo)) - frameMark; got == 0 {
		t.Error("the viewer got no picture at all (the slate) during the closed-door passage")
	}

	must(t, s, "/api/rooms/"+room+"/closed-door/end", chairTok, nil)
	_, frameMark = chairFrames(0)
	_, audioMark = chairSound(0)
	signalingtest.Eventually(t, "the chair on air again after the closed-door passage", 20*time.Second, func() bool {
		c, _ := chairFrames(frameMark)
		a, _ := chairSound(audioMark)
		return c >= 15 && a >= 25
	})
}
