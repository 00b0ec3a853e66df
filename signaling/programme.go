package signaling

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/sfu"
)

// The public programme of a room (issue 7): the broadcast package makes it from the room's
// tracks; this file decides what is on air from the room and the council desk, publishes the
// programme's tracks under a participant that only viewers see, mints viewer tokens and serves
// the chair's bleep.

// ProgrammeConfig turns the public programme on for every room of the server.
type ProgrammeConfig struct {
	Broadcast broadcast.Config
	// Key and Secret sign the viewer tokens handed to the public.
	Key, Secret string
	// ViewerTokenTTL is the lifetime of a viewer token (default 15 minutes); the watch page
	// asks for a new one when it must reconnect.
	ViewerTokenTTL time.Duration
	// ViewerTokensPerMinute and ViewerTokenBurst limit the tokens minted per client address
	// (defaults 30 and 10); ViewerTokensPerSecond limits them for the whole server (default 50,
	// with a burst of twice that).
	ViewerTokensPerMinute float64
	ViewerTokenBurst      int
	ViewerTokensPerSecond float64
	// MaxViewers caps the WebRTC viewers of one room (0: no cap); beyond it the page is told
	// to use HLS.
	MaxViewers int
	// Recording, when set, records every room's programme with chapters from the journal.
	Recording *broadcast.RecordingConfig
	// HLS, when set, serves every room's programme at /live/{room}/index.m3u8.
	HLS *broadcast.HLSConfig
	// RTMP, when set, pushes every room's programme to its URL, in which "{room}" is replaced
	// by the room's name (one channel per room on the platform).
	RTMP *broadcast.RTMPConfig
}

func (c ProgrammeConfig) withDefaults() ProgrammeConfig {
	if c.ViewerTokenTTL <= 0 {
		c.ViewerTokenTTL = 15 * time.Minute
	}
	if c.ViewerTokensPerMinute <= 0 {
		c.ViewerTokensPerMinute = 30
	}
	if c.ViewerTokenBurst <= 0 {
		c.ViewerTokenBurst = 10
	}
	if c.ViewerTokensPerSecond <= 0 {
		c.ViewerTokensPerSecond = 50
	}
	return c
}

const (
	// programmeIdentity is the participant that publishes the programme to viewers.
	programmeIdentity = "hemicycle-programme"
	// selectInterval is how often what is on air is recomputed from the room: a floor given
	// reaches the programme within this time (plus the new camera's keyframe).
	selectInterval = 250 * time.Millisecond
	// cameraStalledAfter takes a camera that sends nothing, though not muted, off the programme
	// (the next one in line, the slate or the blank takes its place): ffmpeg's picture-in-picture
	// waits for both its pictures, so one stalled camera would freeze every public output.
	cameraStalledAfter = 2 * time.Second
)

// roomProgramme is the programme of one room and the participant publishing it.
type roomProgramme struct {
	room *Room
	prog *broadcast.Programme
	part *Participant // not in room.participants: members never see it
	// interp is the interpreter's track, muted while no interpreter camera is on air.
	interp *publishedTrack
	rec    *broadcast.Recording // nil when not recording
	hls    *broadcast.HLS       // nil without HLS
	log    *slog.Logger

	// bleepBy is the chair who started the running bleep, nil while none runs: a bleep still
	// running when the room closes ends there, and is recorded in that chair's name.
	bleepMu sync.Mutex
	bleepBy *auth.Claims
}

func isViewer(p *Participant) bool { return p.claims.Role() == auth.RoleViewer }

