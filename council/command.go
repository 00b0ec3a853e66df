package council

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Command is a request to change the session: the chair opening a vote, the
// clerk recording an arrival, a member casting a ballot. Decide checks it
// against the state and the profile and returns the events to record.
type Command interface {
	Meta() Header
	decide(s *State) ([]Event, error)
}

type OpenSession struct {
	Header
	Sitting
}

type CloseSession struct{ Header }

type ChangeChair struct {
	Header
	Seat int `json:"seat"`
}

type RecordArrival struct {
	Header
	Seat  int   `json:"seat"`
	Place Place `json:"place"`
}

type VerifyRemote struct {
	Header
	Seat int `json:"seat"`
}

type RecordDeparture struct {
	Header
	Seat   int             `json:"seat"`
	Reason DepartureReason `json:"reason"`
	// LostAt is, for a lost connection, when it was lost: the member left then, and the grace
	// after it only delayed the decision. Zero: the departure is at the command's time.
	LostAt time.Time `json:"lostAt,omitzero"`
}

type GiveProxy struct {
	Header
	Giver  int    `json:"giver"`
	Holder int    `json:"holder"`
	Item   string `json:"item,omitempty"` // empty: the whole session
}

type RevokeProxy struct {
	Header
	Giver int `json:"giver"`
}

type RequestFloor struct {
	Header
	Seat int       `json:"seat"`
	Kind FloorKind `json:"kind"`
}

type CancelFloorRequest struct {
	Header
	Seat int `json:"seat"`
}

// GrantFloor gives the floor to Seat, or to the head of the queue when Seat
// is 0. Whoever spoke before stops.
type GrantFloor struct {
	Header
	Seat int `json:"seat,omitempty"`
}

// EndFloor ends the current speech (the chair withdraws the floor or the
// speaker yields).
type EndFloor struct{ Header }

// SetFloorControl switches floor control on or off: while on, only the chair
// and the floor holder may open their microphones (the media server enforces it).
type SetFloorControl struct {
	Header
	Enabled bool `json:"enabled"`
}

type AddItem struct {
	Header
	ID           string `json:"id"`
	Title        string `json:"title"`
	Kind         string `json:"kind,omitempty"`
	InPersonOnly bool   `json:"inPersonOnly,omitempty"`
}

type OpenItem struct {
	Header
	ID string `json:"id"`
}

type CloseItem struct {
	Header
	ID string `json:"id"`
}

