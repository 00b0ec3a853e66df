package council

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Role is what the actor does in the session. It mirrors the token's
// hemicycle role; council uses it only to tell a member acting for their
// own seat from the chair or clerk recording for others.
type Role string

const (
	RoleChair  Role = "chair"
	RoleClerk  Role = "clerk"
	RoleMember Role = "member"
)

// Actor is who caused an event: the verified identity and, for members, the
// seat.
type Actor struct {
	Identity string `json:"identity"`
	Seat     int    `json:"seat,omitempty"`
	Role     Role   `json:"role"`
}

// Header is carried by every command and event: when it happened (given by
// the caller; council has no clock) and who did it.
type Header struct {
	At time.Time `json:"at"`
	By Actor     `json:"by"`
}

// Meta returns the header; events and commands get it by embedding Header.
func (h Header) Meta() Header { return h }

// Stamp sets the header of the command or event that embeds it: the server's time and actor,
// set after a request's body so that no body can choose them.
func (h *Header) Stamp(by Header) { *h = by }

// Event is a fact in a session's journal. The set of events is closed: only
// the types of this package implement it.
type Event interface {
	// Type is the stable tag stored in the journal next to the JSON.
	Type() string
	Meta() Header
	apply(s *State) error
}

// Place is where a member attends from.
type Place string

const (
	InChamber Place = "chamber"
	Remote    Place = "remote"
)

// DepartureReason is recorded for the minutes and the quorum history.
type DepartureReason string

const (
	LeftSession    DepartureReason = "left"
	ConnectionLost DepartureReason = "connection-lost" // emitted by the caller after the grace period
	Withdrew       DepartureReason = "withdrew"        // e.g. a member with an interest in the item
)

// FloorKind is what a member asks the floor for.
type FloorKind string

const (
	Speak        FloorKind = "speak"
	PointOfOrder FloorKind = "point-of-order"
)

// Choice is a ballot's content.
type Choice string

const (
	For       Choice = "for"
	Against   Choice = "against"
	Abstain   Choice = "abstain"
	NotVoting Choice = "not-voting" // takes no part in the vote
)

// SecretOutcome is what became of an adopted secret-ballot request.
type SecretOutcome string

const (
	SecretHeld      SecretOutcome = "held"
	SecretPostponed SecretOutcome = "postponed"
)

// ProxyEnd says why a proxy stopped.
type ProxyEnd string

const (
	ProxyWithdrawn    ProxyEnd = "revoked"
	ProxyGiverArrived ProxyEnd = "giver-arrived"
)

type SessionOpened struct {
	Header
	Sitting
	// Roster is the roster in force when the session opened, so that the
	// journal alone says who was in office.
	Roster []Seat `json:"roster"`
}

type SessionClosed struct {
	Header
	// Reason, Quorum and SecondConvocationFrom are set when the sitting closed for lack of a
	// quorum: the attendance then, and the first day of the second convocation's sitting.
	Reason                ClosingReason `json:"reason,omitempty"`
	Quorum                *Quorum       `json:"quorum,omitempty"`
	SecondConvocationFrom time.Time     `json:"secondConvocationFrom,omitzero"`
}

type ChairChanged struct {
	Header
	Seat int `json:"seat"`
}

type MemberArrived struct {
	Header
	Seat  int   `json:"seat"`
	Place Place `json:"place"`
}

type RemoteVerified struct {
	Header
	Seat int `json:"seat"`
}

type MemberDeparted struct {
	Header
	Seat   int             `json:"seat"`
	Reason DepartureReason `json:"reason"`
	LostAt time.Time       `json:"lostAt,omitzero"` // a lost connection: when the member left
}

type ProxyGiven struct {
	Header
	Giver  int    `json:"giver"`
	Holder int    `json:"holder"`
	Item   string `json:"item,omitempty"` // empty: the whole session
}

type ProxyRevoked struct {
	Header
	Giver  int      `json:"giver"`
	Reason ProxyEnd `json:"reason"`
}

type FloorRequested struct {
	Header
	Seat int       `json:"seat"`
	Kind FloorKind `json:"kind"`
}

type FloorRequestCancelled struct {
	Header
	Seat int `json:"seat"`
}

type FloorGranted struct {
	Header
	Seat int       `json:"seat"`
	Kind FloorKind `json:"kind"`
}