// startProgramme creates the room's programme when the server has one configured. It is
// called as the room is created; failure leaves the room without a programme, logged.
func (s *Server) startProgramme(r *Room) *roomProgramme {
	cfg := s.cfg.Programme
	if cfg == nil {
		return nil
	}
	bc := cfg.Broadcast
	if bc.Logger == nil {
		bc.Logger = s.log
	}
	prog, err := broadcast.New(r.ctx, s.cfg.Media, r.name, bc)
	if err != nil {
		s.log.Error("public programme not started", "room", r.name, "err", err)
		return nil
	}
	part := &Participant{
		room:       r,
		sid:        newSID("PA_"),
		identity:   programmeIdentity,
		claims:     &auth.Claims{Name: "Programme"},
		joinedAt:   time.Now(),
		log:        r.log.With("identity", programmeIdentity),
		name:       "Programme",
		attributes: map[string]string{"hemicycle.role": "programme"},
		permission: &livekit.ParticipantPermission{CanPublish: true},
		state:      livekit.ParticipantInfo_ACTIVE,
		version:    1,
		tracks:     map[string]*publishedTrack{},
		pending:    map[string]*livekit.TrackInfo{},
		subs:       map[string]*subscription{},
	}
	rp := &roomProgramme{room: r, prog: prog, part: part, log: r.log.With("part", "programme")}
	for _, o := range prog.Outputs() {
		info := &livekit.TrackInfo{Sid: newSID("TR_"), Name: o.Name, MimeType: o.Track.MimeType()}
		if o.Kind == webrtc.RTPCodecTypeAudio {
			info.Type, info.Source = livekit.TrackType_AUDIO, livekit.TrackSource_MICROPHONE
		} else {
			info.Type, info.Source = livekit.TrackType_VIDEO, livekit.TrackSource_CAMERA
			info.Width, info.Height = 640, 360
		}
		t := &publishedTrack{owner: part, info: info, media: o.Track}
		if o.Name == broadcast.TrackInterpreter {
			info.Muted = true // until an interpreter is on air
			info.Source = livekit.TrackSource_SCREEN_SHARE
			rp.interp = t
		}
		part.tracks[info.Sid] = t
	}
	// A failing output leaves the others (and the viewers) going; the operator must know.
	if cfg.Recording != nil {
		if rp.rec, err = prog.Record(*cfg.Recording); err != nil {
			s.log.Error("the programme is not being recorded", "room", r.name, "err", err)
		}
	}
	if cfg.HLS != nil {
		if rp.hls, err = prog.StartHLS(*cfg.HLS); err != nil {
			s.log.Error("no HLS for the programme", "room", r.name, "err", err)
		}
	}
	if cfg.RTMP != nil {
		push := *cfg.RTMP
		push.URL = strings.ReplaceAll(push.URL, "{room}", url.PathEscape(r.name))
		if _, err := prog.StartRTMP(push); err != nil {
			s.log.Error("no RTMP push of the programme", "room", r.name, "err", err)
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		rp.run()
	}()
	return rp
}

// run keeps what is on air in step with the room until the room closes.
func (rp *roomProgramme) run() {
	defer rp.prog.Close()
	tick := time.NewTicker(selectInterval)
	defer tick.Stop()
	var applied = -1
	for {
		select {
		case <-rp.room.ctx.Done():
			rp.endRunningBleep()
			return
		case <-tick.C:
		}
		sel, view, stateApplied := rp.selection()
		rp.prog.Select(sel)
		rp.showInterpreter(sel.Interpreter != nil)
		if view != nil && stateApplied != applied {
			applied = stateApplied
			if state, err := json.Marshal(stateMessage{Type: "state", Room: rp.room.name, View: view}); err == nil {
				rp.prog.Post(state)
			}
			if rp.rec != nil {
				rp.rec.SetChapters(chaptersOf(view))
			}
		}
	}
}

// bleepStarted and bleepEnded keep track of who started the running bleep.
func (rp *roomProgramme) bleepStarted(by *auth.Claims) {
	rp.bleepMu.Lock()
	rp.bleepBy = by
	rp.bleepMu.Unlock()
}

func (rp *roomProgramme) bleepEnded() *auth.Claims {
	rp.bleepMu.Lock()
	defer rp.bleepMu.Unlock()
	by := rp.bleepBy
	rp.bleepBy = nil
	return by
}

// endRunningBleep ends, as the room closes, a bleep nobody ended, and records it: the minutes
// must show that the public broadcast was interrupted until the end.
func (rp *roomProgramme) endRunningBleep() {
	b, changed := rp.prog.Bleep(false)
	if !changed {
		return
	}
	by := rp.bleepEnded()
	if by == nil { // started and ended in the same instant by a request still under way
		rp.log.Warn("a bleep running at the room's close has no known author: not recorded", "from", b.From, "to", b.To)
		return
	}
	if _, err := rp.room.srv.recordBleep(context.Background(), rp.room.name, by, b); err != nil {
		rp.log.Error("bleep running at the room's close not recorded in the journal", "from", b.From, "to", b.To, "err", err)
		return
	}
	rp.log.Info("bleep running at the room's close ended and recorded", "from", b.From, "to", b.To, "by", by.ParticipantIdentity())
}

// selection computes what goes on air: the floor holder's camera, else the chair's; the
// interpreter's camera; the open microphones, floor holder, chair and interpreter first, the
// others loudest first. It also returns the council state and how many events it folds.
func (rp *roomProgramme) selection() (sel broadcast.Selection, view *council.View, applied int) {
	r := rp.room
	holder, chairSeat := 0, 0
	if d := r.srv.delib; d != nil {
		if dk := d.existingDesk(r.name); dk != nil {
			dk.mu.Lock()
			if dk.state != nil {
				if dk.state.Session().Opened() {
					holder, _, _ = dk.state.FloorHolder()
					chairSeat = dk.state.Session().Chair
				}
				applied = dk.state.Applied()
				v := dk.state.View(dk.d.now())
				view = &v
			}
			dk.mu.Unlock()
		}
	}

	type candidate struct {
		role     auth.Role
		seat     int
		joined   time.Time
		cam, mic *sfu.PublishedTrack
		level    float64
	}
	var cands []candidate
	r.mu.Lock()
	for _, p := range r.participants {
		if isViewer(p) {
			continue
		}
		c := candidate{role: p.claims.Role(), joined: p.joinedAt}
		if p.claims.Council != nil {
			c.seat = p.claims.Council.Seat
		}
		for _, t := range p.tracks {
			switch {
			case t.info.Muted:
			case t.info.Type == livekit.TrackType_VIDEO && t.info.Source == livekit.TrackSource_CAMERA && c.cam == nil &&
				t.media.Flowing(cameraStalledAfter):
				c.cam = t.media
			case isMicrophone(t) && c.mic == nil:
				c.mic = t.media
			}
		}
		if c.cam != nil || c.mic != nil {
			cands = append(cands, c)
		}
	}
	r.mu.Unlock()
	sort.Slice(cands, func(i, j int) bool { return cands[i].joined.Before(cands[j].joined) })
	for i := range cands {
		if cands[i].mic != nil {
			cands[i].level, _ = cands[i].mic.AudioLevel()
		}
	}

	isHolder := func(c candidate) bool { return holder != 0 && c.seat == holder }
	isChair := func(c candidate) bool {
		return (chairSeat != 0 && c.seat == chairSeat) || c.role == auth.RoleChair
	}
	isInterp := func(c candidate) bool { return c.role == auth.RoleInterpreter }
	camOf := func(match func(candidate) bool) broadcast.Source {
		for _, c := range cands {
			if match(c) && c.cam != nil {
				return c.cam
			}
		}
		return nil
	}
	sel.Main = camOf(isHolder)
	if sel.Main == nil {
		sel.Main = camOf(isChair)
	}
	sel.Interpreter = camOf(isInterp)

	rank := func(c candidate) int {
		switch {
		case isHolder(c):
			return 0
		case isChair(c):
			return 1
		case isInterp(c):
			return 2
		}
		return 3
	}
	mics := slices.DeleteFunc(slices.Clone(cands), func(c candidate) bool { return c.mic == nil })
	sort.SliceStable(mics, func(i, j int) bool {
		if a, b := rank(mics[i]), rank(mics[j]); a != b {
			return a < b
		}
		return mics[i].level > mics[j].level
	})
	for _, c := range mics {
		sel.Audio = append(sel.Audio, c.mic)
	}
	return sel, view, applied
}

// chaptersOf lists the marks of the recording's chapters from the session's state: opening,
// items opened, votes opened and their results, closing.
func chaptersOf(v *council.View) []broadcast.Chapter {
	var out []broadcast.Chapter
	if !v.Session.OpenedAt.IsZero() {
		out = append(out, broadcast.Chapter{At: v.Session.OpenedAt, Title: strings.TrimSpace("Ouverture de la séance " + v.Session.Title)})
	}
	titles := map[string]string{}
	for i, it := range v.Items {
		titles[it.ID] = it.Title
		if !it.OpenedAt.IsZero() {
			out = append(out, broadcast.Chapter{At: it.OpenedAt, Title: fmt.Sprintf("Point %d : %s", i+1, it.Title)})
		}
	}
	for _, vo := range v.Votes {
		what := vo.Question
		if what == "" {
			what = titles[vo.Item]
		}
		out = append(out, broadcast.Chapter{At: vo.OpenedAt, Title: "Vote : " + what})
		if r := vo.Result; r != nil && !vo.ClosedAt.IsZero() {
			outcome := "rejeté"
			if r.Adopted {
				outcome = "adopté"
			}
			out = append(out, broadcast.Chapter{At: vo.ClosedAt, Title: fmt.Sprintf("Résultat : %s (%d pour, %d contre, %d abstentions)", outcome, r.For, r.Against, r.Abstain)})
		}
	}
	if !v.Session.ClosedAt.IsZero() {
		out = append(out, broadcast.Chapter{At: v.Session.ClosedAt, Title: "Clôture de la séance"})
	}
	slices.SortStableFunc(out, func(a, b broadcast.Chapter) int { return a.At.Compare(b.At) })
	return out
}

// showInterpreter mutes or unmutes the programme's interpreter track as seen by viewers, so
// that their page shows it only while an interpreter is on air.
func (rp *roomProgramme) showInterpreter(on bool) {
	r := rp.room
	r.mu.Lock()
	if rp.interp.info.Muted == !on {
		r.mu.Unlock()
		return
	}
	rp.interp.info.Muted = !on
	rp.part.version++
	info := rp.part.infoLocked()
	viewers := r.viewersLocked()
	r.mu.Unlock()
	msg := &livekit.SignalResponse{Message: &livekit.SignalResponse_Update{Update: &livekit.ParticipantUpdate{
		Participants: []*livekit.ParticipantInfo{info},
	}}}
	for _, v := range viewers {
		v.send(msg)
	}
}

func (r *Room) viewersLocked() []*Participant {
	var out []*Participant
	for _, p := range r.participants {
		if isViewer(p) {
			out = append(out, p)
		}
	}
	return out
}

// Hooks used by room.go: viewers see and receive the programme only; nobody else does.

// programmeTracksLocked lists the programme's tracks for a viewer, nil for anyone else.
func (r *Room) programmeTracksLocked(p *Participant) []*publishedTrack {
	if r.programme == nil || !isViewer(p) {
		return nil
	}
	out := make([]*publishedTrack, 0, len(r.programme.part.tracks))
	for _, t := range r.programme.part.tracks {
		out = append(out, t)
	}
	return out
}

// programmeInfoLocked describes the programme participant to a viewer; nil for anyone else.
func (r *Room) programmeInfoLocked(p *Participant) *livekit.ParticipantInfo {
	if r.programme == nil || !isViewer(p) {
		return nil
	}
	return r.programme.part.infoLocked()
}

// mayReceiveLocked says whether sub may subscribe to t: viewers take the programme's tracks
// and nothing else, and the programme goes to viewers only.
func (r *Room) mayReceiveLocked(sub *Participant, t *publishedTrack) bool {
	fromProgramme := r.programme != nil && t.owner == r.programme.part
	return fromProgramme == isViewer(sub)
}

// programmeTrackLocked finds a programme track by sid.
func (r *Room) programmeTrackLocked(sid string) *publishedTrack {
	if r.programme == nil {
		return nil
	}
	return r.programme.part.tracks[sid]
}

// Programme returns the room's programme, nil when the server has none.
func (r *Room) Programme() *broadcast.Programme {
	if r.programme == nil {
		return nil
	}
	return r.programme.prog
}

// HTTP: viewer tokens, the chair's bleep, the delayed state.

// ProgrammeRoutes lists the programme's routes and who may call them, for the documentation.
func ProgrammeRoutes() map[string]string {
	return map[string]string{
		"POST /api/rooms/{room}/viewer-token":    "anyone (rate-limited per address and in all)",
		"POST /api/rooms/{room}/bleep":           "the chair",
		"GET /api/rooms/{room}/bleep":            "the chair or the clerk",
		"GET /api/rooms/{room}/programme/events": "any token of the room, viewers included",
		"GET /api/rooms/{room}/programme":        "anyone: is there a public programme, with which delay",
		"GET /watch/{room} (web client, lead's)": "anyone",
		"GET /live/{room}/index.m3u8":            "anyone (the HLS playlist, then its segments)",
	}
}

// MountProgramme adds the programme's routes to mux. They answer 404 for rooms without a
// programme (the server was started without ProgrammeConfig, or the room is not open).
func (s *Server) MountProgramme(mux *http.ServeMux) {
	var limit *viewerLimiter
	if s.cfg.Programme != nil {
		limit = newViewerLimiter(s.cfg.Programme.withDefaults())
	}
	mux.HandleFunc("POST /api/rooms/{room}/viewer-token", func(w http.ResponseWriter, r *http.Request) {
		s.serveViewerToken(w, r, limit)
	})
	mux.HandleFunc("GET /api/rooms/{room}/programme", s.serveProgrammeInfo)
	mux.HandleFunc("POST /api/rooms/{room}/bleep", s.serveBleep)
	mux.HandleFunc("GET /api/rooms/{room}/bleep", s.serveBleeps)
	mux.HandleFunc("GET /api/rooms/{room}/programme/events", s.serveProgrammeEvents)
	mux.HandleFunc("GET /live/{room}/{file}", s.serveHLS)
}

// serveHLS serves a room's HLS playlist and segments to anyone, from any origin (players are
// often on another site).
func (s *Server) serveHLS(w http.ResponseWriter, r *http.Request) {
	if s.relayOpenRoom(w, r, r.PathValue("room")) { // relay.go: the room is open on another node
		return
	}
	room, ok := s.Room(r.PathValue("room"))
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
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Content-Type", broadcast.HLSContentType(name))
	if strings.HasSuffix(name, ".m3u8") {
		w.Header().Set("Cache-Control", "no-cache") // the playlist changes every segment
	} else {
		w.Header().Set("Cache-Control", "max-age=60")
	}
	http.ServeFile(w, r, path)
}

// roomProgrammeOf returns the programme of an open room, or writes 404.
func (s *Server) roomProgrammeOf(w http.ResponseWriter, name string) (*Room, bool) {
	room, ok := s.Room(name)
	if !ok || room.programme == nil {
		writeAPIError(w, &apiError{status: 404, msg: fmt.Sprintf("room %q has no public programme now: the sitting has not started, or is not broadcast", name)})
		return nil, false
	}
	return room, true
}

func (s *Server) serveProgrammeInfo(w http.ResponseWriter, r *http.Request) {
	if s.relayOpenRoom(w, r, r.PathValue("room")) {
		return
	}
	room, ok := s.roomProgrammeOf(w, r.PathValue("room"))
	if !ok {
		return
	}
	writeJSONResponse(w, 200, map[string]any{"room": room.name, "delaySeconds": room.programme.prog.Delay().Seconds()})
}

// viewerTokenResponse is what the watch page receives.
type viewerTokenResponse struct {
	Token        string    `json:"token"`
	Identity     string    `json:"identity"`
	Room         string    `json:"room"`
	ExpiresAt    time.Time `json:"expiresAt"`
	DelaySeconds float64   `json:"delaySeconds"`
}

func (s *Server) serveViewerToken(w http.ResponseWriter, r *http.Request, limit *viewerLimiter) {
	name := r.PathValue("room")
	if limit == nil {
		writeAPIError(w, &apiError{status: 404, msg: "this server broadcasts no public programme"})
		return
	}
	// Limited here, where the client's address is known, and again on the room's node, which
	// sees every entry node's requests for its room.
	if wait, ok := limit.allow(viewerAddress(r), time.Now()); !ok {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait/time.Second)+1))
		writeAPIError(w, &apiError{status: 429, msg: "too many viewer tokens asked for: wait and retry"})
		return
	}
	if s.relayOpenRoom(w, r, name) {
		return
	}
	room, ok := s.roomProgrammeOf(w, name)
	if !ok {
		return
	}
	cfg := s.cfg.Programme.withDefaults()
	if cfg.MaxViewers > 0 {
		room.mu.Lock()
		n := len(room.viewersLocked())
		room.mu.Unlock()
		if n >= cfg.MaxViewers {
			writeAPIError(w, &apiError{status: 503, msg: fmt.Sprintf("the live page is full (%d viewers): follow the sitting on the HLS stream", n)})
			return
		}
	}
	identity := "viewer-" + rand.Text()[:12]
	now := time.Now()
	tok, err := auth.Issue(auth.TokenOptions{
		Key: cfg.Key, Secret: cfg.Secret, Identity: identity, Name: "Viewer", Room: name,
		TTL: cfg.ViewerTokenTTL, Video: auth.GrantsForRole(auth.RoleViewer, name),
		Council: &auth.CouncilGrant{Role: auth.RoleViewer}, Now: now,
	})
	if err != nil {
		s.log.Error("viewer token", "room", name, "err", err)
		writeAPIError(w, &apiError{status: 500, msg: "the viewer token could not be made: " + err.Error()})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSONResponse(w, 200, viewerTokenResponse{
		Token: tok, Identity: identity, Room: name, ExpiresAt: now.Add(cfg.ViewerTokenTTL),
		DelaySeconds: room.programme.prog.Delay().Seconds(),
	})
}