type PostponeItem struct {
	Header
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// RequestSecretBallot records that Requesters members asked for a secret
// ballot on the open item.
type RequestSecretBallot struct {
	Header
	Item       string `json:"item"`
	Requesters int    `json:"requesters"`
}

type OpenVote struct {
	Header
	ID       string   `json:"id"`
	Item     string   `json:"item"`
	Mode     VoteMode `json:"mode"`
	Question string   `json:"question,omitempty"`
}

// CastBallot records Seat's vote. A member casts it for their own seat or
// for a seat whose proxy they hold; the chair or clerk may record it during
// a roll call or a show of hands.
type CastBallot struct {
	Header
	Vote   string `json:"vote"`
	Seat   int    `json:"seat"`
	Choice Choice `json:"choice"`
	// Candidate is the seat an election ballot names (choice "candidate", the default then).
	Candidate int `json:"candidate,omitempty"`
}

// RecordTally records the tellers' count of a secret ballot held in the chamber: for a motion
// for, against and blank; for an election round the voters, blank and spoilt papers apart,
// and each candidate's votes.
type RecordTally struct {
	Header
	Vote string `json:"vote"`
	Tally
}

// CloseVote closes a vote. NonVoters are the seats the closer acknowledges as taking no part:
// while members present or represented have not voted, the vote closes only when NonVoters
// names exactly them, so that nobody is left out by oversight.
type CloseVote struct {
	Header
	Vote      string `json:"vote"`
	NonVoters []int  `json:"nonVoters,omitempty"`
}

// RecordBleep records a passage the chair cut from the public broadcast, from From to To in
// the room's time. The passage may lie before the command's time (the chair bleeps the last
// seconds, which the delayed public has not heard yet).
type RecordBleep struct {
	Header
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Decide validates a command against the state and the profile and returns
// the events that record it, in order. It does not change the state: the
// caller appends the events to its journal, then Applies them.
func (s *State) Decide(c Command) ([]Event, error) {
	h := c.Meta()
	if h.At.IsZero() {
		return nil, refuse(ErrInvalid, "command has no time")
	}
	if h.At.Before(s.last) {
		return nil, refuse(ErrInvalid, "command at %s is earlier than the last event (%s)",
			h.At.Format(time.RFC3339Nano), s.last.Format(time.RFC3339Nano))
	}
	return c.decide(s)
}

// Execute decides and applies in one step, for callers without a journal
// (tests, previews).
func (s *State) Execute(c Command) ([]Event, error) {
	events, err := s.Decide(c)
	if err != nil {
		return nil, err
	}
	if err := s.applyAll(events); err != nil {
		return nil, fmt.Errorf("internal error: decided event does not apply: %w", err)
	}
	return events, nil
}

// actsFor refuses a member acting for a seat other than their own.
func actsFor(h Header, seat int) error {
	if h.By.Role == RoleMember && h.By.Seat != seat {
		return refuse(ErrNotEntitled, "seat %d may not act for seat %d", h.By.Seat, seat)
	}
	return nil
}

// seatList phrases seat numbers for a message: "seat 4", "seats 4, 9".
func seatList(seats []int) string {
	if len(seats) == 1 {
		return "seat " + seatNumbers(seats)
	}
	return "seats " + seatNumbers(seats)
}

func modeList(modes []VoteMode) string {
	parts := make([]string, len(modes))
	for i, m := range modes {
		parts[i] = string(m)
	}
	return strings.Join(parts, ", ")
}

func (c OpenSession) decide(s *State) ([]Event, error) {
	if !s.session.OpenedAt.IsZero() {
		return nil, refuse(ErrState, "the session was already opened")
	}
	if strings.TrimSpace(c.Body.Name) == "" {
		return nil, refuse(ErrInvalid, "the body has no name")
	}
	if c.Body.Profile != s.profile.ID {
		return nil, refuse(ErrInvalid, "body %q names profile %q but the state runs profile %q", c.Body.Name, c.Body.Profile, s.profile.ID)
	}
	if len(s.roster.Seats) == 0 {
		return nil, refuse(ErrInvalid, "the roster is empty")
	}
	if _, err := s.inOffice(c.Chair); err != nil {
		return nil, refuse(ErrUnknown, "chair: %v", err)
	}
	if c.Secretary != 0 {
		if _, err := s.inOffice(c.Secretary); err != nil {
			return nil, refuse(ErrUnknown, "secretary: %v", err)
		}
	}
	return []Event{SessionOpened{Header: c.Header, Sitting: c.Sitting, Roster: slices.Clone(s.roster.Seats)}}, nil
}

func (c CloseSession) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	if err := s.betweenVotes(); err != nil {
		return nil, err
	}
	if it := s.openItem(); it != nil {
		return nil, refuse(ErrState, "item %q is still open", it.ID)
	}
	var out []Event
	if s.floor.holder != 0 {
		out = append(out, FloorEnded{Header: c.Header, Seat: s.floor.holder})
	}
	return append(out, SessionClosed{Header: c.Header}), nil
}

func (c ChangeChair) decide(s *State) ([]Event, error) {
	if err := s.seatInOpenSession(c.Seat); err != nil {
		return nil, err
	}
	if !s.present(c.Seat) {
		return nil, refuse(ErrNotPresent, "seat %d cannot take the chair: not present", c.Seat)
	}
	if c.Seat == s.session.Chair {
		return nil, refuse(ErrState, "seat %d already presides", c.Seat)
	}
	if v := s.openVote(); v != nil {
		return nil, refuse(ErrState, "the chair cannot change during vote %q", v.ID)
	}
	return []Event{ChairChanged{Header: c.Header, Seat: c.Seat}}, nil
}

// revokeOnArrival ends a giver's proxy when the profile says that arriving
// cancels it.
func (s *State) revokeOnArrival(h Header, seat int) []Event {
	if s.profile.Proxies.OnGiverArrival == GiverRevokes && s.proxyFrom(seat) != nil {
		return []Event{ProxyRevoked{Header: h, Giver: seat, Reason: ProxyGiverArrived}}
	}
	return nil
}

func (c RecordArrival) decide(s *State) ([]Event, error) {
	if err := s.seatInOpenSession(c.Seat); err != nil {
		return nil, err
	}
	switch c.Place {
	case InChamber:
	case Remote:
		if !s.profile.Remote.Allowed {
			return nil, refuse(ErrRemoteNotAllowed, "seat %d cannot join remotely: profile %s does not allow remote participation", c.Seat, s.profile.ID)
		}
	default:
		return nil, refuse(ErrInvalid, "unknown place %q (chamber or remote)", c.Place)
	}
	if pl, _ := s.place(c.Seat); pl == c.Place {
		return nil, refuse(ErrState, "seat %d is already recorded as %s since %s", c.Seat, c.Place,
			s.seats[c.Seat].current().From.Format("15:04"))
	}
	out := []Event{MemberArrived{Header: c.Header, Seat: c.Seat, Place: c.Place}}
	if c.Place == InChamber {
		out = append(out, s.revokeOnArrival(c.Header, c.Seat)...)
	}
	return out, nil
}

func (c VerifyRemote) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	pl, verified := s.place(c.Seat)
	if pl != Remote {
		return nil, refuse(ErrNotPresent, "seat %d is not connected remotely", c.Seat)
	}
	if verified {
		return nil, refuse(ErrState, "seat %d is already verified", c.Seat)
	}
	return append([]Event{RemoteVerified{Header: c.Header, Seat: c.Seat}}, s.revokeOnArrival(c.Header, c.Seat)...), nil
}

