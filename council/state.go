package council

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// State is a session's deliberation state: a fold over its events. It is
// not safe for concurrent use; the caller serialises commands per session
// (as the journal serialises appends).
type State struct {
	profile *Profile
	roster  Roster

	applied int       // events folded so far
	last    time.Time // time of the last event: time never runs backwards in a journal

	session Session
	seats   map[int]*attendance
	proxies []*Proxy
	floor   floor
	items   []*Item
	votes   []*Vote
	bleeps  []Bleep // sorted by start, not overlapping

	approvals []MinutesApproval // of the minutes, once the sitting is closed (approval.go)
}

// Sitting is what a session is opened with. The command that opens it, the event recording
// that and the state embed it; its fields are promoted, so each one's JSON lists them flat.
type Sitting struct {
	Body              Body   `json:"body"`
	Title             string `json:"title"`
	Location          string `json:"location,omitempty"`
	Chair             int    `json:"chair"`
	Secretary         int    `json:"secretary,omitempty"`
	SecondConvocation bool   `json:"secondConvocation,omitempty"`
}

// Session is the sitting as it stands: what it was opened with (Chair being who presides
// now), when it opened and closed, and its chairs.
type Session struct {
	Sitting
	OpenedAt time.Time `json:"openedAt,omitzero"`
	ClosedAt time.Time `json:"closedAt,omitzero"`
	// Chairs lists who presided from when, the opener first; the chair
	// changes e.g. while the council votes on the mayor's own accounts.
	Chairs []ChairChange `json:"chairs,omitempty"`
	// Suspended: the sitting is suspended now; Suspensions lists every suspension.
	Suspended   bool         `json:"suspended,omitempty"`
	Suspensions []Suspension `json:"suspensions,omitempty"`
	// ClosedDoor: the sitting is held in private now (huis clos, CGCT L2121-18); ClosedDoors
	// lists every vote on it, adopted or not.
	ClosedDoor  bool             `json:"closedDoor,omitempty"`
	ClosedDoors []ClosedDoorVote `json:"closedDoors,omitempty"`
	// ClosedFor says why the sitting closed when it was not the chair's ordinary closing.
	ClosedFor ClosingReason `json:"closedFor,omitempty"`
	// ClosingQuorum is the attendance when the sitting closed for lack of a quorum, and
	// SecondConvocationFrom the first day the second convocation's sitting may be held.
	ClosingQuorum         *Quorum   `json:"closingQuorum,omitempty"`
	SecondConvocationFrom time.Time `json:"secondConvocationFrom,omitzero"`
}

// ChairChange records who took the chair and when.
type ChairChange struct {
	Seat int       `json:"seat"`
	At   time.Time `json:"at"`
}

// openingChair is the seat that presided when the sitting opened (the mayor or president).
func (s Session) openingChair() int {
	if len(s.Chairs) == 0 {
		return s.Chair
	}
	return s.Chairs[0].Seat
}

// Presides reports whether the seat presides now: the powers of the chair follow the
// sitting's record, not a token.
func (s Session) Presides(seat int) bool { return seat != 0 && s.Chair == seat }

// Opened reports whether the session has opened and not yet closed.
func (s Session) Opened() bool { return !s.OpenedAt.IsZero() && s.ClosedAt.IsZero() }

// Period is one stretch of attendance at one place.
type Period struct {
	Place      Place           `json:"place"`
	From       time.Time       `json:"from"`
	VerifiedAt time.Time       `json:"verifiedAt,omitzero"` // remote only: when the clerk confirmed identity
	To         time.Time       `json:"to,omitzero"`         // zero while ongoing
	Reason     DepartureReason `json:"reason,omitempty"`
}

type attendance struct {
	periods []Period
}

// current returns the ongoing period, if any.
func (a *attendance) current() *Period {
	if a == nil || len(a.periods) == 0 {
		return nil
	}
	p := &a.periods[len(a.periods)-1]
	if !p.To.IsZero() {
		return nil
	}
	return p
}

// Proxy is a written proxy (pouvoir) recorded by the clerk.
type Proxy struct {
	Giver   int       `json:"giver"`
	Holder  int       `json:"holder"`
	Item    string    `json:"item,omitempty"` // empty: valid for the whole session
	GivenAt time.Time `json:"givenAt"`
	EndedAt time.Time `json:"endedAt,omitzero"`
	Ended   ProxyEnd  `json:"ended,omitempty"`
}

// inForce reports whether the proxy has not been revoked.
func (p *Proxy) inForce() bool { return p.EndedAt.IsZero() }