type FloorEnded struct {
	Header
	Seat int `json:"seat"`
}

type FloorControlSet struct {
	Header
	Enabled bool `json:"enabled"`
}

type ItemAdded struct {
	Header
	Item         string `json:"item"`
	Title        string `json:"title"`
	Kind         string `json:"kind,omitempty"`
	InPersonOnly bool   `json:"inPersonOnly,omitempty"`
}

type ItemOpened struct {
	Header
	Item   string `json:"item"`
	Quorum Quorum `json:"quorum"`
}

type ItemClosed struct {
	Header
	Item string `json:"item"`
}

type ItemPostponed struct {
	Header
	Item   string `json:"item"`
	Reason string `json:"reason"`
}

type SecretBallotRequested struct {
	Header
	Item       string        `json:"item"`
	Requesters int           `json:"requesters"`
	Present    int           `json:"present"`
	Outcome    SecretOutcome `json:"outcome"`
	Remote     []int         `json:"remote,omitempty"` // remote members taking part at the request
}

type VoteOpened struct {
	Header
	Vote     string   `json:"vote"`
	Item     string   `json:"item"`
	Mode     VoteMode `json:"mode"`
	Question string   `json:"question,omitempty"`
	Quorum   Quorum   `json:"quorum"`
	// Round and Candidates: an election's round and the candidates standing in it.
	Round      int   `json:"round,omitempty"`
	Candidates []int `json:"candidates,omitempty"`
}

type BallotCast struct {
	Header
	Vote      string `json:"vote"`
	Seat      int    `json:"seat"`                // whose vote
	Choice    Choice `json:"choice"`              //
	Candidate int    `json:"candidate,omitempty"` // the seat an election ballot names
	CastBy    int    `json:"castBy"`              // the seat present; differs from Seat for a proxy
}

// TallyRecorded is the tellers' count: a motion's for, against and blank (blank and spoilt
// papers); an election round's voters, blank and spoilt papers apart, each candidate's votes.
type TallyRecorded struct {
	Header
	Vote string `json:"vote"`
	Tally
}

type VoteClosed struct {
	Header
	Vote   string `json:"vote"`
	Result Result `json:"result"`
	// Election is an election round's result (Result then holds only the chair).
	Election *ElectionResult `json:"election,omitempty"`
	// NonVoters are the seats present or represented that had not voted when the vote closed,
	// as the closer confirmed them (none in a secret ballot, counted on paper).
	NonVoters []int `json:"nonVoters,omitempty"`
}

