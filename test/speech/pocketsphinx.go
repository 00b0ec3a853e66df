// Package speech is the speech recognition's end-to-end test: a real engine, CMU PocketSphinx
// from Debian (pocketsphinx_continuous of pocketsphinx 0.8 and its en-us model), behind a
// small adapter that speaks Hemicycle's engine protocol (docs/speech.md), fed speech that
// espeak-ng synthesises and a LiveKit Go SDK client publishes.
package speech

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/signaling/speech"
)

// Engine is PocketSphinx behind the engine protocol: one pocketsphinx_continuous per
// connection, reading the stream's PCM on its standard input. PocketSphinx ends an utterance
// at a pause and prints it then, so the adapter sends final results only, one per utterance.
type Engine struct {
	URL     string // where StartEngine serves it
	grammar string // a JSGF file PocketSphinx listens with; "": its general language model

	mu      sync.Mutex
	streams map[string]*EngineStream // by the stream id of "start"
}

// EngineStream is what the engine saw of one connection.
type EngineStream struct {
	Start   speech.Start
	Samples int  // PCM samples received
	Stopped bool // "stop" arrived
	Closed  bool // the connection is over
}

// NewEngine is the adapter, listening with the JSGF grammar file ("" for PocketSphinx's
// general English model). It is an http.Handler for the engine's WebSocket.
func NewEngine(grammar string) *Engine {
	return &Engine{grammar: grammar, streams: map[string]*EngineStream{}}
}

// StartEngine serves the adapter on loopback until the test ends, with the tests' grammar
// (words.gram): with its general language model PocketSphinx hears espeak-ng's voice poorly
// ("the art world" for "hello world").
func StartEngine(t testing.TB) *Engine {
	t.Helper()
	NeedTools(t)
	e := NewEngine(filepath.Join(signalingtest.ModuleRoot(), "test", "speech", "words.gram"))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	e.URL = "ws" + strings.TrimPrefix(srv.URL, "http")
	return e
}

// NeedTools fails the test when PocketSphinx, its model, espeak-ng or ffmpeg is missing:
// scripts/test (run by .ci/run) installs them, so a missing one is a broken machine, not a reason to pass.
func NeedTools(t testing.TB) {
	t.Helper()
	const install = "apt-get install pocketsphinx pocketsphinx-en-us espeak-ng ffmpeg"
	for _, tool := range []string{"pocketsphinx_continuous", "espeak-ng", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (%s): %v", tool, install, err)
		}
	}
	if _, err := os.Stat(model); err != nil {
		t.Fatalf("PocketSphinx's English model is missing (%s): %v", install, err)
	}
}

// model is where pocketsphinx-en-us puts the model pocketsphinx_continuous loads by default.
const model = "/usr/share/pocketsphinx/model/en-us"

// Streams returns a copy of what the engine saw of each connection.
func (e *Engine) Streams() []EngineStream {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []EngineStream
	for _, s := range e.streams {
		out = append(out, *s)
	}
	return out
}

func (e *Engine) update(id string, f func(*EngineStream)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e.streams[id])
}

var upgrader = websocket.Upgrader{}

// ServeHTTP runs one stream: a WebSocket speaking the engine protocol.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	var start speech.Start
	if err := conn.ReadJSON(&start); err != nil || start.Type != "start" {
		refuse(conn, fmt.Sprintf("the first message must be a start: %v", err))
		return
	}
	if start.SampleRate != 16000 || start.Channels != 1 || start.Encoding != "s16le" || start.Stream == "" {
		refuse(conn, fmt.Sprintf("PocketSphinx's model takes 16 kHz mono s16le, with a stream id; got %+v", start))
		return
	}
	e.mu.Lock()
	e.streams[start.Stream] = &EngineStream{Start: start}
	e.mu.Unlock()
	defer e.update(start.Stream, func(s *EngineStream) { s.Closed = true })

	args := []string{"-infile", "/dev/stdin", "-time", "yes", "-logfn", "/dev/null"}
	if e.grammar != "" {
		args = append(args, "-jsgf", e.grammar)
	}
	cmd := exec.CommandContext(r.Context(), "pocketsphinx_continuous", args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		refuse(conn, err.Error())
		return
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		refuse(conn, err.Error())
		return
	}
	if err := cmd.Start(); err != nil {
		refuse(conn, fmt.Sprintf("start pocketsphinx_continuous: %v", err))
		return
	}
	results := make(chan speech.Result)
	go readUtterances(stdout, results)

	// The connection's messages go to PocketSphinx; stop (or a broken connection) closes its
	// input, after which it prints the last utterance and exits.
	go func() {
		defer stdin.Close()
		for {
			kind, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if kind == websocket.BinaryMessage {
				e.update(start.Stream, func(s *EngineStream) { s.Samples += len(data) / 2 })
				if _, err := stdin.Write(data); err != nil {
					return
				}
				continue
			}
			var msg struct{ Type string }
			if json.Unmarshal(data, &msg) == nil && msg.Type == "stop" {
				e.update(start.Stream, func(s *EngineStream) { s.Stopped = true })
				return
			}
		}
	}()
	for res := range results {
		if err := conn.WriteJSON(res); err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		refuse(conn, fmt.Sprintf("pocketsphinx_continuous: %v", err))
		return
	}
	_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"))
}

func refuse(conn *websocket.Conn, why string) {
	_ = conn.WriteJSON(speech.Result{Type: "error", Message: why})
	_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseUnsupportedData, why))
}

// readUtterances turns pocketsphinx_continuous -time yes output into final results: each
// utterance is its text on a line, then one line per word, "word start end confidence", in
// seconds from the utterance's start. An utterance starts where the previous one ended (its
// last word, </s>, ends there), so the times are summed into the stream's.
func readUtterances(out io.Reader, results chan<- speech.Result) {
	defer close(results)
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var (
		pending  *speech.Result
		timed    bool    // pending has its first word's time
		offset   float64 // where the current utterance starts in the stream
		uttEnd   float64
		count    int
		lastWord time.Time
	)
	flush := func() {
		if pending != nil {
			results <- *pending
			pending = nil
		}
		offset += uttEnd
		uttEnd = 0
	}
	for {
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-time.After(100 * time.Millisecond):
			// The word lines of an utterance come together; a pause means it is complete.
			if pending != nil && time.Since(lastWord) >= 100*time.Millisecond {
				flush()
			}
			continue
		}
		if !ok {
			flush()
			return
		}
		if word, start, end, isWord := wordLine(line); isWord {
			lastWord = time.Now()
			uttEnd = end
			if pending != nil && !strings.HasPrefix(word, "<") {
				if !timed {
					pending.Start, timed = offset+start, true
				}
				pending.End = offset + end
			}
			continue
		}
		if pending != nil || uttEnd != 0 {
			flush()
		}
		count++
		lastWord = time.Now()
		if text := strings.TrimSpace(line); text != "" {
			pending, timed = &speech.Result{Type: "final", Segment: "u" + strconv.Itoa(count), Text: text, Start: offset, End: offset}, false
		}
	}
}

// wordLine reads "word start end confidence".
func wordLine(line string) (word string, start, end float64, ok bool) {
	f := strings.Fields(line)
	if len(f) != 4 {
		return "", 0, 0, false
	}
	var err [3]error
	start, err[0] = strconv.ParseFloat(f[1], 64)
	end, err[1] = strconv.ParseFloat(f[2], 64)
	_, err[2] = strconv.ParseFloat(f[3], 64)
	if err[0] != nil || err[1] != nil || err[2] != nil {
		return "", 0, 0, false
	}
	return f[0], start, end, true
}
