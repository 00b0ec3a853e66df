package signaling_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// An electronic vote with members in the chamber without a device, through the API: the clerk
// records one's ballot (journalled with the clerk as its author), a remote member's ballot
// cannot be recorded for them, and the chair's close is refused while a member present has not
// voted, naming them in the caller's language, until the chair confirms them; the state and the
// minutes then list them.
func TestElectronicVoteWithAChamberMemberRecordedByTheClerk(t *testing.T) {
	ts, j := startCouncilServer(t)
	room := "cc-chamber"
	chair, clerk := openSession(t, ts, room, "fr-epci-visio")
	api := "/api/rooms/" + room
	// Seats 1 to 3 in the chamber, 4 at home and verified; 5 absent.
	for _, seat := range []int{1, 2, 3} {
		must(t, ts, "POST", api+"/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "chamber"})
	}
	ts.Join(t, room, "david", auth.RoleMember, 4, nil)
	must(t, ts, "POST", api+"/attendance/verify", clerk, map[string]any{"seat": 4})
	must(t, ts, "POST", api+"/items", chair, map[string]any{"id": "1", "title": "Tarifs de l'eau"})
	must(t, ts, "POST", api+"/items/1/open", chair, nil)
	view := must(t, ts, "POST", api+"/votes", chair, map[string]any{"id": "1-1", "item": "1", "mode": "electronic"})
	inChamber := map[float64]bool{}
	for _, p := range view["pendingVoters"].([]any) {
		m := p.(map[string]any)
		inChamber[m["seat"].(float64)] = m["inChamber"] == true
	}
	if !inChamber[2] || !inChamber[3] || inChamber[4] || len(inChamber) != 4 {
		t.Fatalf("pending voters %v, want 1 to 3 in the chamber and 4 remote", view["pendingVoters"])
	}

	david := ts.Token(t, room, "david", auth.RoleMember, 4)
	must(t, ts, "POST", api+"/votes/1-1/ballots", chair, map[string]any{"choice": "for"}) // her own seat
	wantRefused(t, ts, "POST", api+"/votes/1-1/ballots", clerk, map[string]any{"seat": 4, "choice": "for"}, 403, "seat 4 takes part remotely")
	must(t, ts, "POST", api+"/votes/1-1/ballots", david, map[string]any{"choice": "against"})
	view = must(t, ts, "POST", api+"/votes/1-1/ballots", clerk, map[string]any{"seat": 2, "choice": "for"})
	wantRefused(t, ts, "POST", api+"/votes/1-1/ballots", clerk, map[string]any{"seat": 5, "choice": "for"}, 409, "seat 5 is neither present nor represented")
	wantRefused(t, ts, "POST", api+"/votes/1-1/ballots", chair, map[string]any{"seat": 2, "choice": "against"}, 409, "seat 2 has already voted")
	ballot := ballotIn(t, view, "1-1", 2)
	if ballot["keyed"] != true || ballot["recordedBy"].(map[string]any)["role"] != "clerk" || ballot["castBy"] != 2.0 {
		t.Fatalf("seat 2's ballot %v, want keyed by the clerk, cast by seat 2", ballot)
	}

	// Seat 3, in the chamber, has not answered: the close names Chloé, in French by default and
	// in English when asked.
	status, raw := ts.Call(t, "POST", api+"/votes/1-1/close", chair, nil)
	if msg := signalingtest.Object(raw)["error"]; status != 409 || !strings.Contains(msg.(string), "n'ont pas encore voté : Chloé Conseil (siège 3)") {
		t.Fatalf("close with a member who has not voted: %d %s, want 409 naming Chloé Conseil in French", status, raw)
	}
	wantRefused(t, ts, "POST", api+"/votes/1-1/close", chair, nil, 409, `vote "1-1": not voted yet: Chloé Conseil (seat 3)`, "nonVoters")
	wantRefused(t, ts, "POST", api+"/votes/1-1/close", chair, map[string]any{"nonVoters": []int{3, 4}}, 409, "the confirmation names Chloé Conseil (seat 3), David Elu (seat 4)")
	if v := must(t, ts, "GET", api+"/state", chair, nil); v["openVote"] != "1-1" {
		t.Fatalf("a refused close closed the vote: %v", v["openVote"])
	}
	view = must(t, ts, "POST", api+"/votes/1-1/close", chair, map[string]any{"nonVoters": []int{3}})
	closed := voteIn(t, view, "1-1")
	if nv, _ := closed["nonVoters"].([]any); len(nv) != 1 || nv[0] != 3.0 {
		t.Fatalf("closed vote %v, want non-voters [3]", closed)
	}
	if r := closed["result"].(map[string]any); r["for"] != 2.0 || r["against"] != 1.0 || r["adopted"] != true {
		t.Fatalf("result %v, want adopted 2 to 1", r)
	}

	// The journal: the ballot names the clerk and seat 2; the closing, seat 3 as not voting.
	entries, err := j.Read(t.Context(), room, 1)
	if err != nil {
		t.Fatal(err)
	}
	var keyed, closing bool
	for _, e := range entries {
		var ev struct {
			By        struct{ Role string }
			Seat      int
			CastBy    int
			NonVoters []int
		}
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			t.Fatal(err)
		}
		switch e.Type {
		case "ballot.cast":
			keyed = keyed || (ev.By.Role == "clerk" && ev.Seat == 2 && ev.CastBy == 2)
		case "vote.closed":
			closing = slices.Equal(ev.NonVoters, []int{3})
		}
	}
	if !keyed || !closing {
		t.Fatalf("journal: ballot keyed by the clerk %v, closing with seat 3 not voting %v", keyed, closing)
	}

	status, minutes := call(t, ts, "GET", api+"/minutes?format=md&lang=fr", clerk, nil)
	md, _ := minutes["raw"].(string)
	if status != 200 {
		t.Fatalf("minutes: %d %v", status, minutes)
	}
	for _, want := range []string{"**N'ont pas pris part au vote (1)** : Chloé Conseil", "**Bulletins enregistrés en salle par greffe (secrétariat de séance)** : Bruno Adjoint"} {
		if !strings.Contains(md, want) {
			t.Errorf("the minutes lack %q:\n%s", want, md)
		}
	}
}

func voteIn(t *testing.T, view map[string]any, id string) map[string]any {
	t.Helper()
	for _, v := range view["votes"].([]any) {
		if m := v.(map[string]any); m["id"] == id {
			return m
		}
	}
	t.Fatalf("no vote %q in %v", id, view["votes"])
	return nil
}

func ballotIn(t *testing.T, view map[string]any, vote string, seat float64) map[string]any {
	t.Helper()
	for _, b := range voteIn(t, view, vote)["ballots"].([]any) {
		if m := b.(map[string]any); m["seat"] == seat {
			return m
		}
	}
	t.Fatalf("no ballot for seat %v in vote %q", seat, vote)
	return nil
}
