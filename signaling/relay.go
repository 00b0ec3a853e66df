package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/signaling/httpapi"
)

// Several nodes: any node is an entry point. A request for a room that lives on another node
// (the /rtc WebSocket, its validate call, the deliberation API, RoomService calls) is verified
// here, then relayed over HTTP to the room's node, which verifies it again and serves it. The
// WebSocket is relayed as a byte stream, so every signalling message keeps its order and
// meaning; media never passes here: the room's node hands out its own ICE candidates.

// RelayHeader marks a request relayed by an entry node (its value is that node's id). A node
// never relays such a request again: if the room is not its own, it answers 421 and the entry
// node asks Redis again.
const RelayHeader = httpapi.RelayHeader

// Placement says which node serves a room: LocalPlacement on a single node, the cluster's
// over Redis when there are several.
type Placement interface {
	// Locate says where room lives. local=true: serve it here (the room is now placed on this
	// node if it was free or its node is dead). Otherwise nodeURL is the base HTTP URL of the
	// room's node. An error wrapping ErrRoomMoving means the answer comes soon: the room's
	// node just died and its rooms are not yet given away.
	Locate(ctx context.Context, room string) (local bool, nodeURL string, err error)
	// RoomsElsewhere lists the rooms placed on other live nodes, by node URL.
	RoomsElsewhere(ctx context.Context) (map[string][]string, error)
	// Release says that the room closed here.
	Release(ctx context.Context, room string) error
}

// ErrRoomMoving is the answer of a placement while the room's node has died and the room is
// not yet placed again: a request waits for it rather than failing.
var ErrRoomMoving = errors.New("the room's node is gone and the room is being placed again")

// LocalPlacement is the placement of a single node: every room is served here.
type LocalPlacement struct{}

func (LocalPlacement) Locate(context.Context, string) (bool, string, error) { return true, "", nil }

func (LocalPlacement) RoomsElsewhere(context.Context) (map[string][]string, error) {
	return nil, nil
}

func (LocalPlacement) Release(context.Context, string) error { return nil }

// Load is what this node carries, for placing rooms.
type Load struct {
	Rooms        []string
	Participants int
	Tracks       int
}

// Load counts the open rooms, their participants and their published tracks.
func (s *Server) Load() Load {
	var l Load
	for _, r := range s.Rooms() {
		l.Rooms = append(l.Rooms, r.name)
		r.mu.Lock()
		l.Participants += len(r.participants)
		for _, p := range r.participants {
			l.Tracks += len(p.tracks)
		}
		r.mu.Unlock()
	}
	sort.Strings(l.Rooms)
	return l
}

// errMoved reports a relayed request refused by a node that no longer holds the room.
var errMoved = errors.New("the room's node says the room moved")

// relayer forwards requests for rooms held by other nodes.
type relayer struct {
	placement Placement
	nodeID    string
	log       *slog.Logger
	stopped   <-chan struct{} // the server is shutting down
	wait      time.Duration   // how long a request waits for a room being placed again
	openHere  func(room string) bool

	transport *http.Transport
	client    *http.Client

	// Where the rooms on other nodes are, for the programme's public routes (a player asks
	// for the HLS playlist every few seconds): read from the placement at most once per
	// openRoomsTTL.
	openMu   sync.Mutex
	openAt   map[string]string // room -> node URL
	openRead time.Time
}

// openRoomsTTL is how long the rooms' places are reused: a room opened on another node is
// found by the programme's routes here at most this late.
const openRoomsTTL = time.Second