func (p *Proxy) covers(item string) bool { return p.Item == "" || p.Item == item }

// FloorRequest is a raised hand or a point of order waiting in the queue.
type FloorRequest struct {
	Seat int       `json:"seat"`
	Kind FloorKind `json:"kind"`
	At   time.Time `json:"at"`
}

// Speech is one time a seat held the floor.
type Speech struct {
	Seat int       `json:"seat"`
	Kind FloorKind `json:"kind"`
	Item string    `json:"item,omitempty"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

type floor struct {
	controlled bool // only the chair and the holder may speak (microphones)
	holder     int
	kind       FloorKind
	since      time.Time
	item       string
	requests   []FloorRequest // in arrival order; Queue sorts
	speeches   []Speech
}

// ItemStatus is where an agenda item stands.
type ItemStatus string

const (
	StatusPending   ItemStatus = "pending"
	StatusOpen      ItemStatus = "open"
	StatusClosed    ItemStatus = "closed"
	StatusPostponed ItemStatus = "postponed"
)

// Item is an agenda item.
type Item struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Kind  string `json:"kind,omitempty"`
	// Flagged: marked in person only when added.
	Flagged bool `json:"flagged,omitempty"`
	// InPersonOnly: flagged, or of a kind the profile reserves to in-person votes.
	InPersonOnly   bool           `json:"inPersonOnly,omitempty"`
	Status         ItemStatus     `json:"status"`
	OpenedAt       time.Time      `json:"openedAt,omitzero"`
	ClosedAt       time.Time      `json:"closedAt,omitzero"`
	Quorum         *Quorum        `json:"quorum,omitempty"` // at opening
	PostponeReason string         `json:"postponeReason,omitempty"`
	SecretBallot   *SecretRequest `json:"secretBallot,omitempty"`
	// PublicVote: members asked for a public vote by name (CGCT L2121-21 al. 1).
	PublicVote *PublicVoteRequest `json:"publicVote,omitempty"`
	// PublicDecided: the council unanimously decided not to vote by secret ballot on this
	// nomination (CGCT L2121-21 al. 4).
	PublicDecided *UnanimousDecision `json:"publicDecided,omitempty"`
	// Candidates declared for an election item, in order of declaration; Elected once a round
	// named one.
	Candidates []int `json:"candidates,omitempty"`
	Elected    int   `json:"elected,omitempty"`
	// QuorumIncidents records each time the quorum was lost or regained while the item was
	// open, with the figures.
	QuorumIncidents []QuorumIncident `json:"quorumIncidents,omitempty"`
	Votes           []string         `json:"votes,omitempty"`
}

// SecretRequest is an adopted request for a secret ballot.
type SecretRequest struct {
	Requesters int           `json:"requesters"`
	Present    int           `json:"present"`
	Outcome    SecretOutcome `json:"outcome"`
	Remote     []int         `json:"remote,omitempty"`
	At         time.Time     `json:"at"`
}

// Ballot is one seat's vote; CastBy differs from Seat when a proxy holder
// cast it.
type Ballot struct {
	Seat   int    `json:"seat"`
	Choice Choice `json:"choice"`
	// Candidate is the seat named by an election ballot of choice "candidate".
	Candidate int       `json:"candidate,omitempty"`
	CastBy    int       `json:"castBy"`
	At        time.Time `json:"at"`
	// Keyed: the chair or the clerk recorded it for the seat (roll call, show of hands, a
	// member in the chamber without a device in an electronic vote), so that the clerk may
	// correct it while the vote is open; RecordedBy is who recorded it.
	Keyed      bool  `json:"keyed,omitempty"`
	RecordedBy Actor `json:"recordedBy,omitzero"`
}

// Tally is the tellers' count of a secret ballot. For a motion Blank holds blank and spoilt
// papers; for an election round the papers are counted apart: Voters in the urn, Blank,
// Spoilt, and each candidate's votes.
type Tally struct {
	For        int              `json:"for"`
	Against    int              `json:"against"`
	Blank      int              `json:"blank"`
	Spoilt     int              `json:"spoilt,omitempty"`
	Voters     int              `json:"voters,omitempty"`
	Candidates []CandidateVotes `json:"candidates,omitempty"`
}

// Vote is a vote on an item.
type Vote struct {
	ID       string    `json:"id"`
	Item     string    `json:"item"`
	Question string    `json:"question,omitempty"`
	Mode     VoteMode  `json:"mode"`
	OpenedAt time.Time `json:"openedAt"`
	ClosedAt time.Time `json:"closedAt,omitzero"`
	Quorum   Quorum    `json:"quorum"` // at opening
	Ballots  []Ballot  `json:"ballots,omitempty"`
	Tally    *Tally    `json:"tally,omitempty"`
	Result   *Result   `json:"result,omitempty"`
	// Round is the round of an election (1, 2, …; 0 for a motion), Candidates those standing
	// in it and Election its result.
	Round      int             `json:"round,omitempty"`
	Candidates []int           `json:"candidates,omitempty"`
	Election   *ElectionResult `json:"election,omitempty"`
	// Corrections lists the ballots the clerk corrected, both values kept.
	Corrections []Correction `json:"corrections,omitempty"`
	// NonVoters are the seats present or represented without a ballot when the vote closed.
	NonVoters []int `json:"nonVoters,omitempty"`
}

// Bleep is a passage whose sound was cut from the public broadcast. Passages that overlap
// are one: By is who marked its start.
type Bleep struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	By   Actor     `json:"by"`
}

// Open reports whether ballots may still be cast.
func (v *Vote) Open() bool { return v.ClosedAt.IsZero() }

func (v *Vote) ballotOf(seat int) (Ballot, bool) {
	for _, b := range v.Ballots {
		if b.Seat == seat {
			return b, true
		}
	}
	return Ballot{}, false
}

// NewState starts an empty session state for a body under a profile. The
// roster may be empty when replaying a journal: the session's opening event
// carries the roster in force.
func NewState(p *Profile, r Roster) (*State, error) {
	if p == nil {
		return nil, errors.New("new council state: no profile")
	}
	r, err := NewRoster(r.Seats)
	if err != nil {
		return nil, fmt.Errorf("new council state: %w", err)
	}
	return &State{profile: p, roster: r, seats: map[int]*attendance{}}, nil
}

// Replay folds a journal's events into a fresh state.
func Replay(p *Profile, r Roster, events []Event) (*State, error) {
	s, err := NewState(p, r)
	if err != nil {
		return nil, err
	}
	if err := s.applyAll(events); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	return s, nil
}

// applyAll folds events in order, stopping at the first that does not apply.
func (s *State) applyAll(events []Event) error {
	for _, e := range events {
		if err := s.Apply(e); err != nil {
			return err
		}
	}
	return nil
}

// Apply folds one event. It checks that the event is coherent with the
// state (references exist, transitions are possible, time does not run
// backwards) but not that it was lawful: that is Decide's job, and a
// journal records what was decided. On error the state is unchanged.
func (s *State) Apply(e Event) error {
	h := e.Meta()
	n := s.applied + 1
	if h.At.IsZero() {
		return fmt.Errorf("event %d (%s): no time", n, e.Type())
	}
	if h.At.Before(s.last) {
		return fmt.Errorf("event %d (%s): at %s, before the previous event at %s",
			n, e.Type(), h.At.Format(time.RFC3339), s.last.Format(time.RFC3339))
	}
	if err := e.apply(s); err != nil {
		return fmt.Errorf("event %d (%s): %w", n, e.Type(), err)
	}
	s.noteQuorum(h.At)
	s.applied = n
	s.last = h.At
	return nil
}

// Profile returns the legal profile in force.
func (s *State) Profile() *Profile { return s.profile }

// Roster returns the roster in force.
func (s *State) Roster() Roster { return Roster{Seats: slices.Clone(s.roster.Seats)} }

// Session describes the sitting.
func (s *State) Session() Session {
	out := s.session
	out.Chairs = slices.Clone(s.session.Chairs)
	out.Suspensions = slices.Clone(s.session.Suspensions)
	out.ClosedDoors = slices.Clone(s.session.ClosedDoors)
	for i := range out.ClosedDoors {
		out.ClosedDoors[i].Requesters = slices.Clone(out.ClosedDoors[i].Requesters)
	}
	if q := s.session.ClosingQuorum; q != nil {
		c := *q
		out.ClosingQuorum = &c
	}
	return out
}

// Applied is the number of events folded, which a caller can compare with
// its journal's sequence number.
func (s *State) Applied() int { return s.applied }

// LastEventAt is the time of the last folded event.
func (s *State) LastEventAt() time.Time { return s.last }

// --- helpers shared by apply and decide ---

// inOffice returns the seat if a member holds it.
func (s *State) inOffice(seat int) (Seat, error) {
	st, ok := s.roster.Seat(seat)
	if !ok {
		return Seat{}, refuse(ErrUnknown, "seat %d is not in the roster", seat)
	}
	if !st.InOffice() {
		return Seat{}, refuse(ErrUnknown, "seat %d is vacant", seat)
	}
	return st, nil
}

func (s *State) sessionOpen() error {
	switch {
	case s.session.OpenedAt.IsZero():
		return refuse(ErrState, "the session has not been opened")
	case !s.session.ClosedAt.IsZero():
		return refuse(ErrState, "the session is closed")
	}
	return nil
}

func (s *State) item(id string) (*Item, error) {
	for _, it := range s.items {
		if it.ID == id {
			return it, nil
		}
	}
	return nil, refuse(ErrUnknown, "no agenda item %q", id)
}

func (s *State) vote(id string) (*Vote, error) {
	for _, v := range s.votes {
		if v.ID == id {
			return v, nil
		}
	}
	return nil, refuse(ErrUnknown, "no vote %q", id)
}

func (s *State) openItem() *Item {
	for _, it := range s.items {
		if it.Status == StatusOpen {
			return it
		}
	}
	return nil
}

func (s *State) openVote() *Vote {
	for _, v := range s.votes {
		if v.Open() {
			return v
		}
	}
	return nil
}

// place returns where the seat attends now and whether its identity is
// verified ("" when absent).
func (s *State) place(seat int) (Place, bool) {
	p := s.seats[seat].current()
	if p == nil {
		return "", false
	}
	return p.Place, p.Place == InChamber || !p.VerifiedAt.IsZero()
}

// present reports whether the seat takes part in person or as a verified
// remote member. An unverified remote connection is not presence.
func (s *State) present(seat int) bool {
	_, ok := s.place(seat)
	return ok
}

func (s *State) remoteVerified(seat int) bool {
	pl, ok := s.place(seat)
	return ok && pl == Remote
}

// remoteParticipants lists the verified remote members, in roster order.
func (s *State) remoteParticipants() []int {
	var out []int
	for _, st := range s.roster.Seats {
		if s.remoteVerified(st.Number) {
			out = append(out, st.Number)
		}
	}
	return out
}

// proxyFrom returns the giver's proxy in force, if any.
func (s *State) proxyFrom(giver int) *Proxy {
	for _, p := range s.proxies {
		if p.Giver == giver && p.inForce() {
			return p
		}
	}
	return nil
}

// representative returns who votes for an absent seat on an item: the
// holder of a proxy in force covering the item, if that holder is present.
func (s *State) representative(seat int, item string) (int, bool) {
	if s.present(seat) {
		return 0, false
	}
	p := s.proxyFrom(seat)
	if p == nil || !p.covers(item) || !s.present(p.Holder) {
		return 0, false
	}
	return p.Holder, true
}

// heldBy lists the givers whose proxies the holder has in force.
func (s *State) heldBy(holder int) []int {
	var out []int
	for _, p := range s.proxies {
		if p.Holder == holder && p.inForce() {
			out = append(out, p.Giver)
		}
	}
	return out
}

// currentItem is the open item's id, or "" between items.
func (s *State) currentItem() string {
	if it := s.openItem(); it != nil {
		return it.ID
	}
	return ""
}

// The checks below are the ones a command and the event recording it share: Decide refuses
// with them, and Apply keeps a journal that breaks them from being folded.

// seatInOpenSession refuses a seat no member holds, or a session not under way.
func (s *State) seatInOpenSession(seat int) error {
	if err := s.sessionOpen(); err != nil {
		return err
	}
	_, err := s.inOffice(seat)
	return err
}

// betweenVotes refuses while a vote is under way.
func (s *State) betweenVotes() error {
	if v := s.openVote(); v != nil {
		return refuse(ErrState, "vote %q is still open", v.ID)
	}
	return nil
}

// itemUnderDiscussion returns the item if it is the open one.
func (s *State) itemUnderDiscussion(id string) (*Item, error) {
	it, err := s.item(id)
	if err != nil {
		return nil, err
	}
	if it.Status != StatusOpen {
		return nil, refuse(ErrState, "item %q is not open", it.ID)
	}
	return it, nil
}

// itemOpenable returns the item if the session may take it up now: still pending, and no
// other item open.
func (s *State) itemOpenable(id string) (*Item, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	it, err := s.item(id)
	if err != nil {
		return nil, err
	}
	if open := s.openItem(); open != nil {
		return nil, refuse(ErrState, "item %q is still open", open.ID)
	}
	if it.Status != StatusPending {
		return nil, refuse(ErrState, "item %q is %s", it.ID, it.Status)
	}
	return it, nil
}

// itemPostponable returns the item if it is pending or open with no vote under way on it.
func (s *State) itemPostponable(id string) (*Item, error) {
	it, err := s.item(id)
	if err != nil {
		return nil, err
	}
	if it.Status != StatusPending && it.Status != StatusOpen {
		return nil, refuse(ErrState, "item %q is %s", it.ID, it.Status)
	}
	if v := s.openVote(); v != nil && v.Item == it.ID {
		return nil, refuse(ErrState, "vote %q is still open", v.ID)
	}
	return it, nil
}

// voteOpenable returns the item a new vote id would be taken on: the item under discussion,
// between votes, in a known mode.
func (s *State) voteOpenable(vote, item string, mode VoteMode) (*Item, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(vote) == "" {
		return nil, refuse(ErrInvalid, "a vote needs an id")
	}
	if _, err := s.vote(vote); err == nil {
		return nil, refuse(ErrState, "vote %q already exists", vote)
	}
	it, err := s.itemUnderDiscussion(item)
	if err != nil {
		return nil, err
	}
	if err := s.betweenVotes(); err != nil {
		return nil, err
	}
	if !mode.valid() {
		return nil, refuse(ErrInvalid, "unknown vote mode %q", mode)
	}
	return it, nil
}

// ballotCastable returns the vote if it takes a named ballot of this choice for this seat,
// which has not voted yet.
func (s *State) ballotCastable(vote string, seat int, choice Choice, candidate int) (*Vote, error) {
	v, err := s.vote(vote)
	if err != nil {
		return nil, err
	}
	if !v.Open() {
		return nil, refuse(ErrState, "vote %q is closed", v.ID)
	}
	if v.Mode == Secret {
		return nil, refuse(ErrVoteMode, "vote %q is a secret ballot: papers are counted in the chamber and the tally recorded", v.ID)
	}
	if v.Round > 0 {
		if err := electionBallotValid(v, choice, candidate); err != nil {
			return nil, err
		}
	} else if !choice.valid() || candidate != 0 {
		return nil, refuse(ErrInvalid, "unknown choice %q (for, against, abstain, not-voting)", choice)
	}
	if _, err := s.inOffice(seat); err != nil {
		return nil, err
	}
	if b, dup := v.ballotOf(seat); dup {
		return nil, refuse(ErrAlreadyVoted, "seat %d has already voted in vote %q (%s); a ballot is final", seat, v.ID, b.Choice)
	}
	return v, nil
}

// tallyRecordable returns the vote if it is an open secret ballot without a tally, and the
// tally counts no negative number.
func (s *State) tallyRecordable(vote string, t Tally) (*Vote, error) {
	v, err := s.vote(vote)
	if err != nil {
		return nil, err
	}
	if !v.Open() || v.Mode != Secret {
		return nil, refuse(ErrState, "vote %q is not an open secret ballot", v.ID)
	}
	if v.Tally != nil {
		return nil, refuse(ErrState, "vote %q already has a tally", v.ID)
	}
	if t.For < 0 || t.Against < 0 || t.Blank < 0 || t.Spoilt < 0 || t.Voters < 0 {
		return nil, refuse(ErrInvalid, "a tally cannot hold negative counts")
	}
	return v, nil
}

// voteClosable returns the vote if it is open and, for a secret ballot, tallied.
func (s *State) voteClosable(vote string) (*Vote, error) {
	v, err := s.vote(vote)
	if err != nil {
		return nil, err
	}
	if !v.Open() {
		return nil, refuse(ErrState, "vote %q is already closed", v.ID)
	}
	if v.Mode == Secret && v.Tally == nil {
		return nil, refuse(ErrState, "secret ballot %q: record the tellers' tally before closing", v.ID)
	}
	return v, nil
}

// bleepRecordable refuses a passage before the session opened, without a start, or ending
// before it starts.
func (s *State) bleepRecordable(from, to time.Time) error {
	switch {
	case s.session.OpenedAt.IsZero():
		return refuse(ErrState, "the session has not been opened")
	case from.IsZero() || to.IsZero():
		return refuse(ErrInvalid, "a bleeped passage needs a start and an end")
	case to.Before(from):
		return refuse(ErrInvalid, "the bleeped passage ends at %s, before it starts at %s",
			to.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano))
	}
	return nil
}

// --- apply, one per event ---

func (e SessionOpened) apply(s *State) error {
	if !s.session.OpenedAt.IsZero() {
		return errors.New("the session was already opened")
	}
	if e.Body.Profile != s.profile.ID {
		return fmt.Errorf("the session was held under profile %q, not %q", e.Body.Profile, s.profile.ID)
	}
	journal, err := NewRoster(e.Roster)
	if err != nil {
		return err
	}
	switch {
	case len(s.roster.Seats) == 0:
		s.roster = journal
	case !s.roster.equal(journal):
		return errors.New("the roster given differs from the roster recorded when the session opened")
	}
	if _, err := s.inOffice(e.Chair); err != nil {
		return fmt.Errorf("chair: %w", err)
	}
	if e.Secretary != 0 {
		if _, err := s.inOffice(e.Secretary); err != nil {
			return fmt.Errorf("secretary: %w", err)
		}
	}
	s.session = Session{Sitting: e.Sitting, OpenedAt: e.At, Chairs: []ChairChange{{Seat: e.Chair, At: e.At}}}
	return nil
}

func (e SessionClosed) apply(s *State) error {
	if err := s.sessionOpen(); err != nil {
		return err
	}
	if it := s.openItem(); it != nil {
		return fmt.Errorf("item %q is still open", it.ID)
	}
	if s.floor.holder != 0 {
		return fmt.Errorf("seat %d still has the floor", s.floor.holder)
	}
	s.endPassages(e.At)
	s.session.ClosedAt = e.At
	if e.Reason != "" {
		s.session.ClosedFor, s.session.SecondConvocationFrom = e.Reason, e.SecondConvocationFrom
		if e.Quorum != nil {
			q := *e.Quorum
			s.session.ClosingQuorum = &q
		}
	}
	return nil
}

func (e ChairChanged) apply(s *State) error {
	if err := s.seatInOpenSession(e.Seat); err != nil {
		return err
	}
	s.session.Chair = e.Seat
	s.session.Chairs = append(s.session.Chairs, ChairChange{Seat: e.Seat, At: e.At})
	return nil
}

func (e MemberArrived) apply(s *State) error {
	if err := s.seatInOpenSession(e.Seat); err != nil {
		return err
	}
	if e.Place != InChamber && e.Place != Remote {
		return fmt.Errorf("unknown place %q", e.Place)
	}
	a := s.seats[e.Seat]
	if a == nil {
		a = &attendance{}
		s.seats[e.Seat] = a
	}
	if cur := a.current(); cur != nil {
		if cur.Place == e.Place {
			return fmt.Errorf("seat %d is already recorded as %s", e.Seat, e.Place)
		}
		// Moving between the chamber and a remote connection ends one period.
		cur.To = e.At
	}
	a.periods = append(a.periods, Period{Place: e.Place, From: e.At})
	return nil
}

func (e RemoteVerified) apply(s *State) error {
	if err := s.sessionOpen(); err != nil {
		return err
	}
	cur := s.seats[e.Seat].current()
	if cur == nil || cur.Place != Remote {
		return fmt.Errorf("seat %d is not connected remotely", e.Seat)
	}
	if !cur.VerifiedAt.IsZero() {
		return fmt.Errorf("seat %d was already verified", e.Seat)
	}
	cur.VerifiedAt = e.At
	return nil
}

func (e MemberDeparted) apply(s *State) error {
	if err := s.sessionOpen(); err != nil {
		return err
	}
	cur := s.seats[e.Seat].current()
	if cur == nil {
		return fmt.Errorf("seat %d is not recorded as present", e.Seat)
	}
	cur.To = e.At
	if !e.LostAt.IsZero() {
		cur.To = e.LostAt
	}
	cur.Reason = e.Reason
	// A member who leaves stops speaking and leaves the queue.
	if s.floor.holder == e.Seat {
		s.endSpeech(e.At)
	}
	s.floor.requests = slices.DeleteFunc(s.floor.requests, func(r FloorRequest) bool { return r.Seat == e.Seat })
	return nil
}

func (e ProxyGiven) apply(s *State) error {
	if err := s.sessionOpen(); err != nil {
		return err
	}
	if _, err := s.inOffice(e.Giver); err != nil {
		return fmt.Errorf("giver: %w", err)
	}
	if _, err := s.inOffice(e.Holder); err != nil {
		return fmt.Errorf("holder: %w", err)
	}
	if e.Giver == e.Holder {
		return fmt.Errorf("seat %d cannot hold its own proxy", e.Giver)
	}
	if p := s.proxyFrom(e.Giver); p != nil {
		return fmt.Errorf("seat %d already gave a proxy to seat %d", e.Giver, p.Holder)
	}
	if e.Item != "" {
		if _, err := s.item(e.Item); err != nil {
			return err
		}
	}
	s.proxies = append(s.proxies, &Proxy{Giver: e.Giver, Holder: e.Holder, Item: e.Item, GivenAt: e.At})
	return nil
}

func (e ProxyRevoked) apply(s *State) error {
	p := s.proxyFrom(e.Giver)
	if p == nil {
		return fmt.Errorf("seat %d has no proxy in force", e.Giver)
	}
	p.EndedAt = e.At
	p.Ended = e.Reason
	return nil
}

func (e FloorRequested) apply(s *State) error {
	if err := s.seatInOpenSession(e.Seat); err != nil {
		return err
	}
	if e.Kind != Speak && e.Kind != PointOfOrder {
		return fmt.Errorf("unknown floor request kind %q", e.Kind)
	}
	for _, r := range s.floor.requests {
		if r.Seat == e.Seat && r.Kind == e.Kind {
			return fmt.Errorf("seat %d already asked (%s)", e.Seat, e.Kind)
		}
	}
	s.floor.requests = append(s.floor.requests, FloorRequest{Seat: e.Seat, Kind: e.Kind, At: e.At})
	return nil
}

func (e FloorRequestCancelled) apply(s *State) error {
	n := len(s.floor.requests)
	s.floor.requests = slices.DeleteFunc(s.floor.requests, func(r FloorRequest) bool { return r.Seat == e.Seat })
	if len(s.floor.requests) == n {
		return fmt.Errorf("seat %d has no request in the queue", e.Seat)
	}
	return nil
}

func (e FloorGranted) apply(s *State) error {
	if err := s.seatInOpenSession(e.Seat); err != nil {
		return err
	}
	if s.floor.holder != 0 {
		return fmt.Errorf("seat %d still has the floor", s.floor.holder)
	}
	// The grant answers the seat's request of that kind, if it made one.
	if i := slices.IndexFunc(s.floor.requests, func(r FloorRequest) bool { return r.Seat == e.Seat && r.Kind == e.Kind }); i >= 0 {
		s.floor.requests = slices.Delete(s.floor.requests, i, i+1)
	}
	s.floor.holder, s.floor.kind, s.floor.since, s.floor.item = e.Seat, e.Kind, e.At, s.currentItem()
	return nil
}

func (e FloorEnded) apply(s *State) error {
	if s.floor.holder == 0 || s.floor.holder != e.Seat {
		return fmt.Errorf("seat %d does not have the floor", e.Seat)
	}
	s.endSpeech(e.At)
	return nil
}

func (s *State) endSpeech(at time.Time) {
	f := &s.floor
	f.speeches = append(f.speeches, Speech{Seat: f.holder, Kind: f.kind, Item: f.item, From: f.since, To: at})
	f.holder, f.kind, f.since, f.item = 0, "", time.Time{}, ""
}

func (e FloorControlSet) apply(s *State) error {
	if s.floor.controlled == e.Enabled {
		return fmt.Errorf("floor control is already %v", e.Enabled)
	}
	s.floor.controlled = e.Enabled
	return nil
}

// FloorControlled reports whether only the chair and the floor holder may speak.
func (s *State) FloorControlled() bool { return s.floor.controlled }

func (e ItemAdded) apply(s *State) error {
	if !s.session.ClosedAt.IsZero() {
		return errors.New("the session is closed")
	}
	if e.Item == "" {
		return errors.New("an agenda item needs an id")
	}
	if _, err := s.item(e.Item); err == nil {
		return fmt.Errorf("agenda item %q already exists", e.Item)
	}
	s.items = append(s.items, &Item{
		ID: e.Item, Title: e.Title, Kind: e.Kind, Flagged: e.InPersonOnly,
		InPersonOnly: e.InPersonOnly || s.profile.inPersonOnly(e.Kind),
		Status:       StatusPending,
	})
	return nil
}

func (e ItemOpened) apply(s *State) error {
	it, err := s.itemOpenable(e.Item)
	if err != nil {
		return err
	}
	q := e.Quorum
	it.Status, it.OpenedAt, it.Quorum = StatusOpen, e.At, &q
	return nil
}

func (e ItemClosed) apply(s *State) error {
	it, err := s.itemUnderDiscussion(e.Item)
	if err != nil {
		return err
	}
	if err := s.betweenVotes(); err != nil {
		return err
	}
	it.Status, it.ClosedAt = StatusClosed, e.At
	return nil
}

func (e ItemPostponed) apply(s *State) error {
	it, err := s.itemPostponable(e.Item)
	if err != nil {
		return err
	}
	if it.Status == StatusOpen {
		it.ClosedAt = e.At
	}
	it.Status, it.PostponeReason = StatusPostponed, e.Reason
	return nil
}

func (e SecretBallotRequested) apply(s *State) error {
	it, err := s.itemUnderDiscussion(e.Item)
	if err != nil {
		return err
	}
	if e.Outcome != SecretHeld && e.Outcome != SecretPostponed {
		return fmt.Errorf("unknown secret-ballot outcome %q", e.Outcome)
	}
	it.SecretBallot = &SecretRequest{Requesters: e.Requesters, Present: e.Present, Outcome: e.Outcome,
		Remote: slices.Clone(e.Remote), At: e.At}
	return nil
}

func (e VoteOpened) apply(s *State) error {
	it, err := s.voteOpenable(e.Vote, e.Item, e.Mode)
	if err != nil {
		return err
	}
	if e.Round > 0 && !s.election(it) {
		return fmt.Errorf("vote %q: round %d on item %q (%s)", e.Vote, e.Round, it.ID, it.Kind)
	}
	s.votes = append(s.votes, &Vote{ID: e.Vote, Item: e.Item, Question: e.Question, Mode: e.Mode, OpenedAt: e.At, Quorum: e.Quorum,
		Round: e.Round, Candidates: slices.Clone(e.Candidates)})
	it.Votes = append(it.Votes, e.Vote)
	return nil
}

func (e BallotCast) apply(s *State) error {
	v, err := s.ballotCastable(e.Vote, e.Seat, e.Choice, e.Candidate)
	if err != nil {
		return err
	}
	if _, err := s.inOffice(e.CastBy); err != nil {
		return fmt.Errorf("cast by: %w", err)
	}
	// A ballot the member did not send from their own seat was keyed for them.
	b := Ballot{Seat: e.Seat, Choice: e.Choice, Candidate: e.Candidate, CastBy: e.CastBy, At: e.At}
	if e.By.Seat == 0 || e.By.Seat != e.CastBy {
		b.Keyed, b.RecordedBy = true, e.By
	}
	v.Ballots = append(v.Ballots, b)
	return nil
}

func (c Choice) valid() bool {
	switch c {
	case For, Against, Abstain, NotVoting:
		return true
	}
	return false
}

func (e TallyRecorded) apply(s *State) error {
	t := e.Tally
	t.Candidates = slices.Clone(t.Candidates)
	v, err := s.tallyRecordable(e.Vote, t)
	if err != nil {
		return err
	}
	v.Tally = &t
	return nil
}

func (e VoteClosed) apply(s *State) error {
	v, err := s.voteClosable(e.Vote)
	if err != nil {
		return err
	}
	for _, seat := range e.NonVoters {
		if _, voted := v.ballotOf(seat); voted {
			return fmt.Errorf("vote %q: seat %d is recorded as not voting but has a ballot", v.ID, seat)
		}
	}
	v.NonVoters = slices.Clone(e.NonVoters)
	if v.Round > 0 {
		// The outcome is the one proclaimed; the counts must match the round's papers.
		if e.Election == nil || !sameCount(*e.Election, s.electionResult(v)) {
			return fmt.Errorf("election round %q: the recorded count differs from its papers", v.ID)
		}
		r := *e.Election
		r.Votes, r.Tied = slices.Clone(r.Votes), slices.Clone(r.Tied)
		v.Election, v.ClosedAt = &r, e.At
		if it, err := s.item(v.Item); err == nil && r.Elected != 0 {
			it.Elected = r.Elected
		}
		return nil
	}
	// The outcome is the one proclaimed; the counts are arithmetic and must
	// match the ballots recorded.
	if got, want := e.Result.counts(), v.count(); got != want {
		return fmt.Errorf("vote %q: recorded counts %s differ from the ballots %s", v.ID, got, want)
	}
	r := e.Result
	v.Result, v.ClosedAt = &r, e.At
	return nil
}

func (e ProgrammeBleeped) apply(s *State) error {
	if err := s.bleepRecordable(e.From, e.To); err != nil {
		return err
	}
	// The chair may mark the same seconds twice (the last ten seconds, then the last five):
	// the record keeps the union, as the broadcast did.
	n := Bleep{From: e.From, To: e.To, By: e.By}
	out := make([]Bleep, 0, len(s.bleeps)+1)
	for _, b := range s.bleeps {
		if b.To.Before(n.From) || n.To.Before(b.From) {
			out = append(out, b)
			continue
		}
		if b.From.After(n.From) {
			b.From, b.By = n.From, n.By
		}
		if n.To.After(b.To) {
			b.To = n.To
		}
		n = b
	}
	out = append(out, n)
	slices.SortFunc(out, func(a, b Bleep) int { return a.From.Compare(b.From) })
	s.bleeps = out
	return nil
}

// Bleeps lists the passages cut from the public broadcast, earliest first.
func (s *State) Bleeps() []Bleep { return slices.Clone(s.bleeps) }
