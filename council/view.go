package council

import "time"

// View is the whole state as plain JSON-ready data: what the API serves and
// what is pushed to clients after every change.
type View struct {
	Profile  string         `json:"profile"`
	Session  Session        `json:"session"`
	Quorum   Quorum         `json:"quorum"`
	Seats    []SeatView     `json:"seats"`
	Proxies  []Proxy        `json:"proxies,omitempty"`
	Floor    FloorView      `json:"floor"`
	Items    []Item         `json:"items,omitempty"`
	Votes    []Vote         `json:"votes,omitempty"`
	Pending  []PendingVoter `json:"pendingVoters,omitempty"`
	Applied  int            `json:"applied"`
	AsOf     time.Time      `json:"asOf"`
	Remote   []int          `json:"remote,omitempty"`
	OpenItem string         `json:"openItem,omitempty"`
	OpenVote string         `json:"openVote,omitempty"`
	Bleeps   []Bleep        `json:"bleeps,omitempty"`
}

// SeatView is one seat of the roster with its attendance now.
type SeatView struct {
	Seat          int       `json:"seat"`
	Name          string    `json:"name,omitempty"`
	Group         string    `json:"group,omitempty"`
	Role          string    `json:"role,omitempty"`
	Vacant        bool      `json:"vacant,omitempty"`
	Presence      Presence  `json:"presence"`
	Since         time.Time `json:"since,omitzero"`
	RepresentedBy int       `json:"representedBy,omitempty"`
	Holds         []int     `json:"holds,omitempty"`
	SpokeMillis   int64     `json:"spokeMillis,omitempty"`
}

// FloorView is the floor holder and the queue.
type FloorView struct {
	Controlled bool           `json:"controlled"`
	Holder     int            `json:"holder,omitempty"`
	Kind       FloorKind      `json:"kind,omitempty"`
	Since      time.Time      `json:"since,omitzero"`
	Queue      []FloorRequest `json:"queue,omitempty"`
}

// View snapshots the state; now is used only for the speech under way.
func (s *State) View(now time.Time) View {
	v := View{
		Profile: s.profile.ID,
		Session: s.Session(),
		Quorum:  s.Quorum(),
		Proxies: s.Proxies(),
		Floor:   FloorView{Controlled: s.floor.controlled, Holder: s.floor.holder, Kind: s.floor.kind, Since: s.floor.since, Queue: s.FloorQueue()},
		Items:   s.Items(),
		Votes:   s.Votes(),
		Pending: s.PendingVoters(),
		Applied: s.applied,
		AsOf:    now,
		Remote:  s.remoteParticipants(),
		Bleeps:  s.Bleeps(),
	}
	v.OpenItem = s.currentItem()
	if ov := s.openVote(); ov != nil {
		v.OpenVote = ov.ID
	}
	for _, st := range s.roster.Seats {
		sv := SeatView{Seat: st.Number, Name: st.Name, Group: st.Group, Role: st.Role, Presence: PresenceAbsent, Vacant: !st.InOffice()}
		if st.InOffice() {
			a := s.Attendance(st.Number)
			sv.Presence, sv.Since, sv.RepresentedBy, sv.Holds = a.Presence, a.Since, a.RepresentedBy, a.Holds
			sv.SpokeMillis = s.SpeakingTime(st.Number, now).Milliseconds()
		}
		v.Seats = append(v.Seats, sv)
	}
	return v
}
