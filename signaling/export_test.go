package signaling

import (
	"time"

	"github.com/gorilla/websocket"
	"github.com/ingeco/hemicycle/council"
	"github.com/livekit/protocol/livekit"
)

// What the external tests (package signaling_test) reach inside the server to assert what no
// client can see. Everything else they check through HTTP, the SDK and the public API.

// MaxFrameBytes is the largest signalling frame a session may send.
const MaxFrameBytes = maxFrameBytes

// ReceiveData hands data to the room as if identity's data channel had carried it.
func (r *Room) ReceiveData(identity string, reliable bool, data []byte) {
	r.participant(identity).onData(reliable, data)
}

// Socket is the signalling connection identity's session uses now, nil without a session.
func (r *Room) Socket(identity string) *signalConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.participants[identity]; p != nil {
		return p.conn
	}
	return nil
}

// QualityTold lists the participant sids whose connection quality identity was told.
func (r *Room) QualityTold(identity string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sids []string
	for sid := range r.participants[identity].qualityTold {
		sids = append(sids, sid)
	}
	return sids
}

// HasDesk says whether this node holds room's deliberation desk.
func (s *Server) HasDesk(room string) bool { return s.delib.existingDesk(room) != nil }

// EndAfterWriteFailed joins the holder of token to room on ws, a socket nobody reads, then
// ends the session as a race once seen under load did: the write side fails first (gorilla
// answers an oversized frame with its own close frame, so a write of ours gets ErrCloseSent),
// and only then does the read return ErrReadLimit.
func (s *Server) EndAfterWriteFailed(ws *websocket.Conn, room, token string) error {
	r, err := s.openRoom(room, 0)
	if err != nil {
		return err
	}
	claims, err := s.cfg.Verifier.VerifyJoin(token)
	if err != nil {
		return err
	}
	conn := newSignalConn(ws, time.Minute, connLimits{})
	p, err := r.join(claims, joinParams{autoSubscribe: true}, conn)
	if err != nil {
		return err
	}
	conn.close(websocket.ErrCloseSent) // the write side lost first
	p.connEnded(conn, websocket.ErrReadLimit)
	return nil
}

// ChaptersOf lists the recording's chapters of a session's state with labels.
var ChaptersOf = chaptersOf

// WithChapterWords gives a recording configuration the chapter titles of labels.
var WithChapterWords = withChapterWords

// ServerLabels are the labels a server so configured writes with, French unless configured.
func ServerLabels(c Config) council.Labels { return c.labels() }

// LiveVideoLayers are the layers the first published video of the room still receives.
func (r *Room) LiveVideoLayers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.participants {
		for _, t := range p.tracks {
			if t.info.Type == livekit.TrackType_VIDEO {
				return t.media.LiveLayers()
			}
		}
	}
	return nil
}
