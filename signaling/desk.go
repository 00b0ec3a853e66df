package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/store"
)

// CouncilTopic is the data-packet topic on which the deliberation state reaches clients.
const CouncilTopic = "hemicycle.council"

// errNoSession is returned for commands in a room where no session was opened.
var errNoSession = errors.New("no session is open in this room: the chair or the clerk opens one first")

// deliberation keeps the council sessions of this node's rooms: one desk per room, each
// folding its own journal. Every change is appended to the journal (durably) before it is
// applied, acknowledged or pushed to anyone.
type deliberation struct {
	srv      *Server
	journal  store.Journal
	profiles func(name string) (*council.Profile, error)
	now      func() time.Time
	log      *slog.Logger

	mu    sync.Mutex
	desks map[string]*desk
}

// desk is one room's session.
type desk struct {
	d    *deliberation
	room string

	mu         sync.Mutex
	state      *council.State // nil until a session is opened
	seq        uint64         // last journal entry folded
	watchers   map[chan []byte]struct{}
	departures map[int]*time.Timer // seats whose connection dropped, recorded as gone after the grace
}

func newDeliberation(s *Server) *deliberation {
	now := s.cfg.Clock
	if now == nil {
		now = time.Now
	}
	return &deliberation{
		srv:      s,
		journal:  s.cfg.Journal,
		profiles: s.cfg.Profiles,
		now:      now,
		log:      s.log.With("part", "council"),
		desks:    map[string]*desk{},
	}
}

// desk returns the room's desk, rebuilding its state from the journal the first time.
func (d *deliberation) desk(ctx context.Context, room string) (*desk, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dk, ok := d.desks[room]; ok {
		return dk, nil
	}
	dk := &desk{d: d, room: room, watchers: map[chan []byte]struct{}{}, departures: map[int]*time.Timer{}}
	entries, err := d.journal.Read(ctx, room, 1)
	if err != nil {
		return nil, fmt.Errorf("read the journal of room %q: %w", room, err)
	}
	if len(entries) > 0 {
		if err := dk.replay(entries); err != nil {
			return nil, fmt.Errorf("rebuild the session of room %q from its journal: %w", room, err)
		}
		d.log.Info("session restored from the journal", "room", room, "entries", len(entries))
		// Remote members recorded as present on a node that died come back here, or are
		// recorded as departed after the grace like any lost connection.
		if dk.state.Session().Opened() {
			for _, a := range dk.state.AttendanceAll() {
				if a.Presence == council.PresenceRemote || a.Presence == council.PresenceUnverified {
					dk.scheduleDepartureLocked(a.Seat, council.Actor{Identity: "hemicycle", Seat: a.Seat, Role: council.RoleMember})
				}
			}
		}
	}
	d.desks[room] = dk
	return dk, nil
}

// close stops the pending departure timers: a server that stops records nothing more.
func (d *deliberation) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dk := range d.desks {
		dk.mu.Lock()
		for seat, t := range dk.departures {
			t.Stop()
			delete(dk.departures, seat)
		}
		dk.mu.Unlock()
	}
}

// existingDesk returns the desk only if it is already loaded (media hooks must not do I/O).
func (d *deliberation) existingDesk(room string) *desk {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.desks[room]
}

func (dk *desk) replay(entries []store.Entry) error {
	events := make([]council.Event, 0, len(entries))
	for _, e := range entries {
		ev, err := council.DecodeEvent(e.Type, e.Data)
		if err != nil {
			return fmt.Errorf("entry %d: %w", e.Seq, err)
		}
		events = append(events, ev)
	}
	opened, ok := events[0].(council.SessionOpened)
	if !ok {
		return fmt.Errorf("entry 1 is %q, not the opening of a session", entries[0].Type)
	}
	profile, err := dk.d.profiles(opened.Body.Profile)
	if err != nil {
		return fmt.Errorf("legal profile %q: %w", opened.Body.Profile, err)
	}
	st, err := council.Replay(profile, council.Roster{}, events)
	if err != nil {
		return err
	}
	dk.state = st
	dk.seq = entries[len(entries)-1].Seq
	return nil
}

