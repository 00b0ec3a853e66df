package signaling

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/httpapi"
)

// The /rtc endpoint: a LiveKit client's WebSocket, verified from its token and relayed to the
// room's node when the room lives elsewhere.

// joinHere verifies the token for joining a room, writes the refusal when it fails, and relays
// the request when the room lives on another node; it returns the claims when this node
// serves it. A join over a limit is refused here, before the upgrade, so that the client hears
// why (limits.go); attempt is false for /rtc/validate, which takes nothing from the join rates.
func (s *Server) joinHere(w http.ResponseWriter, r *http.Request, attempt bool) (*auth.Claims, bool) {
	// First: a flood of joins with bad tokens is still a flood.
	if !s.limits.admitJoin(w, r, attempt) {
		return nil, false
	}
	token := httpapi.Bearer(r)
	if token == "" {
		http.Error(w, "no access token: pass access_token in the query or an Authorization: Bearer header", http.StatusUnauthorized)
		return nil, false
	}
	claims, err := s.cfg.Verifier.VerifyJoin(token)
	if err != nil {
		http.Error(w, err.Error(), auth.HTTPStatus(err))
		return nil, false
	}
	if s.relayer.toRoom(w, r, claims.Video.Room) { // relay.go: the room lives on another node
		return nil, false
	}
	if !s.admitToRoom(w, claims, attempt) {
		return nil, false
	}
	return claims, true
}

func (s *Server) serveValidate(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.joinHere(w, r, false); !ok || !s.carriesMedia(w) {
		return
	}
	_, _ = w.Write([]byte("success"))
}

// carriesMedia writes the refusal of a join when the server has no media engine (one that serves
// the API only).
func (s *Server) carriesMedia(w http.ResponseWriter) bool {
	if s.cfg.Media == nil {
		http.Error(w, "this server carries no media: it serves the API only", http.StatusServiceUnavailable)
		return false
	}
	return true
}

// joinParams are the query parameters of /rtc that we act on.
type joinParams struct {
	autoSubscribe bool
	reconnect     bool
	sid           string
	protocol      int
	sdk           string
}

func parseJoinParams(r *http.Request) joinParams {
	q := r.URL.Query()
	p := joinParams{autoSubscribe: true, sid: q.Get("sid"), sdk: q.Get("sdk")}
	if v := q.Get("auto_subscribe"); v == "0" || v == "false" {
		p.autoSubscribe = false
	}
	if v := q.Get("reconnect"); v == "1" || v == "true" {
		p.reconnect = true
	}
	p.protocol, _ = strconv.Atoi(q.Get("protocol"))
	return p
}

func (s *Server) serveRTC(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.joinHere(w, r, true)
	if !ok {
		return
	}
	if !s.carriesMedia(w) {
		return
	}
	params := parseJoinParams(r)
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "err", err)
		return
	}
	conn := newSignalConn(ws, s.cfg.PingTimeout, s.limits.forConn())
	s.wg.Add(1)
	defer s.wg.Done()

	room, err := s.openRoom(claims.Video.Room, 0)
	if err != nil {
		reason := livekit.DisconnectReason_SERVER_SHUTDOWN
		var full *limitError
		if errors.As(err, &full) { // another join took the node's last room since joinHere
			reason = livekit.DisconnectReason_JOIN_FAILURE
			s.limits.refused(full.limit)
		}
		conn.send(leaveMessage(livekit.LeaveRequest_DISCONNECT, reason))
		conn.close(err)
		return
	}
	var p *Participant
	if params.reconnect {
		p = room.resume(params.sid, claims.ParticipantIdentity(), conn)
		if p == nil {
			// Unknown session: ask for a full rejoin, as the SDKs expect.
			conn.send(leaveMessage(livekit.LeaveRequest_RECONNECT, livekit.DisconnectReason_STATE_MISMATCH))
			conn.close(nil)
			return
		}
	} else {
		p, err = room.join(claims, params, conn)
		if err != nil {
			var full *limitError
			if errors.As(err, &full) { // another join took the room's last place since joinHere
				s.limits.refused(full.limit)
			}
			s.log.Warn("join refused", "room", room.name, "identity", claims.ParticipantIdentity(), "err", err)
			conn.send(leaveMessage(livekit.LeaveRequest_DISCONNECT, livekit.DisconnectReason_JOIN_FAILURE))
			conn.close(err)
			return
		}
	}
	p.readLoop(conn)
}

func leaveMessage(action livekit.LeaveRequest_Action, reason livekit.DisconnectReason) *livekit.SignalResponse {
	return &livekit.SignalResponse{Message: &livekit.SignalResponse_Leave{Leave: &livekit.LeaveRequest{
		Action:       action,
		Reason:       reason,
		CanReconnect: action != livekit.LeaveRequest_DISCONNECT,
	}}}
}

// newSID makes a LiveKit-style identifier: a prefix and 12 random base62 characters.
func newSID(prefix string) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b[:])
}