func newRelayer(s *Server) *relayer {
	t := &http.Transport{
		Proxy: nil, // nodes talk to each other directly, whatever the environment says
		DialContext: (&net.Dialer{
			Timeout:   2 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
	}
	wait := s.cfg.RelayWait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	return &relayer{
		placement: s.cfg.Placement, nodeID: s.cfg.NodeID, log: s.log, stopped: s.ctx.Done(), wait: wait,
		openHere:  func(room string) bool { _, ok := s.Room(room); return ok },
		transport: t, client: &http.Client{Transport: t, Timeout: apiTimeout},
	}
}

// forward proxies r to nodeURL, keeping its body in kept the first time so that it can be
// sent again to another node, or served here, after a failed attempt.
func (rl *relayer) forward(w http.ResponseWriter, r *http.Request, nodeURL string, kept *[]byte) (done bool, err error) {
	if *kept == nil && r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
		if err != nil || int64(len(b)) > maxBodyBytes {
			relayError(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body unreadable or over %d bytes", maxBodyBytes))
			return true, nil
		}
		*kept = b
	}
	rewind(r, *kept)
	return rl.proxy(w, r, nodeURL)
}

func rewind(r *http.Request, b []byte) {
	if b != nil {
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
}

// toRoom serves r on the room's node when that is another node, and reports whether it did
// (or refused the request); false means: serve it here. While the room's node is unreachable
// (it just died, and Redis has not yet expired it) the request waits, up to the relay wait,
// for the room to be placed on a live node: a reconnecting client then gets through on its
// first try.
func (rl *relayer) toRoom(w http.ResponseWriter, r *http.Request, room string) bool {
	var sent []byte
	deadline := time.Now().Add(rl.wait)
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		local, nodeURL, err := rl.placement.Locate(ctx, room)
		cancel()
		switch {
		case err == nil && local:
			rewind(r, sent)
			return false
		case err == nil && httpapi.IsRelayed(r):
			relayError(w, r, http.StatusMisdirectedRequest, fmt.Sprintf("room %q is served by %s, not by this node", room, nodeURL))
			return true
		case err == nil:
			done, perr := rl.forward(w, r, nodeURL, &sent)
			if done {
				return true
			}
			if lastErr == nil {
				rl.log.Info("room's node unreachable; waiting for the room to be placed again", "room", room, "node", nodeURL, "err", perr)
			}
			lastErr = perr
		case errors.Is(err, ErrRoomMoving):
			lastErr = err
		default:
			relayError(w, r, http.StatusServiceUnavailable, fmt.Sprintf("cannot tell which node serves room %q: %v", room, err))
			return true
		}
		if time.Now().After(deadline) {
			break
		}
		if !rl.pause(w, r) {
			return true
		}
	}
	relayError(w, r, http.StatusServiceUnavailable, fmt.Sprintf("room %q has no reachable node after %s: %v", room, rl.wait, lastErr))
	return true
}

// pause waits before asking the placement again; false when the request or the server ended.
func (rl *relayer) pause(w http.ResponseWriter, r *http.Request) bool {
	select {
	case <-r.Context().Done():
		return false
	case <-rl.stopped:
		relayError(w, r, http.StatusServiceUnavailable, "server is shutting down")
		return false
	case <-time.After(200 * time.Millisecond):
		return true
	}
}

// toOpenRoom serves r on the node where room is open, when that is another node, and
// reports whether it did (or refused the request); false means: serve it here. Unlike toRoom
// it never places the room: the programme's routes only make sense for a room open somewhere,
// and some are anonymous, so a request for a room open nowhere must not claim it for this
// node. A relayed request is served here whatever the answer (404 for a room not open here).
func (rl *relayer) toOpenRoom(w http.ResponseWriter, r *http.Request, room string) bool {
	if httpapi.IsRelayed(r) || rl.openHere(room) {
		return false
	}
	var sent []byte
	deadline := time.Now().Add(rl.wait)
	for {
		nodeURL, err := rl.nodeOf(r.Context(), room)
		if err != nil {
			relayError(w, r, http.StatusServiceUnavailable, fmt.Sprintf("cannot tell which node serves room %q: %v", room, err))
			return true
		}
		if nodeURL == "" {
			rewind(r, sent)
			return false // open on no other node: this one answers
		}
		done, perr := rl.forward(w, r, nodeURL, &sent)
		if done {
			return true
		}
		// The node is unreachable: it may just have died, and the room be placed again.
		rl.forgetPlaces()
		if time.Now().After(deadline) {
			relayError(w, r, http.StatusServiceUnavailable, fmt.Sprintf("room %q has no reachable node after %s: %v", room, rl.wait, perr))
			return true
		}
		if !rl.pause(w, r) {
			return true
		}
	}
}

// nodeOf returns the URL of the other live node holding room, or "" when none does.
func (rl *relayer) nodeOf(ctx context.Context, room string) (string, error) {
	rl.openMu.Lock()
	defer rl.openMu.Unlock()
	if rl.openAt == nil || time.Since(rl.openRead) > openRoomsTTL {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		byNode, err := rl.placement.RoomsElsewhere(ctx)
		if err != nil {
			return "", err
		}
		rl.openAt = map[string]string{}
		for nodeURL, rooms := range byNode {
			for _, name := range rooms {
				rl.openAt[name] = nodeURL
			}
		}
		rl.openRead = time.Now()
	}
	return rl.openAt[room], nil
}

// forgetPlaces makes the next nodeOf ask the placement again.
func (rl *relayer) forgetPlaces() {
	rl.openMu.Lock()
	rl.openAt = nil
	rl.openMu.Unlock()
}

// relayError answers in the form the caller expects: JSON for the deliberation API, a Twirp
// error for RoomService, text for the signalling endpoints.
func relayError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	switch {
	case status == http.StatusMisdirectedRequest:
		http.Error(w, msg, status) // between nodes: the entry node asks Redis again
	case strings.HasPrefix(r.URL.Path, "/api/"):
		httpapi.WriteError(w, status, msg)
	case strings.HasPrefix(r.URL.Path, "/twirp/"):
		code := twirp.Unavailable
		switch status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			code = twirp.Malformed
		case http.StatusBadGateway:
			code = twirp.Internal
		}
		_ = twirp.WriteError(w, twirp.NewError(code, msg))
	default:
		http.Error(w, msg, status)
	}
}

