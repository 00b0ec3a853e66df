package speech

import (
	"context"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/test/media"
)

func TestMain(m *testing.M) { signalingtest.Main(m) }

// spoken is what the speaker says: words PocketSphinx's en-us model knows, which the test
// grammar holds among others.
const spoken = "hello world. three four five."

// clip is espeak-ng's speech as the Opus a microphone sends, with when the speech ends in it.
type clip struct {
	frames    []media.Frame
	speechEnd time.Duration // from the clip's start
}

// speak synthesises text with espeak-ng and encodes it as a browser would send it (Opus, 20 ms
// frames, 32 kb/s, voip), after half a second of silence and before 2.5 s of it, so that a
// looped clip gives PocketSphinx a pause to end each utterance.
func speak(t *testing.T, text string) clip {
	t.Helper()
	dir := t.TempDir()
	wav, ogg := filepath.Join(dir, "speech.wav"), filepath.Join(dir, "speech.ogg")
	run(t, "espeak-ng", "-v", "en-us", "-s", "130", "-w", wav, text)
	const lead = 500 * time.Millisecond
	run(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", wav,
		"-af", "adelay=500:all=1,apad=pad_dur=2.5", "-ar", "48000", "-ac", "1",
		"-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-application", "voip", "-page_duration", "20000", ogg)
	data, err := os.ReadFile(ogg)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := media.ReadOpus(data)
	if err != nil {
		t.Fatalf("read %s: %v", ogg, err)
	}
	// Where the voice ends: the last sample above -40 dBFS of what espeak-ng said.
	pcm := media.PCM(t, wav)
	last := len(pcm) - 1
	for last > 0 && math.Abs(pcm[last]) < 0.01 {
		last--
	}
	return clip{frames: frames, speechEnd: lead + time.Duration(last)*time.Second/media.SampleRate}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// caption is one transcription a listener received, by either of LiveKit's ways.
type caption struct {
	speaker, track, id, text string
	final                    bool
	at                       time.Time
}

// listener collects what a real Go SDK client receives: the Transcription packets
// (OnTranscriptionReceived) and the lk.transcription text streams.
type listener struct {
	mu              sync.Mutex
	packets, stream []caption
}

func listen(t *testing.T, ts *signalingtest.Server, room string) *listener {
	t.Helper()
	l := &listener{}
	cb := lksdk.NewRoomCallback()
	cb.OnTranscriptionReceived = func(segs []*lksdk.TranscriptionSegment, p lksdk.Participant, pub lksdk.TrackPublication) {
		track := ""
		if rp, ok := pub.(*lksdk.RemoteTrackPublication); ok && rp != nil {
			track = rp.SID()
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, s := range segs {
			l.packets = append(l.packets, caption{speaker: p.Identity(), track: track, id: s.ID, text: s.Text, final: s.Final, at: time.Now()})
		}
	}
	r := ts.Join(t, room, "chloe", auth.RoleMember, 3, cb)
	err := r.RegisterTextStreamHandler("lk.transcription", func(rd *lksdk.TextStreamReader, sender string) {
		text, a := rd.ReadAll(), rd.Info.Attributes
		l.mu.Lock()
		defer l.mu.Unlock()
		l.stream = append(l.stream, caption{speaker: sender, track: a["lk.transcribed_track_id"], id: a["lk.segment_id"],
			text: text, final: a["lk.transcription_final"] == "true", at: time.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// heard returns the first final caption received as a packet and as a text stream whose text
// holds words, of a segment whose id starts with prefix.
func (l *listener) heard(words, prefix string) (packet, stream caption, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	has := func(c caption) bool {
		return c.final && strings.Contains(c.text, words) && strings.HasPrefix(c.id, prefix)
	}
	i, j := slices.IndexFunc(l.packets, has), slices.IndexFunc(l.stream, has)
	if i < 0 || j < 0 {
		return caption{}, caption{}, false
	}
	return l.packets[i], l.stream[j], true
}

func (l *listener) all() []caption {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.packets)
}

// sitting starts a server whose speech engine is PocketSphinx, opens a sitting in room
// "conseil" presided by seat 1 (anne) when open is set, and has david (seat 4) speak into his
// microphone and chloe (seat 3) listen.
type sitting struct {
	ts           *signalingtest.Server
	engine       *Engine
	chair, clerk string
	speech       clip
	mic          *signalingtest.Publisher
	chloe        *listener
}

const room = "conseil"

func startSitting(t *testing.T, atSittingStart, open bool) *sitting {
	t.Helper()
	s := &sitting{engine: StartEngine(t), speech: speak(t, spoken)}
	s.ts = signalingtest.Start(t, signalingtest.Council(t, t.TempDir()), func(c *signaling.Config) {
		c.Speech = &signaling.SpeechConfig{EngineURL: s.engine.URL, Language: "en", AtSittingStart: atSittingStart}
	})
	s.chair = s.ts.Token(t, room, "anne", auth.RoleChair, 1)
	s.clerk = s.ts.Token(t, room, "greffe", auth.RoleClerk, 0)
	s.ts.Join(t, room, "anne", auth.RoleChair, 1, nil)
	if open {
		s.openSitting(t)
	}
	s.chloe = listen(t, s.ts, room)
	david := s.ts.Join(t, room, "david", auth.RoleMember, 4, nil)
	s.mic = signalingtest.Publish(t, david, signalingtest.Clips{Mic: s.speech.frames})
	return s
}

func (s *sitting) openSitting(t *testing.T) {
	t.Helper()
	s.call(t, s.clerk, "/session", map[string]any{
		"body":  map[string]string{"name": "Conseil communautaire de Test", "kind": "epci", "profile": "fr-epci-visio"},
		"title": "Séance du 7 décembre", "chair": 1, "rosterCsv": signalingtest.Roster(5),
	}, http.StatusOK)
}

func (s *sitting) call(t *testing.T, token, path string, body any, want int) map[string]any {
	t.Helper()
	code, raw := s.ts.Call(t, "POST", "/api/rooms/"+room+path, token, body)
	if code != want {
		t.Fatalf("POST %s: %d %s, want %d", path, code, raw, want)
	}
	return signalingtest.Object(raw)
}

// waitForWords waits until chloe has received words as david's final caption both ways, in a
// segment whose id starts with prefix, and checks that both name david and his microphone. It
// returns the caption and how long after the end of the speech it arrived.
func (s *sitting) waitForWords(t *testing.T, words, prefix string) (caption, time.Duration) {
	t.Helper()
	var packet, stream caption
	signalingtest.Eventually(t, "chloe receives "+words+" as david's caption", 45*time.Second, func() bool {
		var ok bool
		packet, stream, ok = s.chloe.heard(words, prefix)
		return ok
	})
	mic := s.mic.AudioPub.SID()
	for _, c := range []caption{packet, stream} {
		if c.speaker != "david" || c.track != mic {
			t.Errorf("caption %+v: want it attributed to david's microphone %s", c, mic)
		}
	}
	if packet.id != stream.id || packet.text != stream.text {
		t.Errorf("the transcription packet %+v and the text stream %+v differ", packet, stream)
	}
	// The clip loops: the speech heard is the last one whose end was sent before the caption.
	lastWord := s.speech.frames[int(s.speech.speechEnd/(20*time.Millisecond))].Data
	sent, ok := s.mic.SentBefore(lastWord, packet.at)
	if !ok {
		t.Fatalf("the caption arrived before the speech's last frame was sent")
	}
	return packet, packet.at.Sub(sent)
}

// The chair starts recognition: what david says reaches chloe as david's captions, by both of
// LiveKit's ways, with the words PocketSphinx heard in the audio the server decoded. Only the
// chair may start or stop it, and stopping ends the engine's stream.
func TestTheChairStartsSpeechRecognitionAndTheWordsSpokenArriveAsCaptions(t *testing.T) {
	s := startSitting(t, false, true)
	member := s.ts.Token(t, room, "david", auth.RoleMember, 4)
	s.call(t, member, "/speech/start", nil, http.StatusForbidden)
	time.Sleep(2 * speechSettle)
	if got := s.engine.Streams(); len(got) != 0 {
		t.Fatalf("the engine has streams before the chair started recognition: %+v", got)
	}

	s.call(t, s.chair, "/speech/start", nil, http.StatusOK)
	c, delay := s.waitForWords(t, "hello world", "")
	t.Logf("caption %q arrived %v after the end of the speech", c.text, delay)

	streams := s.engine.Streams()
	if len(streams) != 1 {
		t.Fatalf("engine streams %+v, want one (david's)", streams)
	}
	st := streams[0].Start
	if st.Participant != "david" || st.Track != s.mic.AudioPub.SID() || st.Room != room || st.Language != "en" || st.Name == "" {
		t.Errorf("the stream was announced as %+v", st)
	}
	if !strings.HasPrefix(c.id, st.Stream+"-") {
		t.Errorf("segment id %q is not scoped by the stream %q", c.id, st.Stream)
	}

	// One stream per open microphone: muted, david's ends; open again, he gets a new one.
	s.call(t, s.chair, "/mute", map[string]string{"identity": "david"}, http.StatusOK)
	signalingtest.Eventually(t, "muting david ends his stream", 15*time.Second, func() bool { return s.engine.ended(1) })
	s.mic.AudioPub.SetMuted(false)
	var second string
	signalingtest.Eventually(t, "david unmuted has a new stream", 15*time.Second, func() bool {
		for _, st := range s.engine.Streams() {
			if !st.Closed {
				second = st.Start.Stream
			}
		}
		return len(s.engine.Streams()) == 2 && second != ""
	})
	c, delay = s.waitForWords(t, "hello world", second+"-")
	t.Logf("caption %q arrived %v after the end of the speech", c.text, delay)

	s.call(t, member, "/speech/stop", nil, http.StatusForbidden)
	s.call(t, s.chair, "/speech/stop", nil, http.StatusOK)
	signalingtest.Eventually(t, "the engine is told to stop and the stream closes", 15*time.Second, func() bool { return s.engine.ended(2) })
	time.Sleep(2 * speechSettle)
	if !s.engine.ended(2) {
		t.Errorf("streams after the chair stopped recognition: %+v, want david's two, closed", s.engine.Streams())
	}
}

// ended reports whether the engine has had n streams, each told to stop and closed.
func (e *Engine) ended(n int) bool {
	got := e.Streams()
	return len(got) == n && !slices.ContainsFunc(got, func(s EngineStream) bool { return !s.Stopped || !s.Closed })
}

// speechSettle is longer than the server takes to match streams to microphones.
const speechSettle = 500 * time.Millisecond

// Configured to run at every sitting, recognition starts when the sitting opens (not before),
// its text arrives without the chair doing anything, and it ends with the sitting.
func TestSpeechRecognitionRunsWhileASittingIsOpenWhenConfigured(t *testing.T) {
	s := startSitting(t, true, false)
	time.Sleep(4 * speechSettle)
	if got := s.engine.Streams(); len(got) != 0 {
		t.Fatalf("the engine has streams with no sitting open: %+v", got)
	}
	if got := s.chloe.all(); len(got) != 0 {
		t.Fatalf("captions with no sitting open: %+v", got)
	}
	s.openSitting(t)
	c, delay := s.waitForWords(t, "hello world", "")
	t.Logf("caption %q arrived %v after the end of the speech", c.text, delay)

	s.call(t, s.chair, "/session/close", nil, http.StatusOK)
	signalingtest.Eventually(t, "closing the sitting ends the engine's stream", 15*time.Second, func() bool { return s.engine.ended(1) })
	time.Sleep(2 * speechSettle)
	if got := s.engine.Streams(); !s.engine.ended(1) {
		t.Errorf("streams after the sitting closed: %+v, want the sitting's only, closed", got)
	}
}
