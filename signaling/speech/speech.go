// Package speech streams one speaker's audio to a speech-to-text engine over WebSocket and
// hands back the engine's text. The protocol is documented in docs/speech.md: the server opens
// one connection per speaking participant, announces the speaker in a JSON "start" message,
// sends 16 kHz mono 16-bit little-endian PCM in binary messages, and ends with "stop"; the
// engine answers JSON "interim" and "final" results with times in seconds of that audio.
//
// The Opus the speaker publishes is decoded here with pion's pure-Go decoder (github.com/pion/opus),
// at 16 kHz mono directly: no process per speaker, and nothing on the forwarding path, since a
// Stream reads the track through an sfu sink that exists only while recognition runs.
package speech

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/opus"
	"github.com/pion/rtp"
)

// The audio format the engine receives.
const (
	SampleRate = 16000
	Channels   = 1
	Encoding   = "s16le"
)

const (
	// opusRate is the RTP clock of Opus, whatever the audio's bandwidth (RFC 7587).
	opusRate = 48000
	// maxPayload is the largest Opus payload taken; a WebRTC packet fits in an MTU.
	maxPayload = 1500
	// queued packets between the track's read path and the decoder: one second of 20 ms frames.
	queued = 50
	// maxGap is the most silence put in for a jump of the timestamps (DTX, losses): beyond it
	// the speaker was away, and the engine needs no more than that to end an utterance.
	maxGap = opusRate
	// maxFrame is the most samples one Opus packet decodes to at 16 kHz (120 ms).
	maxFrame = SampleRate * 120 / 1000

	dialTimeout  = 5 * time.Second
	writeTimeout = 5 * time.Second
	// flushWait is how long the engine has after "stop" to send its last results and close.
	flushWait = 5 * time.Second
	// maxMessage bounds what the engine may send in one message.
	maxMessage = 64 << 10
)

// Start announces a stream: the first message on every connection.
type Start struct {
	Type        string `json:"type"`   // "start"
	Stream      string `json:"stream"` // unique per connection
	Room        string `json:"room"`
	Participant string `json:"participant"` // the speaker's identity
	Name        string `json:"name,omitempty"`
	Track       string `json:"track"`              // the microphone's track sid
	Language    string `json:"language,omitempty"` // BCP 47, e.g. "fr", "en"
	SampleRate  int    `json:"sample_rate"`
	Channels    int    `json:"channels"`
	Encoding    string `json:"encoding"`
}

// control is the server's "stop": no more audio; send the last results and close.
type control struct {
	Type string `json:"type"`
}

// Result is one message of the engine.
type Result struct {
	Type string `json:"type"` // "interim", "final" or "error"
	// Segment identifies a line of text: its interim versions and its final one share it.
	Segment string `json:"segment"`
	Text    string `json:"text"`
	// Start and End are in seconds of the stream's audio, from its first sample.
	Start   float64 `json:"start"`
	End     float64 `json:"end"`
	Message string  `json:"message,omitempty"` // what went wrong, with "error"
}

// Final reports whether the result is the last version of its segment.
func (r Result) Final() bool { return r.Type == "final" }

func (r Result) check() error {
	switch r.Type {
	case "interim", "final":
	case "error":
		return fmt.Errorf("the engine reports an error: %s", r.Message)
	default:
		return fmt.Errorf("unknown message type %q (want interim, final or error)", r.Type)
	}
	if r.Segment == "" {
		return errors.New("a result without a segment id")
	}
	if r.Start < 0 || r.End < r.Start {
		return fmt.Errorf("segment %q: times %.3f-%.3f s are not an interval of the stream", r.Segment, r.Start, r.End)
	}
	return nil
}

// packet is one Opus payload waiting for the decoder, held by value so that the track's read
// path allocates nothing to hand it over.
type packet struct {
	ts   uint32
	n    int
	data [maxPayload]byte
}

// Stream is one speaker's connection to the engine. WriteRTP is its sfu sink writer.
type Stream struct {
	conn     *websocket.Conn
	log      *slog.Logger
	onResult func(Result, time.Time)

	packets chan packet
	stop    chan struct{}
	once    sync.Once
	read    chan struct{} // closed when the engine's messages end
	done    chan struct{} // closed when the stream has ended

	audioStart atomic.Int64 // Unix nanoseconds of the first sample, 0 before
	dropped    atomic.Uint64
}

