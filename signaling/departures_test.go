package signaling_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// Departures on time: a remote member who leaves (the SDK's leave) is recorded as having left
// at once, without waiting for the grace; one whose connection is lost is recorded after the
// grace, as of the moment it was lost, which the attendance and the journal carry.
func TestDeparturesAreRecordedWhenTheyHappened(t *testing.T) {
	const resume, grace = 300 * time.Millisecond, 700 * time.Millisecond
	ts, j := startCouncilServer(t, func(c *signaling.Config) {
		c.ResumeWindow = resume
		c.DepartureGrace = grace
	})
	const room = "departs"
	chair, _ := openSession(t, ts, room, "fr-epci-visio")
	presence := func(seat int) string {
		return signalingtest.SeatPresence(must(t, ts, "GET", "/api/rooms/"+room+"/state", chair, nil), seat)
	}
	lastDeparture := func(seat int) (at, lostAt time.Time, reason string) {
		entries, err := j.Read(t.Context(), room, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			var d struct {
				At     time.Time `json:"at"`
				Seat   int       `json:"seat"`
				Reason string    `json:"reason"`
				LostAt time.Time `json:"lostAt"`
			}
			if e.Type == "member.departed" && json.Unmarshal(e.Data, &d) == nil && d.Seat == seat {
				at, lostAt, reason = d.At, d.LostAt, d.Reason
			}
		}
		return at, lostAt, reason
	}

	// Seat 4 leaves with the SDK's leave: recorded as left, not as a lost connection.
	laptop := ts.Join(t, room, "david", auth.RoleMember, 4, nil)
	signalingtest.Eventually(t, "seat 4 present from afar", 5*time.Second, func() bool { return presence(4) == "remote-unverified" })
	laptop.Disconnect()
	signalingtest.Eventually(t, "seat 4 recorded as departed", 5*time.Second, func() bool { return presence(4) == "absent" })
	if _, lostAt, reason := lastDeparture(4); reason != "left" || !lostAt.IsZero() {
		t.Errorf("seat 4's leave recorded as %q (lost at %v), want left", reason, lostAt)
	}

	// Seat 5's connection is cut: no leave, the socket just ends.
	ws, res, err := websocket.DefaultDialer.Dial(ts.WS+"/rtc?access_token="+ts.Token(t, room, "emma", auth.RoleMember, 5), nil)
	if err != nil {
		t.Fatalf("raw join: %v", err)
	}
	res.Body.Close()
	if _, _, err := ws.ReadMessage(); err != nil { // the JoinResponse
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "seat 5 present from afar", 5*time.Second, func() bool { return presence(5) == "remote-unverified" })
	cut := time.Now()
	_ = ws.UnderlyingConn().Close()
	signalingtest.Eventually(t, "seat 5 recorded as departed after the grace", 10*time.Second, func() bool { return presence(5) == "absent" })
	at, lostAt, reason := lastDeparture(5)
	if reason != "connection-lost" {
		t.Fatalf("seat 5's cut recorded as %q, want connection-lost", reason)
	}
	if d := lostAt.Sub(cut); d < -time.Second || d > time.Second {
		t.Errorf("seat 5's connection recorded as lost at %s, %s from the cut", lostAt.Format(time.StampMilli), d)
	}
	if at.Sub(lostAt) < resume+grace-100*time.Millisecond {
		t.Errorf("decided %s after the loss, want after the resume window and the grace (%s)", at.Sub(lostAt), resume+grace)
	}
}
