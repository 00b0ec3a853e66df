package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/signaling/httpapi"
	"github.com/ingeco/hemicycle/signaling/programme"
)

// The public programme of a room (issue 7): the broadcast package makes it from the room's
// tracks; this file decides what is on air from the room and the council desk, and publishes
// the programme's tracks under a participant that only viewers see. The programme's HTTP
// routes (viewer tokens, the chair's bleep, HLS) are signaling/programme's, which sees the room
// through programmeHost and roomProgramme.

// ProgrammeConfig turns the public programme on for every room of the server.
type ProgrammeConfig struct {
	Broadcast broadcast.Config
	// Viewers is how the public is let in: viewer tokens, the cap on WebRTC viewers.
	programme.Viewers
	// Recording, when set, records every room's programme with chapters from the journal.
	Recording *broadcast.RecordingConfig
	// HLS, when set, serves every room's programme at /live/{room}/index.m3u8.
	HLS *broadcast.HLSConfig
	// RTMP, when set, pushes every room's programme to its URL, in which "{room}" is replaced
	// by the room's name (one channel per room on the platform).
	RTMP *broadcast.RTMPConfig
}

// viewers is what the programme's routes are configured with: nil without a programme.
func (c *ProgrammeConfig) viewers() *programme.Viewers {
	if c == nil {
		return nil
	}
	return &c.Viewers
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
func (r *Room) startProgramme() *roomProgramme {
	s := r.srv
	cfg := s.cfg.Programme
	if cfg == nil {
		return nil
	}
	bc := cfg.Broadcast
	if bc.Logger == nil {
		bc.Logger = s.log
	}
	if s.webhooks != nil {
		bc.OnEgress = r.egressChanged // webhooks.go
	}
	if bc.CaptionsLanguage == "" {
		bc.CaptionsLanguage = s.captionsLanguage()
	}
	if bc.CaptionsName == "" {
		bc.CaptionsName = languageName(bc.CaptionsLanguage)
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
		if rp.rec, err = prog.Record(withChapterWords(*cfg.Recording, s.cfg.labels())); err != nil {
			s.log.Error("the programme is not being recorded", "room", r.name, "err", err)
			r.egressRefused(broadcast.EgressRecording, err) // webhooks.go
		}
	}
	if cfg.HLS != nil {
		if rp.hls, err = prog.StartHLS(*cfg.HLS); err != nil {
			s.log.Error("no HLS for the programme", "room", r.name, "err", err)
			r.egressRefused(broadcast.EgressHLS, err)
		}
	}
	if cfg.RTMP != nil {
		push := *cfg.RTMP
		push.URL = strings.ReplaceAll(push.URL, "{room}", url.PathEscape(r.name))
		if _, err := prog.StartRTMP(push); err != nil {
			s.log.Error("no RTMP push of the programme", "room", r.name, "err", err)
			r.egressRefused(broadcast.EgressRTMP, err)
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		rp.run()
	}()
	return rp
}

// captionsLanguage is the language of the room's captions: the speech engine's, else the
// server's.
func (s *Server) captionsLanguage() string {
	if sp := s.cfg.Speech; sp != nil && sp.Language != "" {
		return sp.Language
	}
	return s.cfg.labels().Lang
}

// languageName names the captions' language in HLS players' menus, in its own words; the code
// itself for a language the server has no words in.
func languageName(lang string) string {
	switch lang {
	case "fr":
		return "Français"
	case "en":
		return "English"
	}
	return lang
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
		sel, st := rp.selection()
		rp.prog.Select(sel)
		rp.showInterpreter(sel.Interpreter != nil)
		if view := st.view; view != nil && st.applied != applied {
			applied = st.applied
			if state, err := json.Marshal(stateMessage{Type: "state", Room: rp.room.name, View: view}); err == nil {
				rp.prog.Post(state)
			}
			if rp.rec != nil {
				rp.rec.SetChapters(chaptersOf(view, rp.room.srv.cfg.labels()))
			}
		}
	}
}

// programmeHost is the server as the programme's routes see it (programme.Host).
type programmeHost struct{ s *Server }

func (h programmeHost) Room(name string) (programme.Room, bool) {
	r, ok := h.s.Room(name)
	if !ok || r.programme == nil {
		return nil, false
	}
	return r.programme, true
}

// The roomProgramme is a programme.Room.

func (rp *roomProgramme) Name() string                    { return rp.room.name }
func (rp *roomProgramme) Programme() *broadcast.Programme { return rp.prog }
func (rp *roomProgramme) HLS() *broadcast.HLS             { return rp.hls }
func (rp *roomProgramme) Log() *slog.Logger               { return rp.log }

func (rp *roomProgramme) Viewers() int {
	rp.room.mu.Lock()
	defer rp.room.mu.Unlock()
	return len(rp.room.viewersLocked())
}

func (rp *roomProgramme) BleepStarted(by *auth.Claims) {
	rp.bleepMu.Lock()
	rp.bleepBy = by
	rp.bleepMu.Unlock()
}

func (rp *roomProgramme) BleepEnded() *auth.Claims {
	rp.bleepMu.Lock()
	defer rp.bleepMu.Unlock()
	by := rp.bleepBy
	rp.bleepBy = nil
	return by
}

func (rp *roomProgramme) RecordBleep(ctx context.Context, by *auth.Claims, b broadcast.Bleep) (bool, error) {
	d, room := rp.room.srv.delib, rp.room.name
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
	_, err = dk.execute(ctx, actorOf(httpapi.NewCaller(by)), func(h council.Header) (council.Command, error) {
		return council.RecordBleep{Header: h, From: b.From, To: b.To}, nil
	})
	if err != nil {
		return false, fmt.Errorf("record the bleep in the journal of room %q: %w", room, err)
	}
	return true, nil
}

// endRunningBleep ends, as the room closes, a bleep nobody ended, and records it: the minutes
// must show that the public broadcast was interrupted until the end.
func (rp *roomProgramme) endRunningBleep() {
	b, changed := rp.prog.Bleep(false)
	if !changed {
		return
	}
	by := rp.BleepEnded()
	if by == nil { // started and ended in the same instant by a request still under way
		rp.log.Warn("a bleep running at the room's close has no known author: not recorded", "from", b.From, "to", b.To)
		return
	}
	if _, err := rp.RecordBleep(context.Background(), by, b); err != nil {
		rp.log.Error("bleep running at the room's close not recorded in the journal", "from", b.From, "to", b.To, "err", err)
		return
	}
	rp.log.Info("bleep running at the room's close ended and recorded", "from", b.From, "to", b.To, "by", by.ParticipantIdentity())
}

// selection gathers who could be on air and applies the programme's rule (broadcast.OnAir);
// it also returns the sitting it read, whose view goes to the viewers and the chapters.
func (rp *roomProgramme) selection() (broadcast.Selection, sitting) {
	r := rp.room
	st := r.srv.delib.sittingOf(r.name)
	if st.view != nil && st.view.Session.ClosedDoor {
		// Huis clos (CGCT L2121-18): nothing of the chamber goes out, on any output, until it
		// ends; the viewers see the slate and, from the state, the notice.
		return broadcast.Selection{}, st
	}
	var cands []broadcast.Candidate
	var mics []*sfu.PublishedTrack // each candidate's microphone, whose level is read unlocked
	r.mu.Lock()
	for _, p := range r.participants {
		if isViewer(p) {
			continue
		}
		role, seat := p.claims.Role(), 0
		if p.claims.Council != nil {
			seat = p.claims.Council.Seat
		}
		c := broadcast.Candidate{
			HasFloor:    st.floorHolder != 0 && seat == st.floorHolder,
			Chair:       (st.chair == 0 && role == auth.RoleChair) || (st.chair != 0 && seat == st.chair),
			Interpreter: role == auth.RoleInterpreter,
			Joined:      p.joinedAt,
		}
		var mic *sfu.PublishedTrack
		for _, t := range p.tracks {
			switch {
			case t.info.Muted:
			case t.info.Type == livekit.TrackType_VIDEO && t.info.Source == livekit.TrackSource_CAMERA && c.Camera == nil &&
				t.media.Flowing(cameraStalledAfter):
				c.Camera = t.media
			case isMicrophone(t) && mic == nil:
				mic, c.Microphone = t.media, t.media
			}
		}
		if c.Camera != nil || c.Microphone != nil {
			cands = append(cands, c)
			mics = append(mics, mic)
		}
	}
	r.mu.Unlock()
	for i, m := range mics {
		if m != nil {
			cands[i].Level, _ = m.AudioLevel()
		}
	}
	return broadcast.OnAir(cands), st
}

// chaptersOf lists the marks of the recording's chapters from the session's state, in l's words:
// opening, items opened, votes opened and their results, closing.
func chaptersOf(v *council.View, l council.Labels) []broadcast.Chapter {
	var out []broadcast.Chapter
	if !v.Session.OpenedAt.IsZero() {
		out = append(out, broadcast.Chapter{At: v.Session.OpenedAt, Title: strings.TrimSpace(fmt.Sprintf(l.ChapterOpenedF, v.Session.Title))})
	}
	titles := map[string]string{}
	for i, it := range v.Items {
		titles[it.ID] = it.Title
		if !it.OpenedAt.IsZero() {
			out = append(out, broadcast.Chapter{At: it.OpenedAt, Title: fmt.Sprintf(l.ChapterItemF, i+1, it.Title)})
		}
	}
	for _, vo := range v.Votes {
		what := vo.Question
		if what == "" {
			what = titles[vo.Item]
		}
		out = append(out, broadcast.Chapter{At: vo.OpenedAt, Title: fmt.Sprintf(l.ChapterVoteF, what)})
		if r := vo.Result; r != nil && !vo.ClosedAt.IsZero() {
			outcome := l.ChapterRejectedF
			if r.Adopted {
				outcome = l.ChapterAdoptedF
			}
			out = append(out, broadcast.Chapter{At: vo.ClosedAt, Title: fmt.Sprintf(outcome, r.For, r.Against, r.Abstain)})
		}
	}
	if !v.Session.ClosedAt.IsZero() {
		out = append(out, broadcast.Chapter{At: v.Session.ClosedAt, Title: l.ChapterClosed})
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