// programmeCaller verifies the token for the room and returns its claims, or writes the error.
func (s *Server) programmeCaller(w http.ResponseWriter, r *http.Request) (*auth.Claims, bool) {
	tok := bearer(r)
	if tok == "" {
		writeAPIError(w, &apiError{status: 401, msg: "no access token: send Authorization: Bearer <token>"})
		return nil, false
	}
	claims, err := s.cfg.Verifier.VerifyForRoom(tok, r.PathValue("room"))
	if err != nil {
		writeAPIError(w, &apiError{status: auth.HTTPStatus(err), msg: err.Error()})
		return nil, false
	}
	return claims, true
}

// isSittingChair says whether the claims are the chair's: by role, or by the seat presiding
// the session.
func (s *Server) isSittingChair(room string, c *auth.Claims) bool {
	if c.Role() == auth.RoleChair {
		return true
	}
	if c.Council == nil || c.Council.Seat == 0 || s.delib == nil {
		return false
	}
	dk := s.delib.existingDesk(room)
	if dk == nil {
		return false
	}
	dk.mu.Lock()
	defer dk.mu.Unlock()
	return dk.state != nil && dk.state.Session().Chair == c.Council.Seat
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

func (s *Server) serveBleep(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.programmeCaller(w, r)
	if !ok {
		return
	}
	name := r.PathValue("room")
	// Who chairs is known where the session is: relay before checking.
	if s.relayOpenRoom(w, r, name) {
		return
	}
	if !s.isSittingChair(name, claims) {
		writeAPIError(w, &apiError{status: 403, msg: fmt.Sprintf("%s is for the chair; your token's role is %q", r.Pattern, claims.Role())})
		return
	}
	room, ok := s.roomProgrammeOf(w, name)
	if !ok {
		return
	}
	var req bleepRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || (req.On == nil) == (req.LastSeconds == nil) {
		writeAPIError(w, &apiError{status: 400, msg: `body must be {"on": true|false} or {"lastSeconds": N}`})
		return
	}
	prog := room.programme.prog
	resp := bleepResponse{DelaySeconds: prog.Delay().Seconds()}
	if req.On != nil {
		resp.Bleep, resp.Changed = prog.Bleep(*req.On)
	} else {
		b, err := prog.BleepLast(time.Duration(*req.LastSeconds * float64(time.Second)))
		if err != nil {
			status := 400
			if errors.Is(err, broadcast.ErrBleepTooLate) {
				status = 409
			}
			writeAPIError(w, &apiError{status: status, msg: err.Error()})
			return
		}
		resp.Bleep, resp.Changed = b, true
	}
	resp.Bleeps = prog.Bleeps()
	if resp.Changed {
		s.log.Info("bleep marked", "room", name, "by", claims.ParticipantIdentity(), "from", resp.Bleep.From, "to", resp.Bleep.To)
		// A running bleep is recorded when it ends: the record holds whole passages.
		if resp.Bleep.To.IsZero() {
			room.programme.bleepStarted(claims)
		} else {
			if req.On != nil {
				room.programme.bleepEnded()
			}
			var err error
			resp.Recorded, err = s.recordBleep(r.Context(), name, claims, resp.Bleep)
			if err != nil {
				s.log.Error("bleep not recorded in the journal", "room", name, "from", resp.Bleep.From, "to", resp.Bleep.To, "err", err)
				resp.RecordError = err.Error()
			}
		}
	}
	writeJSONResponse(w, 200, resp)
}

// recordBleep appends a finished bleep, with the chair who asked for it, to the room's
// journal, whence the minutes name it. It reports false without an error when the room has no
// session to record it in.
func (s *Server) recordBleep(ctx context.Context, room string, claims *auth.Claims, b broadcast.Bleep) (bool, error) {
	if s.delib == nil {
		return false, nil
	}
	// The bleep happened: its record must not be lost because the chair's page went away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
	defer cancel()
	dk, err := s.delib.desk(ctx, room)
	if err != nil {
		return false, err
	}
	if dk.view() == nil {
		return false, nil // no session: a sitting opened later starts its record then
	}
	c := caller{claims: claims, role: claims.Role()}
	if claims.Council != nil {
		c.seat = claims.Council.Seat
	}
	_, err = dk.execute(ctx, c.actor(), func(h council.Header) (council.Command, error) {
		return council.RecordBleep{Header: h, From: b.From, To: b.To}, nil
	})
	if err != nil {
		return false, fmt.Errorf("record the bleep in the journal of room %q: %w", room, err)
	}
	return true, nil
}

func (s *Server) serveBleeps(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.programmeCaller(w, r)
	if !ok {
		return
	}
	name := r.PathValue("room")
	if s.relayOpenRoom(w, r, name) {
		return
	}
	if claims.Role() != auth.RoleClerk && !s.isSittingChair(name, claims) {
		writeAPIError(w, &apiError{status: 403, msg: fmt.Sprintf("%s is for the chair or the clerk; your token's role is %q", r.Pattern, claims.Role())})
		return
	}
	room, ok := s.roomProgrammeOf(w, name)
	if !ok {
		return
	}
	prog := room.programme.prog
	writeJSONResponse(w, 200, map[string]any{"bleeps": prog.Bleeps(), "delaySeconds": prog.Delay().Seconds()})
}

// serveProgrammeEvents streams the session's state and the bleep marks as Server-Sent Events,
// delayed like the media, so that the page shows the item that the viewer sees being debated.
func (s *Server) serveProgrammeEvents(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.programmeCaller(w, r); !ok {
		return
	}
	// Relayed as it is written: the reverse proxy flushes every event of a text/event-stream.
	if s.relayOpenRoom(w, r, r.PathValue("room")) {
		return
	}
	room, ok := s.roomProgrammeOf(w, r.PathValue("room"))
	if !ok {
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeAPIError(w, &apiError{status: 500, msg: "streaming unsupported"})
		return
	}
	prog := room.programme.prog
	updates, stop := prog.Watch()
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(200)
	flusher.Flush()
	keepalive := time.NewTicker(sseKeepalive)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-prog.Done():
			return
		case msg := <-updates:
			var head struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(msg, &head)
			if head.Type == "" {
				head.Type = "message"
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", head.Type, msg)
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
		}
		flusher.Flush()
	}
}

