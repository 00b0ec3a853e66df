package signaling

import (
	"context"
	"errors"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/council"
)

// Attendance follows the connections: a member who connects from afar is recorded present
// remotely, one whose connection is lost past the grace is recorded as departed, and the floor
// rule holds on the media.

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

// left records a remote member's departure: at once for a member who left (the leave button),
// and for a lost connection after the grace period, unless the member is back by then, as of
// the moment it was lost.
func (d *deliberation) left(room string, p ParticipantRef, gone departure) {
	seat := memberSeat(p)
	if seat == 0 {
		return
	}
	dk := d.existingDesk(room)
	if dk == nil {
		return
	}
	dk.mu.Lock()
	if dk.state == nil || !dk.state.Session().Opened() {
		dk.mu.Unlock()
		return
	}
	switch dk.state.Attendance(seat).Presence {
	case council.PresenceRemote, council.PresenceUnverified:
	default:
		dk.mu.Unlock()
		return
	}
	if !gone.voluntary {
		dk.scheduleDepartureLocked(seat, systemActor(p), gone.lostAt)
		dk.mu.Unlock()
		return
	}
	if t := dk.departures[seat]; t != nil {
		t.Stop()
		delete(dk.departures, seat)
	}
	dk.mu.Unlock()
	dk.depart(seat, systemActor(p), council.LeftSession, time.Time{})
}

// depart records seat as departed for reason, unless a connection for the seat is back (or
// still there, from another device); lostAt dates a lost connection. It says whether it did.
func (dk *desk) depart(seat int, by council.Actor, reason council.DepartureReason, lostAt time.Time) bool {
	d := dk.d
	if d.seatConnected(dk.room, seat) {
		return false
	}
	departure := func(h council.Header) (council.Command, error) {
		return council.RecordDeparture{Header: h, Seat: seat, Reason: reason, LostAt: lostAt}, nil
	}
	if _, err := dk.execute(context.Background(), by, departure); err != nil {
		d.log.Info("departure not recorded", "room", dk.room, "seat", seat, "err", err)
		return false
	}
	return true
}

// scheduleDepartureLocked records seat as departed once the grace has passed, unless a
// connection for the seat is back by then; lostAt (zero if unknown) is when it was lost.
func (dk *desk) scheduleDepartureLocked(seat int, by council.Actor, lostAt time.Time) {
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
		if !current {
			return
		}
		if dk.depart(seat, by, council.ConnectionLost, lostAt) {
			d.log.Info("remote member recorded as departed after the grace period", "room", dk.room, "seat", seat, "grace", grace, "lost at", lostAt)
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
	// The chair's microphone is the seat presiding's, whatever its token says.
	role := p.Claims.Role()
	if role == auth.RoleInterpreter || role == auth.RoleCaptioner {
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
