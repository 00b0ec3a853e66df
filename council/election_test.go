package council_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/council"
)

// electionSitting opens a sitting of nine members, all in the chamber, with an election item
// of the kind open and seats 3, 4 and 5 standing. born gives birth dates by seat.
func electionSitting(t *testing.T, kind string, born map[int]string) *sitting {
	t.Helper()
	r := seats(9)
	for i := range r.Seats {
		r.Seats[i].Born = born[r.Seats[i].Number]
	}
	s := newSittingWith(t, loadProfile(t, "fr-commune"), r, false)
	s.arrive(1, 9)
	s.addItem("E", kind)
	s.do(council.OpenItem{Header: s.chair(), ID: "E"})
	for _, seat := range []int{3, 4, 5} {
		s.do(council.DeclareCandidate{Header: s.clerk(), Item: "E", Seat: seat})
	}
	return s
}

// paper is one round's tellers' count: votes by candidate, blank and spoilt papers.
type paper struct {
	votes         map[int]int
	blank, spoilt int
}

// round opens a secret round on item E, records the count and closes it.
func (s *sitting) round(id string, p paper) council.ElectionResult {
	s.t.Helper()
	s.do(council.OpenVote{Header: s.chair(), ID: id, Item: "E", Mode: council.Secret})
	t := council.RecordTally{Header: s.clerk(), Vote: id, Tally: council.Tally{Blank: p.blank, Spoilt: p.spoilt}}
	for _, seat := range []int{3, 4, 5} {
		if n, ok := p.votes[seat]; ok {
			t.Candidates = append(t.Candidates, council.CandidateVotes{Seat: seat, Votes: n})
			t.Voters += n
		}
	}
	t.Voters += p.blank + p.spoilt
	s.do(t)
	s.do(council.CloseVote{Header: s.chair(), Vote: id})
	v, _ := s.st.Vote(id)
	if v.Election == nil {
		s.t.Fatalf("round %q has no election result", id)
	}
	return *v.Election
}

// CGCT L2121-21 al. 3: "si aucun des candidats n'a obtenu la majorité absolue après deux tours
// de scrutin secret, il est procédé à un troisième tour de scrutin et l'élection a lieu à la
// majorité relative ; à égalité de voix, l'élection est acquise au plus âgé." Blank and spoilt
// papers are counted apart and are not votes cast (code électoral L65, L66).
func TestElectionRoundsFromTheText(t *testing.T) {
	cases := []struct {
		law     string
		born    map[int]string
		rounds  []paper
		cast    int // in the last round
		need    int // absolute majority of the last round, 0 at relative majority
		elected int
		byAge   bool
		tied    []int
	}{
		{"L2121-21 al. 3: an absolute majority of the votes cast in round 1 elects", nil,
			[]paper{{votes: map[int]int{3: 5, 4: 3}, blank: 1}}, 8, 5, 3, false, nil},
		{"L65 code électoral: blank and spoilt papers are not votes cast; 3 of 5 cast is a majority", nil,
			[]paper{{votes: map[int]int{3: 3, 4: 2}, blank: 2, spoilt: 2}}, 5, 3, 3, false, nil},
		{"L2121-21 al. 3: half the votes cast is no absolute majority; round 2 follows", nil,
			[]paper{{votes: map[int]int{3: 4, 4: 4, 5: 1}}}, 9, 5, 0, false, nil},
		{"L2121-21 al. 3: no absolute majority after two rounds: round 3 at relative majority", nil,
			[]paper{{votes: map[int]int{3: 4, 4: 4, 5: 1}}, {votes: map[int]int{3: 4, 4: 3, 5: 2}}, {votes: map[int]int{3: 4, 4: 3, 5: 2}}}, 9, 0, 3, false, nil},
		{"L2121-21 al. 3: a tie in round 3 is won by the eldest", map[int]string{3: "1970-05-02", 4: "1958-11-30", 5: "1990-01-01"},
			[]paper{{votes: map[int]int{3: 4, 4: 4, 5: 1}}, {votes: map[int]int{3: 4, 4: 4, 5: 1}}, {votes: map[int]int{3: 4, 4: 4, 5: 1}}}, 9, 0, 4, true, []int{3, 4}},
		{"L2121-21 al. 3: without the birth dates the eldest cannot be named", nil,
			[]paper{{votes: map[int]int{3: 4, 4: 4}, blank: 1}, {votes: map[int]int{3: 4, 4: 4}, blank: 1}, {votes: map[int]int{3: 4, 4: 4}, blank: 1}}, 8, 0, 0, false, []int{3, 4}},
	}
	for _, c := range cases {
		t.Run(c.law, func(t *testing.T) {
			s := electionSitting(t, "election", c.born)
			var r council.ElectionResult
			for i, p := range c.rounds {
				r = s.round("E-"+string(rune('1'+i)), p)
				if i < len(c.rounds)-1 && r.Elected != 0 {
					t.Fatalf("round %d elected seat %d; the case wants a further round", i+1, r.Elected)
				}
			}
			if r.Round != len(c.rounds) || r.Cast != c.cast || r.Required != c.need || r.Elected != c.elected || r.ByAge != c.byAge || !slices.Equal(r.Tied, c.tied) {
				t.Fatalf("result %+v; want round %d, cast %d, required %d, elected %d, by age %v, tied %v",
					r, len(c.rounds), c.cast, c.need, c.elected, c.byAge, c.tied)
			}
			if it, _ := s.st.Item("E"); it.Elected != c.elected {
				t.Fatalf("item records seat %d elected, want %d", it.Elected, c.elected)
			}
			// The journal alone, as stored, gives the same result.
			stored, err := council.MarshalEvents(s.journal)
			if err != nil {
				t.Fatal(err)
			}
			events, err := council.UnmarshalEvents(stored)
			if err != nil {
				t.Fatal(err)
			}
			again, err := council.Replay(s.p, council.Roster{}, events)
			if err != nil {
				t.Fatal(err)
			}
			if it, _ := again.Item("E"); it.Elected != c.elected {
				t.Fatalf("replayed: seat %d elected, want %d", it.Elected, c.elected)
			}
		})
	}
}

