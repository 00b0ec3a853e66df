package sfu

import (
	"math"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

func TestRateLink(t *testing.T) {
	video, opus, red := lossWeight(codecVP8), lossWeight(codecOpus), lossWeight(codecRED)
	for _, tc := range []struct {
		name   string
		prev   float64
		s      LinkStats
		weight float64
		want   LinkQuality
		score  float64 // checked when not NaN
	}{
		{"clean link", maxLinkScore, LinkStats{Expected: 500}, video, LinkExcellent, maxLinkScore},
		{"no packets keeps the previous score", 55, LinkStats{}, video, LinkGood, 55},
		{"silent link is lost at once", maxLinkScore, LinkStats{Silent: true}, video, LinkLost, lostScore},
		{"silent wins over packets counted", maxLinkScore, LinkStats{Expected: 100, Silent: true}, opus, LinkLost, lostScore},
		// 1% video loss: raw 90, blended from 100 at the falling weight: 92.5.
		{"1% video loss stays excellent", maxLinkScore, LinkStats{Expected: 1000, Lost: 10}, video, LinkExcellent, 92.5},
		// 4% video loss: raw 60, 0.75*60+0.25*100 = 70.
		{"4% video loss is good", maxLinkScore, LinkStats{Expected: 1000, Lost: 40}, video, LinkGood, 70},
		// 25% Opus loss: raw 0 (floored), 0.25*100 = 25.
		{"25% audio loss is poor in one window", maxLinkScore, LinkStats{Expected: 100, Lost: 25}, opus, LinkPoor, 25},
		// The same loss with RED costs half: raw 0 still (100-100), so poor too.
		{"25% audio loss with RED is poor too", maxLinkScore, LinkStats{Expected: 100, Lost: 25}, red, LinkPoor, 25},
		// 5% with RED: raw 80; 0.75*80+25 = 85.
		{"5% audio loss with RED stays excellent", maxLinkScore, LinkStats{Expected: 100, Lost: 5}, red, LinkExcellent, 85},
		// 5% without RED: raw 60; 0.75*60+25 = 70.
		{"5% audio loss without RED is good", maxLinkScore, LinkStats{Expected: 100, Lost: 5}, opus, LinkGood, 70},
		{"measured score never drops below the floor", 25, LinkStats{Expected: 100, Lost: 100}, opus, LinkPoor, minMeasuredScore},
		{"lost count above expected is capped", maxLinkScore, LinkStats{Expected: 10, Lost: 50}, video, LinkPoor, 25},
		// Recovery is slow: from the floor, a clean window gives 0.4*100+0.6*20 = 52.
		{"recovery climbs one step at a time", minMeasuredScore, LinkStats{Expected: 100}, opus, LinkGood, 52},
		{"recovery from lost starts low", lostScore, LinkStats{Expected: 100}, opus, LinkPoor, 40},
		// Delay: RTT 100 ms and jitter 10 ms make 70 ms one way: 1.75 points off.
		{"moderate delay is excellent", maxLinkScore, LinkStats{Expected: 100, RTT: 100 * time.Millisecond, Jitter: 10 * time.Millisecond}, opus, LinkExcellent, 100 - 0.75*1.75},
		// RTT 1 s and jitter 100 ms: 700 ms one way, (700-120)/10 = 58 points off: raw 42,
		// which is good at best however long it lasts.
		{"long delay is good at best", maxLinkScore, LinkStats{Expected: 100, RTT: time.Second, Jitter: 100 * time.Millisecond}, opus, LinkGood, 0.75*42 + 25},
		{"long delay settles at good", 42, LinkStats{Expected: 100, RTT: time.Second, Jitter: 100 * time.Millisecond}, opus, LinkGood, 42},
		// RTT 1.5 s and jitter 200 ms: 1150 ms one way, 103 points off: poor without any loss.
		{"very long delay is poor", maxLinkScore, LinkStats{Expected: 100, RTT: 1500 * time.Millisecond, Jitter: 200 * time.Millisecond}, opus, LinkPoor, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			score, q := RateLink(tc.prev, tc.s, tc.weight)
			if q != tc.want {
				t.Errorf("quality %s (score %.2f), want %s", q, score, tc.want)
			}
			if !math.IsNaN(tc.score) && math.Abs(score-tc.score) > 1e-9 {
				t.Errorf("score %.4f, want %.4f", score, tc.score)
			}
		})
	}
}

