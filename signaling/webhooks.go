package signaling

import (
	"encoding/json"
	"net/url"
	"path/filepath"
	"time"

	"github.com/livekit/protocol/livekit"
	lkwebhook "github.com/livekit/protocol/webhook"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/webhook"
)

// The server's webhooks (Config.Webhooks; signaling/webhook delivers them) are LiveKit's
// events, room_started/finished, participant_joined/left and track_published/unpublished,
// built from copies taken under the room's lock, and Hemicycle's own, told by the council desk
// as it applies a command. Notify only queues, so none of these paths ever waits for a
// receiver. Participants hidden from the room (the public watching the programme) are not
// reported: hundreds of viewers would crowd the sitting's events out of the queues. A room
// handed over to another node is told there again (room_started, participant_joined).

// roomStarted is told as the room is made, before anyone else sees it.
func (r *Room) roomStarted() {
	if r.srv.webhooks == nil {
		return
	}
	r.srv.webhooks.Notify(&livekit.WebhookEvent{Event: lkwebhook.EventRoomStarted, Room: r.infoLocked()})
}

func (r *Room) roomFinished() {
	if r.srv.webhooks == nil {
		return
	}
	r.srv.webhooks.Notify(&livekit.WebhookEvent{Event: lkwebhook.EventRoomFinished, Room: r.Info()})
}

// participantEventLocked tells that p joined or left; info is the participant as announced.
func (r *Room) participantEventLocked(event string, p *Participant, info *livekit.ParticipantInfo) {
	if r.srv.webhooks == nil || p.hidden() {
		return
	}
	r.srv.webhooks.Notify(&livekit.WebhookEvent{Event: event, Room: r.infoLocked(), Participant: proto.CloneOf(info)})
}

// trackEventLocked tells that p published or unpublished t.
func (r *Room) trackEventLocked(event string, p *Participant, t *publishedTrack) {
	if r.srv.webhooks == nil || p.hidden() {
		return
	}
	info := p.infoLocked()
	info.Tracks = nil
	r.srv.webhooks.Notify(&livekit.WebhookEvent{Event: event, Room: r.infoLocked(), Participant: proto.CloneOf(info), Track: proto.CloneOf(t.info)})
}

// Egress: the room's recording, HLS and RTMP outputs are told as LiveKit tells its egresses,
// from broadcast's updates (broadcast.Config.OnEgress): egress_started as the output starts,
// egress_updated at each change (active once media reaches ffmpeg; starting again, with the
// error, while a failed ffmpeg is restarted; ending when asked to stop), egress_ended once
// complete or failed.

// egressStatuses are LiveKit's words for where an output stands. A failed ffmpeg being
// restarted is starting again: the error says why.
var egressStatuses = map[broadcast.EgressStatus]livekit.EgressStatus{
	broadcast.EgressStarting:   livekit.EgressStatus_EGRESS_STARTING,
	broadcast.EgressActive:     livekit.EgressStatus_EGRESS_ACTIVE,
	broadcast.EgressRestarting: livekit.EgressStatus_EGRESS_STARTING,
	broadcast.EgressEnding:     livekit.EgressStatus_EGRESS_ENDING,
	broadcast.EgressComplete:   livekit.EgressStatus_EGRESS_COMPLETE,
	broadcast.EgressFailed:     livekit.EgressStatus_EGRESS_FAILED,
}

// egressChanged is broadcast's OnEgress: it runs under the output's lock, and only queues.
func (r *Room) egressChanged(u broadcast.EgressUpdate) {
	event := lkwebhook.EventEgressUpdated
	switch {
	case u.Status == broadcast.EgressStarting && u.Restarts == 0:
		event = lkwebhook.EventEgressStarted
	case u.Ended():
		event = lkwebhook.EventEgressEnded
	}
	r.srv.webhooks.Notify(&livekit.WebhookEvent{Event: event, EgressInfo: r.egressInfo(u)})
}

// egressRefused tells that an output of kind could not start: egress_ended, failed, with why.
func (r *Room) egressRefused(kind string, err error) {
	if r.srv.webhooks == nil {
		return
	}
	now := time.Now()
	u := broadcast.EgressUpdate{ID: newSID(""), Kind: kind, Status: broadcast.EgressFailed, Error: err.Error(), StartedAt: now, EndedAt: now}
	r.srv.webhooks.Notify(&livekit.WebhookEvent{Event: lkwebhook.EventEgressEnded, EgressInfo: r.egressInfo(u)})
}

