package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/httpapi"
)

// The deliberation API: JSON over HTTP with the same token as the media, documented in
// docs/api.md. Every action is allowed or refused from the verified token's role (the route
// table checks it); the actor recorded in the journal comes from the token too, never from
// the request body.

// Who may call the deliberation routes.
var (
	// The chair's powers belong to the seat presiding now (the route table asks the sitting).
	chairOnly    = httpapi.For(auth.RoleChair).OrPresiding()
	chairOrClerk = httpapi.For(auth.RoleChair, auth.RoleClerk).OrPresiding()
	clerkOnly    = httpapi.For(auth.RoleClerk)
	voters       = httpapi.For(auth.RoleMember, auth.RoleChair, auth.RoleClerk)
	floorAskers  = httpapi.For(auth.RoleMember, auth.RoleChair)
	everyone     = httpapi.For(auth.Roles()...)
)

const (
	maxBodyBytes = int64(1 << 20) // a roster of a few hundred seats fits easily
	apiTimeout   = 10 * time.Second
)

func actorOf(c httpapi.Caller) council.Actor {
	return council.Actor{Identity: c.Claims.ParticipantIdentity(), Seat: c.Seat, Role: council.Role(c.Role)}
}

// routes are the deliberation API's rows of the route table, each served on the room's node.
// They exist on every server; without a journal they answer 503.
func (d *deliberation) routes() []httpapi.Route {
	row := func(method, pattern string, who httpapi.Access, h http.HandlerFunc) httpapi.Route {
		return httpapi.Route{Method: method, Pattern: pattern, Access: who, Relay: httpapi.ToRoom, Handler: d.available(h)}
	}
	rows := []httpapi.Route{
		row("POST", "/api/rooms/{room}/session", chairOrClerk, d.openSession),
		row("GET", "/api/rooms/{room}/state", everyone, d.getState),
		row("GET", "/api/rooms/{room}/events", everyone, d.streamEvents),
		row("GET", "/api/rooms/{room}/minutes", chairOrClerk, d.getMinutes),
		row("POST", "/api/rooms/{room}/minutes/approve", chairOrClerk, d.approveMinutes), // desk_minutes.go
		row("GET", "/api/rooms/{room}/journal", chairOrClerk, d.getJournal),
		row("GET", "/api/rooms/{room}/journal/seal", chairOrClerk, d.getJournalSeal),
		row("POST", "/api/rooms/{room}/mute", chairOnly, d.muteParticipant),
	}
	for _, c := range commands() {
		rows = append(rows, row("POST", c.pattern, c.who, d.command(c.build)))
	}
	return rows
}

// available answers 503 on a server without a journal.
func (d *deliberation) available(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if d == nil {
			httpapi.WriteError(w, http.StatusServiceUnavailable, "deliberation is not enabled on this server (no journal configured)")
			return
		}
		h(w, r)
	}
}

// deskOf returns the desk of the room in the path, or answers 503 saying why it cannot be read.
func (d *deliberation) deskOf(ctx context.Context, w http.ResponseWriter, r *http.Request) (*desk, bool) {
	dk, err := d.desk(ctx, r.PathValue("room"))
	if err != nil {
		httpapi.WriteError(w, http.StatusServiceUnavailable, err.Error())
		return nil, false
	}
	return dk, true
}

// commandRow is one POST action mapped to a council command.
type commandRow struct {
	pattern string
	who     httpapi.Access
	build   build
}

// build makes a council command from a request; the header (time and actor) is the server's.
type build func(r *http.Request, c httpapi.Caller, h council.Header) (council.Command, error)

// withBody decodes the JSON body over init, then fill (when given) sets what comes from the
// path and the token, and the header is stamped last, so that a body can never choose the
// time or the actor.
func withBody[C council.Command, P interface {
	*C
	Stamp(council.Header)
}](init C, fill func(cmd *C, r *http.Request, c httpapi.Caller)) build {
	return func(r *http.Request, c httpapi.Caller, h council.Header) (council.Command, error) {
		cmd := init
		if r.ContentLength != 0 {
			dec := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&cmd); err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("body is not the expected JSON: %v", err)
			}
		}
		if fill != nil {
			fill(&cmd, r, c)
		}
		P(&cmd).Stamp(h)
		return cmd, nil
	}
}

