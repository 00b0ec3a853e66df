package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/council"
)

// The deliberation API: JSON over HTTP with the same token as the media, documented in
// docs/api.md. Every action is allowed or refused from the verified token's role; the actor
// recorded in the journal comes from the token too, never from the request body.

type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// caller is the verified author of a request.
type caller struct {
	claims *auth.Claims
	role   auth.Role
	seat   int
}

func (c caller) actor() council.Actor {
	return council.Actor{Identity: c.claims.ParticipantIdentity(), Seat: c.seat, Role: council.Role(c.role)}
}

// Role groups used by the routes.
var (
	chairOnly    = []auth.Role{auth.RoleChair}
	chairOrClerk = []auth.Role{auth.RoleChair, auth.RoleClerk}
	clerkOnly    = []auth.Role{auth.RoleClerk}
	voters       = []auth.Role{auth.RoleMember, auth.RoleChair, auth.RoleClerk}
	floorAskers  = []auth.Role{auth.RoleMember, auth.RoleChair}
	everyone     = []auth.Role{auth.RoleChair, auth.RoleClerk, auth.RoleMember, auth.RoleAgent, auth.RoleCaptioner, auth.RoleInterpreter, auth.RoleViewer}
	minutesRoles = []auth.Role{auth.RoleChair, auth.RoleClerk}
	maxBodyBytes = int64(1 << 20) // a roster of a few hundred seats fits easily
	sseKeepalive = 15 * time.Second
	apiTimeout   = 10 * time.Second
)

// commandRoute is one POST action mapped to a council command.
type commandRoute struct {
	pattern string
	roles   []auth.Role
	build   build
}

func (s *Server) apiRoutes(mux *http.ServeMux) {
	for _, rt := range s.commandRoutes() {
		mux.Handle("POST "+rt.pattern, s.withCaller(rt.roles, s.commandHandler(rt)))
	}
	mux.Handle("POST /api/rooms/{room}/session", s.withCaller(chairOrClerk, http.HandlerFunc(s.openSession)))
	mux.Handle("GET /api/rooms/{room}/state", s.withCaller(everyone, http.HandlerFunc(s.getState)))
	mux.Handle("GET /api/rooms/{room}/events", s.withCaller(everyone, http.HandlerFunc(s.streamEvents)))
	mux.Handle("GET /api/rooms/{room}/minutes", s.withCaller(minutesRoles, http.HandlerFunc(s.getMinutes)))
	mux.Handle("GET /api/rooms/{room}/journal", s.withCaller(minutesRoles, http.HandlerFunc(s.getJournal)))
	mux.Handle("POST /api/rooms/{room}/mute", s.withCaller(chairOnly, http.HandlerFunc(s.muteParticipant)))
}

// APIRoutes lists every route of the deliberation API with the roles it admits, for the
// documentation and the authorisation tests.
func (s *Server) APIRoutes() map[string][]auth.Role {
	out := map[string][]auth.Role{
		"POST /api/rooms/{room}/session": chairOrClerk,
		"GET /api/rooms/{room}/state":    everyone,
		"GET /api/rooms/{room}/events":   everyone,
		"GET /api/rooms/{room}/minutes":  minutesRoles,
		"GET /api/rooms/{room}/journal":  minutesRoles,
		"POST /api/rooms/{room}/mute":    chairOnly,
	}
	for _, rt := range s.commandRoutes() {
		out["POST "+rt.pattern] = rt.roles
	}
	return out
}

// build makes a council command from a request; the header (time and actor) is the server's.
type build func(r *http.Request, c caller, h council.Header) (council.Command, error)

// withBody decodes the JSON body over init, then set fills what comes from the path and the
// token, header last, so a body can never choose the time or the actor.
func withBody[C council.Command](init C, set func(cmd *C, r *http.Request, c caller, h council.Header)) build {
	return func(r *http.Request, c caller, h council.Header) (council.Command, error) {
		cmd := init
		if r.ContentLength != 0 {
			dec := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&cmd); err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("body is not the expected JSON: %v", err)
			}
		}
		set(&cmd, r, c, h)
		return cmd, nil
	}
}