// Open connects to the engine at url and announces the stream; onResult is called, from one
// goroutine, with every valid result and the time its seconds count from (AudioStart) until
// the stream ends. The stream ends with Close, with
// ctx, or when the engine closes the connection (Done).
func Open(ctx context.Context, url string, start Start, onResult func(Result, time.Time), log *slog.Logger) (*Stream, error) {
	start.Type, start.SampleRate, start.Channels, start.Encoding = "start", SampleRate, Channels, Encoding
	dial, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, resp, err := websocket.DefaultDialer.DialContext(dial, url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("speech engine %s answered %s: %w", url, resp.Status, err)
		}
		return nil, fmt.Errorf("speech engine %s: %w", url, err)
	}
	conn.SetReadLimit(maxMessage)
	s := &Stream{
		conn: conn, log: log, onResult: onResult,
		packets: make(chan packet, queued),
		stop:    make(chan struct{}),
		read:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if err := s.writeJSON(start); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("speech engine %s: announce the stream: %w", url, err)
	}
	go s.readResults()
	go s.pump(ctx)
	return s, nil
}

// WriteRTP queues a packet of the speaker's Opus for the decoder; it never blocks, and drops
// the packet when the engine falls a second behind.
func (s *Stream) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if len(payload) == 0 || len(payload) > maxPayload {
		return len(payload), nil
	}
	var p packet
	p.ts, p.n = h.Timestamp, copy(p.data[:], payload)
	select {
	case s.packets <- p:
	default:
		s.dropped.Add(1)
	}
	return len(payload), nil
}

// AudioStart is when the stream's first sample reached the server (zero before): the time
// that the results' seconds count from.
func (s *Stream) AudioStart() time.Time {
	if ns := s.audioStart.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Done is closed when the stream has ended, whatever ended it.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Close sends what audio is queued and "stop", waits (a few seconds at most) for the engine's
// last results, and closes the connection. Close the sink feeding WriteRTP first.
func (s *Stream) Close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// pump decodes the queued packets to PCM for the engine, in the order of their timestamps,
// putting silence in the gaps so that the engine's times follow the speaker's.
func (s *Stream) pump(ctx context.Context) {
	defer close(s.done)
	defer s.conn.Close()
	dec, err := opus.NewDecoderWithOutput(SampleRate, Channels)
	if err != nil {
		s.log.Error("speech: no Opus decoder", "err", err)
		return
	}
	pcm := make([]int16, maxFrame)
	out := make([]byte, 0, 2*maxFrame)
	var next uint32 // timestamp expected next
	started := false
	send := func(samples []int16) bool {
		out = out[:0]
		for _, v := range samples {
			out = binary.LittleEndian.AppendUint16(out, uint16(v))
		}
		if err := s.write(websocket.BinaryMessage, out); err != nil {
			s.log.Info("speech: the engine stopped taking audio", "err", err)
			return false
		}
		return true
	}
	silence := make([]int16, maxFrame)
	for {
		var p packet
		select {
		case p = <-s.packets:
		case <-s.read:
			return // the engine hung up
		case <-ctx.Done():
			return
		case <-s.stop:
			s.finish()
			return
		}
		if !started {
			started, next = true, p.ts
			s.audioStart.Store(time.Now().UnixNano())
		}
		gap := int32(p.ts - next)
		if gap < 0 {
			continue // late: its time was filled with silence already
		}
		for fill := min(int(gap), maxGap) * SampleRate / opusRate; fill > 0; fill -= maxFrame {
			if !send(silence[:min(fill, maxFrame)]) {
				return
			}
		}
		n, err := dec.DecodeToInt16(p.data[:p.n], pcm)
		if err != nil {
			s.log.Debug("speech: undecodable Opus packet skipped", "err", err)
			next = p.ts + opusRate/50
			continue
		}
		next = p.ts + uint32(n*opusRate/SampleRate)
		if !send(pcm[:n]) {
			return
		}
	}
}

// finish tells the engine that the audio ended and waits for it to close after its last
// results.
func (s *Stream) finish() {
	if n := s.dropped.Load(); n > 0 {
		s.log.Warn("speech: packets dropped while the engine lagged", "packets", n)
	}
	if err := s.writeJSON(control{Type: "stop"}); err != nil {
		return
	}
	select {
	case <-s.read:
	case <-time.After(flushWait):
		s.log.Info("speech: the engine did not close after stop", "waited", flushWait)
	}
}

// readResults hands the engine's results over until it closes the connection.
func (s *Stream) readResults() {
	defer close(s.read)
	for {
		kind, data, err := s.conn.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) && !errors.Is(err, websocket.ErrCloseSent) {
				s.log.Debug("speech: engine connection ended", "err", err)
			}
			return
		}
		if kind != websocket.TextMessage {
			s.log.Info("speech: binary message from the engine ignored")
			continue
		}
		var r Result
		if err := json.Unmarshal(data, &r); err != nil {
			s.log.Info("speech: message from the engine is not JSON", "err", err)
			continue
		}
		if err := r.check(); err != nil {
			s.log.Info("speech: result ignored", "err", err)
			continue
		}
		s.onResult(r, s.AudioStart())
	}
}

func (s *Stream) writeJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.write(websocket.TextMessage, data)
}

// write sends one message; only the pump writes after Open, so no lock is needed.
func (s *Stream) write(kind int, data []byte) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return s.conn.WriteMessage(kind, data)
}
