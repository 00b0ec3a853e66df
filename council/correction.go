package council

import (
	"strings"
	"time"
)

// Correction is a ballot the clerk corrected while the vote was open: what had been keyed,
// what replaced it, and why. The ballot cast stays in the journal; the correction follows it.
type Correction struct {
	From   Ballot    `json:"from"`
	To     Ballot    `json:"to"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	By     Actor     `json:"by"`
}

// CorrectBallot corrects a ballot keyed for Seat: to the seat ToSeat (0: the same seat) and
// the choice Choice (with Candidate in an election).
type CorrectBallot struct {
	Header
	Vote      string `json:"vote"`
	Seat      int    `json:"seat"`
	ToSeat    int    `json:"toSeat,omitempty"`
	Choice    Choice `json:"choice"`
	Candidate int    `json:"candidate,omitempty"`
	Reason    string `json:"reason"`
}

// BallotCorrected records both values of a corrected ballot.
type BallotCorrected struct {
	Header
	Vote        string `json:"vote"`
	Seat        int    `json:"seat"`
	Choice      Choice `json:"choice"`
	Candidate   int    `json:"candidate,omitempty"`
	ToSeat      int    `json:"toSeat"`
	ToChoice    Choice `json:"toChoice"`
	ToCandidate int    `json:"toCandidate,omitempty"`
	ToCastBy    int    `json:"toCastBy"`
	Reason      string `json:"reason"`
}

func (BallotCorrected) Type() string { return "ballot.corrected" }

func (c CorrectBallot) decide(s *State) ([]Event, error) {
	if c.By.Role != RoleClerk {
		return nil, refuseEnFr(ErrNotEntitled, "only the clerk corrects a keyed ballot", "seul le secrétariat corrige un bulletin saisi")
	}
	if strings.TrimSpace(c.Reason) == "" {
		return nil, refuseEnFr(ErrInvalid, "a correction needs its reason", "une correction doit être motivée")
	}
	v, err := s.vote(c.Vote)
	if err != nil {
		return nil, err
	}
	if !v.Open() {
		return nil, refuseEnFr(ErrState, "vote %q is closed: its ballots are final", "le vote %q est clos : ses bulletins sont définitifs", v.ID)
	}
	old, ok := v.ballotOf(c.Seat)
	if !ok {
		return nil, refuseEnFr(ErrState, "seat %d has no ballot in vote %q", "le siège %d n'a pas de bulletin dans le vote %q", c.Seat, v.ID)
	}
	if !old.Keyed {
		return nil, refuseEnFr(ErrNotEntitled, "seat %d's ballot in vote %q was cast by the member, not keyed: it cannot be corrected",
			"le bulletin du siège %d au vote %q a été émis par l'élu, non saisi : il ne peut être corrigé", c.Seat, v.ID)
	}
	to := c.ToSeat
	if to == 0 {
		to = c.Seat
	}
	if c.Candidate != 0 && c.Choice == "" {
		c.Choice = ForCandidate
	}
	if v.Round > 0 {
		err = electionBallotValid(v, c.Choice, c.Candidate)
	} else if !c.Choice.valid() || c.Candidate != 0 {
		err = refuseEnFr(ErrInvalid, "unknown choice %q (for, against, abstain, not-voting)", "choix %q inconnu (for, against, abstain, not-voting)", c.Choice)
	}
	if err != nil {
		return nil, err
	}
	if to == c.Seat && c.Choice == old.Choice && c.Candidate == old.Candidate {
		return nil, refuseEnFr(ErrInvalid, "the correction changes nothing", "la correction ne change rien")
	}
	caster := old.CastBy
	if to != c.Seat {
		if _, err := s.inOffice(to); err != nil {
			return nil, err
		}
		if b, dup := v.ballotOf(to); dup {
			return nil, refuseEnFr(ErrAlreadyVoted, "seat %d already has a ballot in vote %q (%s): correct that one",
				"le siège %d a déjà un bulletin au vote %q (%s) : corrigez celui-là", to, v.ID, b.Choice)
		}
		caster = to
		if !s.present(to) {
			holder, ok := s.representative(to, v.Item)
			if !ok {
				return nil, refuseEnFr(ErrNotPresent, "seat %d is neither present nor represented on item %q",
					"le siège %d n'est ni présent ni représenté au point %q", to, v.Item)
			}
			caster = holder
		}
	}
	return []Event{BallotCorrected{Header: c.Header, Vote: v.ID, Seat: c.Seat, Choice: old.Choice, Candidate: old.Candidate,
		ToSeat: to, ToChoice: c.Choice, ToCandidate: c.Candidate, ToCastBy: caster, Reason: c.Reason}}, nil
}

func (e BallotCorrected) apply(s *State) error {
	v, err := s.vote(e.Vote)
	if err != nil {
		return err
	}
	if !v.Open() {
		return refuse(ErrState, "vote %q is closed", v.ID)
	}
	i := -1
	for j, b := range v.Ballots {
		if b.Seat == e.Seat {
			i = j
		}
	}
	if i < 0 {
		return refuse(ErrState, "seat %d has no ballot", e.Seat)
	}
	old := v.Ballots[i]
	if old.Choice != e.Choice || old.Candidate != e.Candidate {
		return refuse(ErrState, "seat %d's ballot is %s, not %s", e.Seat, old.Choice, e.Choice)
	}
	if _, dup := v.ballotOf(e.ToSeat); dup && e.ToSeat != e.Seat {
		return refuse(ErrState, "seat %d already has a ballot", e.ToSeat)
	}
	to := Ballot{Seat: e.ToSeat, Choice: e.ToChoice, Candidate: e.ToCandidate, CastBy: e.ToCastBy, At: e.At, Keyed: true, RecordedBy: e.By}
	v.Ballots[i] = to
	v.Corrections = append(v.Corrections, Correction{From: old, To: to, Reason: e.Reason, At: e.At, By: e.By})
	return nil
}