func (s *Server) commandRoutes() []commandRoute {
	return []commandRoute{
		{"/api/rooms/{room}/session/close", chairOnly, withBody(council.CloseSession{}, func(cmd *council.CloseSession, _ *http.Request, _ caller, h council.Header) {
			cmd.Header = h
		})},
		{"/api/rooms/{room}/chair", chairOnly, withBody(council.ChangeChair{}, func(cmd *council.ChangeChair, _ *http.Request, _ caller, h council.Header) {
			cmd.Header = h
		})},
		{"/api/rooms/{room}/attendance/arrival", clerkOnly, withBody(council.RecordArrival{}, func(cmd *council.RecordArrival, _ *http.Request, _ caller, h council.Header) {
			cmd.Header = h
		})},
		{"/api/rooms/{room}/attendance/verify", clerkOnly, withBody(council.VerifyRemote{}, func(cmd *council.VerifyRemote, _ *http.Request, _ caller, h council.Header) {
			cmd.Header = h
		})},
		{"/api/rooms/{room}/attendance/departure", clerkOnly, withBody(council.RecordDeparture{Reason: council.LeftSession}, func(cmd *council.RecordDeparture, _ *http.Request, _ caller, h council.Header) {
			cmd.Header = h
		})},
		{"/api/rooms/{room}/proxies", clerkOnly, withBody(council.GiveProxy{}, func(cmd *council.GiveProxy, _ *http.Request, _ caller, h council.Header) {
			cmd.Header = h
		})},
		{"/api/rooms/{room}/proxies/revoke", clerkOnly, withBody(council.RevokeProxy{}, func(cmd *council.RevokeProxy, _ *http.Request, _ caller, h council.Header) {
			cmd.Header = h
		})},
		// One asks the floor for oneself: the seat is the token's.
		{"/api/rooms/{room}/floor/request", floorAskers, withBody(council.RequestFloor{Kind: council.Speak}, func(cmd *council.RequestFloor, _ *http.Request, c caller, h council.Header) {
			cmd.Header, cmd.Seat = h, c.seat
		})},
		{"/api/rooms/{room}/floor/cancel", floorAskers, withBody(council.CancelFloorRequest{}, func(cmd *council.CancelFloorRequest, _ *http.Request, c caller, h council.Header) {
			if cmd.Seat == 0 {
				cmd.Seat = c.seat
			}
			cmd.Header = h
		})},
		{"/api/rooms/{room}/floor/grant", chairOnly, withBody(council.GrantFloor{}, func(cmd *council.GrantFloor, _ *http.Request, _ caller, h council.Header) {
			cmd.Header = h
		})},
		{"/api/rooms/{room}/floor/end", floorAskers, withBody(council.EndFloor{}, func(cmd *council.EndFloor, _ *http.Request, _ caller, h council.Header) {
			cmd.Header = h
		})},
		{"/api/rooms/{room}/floor/control", chairOnly, withBody(council.SetFloorControl{}, func(cmd *council.SetFloorControl, _ *http.Request, _ caller, h council.Header) {
			cmd.Header = h
		})},
		{"/api/rooms/{room}/items", chairOrClerk, withBody(council.AddItem{}, func(cmd *council.AddItem, _ *http.Request, _ caller, h council.Header) {
			cmd.Header = h
		})},
		{"/api/rooms/{room}/items/{item}/open", chairOnly, withBody(council.OpenItem{}, func(cmd *council.OpenItem, r *http.Request, _ caller, h council.Header) {
			cmd.Header, cmd.ID = h, r.PathValue("item")
		})},
		{"/api/rooms/{room}/items/{item}/close", chairOnly, withBody(council.CloseItem{}, func(cmd *council.CloseItem, r *http.Request, _ caller, h council.Header) {
			cmd.Header, cmd.ID = h, r.PathValue("item")
		})},
		{"/api/rooms/{room}/items/{item}/postpone", chairOnly, withBody(council.PostponeItem{}, func(cmd *council.PostponeItem, r *http.Request, _ caller, h council.Header) {
			cmd.Header, cmd.ID = h, r.PathValue("item")
		})},
		{"/api/rooms/{room}/items/{item}/secret-ballot", chairOnly, withBody(council.RequestSecretBallot{}, func(cmd *council.RequestSecretBallot, r *http.Request, _ caller, h council.Header) {
			cmd.Header, cmd.Item = h, r.PathValue("item")
		})},
		{"/api/rooms/{room}/votes", chairOnly, withBody(council.OpenVote{}, func(cmd *council.OpenVote, _ *http.Request, _ caller, h council.Header) {
			cmd.Header = h
		})},
		// A member votes for their own seat unless the body names a seat whose proxy they hold.
		{"/api/rooms/{room}/votes/{vote}/ballots", voters, withBody(council.CastBallot{}, func(cmd *council.CastBallot, r *http.Request, c caller, h council.Header) {
			if cmd.Seat == 0 {
				cmd.Seat = c.seat
			}
			cmd.Header, cmd.Vote = h, r.PathValue("vote")
		})},
		{"/api/rooms/{room}/votes/{vote}/tally", clerkOnly, withBody(council.RecordTally{}, func(cmd *council.RecordTally, r *http.Request, _ caller, h council.Header) {
			cmd.Header, cmd.Vote = h, r.PathValue("vote")
		})},
		{"/api/rooms/{room}/votes/{vote}/close", chairOnly, withBody(council.CloseVote{}, func(cmd *council.CloseVote, r *http.Request, _ caller, h council.Header) {
			cmd.Header, cmd.Vote = h, r.PathValue("vote")
		})},
	}
}