func TestQualityThresholds(t *testing.T) {
	for _, tc := range []struct {
		score float64
		want  LinkQuality
	}{{100, LinkExcellent}, {80.01, LinkExcellent}, {80, LinkGood}, {40.01, LinkGood}, {40, LinkPoor}, {0, LinkPoor}} {
		if got := qualityOfScore(tc.score); got != tc.want {
			t.Errorf("score %v: %s, want %s", tc.score, got, tc.want)
		}
	}
}

// feed sends n audio packets of layer l from sequence number sn, skipping those drop says,
// 20 ms apart from start.
func feed(t *testing.T, p *PublishedTrack, l *upLayer, sn uint16, n int, start time.Time, drop func(i int) bool) time.Time {
	t.Helper()
	pkt := &inPacket{}
	at := start
	for i := 0; i < n; i++ {
		at = start.Add(time.Duration(i) * 20 * time.Millisecond)
		if drop != nil && drop(i) {
			continue
		}
		s := sn + uint16(i)
		p.handle(l, pkt, rawPacket(t, 111, s, uint32(s)*960, l.ssrc, false, []byte{0xfc, 0xff, 0xfe}), at.UnixNano())
	}
	return at
}

func TestRateUpstream(t *testing.T) {
	p, layers := testTrack(t, opusCodec, webrtc.RTPCodecTypeAudio, nil, nil, "")
	start := time.Now()

	// A clean window at an even pace: excellent, and no jitter to speak of.
	last := feed(t, p, layers[0], 0, 100, start, nil)
	q, score, ok := p.RateUpstream(last, 0)
	if !ok || q != LinkExcellent || score != maxLinkScore {
		t.Fatalf("clean window: %s %.1f ok=%v, want excellent 100", q, score, ok)
	}
	if _, j := p.newestArrival(); j != 0 {
		t.Errorf("jitter %d for packets sent exactly at their pace, want 0", j)
	}

	// A quarter of the packets lost: poor in one window.
	last = feed(t, p, layers[0], 100, 100, last.Add(20*time.Millisecond), func(i int) bool { return i%4 == 1 })
	if q, score, ok = p.RateUpstream(last, 0); !ok || q != LinkPoor {
		t.Fatalf("25%% loss: %s %.1f ok=%v, want poor", q, score, ok)
	}

	// Losses repaired by retransmissions (the missing packets arrive late) are no loss.
	p2, l2 := testTrack(t, opusCodec, webrtc.RTPCodecTypeAudio, nil, nil, "")
	last2 := feed(t, p2, l2[0], 0, 100, start, func(i int) bool { return i%4 == 1 })
	pkt := &inPacket{}
	for i := 1; i < 100; i += 4 {
		p2.handle(l2[0], pkt, rawPacket(t, 111, uint16(i), uint32(i)*960, l2[0].ssrc, false, []byte{1}), last2.UnixNano())
	}
	if q, _, ok = p2.RateUpstream(last2, 0); !ok || q != LinkExcellent {
		t.Errorf("repaired losses: %s ok=%v, want excellent", q, ok)
	}

	// Media stops while unmuted: lost once the silence lasts.
	if q, _, ok = p.RateUpstream(last.Add(silenceLimit/2), 0); !ok || q == LinkLost {
		t.Errorf("a short pause: %s ok=%v, want a rating that is not lost", q, ok)
	}
	if q, _, ok = p.RateUpstream(last.Add(silenceLimit+time.Millisecond), 0); !ok || q != LinkLost {
		t.Errorf("media stopped: %s ok=%v, want lost", q, ok)
	}

	// Muted: nothing to rate. Just unmuted: nothing yet, however long the track was quiet.
	p.SetMuted(true)
	if _, _, ok = p.RateUpstream(last.Add(time.Minute), 0); ok {
		t.Error("a muted track was rated")
	}
	p.SetMuted(false)
	if _, _, ok = p.RateUpstream(time.Now(), 0); ok {
		t.Error("a track unmuted a moment ago was rated before its media could resume")
	}
	// The media resumes once the grace after the unmute is over; numbering goes on.
	resumed := feed(t, p, layers[0], 200, 10, later(last, time.Now()).Add(silenceLimit), nil)
	if q, score, ok = p.RateUpstream(resumed, 0); !ok || q != LinkExcellent || score != maxLinkScore {
		t.Errorf("after unmute: %s %.1f ok=%v, want a fresh excellent 100", q, score, ok)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func TestUpstreamJitter(t *testing.T) {
	p, layers := testTrack(t, opusCodec, webrtc.RTPCodecTypeAudio, nil, nil, "")
	pkt := &inPacket{}
	start := time.Now()
	// Packets 20 ms apart in media time, arriving alternately 10 ms early and 10 ms late:
	// each transit difference is 20 ms (960 units), which the estimator approaches.
	for i := 0; i < 500; i++ {
		skew := 10 * time.Millisecond
		if i%2 == 0 {
			skew = -skew
		}
		at := start.Add(time.Duration(i)*20*time.Millisecond + skew)
		p.handle(layers[0], pkt, rawPacket(t, 111, uint16(i), uint32(i)*960, layers[0].ssrc, false, []byte{1}), at.UnixNano())
	}
	_, j := p.newestArrival()
	if got := rtpDuration(j, 48000); got < 19*time.Millisecond || got > 21*time.Millisecond {
		t.Errorf("jitter %v, want about 20ms", got)
	}
}

// block builds a receiver report block as a subscriber would send it.
func block(ssrc, highest uint32, lost int32, jitter uint32) rtcp.ReceptionReport {
	return rtcp.ReceptionReport{SSRC: ssrc, LastSequenceNumber: highest, TotalLost: uint32(lost) & 0xffffff, Jitter: jitter}
}

// sendRR hands the DownTrack a compound RTCP packet carrying the blocks, as pion does.
func sendRR(t *testing.T, d *DownTrack, blocks ...rtcp.ReceptionReport) {
	t.Helper()
	raw, err := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1, Reports: blocks}})
	if err != nil {
		t.Fatal(err)
	}
	d.handleRTCP(raw)
}