func (c RecordDeparture) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	if s.seats[c.Seat].current() == nil {
		return nil, refuse(ErrNotPresent, "seat %d is not recorded as present", c.Seat)
	}
	switch c.Reason {
	case LeftSession, ConnectionLost, Withdrew:
	case "":
		c.Reason = LeftSession
	default:
		return nil, refuse(ErrInvalid, "unknown departure reason %q", c.Reason)
	}
	if !c.LostAt.IsZero() {
		if c.Reason != ConnectionLost {
			return nil, refuseEnFr(ErrInvalid, "a departure time of its own is for a lost connection, not %q",
				"une heure de départ propre ne vaut que pour une connexion perdue, pas %q", c.Reason)
		}
		if c.LostAt.After(c.At) || c.LostAt.Before(s.seats[c.Seat].current().From) {
			from := s.seats[c.Seat].current().From.Format(time.RFC3339)
			return nil, refuseEnFr(ErrInvalid, "seat %d: connection lost at %s, outside its attendance (from %s until now)",
				"siège %d : connexion perdue à %s, hors de sa présence (depuis %s)", c.Seat, c.LostAt.Format(time.RFC3339), from)
		}
	}
	return []Event{MemberDeparted{Header: c.Header, Seat: c.Seat, Reason: c.Reason, LostAt: c.LostAt}}, nil
}

func (c GiveProxy) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	p := s.profile
	if p.Proxies.PerHolder == 0 {
		return nil, refuse(ErrProxyCap, "profile %s allows no proxies", p.ID)
	}
	if _, err := s.inOffice(c.Giver); err != nil {
		return nil, err
	}
	if _, err := s.inOffice(c.Holder); err != nil {
		return nil, err
	}
	if c.Giver == c.Holder {
		return nil, refuse(ErrInvalid, "seat %d cannot give a proxy to itself", c.Giver)
	}
	if c.Item != "" {
		it, err := s.item(c.Item)
		if err != nil {
			return nil, err
		}
		if it.Status == StatusClosed || it.Status == StatusPostponed {
			return nil, refuse(ErrState, "item %q is %s", it.ID, it.Status)
		}
	}
	if prev := s.proxyFrom(c.Giver); prev != nil {
		return nil, refuse(ErrState, "seat %d already gave a proxy to seat %d; revoke it first", c.Giver, prev.Holder)
	}
	if !s.present(c.Holder) {
		return nil, refuse(ErrNotPresent, "seat %d must be present to hold a proxy", c.Holder)
	}
	if held := len(s.heldBy(c.Holder)); held >= p.Proxies.PerHolder {
		what := "a proxy"
		if held > 1 {
			what = fmt.Sprintf("%d proxies", held)
		}
		return nil, refuse(ErrProxyCap, "seat %d already holds %s (profile %s allows %d)", c.Holder, what, p.ID, p.Proxies.PerHolder)
	}
	return []Event{ProxyGiven{Header: c.Header, Giver: c.Giver, Holder: c.Holder, Item: c.Item}}, nil
}

