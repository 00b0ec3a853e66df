package programme

import (
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
	"github.com/ingeco/hemicycle/signaling/httpapi"
)

// Routes are the programme's rows of the route table, configured by cfg, nil when the server
// broadcasts no programme. Each is served where the room is open; none places a room. They
// answer 404 for a room without a programme: none configured, or the room is not open.
func Routes(host Host, cfg *Viewers) []httpapi.Route {
	pub := &public{host: host, on: cfg != nil}
	if cfg != nil {
		pub.cfg = *cfg
	}
	pub.cfg = pub.cfg.withDefaults()
	limit := httpapi.NewLimiter(pub.cfg.ViewerTokensPerMinute, pub.cfg.ViewerTokenBurst, pub.cfg.ViewerTokensPerSecond,
		"too many viewer tokens asked for: wait and retry").Named("viewer_tokens") // a label of hemicycle_limit_refusals_total
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
	host Host
	on   bool // the server broadcasts a programme
	cfg  Viewers
}

// roomOf returns the open room's programme, or writes 404.
func (pub *public) roomOf(w http.ResponseWriter, r *http.Request) (Room, bool) {
	name := r.PathValue("room")
	room, ok := pub.host.Room(name)
	if !ok {
		httpapi.WriteError(w, http.StatusNotFound, fmt.Sprintf("room %q has no public programme now: the sitting has not started, or is not broadcast", name))
	}
	return room, ok
}

// hls serves a room's HLS playlist and segments to anyone, from any origin (players are often
// on another site).
func (pub *public) hls(w http.ResponseWriter, r *http.Request) {
	room, ok := pub.host.Room(r.PathValue("room"))
	if !ok || room.HLS() == nil {
		http.Error(w, "no live stream for this room now", http.StatusNotFound)
		return
	}
	name := r.PathValue("file")
	path, ok := room.HLS().HLSFile(name)
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
	room, ok := pub.roomOf(w, r)
	if !ok {
		return
	}
	httpapi.WriteJSON(w, 200, map[string]any{"room": room.Name(), "delaySeconds": room.Programme().Delay().Seconds()})
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
	if !pub.on {
		httpapi.WriteError(w, http.StatusNotFound, "this server broadcasts no public programme")
		return
	}
	room, ok := pub.roomOf(w, r)
	if !ok {
		return
	}
	cfg := pub.cfg
	if cfg.MaxViewers > 0 {
		if n := room.Viewers(); n >= cfg.MaxViewers {
			httpapi.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("the live page is full (%d viewers): follow the sitting on the HLS stream", n))
			return
		}
	}
	identity := "viewer-" + rand.Text()[:12]
	now := time.Now()
	tok, err := auth.Issue(auth.TokenOptions{
		Key: cfg.Key, Secret: cfg.Secret, Identity: identity, Name: "Viewer", Room: room.Name(),
		TTL: cfg.ViewerTokenTTL, Video: auth.GrantsForRole(auth.RoleViewer, room.Name()),
		Council: &auth.CouncilGrant{Role: auth.RoleViewer}, Now: now,
	})
	if err != nil {
		room.Log().Error("viewer token", "err", err)
		httpapi.WriteError(w, http.StatusInternalServerError, "the viewer token could not be made: "+err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, 200, viewerTokenResponse{
		Token: tok, Identity: identity, Room: room.Name(), ExpiresAt: now.Add(cfg.ViewerTokenTTL),
		DelaySeconds: room.Programme().Delay().Seconds(),
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
	room, ok := pub.roomOf(w, r)
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
	prog := room.Programme()
	resp := bleepResponse{DelaySeconds: prog.Delay().Seconds()}
	if req.On != nil {
		resp.Bleep, resp.Changed = prog.Bleep(*req.On)
	} else {
		b, err := prog.BleepLast(time.Duration(*req.LastSeconds * float64(time.Second)))
		if err != nil {
			refuseBleepLast(w, r, err, *req.LastSeconds, prog.Delay())
			return
		}
		resp.Bleep, resp.Changed = b, true
	}
	resp.Bleeps = prog.Bleeps()
	if resp.Changed {
		room.Log().Info("bleep marked", "by", claims.ParticipantIdentity(), "from", resp.Bleep.From, "to", resp.Bleep.To)
		// A running bleep is recorded when it ends: the record holds whole passages.
		if resp.Bleep.To.IsZero() {
			room.BleepStarted(claims)
		} else {
			if req.On != nil {
				room.BleepEnded()
			}
			var err error
			resp.Recorded, err = room.RecordBleep(r.Context(), claims, resp.Bleep)
			if err != nil {
				room.Log().Error("bleep not recorded in the journal", "from", resp.Bleep.From, "to", resp.Bleep.To, "err", err)
				resp.RecordError = err.Error()
			}
		}
	}
	httpapi.WriteJSON(w, 200, resp)
}

// refuseBleepLast words BleepLast's refusal for the chair, in French and English: the public
// has already heard what lies beyond the delay (409), or the duration was not positive (400).
func refuseBleepLast(w http.ResponseWriter, r *http.Request, err error, seconds float64, delay time.Duration) {
	if errors.Is(err, broadcast.ErrBleepTooLate) {
		held := delay.Seconds()
		httpapi.Refuse(w, r, http.StatusConflict,
			fmt.Sprintf("the last %g s cannot be bleeped: the public has already heard them; only the last %g s are still held back (the programme's delay)", seconds, held),
			fmt.Sprintf("impossible de couvrir les %g dernières secondes : le public les a déjà entendues ; seules les %g dernières secondes sont encore retenues (le différé de la diffusion)", seconds, held))
		return
	}
	httpapi.Refuse(w, r, http.StatusBadRequest,
		fmt.Sprintf("the duration to bleep must be positive (%g s asked)", seconds),
		fmt.Sprintf("la durée à couvrir doit être positive (%g s demandées)", seconds))
}

func (pub *public) bleeps(w http.ResponseWriter, r *http.Request) {
	room, ok := pub.roomOf(w, r)
	if !ok {
		return
	}
	prog := room.Programme()
	httpapi.WriteJSON(w, 200, map[string]any{"bleeps": prog.Bleeps(), "delaySeconds": prog.Delay().Seconds()})
}

// events streams the session's state and the bleep marks as Server-Sent Events, delayed like
// the media, so that the page shows the item that the viewer sees being debated. Relayed as it
// is written: the reverse proxy flushes every event of a text/event-stream.
func (pub *public) events(w http.ResponseWriter, r *http.Request) {
	room, ok := pub.roomOf(w, r)
	if !ok {
		return
	}
	prog := room.Programme()
	updates, stop := prog.Watch()
	defer stop()
	httpapi.ServeEvents(w, r, prog.Done(), updates, func(msg []byte) string {
		var head struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(msg, &head) != nil || head.Type == "" {
			return "message"
		}
		return head.Type
	})
}