// withCaller verifies the token for the room in the path and checks the role.
func (s *Server) withCaller(roles []auth.Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.delib == nil {
			writeAPIError(w, &apiError{status: 503, msg: "deliberation is not enabled on this server (no journal configured)"})
			return
		}
		room := r.PathValue("room")
		tok := bearer(r)
		if tok == "" {
			writeAPIError(w, &apiError{status: 401, msg: "no access token: send Authorization: Bearer <token>"})
			return
		}
		claims, err := s.cfg.Verifier.VerifyForRoom(tok, room)
		if err != nil {
			writeAPIError(w, &apiError{status: auth.HTTPStatus(err), msg: err.Error()})
			return
		}
		c := caller{claims: claims, role: claims.Role()}
		if claims.Council != nil {
			c.seat = claims.Council.Seat
		}
		if !slices.Contains(roles, c.role) {
			role := string(c.role)
			if role == "" {
				role = "no council role"
			}
			writeAPIError(w, &apiError{status: 403, msg: fmt.Sprintf("%s is for %s; your token's role is %s", r.Pattern, roleList(roles), role)})
			return
		}
		if s.relay(w, r, room) { // relay.go: the room lives on another node
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

type callerKey struct{}

func callerOf(r *http.Request) caller { return r.Context().Value(callerKey{}).(caller) }

func roleList(roles []auth.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	if len(names) == 1 {
		return "the " + names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func (s *Server) commandHandler(rt commandRoute) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r)
		// Read the body before taking the room's lock: a slow client must not hold the room.
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
		if err != nil || int64(len(body)) > maxBodyBytes {
			writeAPIError(w, &apiError{status: 400, msg: fmt.Sprintf("request body unreadable or over %d bytes", maxBodyBytes)})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
		defer cancel()
		dk, err := s.delib.desk(ctx, r.PathValue("room"))
		if err != nil {
			writeAPIError(w, &apiError{status: 503, msg: err.Error()})
			return
		}
		view, err := dk.execute(ctx, c.actor(), func(h council.Header) (council.Command, error) {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			return rt.build(r, c, h)
		})
		if err != nil {
			writeAPIError(w, commandError(err))
			return
		}
		writeJSONResponse(w, 200, view)
	})
}

// openSessionRequest opens a sitting: the body, its legal profile and the roster as the
// clerk's CSV file (seat, name, group, role).
type openSessionRequest struct {
	Body              council.Body `json:"body"`
	Title             string       `json:"title"`
	Location          string       `json:"location,omitempty"`
	Chair             int          `json:"chair"`
	Secretary         int          `json:"secretary,omitempty"`
	SecondConvocation bool         `json:"secondConvocation,omitempty"`
	RosterCSV         string       `json:"rosterCsv"`
}

func (s *Server) openSession(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	var req openSessionRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeAPIError(w, &apiError{status: 400, msg: "body must be JSON {body:{name,kind,profile}, title, chair, secretary, rosterCsv}: " + err.Error()})
		return
	}
	if req.Body.Profile == "" {
		writeAPIError(w, &apiError{status: 400, msg: "body.profile is required (fr-commune, fr-epci-visio, fr-2020-emergency or generic)"})
		return
	}
	roster, err := council.ParseRoster(strings.NewReader(req.RosterCSV))
	if err != nil {
		writeAPIError(w, &apiError{status: 400, msg: "rosterCsv: " + err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	dk, err := s.delib.desk(ctx, r.PathValue("room"))
	if err != nil {
		writeAPIError(w, &apiError{status: 503, msg: err.Error()})
		return
	}
	view, err := dk.openSession(ctx, req.Body.Profile, roster, council.OpenSession{
		Header: council.Header{At: s.delib.now(), By: c.actor()},
		Body:   req.Body, Title: req.Title, Location: req.Location, Chair: req.Chair,
		Secretary: req.Secretary, SecondConvocation: req.SecondConvocation,
	})
	if err != nil {
		writeAPIError(w, commandError(err))
		return
	}
	// Members already connected are recorded as present remotely now that there is a session.
	if room, ok := s.Room(dk.room); ok {
		for _, p := range room.Participants() {
			if rp := room.participant(p.Identity); rp != nil {
				s.delib.joined(dk.room, rp.ref())
			}
		}
		if v := dk.view(); v != nil {
			view = *v
		}
	}
	writeJSONResponse(w, 200, view)
}

func (s *Server) getState(w http.ResponseWriter, r *http.Request) {
	dk, err := s.delib.desk(r.Context(), r.PathValue("room"))
	if err != nil {
		writeAPIError(w, &apiError{status: 503, msg: err.Error()})
		return
	}
	v := dk.view()
	if v == nil {
		writeAPIError(w, &apiError{status: 404, msg: errNoSession.Error()})
		return
	}
	writeJSONResponse(w, 200, v)
}

// streamEvents sends the state as Server-Sent Events: once at once, then after every change.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	dk, err := s.delib.desk(r.Context(), r.PathValue("room"))
	if err != nil {
		writeAPIError(w, &apiError{status: 503, msg: err.Error()})
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeAPIError(w, &apiError{status: 500, msg: "streaming unsupported"})
		return
	}
	updates, stop := dk.watch()
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(200)
	if v := dk.view(); v != nil {
		msg, _ := json.Marshal(stateMessage{Type: "state", Room: dk.room, View: v})
		fmt.Fprintf(w, "event: state\ndata: %s\n\n", msg)
	}
	flusher.Flush()
	keepalive := time.NewTicker(sseKeepalive)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case msg := <-updates:
			fmt.Fprintf(w, "event: state\ndata: %s\n\n", msg)
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
		}
		flusher.Flush()
	}
}