func (c RevokeProxy) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	if err := actsFor(c.Header, c.Giver); err != nil {
		return nil, err
	}
	if s.proxyFrom(c.Giver) == nil {
		return nil, refuse(ErrState, "seat %d has no proxy in force", c.Giver)
	}
	return []Event{ProxyRevoked{Header: c.Header, Giver: c.Giver, Reason: ProxyWithdrawn}}, nil
}

func (c RequestFloor) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	if err := actsFor(c.Header, c.Seat); err != nil {
		return nil, err
	}
	if c.Kind == "" {
		c.Kind = Speak
	}
	if c.Kind != Speak && c.Kind != PointOfOrder {
		return nil, refuse(ErrInvalid, "unknown floor request %q (speak or point-of-order)", c.Kind)
	}
	if !s.present(c.Seat) {
		return nil, refuse(ErrNotPresent, "seat %d is not present", c.Seat)
	}
	if s.floor.holder == c.Seat && c.Kind == Speak {
		return nil, refuse(ErrState, "seat %d already has the floor", c.Seat)
	}
	for _, r := range s.floor.requests {
		if r.Seat == c.Seat && r.Kind == c.Kind {
			return nil, refuse(ErrState, "seat %d is already in the queue (%s)", c.Seat, c.Kind)
		}
	}
	return []Event{FloorRequested{Header: c.Header, Seat: c.Seat, Kind: c.Kind}}, nil
}

func (c CancelFloorRequest) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	if err := actsFor(c.Header, c.Seat); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(s.floor.requests, func(r FloorRequest) bool { return r.Seat == c.Seat }) {
		return nil, refuse(ErrState, "seat %d is not in the queue", c.Seat)
	}
	return []Event{FloorRequestCancelled{Header: c.Header, Seat: c.Seat}}, nil
}

func (c GrantFloor) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	if err := s.notSuspended("giving the floor", "de donner la parole"); err != nil {
		return nil, err
	}
	seat, kind := c.Seat, Speak
	queue := s.FloorQueue()
	if seat == 0 {
		if len(queue) == 0 {
			return nil, refuse(ErrState, "nobody is waiting for the floor")
		}
		seat, kind = queue[0].Seat, queue[0].Kind
	} else {
		// A seat with a point of order pending is granted for it first.
		for _, r := range queue {
			if r.Seat == seat {
				kind = r.Kind
				break
			}
		}
	}
	if _, err := s.inOffice(seat); err != nil {
		return nil, err
	}
	if !s.present(seat) {
		return nil, refuse(ErrNotPresent, "seat %d is not present", seat)
	}
	if s.floor.holder == seat {
		return nil, refuse(ErrState, "seat %d already has the floor", seat)
	}
	var out []Event
	if s.floor.holder != 0 {
		out = append(out, FloorEnded{Header: c.Header, Seat: s.floor.holder})
	}
	return append(out, FloorGranted{Header: c.Header, Seat: seat, Kind: kind}), nil
}

func (c EndFloor) decide(s *State) ([]Event, error) {
	if s.floor.holder == 0 {
		return nil, refuse(ErrState, "nobody has the floor")
	}
	if err := actsFor(c.Header, s.floor.holder); err != nil {
		return nil, err
	}
	return []Event{FloorEnded{Header: c.Header, Seat: s.floor.holder}}, nil
}

func (c SetFloorControl) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	if s.floor.controlled == c.Enabled {
		if c.Enabled {
			return nil, refuse(ErrState, "floor control is already on")
		}
		return nil, refuse(ErrState, "floor control is already off")
	}
	return []Event{FloorControlSet{Header: c.Header, Enabled: c.Enabled}}, nil
}

func (c AddItem) decide(s *State) ([]Event, error) {
	if !s.session.ClosedAt.IsZero() {
		return nil, refuse(ErrState, "the session is closed")
	}
	if strings.TrimSpace(c.ID) == "" || strings.TrimSpace(c.Title) == "" {
		return nil, refuse(ErrInvalid, "an agenda item needs an id and a title")
	}
	if _, err := s.item(c.ID); err == nil {
		return nil, refuse(ErrState, "agenda item %q already exists", c.ID)
	}
	kind := c.Kind
	if kind == "" {
		kind = DefaultKind
	}
	if _, ok := s.profile.Kind(kind); !ok {
		return nil, refuse(ErrInvalid, "unknown item kind %q: profile %s knows %s (type de point inconnu : %s)",
			c.Kind, s.profile.ID, s.profile.kindNames(), s.profile.kindNames())
	}
	return []Event{ItemAdded{Header: c.Header, Item: c.ID, Title: c.Title, Kind: kind, InPersonOnly: c.InPersonOnly}}, nil
}

