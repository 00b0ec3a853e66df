package council_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/council"
)

// chamberSitting is a sitting of the EPCI profile (remote participation allowed, electronic
// votes then, one proxy per holder) with every way of taking part: seats 1 to 4 in the chamber
// (1 presides), 5 remote and verified, 6 absent with a proxy to 3 in the chamber, 7 absent
// with a proxy to 5 at a distance, 8 absent and not represented. An electronic vote "v" is
// open on item 1.
func chamberSitting(t *testing.T) *sitting {
	t.Helper()
	s := newSitting(t, "fr-epci-visio", 8)
	s.arrive(1, 4)
	s.connect(5, 5)
	s.do(council.GiveProxy{Header: s.clerk(), Giver: 6, Holder: 3})
	s.do(council.GiveProxy{Header: s.clerk(), Giver: 7, Holder: 5})
	s.addItem("1", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	s.do(council.OpenVote{Header: s.chair(), ID: "v", Item: "1", Mode: council.Electronic})
	return s
}

// In an electronic vote a member in the chamber without a device answers aloud, and the chair
// or the clerk records the ballot, the journal saying who did; a member at a distance votes
// from their own device, and a seat neither present nor represented has no ballot to record.
// A proxy holder votes in the giver's name (CGCT L2121-20 al. 1), so the proxy ballot of a
// holder in the chamber is recorded like the holder's own.
func TestChamberBallotsRecordedInAnElectronicVote(t *testing.T) {
	cases := []struct {
		name string
		by   func(s *sitting) council.Header
		seat int
		kind error // nil: recorded
		// castBy is who the ballot is cast by (the seat present); recorder is who keyed it.
		castBy   int
		recorder council.Role
	}{
		{"the clerk records a member in the chamber", (*sitting).clerk, 4, nil, 4, council.RoleClerk},
		{"the chair records a member in the chamber", (*sitting).chair, 2, nil, 2, council.RoleChair},
		{"the chair votes for her own seat", (*sitting).chair, 1, nil, 1, ""},
		{"L2121-20: the clerk records the proxy ballot of a holder in the chamber", (*sitting).clerk, 6, nil, 3, council.RoleClerk},
		{"a remote member votes themselves", (*sitting).clerk, 5, council.ErrNotEntitled, 0, ""},
		{"a proxy held at a distance is cast by its holder", (*sitting).chair, 7, council.ErrNotEntitled, 0, ""},
		{"a seat neither present nor represented", (*sitting).clerk, 8, council.ErrNotPresent, 0, ""},
		{"a member does not record a neighbour's ballot", func(s *sitting) council.Header { return s.member(3) }, 4, council.ErrNotEntitled, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := chamberSitting(t)
			h := c.by(s)
			cmd := council.CastBallot{Header: h, Vote: "v", Seat: c.seat, Choice: council.Against}
			if c.kind != nil {
				err := s.refused(cmd, c.kind)
				var re *council.RuleError
				if c.kind == council.ErrNotEntitled && c.seat == 5 && (!errors.As(err, &re) || !strings.Contains(re.In("fr"), "participe à distance")) {
					t.Fatalf("refusal %v has no French words for the remote member", err)
				}
				return
			}
			events := s.do(cmd)
			e, ok := events[0].(council.BallotCast)
			if !ok || len(events) != 1 {
				t.Fatalf("events %#v, want one ballot cast", events)
			}
			if e.By != h.By || e.Seat != c.seat || e.CastBy != c.castBy {
				t.Fatalf("journalled %+v, want seat %d cast by %d, recorded by %+v", e, c.seat, c.castBy, h.By)
			}
			v, _ := s.st.Vote("v")
			b, _ := ballotOf(v, c.seat)
			if c.recorder == "" {
				if b.Keyed || b.RecordedBy != (council.Actor{}) {
					t.Fatalf("ballot %+v is marked as keyed, but the member sent it", b)
				}
				return
			}
			if !b.Keyed || b.RecordedBy != h.By || b.RecordedBy.Role != c.recorder {
				t.Fatalf("ballot %+v, want keyed by %+v", b, h.By)
			}
			// The member has voted: their own device cannot vote again.
			s.refused(council.CastBallot{Header: s.member(c.castBy), Vote: "v", Seat: c.seat, Choice: council.For}, council.ErrAlreadyVoted)
			if _, err := council.Replay(s.p, s.roster, s.journal); err != nil {
				t.Fatalf("the journal does not replay: %v", err)
			}
		})
	}
}

