package signaling

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/httpapi"
)

// The public programme's routes: viewer tokens for the watch page, the chair's bleep, the
// delayed state, HLS. Each is served where the room is open; none places a room. They answer
// 404 for rooms without a programme (the server has none configured, or the room is not open).

// programmeRoutes are the programme's rows of the route table.
func programmeRoutes(s *Server) []httpapi.Route {
	var cfg ProgrammeConfig
	if s.cfg.Programme != nil {
		cfg = *s.cfg.Programme
	}
	cfg = cfg.withDefaults()
	pub := &public{s: s, cfg: cfg}
	limit := httpapi.NewLimiter(cfg.ViewerTokensPerMinute, cfg.ViewerTokenBurst, cfg.ViewerTokensPerSecond,
		"too many viewer tokens asked for: wait and retry")
	row := func(method, pattern string, who httpapi.Access, h http.HandlerFunc) httpapi.Route {
		return httpapi.Route{Method: method, Pattern: pattern, Access: who, Relay: httpapi.ToOpenRoom, Handler: h}
	}
	token := row("POST", "/api/rooms/{room}/viewer-token", httpapi.Anyone("rate-limited per address and in all"), pub.viewerToken)
	// Limited on the node the client reached, and again on the room's node, which sees every
	// entry node's requests for its room.
	token.Limit = limit
	return []httpapi.Route{
		token,
		row("GET", "/api/rooms/{room}/programme", httpapi.Anyone("says whether there is a public programme, with which delay"), pub.info),
		row("POST", "/api/rooms/{room}/bleep", httpapi.For(auth.RoleChair).OrPresiding(), pub.bleep),
		row("GET", "/api/rooms/{room}/bleep", httpapi.For(auth.RoleChair, auth.RoleClerk).OrPresiding(), pub.bleeps),
		row("GET", "/api/rooms/{room}/programme/events", httpapi.For(), pub.events),
		row("GET", "/live/{room}/{file}", httpapi.Anyone("the HLS playlist and its segments"), pub.hls),
	}
}

// public serves the programme's routes.
type public struct {
	s   *Server
	cfg ProgrammeConfig
}

// programmeOf returns the open room and its programme, or writes 404.
func (pub *public) programmeOf(w http.ResponseWriter, r *http.Request) (*Room, *roomProgramme, bool) {
	name := r.PathValue("room")
	room, ok := pub.s.Room(name)
	if !ok || room.programme == nil {
		httpapi.WriteError(w, http.StatusNotFound, fmt.Sprintf("room %q has no public programme now: the sitting has not started, or is not broadcast", name))
		return nil, nil, false
	}
	return room, room.programme, true
}

// hls serves a room's HLS playlist and segments to anyone, from any origin (players are often
// on another site).
func (pub *public) hls(w http.ResponseWriter, r *http.Request) {
	room, ok := pub.s.Room(r.PathValue("room"))
	if !ok || room.programme == nil || room.programme.hls == nil {
		http.Error(w, "no live stream for this room now", http.StatusNotFound)
		return
	}
	name := r.PathValue("file")
	path, ok := room.programme.hls.HLSFile(name)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", broadcast.HLSContentType(name))
	if strings.HasSuffix(name, ".m3u8") {
		w.Header().Set("Cache-Control", "no-cache") // the playlist changes every segment
	} else {
		w.Header().Set("Cache-Control", "max-age=60")
	}
	http.ServeFile(w, r, path)
}

func (pub *public) info(w http.ResponseWriter, r *http.Request) {
	room, rp, ok := pub.programmeOf(w, r)
	if !ok {
		return
	}
	httpapi.WriteJSON(w, 200, map[string]any{"room": room.name, "delaySeconds": rp.prog.Delay().Seconds()})
}

// viewerTokenResponse is what the watch page receives.
type viewerTokenResponse struct {
	Token        string    `json:"token"`
	Identity     string    `json:"identity"`
	Room         string    `json:"room"`
	ExpiresAt    time.Time `json:"expiresAt"`
	DelaySeconds float64   `json:"delaySeconds"`
}

func (pub *public) viewerToken(w http.ResponseWriter, r *http.Request) {
	if pub.s.cfg.Programme == nil {
		httpapi.WriteError(w, http.StatusNotFound, "this server broadcasts no public programme")
		return
	}
	room, rp, ok := pub.programmeOf(w, r)
	if !ok {
		return
	}
	cfg := pub.cfg
	if cfg.MaxViewers > 0 {
		room.mu.Lock()
		n := len(room.viewersLocked())
		room.mu.Unlock()
		if n >= cfg.MaxViewers {
			httpapi.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("the live page is full (%d viewers): follow the sitting on the HLS stream", n))
			return
		}
	}
	identity := "viewer-" + rand.Text()[:12]
	now := time.Now()
	tok, err := auth.Issue(auth.TokenOptions{
		Key: cfg.Key, Secret: cfg.Secret, Identity: identity, Name: "Viewer", Room: room.name,
		TTL: cfg.ViewerTokenTTL, Video: auth.GrantsForRole(auth.RoleViewer, room.name),
		Council: &auth.CouncilGrant{Role: auth.RoleViewer}, Now: now,
	})
	if err != nil {
		pub.s.log.Error("viewer token", "room", room.name, "err", err)
		httpapi.WriteError(w, http.StatusInternalServerError, "the viewer token could not be made: "+err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, 200, viewerTokenResponse{
		Token: tok, Identity: identity, Room: room.name, ExpiresAt: now.Add(cfg.ViewerTokenTTL),
		DelaySeconds: rp.prog.Delay().Seconds(),
	})
}

