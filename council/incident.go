package council

import (
	"slices"
	"time"
)

// Incidents of a sitting: suspensions, the quorum lost while an item is open, the sitting
// closed for lack of a quorum (CGCT L2121-17), and the closed-door sitting (huis clos,
// L2121-18).

// Suspension is a stretch during which the sitting was suspended.
type Suspension struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to,omitzero"` // zero while suspended
	Reason string    `json:"reason,omitempty"`
}

// ClosedDoorVote is the council's vote on sitting in private, and the passage it opened.
type ClosedDoorVote struct {
	// Requesters are the seats who asked; none when the chair asked alone.
	Requesters []int `json:"requesters,omitempty"`
	For        int   `json:"for"`
	Against    int   `json:"against"`
	// Counted is the members present or represented, Required the votes for needed.
	Counted  int       `json:"counted"`
	Required int       `json:"required"`
	Adopted  bool      `json:"adopted"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to,omitzero"` // adopted: zero while the doors are closed
}

// ClosingReason says why a sitting closed otherwise than in the ordinary way.
type ClosingReason string

const ClosedNoQuorum ClosingReason = "no-quorum"

// ReferredForLackOfQuorum is the reason given to the items left when the sitting closes for
// lack of a quorum; the minutes put it in their own words.
const ReferredForLackOfQuorum = "quorum not reached: referred to the second convocation (CGCT L2121-17)"

// QuorumIncident records the quorum lost, or regained, while an item was open.
type QuorumIncident struct {
	At     time.Time `json:"at"`
	Lost   bool      `json:"lost"`
	Quorum Quorum    `json:"quorum"`
}

// SuspendSitting suspends the sitting; nothing is opened or voted until it resumes.
type SuspendSitting struct {
	Header
	Reason string `json:"reason,omitempty"`
}

type ResumeSitting struct{ Header }

// CloseForLackOfQuorum closes the sitting because the quorum is not reached: the items not
// decided are postponed to the second convocation, which deliberates without a quorum
// condition at least the profile's number of days later (CGCT L2121-17 al. 2).
type CloseForLackOfQuorum struct{ Header }

// VoteClosedDoor records the council's vote, without debate, on sitting in private: asked by
// Requesters (none: by the chair alone), For and Against counted by the chair (CGCT L2121-18
// al. 2: an absolute majority of the members present or represented).
type VoteClosedDoor struct {
	Header
	Requesters []int `json:"requesters,omitempty"`
	For        int   `json:"for"`
	Against    int   `json:"against"`
}

// EndClosedDoor reopens the sitting to the public.
type EndClosedDoor struct{ Header }

type SittingSuspended struct {
	Header
	Reason string `json:"reason,omitempty"`
}

type SittingResumed struct{ Header }

type ClosedDoorVoted struct {
	Header
	Requesters []int `json:"requesters,omitempty"`
	For        int   `json:"for"`
	Against    int   `json:"against"`
	Counted    int   `json:"counted"`
	Required   int   `json:"required"`
	Adopted    bool  `json:"adopted"`
}

type ClosedDoorEnded struct{ Header }

func (SittingSuspended) Type() string { return "sitting.suspended" }
func (SittingResumed) Type() string   { return "sitting.resumed" }
func (ClosedDoorVoted) Type() string  { return "closed-door.voted" }
func (ClosedDoorEnded) Type() string  { return "closed-door.ended" }

// notSuspended refuses what a suspended sitting cannot do.
func (s *State) notSuspended(what, quoi string) error {
	if s.session.Suspended {
		return &RuleError{Kind: ErrState, Msg: "the sitting is suspended: resume it before " + what,
			Fr: "la séance est suspendue : reprenez-la avant " + quoi}
	}
	return nil
}

func (c SuspendSitting) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	if s.session.Suspended {
		return nil, refuseEnFr(ErrState, "the sitting is already suspended", "la séance est déjà suspendue")
	}
	if v := s.openVote(); v != nil {
		return nil, refuseEnFr(ErrState, "vote %q is open: a sitting is not suspended during a vote", "le vote %q est ouvert : une séance ne se suspend pas pendant un vote", v.ID)
	}
	var out []Event
	if s.floor.holder != 0 {
		out = append(out, FloorEnded{Header: c.Header, Seat: s.floor.holder})
	}
	return append(out, SittingSuspended{Header: c.Header, Reason: c.Reason}), nil
}

func (c ResumeSitting) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	if !s.session.Suspended {
		return nil, refuseEnFr(ErrState, "the sitting is not suspended", "la séance n'est pas suspendue")
	}
	return []Event{SittingResumed{Header: c.Header}}, nil
}

func (c CloseForLackOfQuorum) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	if v := s.openVote(); v != nil {
		return nil, refuseEnFr(ErrState, "vote %q is open: close it first", "le vote %q est ouvert : clôturez-le d'abord", v.ID)
	}
	q := s.Quorum()
	switch {
	case q.Waived:
		return nil, refuseEnFr(ErrState, "a sitting on second convocation deliberates without a quorum: it cannot close for lack of one",
			"une séance sur seconde convocation délibère sans condition de quorum : elle ne peut être levée faute de quorum")
	case q.Reached:
		return nil, refuseEnFr(ErrState, "the quorum is reached (%d counted, %d required): the sitting cannot close for lack of it",
			"le quorum est atteint (%d comptés, %d requis) : la séance ne peut être levée faute de quorum", q.Counted, q.Required)
	}
	var out []Event
	if s.floor.holder != 0 {
		out = append(out, FloorEnded{Header: c.Header, Seat: s.floor.holder})
	}
	for _, it := range s.items {
		if it.Status == StatusOpen || it.Status == StatusPending {
			out = append(out, ItemPostponed{Header: c.Header, Item: it.ID, Reason: ReferredForLackOfQuorum})
		}
	}
	days := s.profile.Quorum.SecondConvocationDays
	y, m, d := c.At.Date()
	from := time.Date(y, m, d+days, 0, 0, 0, 0, c.At.Location())
	return append(out, SessionClosed{Header: c.Header, Reason: ClosedNoQuorum, Quorum: &q, SecondConvocationFrom: from}), nil
}

