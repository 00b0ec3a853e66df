package council

import "fmt"

// Result is a vote's proclaimed outcome with its counts.
type Result struct {
	For       int `json:"for"`
	Against   int `json:"against"`
	Abstain   int `json:"abstain"`
	NotVoting int `json:"notVoting"`
	Blank     int `json:"blank"` // secret ballots: blank and spoilt papers
	// Cast is the votes cast (suffrages exprimés): for and against only.
	Cast int `json:"cast"`
	// Required is the number of votes for needed to adopt.
	Required int  `json:"required"`
	Adopted  bool `json:"adopted"`
	// CastingVote: the tie was settled by the chair's own ballot.
	CastingVote bool `json:"castingVote,omitempty"`
	// Chair is the seat presiding when the vote closed.
	Chair int `json:"chair"`
}

type counts struct{ For, Against, Abstain, NotVoting, Blank int }

func (c counts) String() string {
	return fmt.Sprintf("(%d for, %d against, %d abstain, %d not voting, %d blank)", c.For, c.Against, c.Abstain, c.NotVoting, c.Blank)
}

func (r Result) counts() counts {
	return counts{r.For, r.Against, r.Abstain, r.NotVoting, r.Blank}
}

// count adds up the ballots, or the tellers' tally of a secret ballot.
func (v *Vote) count() counts {
	var c counts
	if v.Mode == Secret {
		if v.Tally != nil {
			c.For, c.Against, c.Blank = v.Tally.For, v.Tally.Against, v.Tally.Blank
		}
		return c
	}
	for _, b := range v.Ballots {
		switch b.Choice {
		case For:
			c.For++
		case Against:
			c.Against++
		case Abstain:
			c.Abstain++
		case NotVoting:
			c.NotVoting++
		}
	}
	return c
}

// result applies the profile's majority rule. Abstentions, blank papers and
// members not voting are not votes cast (CGCT L2121-20). On a tie in a
// public vote the chair's own ballot prevails when the profile says so; a
// chair who did not vote for or against has no casting vote to give.
func (s *State) result(v *Vote) Result {
	rule := s.profile.Votes
	c := v.count()
	r := Result{For: c.For, Against: c.Against, Abstain: c.Abstain, NotVoting: c.NotVoting, Blank: c.Blank,
		Cast: c.For + c.Against, Chair: s.session.Chair}
	var basis int
	switch rule.Majority.Of {
	case MajorityOfCast:
		basis = r.Cast
	case MajorityOfVoters:
		basis = v.Quorum.voters()
	case MajorityOfInOffice:
		basis = v.Quorum.InOffice
	}
	r.Required = max(Threshold(basis, rule.Majority.Fraction, rule.Majority.Comparison), 1)
	r.Adopted = r.For >= r.Required
	if !r.Adopted && r.For == r.Against && r.For > 0 && v.Mode != Secret && rule.CastingVote == CastingOnPublicVotes {
		if b, ok := v.ballotOf(r.Chair); ok && b.CastBy == r.Chair {
			switch b.Choice {
			case For:
				r.Adopted, r.CastingVote = true, true
			case Against:
				r.CastingVote = true
			}
		}
	}
	return r
}