// withPathBody is withBody for a command about what the path names: the path value name fills
// the field at selects, whatever the body said.
func withPathBody[C council.Command, P interface {
	*C
	Stamp(council.Header)
}](init C, name string, at func(cmd *C) *string) build {
	return withBody[C, P](init, func(cmd *C, r *http.Request, _ httpapi.Caller) {
		*at(cmd) = r.PathValue(name)
	})
}

// ownSeat makes a command about a seat default to the caller's own.
func ownSeat(seat *int, c httpapi.Caller) {
	if *seat == 0 {
		*seat = c.Seat
	}
}

func commands() []commandRow {
	return []commandRow{
		{"/api/rooms/{room}/session/close", chairOnly, withBody(council.CloseSession{}, nil)},
		{"/api/rooms/{room}/chair", chairOnly, withBody(council.ChangeChair{}, nil)},
		{"/api/rooms/{room}/attendance/arrival", clerkOnly, withBody(council.RecordArrival{}, nil)},
		{"/api/rooms/{room}/attendance/verify", clerkOnly, withBody(council.VerifyRemote{}, nil)},
		{"/api/rooms/{room}/attendance/departure", clerkOnly, withBody(council.RecordDeparture{Reason: council.LeftSession}, nil)},
		{"/api/rooms/{room}/proxies", clerkOnly, withBody(council.GiveProxy{}, nil)},
		{"/api/rooms/{room}/proxies/revoke", clerkOnly, withBody(council.RevokeProxy{}, nil)},
		// One asks the floor for oneself: the seat is the token's.
		{"/api/rooms/{room}/floor/request", floorAskers, withBody(council.RequestFloor{Kind: council.Speak}, func(cmd *council.RequestFloor, _ *http.Request, c httpapi.Caller) {
			cmd.Seat = c.Seat
		})},
		{"/api/rooms/{room}/floor/cancel", floorAskers, withBody(council.CancelFloorRequest{}, func(cmd *council.CancelFloorRequest, _ *http.Request, c httpapi.Caller) {
			ownSeat(&cmd.Seat, c)
		})},
		{"/api/rooms/{room}/floor/grant", chairOnly, withBody(council.GrantFloor{}, nil)},
		{"/api/rooms/{room}/floor/end", floorAskers, withBody(council.EndFloor{}, nil)},
		{"/api/rooms/{room}/floor/control", chairOnly, withBody(council.SetFloorControl{}, nil)},
		{"/api/rooms/{room}/items", chairOrClerk, withBody(council.AddItem{}, nil)},
		{"/api/rooms/{room}/items/{item}/open", chairOnly, withPathBody(council.OpenItem{}, "item", func(cmd *council.OpenItem) *string { return &cmd.ID })},
		{"/api/rooms/{room}/items/{item}/close", chairOnly, withPathBody(council.CloseItem{}, "item", func(cmd *council.CloseItem) *string { return &cmd.ID })},
		{"/api/rooms/{room}/items/{item}/postpone", chairOnly, withPathBody(council.PostponeItem{}, "item", func(cmd *council.PostponeItem) *string { return &cmd.ID })},
		{"/api/rooms/{room}/items/{item}/secret-ballot", chairOnly, withPathBody(council.RequestSecretBallot{}, "item", func(cmd *council.RequestSecretBallot) *string { return &cmd.Item })},
		// Elections: candidates declared in the sitting; how the item is voted, decided before.
		{"/api/rooms/{room}/items/{item}/candidates", chairOrClerk, withPathBody(council.DeclareCandidate{}, "item", func(cmd *council.DeclareCandidate) *string { return &cmd.Item })},
		{"/api/rooms/{room}/items/{item}/candidates/withdraw", chairOrClerk, withPathBody(council.WithdrawCandidate{}, "item", func(cmd *council.WithdrawCandidate) *string { return &cmd.Item })},
		{"/api/rooms/{room}/items/{item}/public-vote", chairOnly, withPathBody(council.RequestPublicVote{}, "item", func(cmd *council.RequestPublicVote) *string { return &cmd.Item })},
		{"/api/rooms/{room}/items/{item}/public-vote/unanimous", chairOnly, withPathBody(council.DecidePublicVote{}, "item", func(cmd *council.DecidePublicVote) *string { return &cmd.Item })},
		// Incidents of the sitting.
		{"/api/rooms/{room}/session/suspend", chairOnly, withBody(council.SuspendSitting{}, nil)},
		{"/api/rooms/{room}/session/resume", chairOnly, withBody(council.ResumeSitting{}, nil)},
		{"/api/rooms/{room}/session/close-no-quorum", chairOnly, withBody(council.CloseForLackOfQuorum{}, nil)},
		{"/api/rooms/{room}/closed-door", chairOnly, withBody(council.VoteClosedDoor{}, nil)},
		{"/api/rooms/{room}/closed-door/end", chairOnly, withBody(council.EndClosedDoor{}, nil)},
		{"/api/rooms/{room}/votes", chairOnly, withBody(council.OpenVote{}, nil)},
		// A member votes for their own seat unless the body names a seat whose proxy they hold.
		{"/api/rooms/{room}/votes/{vote}/ballots", voters, withBody(council.CastBallot{}, func(cmd *council.CastBallot, r *http.Request, c httpapi.Caller) {
			ownSeat(&cmd.Seat, c)
			cmd.Vote = r.PathValue("vote")
		})},
		{"/api/rooms/{room}/votes/{vote}/tally", clerkOnly, withPathBody(council.RecordTally{}, "vote", func(cmd *council.RecordTally) *string { return &cmd.Vote })},
		{"/api/rooms/{room}/votes/{vote}/corrections", clerkOnly, withPathBody(council.CorrectBallot{}, "vote", func(cmd *council.CorrectBallot) *string { return &cmd.Vote })},
		{"/api/rooms/{room}/votes/{vote}/close", chairOnly, withPathBody(council.CloseVote{}, "vote", func(cmd *council.CloseVote) *string { return &cmd.Vote })},
	}
}