// openSession starts the room's session with its profile and roster.
func (dk *desk) openSession(ctx context.Context, profileName string, roster council.Roster, cmd council.OpenSession) (council.View, error) {
	profile, err := dk.d.profiles(profileName)
	if err != nil {
		return council.View{}, &apiError{status: 400, msg: fmt.Sprintf("legal profile %q: %v", profileName, err)}
	}
	dk.mu.Lock()
	if dk.state != nil || dk.seq > 0 {
		dk.mu.Unlock()
		return council.View{}, &apiError{status: 409, msg: fmt.Sprintf("room %q already has a session (its journal has %d entries): hold the next one in a new room", dk.room, dk.seq)}
	}
	st, err := council.NewState(profile, roster)
	if err != nil {
		dk.mu.Unlock()
		return council.View{}, &apiError{status: 400, msg: err.Error()}
	}
	cmd.Body.Profile = profile.ID
	dk.state = st
	view, err := dk.executeLocked(ctx, cmd)
	if err != nil {
		dk.state = nil
	}
	dk.mu.Unlock()
	if err == nil {
		dk.publish(view)
	}
	return view, err
}

// execute builds a command under the desk's lock, stamped with the server's clock but never
// earlier than the last event (so that requests racing each other are recorded in the order
// they are decided), journals its events durably and applies them.
func (dk *desk) execute(ctx context.Context, by council.Actor, build func(h council.Header) (council.Command, error)) (council.View, error) {
	dk.mu.Lock()
	if dk.state == nil {
		dk.mu.Unlock()
		return council.View{}, &apiError{status: 409, msg: errNoSession.Error()}
	}
	at := dk.d.now()
	if last := dk.state.LastEventAt(); at.Before(last) {
		at = last
	}
	cmd, err := build(council.Header{At: at, By: by})
	if err != nil {
		dk.mu.Unlock()
		return council.View{}, &apiError{status: 400, msg: err.Error()}
	}
	view, err := dk.executeLocked(ctx, cmd)
	dk.mu.Unlock()
	if err == nil {
		dk.publish(view)
		dk.d.enforceFloor(dk)
	}
	return view, err
}

func (dk *desk) executeLocked(ctx context.Context, cmd council.Command) (council.View, error) {
	events, err := dk.state.Decide(cmd)
	if err != nil {
		return council.View{}, err
	}
	for _, ev := range events {
		typ, data, err := council.EncodeEvent(ev)
		if err != nil {
			return council.View{}, err
		}
		entry, err := dk.d.journal.Append(ctx, dk.room, dk.seq+1, ev.Meta().At, typ, data)
		if err != nil {
			// Nothing of this event was applied; the state still matches the journal.
			return council.View{}, fmt.Errorf("record %s in the journal: %w", typ, err)
		}
		if err := dk.state.Apply(ev); err != nil {
			return council.View{}, fmt.Errorf("apply %s: %w", typ, err)
		}
		dk.seq = entry.Seq
	}
	return dk.state.View(dk.d.now()), nil
}

// view returns the current state, or nil without a session.
func (dk *desk) view() *council.View {
	dk.mu.Lock()
	defer dk.mu.Unlock()
	if dk.state == nil {
		return nil
	}
	v := dk.state.View(dk.d.now())
	return &v
}

// stateMessage is what clients receive on topic hemicycle.council and on the event stream.
type stateMessage struct {
	Type string        `json:"type"` // "state"
	Room string        `json:"room"`
	View *council.View `json:"view"`
}

