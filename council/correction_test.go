package council_test

import (
	"testing"

	"github.com/ingeco/hemicycle/council"
)

// A ballot the clerk keyed for the wrong choice or the wrong seat is corrected while the vote
// is open, with the reason; the journal keeps the ballot and its correction, both values.
func TestClerkCorrectsAKeyedBallot(t *testing.T) {
	s := newSitting(t, "fr-commune", 5)
	s.arrive(1, 4)
	s.addItem("1", "")
	s.do(council.OpenItem{Header: s.chair(), ID: "1"})
	s.do(council.OpenVote{Header: s.chair(), ID: "1-1", Item: "1", Mode: council.RollCall})
	s.do(council.CastBallot{Header: s.clerk(), Vote: "1-1", Seat: 1, Choice: council.For})
	s.do(council.CastBallot{Header: s.clerk(), Vote: "1-1", Seat: 2, Choice: council.For})
	s.do(council.CastBallot{Header: s.clerk(), Vote: "1-1", Seat: 3, Choice: council.Against})
	s.ballots("1-1", council.Against, 4) // seat 4 answers from its own seat

	s.refused(council.CorrectBallot{Header: s.clerk(), Vote: "1-1", Seat: 2, Choice: council.Against}, council.ErrInvalid) // no reason
	s.refused(council.CorrectBallot{Header: s.chair(), Vote: "1-1", Seat: 2, Choice: council.Against, Reason: "misheard"}, council.ErrNotEntitled)
	s.refused(council.CorrectBallot{Header: s.clerk(), Vote: "1-1", Seat: 4, Choice: council.For, Reason: "misheard"}, council.ErrNotEntitled)
	s.refused(council.CorrectBallot{Header: s.clerk(), Vote: "1-1", Seat: 5, Choice: council.For, Reason: "misheard"}, council.ErrState)
	s.refused(council.CorrectBallot{Header: s.clerk(), Vote: "1-1", Seat: 2, Choice: council.For, Reason: "misheard"}, council.ErrInvalid)
	s.refused(council.CorrectBallot{Header: s.clerk(), Vote: "1-1", Seat: 2, ToSeat: 3, Choice: council.For, Reason: "wrong line"}, council.ErrAlreadyVoted)
	s.refused(council.CorrectBallot{Header: s.clerk(), Vote: "1-1", Seat: 2, ToSeat: 5, Choice: council.For, Reason: "wrong line"}, council.ErrNotPresent)

	s.do(council.CorrectBallot{Header: s.clerk(), Vote: "1-1", Seat: 2, Choice: council.Against, Reason: "the member answered against"})
	// Seat 5 had come in; its answer was keyed on seat 3's line, and seat 3 has not answered.
	s.do(council.RecordArrival{Header: s.clerk(), Seat: 5, Place: council.InChamber})
	s.do(council.CorrectBallot{Header: s.clerk(), Vote: "1-1", Seat: 3, ToSeat: 5, Choice: council.Against, Reason: "keyed on the wrong line"})
	v, _ := s.st.Vote("1-1")
	if len(v.Corrections) != 2 {
		t.Fatalf("corrections %+v, want two", v.Corrections)
	}
	c := v.Corrections[0]
	if c.From.Seat != 2 || c.From.Choice != council.For || c.To.Seat != 2 || c.To.Choice != council.Against || c.Reason != "the member answered against" || c.By.Role != council.RoleClerk {
		t.Fatalf("first correction %+v", c)
	}
	if c := v.Corrections[1]; c.From.Seat != 3 || c.To.Seat != 5 {
		t.Fatalf("second correction %+v, want seat 3 moved to seat 5", c)
	}
	if _, ok := ballotOf(v, 3); ok {
		t.Fatal("seat 3 still has the ballot moved to seat 5")
	}
	var cast, corrected int
	for _, e := range s.journal {
		switch e.(type) {
		case council.BallotCast:
			cast++
		case council.BallotCorrected:
			corrected++
		}
	}
	if cast != 4 || corrected != 2 {
		t.Fatalf("journal holds %d ballots and %d corrections, want 4 and 2: nothing is deleted", cast, corrected)
	}
	s.do(council.CloseVote{Header: s.chair(), Vote: "1-1", NonVoters: []int{3}}) // its answer went to seat 5
	if r := s.result("1-1"); r.For != 1 || r.Against != 3 || r.Adopted {
		t.Fatalf("result %+v, want 1 for and 3 against after the corrections", r)
	}
	s.refused(council.CorrectBallot{Header: s.clerk(), Vote: "1-1", Seat: 1, Choice: council.Against, Reason: "late"}, council.ErrState)
	if _, err := council.Replay(s.p, s.roster, s.journal); err != nil {
		t.Fatalf("the journal with its corrections does not replay: %v", err)
	}
}

func ballotOf(v council.Vote, seat int) (council.Ballot, bool) {
	for _, b := range v.Ballots {
		if b.Seat == seat {
			return b, true
		}
	}
	return council.Ballot{}, false
}
