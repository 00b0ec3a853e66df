package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/httpapi"
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
		dk.stopDeparturesLocked()
		dk.mu.Unlock()
	}
}

// existingDesk returns the desk only if it is already loaded (media hooks must not do I/O).
func (d *deliberation) existingDesk(room string) *desk {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.desks[room]
}

// presiding reports whether the caller holds the chair's powers in the room: once a sitting
// has opened, the seat presiding as its journal records it, whatever the token's role (a chair
// token whose seat handed over the chair has a member's rights only); before, a chair token.
// It also returns the seat presiding (0 before a sitting). It loads the room's desk.
func (d *deliberation) presiding(ctx context.Context, room string, c httpapi.Caller) (ok bool, chair int, err error) {
	if d == nil {
		return c.Role == auth.RoleChair, 0, nil
	}
	dk, err := d.desk(ctx, room)
	if err != nil {
		return false, 0, err
	}
	dk.mu.Lock()
	defer dk.mu.Unlock()
	if dk.state == nil || dk.state.Session().OpenedAt.IsZero() {
		return c.Role == auth.RoleChair, 0, nil
	}
	sess := dk.state.Session()
	return sess.Presides(c.Seat), sess.Chair, nil
}

// inSittingLocked gives an actor the role it holds in the sitting: the seat presiding acts as
// the chair whatever its token, and a chair token whose seat does not preside acts as a member
// (CGCT L2121-14: the mayor who withdrew for the accounts keeps a member's rights only).
func (dk *desk) inSittingLocked(a council.Actor) council.Actor {
	if dk.state == nil || dk.state.Session().OpenedAt.IsZero() {
		return a
	}
	presides := dk.state.Session().Presides(a.Seat)
	switch {
	case presides && a.Role == council.RoleMember:
		a.Role = council.RoleChair
	case !presides && a.Role == council.RoleChair:
		a.Role = council.RoleMember
	}
	return a
}

// sitting is what the public programme needs of a room's session: who has the floor, who
// presides, the state to show, and how many events it folds (to tell when it changed).
type sitting struct {
	floorHolder, chair int
	view               *council.View
	applied            int
}

// sittingOf reads the room's session without loading it (the programme must not do I/O).
func (d *deliberation) sittingOf(room string) sitting {
	var out sitting
	if d == nil {
		return out
	}
	dk := d.existingDesk(room)
	if dk == nil {
		return out
	}
	dk.mu.Lock()
	defer dk.mu.Unlock()
	if dk.state == nil {
		return out
	}
	if dk.state.Session().Opened() {
		out.floorHolder, _, _ = dk.state.FloorHolder()
		out.chair = dk.state.Session().Chair
	}
	out.applied = dk.state.Applied()
	v := dk.state.View(d.now())
	out.view = &v
	return out
}

// watched reports whether an event stream follows the room's desk.
func (d *deliberation) watched(room string) bool {
	dk := d.existingDesk(room)
	if dk == nil {
		return false
	}
	dk.mu.Lock()
	defer dk.mu.Unlock()
	return len(dk.watchers) > 0
}

// forget drops a room's desk, so that its next use here rebuilds it from the journal, which
// another node may have extended meanwhile. stopDepartures also cancels the departures pending
// on it: the node that now serves the room sees who is connected, this one no longer does.
func (d *deliberation) forget(room string, stopDepartures bool) {
	d.mu.Lock()
	dk := d.desks[room]
	delete(d.desks, room)
	d.mu.Unlock()
	if dk == nil || !stopDepartures {
		return
	}
	dk.mu.Lock()
	dk.stopDeparturesLocked()
	dk.mu.Unlock()
}

