package signaling_test

import (
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// A bleep that ends goes into the session's journal with the chair's identity, and so into
// the state and the minutes; one that runs, or in a room without a session, is not recorded.
func TestFinishedBleepsAreRecorded(t *testing.T) {
	ts, j := startCouncilServer(t, signalingtest.Programme(signaling.ProgrammeConfig{Broadcast: broadcast.Config{Delay: time.Second}}))

	join(t, ts, "bare", "alice", nil) // a room with a programme but no session
	bareChair := ts.Token(t, "bare", "anne", auth.RoleChair, 1)
	if status, out := call(t, ts, "POST", "/api/rooms/bare/bleep", bareChair, map[string]float64{"lastSeconds": 0.5}); status != 200 || out["recorded"] != false || out["recordError"] != nil {
		t.Errorf("bleep without a session: %d %v, want it done and not recorded", status, out)
	}

	chair, clerk := openSession(t, ts, "cc", "generic")
	join(t, ts, "cc", "alice", nil)
	if status, out := call(t, ts, "POST", "/api/rooms/cc/bleep", chair, map[string]bool{"on": true}); status != 200 || out["recorded"] != false {
		t.Fatalf("bleep on: %d %v, want it running, not yet recorded", status, out)
	}
	status, out := call(t, ts, "POST", "/api/rooms/cc/bleep", chair, map[string]bool{"on": false})
	if status != 200 || out["recorded"] != true {
		t.Fatalf("bleep off: %d %v, want the passage recorded", status, out)
	}
	bleep := out["bleep"].(map[string]any)

	entries, err := j.Read(t.Context(), "cc", 1)
	if err != nil {
		t.Fatal(err)
	}
	last := entries[len(entries)-1]
	if last.Type != "programme.bleeped" {
		t.Fatalf("last journal entry is %s, want programme.bleeped", last.Type)
	}
	ev, err := council.DecodeEvent(last.Type, last.Data)
	if err != nil {
		t.Fatal(err)
	}
	got := ev.(council.ProgrammeBleeped)
	from, _ := time.Parse(time.RFC3339Nano, bleep["from"].(string))
	to, _ := time.Parse(time.RFC3339Nano, bleep["to"].(string))
	if !got.From.Equal(from) || !got.To.Equal(to) || got.By.Identity != "anne" || got.By.Role != council.RoleChair || got.By.Seat != 1 {
		t.Errorf("journal: %v–%v by %+v; want %v–%v by anne, chair, seat 1", got.From, got.To, got.By, from, to)
	}
	state := must(t, ts, "GET", "/api/rooms/cc/state", clerk, nil)
	if bs, _ := state["bleeps"].([]any); len(bs) != 1 {
		t.Errorf("state bleeps %v, want the one passage", state["bleeps"])
	}
	_, minutes := call(t, ts, "GET", "/api/rooms/cc/minutes", clerk, nil)
	if md, _ := minutes["raw"].(string); !strings.Contains(md, "Diffusion publique interrompue de "+from.Local().Format("15:04:05")) {
		t.Errorf("minutes lack the bleep:\n%s", md)
	}

	// A bleep still running when the room closes ends with the room, and is recorded in the
	// name of the chair who started it.
	if status, out := call(t, ts, "POST", "/api/rooms/cc/bleep", chair, map[string]bool{"on": true}); status != 200 || out["changed"] != true {
		t.Fatalf("second bleep on: %d %v", status, out)
	}
	if _, ok := ts.Signaling.Room("cc"); !ok {
		t.Fatal("room cc is not open")
	}
	rs, ctx := signalingtest.RoomService(t, ts.HTTP.URL, ts.AdminToken(t, "cc"))
	closedAt := time.Now()
	if _, err := rs.DeleteRoom(ctx, &livekit.DeleteRoomRequest{Room: "cc"}); err != nil {
		t.Fatal(err)
	}
	var atClose council.ProgrammeBleeped
	signalingtest.Eventually(t, "the running bleep recorded at the room's close", 10*time.Second, func() bool {
		entries, err := j.Read(t.Context(), "cc", 1)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			if e.Type == "programme.bleeped" {
				n++
				if n == 2 {
					ev, err := council.DecodeEvent(e.Type, e.Data)
					if err != nil {
						t.Fatal(err)
					}
					atClose = ev.(council.ProgrammeBleeped)
				}
			}
		}
		return n == 2
	})
	if atClose.By.Identity != "anne" || atClose.To.Before(atClose.From) || atClose.To.Sub(closedAt).Abs() > 2*time.Second {
		t.Errorf("bleep at close: %v–%v by %+v; want it ended at the close (%v) by anne", atClose.From, atClose.To, atClose.By, closedAt)
	}
}