func (dk *desk) publish(view council.View) {
	msg, err := json.Marshal(stateMessage{Type: "state", Room: dk.room, View: &view})
	if err != nil {
		dk.d.log.Warn("encode state", "err", err)
		return
	}
	if r, ok := dk.d.srv.Room(dk.room); ok {
		r.SendData(msg, CouncilTopic, true, nil)
	}
	dk.mu.Lock()
	for w := range dk.watchers {
		select {
		case w <- msg:
		default: // a stalled stream skips a state; the next one is complete anyway
		}
	}
	dk.mu.Unlock()
}

func (dk *desk) watch() (chan []byte, func()) {
	ch := make(chan []byte, 8)
	dk.mu.Lock()
	dk.watchers[ch] = struct{}{}
	dk.mu.Unlock()
	return ch, func() {
		dk.mu.Lock()
		delete(dk.watchers, ch)
		dk.mu.Unlock()
	}
}

// systemActor is who records what the server observes itself (a connection, a loss).
func systemActor(p ParticipantRef) council.Actor {
	a := council.Actor{Identity: p.Identity, Role: council.RoleMember}
	if p.Claims != nil && p.Claims.Council != nil {
		a.Seat = p.Claims.Council.Seat
	}
	return a
}

func memberSeat(p ParticipantRef) int {
	if p.Claims == nil || p.Claims.Council == nil || p.Claims.Council.Role != auth.RoleMember {
		return 0
	}
	return p.Claims.Council.Seat
}

// joined records a member connecting from afar as present remotely (not yet counted: the clerk
// verifies identity), and cancels a pending departure of the same seat.
func (d *deliberation) joined(room string, p ParticipantRef) {
	seat := memberSeat(p)
	if seat == 0 {
		return
	}
	dk, err := d.desk(context.Background(), room)
	if err != nil {
		d.log.Warn("council desk unavailable", "room", room, "err", err)
		return
	}
	dk.mu.Lock()
	if t := dk.departures[seat]; t != nil {
		t.Stop()
		delete(dk.departures, seat)
	}
	var present bool
	if dk.state != nil {
		present = dk.state.Attendance(seat).Presence != council.PresenceAbsent &&
			dk.state.Attendance(seat).Presence != council.PresenceRepresented
	}
	open := dk.state != nil && dk.state.Session().Opened()
	dk.mu.Unlock()
	if !open || present {
		return
	}
	arrival := func(h council.Header) (council.Command, error) {
		return council.RecordArrival{Header: h, Seat: seat, Place: council.Remote}, nil
	}
	if _, err := dk.execute(context.Background(), systemActor(p), arrival); err != nil {
		d.log.Info("remote arrival not recorded", "room", room, "seat", seat, "err", err)
	}
}

// left starts the grace period after which a remote member whose connection is gone is
// recorded as departed.
func (d *deliberation) left(room string, p ParticipantRef) {
	seat := memberSeat(p)
	if seat == 0 {
		return
	}
	dk := d.existingDesk(room)
	if dk == nil {
		return
	}
	dk.mu.Lock()
	defer dk.mu.Unlock()
	if dk.state == nil || !dk.state.Session().Opened() {
		return
	}
	switch dk.state.Attendance(seat).Presence {
	case council.PresenceRemote, council.PresenceUnverified:
	default:
		return
	}
	dk.scheduleDepartureLocked(seat, systemActor(p))
}

// scheduleDepartureLocked records seat as departed once the grace has passed, unless a
// connection for the seat is back by then.
func (dk *desk) scheduleDepartureLocked(seat int, by council.Actor) {
	d := dk.d
	if t := dk.departures[seat]; t != nil {
		t.Stop()
	}
	grace := dk.state.Profile().Remote.DepartureGrace
	if d.srv.cfg.DepartureGrace > 0 {
		grace = d.srv.cfg.DepartureGrace
	}
	var timer *time.Timer
	timer = time.AfterFunc(grace, func() {
		dk.mu.Lock()
		current := dk.departures[seat] == timer
		if current {
			delete(dk.departures, seat)
		}
		dk.mu.Unlock()
		if !current || d.seatConnected(dk.room, seat) {
			return
		}
		departure := func(h council.Header) (council.Command, error) {
			return council.RecordDeparture{Header: h, Seat: seat, Reason: council.ConnectionLost}, nil
		}
		if _, err := dk.execute(context.Background(), by, departure); err != nil {
			d.log.Info("departure not recorded", "room", dk.room, "seat", seat, "err", err)
		} else {
			d.log.Info("remote member recorded as departed after the grace period", "room", dk.room, "seat", seat, "grace", grace)
		}
	})
	dk.departures[seat] = timer
}

