package signaling_test

import (
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// commune opens a sitting of the five-seat test council under fr-commune, every member in the
// chamber, and returns the tokens: the mayor's chair token (seat 1), the clerk's, and a member
// token per seat.
func commune(t *testing.T, ts *signalingtest.Server, room string) (mayor, clerk string, members map[int]string) {
	t.Helper()
	mayor = ts.Token(t, room, "anne", auth.RoleChair, 1)
	clerk = ts.Token(t, room, "greffe", auth.RoleClerk, 0)
	must(t, ts, "POST", "/api/rooms/"+room+"/session", clerk, map[string]any{
		"body":  map[string]string{"name": "Conseil municipal de Test", "kind": "commune", "profile": "fr-commune"},
		"title": "Séance du 7 décembre", "chair": 1, "secretary": 2, "rosterCsv": signalingtest.Roster(5),
	})
	members = map[int]string{}
	for seat := 1; seat <= 5; seat++ {
		must(t, ts, "POST", "/api/rooms/"+room+"/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "chamber"})
		members[seat] = ts.Token(t, room, "membre-"+string(rune('0'+seat)), auth.RoleMember, seat)
	}
	return mayor, clerk, members
}

// wantRefused asserts a refusal with the status and words of the reason.
func wantRefused(t *testing.T, ts *signalingtest.Server, method, path, token string, body any, status int, words ...string) {
	t.Helper()
	got, raw := ts.CallIn(t, "en", method, path, token, body)
	msg, _ := signalingtest.Object(raw)["error"].(string)
	if got != status {
		t.Fatalf("%s %s: %d %q, want %d", method, path, got, msg, status)
	}
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Fatalf("%s %s: reason %q does not say %q", method, path, msg, w)
		}
	}
}

// CGCT L2121-14: for the compte administratif the council elects its president, and the mayor
// withdraws for the vote. The chair's powers follow the sitting: the presiding member's token
// (a member's) opens and closes the vote, the mayor's chair token gets a member's rights only
// until the chair is handed back.
func TestChairPowersFollowTheSeatPresiding(t *testing.T) {
	ts, _ := startCouncilServer(t)
	const room = "ca"
	api := "/api/rooms/" + room
	mayor, clerk, members := commune(t, ts, room)
	must(t, ts, "POST", api+"/items", clerk, map[string]any{"id": "4", "title": "Compte administratif 2025", "kind": "compte-administratif"})

	wantRefused(t, ts, "POST", api+"/items/4/open", mayor, nil, 403, "seat 1, who opened the sitting, presides")
	// Seat 3 cannot use a chair's power before it presides.
	wantRefused(t, ts, "POST", api+"/items/4/open", members[3], nil, 403, "your token's role is member (seat 3) and seat 1 presides now")

	must(t, ts, "POST", api+"/chair", mayor, map[string]any{"seat": 3})
	refusedInBoth(t, ts, "POST", api+"/items/4/open", mayor, nil, 403, "your token's role is chair (seat 1) and seat 3 presides now",
		"POST /api/rooms/{room}/items/{item}/open est réservé à la présidence de séance ; votre jeton est celui du rôle président de séance (siège 1) et c’est le siège 3 qui préside")
	// The withdrawn mayor cannot take the chair back: the seat presiding hands it back.
	refusedInBoth(t, ts, "POST", api+"/chair", mayor, map[string]any{"seat": 1}, 403, "seat 3 presides now", "c’est le siège 3 qui préside")
	must(t, ts, "POST", api+"/items/4/open", members[3], nil)
	wantRefused(t, ts, "POST", api+"/votes", members[3], map[string]any{"id": "4-1", "item": "4", "mode": "roll-call"}, 409, "seat 1 must withdraw")
	must(t, ts, "POST", api+"/attendance/departure", clerk, map[string]any{"seat": 1, "reason": "withdrew"})
	must(t, ts, "POST", api+"/votes", members[3], map[string]any{"id": "4-1", "item": "4", "mode": "roll-call"})

	// The presiding member records the roll call's answers; the mayor's token cannot, nor vote.
	wantRefused(t, ts, "POST", api+"/votes/4-1/ballots", mayor, map[string]any{"seat": 2, "choice": "for"}, 403, "seat 1 may not vote for seat 2")
	wantRefused(t, ts, "POST", api+"/votes/4-1/ballots", mayor, map[string]any{"choice": "for"}, 409, "seat 1 is neither present nor represented")
	for seat, choice := range map[int]string{2: "for", 3: "for", 4: "for", 5: "against"} {
		must(t, ts, "POST", api+"/votes/4-1/ballots", members[3], map[string]any{"seat": seat, "choice": choice})
	}
	wantRefused(t, ts, "POST", api+"/votes/4-1/close", mayor, nil, 403, "seat 3 presides now")
	state := must(t, ts, "POST", api+"/votes/4-1/close", members[3], nil)
	vote := state["votes"].([]any)[0].(map[string]any)
	result := vote["result"].(map[string]any)
	if result["adopted"] != true || result["chair"].(float64) != 3 || result["for"].(float64) != 3 {
		t.Fatalf("result %v, want adopted 3 for, seat 3 presiding", result)
	}

	// Handed back, the mayor's token presides again and the member's no longer does.
	must(t, ts, "POST", api+"/attendance/arrival", clerk, map[string]any{"seat": 1, "place": "chamber"})
	must(t, ts, "POST", api+"/chair", members[3], map[string]any{"seat": 1})
	wantRefused(t, ts, "POST", api+"/items/4/close", members[3], nil, 403, "seat 1 presides now")
	must(t, ts, "POST", api+"/items/4/close", mayor, nil)
}