// forwardVideo sends packets through the DownTrack, skipping the sequence numbers skip says.
func forwardVideo(t *testing.T, p *PublishedTrack, l *upLayer, from, to uint16, skip func(uint16) bool) {
	t.Helper()
	pkt := &inPacket{}
	for sn := from; sn < to; sn++ {
		if skip != nil && skip(sn) {
			continue
		}
		p.handle(l, pkt, rawPacket(t, 96, sn, uint32(sn)*3000, l.ssrc, false, vp8Frame(sn == 0, byte(sn))), time.Now().UnixNano())
	}
}

func TestRateDownstream(t *testing.T) {
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, nil, "")
	d := bindDownTrack(t, p, &recordWriter{}, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	now := time.Now()

	forwardVideo(t, p, layers[0], 0, 100, nil)
	if _, _, _, ok := d.RateDownstream(now); ok {
		t.Fatal("rated before the subscriber sent any report")
	}

	// First report opens the window; a report about another stream is ignored.
	sendRR(t, d, block(999, 5000, 4000, 0), block(4242, 99, 0, 90))
	if q, _, _, ok := d.RateDownstream(now); !ok || q != LinkExcellent {
		t.Fatalf("first report: %s ok=%v, want excellent", q, ok)
	}

	// 100 more packets, the subscriber lost 30 of them: poor.
	forwardVideo(t, p, layers[0], 100, 200, nil)
	sendRR(t, d, block(4242, 199, 30, 90))
	if q, _, _, ok := d.RateDownstream(now.Add(2 * time.Second)); !ok || q != LinkPoor {
		t.Fatalf("30%% loss reported: %s ok=%v, want poor", q, ok)
	}

	// Upstream loss is forwarded as gaps; the subscriber reports them lost, but its link is
	// not to blame.
	d2 := bindDownTrack(t, p, &recordWriter{}, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	p.handle(layers[0], &inPacket{}, rawPacket(t, 96, 200, 200*3000, layers[0].ssrc, false, vp8Frame(true, 0)), time.Now().UnixNano())
	sendRR(t, d2, block(4242, 0, 0, 0))
	d2.RateDownstream(now)
	forwardVideo(t, p, layers[0], 201, 301, func(sn uint16) bool { return sn%5 == 0 }) // 20 never arrive
	d2.mu.Lock()
	missing, lastSN := d2.missing, d2.munger.lastSN
	d2.mu.Unlock()
	if missing != 19 {
		t.Fatalf("missing = %d, want 19 gaps in what was sent (300 is the last and was skipped)", missing)
	}
	sendRR(t, d2, block(4242, uint32(lastSN), 19, 0))
	if q, _, _, ok := d2.RateDownstream(now.Add(2 * time.Second)); !ok || q != LinkExcellent {
		t.Errorf("only upstream gaps reported lost: %s ok=%v, want excellent", q, ok)
	}

	// No new report but still sending: the previous rating holds until the reports are stale.
	forwardVideo(t, p, layers[0], 301, 310, nil)
	q0, s0, _, _ := d.RateDownstream(now.Add(3 * time.Second))
	forwardVideo(t, p, layers[0], 310, 320, nil)
	if q, s, _, ok := d.RateDownstream(now.Add(4 * time.Second)); !ok || q != q0 || s != s0 {
		t.Errorf("no new report: %s %.1f ok=%v, want the previous %s %.1f", q, s, ok, q0, s0)
	}
	// (Sending has gone on since the window at 2 s; the last report came at the start.)
	forwardVideo(t, p, layers[0], 320, 330, nil)
	if q, _, _, ok := d.RateDownstream(now.Add(2*time.Second + reportsStaleAfter)); !ok || q != LinkLost {
		t.Errorf("reports stopped while sending: %s ok=%v, want lost", q, ok)
	}
	// Idle (nothing sent): no opinion, and no blame once sending starts again.
	if _, _, _, ok := d.RateDownstream(now.Add(time.Minute)); ok {
		t.Error("rated while nothing was sent and nothing reported")
	}
	forwardVideo(t, p, layers[0], 330, 340, nil)
	if q, _, _, ok := d.RateDownstream(now.Add(time.Minute + 2*time.Second)); ok && q == LinkLost {
		t.Error("lost right after sending resumed, before the subscriber had time to report")
	}
}

func TestReportRTT(t *testing.T) {
	now := time.Now()
	sentSR := now.Add(-150 * time.Millisecond)
	held := 50 * time.Millisecond
	b := rtcp.ReceptionReport{LastSenderReport: ntpShort(sentSR), Delay: uint32(held * 65536 / time.Second)}
	rtt, ok := reportRTT(&b, now)
	if !ok || rtt < 99*time.Millisecond || rtt > 101*time.Millisecond {
		t.Errorf("rtt %v ok=%v, want 100ms (150ms since the report, 50ms held)", rtt, ok)
	}
	if _, ok := reportRTT(&rtcp.ReceptionReport{}, now); ok {
		t.Error("an RTT from a report that names no sender report")
	}
	b.LastSenderReport = ntpShort(now.Add(time.Second)) // from the future: garbage
	if _, ok := reportRTT(&b, now); ok {
		t.Error("an RTT from a sender report not sent yet")
	}
	// The NTP short form: the low 16 bits of the seconds, the high 16 of the fraction.
	at := time.Unix(1_700_000_000, int64(time.Second/2))
	if got, want := ntpShort(at), uint32((1_700_000_000+ntpEpochOffset)&0xffff)<<16|0x8000; got != want {
		t.Errorf("ntpShort = %#x, want %#x", got, want)
	}
}

func TestForwardingStaysAllocationFree(t *testing.T) {
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, nil, "")
	for i := 0; i < 3; i++ {
		bindDownTrack(t, p, discardWriter{}, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	}
	raw := rawPacket(t, 96, 0, 0, layers[0].ssrc, false, vp8Frame(true, 0))
	pkt := &inPacket{}
	p.handle(layers[0], pkt, raw, time.Now().UnixNano())
	sn := uint16(0)
	allocs := testing.AllocsPerRun(1000, func() {
		sn += 2 // a gap each time: the DownTracks count it
		raw[2], raw[3] = byte(sn>>8), byte(sn)
		p.handle(layers[0], pkt, raw, time.Now().UnixNano())
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per forwarded packet, want 0", allocs)
	}
}
