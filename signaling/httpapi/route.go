// Package httpapi holds the pieces of Hemicycle's one route table: a Route declares an HTTP
// route once (method, pattern, who may call it, whether it is served on the room's node, its
// handler), and the server builds its mux, its token and role checks, its relay and the
// documentation checks from the rows. It also holds what every handler answers with: JSON
// replies and errors, Server-Sent Events, the caller's token and address, a rate limit.
package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/ingeco/hemicycle/auth"
)

// Route is one row of the route table.
type Route struct {
	// Method is GET or POST; empty for routes that take any method (the /rtc WebSocket
	// upgrade, Twirp, the web client's files).
	Method string
	// Pattern is a net/http ServeMux pattern without the method: /api/rooms/{room}/votes.
	Pattern string
	Access  Access
	Relay   Relay
	// Limit, when set, is taken first, on the node the client reached.
	Limit   *Limiter
	Handler http.HandlerFunc
}

// Key is the route as the mux and the documentation name it: "POST /api/rooms/{room}/votes".
func (rt Route) Key() string {
	if rt.Method == "" {
		return rt.Pattern
	}
	return rt.Method + " " + rt.Pattern
}

// Relay says where a route is served when there are several nodes.
type Relay int

const (
	// Here: served by the node the request reached (no room, or nothing room-specific).
	Here Relay = iota
	// ToRoom: served by the node holding the room named in the path, which is placed on this
	// node if no live node holds it. The token is verified on both nodes.
	ToRoom
	// ToOpenRoom: served by the node where the room named in the path is open; such a request
	// never places a room (some of these routes are anonymous).
	ToOpenRoom
	// ByHandler: the handler relays, for the room named in its token (/rtc) or in its body
	// (Twirp).
	ByHandler
)

// accessKind is how a route's caller is identified.
type accessKind int

const (
	anyone    accessKind = iota + 1 // no token
	roomToken                       // a token for the room in the path, checked before the handler
	selfCheck                       // the handler checks the token itself
	bodyToken                       // a token for the body in the path ({body}), checked before the handler
)

// Access says who may call a route. Build it with Anyone, SelfChecked or For.
type Access struct {
	kind accessKind
	// Roles admitted; empty means any role (any valid token for the room).
	Roles []auth.Role
	// Presiding also admits the seat presiding over the room's sitting, whatever its token's
	// role; decided on the room's node, where the sitting is.
	Presiding bool
	// RoomAdmin also admits a token that administers the room (LiveKit's roomAdmin grant),
	// whatever its council role.
	RoomAdmin bool
	// Why, for a route that admits anyone, says what protects it instead (for the docs).
	Why string
}

// Anyone admits callers without a token; why says what limits the route instead.
func Anyone(why string) Access { return Access{kind: anyone, Why: why} }

// SelfChecked marks a route whose handler verifies the token itself (the /rtc join, which
// takes it from the query too, and RoomService, whose grants depend on the call).
func SelfChecked(why string) Access { return Access{kind: selfCheck, Why: why} }

// For admits a token for the room in the path whose role is one of roles (any role when
// none is given).
func For(roles ...auth.Role) Access { return Access{kind: roomToken, Roles: roles} }

// ForBody admits a token whose hemicycle claim names the body in the path ({body}) and whose
// role is one of roles: preparing a sitting happens before its room exists.
func ForBody(roles ...auth.Role) Access { return Access{kind: bodyToken, Roles: roles} }

// OrPresiding also admits the seat presiding over the sitting.
func (a Access) OrPresiding() Access {
	a.Presiding = true
	return a
}

// OrRoomAdmin also admits a token with the roomAdmin grant for the room.
func (a Access) OrRoomAdmin() Access {
	a.RoomAdmin = true
	return a
}

// AdmitsClaims reports whether verified claims may call the route for room before the
// sitting is looked at: by their council role, or as the room's admin.
func (a Access) AdmitsClaims(c *auth.Claims, room string) bool {
	return a.Admits(c.Role()) || (a.RoomAdmin && c.CanAdminRoom(room))
}

// Public reports whether the route needs no token.
func (a Access) Public() bool { return a.kind == anyone }

// ChecksToken reports whether the route table verifies a room or body token before the handler.
func (a Access) ChecksToken() bool { return a.kind == roomToken || a.kind == bodyToken }

// OfBody reports whether the token must name the body in the path rather than the room.
func (a Access) OfBody() bool { return a.kind == bodyToken }

// Admits reports whether a token of role may call the route before the sitting is looked at
// (a Presiding route may still admit other roles for the seat presiding).
func (a Access) Admits(role auth.Role) bool {
	return !a.ChecksToken() || len(a.Roles) == 0 || slices.Contains(a.Roles, role)
}

// String says who may call the route, in the words of the docs and of a 403.
func (a Access) String() string {
	switch a.kind {
	case anyone:
		return "anyone (" + a.Why + ")"
	case selfCheck:
		return a.Why
	}
	if len(a.Roles) == 0 {
		return "any token of the room"
	}
	of := ""
	if a.kind == bodyToken {
		of = " of the body"
	}
	names := make([]string, len(a.Roles))
	for i, r := range a.Roles {
		names[i] = "the " + string(r) + of
	}
	if a.Presiding {
		names = append(names, "the seat presiding")
	}
	if a.RoomAdmin {
		names = append(names, "a room admin")
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Caller is the verified author of a request on a route whose token the table checks.
type Caller struct {
	Claims *auth.Claims
	Role   auth.Role
	Seat   int
}

// NewCaller reads the role and the seat from verified claims.
func NewCaller(c *auth.Claims) Caller {
	out := Caller{Claims: c, Role: c.Role()}
	if c.Council != nil {
		out.Seat = c.Council.Seat
	}
	return out
}

type callerKey struct{}

// WithCaller returns r carrying c, for the handler.
func WithCaller(r *http.Request, c Caller) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
}

// CallerOf returns the caller the route table verified; the zero Caller on routes whose
// token it does not check.
func CallerOf(r *http.Request) Caller {
	c, _ := r.Context().Value(callerKey{}).(Caller)
	return c
}

// Bearer returns the token from the Authorization header or the access_token query parameter
// (the Go SDK uses the first, the browser SDK the second).
func Bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	return r.URL.Query().Get("access_token")
}