func (c OpenItem) decide(s *State) ([]Event, error) {
	it, err := s.itemOpenable(c.ID)
	if err != nil {
		return nil, err
	}
	if err := s.notSuspended("opening an item", "d'ouvrir un point"); err != nil {
		return nil, err
	}
	if err := s.inPersonAllowed(it, "opened"); err != nil {
		return nil, err
	}
	// CGCT L2121-14: for the mayor's own accounts the council elects its president.
	if mayor := s.session.openingChair(); s.kindOf(it).ChairWithdraws && s.session.Chair == mayor {
		return nil, refuse(ErrNotEntitled, "item %q (%s) cannot be opened while seat %d, who opened the sitting, presides: hand the chair to the member the council elects",
			it.ID, it.Kind, mayor)
	}
	q := s.quorumFor(it.ID)
	if !q.Reached {
		return nil, &QuorumError{Quorum: q, Opening: fmt.Sprintf("item %q", it.ID)}
	}
	return []Event{ItemOpened{Header: c.Header, Item: it.ID, Quorum: q}}, nil
}

func (c CloseItem) decide(s *State) ([]Event, error) {
	it, err := s.itemUnderDiscussion(c.ID)
	if err != nil {
		return nil, err
	}
	if err := s.betweenVotes(); err != nil {
		return nil, err
	}
	return []Event{ItemClosed{Header: c.Header, Item: it.ID}}, nil
}

func (c PostponeItem) decide(s *State) ([]Event, error) {
	it, err := s.itemPostponable(c.ID)
	if err != nil {
		return nil, err
	}
	return []Event{ItemPostponed{Header: c.Header, Item: it.ID, Reason: c.Reason}}, nil
}

func (c RequestSecretBallot) decide(s *State) ([]Event, error) {
	if err := s.sessionOpen(); err != nil {
		return nil, err
	}
	it, err := s.itemUnderDiscussion(c.Item)
	if err != nil {
		return nil, err
	}
	if v := s.openVote(); v != nil {
		return nil, refuse(ErrState, "vote %q is open; a secret ballot must be asked before voting", v.ID)
	}
	if it.SecretBallot != nil {
		return nil, refuse(ErrState, "a secret ballot was already requested on item %q", it.ID)
	}
	p := s.profile
	if !slices.Contains(p.Votes.Modes, Secret) {
		return nil, refuse(ErrVoteMode, "profile %s has no secret ballot", p.ID)
	}
	present := s.quorumFor(it.ID).presentCount()
	need := Threshold(present, p.Votes.SecretBallot.Request, AtLeast)
	if c.Requesters < need || c.Requesters > present {
		return nil, refuse(ErrInvalid, "a secret ballot needs %d of the %d members present to ask (%s); %d asked",
			need, present, p.Votes.SecretBallot.Request, c.Requesters)
	}
	remote := s.remoteParticipants()
	req := SecretBallotRequested{Header: c.Header, Item: it.ID, Requesters: c.Requesters, Present: present, Outcome: SecretHeld, Remote: remote}
	if len(remote) == 0 {
		return []Event{req}, nil
	}
	if p.Votes.SecretBallot.WithRemote == SecretRefused {
		return nil, refuse(ErrVoteMode, "a secret ballot cannot be held while remote members take part (%s) under profile %s", seatList(remote), p.ID)
	}
	req.Outcome = SecretPostponed
	return []Event{req, ItemPostponed{Header: c.Header, Item: it.ID, Reason: fmt.Sprintf(
		"secret ballot requested by %d of %d members present while remote members take part (%s): postponed to a session held in person (profile %s)",
		c.Requesters, present, seatList(remote), p.ID)}}, nil
}

