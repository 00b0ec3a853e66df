package sfu

import (
	"fmt"
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// Connection quality. Each PublishedTrack rates the link from its publisher (loss and jitter of
// what arrives), each DownTrack the link to its subscriber (loss, jitter and round trip from the
// subscriber's receiver reports). The caller closes a rating window by asking for the rating,
// once per interval; nothing here runs on a timer or on the forwarding path.

// LinkQuality rates one link, on the scale LiveKit clients show.
type LinkQuality uint8

// The order matters: a lower value is a worse link.
const (
	LinkLost      LinkQuality = iota // nothing arrives any more
	LinkPoor                         // heavy loss or delay
	LinkGood                         // noticeable loss or delay
	LinkExcellent                    // little or none
)

func (q LinkQuality) String() string {
	switch q {
	case LinkLost:
		return "lost"
	case LinkPoor:
		return "poor"
	case LinkGood:
		return "good"
	case LinkExcellent:
		return "excellent"
	}
	return fmt.Sprintf("LinkQuality(%d)", uint8(q))
}

// LinkStats are what one link showed over a rating window.
type LinkStats struct {
	// Expected is the number of packets that should have arrived; Lost those that never did,
	// retransmissions taken into account.
	Expected, Lost uint64
	// Jitter is the interarrival jitter (RFC 3550) at the end of the window.
	Jitter time.Duration
	// RTT is the round-trip time, 0 when unknown.
	RTT time.Duration
	// Silent says that nothing arrived for longer than the silence limit while the far end
	// should be sending: the link is down.
	Silent bool
}

// Scores run from 0 to 100, in the manner of the E-model's R factor.
const (
	maxLinkScore   = 100.0
	excellentAbove = 80.0
	goodAbove      = 40.0
	// minMeasuredScore floors a measured link so that a link which recovers climbs back in a
	// few windows instead of crawling up from zero.
	minMeasuredScore = 20.0
	lostScore        = 0.0

	// Smoothing: a drop is believed quickly, a recovery slowly, so that a flapping link does
	// not flap on screen.
	fallWeight = 0.75
	riseWeight = 0.4

	// silenceLimit is how long a link may carry nothing before it counts as lost. Opus with
	// DTX still sends a packet every 400 ms, and browsers repeat idle screen-share frames
	// every second, so a live sender is never this quiet.
	silenceLimit = 3 * time.Second
	// reportsStaleAfter is how long a subscriber that used to send receiver reports may stop
	// before its link counts as lost. Browsers report on audio only every 2.5 to 7.5 s.
	reportsStaleAfter = 15 * time.Second
)

// linkScore turns one window into a raw score: 100, less a delay penalty and a loss penalty.
// The delay penalty follows the simplified E-model (one way delay taken as half the round trip
// plus twice the jitter; mild up to 160 ms, steep beyond); lossWeight is how many points each
// percent of loss costs the codec.
func linkScore(s LinkStats, lossWeight float64) float64 {
	delay := float64(s.RTT/2+2*s.Jitter) / float64(time.Millisecond)
	penalty := delay / 40
	if delay > 160 {
		penalty = (delay - 120) / 10
	}
	if s.Expected > 0 {
		lost := min(s.Lost, s.Expected)
		penalty += 100 * float64(lost) / float64(s.Expected) * lossWeight
	}
	return max(maxLinkScore-penalty, 0)
}

// RateLink is the scoring rule: from the previous score of a link and what the last window
// showed, the new score and its quality. A silent link is lost at once; a window without
// packets keeps the previous score; otherwise the window's score is blended into the previous
// one, quickly when it is worse, slowly when it is better.
func RateLink(prev float64, s LinkStats, lossWeight float64) (float64, LinkQuality) {
	if s.Silent {
		return lostScore, LinkLost
	}
	score := prev
	if s.Expected > 0 {
		raw := linkScore(s, lossWeight)
		w := riseWeight
		if raw < prev {
			w = fallWeight
		}
		score = max(w*raw+(1-w)*prev, minMeasuredScore)
	}
	return score, qualityOfScore(score)
}

func qualityOfScore(score float64) LinkQuality {
	switch {
	case score > excellentAbove:
		return LinkExcellent
	case score > goodAbove:
		return LinkGood
	}
	return LinkPoor
}

// lossWeight is how many points one percent of loss costs: plain Opus is good up to 2.5 %
// and poor from 7.5 %; RED hides isolated losses, so twice as much; video, whose every lost
// packet damages a frame until the next keyframe, is good up to 2 % and poor from 6 %.
func lossWeight(ck codecKind) float64 {
	switch ck {
	case codecOpus:
		return 8
	case codecRED:
		return 4
	}
	return 10
}

// upRating is a PublishedTrack's rating state, used by the caller of RateUpstream only.
type upRating struct {
	mu                  sync.Mutex
	packets, lost, late uint64 // the counters when the window opened
	score               float64
}

// RateUpstream closes the rating window of the link from the publisher: loss after
// retransmissions and jitter of what arrived since the last call, rtt being the participant's
// round trip if known (the upstream one cannot be measured without the publisher's help). ok
// is false when there is nothing to rate: the track is muted, or was unmuted too recently for
// its media to be judged.
func (p *PublishedTrack) RateUpstream(now time.Time, rtt time.Duration) (q LinkQuality, score float64, ok bool) {
	r := &p.rating
	r.mu.Lock()
	defer r.mu.Unlock()
	packets, lost, late := p.stats.packets.Load(), p.stats.lost.Load(), p.stats.late.Load()
	dPackets, dLost, dLate := packets-r.packets, lost-r.lost, late-r.late
	r.packets, r.lost, r.late = packets, lost, late

	at := now.UnixNano()
	if p.muted.Load() || at-p.unmutedAt.Load() < int64(silenceLimit) {
		r.score = maxLinkScore // a muted track says nothing of the link; start afresh after
		return 0, 0, false
	}
	var s LinkStats
	newest, jitter := p.newestArrival()
	if at-newest >= int64(silenceLimit) {
		s.Silent = true
	} else {
		inOrder := dPackets - min(dLate, dPackets)
		s.Expected = inOrder + dLost
		s.Lost = dLost - min(dLate, dLost) // a late packet is most often a repaired loss
		s.Jitter = rtpDuration(jitter, p.codec.ClockRate)
		s.RTT = rtt
	}
	r.score, q = RateLink(r.score, s, lossWeight(p.ck))
	return q, r.score, true
}

// newestArrival returns when the newest packet of any layer arrived, and the largest jitter of
// the layers, in RTP timestamp units.
func (p *PublishedTrack) newestArrival() (at int64, jitter uint32) {
	for i := range p.layers {
		if l := p.layers[i].Load(); l != nil {
			at = max(at, l.lastAt.Load())
			jitter = max(jitter, l.jitter.Load()>>4)
		}
	}
	return at, jitter
}

// observeJitter folds one in-order packet into the layer's interarrival jitter (RFC 3550,
// 6.4.1), kept times 16 in integers as the RFC's reference code does. Only the layer's reader
// calls it.
func (l *upLayer) observeJitter(ts uint32, now int64, clockRate uint32) {
	// A pause of a second or more (mute, a stalled publisher) is not jitter: start afresh.
	if l.prevArrival != 0 && now-l.prevArrival < int64(time.Second) {
		elapsed := (now - l.prevArrival) * int64(clockRate) / int64(time.Second)
		d := elapsed - int64(int32(ts-l.prevTS))
		if d < 0 {
			d = -d
		}
		d = min(d, int64(clockRate)) // a timestamp jump (a new source) must not swamp the estimate
		j := int64(l.jitterWork)
		l.jitterWork = uint32(j + d - (j+8)>>4)
		// The rater reads it every few seconds: publishing every eighth packet spares the
		// forwarding path an atomic store per packet.
		if l.jitterSeen++; l.jitterSeen%8 == 0 {
			l.jitter.Store(l.jitterWork)
		}
	}
	l.prevArrival, l.prevTS = now, ts
}

// rtpDuration converts RTP timestamp units into time.
func rtpDuration(units uint32, clockRate uint32) time.Duration {
	if clockRate == 0 {
		return 0
	}
	return time.Duration(uint64(units) * uint64(time.Second) / uint64(clockRate))
}

// downReports is what a DownTrack learnt from its subscriber's receiver reports, and its
// rating state. Written by the RTCP reader, read by the caller of RateDownstream.
type downReports struct {
	mu sync.Mutex

	// The latest report block for this DownTrack's SSRC.
	have    bool
	at      int64  // when it arrived, Unix nanoseconds
	highest uint32 // extended highest sequence number received
	lost    int64  // cumulative packets lost
	jitter  uint32 // RTP timestamp units
	rtt     time.Duration
	missing int64 // the DownTrack's own gaps (packets it never sent) when the report arrived

	// The same values when the window opened.
	windowOpen          bool
	winHighest          uint32
	winLost, winMissing int64
	winJitter           uint32 // the largest jitter reported in the window

	sent                uint64 // the DownTrack's packet counter at the last rating
	sendingSince, rated int64  // Unix nanoseconds; sendingSince is 0 while idle
	score               float64
}

// ntpEpochOffset is the number of seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

// ntpShort is the middle 32 bits of the NTP timestamp of t, the unit of LSR and DLSR in
// receiver reports (1/65536 s).
func ntpShort(t time.Time) uint32 { return uint32(ntpTime(t) >> 16) }

// maxReportedRTT discards round trips that can only come from a report referring to an old or
// foreign sender report.
const maxReportedRTT = 10 * time.Second

// reportRTT computes the round trip from a report block received at now: the time since the
// sender report it refers to, less the time the subscriber held it.
func reportRTT(b *rtcp.ReceptionReport, now time.Time) (time.Duration, bool) {
	if b.LastSenderReport == 0 {
		return 0, false
	}
	units := ntpShort(now) - b.LastSenderReport - b.Delay
	rtt := time.Duration(uint64(units) * uint64(time.Second) >> 16)
	if rtt > maxReportedRTT {
		return 0, false
	}
	return rtt, true
}

// observeReport records the subscriber's report block about this DownTrack. missing is the
// DownTrack's own gap count at that moment, so that packets it never sent are not blamed on
// the subscriber's link.
func (r *downReports) observeReport(b *rtcp.ReceptionReport, missing int64, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.have = true
	r.at = now.UnixNano()
	r.highest = b.LastSequenceNumber
	r.lost = int64(int32(b.TotalLost<<8) >> 8) // 24-bit signed: duplicates can make it negative
	r.jitter = b.Jitter
	r.winJitter = max(r.winJitter, b.Jitter)
	r.missing = missing
	if rtt, ok := reportRTT(b, now); ok {
		r.rtt = rtt
	}
	if !r.windowOpen {
		r.windowOpen = true
		r.score = maxLinkScore
		r.openWindow()
	}
}

// maxWindowPackets bounds the packets one window may plausibly expect; a larger jump means the
// subscriber restarted its numbering, and the window is opened again.
const maxWindowPackets = 1 << 20

// rate closes the window. sent is the DownTrack's packet counter now.
func (r *downReports) rate(now time.Time, sent uint64, clockRate uint32, weight float64) (
	q LinkQuality, score float64, rtt time.Duration, ok bool,
) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := now.UnixNano()
	sending := sent != r.sent
	r.sent = sent
	switch {
	case !sending:
		r.sendingSince = 0 // idle: when packets flow again, the wait for reports starts afresh
	case r.sendingSince == 0:
		r.sendingSince = at
	}
	if !r.have {
		return 0, 0, 0, false // this subscriber never reported: no opinion, rather than a guess
	}
	var s LinkStats
	switch {
	case r.at > r.rated:
		expected := int64(int32(r.highest - r.winHighest))
		if expected < 0 || expected > maxWindowPackets {
			r.openWindow()
			return 0, 0, 0, false
		}
		lost := (r.lost - r.winLost) - max(r.missing-r.winMissing, 0)
		s.Expected = uint64(expected)
		s.Lost = uint64(min(max(lost, 0), expected))
		s.Jitter = rtpDuration(r.winJitter, clockRate)
		s.RTT = r.rtt
		r.openWindow()
	case sending && at-max(r.at, r.sendingSince) >= int64(reportsStaleAfter):
		s.Silent = true // still sending, but the reports stopped: the subscriber is gone
	case !sending:
		return 0, 0, 0, false // nothing sent and nothing reported: nothing to judge
	}
	r.rated = at
	r.score, q = RateLink(r.score, s, weight)
	return q, r.score, r.rtt, true
}

// openWindow starts the next window from the latest report.
func (r *downReports) openWindow() {
	r.winHighest, r.winLost, r.winMissing, r.winJitter = r.highest, r.lost, r.missing, r.jitter
}