// The open vote's pending voters say whose ballot may be recorded in the chamber.
func TestPendingVotersSayWhoIsInTheChamber(t *testing.T) {
	s := chamberSitting(t)
	got := map[int]bool{}
	for _, p := range s.st.PendingVoters() {
		got[p.Seat] = p.InChamber
	}
	want := map[int]bool{1: true, 2: true, 3: true, 4: true, 5: false, 6: true, 7: false}
	if len(got) != len(want) {
		t.Fatalf("pending voters %v, want %v", got, want)
	}
	for seat, in := range want {
		if g, ok := got[seat]; !ok || g != in {
			t.Fatalf("pending voters %v, want %v", got, want)
		}
	}
}

// Closing a vote while members present or represented have not voted is refused, naming them
// in English and in French, unless the closer confirms exactly those seats as taking no part;
// the vote then keeps them, and the minutes list them under the vote ("N'ont pas pris part au
// vote"). A ballot "not voting" is a vote cast as such (CGCT L2121-20: not a vote cast, but
// not a member left out), so its author is no non-voter.
func TestClosingAVoteConfirmsThePresentNonVoters(t *testing.T) {
	s := chamberSitting(t)
	s.ballots("v", council.For, 1, 2)
	s.do(council.CastBallot{Header: s.clerk(), Vote: "v", Seat: 3, Choice: council.Against})
	s.do(council.CastBallot{Header: s.clerk(), Vote: "v", Seat: 6, Choice: council.Against})
	s.ballots("v", council.NotVoting, 5)
	// Left: 4 in the chamber, and 7 whose holder 5 did not cast the proxy ballot.
	cases := []struct {
		name      string
		nonVoters []int
		en, fr    []string // what the refusal says
	}{
		{"no confirmation", nil,
			[]string{`vote "v"`, "not voted yet: Member 4 (seat 4), Member 7 (seat 7)", "nonVoters"},
			[]string{"n'ont pas encore voté : Member 4 (siège 4), Member 7 (siège 7)"}},
		{"one of the two", []int{4},
			[]string{"not voted yet: Member 4 (seat 4), Member 7 (seat 7); the confirmation names Member 4 (seat 4)"},
			[]string{"la confirmation nomme Member 4 (siège 4)"}},
		{"a seat that voted", []int{4, 5, 7},
			[]string{"the confirmation names Member 4 (seat 4), Member 5 (seat 5), Member 7 (seat 7)"},
			[]string{"n'ont pas encore voté : Member 4 (siège 4), Member 7 (siège 7) ;"}},
		{"an absent seat", []int{4, 7, 8}, []string{"Member 8 (seat 8)"}, []string{"Member 8 (siège 8)"}},
	}
	for _, c := range cases {
		err := s.refused(council.CloseVote{Header: s.chair(), Vote: "v", NonVoters: c.nonVoters}, council.ErrNotVoted)
		var re *council.RuleError
		if !errors.As(err, &re) {
			t.Fatalf("%s: refusal %T %v is no rule error", c.name, err, err)
		}
		for _, w := range c.en {
			if !strings.Contains(re.In("en"), w) {
				t.Errorf("%s: refusal %q lacks %q", c.name, re.In("en"), w)
			}
		}
		for _, w := range c.fr {
			if !strings.Contains(re.In("fr"), w) {
				t.Errorf("%s: French refusal %q lacks %q", c.name, re.In("fr"), w)
			}
		}
	}
	if v, _ := s.st.Vote("v"); !v.Open() {
		t.Fatal("a refused close closed the vote")
	}
	// The order the closer names them in does not matter, nor a seat named twice.
	events := s.do(council.CloseVote{Header: s.chair(), Vote: "v", NonVoters: []int{7, 4, 7}})
	closed := events[len(events)-1].(council.VoteClosed)
	if !slices.Equal(closed.NonVoters, []int{4, 7}) {
		t.Fatalf("journalled non-voters %v, want [4 7]", closed.NonVoters)
	}
	v, _ := s.st.Vote("v")
	if !slices.Equal(v.NonVoters, []int{4, 7}) || v.Result == nil {
		t.Fatalf("closed vote %+v, want non-voters [4 7] and a result", v)
	}
	if r := *v.Result; r.For != 2 || r.Against != 2 || r.NotVoting != 1 {
		t.Fatalf("result %+v, want 2 for, 2 against, 1 not voting: non-voters are no ballots", r)
	}
	if _, err := council.Replay(s.p, s.roster, s.journal); err != nil {
		t.Fatalf("the journal does not replay: %v", err)
	}
	s.do(council.CloseItem{Header: s.chair(), ID: "1"})
	wantLines(t, s.markdown(council.FrenchLabels()),
		"- **N'ont pas pris part au vote (2)** : Member 4, Member 7",
		"- **Ne prennent pas part au vote (1)** : Member 5",
		"- **Bulletins enregistrés en salle par clerk (secrétariat de séance)** : Member 3, Member 6 (pouvoir à Member 3)")
	wantLines(t, s.markdown(council.EnglishLabels()),
		"- **Present, did not vote (2)**: Member 4, Member 7",
		"- **Ballots recorded in the chamber by clerk (clerk)**: Member 3, Member 6 (proxy to Member 3)")
}

