package signaling

import (
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	lkwebhook "github.com/livekit/protocol/webhook"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/webhook"
)

// Webhooks receives the server's events for delivery: signaling/webhook's Notifier. Notify
// must return at once (it queues), since it is called on the paths of joins, tracks and the
// sitting's commands.
type Webhooks interface {
	Notify(webhook.Event)
}

// The events are LiveKit's (room_started/finished, participant_joined/left,
// track_published/unpublished), built from copies taken under the room's lock, and
// Hemicycle's own, told by the council desk as it applies a command. Participants hidden from
// the room (the public watching the programme) are not reported: hundreds of viewers would
// crowd the sitting's events out of the queues.

func (s *Server) notify(ev *livekit.WebhookEvent, facts any) {
	if s.cfg.Webhooks == nil {
		return
	}
	ev.CreatedAt = time.Now().Unix()
	s.cfg.Webhooks.Notify(webhook.Event{WebhookEvent: ev, Hemicycle: facts})
}

// roomStartedLocked is called as the room is made, before anyone else sees it.
func (r *Room) roomStartedLocked() {
	r.srv.notify(&livekit.WebhookEvent{Event: lkwebhook.EventRoomStarted, Room: r.infoLocked()}, nil)
}

func (r *Room) roomFinished() {
	r.srv.notify(&livekit.WebhookEvent{Event: lkwebhook.EventRoomFinished, Room: r.Info()}, nil)
}

// participantEventLocked tells that p joined or left; info is the participant as announced.
func (r *Room) participantEventLocked(event string, p *Participant, info *livekit.ParticipantInfo) {
	if r.srv.cfg.Webhooks == nil || p.hidden() {
		return
	}
	r.srv.notify(&livekit.WebhookEvent{Event: event, Room: r.infoLocked(), Participant: proto.CloneOf(info)}, nil)
}

// trackEventLocked tells that p published or unpublished t.
func (r *Room) trackEventLocked(event string, p *Participant, t *publishedTrack) {
	if r.srv.cfg.Webhooks == nil || p.hidden() {
		return
	}
	info := p.infoLocked()
	info.Tracks = nil
	r.srv.notify(&livekit.WebhookEvent{Event: event, Room: r.infoLocked(), Participant: proto.CloneOf(info), Track: proto.CloneOf(t.info)}, nil)
}

// SittingFacts is what Hemicycle's own events carry under "hemicycle".
type SittingFacts struct {
	Room    string           `json:"room"`
	Sitting *council.Sitting `json:"sitting,omitempty"` // sitting_opened and sitting_closed
	Quorum  council.Quorum   `json:"quorum"`            // the attendance against the quorum rule, now
	Vote    *VoteFacts       `json:"vote,omitempty"`    // vote_closed
}

// VoteFacts is a closed vote and its result (the ballots stay in the journal and the minutes).
type VoteFacts struct {
	ID       string           `json:"id"`
	Item     string           `json:"item"`
	Question string           `json:"question,omitempty"`
	Mode     council.VoteMode `json:"mode"`
	ClosedAt time.Time        `json:"closedAt"`
	Result   *council.Result  `json:"result"`
}

// sittingWatch remembers, per room, whether the quorum was reached at the last command, so
// that its crossings are told once.
type sittingWatch struct {
	mu      sync.Mutex
	reached map[string]bool
}

// sittingChanged is told by the desk, under its lock (so in the journal's order), of the events
// a command has just applied to st.
func (s *Server) sittingChanged(room string, events []council.Event, st *council.State) {
	if s.cfg.Webhooks == nil {
		return
	}
	lk := &livekit.Room{Name: room}
	if r, ok := s.Room(room); ok {
		lk.Sid = r.sid
	}
	facts := func() *SittingFacts { return &SittingFacts{Room: room, Quorum: st.Quorum()} }
	send := func(event string, f *SittingFacts) {
		s.notify(&livekit.WebhookEvent{Event: event, Room: proto.CloneOf(lk)}, f)
	}
	w := &s.sittings
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reached == nil {
		w.reached = map[string]bool{}
	}
	before, known := w.reached[room]
	for _, ev := range events {
		switch e := ev.(type) {
		case council.SessionOpened:
			f := facts()
			f.Sitting = &e.Sitting
			send(webhook.SittingOpened, f)
			before, known = false, true
		case council.VoteClosed:
			if v, ok := st.Vote(e.Vote); ok {
				f := facts()
				f.Vote = &VoteFacts{ID: v.ID, Item: v.Item, Question: v.Question, Mode: v.Mode, ClosedAt: v.ClosedAt, Result: v.Result}
				send(webhook.VoteClosed, f)
			}
		case council.SessionClosed:
			f := facts()
			sitting := st.Session().Sitting
			f.Sitting = &sitting
			send(webhook.SittingClosed, f)
			delete(w.reached, room)
			return
		}
	}
	if !st.Session().Opened() {
		return
	}
	// A quorum waived (second convocation) is never lost nor reached.
	q := st.Quorum()
	now := q.Reached && !q.Waived
	w.reached[room] = now
	switch {
	case !known || now == before:
	case now:
		send(webhook.QuorumReached, facts())
	default:
		send(webhook.QuorumLost, facts())
	}
}