// proxy forwards r to nodeURL. It reports done=false, having written nothing, when the node
// could not be reached or no longer holds the room, so that the caller may ask again.
func (rl *relayer) proxy(w http.ResponseWriter, r *http.Request, nodeURL string) (done bool, err error) {
	target, err := url.Parse(nodeURL)
	if err != nil {
		relayError(w, r, http.StatusBadGateway, fmt.Sprintf("room's node has a bad URL %q: %v", nodeURL, err))
		return true, nil
	}
	var retry error
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Header.Set(RelayHeader, rl.nodeID)
		},
		Transport: rl.transport,
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusMisdirectedRequest {
				return errMoved
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var op *net.OpError
			if errors.Is(err, errMoved) || (errors.As(err, &op) && op.Op == "dial") {
				retry = err
				return
			}
			if r.Context().Err() != nil {
				return // the client left
			}
			// The node failed during the request: a write may or may not have been applied.
			relayError(w, r, http.StatusBadGateway, "the room's node failed during the request (a change may or may not have been recorded: read the state before retrying): "+err.Error())
		},
	}
	rp.ServeHTTP(w, r)
	if retry != nil {
		return false, retry
	}
	return true, nil
}

// relayTwirp relays a RoomService call about a room on another node. The room is in the
// request message, which is decoded here (JSON or protobuf, as Twirp accepts both).
func (rl *relayer) twirp(w http.ResponseWriter, r *http.Request) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil || int64(len(body)) > maxBodyBytes {
		return false // Twirp reports the bad body itself
	}
	room := twirpRoom(path.Base(r.URL.Path), r.Header.Get("Content-Type"), body)
	if room == "" {
		return false
	}
	return rl.toRoom(w, r, room)
}

