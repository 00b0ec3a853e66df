package council

import (
	"slices"
	"time"
)

// Presence is a seat's attendance status now.
type Presence string

const (
	PresenceAbsent      Presence = "absent"
	PresenceChamber     Presence = "chamber"           // in the chamber
	PresenceRemote      Presence = "remote"            // remote, identity verified by the clerk
	PresenceUnverified  Presence = "remote-unverified" // connected, not yet verified: not counted
	PresenceRepresented Presence = "represented"       // absent, proxy holder present
)

// Attendance is one seat's situation now.
type Attendance struct {
	Seat     int      `json:"seat"`
	Presence Presence `json:"presence"`
	// Since is the start of the current period (zero when absent or represented).
	Since time.Time `json:"since,omitzero"`
	// RepresentedBy is the proxy holder voting for this seat on the current item.
	RepresentedBy int `json:"representedBy,omitempty"`
	// Holds lists the givers whose proxies this seat holds.
	Holds   []int    `json:"holds,omitempty"`
	Periods []Period `json:"periods,omitempty"`
}

// Attendance returns a seat's attendance now.
func (s *State) Attendance(seat int) Attendance {
	a := Attendance{Seat: seat, Presence: PresenceAbsent, Holds: s.heldBy(seat)}
	if at := s.seats[seat]; at != nil {
		a.Periods = slices.Clone(at.periods)
	}
	if cur := s.seats[seat].current(); cur != nil {
		a.Since = cur.From
		switch {
		case cur.Place == InChamber:
			a.Presence = PresenceChamber
		case !cur.VerifiedAt.IsZero():
			a.Presence = PresenceRemote
		default:
			a.Presence = PresenceUnverified
		}
	}
	if a.Presence == PresenceAbsent || a.Presence == PresenceUnverified {
		if h, ok := s.representative(seat, s.currentItem()); ok {
			a.RepresentedBy = h
			if a.Presence == PresenceAbsent {
				a.Presence = PresenceRepresented
			}
		}
	}
	return a
}

// AttendanceAll lists every seat in office, in roster order.
func (s *State) AttendanceAll() []Attendance {
	var out []Attendance
	for _, st := range s.roster.Seats {
		if st.InOffice() {
			out = append(out, s.Attendance(st.Number))
		}
	}
	return out
}

// RemoteParticipants lists the verified remote members now.
func (s *State) RemoteParticipants() []int { return s.remoteParticipants() }

// Proxies lists every proxy recorded, ended ones included, in order given.
func (s *State) Proxies() []Proxy {
	out := make([]Proxy, len(s.proxies))
	for i, p := range s.proxies {
		out[i] = *p
	}
	return out
}

// FloorHolder returns the seat that has the floor, since when, and whether
// anyone has it.
func (s *State) FloorHolder() (seat int, since time.Time, ok bool) {
	return s.floor.holder, s.floor.since, s.floor.holder != 0
}

// FloorQueue is the waiting list in the order the chair should call it:
// points of order first, then requests to speak, each in order of asking.
func (s *State) FloorQueue() []FloorRequest {
	q := slices.Clone(s.floor.requests)
	slices.SortStableFunc(q, func(a, b FloorRequest) int {
		return rank(a.Kind) - rank(b.Kind)
	})
	return q
}

func rank(k FloorKind) int {
	if k == PointOfOrder {
		return 0
	}
	return 1
}

// SpeakingTime is the time a seat has held the floor this session; a
// speech under way counts up to now.
func (s *State) SpeakingTime(seat int, now time.Time) time.Duration {
	var d time.Duration
	for _, sp := range s.floor.speeches {
		if sp.Seat == seat {
			d += sp.To.Sub(sp.From)
		}
	}
	if s.floor.holder == seat && now.After(s.floor.since) {
		d += now.Sub(s.floor.since)
	}
	return d
}

// Speeches lists the finished speeches in order.
func (s *State) Speeches() []Speech { return slices.Clone(s.floor.speeches) }

// Items lists the agenda.
func (s *State) Items() []Item { return copies(s.items, copyItem) }