func (c OpenVote) decide(s *State) ([]Event, error) {
	it, err := s.voteOpenable(c.ID, c.Item, c.Mode)
	if err != nil {
		return nil, err
	}
	if err := s.notSuspended("opening a vote", "d'ouvrir un vote"); err != nil {
		return nil, err
	}
	p := s.profile
	if !slices.Contains(p.Votes.Modes, c.Mode) {
		return nil, refuse(ErrVoteMode, "profile %s does not allow %s votes (allowed: %s)", p.ID, c.Mode, modeList(p.Votes.Modes))
	}
	kind := s.kindOf(it)
	if kind.Vote == VoteNone {
		return nil, refuseEnFr(ErrInvalid, "item %q (%s) puts nothing to the vote", "le point %q (%s) ne met rien aux voix", it.ID, it.Kind)
	}
	if kind.Vote == VoteListElection {
		return nil, refuseEnFr(ErrInvalid, "item %q (%s): list elections are not supported yet", "point %q (%s) : les élections de liste ne sont pas encore prises en charge", it.ID, it.Kind)
	}
	secret, why, pourquoi := s.secretRequired(it)
	switch {
	case c.Mode == Secret && !secret:
		return nil, refuse(ErrVoteMode, "a secret ballot on item %q needs a request by members present first", it.ID)
	case c.Mode != Secret && secret:
		return nil, &RuleError{Kind: ErrVoteMode, Msg: fmt.Sprintf("item %q must be voted by secret ballot: %s", it.ID, why),
			Fr: fmt.Sprintf("le point %q doit être voté au scrutin secret : %s", it.ID, pourquoi)}
	case it.PublicVote != nil && c.Mode != RollCall && c.Mode != Electronic:
		return nil, refuseEnFr(ErrVoteMode, "item %q: %s asked for a public vote, which records names: vote by roll call or electronically",
			"point %q : le scrutin public, qui enregistre les noms, a été demandé par les sièges %s : votez par appel nominal ou électroniquement",
			it.ID, seatNumbers(it.PublicVote.Requesters))
	}
	var round int
	if kind.Vote == VoteElection {
		if round, err = s.nextRound(it); err != nil {
			return nil, err
		}
	}
	if err := s.inPersonAllowed(it, "voted"); err != nil {
		return nil, err
	}
	if mayor := s.session.openingChair(); s.kindOf(it).ChairWithdraws {
		switch {
		case s.session.Chair == mayor:
			return nil, refuse(ErrNotEntitled, "vote on item %q refused: seat %d, who opened the sitting, may not preside over it (CGCT L2121-14)", it.ID, mayor)
		case s.present(mayor):
			return nil, refuse(ErrState, "vote on item %q refused: seat %d must withdraw before the vote (CGCT L2121-14); record the departure first", it.ID, mayor)
		}
	}
	if remote := s.remoteParticipants(); len(remote) > 0 {
		if !slices.Contains(p.Remote.VoteModes, c.Mode) {
			return nil, refuse(ErrVoteMode, "%s vote refused: remote members take part (%s) and profile %s then allows only %s",
				c.Mode, seatList(remote), p.ID, modeList(p.Remote.VoteModes))
		}
	}
	q := s.quorumFor(it.ID)
	if !q.Reached {
		return nil, &QuorumError{Quorum: q, Opening: fmt.Sprintf("vote %q", c.ID)}
	}
	opened := VoteOpened{Header: c.Header, Vote: c.ID, Item: it.ID, Mode: c.Mode, Question: c.Question, Quorum: q}
	if round > 0 {
		opened.Round, opened.Candidates = round, slices.Clone(it.Candidates)
	}
	return []Event{opened}, nil
}

// inPersonAllowed refuses to open or vote an item taken in person only while remote members
// take part.
func (s *State) inPersonAllowed(it *Item, what string) error {
	remote := s.remoteParticipants()
	if !it.InPersonOnly || len(remote) == 0 {
		return nil
	}
	why := "it is flagged in person only"
	if s.profile.inPersonOnly(it.Kind) {
		why = fmt.Sprintf("profile %s reserves %q items to members in person", s.profile.ID, it.Kind)
	}
	return refuse(ErrInPersonOnly, "item %q cannot be %s: %s, and remote members take part (%s)", it.ID, what, why, seatList(remote))
}