// command serves one council command.
func (d *deliberation) command(b build) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := httpapi.CallerOf(r)
		// Read the body before taking the room's lock: a slow client must not hold the room.
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
		if err != nil || int64(len(body)) > maxBodyBytes {
			httpapi.WriteError(w, 400, fmt.Sprintf("request body unreadable or over %d bytes", maxBodyBytes))
			return
		}
		_, view, ok := d.onDesk(w, r, func(ctx context.Context, dk *desk) (council.View, error) {
			return dk.execute(ctx, actorOf(c), func(h council.Header) (council.Command, error) {
				h.By = dk.inSittingLocked(h.By)
				r.Body = io.NopCloser(bytes.NewReader(body))
				r.ContentLength = int64(len(body))
				return b(r, c, h)
			})
		})
		if ok {
			httpapi.WriteJSON(w, 200, view)
		}
	}
}

// onDesk runs act on the desk of the room in the path, within the API's time limit. On failure
// it has answered the request, and ok is false.
func (d *deliberation) onDesk(w http.ResponseWriter, r *http.Request, act func(ctx context.Context, dk *desk) (council.View, error)) (dk *desk, view council.View, ok bool) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	if dk, ok = d.deskOf(ctx, w, r); !ok {
		return nil, council.View{}, false
	}
	view, err := act(ctx, dk)
	if err != nil {
		writeRefusal(w, r, err)
		return nil, council.View{}, false
	}
	return dk, view, true
}

// openSessionRequest opens a sitting: the body, its legal profile and the roster as the
// clerk's CSV file (seat, name, group, role); or Prepared, "body/sitting", a sitting prepared
// ahead for this room, whose roster and agenda it takes.
type openSessionRequest struct {
	council.Sitting
	RosterCSV string `json:"rosterCsv"`
	Prepared  string `json:"prepared"`
}

func (d *deliberation) openSession(w http.ResponseWriter, r *http.Request) {
	c := httpapi.CallerOf(r)
	var req openSessionRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		httpapi.WriteError(w, 400, "body must be JSON {body:{name,kind,profile}, title, chair, secretary, rosterCsv} or {prepared: \"body/sitting\"}: "+err.Error())
		return
	}
	roster, agenda, err := d.srv.prep.sessionOf(r.Context(), r.PathValue("room"), &req)
	if le, ok := errors.AsType[*council.RosterLineError](err); ok {
		refuseRoster(w, r, "rosterCsv: ", le)
		return
	} else if err != nil {
		fail(w, err)
		return
	}
	dk, view, ok := d.onDesk(w, r, func(ctx context.Context, dk *desk) (council.View, error) {
		view, err := dk.openSession(ctx, req.Body.Profile, roster, council.OpenSession{
			Header: council.Header{At: d.now(), By: actorOf(c)}, Sitting: req.Sitting,
		})
		for _, item := range agenda {
			if err != nil {
				break
			}
			view, err = dk.execute(ctx, actorOf(c), func(h council.Header) (council.Command, error) {
				item.Stamp(h)
				return item, nil
			})
		}
		return view, err
	})
	if !ok {
		return
	}
	// Members already connected are recorded as present remotely now that there is a session.
	if room, ok := d.srv.Room(dk.room); ok {
		for _, p := range room.Participants() {
			if rp := room.participant(p.Identity); rp != nil {
				d.joined(dk.room, rp.ref())
			}
		}
		if v := dk.view(); v != nil {
			view = *v
		}
	}
	httpapi.WriteJSON(w, 200, view)
}