// The rounds stop where the text does: none after the relative round, none after an election.
func TestNoRoundAfterTheLastOrAfterAnElection(t *testing.T) {
	s := electionSitting(t, "election", nil)
	for _, id := range []string{"E-1", "E-2", "E-3"} {
		s.round(id, paper{votes: map[int]int{3: 4, 4: 4, 5: 1}})
	}
	err := s.refused(council.OpenVote{Header: s.chair(), ID: "E-4", Item: "E", Mode: council.Secret}, council.ErrState)
	if fr := err.(*council.RuleError).In("fr"); !strings.Contains(fr, "le tour 3 était le dernier") {
		t.Fatalf("French refusal %q", fr)
	}

	s = electionSitting(t, "election", nil)
	s.round("E-1", paper{votes: map[int]int{3: 6, 4: 3}})
	s.refused(council.OpenVote{Header: s.chair(), ID: "E-2", Item: "E", Mode: council.Secret}, council.ErrState)
	s.refused(council.DeclareCandidate{Header: s.clerk(), Item: "E", Seat: 6}, council.ErrState)
}

// Candidates are declared in the sitting, between rounds, on an election item only; a paper
// counts only candidates standing, and every paper once.
func TestCandidatesAndTheTellersCount(t *testing.T) {
	s := electionSitting(t, "election", nil)
	s.refused(council.DeclareCandidate{Header: s.clerk(), Item: "E", Seat: 3}, council.ErrState)
	s.do(council.WithdrawCandidate{Header: s.clerk(), Item: "E", Seat: 5})
	s.do(council.OpenVote{Header: s.chair(), ID: "E-1", Item: "E", Mode: council.Secret})
	s.refused(council.DeclareCandidate{Header: s.clerk(), Item: "E", Seat: 6}, council.ErrState)
	for _, bad := range []council.Tally{
		{Voters: 9, Candidates: []council.CandidateVotes{{Seat: 3, Votes: 5}, {Seat: 5, Votes: 4}}}, // 5 withdrew
		{Voters: 9, Candidates: []council.CandidateVotes{{Seat: 3, Votes: 5}, {Seat: 4, Votes: 3}}}, // 8 papers for 9 voters
		{Voters: 10, Candidates: []council.CandidateVotes{{Seat: 3, Votes: 6}, {Seat: 4, Votes: 4}}},
		{For: 5, Against: 4, Voters: 9},
	} {
		s.refused(council.RecordTally{Header: s.clerk(), Vote: "E-1", Tally: bad}, council.ErrInvalid)
	}
	if v, _ := s.st.Vote("E-1"); !slices.Equal(v.Candidates, []int{3, 4}) {
		t.Fatalf("round 1 candidates %v, want 3 and 4", v.Candidates)
	}

	s = newSitting(t, "fr-commune", 9)
	s.arrive(1, 9)
	s.addItem("1", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	err := s.refused(council.DeclareCandidate{Header: s.clerk(), Item: "1", Seat: 3}, council.ErrInvalid)
	if !strings.Contains(err.(*council.RuleError).In("fr"), "n'est pas une élection") {
		t.Fatalf("French refusal %q", err.(*council.RuleError).In("fr"))
	}
}

// CGCT L2121-21 al. 2 and 4: nominations are by secret ballot, unless the council decides
// unanimously not to; L2122-7: the mayor's election is always secret.
func TestSecretBallotByDefaultAndTheUnanimousDecision(t *testing.T) {
	s := electionSitting(t, "nomination", nil)
	err := s.refused(council.OpenVote{Header: s.chair(), ID: "E-1", Item: "E", Mode: council.RollCall}, council.ErrVoteMode)
	if !strings.Contains(err.Error(), "unless the council unanimously decides otherwise") {
		t.Fatalf("refusal %q", err)
	}
	s.do(council.DecidePublicVote{Header: s.chair(), Item: "E"})
	if it, _ := s.st.Item("E"); it.PublicDecided == nil || it.PublicDecided.Present != 9 {
		t.Fatalf("decision recorded as %+v, want 9 members present", it.PublicDecided)
	}
	s.refused(council.OpenVote{Header: s.chair(), ID: "E-1", Item: "E", Mode: council.Secret}, council.ErrVoteMode)
	s.do(council.OpenVote{Header: s.chair(), ID: "E-1", Item: "E", Mode: council.RollCall})
	s.refused(council.CastBallot{Header: s.clerk(), Vote: "E-1", Seat: 1, Candidate: 6}, council.ErrInvalid)
	s.refused(council.CastBallot{Header: s.clerk(), Vote: "E-1", Seat: 1, Choice: council.For}, council.ErrInvalid)
	for seat := 1; seat <= 9; seat++ {
		c := council.CastBallot{Header: s.clerk(), Vote: "E-1", Seat: seat, Candidate: 3 + seat%2}
		if seat == 9 {
			c.Candidate, c.Choice = 0, council.BlankPaper
		}
		s.do(c)
	}
	s.do(council.CloseVote{Header: s.chair(), Vote: "E-1"})
	v, _ := s.st.Vote("E-1")
	if r := v.Election; r.Voters != 9 || r.Blank != 1 || r.Cast != 8 || r.Required != 5 || r.Elected != 0 {
		t.Fatalf("named round %+v; want 9 voters, 1 blank, 8 cast, 5 needed, 4-4 and nobody elected", r)
	}

	s = electionSitting(t, "election", nil)
	err = s.refused(council.DecidePublicVote{Header: s.chair(), Item: "E"}, council.ErrVoteMode)
	if !strings.Contains(err.(*council.RuleError).In("fr"), "impose le scrutin secret") {
		t.Fatalf("French refusal %q", err.(*council.RuleError).In("fr"))
	}
}

// CGCT L2121-21 al. 1: "Le vote a lieu au scrutin public à la demande du quart des membres
// présents. Le registre des délibérations comporte le nom des votants et l'indication du sens
// de leur vote." The secret ballot, asked by a third, prevails.
func TestPublicVoteOnTheRequestOfAQuarter(t *testing.T) {
	cases := []struct {
		law        string
		present    int
		requesters []int
		kind       error // nil: accepted
	}{
		{"L2121-21 al. 1: a quarter of 9 present is 3 (at least); 2 is not enough", 9, []int{2, 3}, council.ErrInvalid},
		{"L2121-21 al. 1: 3 of 9 present make a quarter", 9, []int{2, 3, 4}, nil},
		{"L2121-21 al. 1: a quarter of 8 present is 2", 8, []int{5, 6}, nil},
		{"L2121-21 al. 1: only members present ask", 8, []int{5, 9}, council.ErrNotPresent},
		{"a seat counts once", 8, []int{5, 5}, council.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.law, func(t *testing.T) {
			s := newSitting(t, "fr-commune", 9)
			s.arrive(1, c.present)
			s.addItem("1", "")
			s.do(council.OpenItem{Header: s.chair(), ID: "1"})
			req := council.RequestPublicVote{Header: s.chair(), Item: "1", Requesters: c.requesters}
			if c.kind != nil {
				s.refused(req, c.kind)
				return
			}
			s.do(req)
			it, _ := s.st.Item("1")
			if it.PublicVote == nil || !slices.Equal(it.PublicVote.Requesters, c.requesters) || it.PublicVote.Present != c.present {
				t.Fatalf("request recorded as %+v", it.PublicVote)
			}
			err := s.refused(council.OpenVote{Header: s.chair(), ID: "1-1", Item: "1", Mode: council.ShowOfHands}, council.ErrVoteMode)
			if !strings.Contains(err.(*council.RuleError).In("fr"), "appel nominal") {
				t.Fatalf("French refusal %q", err.(*council.RuleError).In("fr"))
			}
			s.do(council.OpenVote{Header: s.chair(), ID: "1-1", Item: "1", Mode: council.RollCall})
		})
	}

	s := newSitting(t, "fr-commune", 9)
	s.arrive(1, 9)
	s.addItem("1", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	s.do(council.RequestSecretBallot{Header: s.chair(), Item: "1", Requesters: 3})
	s.refused(council.RequestPublicVote{Header: s.chair(), Item: "1", Requesters: []int{1, 2, 3}}, council.ErrVoteMode)

	s = electionSitting(t, "nomination", nil)
	err := s.refused(council.RequestPublicVote{Header: s.chair(), Item: "E", Requesters: []int{1, 2, 3}}, council.ErrVoteMode)
	if !errors.Is(err, council.ErrVoteMode) || !strings.Contains(err.Error(), "secret ballot") {
		t.Fatalf("refusal %q", err)
	}
}
