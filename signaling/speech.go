package signaling

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/signaling/httpapi"
	"github.com/ingeco/hemicycle/signaling/speech"
)

// Speech recognition (issue 16): while it runs in a room, every open microphone is streamed to
// the configured speech-to-text engine, one connection per speaking participant
// (signaling/speech, docs/speech.md), and the engine's text goes out as the speaker's
// transcriptions, the same way as a captioner's (captions.go). The chair starts and stops it;
// the configuration may start it with every sitting. A room without it has no sink on any
// track: the forwarding path does not know it exists.

// SpeechConfig connects the server to a speech-to-text engine.
type SpeechConfig struct {
	// EngineURL is the engine's WebSocket (ws:// or wss://).
	EngineURL string
	// AtSittingStart runs recognition while a sitting is open, unless the chair stops it.
	AtSittingStart bool
	// Language of the speech, told to the engine and written in the segments (e.g. "fr").
	Language string
}

const (
	// speechInterval is how often the streams are matched to the open microphones: a speaker
	// given the floor is heard by the engine within this time.
	speechInterval = 250 * time.Millisecond
	// speechRetry is how long a microphone waits after the engine refused or dropped it.
	speechRetry = 5 * time.Second
)

// roomSpeech is the recognition of one room, on servers with an engine configured.
type roomSpeech struct {
	room *Room
	cfg  SpeechConfig
	log  *slog.Logger
	wg   sync.WaitGroup // streams being opened or closed

	mu      sync.Mutex
	chair   *bool // the chair's word, until the sitting closes; nil: the configuration's
	sitting bool  // whether a sitting was open at the last look
	streams map[string]*speakerStream
	retry   map[string]time.Time // track sid -> when to try again
}

// speakerStream is one microphone's stream to the engine.
type speakerStream struct {
	id       string // told to the engine; prefixes the segments' ids
	identity string
	track    string
	cancel   context.CancelFunc
	stream   *speech.Stream // nil while connecting
	sink     sfu.Sink
}

// startSpeech gives the room its recognition when the server has an engine; it runs until the
// room closes.
func (r *Room) startSpeech() *roomSpeech {
	cfg := r.srv.cfg.Speech
	if cfg == nil || cfg.EngineURL == "" {
		return nil
	}
	rs := &roomSpeech{room: r, cfg: *cfg, log: r.log.With("part", "speech"),
		streams: map[string]*speakerStream{}, retry: map[string]time.Time{}}
	r.srv.wg.Add(1)
	go func() {
		defer r.srv.wg.Done()
		rs.run()
	}()
	return rs
}

func (rs *roomSpeech) run() {
	tick := time.NewTicker(speechInterval)
	defer tick.Stop()
	for {
		select {
		case <-rs.room.ctx.Done():
			rs.mu.Lock()
			for sid, st := range rs.streams {
				rs.stopLocked(sid, st)
			}
			rs.mu.Unlock()
			rs.wg.Wait()
			return
		case <-tick.C:
		}
		rs.reconcile(time.Now())
	}
}

// running says whether recognition runs now: the chair's word, else the configuration's. A
// sitting that closes ends the chair's word (the next one starts as configured); one that opens
// keeps it, so that a chair may start recognition before opening the sitting.
func (rs *roomSpeech) running() bool {
	open := rs.room.srv.delib.sittingOf(rs.room.name).chair != 0
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.sitting && !open {
		rs.chair = nil
	}
	rs.sitting = open
	if rs.chair != nil {
		return *rs.chair
	}
	return rs.cfg.AtSittingStart && open
}

// set records the chair's word.
func (rs *roomSpeech) set(on bool) {
	rs.mu.Lock()
	rs.chair = &on
	rs.mu.Unlock()
	rs.reconcile(time.Now())
}

// openMicrophone is a microphone that should be streamed, as read under the room's lock.
type openMicrophone struct {
	identity, name string
	media          *sfu.PublishedTrack
}