// ProgrammeBleeped records a passage whose sound the chair cut from the public broadcast
// (replaced by a tone), From and To being the room's times of the passage. It is a fact of the
// sitting's record, not of the deliberation: quorum, floor and votes ignore it.
type ProgrammeBleeped struct {
	Header
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

func (SessionOpened) Type() string         { return "session.opened" }
func (SessionClosed) Type() string         { return "session.closed" }
func (ChairChanged) Type() string          { return "chair.changed" }
func (MemberArrived) Type() string         { return "member.arrived" }
func (RemoteVerified) Type() string        { return "remote.verified" }
func (MemberDeparted) Type() string        { return "member.departed" }
func (ProxyGiven) Type() string            { return "proxy.given" }
func (ProxyRevoked) Type() string          { return "proxy.revoked" }
func (FloorRequested) Type() string        { return "floor.requested" }
func (FloorRequestCancelled) Type() string { return "floor.request-cancelled" }
func (FloorGranted) Type() string          { return "floor.granted" }
func (FloorEnded) Type() string            { return "floor.ended" }
func (FloorControlSet) Type() string       { return "floor.control-set" }
func (ItemAdded) Type() string             { return "item.added" }
func (ItemOpened) Type() string            { return "item.opened" }
func (ItemClosed) Type() string            { return "item.closed" }
func (ItemPostponed) Type() string         { return "item.postponed" }
func (SecretBallotRequested) Type() string { return "secret-ballot.requested" }
func (VoteOpened) Type() string            { return "vote.opened" }
func (BallotCast) Type() string            { return "ballot.cast" }
func (TallyRecorded) Type() string         { return "vote.tally-recorded" }
func (VoteClosed) Type() string            { return "vote.closed" }
func (ProgrammeBleeped) Type() string      { return "programme.bleeped" }

// EncodeEvent gives the type tag and JSON a journal stores.
func EncodeEvent(e Event) (typ string, data json.RawMessage, err error) {
	b, err := json.Marshal(e)
	if err != nil {
		return "", nil, fmt.Errorf("encode %s event: %w", e.Type(), err)
	}
	return e.Type(), b, nil
}

// DecodeEvent rebuilds an event from its tag and JSON. Unknown tags and
// unknown fields are errors: a journal this version does not fully
// understand must not be turned into minutes silently missing something.
func DecodeEvent(typ string, data []byte) (Event, error) {
	switch typ {
	case "session.opened":
		return decodeAs[SessionOpened](typ, data)
	case "session.closed":
		return decodeAs[SessionClosed](typ, data)
	case "chair.changed":
		return decodeAs[ChairChanged](typ, data)
	case "member.arrived":
		return decodeAs[MemberArrived](typ, data)
	case "remote.verified":
		return decodeAs[RemoteVerified](typ, data)
	case "member.departed":
		return decodeAs[MemberDeparted](typ, data)
	case "proxy.given":
		return decodeAs[ProxyGiven](typ, data)
	case "proxy.revoked":
		return decodeAs[ProxyRevoked](typ, data)
	case "floor.requested":
		return decodeAs[FloorRequested](typ, data)
	case "floor.request-cancelled":
		return decodeAs[FloorRequestCancelled](typ, data)
	case "floor.granted":
		return decodeAs[FloorGranted](typ, data)
	case "floor.ended":
		return decodeAs[FloorEnded](typ, data)
	case "floor.control-set":
		return decodeAs[FloorControlSet](typ, data)
	case "item.added":
		return decodeAs[ItemAdded](typ, data)
	case "item.opened":
		return decodeAs[ItemOpened](typ, data)
	case "item.closed":
		return decodeAs[ItemClosed](typ, data)
	case "item.postponed":
		return decodeAs[ItemPostponed](typ, data)
	case "secret-ballot.requested":
		return decodeAs[SecretBallotRequested](typ, data)
	case "vote.opened":
		return decodeAs[VoteOpened](typ, data)
	case "ballot.cast":
		return decodeAs[BallotCast](typ, data)
	case "vote.tally-recorded":
		return decodeAs[TallyRecorded](typ, data)
	case "vote.closed":
		return decodeAs[VoteClosed](typ, data)
	case "programme.bleeped":
		return decodeAs[ProgrammeBleeped](typ, data)
	case "candidate.declared":
		return decodeAs[CandidateDeclared](typ, data)
	case "candidate.withdrawn":
		return decodeAs[CandidateWithdrawn](typ, data)
	case "public-vote.decided":
		return decodeAs[PublicVoteDecided](typ, data)
	case "public-vote.requested":
		return decodeAs[PublicVoteRequested](typ, data)
	case "ballot.corrected":
		return decodeAs[BallotCorrected](typ, data)
	case "sitting.suspended":
		return decodeAs[SittingSuspended](typ, data)
	case "sitting.resumed":
		return decodeAs[SittingResumed](typ, data)
	case "closed-door.voted":
		return decodeAs[ClosedDoorVoted](typ, data)
	case "closed-door.ended":
		return decodeAs[ClosedDoorEnded](typ, data)
	case "minutes.approved":
		return decodeAs[MinutesApproved](typ, data)
	}
	return nil, fmt.Errorf("decode event: unknown type %q", typ)
}

func decodeAs[T Event](typ string, data []byte) (Event, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode %s event: %w", typ, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decode %s event: trailing data after the object", typ)
	}
	return v, nil
}

// Record is an event in its stored form.
type Record struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// MarshalEvents writes events as a JSON array of records, the form used to
// export or test a whole session.
func MarshalEvents(events []Event) ([]byte, error) {
	recs := make([]Record, len(events))
	for i, e := range events {
		typ, data, err := EncodeEvent(e)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i+1, err)
		}
		recs[i] = Record{Type: typ, Data: data}
	}
	return json.Marshal(recs)
}

// UnmarshalEvents reads what MarshalEvents wrote.
func UnmarshalEvents(b []byte) ([]Event, error) {
	var recs []Record
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("read event records: %w", err)
	}
	out := make([]Event, len(recs))
	for i, r := range recs {
		e, err := DecodeEvent(r.Type, r.Data)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i+1, err)
		}
		out[i] = e
	}
	return out, nil
}