// twirpRoom names the room a RoomService request is about, or "" for calls about no single
// room (ListRooms) and for requests that do not decode (Twirp answers those).
func twirpRoom(method, contentType string, body []byte) string {
	var msg proto.Message
	switch method {
	case "CreateRoom":
		msg = &livekit.CreateRoomRequest{}
	case "DeleteRoom":
		msg = &livekit.DeleteRoomRequest{}
	case "ListParticipants":
		msg = &livekit.ListParticipantsRequest{}
	case "GetParticipant", "RemoveParticipant":
		msg = &livekit.RoomParticipantIdentity{}
	case "MutePublishedTrack":
		msg = &livekit.MuteRoomTrackRequest{}
	case "UpdateParticipant":
		msg = &livekit.UpdateParticipantRequest{}
	case "UpdateSubscriptions":
		msg = &livekit.UpdateSubscriptionsRequest{}
	case "SendData":
		msg = &livekit.SendDataRequest{}
	case "UpdateRoomMetadata":
		msg = &livekit.UpdateRoomMetadataRequest{}
	case "PerformRpc":
		msg = &livekit.PerformRpcRequest{}
	default:
		return ""
	}
	// Read as Twirp's server reads it, so that the room's node serves what it names: the
	// content type without its parameters, in any case, and of a JSON body its first value
	// only (a body with more after it was served here, where the room is not, and refused).
	mediaType, _, _ := strings.Cut(contentType, ";")
	var err error
	switch strings.ToLower(strings.TrimSpace(mediaType)) {
	case "application/json":
		var first json.RawMessage
		if err = json.NewDecoder(bytes.NewReader(body)).Decode(&first); err == nil {
			err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(first, msg)
		}
	case "application/protobuf":
		err = proto.Unmarshal(body, msg)
	default:
		return "" // Twirp refuses it
	}
	if err != nil {
		return ""
	}
	switch m := msg.(type) {
	case *livekit.CreateRoomRequest:
		return m.GetName()
	case interface{ GetRoom() string }:
		return m.GetRoom()
	}
	return ""
}

// roomsElsewhere asks every other node for its open rooms (those in want, or all), with the
// caller's token, for a ListRooms answered from any node. A node that does not answer is
// logged and left out rather than failing the whole list.
func (rl *relayer) roomsElsewhere(ctx context.Context, token string, want map[string]bool) []*livekit.Room {
	byNode, err := rl.placement.RoomsElsewhere(ctx)
	if err != nil {
		rl.log.Warn("list rooms of other nodes", "err", err)
		return nil
	}
	header := http.Header{}
	header.Set("Authorization", "Bearer "+token)
	header.Set(RelayHeader, rl.nodeID)
	ctx, err = twirp.WithHTTPRequestHeaders(ctx, header)
	if err != nil {
		rl.log.Warn("list rooms of other nodes", "err", err)
		return nil
	}
	var out []*livekit.Room
	for nodeURL, rooms := range byNode {
		var names []string
		for _, n := range rooms {
			if len(want) == 0 || want[n] {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			continue
		}
		res, err := livekit.NewRoomServiceProtobufClient(nodeURL, rl.client).ListRooms(ctx, &livekit.ListRoomsRequest{Names: names})
		if err != nil {
			rl.log.Warn("list rooms of another node", "node", nodeURL, "err", err)
			continue
		}
		out = append(out, res.GetRooms()...)
	}
	return out
}

// Evict stops serving a room that another node now holds: each participant is told to
// reconnect in full, which brings it, through its entry node, to the room's node.
func (s *Server) Evict(room string) {
	// The desk goes first, with its pending departures: the room's node now sees who is
	// connected, and the removals below must not start new departures here.
	if s.delib != nil {
		s.delib.forget(room, true)
	}
	if r, ok := s.Room(room); ok {
		r.handOver()
	}
}

// roomClosed hands a room closed here back to the placement and drops its council desk, whose
// state another node may extend from the journal before the room comes back here.
func (s *Server) roomClosed(name string) {
	s.mu.Lock()
	_, reopened := s.rooms[name]
	s.mu.Unlock()
	// Pages following the session's event stream keep the room here (and its desk current).
	if reopened || (s.delib != nil && s.delib.watched(name)) {
		return
	}
	if s.delib != nil {
		// Departures already pending are still recorded: the members left while the room
		// was here.
		s.delib.forget(name, false)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := s.relayer.placement.Release(ctx, name); err != nil {
			s.log.Warn("room closed but not released; its claim lapses when this node stops", "room", name, "err", err)
		}
	}()
}