func (c CastBallot) decide(s *State) ([]Event, error) {
	if c.Candidate != 0 && c.Choice == "" {
		c.Choice = ForCandidate
	}
	v, err := s.ballotCastable(c.Vote, c.Seat, c.Choice, c.Candidate)
	if err != nil {
		return nil, err
	}
	caster := c.Seat
	if !s.present(c.Seat) {
		holder, ok := s.representative(c.Seat, v.Item)
		if !ok {
			return nil, refuse(ErrNotPresent, "seat %d is neither present nor represented on item %q", c.Seat, v.Item)
		}
		caster = holder
	}
	by := c.By
	keyer := by.Role == RoleChair || by.Role == RoleClerk
	switch {
	case by.Seat == caster && by.Seat != 0:
	case v.Mode == Electronic && keyer:
		// A member in the chamber without a device answers aloud, and the chair or the clerk
		// records it; the event's header names who did. A remote member has a device and the
		// vote is theirs to send.
		if pl, _ := s.place(caster); pl != InChamber {
			return nil, refuseEnFr(ErrNotEntitled, "electronic vote: seat %d takes part remotely and sends the ballot of seat %d themselves",
				"vote électronique : le siège %d participe à distance et envoie lui-même le bulletin du siège %d", caster, c.Seat)
		}
	case v.Mode == Electronic:
		return nil, refuse(ErrNotEntitled, "electronic vote: seat %d's ballot must come from seat %d", c.Seat, caster)
	case keyer:
		// The chair or clerk records answers in a roll call or a show of hands.
	default:
		return nil, refuse(ErrNotEntitled, "seat %d may not vote for seat %d", by.Seat, c.Seat)
	}
	if s.remoteVerified(caster) {
		it, _ := s.item(v.Item)
		if it.InPersonOnly {
			return nil, refuse(ErrInPersonOnly, "seat %d takes part remotely and item %q must be voted in person", caster, it.ID)
		}
		if !slices.Contains(s.profile.Remote.VoteModes, v.Mode) {
			return nil, refuse(ErrVoteMode, "seat %d takes part remotely and profile %s does not allow %s votes then", caster, s.profile.ID, v.Mode)
		}
	}
	return []Event{BallotCast{Header: c.Header, Vote: v.ID, Seat: c.Seat, Choice: c.Choice, Candidate: c.Candidate, CastBy: caster}}, nil
}

func (c RecordTally) decide(s *State) ([]Event, error) {
	t := c.Tally
	t.Candidates = slices.Clone(t.Candidates)
	v, err := s.tallyRecordable(c.Vote, t)
	if err != nil {
		return nil, err
	}
	if v.Round > 0 {
		if err := s.electionTallyValid(v, t); err != nil {
			return nil, err
		}
		return []Event{TallyRecorded{Header: c.Header, Vote: v.ID, Tally: t}}, nil
	}
	if c.Spoilt != 0 || c.Voters != 0 || len(c.Candidates) > 0 {
		return nil, refuseEnFr(ErrInvalid, "vote %q is on a motion: count for, against and blank or spoilt papers",
			"le vote %q porte sur une délibération : comptez les pour, les contre et les bulletins blancs ou nuls", v.ID)
	}
	voters := s.quorumFor(v.Item).voters()
	if total := c.For + c.Against + c.Blank; total > voters {
		return nil, refuse(ErrInvalid, "the tally counts %d papers but only %d members are present or represented", total, voters)
	}
	return []Event{TallyRecorded{Header: c.Header, Vote: v.ID, Tally: t}}, nil
}

func (c CloseVote) decide(s *State) ([]Event, error) {
	v, err := s.voteClosable(c.Vote)
	if err != nil {
		return nil, err
	}
	nonVoters, err := s.nonVotersConfirmed(v, c.NonVoters)
	if err != nil {
		return nil, err
	}
	if v.Round > 0 {
		r := s.electionResult(v)
		return []Event{VoteClosed{Header: c.Header, Vote: v.ID, Result: Result{Chair: r.Chair}, Election: &r, NonVoters: nonVoters}}, nil
	}
	return []Event{VoteClosed{Header: c.Header, Vote: v.ID, Result: s.result(v), NonVoters: nonVoters}}, nil
}

func (c RecordBleep) decide(s *State) ([]Event, error) {
	if err := s.bleepRecordable(c.From, c.To); err != nil {
		return nil, err
	}
	return []Event{ProgrammeBleeped{Header: c.Header, From: c.From, To: c.To}}, nil
}
