package signaling

import (
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/sfu"
)

// qualityInterval is how often every participant's connection is rated, and the length of the
// window each rating covers. LiveKit uses 5 s; we use 2 s because in a sitting the chair must
// see soon that a remote member's connection is going (LOST within about five seconds), while a
// window still holds 100 audio packets (1 % loss resolution) and the smoothing in
// sfu.RateLink keeps one bad window from flapping the indicator. A tick reads a few atomic
// counters per track and sends a message only to those whose view changed.
const qualityInterval = 2 * time.Second

// qualityLoop rates the connections of the room's participants until the room closes.
func (r *Room) qualityLoop() {
	tick := time.NewTicker(qualityInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-tick.C:
			r.rateConnections(now)
		}
	}
}

// participantLinks is what rating one participant needs, gathered under the room's lock.
type participantLinks struct {
	p         *Participant
	signalled bool // its signalling socket is up (not waiting for a resume)
	up        []*sfu.PublishedTrack
	down      []*sfu.DownTrack
}

// rateConnections rates every active participant and sends each participant the ratings it
// has not been told yet: its own and those of the participants it can see (hidden ones, the
// watch-only viewers, are shown to nobody). A rating is sent again only when its quality
// changes, which is all the SDKs act on; a participant that resumes is told everything again.
func (r *Room) rateConnections(now time.Time) {
	r.mu.Lock()
	links := make([]participantLinks, 0, len(r.participants))
	for _, p := range r.participants {
		if p.state != livekit.ParticipantInfo_ACTIVE {
			continue
		}
		l := participantLinks{p: p, signalled: p.conn != nil}
		for _, t := range p.tracks {
			l.up = append(l.up, t.media)
		}
		for _, s := range p.subs {
			l.down = append(l.down, s.down)
		}
		links = append(links, l)
	}
	r.mu.Unlock()

	// Rating reads the media counters under the tracks' own locks, not the room's.
	ratings := make(map[*Participant]*livekit.ConnectionQualityInfo, len(links))
	for _, l := range links {
		ratings[l.p] = rateParticipant(now, l)
	}

	type delivery struct {
		conn *signalConn
		msg  *livekit.SignalResponse
	}
	var out []delivery
	r.mu.Lock()
	var visible []*livekit.ConnectionQualityInfo
	for p, info := range ratings {
		if r.participants[p.identity] != p {
			continue // left while being rated
		}
		p.quality = info
		if !p.hidden() {
			visible = append(visible, info)
		}
	}
	for _, p := range r.participants {
		if p.conn == nil {
			continue // told everything again when it resumes
		}
		var view []*livekit.ConnectionQualityInfo
		switch {
		case !p.hidden():
			view = visible
		case p.quality != nil:
			view = []*livekit.ConnectionQualityInfo{p.quality} // a hidden participant sees only itself
		}
		news, told := qualityNews(p.qualityTold, view)
		p.qualityTold = told
		if len(news) > 0 {
			out = append(out, delivery{p.conn, &livekit.SignalResponse{Message: &livekit.SignalResponse_ConnectionQuality{
				ConnectionQuality: &livekit.ConnectionQualityUpdate{Updates: news},
			}}})
		}
	}
	r.mu.Unlock()
	for _, d := range out {
		d.conn.send(d.msg)
	}
}

// qualityNews returns the ratings whose quality differs from what the participant was told
// (told maps participant sids to the quality last sent), and what it will have been told once
// they are sent. Participants no longer in view are forgotten.
func qualityNews(told map[string]livekit.ConnectionQuality, view []*livekit.ConnectionQualityInfo) (
	news []*livekit.ConnectionQualityInfo, next map[string]livekit.ConnectionQuality,
) {
	next = make(map[string]livekit.ConnectionQuality, len(view))
	for _, info := range view {
		next[info.ParticipantSid] = info.Quality
		if q, ok := told[info.ParticipantSid]; !ok || q != info.Quality {
			news = append(news, info)
		}
	}
	return news, next
}

// linkRating is one rated link of a participant.
type linkRating struct {
	quality sfu.LinkQuality
	score   float64
}

// rateParticipant closes the rating windows of one participant's links and combines them.
func rateParticipant(now time.Time, l participantLinks) *livekit.ConnectionQualityInfo {
	var down, up []linkRating
	var rtt time.Duration
	for _, d := range l.down {
		if q, score, linkRTT, ok := d.RateDownstream(now); ok {
			down = append(down, linkRating{q, score})
			rtt = max(rtt, linkRTT)
		}
	}
	if rtt == 0 {
		// Without receiver reports with a round trip, the client's own measure over the
		// signalling socket (ping_req) stands in.
		rtt = time.Duration(l.p.signalRTT.Load()) * time.Millisecond
	}
	for _, t := range l.up {
		if q, score, ok := t.RateUpstream(now, rtt); ok {
			up = append(up, linkRating{q, score})
		}
	}
	quality, score := combineRatings(up, down)
	if !l.signalled {
		quality, score = livekit.ConnectionQuality_LOST, 0
	}
	return &livekit.ConnectionQualityInfo{ParticipantSid: l.p.sid, Quality: quality, Score: mos(score)}
}

// combineRatings makes one participant's quality from its links, as LiveKit does: the worst of
// them. A participant is LOST when everything it publishes stopped arriving, or when every
// subscriber link stopped reporting; one silent track among live ones (a camera that froze)
// says nothing about the connection and is left out. Without any rated link the connection is
// taken as excellent: it is up, and nothing shows otherwise.
func combineRatings(up, down []linkRating) (livekit.ConnectionQuality, float64) {
	if allLost(up) || allLost(down) {
		return livekit.ConnectionQuality_LOST, 0
	}
	worst := linkRating{sfu.LinkExcellent, 100}
	for _, links := range [][]linkRating{up, down} {
		for _, l := range links {
			if l.quality == sfu.LinkLost {
				continue
			}
			worst.quality = min(worst.quality, l.quality)
			worst.score = min(worst.score, l.score)
		}
	}
	return protoQuality(worst.quality), worst.score
}

func allLost(links []linkRating) bool {
	for _, l := range links {
		if l.quality != sfu.LinkLost {
			return false
		}
	}
	return len(links) > 0
}

func protoQuality(q sfu.LinkQuality) livekit.ConnectionQuality {
	switch q {
	case sfu.LinkLost:
		return livekit.ConnectionQuality_LOST
	case sfu.LinkPoor:
		return livekit.ConnectionQuality_POOR
	case sfu.LinkGood:
		return livekit.ConnectionQuality_GOOD
	}
	return livekit.ConnectionQuality_EXCELLENT
}

// mos turns a 0-100 score (an E-model R factor) into the mean opinion score LiveKit sends in
// ConnectionQualityInfo.score, from 1 to 4.5, with the ITU-T G.107 conversion.
func mos(r float64) float32 {
	switch {
	case r <= 0:
		return 1
	case r >= 100:
		return 4.5
	}
	// The cubic dips just below 1 for the lowest scores; the scale starts at 1.
	return float32(max(1, 1+0.035*r+7e-6*r*(r-60)*(100-r)))
}