// clientAddress is the address a request came from, for rate limiting. Forwarded headers are
// not trusted: anyone could write them.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// viewerAddress is whom a viewer-token request is counted against: the client, or for a
// request relayed by an entry node, the client that node saw (the relay sets X-Forwarded-For
// to it alone). A client forging the relay header only picks its own bucket, as one with
// many addresses could; the server-wide limit holds either way.
func viewerAddress(r *http.Request) string {
	if isRelayed(r) {
		if fwd := r.Header.Values("X-Forwarded-For"); len(fwd) > 0 {
			hops := strings.Split(fwd[len(fwd)-1], ",")
			return "relayed:" + strings.TrimSpace(hops[len(hops)-1])
		}
	}
	return clientAddress(r)
}

// viewerLimiter is two token buckets: one per client address, one for the server.
type viewerLimiter struct {
	perAddrRate, globalRate float64 // tokens per second
	perAddrBurst            float64
	globalBurst             float64

	mu      sync.Mutex
	global  bucket
	perAddr map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxTrackedAddresses bounds the limiter's memory; beyond it, full buckets are forgotten.
const maxTrackedAddresses = 10000

func newViewerLimiter(c ProgrammeConfig) *viewerLimiter {
	return &viewerLimiter{
		perAddrRate:  c.ViewerTokensPerMinute / 60,
		perAddrBurst: float64(c.ViewerTokenBurst),
		globalRate:   c.ViewerTokensPerSecond,
		globalBurst:  2 * c.ViewerTokensPerSecond,
		global:       bucket{tokens: 2 * c.ViewerTokensPerSecond},
		perAddr:      map[string]*bucket{},
	}
}

// take refills b to now and takes a token if there is one; otherwise it returns how long
// until there is.
func (b *bucket) take(rate, burst float64, now time.Time) (time.Duration, bool) {
	if !b.at.IsZero() {
		b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()*rate)
	}
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second)), false
}

func (l *viewerLimiter) allow(addr string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.perAddr[addr]
	if b == nil {
		if len(l.perAddr) >= maxTrackedAddresses {
			for a, o := range l.perAddr {
				if o.tokens+now.Sub(o.at).Seconds()*l.perAddrRate >= l.perAddrBurst {
					delete(l.perAddr, a)
				}
			}
		}
		b = &bucket{tokens: l.perAddrBurst}
		l.perAddr[addr] = b
	}
	// Peek at the global bucket first so that a refused address does not spend a global token.
	if wait, ok := b.take(l.perAddrRate, l.perAddrBurst, now); !ok {
		return wait, false
	}
	if wait, ok := l.global.take(l.globalRate, l.globalBurst, now); !ok {
		b.tokens++ // not served: give the address its token back
		return wait, false
	}
	return 0, true
}
