package signaling

import (
	"strings"

	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/sfu"
)

// The signalling side of the media plane's congestion control: the priorities the allocator
// serves a weak link's videos in, what it tells the subscriber (StreamStateUpdate) and what
// the publisher is told nobody receives (SubscribedQualityUpdate, dynacast).

// Ranks of a subscriber's videos, best first when its link cannot carry them all.
const (
	rankOthers      = 1
	rankScreenShare = 2
	rankSpeaker     = 3
	rankFloor       = 4 // the floor holder's camera, and the sign-language interpreter's
)

// onStreamState tells the subscriber that the server paused a video it subscribed to, for lack
// of bandwidth, or resumed it, as the LiveKit SDKs expect.
func (p *Participant) onStreamState(d *sfu.DownTrack, active bool) {
	r := p.room
	r.mu.Lock()
	var info *livekit.StreamStateInfo
	for _, s := range p.subs {
		if s.down == d {
			info = &livekit.StreamStateInfo{ParticipantSid: s.track.owner.sid, TrackSid: s.track.info.Sid, State: livekit.StreamState_PAUSED}
			if active {
				info.State = livekit.StreamState_ACTIVE
			}
			break
		}
	}
	r.mu.Unlock()
	if info == nil {
		return // unsubscribed meanwhile
	}
	p.log.Debug("stream state", "track", info.TrackSid, "state", info.State.String())
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_StreamStateUpdate{StreamStateUpdate: &livekit.StreamStateUpdate{
		StreamStates: []*livekit.StreamStateInfo{info},
	}}})
}

// onLayersWanted tells a publisher which simulcast layers of one of its videos some subscriber
// receives, so that its client stops encoding and sending the others.
func (p *Participant) onLayersWanted(mt *sfu.PublishedTrack, best sfu.Quality) {
	r := p.room
	r.mu.Lock()
	var sid string
	for _, t := range p.tracks {
		if t.media == mt {
			sid = t.info.Sid
			break
		}
	}
	r.mu.Unlock()
	if sid == "" {
		return
	}
	var qualities []*livekit.SubscribedQuality
	for _, q := range []struct {
		lk  livekit.VideoQuality
		sfu sfu.Quality
	}{{livekit.VideoQuality_LOW, sfu.QualityLow}, {livekit.VideoQuality_MEDIUM, sfu.QualityMedium}, {livekit.VideoQuality_HIGH, sfu.QualityHigh}} {
		qualities = append(qualities, &livekit.SubscribedQuality{Quality: q.lk, Enabled: best != sfu.QualityOff && q.sfu <= best})
	}
	codec := strings.ToLower(strings.TrimPrefix(strings.ToLower(mt.MimeType()), "video/"))
	p.log.Debug("dynacast", "track", sid, "best", best)
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_SubscribedQualityUpdate{SubscribedQualityUpdate: &livekit.SubscribedQualityUpdate{
		TrackSid:            sid,
		SubscribedQualities: qualities,
		SubscribedCodecs:    []*livekit.SubscribedCodec{{Codec: codec, Qualities: qualities}},
	}}})
}

// updatePriorities ranks every subscription of the room for the allocators: the floor
// holder's camera and the interpreter's first, then the active speakers', then screen shares,
// then the others; within a rank, the larger the client shows a video, the sooner it is served.
func (r *Room) updatePriorities() {
	holder := 0
	if d := r.srv.delib; d != nil {
		if dk := d.existingDesk(r.name); dk != nil {
			dk.mu.Lock()
			if dk.state != nil && dk.state.Session().Opened() {
				holder, _, _ = dk.state.FloorHolder()
			}
			dk.mu.Unlock()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sub := range r.participants {
		for _, s := range sub.subs {
			if s.track.info.Type != livekit.TrackType_VIDEO {
				continue
			}
			owner := s.track.owner
			_, speaking := r.speaking[owner.sid]
			rank := rankOthers
			switch {
			case s.track.info.Source == livekit.TrackSource_CAMERA && (owner.holdsFloor(holder) || owner.claims.Role() == auth.RoleInterpreter):
				rank = rankFloor
			case speaking && s.track.info.Source == livekit.TrackSource_CAMERA:
				rank = rankSpeaker
			case s.track.info.Source == livekit.TrackSource_SCREEN_SHARE:
				rank = rankScreenShare
			}
			s.down.SetPriority(sfu.Priority{Rank: rank, Pixels: s.pixels})
		}
	}
}

// holdsFloor tells whether the participant sits in the seat that has the floor (0: nobody).
func (p *Participant) holdsFloor(seat int) bool {
	return seat != 0 && p.claims.Council != nil && p.claims.Council.Seat == seat
}