func (c VoteClosedDoor) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	if err := s.notSuspended("voting on a closed-door sitting", "de voter le huis clos"); err != nil {
		return nil, err
	}
	if s.session.ClosedDoor {
		return nil, refuseEnFr(ErrState, "the sitting is already held in private", "la séance se tient déjà à huis clos")
	}
	if v := s.openVote(); v != nil {
		return nil, refuseEnFr(ErrState, "vote %q is open", "le vote %q est ouvert", v.ID)
	}
	rule := s.profile.ClosedDoor
	if len(c.Requesters) > 0 || c.By.Role != RoleChair {
		if len(c.Requesters) < rule.Requesters {
			return nil, refuseEnFr(ErrInvalid, "a closed-door sitting is asked by the chair or by %d members (profile %s); %d named",
				"le huis clos est demandé par le président ou par %d membres (profil %s) ; %d nommés", rule.Requesters, s.profile.ID, len(c.Requesters))
		}
		seen := map[int]bool{}
		for _, seat := range c.Requesters {
			if _, err := s.inOffice(seat); err != nil {
				return nil, err
			}
			if seen[seat] || !s.present(seat) {
				return nil, refuseEnFr(ErrInvalid, "seat %d is named twice or is not present", "le siège %d est nommé deux fois ou n'est pas présent", seat)
			}
			seen[seat] = true
		}
	}
	counted := s.Quorum().voters()
	if c.For < 0 || c.Against < 0 || c.For+c.Against > counted {
		return nil, refuseEnFr(ErrInvalid, "%d for and %d against, but %d members are present or represented",
			"%d pour et %d contre, mais %d membres sont présents ou représentés", c.For, c.Against, counted)
	}
	required := Threshold(counted, rule.Majority, MoreThan)
	return []Event{ClosedDoorVoted{Header: c.Header, Requesters: slices.Clone(c.Requesters), For: c.For, Against: c.Against,
		Counted: counted, Required: required, Adopted: c.For >= required}}, nil
}

func (c EndClosedDoor) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	if !s.session.ClosedDoor {
		return nil, refuseEnFr(ErrState, "the sitting is public", "la séance est publique")
	}
	return []Event{ClosedDoorEnded{Header: c.Header}}, nil
}

func (e SittingSuspended) apply(s *State) error {
	if err := s.sessionOpen(); err != nil {
		return err
	}
	if s.session.Suspended {
		return refuse(ErrState, "the sitting is already suspended")
	}
	s.session.Suspended = true
	s.session.Suspensions = append(s.session.Suspensions, Suspension{From: e.At, Reason: e.Reason})
	return nil
}

func (e SittingResumed) apply(s *State) error {
	if !s.session.Suspended {
		return refuse(ErrState, "the sitting is not suspended")
	}
	s.endSuspension(e.At)
	return nil
}

func (e ClosedDoorVoted) apply(s *State) error {
	if err := s.sessionOpen(); err != nil {
		return err
	}
	if s.session.ClosedDoor {
		return refuse(ErrState, "the sitting is already held in private")
	}
	s.session.ClosedDoor = e.Adopted
	s.session.ClosedDoors = append(s.session.ClosedDoors, ClosedDoorVote{Requesters: slices.Clone(e.Requesters),
		For: e.For, Against: e.Against, Counted: e.Counted, Required: e.Required, Adopted: e.Adopted, From: e.At})
	return nil
}

func (e ClosedDoorEnded) apply(s *State) error {
	if !s.session.ClosedDoor {
		return refuse(ErrState, "the sitting is public")
	}
	s.endClosedDoor(e.At)
	return nil
}

// endPassages ends a suspension or a closed-door passage still under way when the sitting
// closes.
func (s *State) endPassages(at time.Time) {
	if s.session.Suspended {
		s.endSuspension(at)
	}
	if s.session.ClosedDoor {
		s.endClosedDoor(at)
	}
}

func (s *State) endSuspension(at time.Time) {
	s.session.Suspended = false
	s.session.Suspensions[len(s.session.Suspensions)-1].To = at
}

func (s *State) endClosedDoor(at time.Time) {
	s.session.ClosedDoor = false
	s.session.ClosedDoors[len(s.session.ClosedDoors)-1].To = at
}

// noteQuorum records on the open item each change of its quorum, lost or regained, with the
// time and the figures: the state's own reading of the journal, after every event.
func (s *State) noteQuorum(at time.Time) {
	it := s.openItem()
	if it == nil || it.Quorum == nil {
		return
	}
	reached := it.Quorum.Reached
	if n := len(it.QuorumIncidents); n > 0 {
		reached = !it.QuorumIncidents[n-1].Lost
	}
	q := s.quorumFor(it.ID)
	if q.Reached != reached {
		it.QuorumIncidents = append(it.QuorumIncidents, QuorumIncident{At: at, Lost: !q.Reached, Quorum: q})
	}
}
