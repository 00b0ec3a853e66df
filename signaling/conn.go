package signaling

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"
)

// maxFrameBytes is the default bound of one signalling frame (Limits.FrameBytes). The largest
// legitimate frames are SDP offers with simulcast (a few tens of kB); anything far beyond is an
// abuse and closes that session.
const maxFrameBytes = 256 << 10

// outQueueLen is how many responses may wait for a slow client before its socket is dropped.
const outQueueLen = 512

var errSlowClient = errors.New("signalling queue full: client too slow")

// errMalformedFrame marks a frame that is not a SignalRequest: a protocol violation.
var errMalformedFrame = errors.New("malformed signal frame")

// errMessageFlood marks a client sending more frames than Limits.MessagesPerSecond allows.
var errMessageFlood = errors.New("signalling message rate exceeded")

// isMalformed tells a read error that is the client's fault (a frame that is not a valid
// SignalRequest, one beyond the read limit, or a flood of them) from a socket that merely
// ended. gorilla answers an oversized frame with its own close frame before returning
// ErrReadLimit, so the write side may fail (ErrCloseSent) and close the connection first: only
// the read error says what happened.
func isMalformed(err error) bool {
	return errors.Is(err, errMalformedFrame) || errors.Is(err, errMessageFlood) || isOversized(err)
}

// isOversized tells a read error on a frame beyond the read limit.
func isOversized(err error) bool { return errors.Is(err, websocket.ErrReadLimit) }

// signalConn is one WebSocket carrying LiveKit protobuf frames. Writes go through a queue
// drained by a single goroutine, because gorilla's Conn allows one concurrent writer.
type signalConn struct {
	ws      *websocket.Conn
	silence time.Duration // the ping timeout: a client silent for longer is gone
	out     chan *livekit.SignalResponse
	done    chan struct{}
	once    sync.Once
	errMu   sync.Mutex
	reason  error
	// offMachine: the client's end of the WebSocket is not a loopback address, so the
	// client is not on this machine (or reaches it through a proxy that is not).
	offMachine bool
	limits     connLimits // limits.go: its frames' size and rate
}

func newSignalConn(ws *websocket.Conn, silence time.Duration, limits connLimits) *signalConn {
	if limits.frameBytes <= 0 {
		limits.frameBytes = maxFrameBytes
	}
	ws.SetReadLimit(limits.frameBytes)
	c := &signalConn{ws: ws, silence: silence, out: make(chan *livekit.SignalResponse, outQueueLen), done: make(chan struct{}), limits: limits}
	if a, ok := ws.RemoteAddr().(*net.TCPAddr); ok {
		c.offMachine = !a.IP.IsLoopback()
	}
	// Not every SDK sends the protocol's pings (the Go SDK does not), but every WebSocket
	// answers a ping frame: the server pings, and any answer or frame proves the client is there.
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(silence)) })
	go c.writeLoop()
	return c
}

// send queues a response; it never blocks. A client that cannot keep up is disconnected rather
// than slowing the room down.
func (c *signalConn) send(msg *livekit.SignalResponse) {
	select {
	case <-c.done:
	case c.out <- msg:
	default:
		c.close(errSlowClient)
	}
}

// read returns the next request. A frame that is not a valid SignalRequest is an error, and so
// is a client silent for the ping timeout: its network vanished without closing the socket, and
// waiting for TCP to notice took minutes, during which a remote member still counted as present.
func (c *signalConn) read() (*livekit.SignalRequest, error) {
	if err := c.ws.SetReadDeadline(time.Now().Add(c.silence)); err != nil {
		return nil, fmt.Errorf("set the read deadline: %w", err)
	}
	kind, data, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if m := c.limits.messages; m != nil && !m.Allow() {
		return nil, fmt.Errorf("%w: more than %g a second (bursts of %d)", errMessageFlood, c.limits.perSecond, c.limits.burst)
	}
	if kind != websocket.BinaryMessage {
		return nil, fmt.Errorf("%w: expected a binary protobuf frame, got websocket message type %d", errMalformedFrame, kind)
	}
	req := &livekit.SignalRequest{}
	if err := proto.Unmarshal(data, req); err != nil {
		return nil, fmt.Errorf("%w (%d bytes): %w", errMalformedFrame, len(data), err)
	}
	return req, nil
}

func (c *signalConn) writeLoop() {
	defer c.ws.Close()
	ping := time.NewTicker(c.silence / 3)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			c.flushAndClose()
			return
		case msg := <-c.out:
			if err := c.write(msg); err != nil {
				c.close(err)
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.silence/3)); err != nil {
				c.close(err)
				return
			}
		}
	}
}

// flushAndClose sends what is queued (a final Leave, typically) and a close frame with the reason.
func (c *signalConn) flushAndClose() {
	for {
		select {
		case msg := <-c.out:
			if c.write(msg) != nil {
				return
			}
		default:
			code, text := websocket.CloseNormalClosure, ""
			if err := c.err(); err != nil {
				code, text = websocket.CloseProtocolError, err.Error()
				switch {
				case errors.Is(err, errSlowClient):
					code = websocket.CloseTryAgainLater
				case errors.Is(err, errMessageFlood):
					code = websocket.ClosePolicyViolation
				}
				if len(text) > 120 { // a close frame's reason must fit in 123 bytes
					text = text[:120]
				}
			}
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
			if err := c.err(); errors.Is(err, errMessageFlood) || errors.Is(err, errMalformedFrame) {
				c.drain() // the read loop has ended on that error: nobody else reads
			}
			return
		}
	}
}

// drain reads and drops what the client still sends, until it answers the close frame or for a
// second at most: a socket closed with unread data is reset, and a client still sending (a
// flood) would lose the close frame, and the Leave before it, that say why.
func (c *signalConn) drain() {
	c.ws.SetPongHandler(nil) // a pong must not put the deadline off
	_ = c.ws.SetReadDeadline(time.Now().Add(time.Second))
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			return
		}
	}
}

func (c *signalConn) write(msg *livekit.SignalResponse) error {
	data, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode signal response: %w", err)
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.BinaryMessage, data)
}

// close ends the connection; reason (may be nil) is sent in the close frame.
func (c *signalConn) close(reason error) {
	c.once.Do(func() {
		c.errMu.Lock()
		c.reason = reason
		c.errMu.Unlock()
		close(c.done)
	})
}

func (c *signalConn) err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.reason
}
