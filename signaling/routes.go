package signaling

import (
	"fmt"
	"net/http"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/httpapi"
	"github.com/ingeco/hemicycle/signaling/programme"
)

// Routes is the server's part of the route table: the LiveKit endpoints (/rtc, RoomService),
// the deliberation API and the public programme's routes. The binary adds its own rows (web
// client, health, metrics) and builds one mux from all of them with Handler.
func (s *Server) Routes() []httpapi.Route {
	notV1 := func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "single peer connection signalling (v1) is not offered by this server; use /rtc", http.StatusNotFound)
	}
	byToken := httpapi.SelfChecked("a token joining the room (access_token or Authorization)")
	rs := newRoomService(s)
	rows := []httpapi.Route{
		{Pattern: "/rtc", Access: byToken, Relay: httpapi.ByHandler, Handler: s.serveRTC},
		{Pattern: "/rtc/validate", Access: byToken, Relay: httpapi.ByHandler, Handler: s.serveValidate},
		// The browser SDK tries the single-peer-connection path first; a 404 that does not say
		// "room does not exist" makes it fall back to /rtc.
		{Pattern: "/rtc/v1", Access: httpapi.Anyone("answers 404"), Handler: notV1},
		{Pattern: "/rtc/v1/validate", Access: httpapi.Anyone("answers 404"), Handler: notV1},
		{Pattern: rs.PathPrefix(), Access: httpapi.SelfChecked("a token with the grant each call needs"), Relay: httpapi.ByHandler, Handler: rs.ServeHTTP},
		s.journalKeysRoute(),
		s.captionRoute(),
		{Method: "GET", Pattern: "/api/rooms/{room}/report", Access: httpapi.For(auth.RoleChair, auth.RoleClerk).OrRoomAdmin(),
			Relay: httpapi.ToRoom, Handler: s.serveReport}, // report.go
	}
	rows = append(rows, s.delib.routes()...)
	rows = append(rows, s.prep.routes()...)
	rows = append(rows, s.speechRoutes()...)
	return append(rows, programme.Routes(programmeHost{s}, s.cfg.Programme.viewers())...)
}

// Handler serves the route table: the server's rows and extra, each behind the same headers,
// rate limit, token and role check, and relay to the room's node, as its row says.
func (s *Server) Handler(extra ...httpapi.Route) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range append(s.Routes(), extra...) {
		mux.Handle(rt.Key(), s.guard(rt))
	}
	return httpapi.Headers(mux)
}

// guard applies a row's rules before its handler, in this order: the rate limit (on the node
// the client reached), the token and the role (on every node: an entry node relays only what
// it verified), the token's allowance of requests, the relay, and last the seat presiding,
// which only the room's node knows.
func (s *Server) guard(rt httpapi.Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.Limit != nil && !rt.Limit.Admit(w, r) {
			s.limits.refused(rt.Limit.Name())
			return
		}
		room := r.PathValue("room")
		var c httpapi.Caller
		if rt.Access.ChecksToken() {
			tok := httpapi.Bearer(r)
			if tok == "" {
				httpapi.WriteError(w, http.StatusUnauthorized, "no access token: send Authorization: Bearer <token>")
				return
			}
			claims, err := s.verifyFor(rt.Access, tok, r)
			if err != nil {
				httpapi.WriteError(w, auth.HTTPStatus(err), err.Error())
				return
			}
			c = httpapi.NewCaller(claims)
			if !rt.Access.Presiding && !rt.Access.AdmitsClaims(claims, room) {
				refuseRole(w, r, rt.Access, c)
				return
			}
			if !s.limits.admitAPI(w, r, tok) { // limits.go
				return
			}
		}
		switch rt.Relay {
		case httpapi.ToRoom:
			if s.relayer.toRoom(w, r, room) {
				return
			}
		case httpapi.ToOpenRoom:
			if s.relayer.toOpenRoom(w, r, room) {
				return
			}
		}
		if rt.Access.Presiding && (c.Role == auth.RoleChair || !rt.Access.Admits(c.Role)) {
			ok, chair, err := s.delib.presiding(r.Context(), room, c)
			if err != nil {
				httpapi.WriteError(w, http.StatusServiceUnavailable, err.Error())
				return
			}
			if !ok {
				refusePresiding(w, r, rt.Access, c, chair)
				return
			}
		}
		if rt.Access.ChecksToken() {
			r = httpapi.WithCaller(r, c)
		}
		rt.Handler(w, r)
	})
}

func refuseRole(w http.ResponseWriter, r *http.Request, a httpapi.Access, c httpapi.Caller) {
	role := string(c.Role)
	if role == "" {
		role = "no council role"
	}
	httpapi.WriteError(w, http.StatusForbidden, fmt.Sprintf("%s is for %s; your token's role is %s", r.Pattern, a, role))
}

// refusePresiding refuses a chair's power to a caller who does not preside now, worded in both
// languages (a console shows it as it is written).
func refusePresiding(w http.ResponseWriter, r *http.Request, a httpapi.Access, c httpapi.Caller, chair int) {
	role := string(c.Role)
	if role == "" {
		role = "no council role"
	}
	now, maintenant := "no sitting is open", "aucune séance n’est ouverte"
	if chair != 0 {
		now, maintenant = fmt.Sprintf("seat %d presides now", chair), fmt.Sprintf("c’est le siège %d qui préside", chair)
	}
	httpapi.Refuse(w, r, http.StatusForbidden,
		fmt.Sprintf("%s is for %s; your token's role is %s (seat %d) and %s", r.Pattern, a, role, c.Seat, now),
		fmt.Sprintf("%s est réservé à la présidence de séance ; votre jeton est celui du rôle %s (siège %d) et %s", r.Pattern, frenchRole(c.Role), c.Seat, maintenant))
}

// frenchRole names a token's role in the words of a French sitting.
func frenchRole(r auth.Role) string {
	switch r {
	case auth.RoleChair:
		return "président de séance"
	case auth.RoleClerk:
		return "secrétaire de séance"
	case auth.RoleMember:
		return "membre"
	case auth.RoleAgent:
		return "agent"
	case auth.RoleInterpreter:
		return "interprète"
	case auth.RoleCaptioner:
		return "sous-titrage"
	case auth.RoleViewer:
		return "public"
	case "":
		return "sans rôle au conseil"
	}
	return string(r)
}

// verifyFor checks a route's token: for the room in the path, or, on a body's routes, a token
// whose hemicycle claim names the body in the path.
func (s *Server) verifyFor(a httpapi.Access, tok string, r *http.Request) (*auth.Claims, error) {
	if !a.OfBody() {
		return s.cfg.Verifier.VerifyForRoom(tok, r.PathValue("room"))
	}
	claims, err := s.cfg.Verifier.Verify(tok)
	if err != nil {
		return nil, err
	}
	if body := r.PathValue("body"); claims.Council == nil || claims.Council.Body != body {
		return nil, &auth.Error{Reason: auth.ReasonWrongRoom, Status: http.StatusForbidden,
			Detail: fmt.Sprintf("asked for body %q, the token's hemicycle claim names body %q", body, claims.Council.GetBody())}
	}
	return claims, nil
}