func (s *Server) getMinutes(w http.ResponseWriter, r *http.Request) {
	dk, err := s.delib.desk(r.Context(), r.PathValue("room"))
	if err != nil {
		writeAPIError(w, &apiError{status: 503, msg: err.Error()})
		return
	}
	labels, err := s.cfg.minutesLabels(r.URL.Query().Get("lang"))
	if err != nil {
		writeAPIError(w, &apiError{status: 400, msg: err.Error()})
		return
	}
	dk.mu.Lock()
	defer dk.mu.Unlock()
	if dk.state == nil {
		writeAPIError(w, &apiError{status: 404, msg: errNoSession.Error()})
		return
	}
	m := council.DraftMinutes(dk.state, s.cfg.Location)
	switch r.URL.Query().Get("format") {
	case "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		err = m.WriteHTML(w, &labels)
	case "", "md", "markdown":
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		err = m.WriteMarkdown(w, &labels)
	default:
		writeAPIError(w, &apiError{status: 400, msg: "format must be md or html"})
		return
	}
	if err != nil {
		s.log.Warn("write minutes", "err", err)
	}
}

func (s *Server) getJournal(w http.ResponseWriter, r *http.Request) {
	entries, err := s.delib.journal.Read(r.Context(), r.PathValue("room"), 1)
	if err != nil {
		writeAPIError(w, &apiError{status: 503, msg: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			return
		}
	}
}

// muteParticipant lets the chair close a participant's microphone.
func (s *Server) muteParticipant(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Identity string `json:"identity"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes)).Decode(&req); err != nil || req.Identity == "" {
		writeAPIError(w, &apiError{status: 400, msg: "body must be JSON {identity}"})
		return
	}
	room, ok := s.Room(r.PathValue("room"))
	if !ok {
		writeAPIError(w, &apiError{status: 404, msg: "nobody is connected to this room"})
		return
	}
	p := room.participant(req.Identity)
	if p == nil {
		writeAPIError(w, &apiError{status: 404, msg: fmt.Sprintf("%q is not connected", req.Identity)})
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
			writeAPIError(w, &apiError{status: 409, msg: err.Error()})
			return
		}
	}
	writeJSONResponse(w, 200, map[string]any{"muted": sids})
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	writeJSONResponse(w, e.status, map[string]string{"error": e.msg})
}

func writeJSONResponse(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