// A vote every member present or represented took part in closes without a confirmation, and
// one naming somebody is refused; so is a stale confirmation after the member voted. The
// minutes then list no non-voter. A secret ballot, counted on paper, knows no names to confirm.
func TestClosingAVoteWhenEveryoneVoted(t *testing.T) {
	s := newSitting(t, "fr-commune", 5)
	s.arrive(1, 4)
	s.addItem("1", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	s.do(council.OpenVote{Header: s.chair(), ID: "v", Item: "1", Mode: council.ShowOfHands})
	for seat := 1; seat <= 3; seat++ {
		s.do(council.CastBallot{Header: s.chair(), Vote: "v", Seat: seat, Choice: council.For})
	}
	s.refused(council.CloseVote{Header: s.chair(), Vote: "v"}, council.ErrNotVoted)
	s.do(council.CastBallot{Header: s.chair(), Vote: "v", Seat: 4, Choice: council.Abstain})
	err := s.refused(council.CloseVote{Header: s.chair(), Vote: "v", NonVoters: []int{4}}, council.ErrNotVoted)
	if !strings.Contains(err.Error(), "every member present or represented has voted") {
		t.Fatalf("refusal %q", err)
	}
	s.do(council.CloseVote{Header: s.chair(), Vote: "v"})
	if v, _ := s.st.Vote("v"); len(v.NonVoters) != 0 {
		t.Fatalf("non-voters %v, want none", v.NonVoters)
	}
	s.do(council.CloseItem{Header: s.chair(), ID: "1"})
	md := s.markdown(council.FrenchLabels())
	if strings.Contains(md, "N'ont pas pris part") || strings.Contains(md, "Bulletins enregistrés en salle") {
		t.Fatalf("the minutes list non-voters or chamber ballots for a show of hands everyone took part in:\n%s", md)
	}

	s.addItem("2", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "2"})
	s.do(council.RequestSecretBallot{Header: s.chair(), Item: "2", Requesters: 2})
	s.do(council.OpenVote{Header: s.chair(), ID: "s", Item: "2", Mode: council.Secret})
	s.do(council.RecordTally{Header: s.clerk(), Vote: "s", Tally: council.Tally{For: 2, Against: 1}})
	s.do(council.CloseVote{Header: s.chair(), Vote: "s"})
}