// egressInfo is an output's update as LiveKit describes an egress: times in nanoseconds, the
// recording's files (named by their base name, found at their path), the HLS playlist (on disk,
// and where the server serves it), the RTMP stream (its key hidden).
func (r *Room) egressInfo(u broadcast.EgressUpdate) *livekit.EgressInfo {
	info := &livekit.EgressInfo{
		EgressId:   "EG_" + u.ID,
		RoomId:     r.sid,
		RoomName:   r.name,
		SourceType: livekit.EgressSourceType_EGRESS_SOURCE_TYPE_SDK,
		Status:     egressStatuses[u.Status],
		Error:      u.Error,
		RetryCount: int32(u.Restarts),
		StartedAt:  unixNano(u.StartedAt),
		EndedAt:    unixNano(u.EndedAt),
		UpdatedAt:  time.Now().UnixNano(),
	}
	duration := func(from, to time.Time) int64 {
		if from.IsZero() {
			return 0
		}
		if to.IsZero() {
			to = time.Now()
		}
		return int64(to.Sub(from))
	}
	switch u.Kind {
	case broadcast.EgressRecording:
		for _, f := range u.Files {
			info.FileResults = append(info.FileResults, &livekit.FileInfo{
				Filename: filepath.Base(f.Path), Location: f.Path, Size: f.Size, Duration: int64(f.Duration),
				StartedAt: unixNano(f.StartedAt), EndedAt: unixNano(f.EndedAt),
			})
		}
	case broadcast.EgressHLS:
		info.SegmentResults = []*livekit.SegmentsInfo{{
			PlaylistName: u.Target, PlaylistLocation: "/live/" + url.PathEscape(r.name) + "/" + broadcast.Playlist,
			StartedAt: info.StartedAt, EndedAt: info.EndedAt, Duration: duration(u.StartedAt, u.EndedAt),
		}}
	case broadcast.EgressRTMP:
		stream := &livekit.StreamInfo{Url: u.Target, Error: u.Error, Retries: uint32(u.Restarts),
			StartedAt: info.StartedAt, EndedAt: info.EndedAt, Duration: duration(u.StartedAt, u.EndedAt)}
		switch u.Status {
		case broadcast.EgressRestarting, broadcast.EgressFailed:
			stream.Status = livekit.StreamInfo_FAILED
		case broadcast.EgressComplete:
			stream.Status = livekit.StreamInfo_FINISHED
		}
		info.StreamResults = []*livekit.StreamInfo{stream}
	}
	return info
}

// unixNano is t in nanoseconds since 1970, 0 for the zero time (not yet).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// SittingFacts is what Hemicycle's own events carry, as JSON, in their room's metadata.
type SittingFacts struct {
	Sitting *council.Sitting `json:"sitting,omitempty"` // sitting_opened and sitting_closed
	Quorum  council.Quorum   `json:"quorum"`            // the attendance against the quorum rule, now
	Vote    *VoteFacts       `json:"vote,omitempty"`    // vote_closed
	// Approval is minutes_approved's: the signer (identity, seat, role), when, and the
	// SHA-256 of the Markdown text approved, in its language.
	Approval *council.MinutesApproval `json:"approval,omitempty"`
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

// sittingBefore is what a command may change that webhooks tell: whether the quorum was
// reached (a waived quorum, at a second convocation, is never reached nor lost).
type sittingBefore struct{ reached bool }

func quorumHolds(st *council.State) bool {
	if !st.Session().Opened() {
		return false
	}
	q := st.Quorum()
	return q.Reached && !q.Waived
}

// beforeCommand notes, under the desk's lock, the state a command starts from.
func (s *Server) beforeCommand(st *council.State) sittingBefore {
	if s.webhooks == nil {
		return sittingBefore{}
	}
	return sittingBefore{reached: quorumHolds(st)}
}

// sittingChanged is told by the desk, under its lock (so in the journal's order), of the
// events a command has just applied to st.
func (s *Server) sittingChanged(room string, before sittingBefore, events []council.Event, st *council.State) {
	if s.webhooks == nil {
		return
	}
	sid := ""
	if r, ok := s.Room(room); ok {
		sid = r.sid
	}
	send := func(event string, f SittingFacts) {
		f.Quorum = st.Quorum()
		facts, err := json.Marshal(f)
		if err != nil {
			s.log.Error("webhook facts not encoded", "room", room, "event", event, "err", err)
			return
		}
		s.webhooks.Notify(&livekit.WebhookEvent{Event: event, Room: &livekit.Room{Sid: sid, Name: room, Metadata: string(facts)}})
	}
	for _, ev := range events {
		switch e := ev.(type) {
		case council.SessionOpened:
			send(webhook.SittingOpened, SittingFacts{Sitting: &e.Sitting})
		case council.VoteClosed:
			if v, ok := st.Vote(e.Vote); ok {
				send(webhook.VoteClosed, SittingFacts{Vote: &VoteFacts{ID: v.ID, Item: v.Item, Question: v.Question, Mode: v.Mode, ClosedAt: v.ClosedAt, Result: v.Result}})
			}
		case council.SessionClosed:
			sitting := st.Session().Sitting
			send(webhook.SittingClosed, SittingFacts{Sitting: &sitting})
		case council.MinutesApproved:
			sitting, approvals := st.Session().Sitting, st.MinutesApprovals()
			send(webhook.MinutesApproved, SittingFacts{Sitting: &sitting, Approval: &approvals[len(approvals)-1]}) // e's
		}
	}
	switch now := quorumHolds(st); {
	case now && !before.reached:
		send(webhook.QuorumReached, SittingFacts{})
	case !now && before.reached && st.Session().Opened():
		send(webhook.QuorumLost, SittingFacts{})
	}
}