// reconcile opens a stream for each open microphone that has none and closes the others'.
func (rs *roomSpeech) reconcile(now time.Time) {
	want := map[string]openMicrophone{}
	if rs.running() {
		r := rs.room
		r.mu.Lock()
		for _, p := range r.participants {
			for sid, t := range p.tracks {
				if t.media != nil && !t.info.GetMuted() && t.info.GetSource() == livekit.TrackSource_MICROPHONE && isMicrophone(t) {
					want[sid] = openMicrophone{identity: p.identity, name: p.name, media: t.media}
				}
			}
		}
		r.mu.Unlock()
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for sid, st := range rs.streams {
		ended := false
		if st.stream != nil {
			select {
			case <-st.stream.Done():
				ended = true
				rs.retry[sid] = now.Add(speechRetry)
				rs.log.Warn("speech: the engine ended a stream; trying again later", "participant", st.identity, "retry", speechRetry)
			default:
			}
		}
		if _, ok := want[sid]; !ok || ended {
			rs.stopLocked(sid, st)
		}
	}
	for sid := range rs.retry {
		if _, ok := want[sid]; !ok {
			delete(rs.retry, sid)
		}
	}
	for sid, m := range want {
		if _, ok := rs.streams[sid]; ok || now.Before(rs.retry[sid]) {
			continue
		}
		delete(rs.retry, sid)
		rs.openLocked(sid, m)
	}
}

// openLocked connects a stream for a microphone, in the background.
func (rs *roomSpeech) openLocked(sid string, m openMicrophone) {
	r := rs.room
	ctx, cancel := context.WithCancel(r.ctx)
	st := &speakerStream{id: newSID("SP_"), identity: m.identity, track: sid, cancel: cancel}
	rs.streams[sid] = st
	start := speech.Start{Stream: st.id, Room: r.name, Participant: m.identity, Name: m.name, Track: sid, Language: rs.cfg.Language}
	rs.wg.Go(func() {
		stream, err := speech.Open(ctx, rs.cfg.EngineURL, start, func(res speech.Result, audioStart time.Time) {
			rs.relay(st, res, audioStart)
		}, rs.log.With("participant", st.identity, "stream", st.id))
		rs.mu.Lock()
		defer rs.mu.Unlock()
		current := rs.streams[sid] == st
		switch {
		case err != nil && current:
			delete(rs.streams, sid)
			rs.retry[sid] = time.Now().Add(speechRetry)
			rs.log.Warn("speech: no stream to the engine", "participant", st.identity, "err", err, "retry", speechRetry)
			cancel()
		case err != nil:
		case !current: // closed while connecting
			rs.wg.Go(func() { stream.Close(); cancel() })
		default:
			st.stream = stream
			st.sink = m.media.AddSink(stream, sfu.QualityLow)
			rs.log.Info("speech: streaming a microphone to the engine", "participant", st.identity, "track", sid)
		}
	})
}

// stopLocked stops a microphone's stream: its sink at once, then the engine's last results,
// in the background.
func (rs *roomSpeech) stopLocked(sid string, st *speakerStream) {
	delete(rs.streams, sid)
	if st.sink != nil {
		st.sink.Close()
	}
	if st.stream == nil {
		st.cancel() // still connecting: the connection is dropped when it comes
		return
	}
	rs.wg.Go(func() {
		st.stream.Close()
		st.cancel()
	})
}

// relay sends one of the engine's results as the speaker's transcription.
func (rs *roomSpeech) relay(st *speakerStream, res speech.Result, audioStart time.Time) {
	if res.Text == "" {
		return
	}
	at := func(sec float64) uint64 {
		if audioStart.IsZero() {
			return 0
		}
		return uint64(audioStart.Add(time.Duration(sec * float64(time.Second))).UnixMilli())
	}
	tr := &livekit.Transcription{
		TranscribedParticipantIdentity: st.identity,
		TrackId:                        st.track,
		Segments: []*livekit.TranscriptionSegment{{
			Id: st.id + "-" + res.Segment, Text: res.Text, Final: res.Final(), Language: rs.cfg.Language,
			StartTime: at(res.Start), EndTime: at(res.End),
		}},
	}
	r := rs.room
	// The engine transcribes the speaker's own speech: checked like a participant captioning
	// themselves (the speaker may have left, the text may be too long).
	if err := r.attributeTranscription(st.identity, "", tr); err != nil {
		rs.log.Info("speech: engine text not relayed", "participant", st.identity, "err", err)
		return
	}
	pkt := &livekit.DataPacket{ParticipantIdentity: st.identity, Value: &livekit.DataPacket_Transcription{Transcription: tr}}
	if p := r.participant(st.identity); p != nil {
		pkt.ParticipantSid = p.sid
	}
	r.relayTranscription(nil, pkt, nil)
}

// speechRoutes are the chair's switches of recognition.
func (s *Server) speechRoutes() []httpapi.Route {
	row := func(pattern string, on bool) httpapi.Route {
		return httpapi.Route{Method: "POST", Pattern: pattern, Access: chairOnly, Relay: httpapi.ToRoom,
			Handler: func(w http.ResponseWriter, r *http.Request) { s.switchSpeech(w, r, on) }}
	}
	return []httpapi.Route{row("/api/rooms/{room}/speech/start", true), row("/api/rooms/{room}/speech/stop", false)}
}

func (s *Server) switchSpeech(w http.ResponseWriter, r *http.Request, on bool) {
	if s.cfg.Speech == nil || s.cfg.Speech.EngineURL == "" {
		// Not a server error: this server offers no recognition, as it offers no other route.
		httpapi.Refuse(w, r, http.StatusNotFound,
			"speech recognition is not configured on this server (speech.engine_url)",
			"la reconnaissance vocale n’est pas configurée sur ce serveur (speech.engine_url)")
		return
	}
	room, ok := s.Room(r.PathValue("room"))
	if !ok || room.speech == nil {
		httpapi.Refuse(w, r, http.StatusNotFound, "nobody is connected to this room", "personne n’est connecté à cette salle")
		return
	}
	room.speech.set(on)
	room.speech.mu.Lock()
	speakers := make([]string, 0, len(room.speech.streams))
	for _, st := range room.speech.streams {
		speakers = append(speakers, st.identity)
	}
	room.speech.mu.Unlock()
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"running": on, "speakers": speakers})
}