// bleepRequest is {"on": true|false} to start or end a bleep now, or {"lastSeconds": N} to
// bleep the last N seconds, which the public has not heard yet when N is within the delay.
type bleepRequest struct {
	On          *bool    `json:"on"`
	LastSeconds *float64 `json:"lastSeconds"`
}

type bleepResponse struct {
	Bleep        broadcast.Bleep   `json:"bleep"`
	Changed      bool              `json:"changed"`
	Bleeps       []broadcast.Bleep `json:"bleeps"`
	DelaySeconds float64           `json:"delaySeconds"`
	// Recorded says that the bleep, finished, went into the session's journal (and so into
	// the minutes); RecordError says why it could not, the bleep itself standing.
	Recorded    bool   `json:"recorded"`
	RecordError string `json:"recordError,omitempty"`
}

func (pub *public) bleep(w http.ResponseWriter, r *http.Request) {
	claims := httpapi.CallerOf(r).Claims
	room, rp, ok := pub.programmeOf(w, r)
	if !ok {
		return
	}
	var req bleepRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || (req.On == nil) == (req.LastSeconds == nil) {
		httpapi.WriteError(w, http.StatusBadRequest, `body must be {"on": true|false} or {"lastSeconds": N}`)
		return
	}
	prog := rp.prog
	resp := bleepResponse{DelaySeconds: prog.Delay().Seconds()}
	if req.On != nil {
		resp.Bleep, resp.Changed = prog.Bleep(*req.On)
	} else {
		b, err := prog.BleepLast(time.Duration(*req.LastSeconds * float64(time.Second)))
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, broadcast.ErrBleepTooLate) {
				status = http.StatusConflict
			}
			httpapi.WriteError(w, status, err.Error())
			return
		}
		resp.Bleep, resp.Changed = b, true
	}
	resp.Bleeps = prog.Bleeps()
	if resp.Changed {
		pub.s.log.Info("bleep marked", "room", room.name, "by", claims.ParticipantIdentity(), "from", resp.Bleep.From, "to", resp.Bleep.To)
		// A running bleep is recorded when it ends: the record holds whole passages.
		if resp.Bleep.To.IsZero() {
			rp.bleepStarted(claims)
		} else {
			if req.On != nil {
				rp.bleepEnded()
			}
			var err error
			resp.Recorded, err = pub.s.delib.recordBleep(r.Context(), room.name, claims, resp.Bleep)
			if err != nil {
				pub.s.log.Error("bleep not recorded in the journal", "room", room.name, "from", resp.Bleep.From, "to", resp.Bleep.To, "err", err)
				resp.RecordError = err.Error()
			}
		}
	}
	httpapi.WriteJSON(w, 200, resp)
}

func (pub *public) bleeps(w http.ResponseWriter, r *http.Request) {
	_, rp, ok := pub.programmeOf(w, r)
	if !ok {
		return
	}
	httpapi.WriteJSON(w, 200, map[string]any{"bleeps": rp.prog.Bleeps(), "delaySeconds": rp.prog.Delay().Seconds()})
}

// events streams the session's state and the bleep marks as Server-Sent Events, delayed like
// the media, so that the page shows the item that the viewer sees being debated. Relayed as it
// is written: the reverse proxy flushes every event of a text/event-stream.
func (pub *public) events(w http.ResponseWriter, r *http.Request) {
	_, rp, ok := pub.programmeOf(w, r)
	if !ok {
		return
	}
	updates, stop := rp.prog.Watch()
	defer stop()
	httpapi.ServeEvents(w, r, rp.prog.Done(), updates, func(msg []byte) string {
		var head struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(msg, &head) != nil || head.Type == "" {
			return "message"
		}
		return head.Type
	})
}

// recordBleep appends a finished bleep, with the chair who asked for it, to the room's
// journal, whence the minutes name it. It reports false without an error when the room has no
// session to record it in.
func (d *deliberation) recordBleep(ctx context.Context, room string, claims *auth.Claims, b broadcast.Bleep) (bool, error) {
	if d == nil {
		return false, nil
	}
	// The bleep happened: its record must not be lost because the chair's page went away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
	defer cancel()
	dk, err := d.desk(ctx, room)
	if err != nil {
		return false, err
	}
	if dk.view() == nil {
		return false, nil // no session: a sitting opened later starts its record then
	}
	_, err = dk.execute(ctx, actorOf(httpapi.NewCaller(claims)), func(h council.Header) (council.Command, error) {
		return council.RecordBleep{Header: h, From: b.From, To: b.To}, nil
	})
	if err != nil {
		return false, fmt.Errorf("record the bleep in the journal of room %q: %w", room, err)
	}
	return true, nil
}
