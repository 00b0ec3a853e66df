// Package signaling speaks the LiveKit signalling protocol (v0: two peer connections per
// participant) over WebSocket at /rtc, keeps rooms and participants, decides permissions from
// verified tokens, and drives the sfu package. It also serves LiveKit's RoomService over Twirp.
package signaling

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/store"
)

// ServerVersion is what clients see in ServerInfo. The SDKs gate features on it: at least 1.8.0
// enables RPC; staying at or below 1.13.6 keeps the browser on rid simulcast for VP9/AV1.
const ServerVersion = "1.9.0"

// ProtocolVersion is the signalling protocol level whose flow we implement.
const ProtocolVersion = 17

// Config configures a signalling server.
type Config struct {
	Verifier *auth.Verifier
	Media    *sfu.Engine
	Logger   *slog.Logger
	NodeID   string
	// ResumeWindow is how long a participant whose socket dropped is kept so that it can resume.
	ResumeWindow time.Duration
	// PingTimeout is how long a client may stay silent before its socket counts as dropped
	// (clients are told to ping three times within it); 15 s when zero.
	PingTimeout time.Duration
	// EmptyTimeout is how long an empty room lives before it is closed.
	EmptyTimeout time.Duration
	// Hooks lets other parts react to and veto media actions.
	Hooks Hooks
	// Programme, when set, gives every room a delayed public programme (programme.go).
	Programme *ProgrammeConfig

	// TURN, when set, is the relay handed to every client in ice_servers (turn.go).
	TURN *sfu.TURNServer

	// Journal keeps the deliberation's record; without it the /api deliberation routes
	// answer 503.
	Journal store.Journal
	// Profiles loads a legal profile by name (fr-commune, ...).
	Profiles func(name string) (*council.Profile, error)
	// Clock gives the time recorded in the journal (tests set it).
	Clock func() time.Time
	// Location is the time zone of the minutes.
	Location *time.Location
	// DepartureGrace, when set, replaces the legal profile's grace before a lost remote
	// member is recorded as departed.
	DepartureGrace time.Duration

	// Placement says which node serves each room when there are several (relay.go); nil
	// serves every room here.
	Placement Placement
	// RelayWait bounds how long a request waits for a room whose node is unreachable to be
	// placed on a live node (10 s when zero).
	RelayWait time.Duration
}

// Hooks are optional callbacks; nil fields are ignored.
type Hooks struct {
	// AllowUnmute is asked before a participant unmutes a microphone; an error refuses it and its
	// text is shown to the publisher.
	AllowUnmute func(room string, p ParticipantRef) error
	// Joined and Left are told of every participant that joins or leaves a room.
	Joined func(room string, p ParticipantRef)
	Left   func(room string, p ParticipantRef)
}

// ParticipantRef identifies a participant to hooks without exposing its internals.
type ParticipantRef struct {
	SID, Identity, Name string
	Claims              *auth.Claims
}

// Server holds every room of this node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	rooms map[string]*Room

	delib *deliberation // nil without a journal

	relayer *relayer // requests for rooms on other nodes (relay.go)

	events serverEvents // join times, for /metrics (metrics.go)
}

// NewServer returns a server; Close ends every room and goroutine it started.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ResumeWindow == 0 {
		cfg.ResumeWindow = 20 * time.Second
	}
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = 15 * time.Second
	}
	if cfg.EmptyTimeout == 0 {
		cfg.EmptyTimeout = 5 * time.Minute
	}
	if cfg.NodeID == "" {
		cfg.NodeID = newSID("ND_")
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		ctx:    ctx,
		cancel: cancel,
		rooms:  map[string]*Room{},
		upgrader: websocket.Upgrader{
			ReadBufferSize:  16 << 10,
			WriteBufferSize: 16 << 10,
			// Tokens, not origins, authorise a connection: SDKs connect from any page.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	if cfg.Journal != nil && cfg.Profiles != nil {
		s.delib = newDeliberation(s)
	}
	s.relayer = newRelayer() // relay.go
	return s
}

// Handler serves /rtc, its validate endpoints, the RoomService API and the deliberation API
// under /api/rooms/.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/rtc", s.serveRTC)
	mux.HandleFunc("/rtc/validate", s.serveValidate)
	// The browser SDK tries the single-peer-connection path first; a 404 that does not say
	// "room does not exist" makes it fall back to /rtc.
	mux.HandleFunc("/rtc/v1", s.notV1)
	mux.HandleFunc("/rtc/v1/validate", s.notV1)
	rs := newRoomService(s)
	mux.Handle(rs.PathPrefix(), rs)
	s.apiRoutes(mux)
	return cors(mux)
}