// Item returns one agenda item.
func (s *State) Item(id string) (Item, bool) {
	it, _ := s.item(id)
	return copyOf(it, copyItem)
}

// OpenItem returns the item under discussion, if any.
func (s *State) OpenItem() (Item, bool) { return copyOf(s.openItem(), copyItem) }

// Votes lists every vote in order.
func (s *State) Votes() []Vote { return copies(s.votes, copyVote) }

// Vote returns one vote.
func (s *State) Vote(id string) (Vote, bool) {
	v, _ := s.vote(id)
	return copyOf(v, copyVote)
}

// OpenVote returns the vote under way, if any.
func (s *State) OpenVote() (Vote, bool) { return copyOf(s.openVote(), copyVote) }

// The state hands out copies, so that no caller can change it behind Apply's back.

func copies[T any](records []*T, clone func(*T) T) []T {
	out := make([]T, len(records))
	for i, r := range records {
		out[i] = clone(r)
	}
	return out
}

// copyOf copies the record, or reports that there is none.
func copyOf[T any](record *T, clone func(*T) T) (T, bool) {
	if record == nil {
		var none T
		return none, false
	}
	return clone(record), true
}

func copyItem(it *Item) Item {
	c := *it
	c.Votes = slices.Clone(it.Votes)
	if it.Quorum != nil {
		q := *it.Quorum
		c.Quorum = &q
	}
	if it.SecretBallot != nil {
		sb := *it.SecretBallot
		sb.Remote = slices.Clone(sb.Remote)
		c.SecretBallot = &sb
	}
	if it.PublicVote != nil {
		pv := *it.PublicVote
		pv.Requesters = slices.Clone(pv.Requesters)
		c.PublicVote = &pv
	}
	if it.PublicDecided != nil {
		d := *it.PublicDecided
		c.PublicDecided = &d
	}
	c.Candidates = slices.Clone(it.Candidates)
	c.QuorumIncidents = slices.Clone(it.QuorumIncidents)
	return c
}

func copyVote(v *Vote) Vote {
	c := *v
	c.Ballots = slices.Clone(v.Ballots)
	if v.Tally != nil {
		t := *v.Tally
		t.Candidates = slices.Clone(t.Candidates)
		c.Tally = &t
	}
	c.Candidates = slices.Clone(v.Candidates)
	c.Corrections = slices.Clone(v.Corrections)
	c.NonVoters = slices.Clone(v.NonVoters)
	if v.Election != nil {
		e := *v.Election
		e.Votes, e.Tied = slices.Clone(e.Votes), slices.Clone(e.Tied)
		c.Election = &e
	}
	if v.Result != nil {
		r := *v.Result
		c.Result = &r
	}
	return c
}

// PendingVoters lists, for the open vote, the seats that may still vote and
// who would cast each ballot (the seat itself or its proxy holder): what a
// roll call reads out and a member's panel offers.
func (s *State) PendingVoters() []PendingVoter {
	v := s.openVote()
	if v == nil {
		return nil
	}
	return s.pendingIn(v)
}

func (s *State) pendingIn(v *Vote) []PendingVoter {
	if v.Mode == Secret {
		return nil
	}
	var out []PendingVoter
	for _, st := range s.roster.Seats {
		if !st.InOffice() {
			continue
		}
		if _, done := v.ballotOf(st.Number); done {
			continue
		}
		caster := st.Number
		if !s.present(caster) {
			h, ok := s.representative(st.Number, v.Item)
			if !ok {
				continue
			}
			caster = h
		}
		pl, _ := s.place(caster)
		out = append(out, PendingVoter{Seat: st.Number, CastBy: caster, InChamber: pl == InChamber})
	}
	return out
}

// PendingVoter is a seat that may still vote in the open vote. InChamber: whoever casts it
// sits in the chamber, so that in an electronic vote the chair or the clerk may record it for
// a member without a device.
type PendingVoter struct {
	Seat      int  `json:"seat"`
	CastBy    int  `json:"castBy"`
	InChamber bool `json:"inChamber,omitempty"`
}
