package speech_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtp"

	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/signaling/speech"
	"github.com/ingeco/hemicycle/test/media"
)

// recorder is the far end of the protocol as the server must be heard: it keeps what arrives
// and answers one interim result at the first audio and a final one at stop. The real engine
// (PocketSphinx) is test/speech's; this one checks the bytes on the wire.
type recorder struct {
	mu      sync.Mutex
	start   speech.Start
	pcm     []int16
	stopped bool
	order   []string // message kinds in order: start, audio, stop
}

func (rc *recorder) serve(w http.ResponseWriter, r *http.Request) {
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	answered := false
	for {
		kind, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		rc.mu.Lock()
		if kind == websocket.BinaryMessage {
			if len(rc.order) == 0 || rc.order[len(rc.order)-1] != "audio" {
				rc.order = append(rc.order, "audio")
			}
			for i := 0; i+1 < len(data); i += 2 {
				rc.pcm = append(rc.pcm, int16(binary.LittleEndian.Uint16(data[i:])))
			}
			rc.mu.Unlock()
			if !answered {
				answered = true
				_ = conn.WriteJSON(speech.Result{Type: "interim", Segment: "1", Text: "la séance", Start: 0, End: 0.5})
				_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type": "final", "segment": ""}`)) // no id: ignored
			}
			continue
		}
		var msg struct{ Type string }
		_ = json.Unmarshal(data, &msg)
		rc.order = append(rc.order, msg.Type)
		if msg.Type == "start" {
			_ = json.Unmarshal(data, &rc.start)
		}
		rc.mu.Unlock()
		if msg.Type == "stop" {
			rc.mu.Lock()
			rc.stopped = true
			rc.mu.Unlock()
			_ = conn.WriteJSON(speech.Result{Type: "final", Segment: "1", Text: "la séance est ouverte", Start: 0.1, End: 1.6})
			_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
			return
		}
	}
}

// power is the power of frequency f in 16 kHz samples (Goertzel).
func power(samples []int16, f float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*f/speech.SampleRate)
	var s1, s2 float64
	for _, x := range samples {
		s1, s2 = float64(x)/32768+coeff*s1-s2, s1
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

// The engine hears the 440 Hz test tone a speaker publishes as 16 kHz mono PCM, after a start
// naming the speaker and before a stop; a gap in the packets' timestamps is silence of the
// same length, so that the engine's times follow the speaker's; the engine's results come
// back (the malformed one left out) with the time they count from.
func TestTheEngineHearsTheSpeakersAudioAsPCMAndAnswersText(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(rc.serve))
	defer srv.Close()
	var mu sync.Mutex
	var results []speech.Result
	var since time.Time
	opened := time.Now()
	st, err := speech.Open(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"),
		speech.Start{Stream: "SP_1", Room: "conseil", Participant: "david", Name: "David", Track: "TR_mic", Language: "fr"},
		func(r speech.Result, audioStart time.Time) {
			mu.Lock()
			defer mu.Unlock()
			results, since = append(results, r), audioStart
		}, signalingtest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	tone, err := media.Opus()
	if err != nil {
		t.Fatal(err)
	}
	// 1 s of the tone, 100 ms lost, 0.5 s more: 1.6 s of audio.
	const before, lost, after = 50, 5, 25
	h := rtp.Header{Timestamp: 123456}
	for i := range before + lost + after {
		if i < before || i >= before+lost {
			_, _ = st.WriteRTP(&h, tone[i].Data)
			time.Sleep(2 * time.Millisecond) // the engine keeps up: nothing is dropped
		}
		h.Timestamp += 960
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = st.WriteRTP(&h, tone[0].Data) }); allocs != 0 {
		t.Errorf("WriteRTP, on the track's read path, allocates %v times per packet", allocs)
	}
	time.Sleep(100 * time.Millisecond)
	st.Close()
	select {
	case <-st.Done():
	default:
		t.Fatal("Close returned before the stream ended")
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	want := speech.Start{Type: "start", Stream: "SP_1", Room: "conseil", Participant: "david", Name: "David", Track: "TR_mic",
		Language: "fr", SampleRate: 16000, Channels: 1, Encoding: "s16le"}
	if rc.start != want {
		t.Errorf("start: %+v, want %+v", rc.start, want)
	}
	if strings.Join(rc.order, ",") != "start,audio,stop" || !rc.stopped {
		t.Errorf("messages %v, want start, audio, stop", rc.order)
	}
	// The 101 packets written by AllocsPerRun repeat one timestamp: all but the first are late.
	const frame = speech.SampleRate / 50
	if got, want := len(rc.pcm), (before+lost+after+1)*frame; got != want {
		t.Fatalf("the engine got %d samples, want %d (1.62 s at 16 kHz)", got, want)
	}
	heard := rc.pcm[10*frame : before*frame]
	if p440, p1k := power(heard, 440), power(heard, 1000); p440 < 100*p1k || p440 == 0 {
		t.Errorf("the tone's power at 440 Hz is %.3g, at 1 kHz %.3g: the engine does not hear the tone", p440, p1k)
	}
	for i, v := range rc.pcm[before*frame : (before+lost)*frame] {
		if v != 0 {
			t.Fatalf("sample %d of the lost 100 ms is %d, want silence", i, v)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(results) != 2 || results[0].Type != "interim" || results[1].Text != "la séance est ouverte" || !results[1].Final() {
		t.Errorf("results %+v, want the interim and the final", results)
	}
	if since.Before(opened) || since.After(time.Now()) {
		t.Errorf("results count from %v, want the first packet's arrival", since)
	}
}

// An engine that is not there is a clear error, not a hang.
func TestAnEngineThatIsNotThereIsAnError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	srv.Close()
	_, err := speech.Open(context.Background(), url, speech.Start{Stream: "SP_1"}, func(speech.Result, time.Time) {}, signalingtest.Logger())
	if err == nil || !strings.Contains(err.Error(), "speech engine") {
		t.Fatalf("Open on a closed port: %v, want an error naming the speech engine", err)
	}
}