func (d *deliberation) getState(w http.ResponseWriter, r *http.Request) {
	dk, ok := d.deskOf(r.Context(), w, r)
	if !ok {
		return
	}
	v := dk.view()
	if v == nil {
		httpapi.WriteError(w, 404, errNoSession.Error())
		return
	}
	httpapi.WriteJSON(w, 200, v)
}

// streamEvents sends the state as Server-Sent Events: once at once, then after every change.
func (d *deliberation) streamEvents(w http.ResponseWriter, r *http.Request) {
	dk, ok := d.deskOf(r.Context(), w, r)
	if !ok {
		return
	}
	updates, stop := dk.watch()
	defer stop()
	var first [][]byte
	if v := dk.view(); v != nil {
		msg, _ := json.Marshal(stateMessage{Type: "state", Room: dk.room, View: v})
		first = append(first, msg)
	}
	httpapi.ServeEvents(w, r, d.srv.ctx.Done(), updates, func([]byte) string { return "state" }, first...)
}

func (d *deliberation) getMinutes(w http.ResponseWriter, r *http.Request) {
	dk, ok := d.deskOf(r.Context(), w, r)
	if !ok {
		return
	}
	labels, err := d.srv.cfg.minutesLabels(r.URL.Query().Get("lang"))
	if err != nil {
		httpapi.WriteError(w, 400, err.Error())
		return
	}
	dk.mu.Lock()
	defer dk.mu.Unlock()
	if dk.state == nil {
		httpapi.WriteError(w, 404, errNoSession.Error())
		return
	}
	m, err := d.draftMinutes(r.Context(), dk)
	if err != nil {
		httpapi.WriteError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	md, digest, err := d.minutesMarkdown(m, &labels)
	if err != nil {
		httpapi.WriteError(w, 500, err.Error())
		return
	}
	w.Header().Set(minutesDigestHeader, digest) // what an approval names (desk_minutes.go)
	switch r.URL.Query().Get("format") {
	case "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		err = m.WriteHTML(w, &labels)
	case "", "md", "markdown":
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		_, err = w.Write(md)
	default:
		httpapi.WriteError(w, 400, "format must be md or html")
		return
	}
	if err != nil {
		d.log.Warn("write minutes", "err", err)
	}
}

func (d *deliberation) getJournal(w http.ResponseWriter, r *http.Request) {
	entries, err := d.journal.Read(r.Context(), r.PathValue("room"), 1)
	if err != nil {
		httpapi.WriteError(w, 503, err.Error())
		return
	}
	writeNDJSON(w, entries)
}

// muteParticipant lets the chair close a participant's microphone.
func (d *deliberation) muteParticipant(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Identity string `json:"identity"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes)).Decode(&req); err != nil || req.Identity == "" {
		httpapi.WriteError(w, 400, "body must be JSON {identity}")
		return
	}
	room, ok := d.srv.Room(r.PathValue("room"))
	if !ok {
		httpapi.WriteError(w, 404, "nobody is connected to this room")
		return
	}
	p := room.participant(req.Identity)
	if p == nil {
		httpapi.WriteError(w, 404, fmt.Sprintf("%q is not connected", req.Identity))
		return
	}
	room.mu.Lock()
	var sids []string
	for sid, t := range p.tracks {
		if isMicrophone(t) {
			sids = append(sids, sid)
		}
	}
	room.mu.Unlock()
	for _, sid := range sids {
		if _, err := p.MuteTrack(sid, true); err != nil {
			httpapi.WriteError(w, 409, err.Error())
			return
		}
	}
	httpapi.WriteJSON(w, 200, map[string]any{"muted": sids})
}