// cors lets pages on other origins reach the validate endpoints and the API; without it the
// browser SDK sees a failed fetch instead of a 404 and never falls back.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Twirp-Version")
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) notV1(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "single peer connection signalling (v1) is not offered by this server; use /rtc", http.StatusNotFound)
}

// Close disconnects everyone and ends every goroutine.
func (s *Server) Close() {
	s.cancel()
	s.mu.Lock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.close(livekit.DisconnectReason_SERVER_SHUTDOWN)
	}
	if s.delib != nil {
		// A server stopping is not its members leaving: nothing more is recorded.
		s.delib.close()
	}
	s.wg.Wait()
	s.relayer.transport.CloseIdleConnections()
}

// Rooms returns the open rooms.
func (s *Server) Rooms() []*Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		out = append(out, r)
	}
	return out
}

// Room returns an open room by name.
func (s *Server) Room(name string) (*Room, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[name]
	return r, ok
}

// openRoom returns the room, creating it when absent.
func (s *Server) openRoom(name string, emptyTimeout time.Duration) (*Room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return nil, errors.New("server is shutting down")
	}
	if r, ok := s.rooms[name]; ok {
		return r, nil
	}
	if emptyTimeout <= 0 {
		emptyTimeout = s.cfg.EmptyTimeout
	}
	r := newRoom(s, name, emptyTimeout)
	s.rooms[name] = r
	s.log.Info("room opened", "room", name, "sid", r.sid)
	return r, nil
}

func (s *Server) forgetRoom(r *Room) {
	s.mu.Lock()
	if s.rooms[r.name] == r {
		delete(s.rooms, r.name)
	}
	s.mu.Unlock()
	s.roomClosed(r.name) // relay.go: hand the room back to the placement
}

// bearer returns the token from the Authorization header or the access_token query parameter
// (the Go SDK uses the first, the browser SDK the second).
func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	return r.URL.Query().Get("access_token")
}

// authorize verifies the token for joining a room and writes the refusal when it fails.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (*auth.Claims, bool) {
	token := bearer(r)
	if token == "" {
		http.Error(w, "no access token: pass access_token in the query or an Authorization: Bearer header", http.StatusUnauthorized)
		return nil, false
	}
	claims, err := s.cfg.Verifier.VerifyJoin(token)
	if err != nil {
		http.Error(w, err.Error(), auth.HTTPStatus(err))
		return nil, false
	}
	return claims, true
}

func (s *Server) serveValidate(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.authorize(w, r)
	if !ok {
		return
	}
	if s.relay(w, r, claims.Video.Room) { // relay.go: the room lives on another node
		return
	}
	_, _ = w.Write([]byte("success"))
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
	claims, ok := s.authorize(w, r)
	if !ok {
		return
	}
	if s.relay(w, r, claims.Video.Room) { // relay.go: the room lives on another node
		return
	}
	params := parseJoinParams(r)
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "err", err)
		return
	}
	conn := newSignalConn(ws, s.cfg.PingTimeout)
	s.wg.Add(1)
	defer s.wg.Done()

	room, err := s.openRoom(claims.Video.Room, 0)
	if err != nil {
		conn.send(leaveMessage(livekit.LeaveRequest_DISCONNECT, livekit.DisconnectReason_SERVER_SHUTDOWN))
		conn.close(nil)
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

// allowUnmute asks the floor rule, then the configured hook, whether p may open a microphone.
func (s *Server) allowUnmute(room string, p ParticipantRef) error {
	if s.delib != nil {
		if err := s.delib.mayUnmute(room, p); err != nil {
			return err
		}
	}
	if h := s.cfg.Hooks.AllowUnmute; h != nil {
		return h(room, p)
	}
	return nil
}

func (s *Server) participantJoined(room string, p ParticipantRef) {
	if s.delib != nil {
		s.delib.joined(room, p)
	}
	if h := s.cfg.Hooks.Joined; h != nil {
		h(room, p)
	}
}

func (s *Server) participantLeft(room string, p ParticipantRef) {
	if s.delib != nil {
		s.delib.left(room, p)
	}
	if h := s.cfg.Hooks.Left; h != nil {
		h(room, p)
	}
}
