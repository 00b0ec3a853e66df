package council

import (
	"fmt"
	"slices"
	"strings"
)

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

// nonVotersConfirmed returns the seats present or represented that have not voted, when the
// closer named exactly them; otherwise it refuses, naming them, so that closing never leaves
// out a member by oversight (a member in the chamber whose answer was not recorded, say).
func (s *State) nonVotersConfirmed(v *Vote, confirmed []int) ([]int, error) {
	var pending []int
	for _, p := range s.pendingIn(v) {
		pending = append(pending, p.Seat)
	}
	named := slices.Clone(confirmed)
	slices.Sort(named)
	named = slices.Compact(named)
	if slices.Equal(named, slices.Sorted(slices.Values(pending))) {
		return pending, nil
	}
	en, fr := s.seatNames(pending, "en"), s.seatNames(pending, "fr")
	namedEn, namedFr := s.seatNames(named, "en"), s.seatNames(named, "fr")
	e := &RuleError{Kind: ErrNotVoted}
	switch {
	case len(named) == 0:
		e.Msg = fmt.Sprintf("vote %q: not voted yet: %s. To close, confirm them as taking no part in the vote (nonVoters)", v.ID, en)
		e.Fr = fmt.Sprintf("vote %q : n'ont pas encore voté : %s. Pour clore, confirmez qu'ils ne prennent pas part au vote (nonVoters)", v.ID, fr)
	case len(pending) == 0:
		e.Msg = fmt.Sprintf("vote %q: every member present or represented has voted, but the confirmation names %s", v.ID, namedEn)
		e.Fr = fmt.Sprintf("vote %q : tous les membres présents ou représentés ont voté, mais la confirmation nomme %s", v.ID, namedFr)
	default:
		e.Msg = fmt.Sprintf("vote %q: not voted yet: %s; the confirmation names %s", v.ID, en, namedEn)
		e.Fr = fmt.Sprintf("vote %q : n'ont pas encore voté : %s ; la confirmation nomme %s", v.ID, fr, namedFr)
	}
	return nil, e
}

// seatNames names seats for a refusal, in English or French: "Anne Morel (seat 4), seat 9".
func (s *State) seatNames(seats []int, lang string) string {
	word := "seat"
	if lang == "fr" {
		word = "siège"
	}
	parts := make([]string, len(seats))
	for i, n := range seats {
		parts[i] = fmt.Sprintf("%s %d", word, n)
		if st, ok := s.roster.Seat(n); ok && st.Name != "" {
			parts[i] = fmt.Sprintf("%s (%s %d)", st.Name, word, n)
		}
	}
	return strings.Join(parts, ", ")
}
