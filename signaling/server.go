// Package signaling speaks the LiveKit signalling protocol (v0: two peer connections per
// participant) over WebSocket at /rtc, keeps rooms and participants, decides permissions from
// verified tokens, and drives the sfu package. Its files, by concern:
//
//   - server.go, routes.go: the server, its rooms, and its rows of the route table (the types
//     are in signaling/httpapi), with the guard that checks tokens and relays;
//   - rtc.go, conn.go: the /rtc endpoint and its WebSocket;
//   - room.go, participant.go, publish.go, subscribe.go, data.go, quality.go: a room, its
//     participants, what they publish and receive, data packets, connection quality;
//   - roomservice.go: LiveKit's RoomService over Twirp;
//   - relay.go: several nodes (Placement, LocalPlacement, the relay to the room's node);
//   - desk*.go: the deliberation desk, one per room: the council session folded from its
//     journal, its API routes, attendance from connections, the floor on the media;
//   - prepare*.go: sittings prepared ahead: bodies, rosters, agendas, convocations and the
//     members' invitations, kept as store Records (mail sends the invitations);
//   - programme*.go: the public programme of each room (broadcast makes it; broadcast.OnAir
//     says what is on air) and its viewers; its HTTP routes are in signaling/programme;
//   - metrics.go: Prometheus metrics.
package signaling

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/signaling/webhook"
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
	// Speech, when it names an engine, lets the chair (or every sitting) caption the speakers
	// with a speech-to-text engine (speech.go).
	Speech *SpeechConfig

	// TURN, when set, is the relay handed to every client in ice_servers (turn.go).
	TURN *sfu.TURNServer

	// Journal keeps the deliberation's record; without it the /api deliberation routes
	// answer 503.
	Journal store.Journal
	// JournalKeys are the public keys the journal is signed with, published at
	// /.well-known/hemicycle-journal-keys and printed in the minutes (journalkeys.go).
	JournalKeys store.PublicKeys
	// Profiles loads a legal profile by name (fr-commune, ...).
	Profiles func(name string) (*council.Profile, error)
	// Clock gives the time recorded in the journal (tests set it).
	Clock func() time.Time
	// Location is the time zone of the minutes.
	Location *time.Location
	// Labels are the words of what the server writes for everyone: the recording's chapters
	// and bleep titles, and the minutes when the reader asks for no language (labels.go).
	Labels council.Labels
	// DepartureGrace, when set, replaces the legal profile's grace before a lost remote
	// member is recorded as departed.
	DepartureGrace time.Duration

	// Records keeps the bodies, rosters, prepared sittings and invitations (prepare*.go);
	// without it (or without a journal) the /api/bodies routes answer 503.
	Records store.Records
	// Invitations says how members' invitations are made and sent.
	Invitations InvitationConfig

	// Placement says which node serves each room when there are several (relay.go); the
	// default, LocalPlacement, serves every room here.
	Placement Placement
	// RelayWait bounds how long a request waits for a room whose node is unreachable to be
	// placed on a live node (10 s when zero).
	RelayWait time.Duration

	// Webhooks, when it has URLs, sends them LiveKit's events of rooms, participants and
	// tracks, and Hemicycle's of the sitting (webhooks.go). It must be valid
	// (webhook.Config.Validate): NewServer runs without webhooks otherwise.
	Webhooks webhook.Config

	// Sobriety holds the factors of the rooms' energy and CO2e estimate (report.go).
	Sobriety SobrietyConfig
	// Limits bound what a client, a room and this node may take (limits.go); the zero value
	// sets none but the frame size.
	Limits Limits
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
	prep  *preparation  // nil without records

	relayer *relayer // requests for rooms on other nodes (relay.go)

	events serverEvents // join times, for /metrics (metrics.go)

	webhooks *webhook.Notifier // nil without webhook URLs (webhooks.go)

	limits *limits // limits.go
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
	if cfg.Placement == nil {
		cfg.Placement = LocalPlacement{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		ctx:    ctx,
		cancel: cancel,
		rooms:  map[string]*Room{},
		limits: newLimits(cfg.Limits),
		upgrader: websocket.Upgrader{
			ReadBufferSize:  16 << 10,
			WriteBufferSize: 16 << 10,
			// Tokens, not origins, authorise a connection: SDKs connect from any page.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	if len(cfg.Webhooks.URLs) > 0 {
		var err error
		if s.webhooks, err = webhook.New(cfg.Webhooks, cfg.Logger.With("part", "webhooks")); err != nil {
			s.log.Error("no webhooks", "err", err)
		}
	}
	if cfg.Journal != nil && cfg.Profiles != nil {
		s.delib = newDeliberation(s)
	}
	s.prep = newPreparation(s)
	s.relayer = newRelayer(s) // relay.go
	return s
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
	s.webhooks.Close() // after the rooms' last events, their recordings' end among them
	s.relayer.transport.CloseIdleConnections()
}

// Rooms returns the open rooms.
func (s *Server) Rooms() []*Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.AppendSeq(make([]*Room, 0, len(s.rooms)), maps.Values(s.rooms))
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
	if err := s.fullLocked(); err != nil { // limits.go
		return nil, err
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

// departure is how a participant left: with a leave of its own, or its connection lost at
// lostAt.
type departure struct {
	voluntary bool
	lostAt    time.Time
}

func (s *Server) participantLeft(room string, p ParticipantRef, gone departure) {
	if s.delib != nil {
		s.delib.left(room, p, gone)
	}
	if h := s.cfg.Hooks.Left; h != nil {
		h(room, p)
	}
}