// stopDeparturesLocked cancels the departures pending on the desk.
func (dk *desk) stopDeparturesLocked() {
	for seat, t := range dk.departures {
		t.Stop()
		delete(dk.departures, seat)
	}
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
		return council.View{}, &httpapi.Error{Status: 400, Msg: fmt.Sprintf("legal profile %q: %v", profileName, err)}
	}
	dk.mu.Lock()
	if dk.state != nil || dk.seq > 0 {
		dk.mu.Unlock()
		return council.View{}, &httpapi.Error{Status: 409, Msg: fmt.Sprintf("room %q already has a session (its journal has %d entries): hold the next one in a new room", dk.room, dk.seq)}
	}
	st, err := council.NewState(profile, roster)
	if err != nil {
		dk.mu.Unlock()
		return council.View{}, &httpapi.Error{Status: 400, Msg: err.Error()}
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
		return council.View{}, &httpapi.Error{Status: 409, Msg: errNoSession.Error()}
	}
	at := dk.d.now()
	if last := dk.state.LastEventAt(); at.Before(last) {
		at = last
	}
	cmd, err := build(council.Header{At: at, By: by})
	if err != nil {
		dk.mu.Unlock()
		return council.View{}, &httpapi.Error{Status: 400, Msg: err.Error()}
	}
	wasClosedDoor := dk.state.Session().ClosedDoor
	view, err := dk.executeLocked(ctx, cmd)
	dk.mu.Unlock()
	if err == nil {
		dk.publish(view)
		dk.d.enforceFloor(dk)
		if view.Session.ClosedDoor != wasClosedDoor {
			dk.d.closedDoorChanged(dk.room, view.Session.ClosedDoor)
		}
	}
	return view, err
}

// closedDoorChanged is told when a room's sitting goes into private (huis clos, CGCT
// L2121-18) or back to public, after the journal recorded it. The public programme reads the
// same state at its next selection (programme.go) and puts nothing of the chamber on any of
// its outputs (WebRTC viewers, HLS, RTMP, the recording) until it ends; the viewers' page shows
// the notice from the state that comes with the programme.
func (d *deliberation) closedDoorChanged(room string, closed bool) {
	d.log.Info("closed-door sitting", "room", room, "closedDoor", closed)
}

func (dk *desk) executeLocked(ctx context.Context, cmd council.Command) (council.View, error) {
	before := dk.d.srv.beforeCommand(dk.state) // webhooks.go
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
	dk.d.srv.sittingChanged(dk.room, before, events, dk.state) // webhooks.go
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

// writeRefusal answers a refused command: a rule with words in both languages in the
// caller's (httpapi.Refuse), any other refusal as it is written.
func writeRefusal(w http.ResponseWriter, r *http.Request, err error) {
	e := commandError(err)
	var re *council.RuleError
	if !errors.As(err, &re) || re.Fr == "" {
		httpapi.Fail(w, e)
		return
	}
	httpapi.Refuse(w, r, e.Status, re.In("en"), re.In("fr"))
}

// commandError turns a refusal into an API error with its reason.
func commandError(err error) *httpapi.Error {
	var ae *httpapi.Error
	if errors.As(err, &ae) {
		return ae
	}
	var re *council.RuleError
	var qe *council.QuorumError
	switch {
	case errors.As(err, &qe):
		return &httpapi.Error{Status: 409, Msg: qe.Error()}
	case errors.As(err, &re):
		status := 409
		if errors.Is(err, council.ErrNotEntitled) {
			status = 403
		} else if errors.Is(err, council.ErrInvalid) || errors.Is(err, council.ErrUnknown) {
			status = 400
		}
		return &httpapi.Error{Status: status, Msg: re.Error()}
	case errors.Is(err, store.ErrConflict):
		return &httpapi.Error{Status: 409, Msg: "the session changed at the same moment; retry: " + err.Error()}
	}
	msg := err.Error()
	if strings.Contains(msg, "journal") {
		return &httpapi.Error{Status: 503, Msg: "the record could not be written, nothing was changed: " + msg}
	}
	return &httpapi.Error{Status: 500, Msg: msg}
}
