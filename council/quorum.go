package council

import (
	"fmt"
	"strings"
)

// Quorum is the attendance count against the profile's quorum rule. Every
// figure is kept (not just the verdict) so that a console can show the
// gauge and the minutes can state the quorum at each item.
type Quorum struct {
	Counts QuorumCounting `json:"counts"`
	Of     QuorumBasis    `json:"of"`
	// Basis is the number the fraction applies to (members in office, or seats).
	Basis    int `json:"basis"`
	InOffice int `json:"inOffice"`
	// Chamber, Remote: members present in the chamber and verified remote members.
	Chamber int `json:"chamber"`
	Remote  int `json:"remote"`
	// Unverified: remote connections the clerk has not yet confirmed; never counted.
	Unverified int `json:"unverified"`
	// Represented: absent members whose proxy holder is present.
	Represented   int  `json:"represented"`
	RemoteCounted bool `json:"remoteCounted"`
	// Counted is the figure compared with Required.
	Counted  int  `json:"counted"`
	Required int  `json:"required"`
	Reached  bool `json:"reached"`
	// Waived: a second convocation deliberates whatever the attendance.
	Waived bool `json:"waived,omitempty"`
}

// String says the verdict with the figures, e.g.
// "quorum not reached: 16 present, 17 required of 33 in office".
func (q Quorum) String() string {
	what := "present"
	if q.Counts == CountPresentOrRepresented {
		what = "present or represented"
	}
	of := "in office"
	if q.Of == BasisSeats {
		of = "seats"
	}
	var notes []string
	if q.Remote > 0 && !q.RemoteCounted {
		notes = append(notes, fmt.Sprintf("%d remote not counted", q.Remote))
	}
	if q.Unverified > 0 {
		notes = append(notes, fmt.Sprintf("%d remote awaiting verification", q.Unverified))
	}
	if q.Represented > 0 && q.Counts == CountPresent {
		notes = append(notes, fmt.Sprintf("%d represented not counted", q.Represented))
	}
	extra := ""
	if len(notes) > 0 {
		extra = " (" + strings.Join(notes, ", ") + ")"
	}
	verdict := "quorum reached"
	switch {
	case q.Waived:
		verdict = "quorum not required (second convocation)"
	case !q.Reached:
		verdict = "quorum not reached"
	}
	return fmt.Sprintf("%s: %d %s, %d required of %d %s%s", verdict, q.Counted, what, q.Required, q.Basis, of, extra)
}

// Quorum is the quorum now, for the item under discussion.
func (s *State) Quorum() Quorum { return s.quorumFor(s.currentItem()) }

// quorumFor counts attendance for an item: proxies limited to one item
// count only for it.
func (s *State) quorumFor(item string) Quorum {
	rule := s.profile.Quorum
	q := Quorum{Counts: rule.Counts, Of: rule.Of, RemoteCounted: rule.RemoteCounts}
	for _, st := range s.roster.Seats {
		if !st.InOffice() {
			continue
		}
		q.InOffice++
		pl, verified := s.place(st.Number)
		switch {
		case pl == InChamber:
			q.Chamber++
		case pl == Remote && verified:
			q.Remote++
		default:
			if pl == Remote {
				q.Unverified++
			}
			if _, ok := s.representative(st.Number, item); ok {
				q.Represented++
			}
		}
	}
	q.Basis = q.InOffice
	if rule.Of == BasisSeats {
		q.Basis = len(s.roster.Seats)
	}
	q.Counted = q.Chamber
	if rule.RemoteCounts {
		q.Counted += q.Remote
	}
	if rule.Counts == CountPresentOrRepresented {
		q.Counted += q.Represented
	}
	q.Required = Threshold(q.Basis, rule.Fraction, rule.Comparison)
	q.Reached = q.Counted >= q.Required
	if !q.Reached && rule.WaivedOnSecondConvocation && s.session.SecondConvocation {
		q.Waived, q.Reached = true, true
	}
	return q
}

// presentCount is the number of members taking part (chamber and verified
// remote), the base for requests made by "members present".
func (q Quorum) presentCount() int { return q.Chamber + q.Remote }

// voters is everyone who may vote: present and represented.
func (q Quorum) voters() int { return q.Chamber + q.Remote + q.Represented }