// seatConnected reports whether a member of that seat is connected to the room.
func (d *deliberation) seatConnected(room string, seat int) bool {
	r, ok := d.srv.Room(room)
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.participants {
		if memberSeat(p.ref()) == seat {
			return true
		}
	}
	return false
}

// mayUnmute is the floor rule on the media: while floor control is on, only the chair (by
// role or by seat) and the floor holder may open a microphone.
func (d *deliberation) mayUnmute(room string, p ParticipantRef) error {
	dk := d.existingDesk(room)
	if dk == nil {
		return nil
	}
	dk.mu.Lock()
	defer dk.mu.Unlock()
	if dk.state == nil || !dk.state.Session().Opened() || !dk.state.FloorControlled() {
		return nil
	}
	return floorAllows(dk.state, p)
}

func floorAllows(st *council.State, p ParticipantRef) error {
	role := p.Claims.Role()
	if role == auth.RoleChair || role == auth.RoleInterpreter || role == auth.RoleCaptioner {
		return nil
	}
	seat := 0
	if p.Claims.Council != nil {
		seat = p.Claims.Council.Seat
	}
	if seat != 0 && seat == st.Session().Chair {
		return nil
	}
	if holder, _, ok := st.FloorHolder(); ok && seat != 0 && holder == seat {
		return nil
	}
	return errors.New("floor control is on: you may speak once the chair gives you the floor (raise your hand to ask for it)")
}

// enforceFloor mutes, on the server, every open microphone that the floor rule does not allow.
func (d *deliberation) enforceFloor(dk *desk) {
	r, ok := d.srv.Room(dk.room)
	if !ok {
		return
	}
	dk.mu.Lock()
	if dk.state == nil || !dk.state.Session().Opened() || !dk.state.FloorControlled() {
		dk.mu.Unlock()
		return
	}
	type mute struct {
		p   *Participant
		sid string
	}
	var mutes []mute
	r.mu.Lock()
	for _, p := range r.participants {
		if floorAllows(dk.state, p.ref()) == nil {
			continue
		}
		for sid, t := range p.tracks {
			if isMicrophone(t) && !t.info.Muted {
				mutes = append(mutes, mute{p, sid})
			}
		}
	}
	r.mu.Unlock()
	dk.mu.Unlock()
	for _, m := range mutes {
		if _, err := m.p.MuteTrack(m.sid, true); err != nil {
			d.log.Debug("floor mute", "err", err)
		}
	}
}

// commandError turns a refusal into an API error with its reason.
func commandError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var re *council.RuleError
	var qe *council.QuorumError
	switch {
	case errors.As(err, &qe):
		return &apiError{status: 409, msg: qe.Error()}
	case errors.As(err, &re):
		status := 409
		if errors.Is(err, council.ErrNotEntitled) {
			status = 403
		} else if errors.Is(err, council.ErrInvalid) || errors.Is(err, council.ErrUnknown) {
			status = 400
		}
		return &apiError{status: status, msg: re.Error()}
	case errors.Is(err, store.ErrConflict):
		return &apiError{status: 409, msg: "the session changed at the same moment; retry: " + err.Error()}
	}
	msg := err.Error()
	if strings.Contains(msg, "journal") {
		return &apiError{status: 503, msg: "the record could not be written, nothing was changed: " + msg}
	}
	return &apiError{status: 500, msg: msg}
}
