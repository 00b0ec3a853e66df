package durability

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// TestServerBinary builds cmd/hemicycle once and runs it as a child process: the ballots must
// survive SIGKILL, and the walkthrough must run as written.
func TestServerBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin := signalingtest.Binary(t)
	t.Run("acknowledged ballots survive SIGKILL", func(t *testing.T) { killAfterBallots(t, bin) })
	t.Run("ballots acknowledged while others are cast survive SIGKILL", func(t *testing.T) { killWhileCasting(t, bin) })
	t.Run("the walkthrough runs as written", func(t *testing.T) { runWalkthrough(t, bin) })
}

// killAfterBallots holds a hybrid sitting up to a roll-call vote, has every ballot
// acknowledged, kills the server and checks that the restarted server holds them all.
func killAfterBallots(t *testing.T, bin string) {
	data := t.TempDir()
	const room = "durability-roll-call"
	journal := filepath.Join(data, "journal", room+".jsonl")
	srv := startServer(t, bin, data)
	c := newClient(room)
	chair := keys.Token(t, room, "anne", auth.RoleChair, 1)
	clerk := keys.Token(t, room, "greffe", auth.RoleClerk, 0)
	member := func(seat int) string {
		return keys.Token(t, room, fmt.Sprintf("membre-%d", seat), auth.RoleMember, seat)
	}

	c.must(t, srv, "POST", "/session", clerk, map[string]any{
		"body":  map[string]string{"name": "Conseil communautaire d'essai", "kind": "epci", "profile": "fr-epci-visio"},
		"title": "Séance d'essai", "chair": 1, "rosterCsv": roster(9),
	})
	for seat := 1; seat <= 4; seat++ {
		c.must(t, srv, "POST", "/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "chamber"})
	}
	for seat := 5; seat <= 7; seat++ {
		c.must(t, srv, "POST", "/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "remote"})
		c.must(t, srv, "POST", "/attendance/verify", clerk, map[string]any{"seat": seat})
	}
	c.must(t, srv, "POST", "/proxies", clerk, map[string]any{"giver": 8, "holder": 2})
	c.must(t, srv, "POST", "/items", chair, map[string]any{"id": "1", "title": "Budget annexe"})
	c.must(t, srv, "POST", "/items/1/open", chair, nil)
	c.must(t, srv, "POST", "/votes", chair, map[string]any{"id": "1-1", "item": "1", "mode": "roll-call"})

	// Remote members vote for themselves, seat 2 for itself and for seat 8 by proxy, the chair
	// records the chamber's answers to the roll call. Each ballot is acknowledged with 200.
	acked := map[int]string{}
	for _, b := range []struct {
		tok    string
		seat   int
		choice string
	}{
		{member(5), 5, "for"}, {member(6), 6, "against"}, {member(7), 7, "abstain"},
		{member(2), 2, "for"}, {member(2), 8, "for"},
		{chair, 1, "for"}, {chair, 3, "not-voting"}, {chair, 4, "against"},
	} {
		c.must(t, srv, "POST", "/votes/1-1/ballots", b.tok, map[string]any{"seat": b.seat, "choice": b.choice})
		acked[b.seat] = b.choice
	}

	kill(t, srv)

	// The journal as the kill left it holds every ballot and verifies: nothing was being
	// written when the server died.
	if got := journalBallots(t, journal, "1-1"); !maps.Equal(got, acked) {
		t.Fatalf("journal after SIGKILL holds ballots %s, acknowledged %s", keyed(got), keyed(acked))
	}
	if out, err := verifyJournal(t, bin, journal); err != nil || !strings.Contains(out, "hash chain intact") {
		t.Fatalf("hemicycle journal verify after SIGKILL: %v\n%s", err, out)
	}

	srv = startServer(t, bin, data)
	st := c.state(t, srv, chair)
	if got := ballotsIn(t, st, "1-1"); !maps.Equal(got, acked) {
		t.Fatalf("restarted state holds ballots %s, acknowledged %s", keyed(got), keyed(acked))
	}
	if st.OpenVote != "1-1" {
		t.Errorf("open vote after restart: %q, want 1-1", st.OpenVote)
	}
	presence := map[int]string{}
	for _, s := range st.Seats {
		presence[s.Seat] = s.Presence
	}
	for seat, want := range map[int]string{1: "chamber", 4: "chamber", 5: "remote", 7: "remote", 8: "represented", 9: "absent"} {
		if presence[seat] != want {
			t.Errorf("seat %d is %q after restart, want %q", seat, presence[seat], want)
		}
	}

	// The restored state knows who voted: a second ballot is refused as such.
	status, out, err := c.call(srv, "POST", "/votes/1-1/ballots", member(6), map[string]any{"choice": "for"})
	if err != nil || status != 409 || !strings.Contains(string(out), "already voted") {
		t.Errorf("second ballot of seat 6 after restart: %d %s %v, want 409 already voted", status, out, err)
	}
	// And the sitting goes on: the vote closes on the acknowledged ballots.
	var closed stateView
	if err := json.Unmarshal(c.must(t, srv, "POST", "/votes/1-1/close", chair, nil), &closed); err != nil {
		t.Fatal(err)
	}
	r := closed.Votes[0].Result
	if r == nil || r.For != 4 || r.Against != 2 || r.Abstain != 1 || !r.Adopted {
		t.Errorf("result after restart %+v, want adopted 4 for, 2 against, 1 abstention", r)
	}
	if out, err := verifyJournal(t, bin, journal); err != nil || !strings.Contains(out, "hash chain intact") {
		t.Fatalf("hemicycle journal verify after restart: %v\n%s", err, out)
	}
}

// killWhileCasting has many members vote at once and kills the server while their ballots
// are still arriving: every ballot that got a 200 must be there after the restart, and a
// ballot whose answer was lost is either recorded whole or not at all.
func killWhileCasting(t *testing.T, bin string) {
	const (
		seats     = 240
		workers   = 6
		killAfter = 40 // acknowledgements before the kill; most ballots are still to come
		room      = "durability-concurrent"
	)
	data := t.TempDir()
	journal := filepath.Join(data, "journal", room+".jsonl")
	srv := startServer(t, bin, data)
	c := newClient(room)
	chair := keys.Token(t, room, "president", auth.RoleChair, 1)
	clerk := keys.Token(t, room, "greffe", auth.RoleClerk, 0)
	c.must(t, srv, "POST", "/session", clerk, map[string]any{
		"body":  map[string]string{"name": "Conseil municipal d'essai", "kind": "commune", "profile": "fr-commune"},
		"title": "Séance d'essai", "chair": 1, "rosterCsv": roster(seats),
	})
	for seat := 1; seat <= seats; seat++ {
		c.must(t, srv, "POST", "/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "chamber"})
	}
	c.must(t, srv, "POST", "/items", chair, map[string]any{"id": "1", "title": "Compte administratif"})
	c.must(t, srv, "POST", "/items/1/open", chair, nil)
	c.must(t, srv, "POST", "/votes", chair, map[string]any{"id": "1-1", "item": "1", "mode": "electronic"})
	tokens := make([]string, seats+1)
	for seat := 1; seat <= seats; seat++ {
		tokens[seat] = keys.Token(t, room, fmt.Sprintf("membre-%d", seat), auth.RoleMember, seat)
	}
	choices := []string{"for", "against", "abstain"}

	var (
		mu       sync.Mutex
		acked    = map[int]string{} // answered 200
		inFlight = map[int]string{} // sent, no answer: the server died under it
		refused  = map[int]string{} // answered with an error
		killNow  = make(chan struct{})
		once     sync.Once
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for seat := w + 1; seat <= seats; seat += workers {
				choice := choices[seat%len(choices)]
				status, out, err := c.call(srv, "POST", "/votes/1-1/ballots", tokens[seat], map[string]any{"choice": choice})
				mu.Lock()
				switch {
				case err != nil:
					inFlight[seat] = choice
					mu.Unlock()
					return // the server is gone; this member's terminal shows an error
				case status == 200:
					acked[seat] = choice
					if len(acked) == killAfter {
						once.Do(func() { close(killNow) })
					}
				default:
					refused[seat] = fmt.Sprintf("%d %s", status, out)
				}
				mu.Unlock()
			}
		})
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-killNow:
		kill(t, srv) // the other members go on voting meanwhile
	case <-allDone:
		t.Fatalf("casting ended before %d acknowledgements; refused: %v", killAfter, refused)
	}
	<-allDone

	if len(refused) > 0 {
		t.Errorf("ballots refused while the server was up: %v", refused)
	}
	if len(inFlight) == 0 {
		t.Fatal("no member lost their answer: the kill did not cut the casting short")
	}
	// As the kill left it, the journal verifies, except perhaps for a last line whose
	// write was cut (never acknowledged).
	if out, err := verifyJournal(t, bin, journal); err != nil && !strings.Contains(out, "incomplete last entry") {
		t.Fatalf("hemicycle journal verify after SIGKILL: %v\n%s", err, out)
	}

	srv = startServer(t, bin, data)
	got := ballotsIn(t, c.state(t, srv, chair), "1-1")
	for seat, choice := range acked {
		if got[seat] != choice {
			t.Errorf("seat %d: acknowledged %q, found %q after restart", seat, choice, got[seat])
		}
	}
	recordedInFlight := 0
	for seat, choice := range got {
		switch {
		case acked[seat] == choice:
		case inFlight[seat] == choice:
			recordedInFlight++
		default:
			t.Errorf("seat %d holds %q after restart, which nobody cast", seat, choice)
		}
	}
	if jb := journalBallots(t, journal, "1-1"); !maps.Equal(jb, got) {
		t.Errorf("journal holds ballots %s, the restarted state %s", keyed(jb), keyed(got))
	}
	if out, err := verifyJournal(t, bin, journal); err != nil || !strings.Contains(out, "hash chain intact") {
		t.Fatalf("hemicycle journal verify after restart: %v\n%s", err, out)
	}

	// A member whose answer was lost tries again: the ballot is taken once, never twice.
	for seat, choice := range inFlight {
		status, out, err := c.call(srv, "POST", "/votes/1-1/ballots", tokens[seat], map[string]any{"choice": choice})
		switch {
		case err != nil:
			t.Fatalf("retry of seat %d: %v", seat, err)
		case got[seat] != "" && (status != 409 || !strings.Contains(string(out), "already voted")):
			t.Errorf("retry of seat %d, recorded before the kill: %d %s, want 409 already voted", seat, status, out)
		case got[seat] == "" && status != 200:
			t.Errorf("retry of seat %d, lost with the kill: %d %s, want 200", seat, status, out)
		}
	}
	t.Logf("%d ballots acknowledged before SIGKILL; %d in flight at the kill, %d of them recorded; %d seats not reached",
		len(acked), len(inFlight), recordedInFlight, seats-len(acked)-len(inFlight))
}
