package sfu

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// The stream allocator of one subscriber connection shares the bandwidth estimate (bwe.go)
// among the video tracks the subscriber receives. Audio is reserved first and never paused:
// a member who cannot see can still follow the debate, one who cannot hear cannot. What
// retransmissions spend is taken off next. The videos are then served in priority order
// (Priority): each gets its lowest layer if it fits, else it is paused (the client is told with
// a StreamStateUpdate); what is left raises the served ones, best first, up to the layer the
// client asked for. When something was left out, the allocator probes: it pads the stream of
// one video for a second towards the rate that would let it in, and the estimate follows if
// the padding arrived without queueing.

// Priority orders a subscriber's videos when its link cannot carry them all. The signalling
// layer sets it: Rank first (the floor holder's camera and a pinned interpreter above the active
// speaker, above a screen share, above the others), then the size the client shows the video
// at, in pixels.
type Priority struct {
	Rank   int
	Pixels int
}

const (
	allocInterval = 500 * time.Millisecond // a fresh allocation at least this often
	linkTick      = 100 * time.Millisecond
	rtxSmoothing  = time.Second // the retransmission rate's averaging time
	probeTick     = 20 * time.Millisecond
	probeDuration = time.Second
	probeStep     = 1.5 // a probe aims at most this far above the estimate
	// After a probe the path carried, the next one aims this far: a link that was just lifted
	// (a home line freed by another user) is found in a few probes, not in one per video.
	probeStreakStep = 2.0
	probeMinGap     = 500 * time.Millisecond
	// After failed probes. Short enough that a link freed while every video is paused is
	// noticed within two seconds; each failed probe stops at the first queueing, so the audio
	// it shares the path with loses nothing.
	probeMaxGap    = 2 * time.Second
	resumeMargin   = 1.15   // a paused video resumes only with this much room, against flapping
	minLayerCost   = 50_000 // bits per second assumed for a layer not measured yet
	rtxShare       = 0.15   // of the estimate, at most, for retransmissions
	minRTXBudget   = 64_000
	paddingPayload = 240 // bytes of padding per probe packet
)

// lossyPathLoss is the share of packets lost without queueing from which resends go out in
// several copies.
const lossyPathLoss = 0.05

// Copies of a resend on a lossy path: as many as make a resend lost about once in a thousand
// (residualResendLoss), at most maxResendCopies. Each lost resend costs the browser a round
// trip before it asks again; at 10 % loss, two copies still left about one video freeze in 30 s.
const (
	residualResendLoss = 0.001
	maxResendCopies    = 3
)

// resendCopies is how many copies of each resend go out on a path that loses loss of its
// packets at random; 1 on any other path.
func resendCopies(loss float64, lossy bool) int {
	k := 1
	for lossy && k < maxResendCopies && math.Pow(loss, float64(k)) > residualResendLoss {
		k++
	}
	return k
}

// retransmitShare is the part of the estimate retransmissions may take. On a congested path
// little (rtxShare): resends add to the queue that lost the packets. On a path that loses at
// random with empty queues, what it takes to repair every loss with its copies and once more
// (a packet skipped for want of budget is a frame no one can decode until the next keyframe),
// up to 40 %.
func retransmitShare(st BWEState, copies int) float64 {
	if copies <= 1 {
		return rtxShare
	}
	return min(max(rtxShare, float64(copies+1)*st.Loss), 0.4)
}

// downlink is the congestion control of one subscriber connection: estimate, allocation,
// retransmission budget, probing.
type downlink struct {
	t   *Transport
	bwe *bwe
	log *slog.Logger
	// off leaves every video as the client asked (Config.DisableAllocation): the estimate is
	// still kept and exported, nothing is paused.
	off bool

	rtxTokens atomic.Int64 // bytes retransmissions may still spend
	rtxBytes  atomic.Uint64
	// copies: when the path loses packets while its queues stay empty (poor Wi-Fi, a long
	// copper line), not for want of room. A resend is then lost as often as the original,
	// and the browser asks again only after a round trip it cannot measure on a receive-only
	// connection (libwebrtc assumes 100 ms): enough for a video to freeze. So each resend
	// goes out in copies (resendCopies, DownTrack.retransmit), within the same budget; 1
	// on any other path.
	copies atomic.Int32

	mu      sync.Mutex // the fields below; taken by the allocator goroutine and by readers of the state
	avail   float64    // after audio and retransmissions, at the last allocation
	paused  int        // videos paused at the last allocation
	deficit float64    // what the videos left out or lowered would need in addition

	// Only the allocator goroutine touches these.
	lastAlloc   int64
	lastEst     float64
	lastRTX     uint64
	lastRTXAt   int64
	rtxRate     float64 // bits per second, averaged (allocate)
	usage       float64 // what the allocation sends, audio included
	probing     bool
	probeGoal   float64
	probeEnd    int64
	probeAt     int64 // no probe before this
	probeGap    time.Duration
	probeStreak int     // probes in a row that the path carried
	probeCredit float64 // padding bytes owed by the probe
	probeOwed   float64 // padding bytes the probe meant to send, in all
	probeSent   float64 // and those it did
	lastTick    int64
}

func newDownlink(t *Transport, off bool) *downlink {
	return &downlink{t: t, bwe: newBWE(time.Now()), log: t.log, off: off, probeGap: probeMinGap}
}

// spendRetransmit takes one packet from the retransmission budget; false when it is spent.
func (l *downlink) spendRetransmit() bool { return l.rtxTokens.Load() > 0 }

// retransmitted counts a packet resent against the budget and the estimate.
func (l *downlink) retransmitted(n int) {
	l.rtxTokens.Add(-int64(n))
	l.rtxBytes.Add(uint64(n))
}

// run allocates and probes until ctx ends.
func (l *downlink) run(ctx context.Context) {
	timer := time.NewTimer(linkTick)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		l.tick(time.Now().UnixNano())
		if l.probing {
			timer.Reset(probeTick)
		} else {
			timer.Reset(linkTick)
		}
	}
}

func (l *downlink) tick(now int64) {
	dt := time.Duration(now - l.lastTick)
	if l.lastTick == 0 || dt > time.Second {
		dt = linkTick
	}
	l.lastTick = now
	st := l.bwe.state(now)

	lossy := st.Loss >= lossyPathLoss && st.QueueingDelay < clearDelay && !st.Congested
	copies := resendCopies(st.Loss, lossy)
	l.copies.Store(int32(copies))
	budget := max(retransmitShare(st, copies)*st.Estimate, minRTXBudget) / 8 // bytes per second
	tokens := l.rtxTokens.Load() + int64(budget*dt.Seconds())
	l.rtxTokens.Store(min(tokens, int64(budget/4))) // a quarter second of budget, at most

	changed := l.lastEst == 0 || st.Estimate < l.lastEst*0.95 || st.Estimate > l.lastEst*1.05
	if changed || now-l.lastAlloc >= int64(allocInterval) {
		l.allocate(now, st)
	}
	l.probe(now, dt, st)
}

// allocation is one video's share in an allocation.
type allocation struct {
	d       *DownTrack
	prio    Priority
	wish    int8 // the client's ceiling
	layer   int8 // chosen; -1 paused
	costs   [maxLayers]float64
	present [maxLayers]bool
	paused  bool // before this allocation
}

func (l *downlink) allocate(now int64, st BWEState) {
	// The retransmission rate, measured over 100 ms at least (a probe's end allocates again
	// at once, and a rate over no time, 0/0, would make every comparison below false and pause
	// every video) and averaged over about rtxSmoothing: resends come in bursts (a loss burst,
	// a keyframe repaired), and a video paused at each burst and resumed after it, waiting
	// each time for a keyframe, is frozen more than one left alone.
	if rtx := l.rtxBytes.Load(); l.lastRTXAt == 0 {
		l.lastRTX, l.lastRTXAt = rtx, now
	} else if dt := time.Duration(now - l.lastRTXAt); dt >= linkTick {
		measured := float64(rtx-l.lastRTX) * 8 / dt.Seconds()
		l.rtxRate += (1 - math.Exp(-dt.Seconds()/rtxSmoothing.Seconds())) * (measured - l.rtxRate)
		l.lastRTX, l.lastRTXAt = rtx, now
	}
	rtxRate := l.rtxRate
	l.lastAlloc, l.lastEst = now, st.Estimate

	var audio float64
	var videos []allocation
	for _, d := range l.t.boundDownTracks() {
		if d.track.kind == webrtc.RTPCodecTypeAudio {
			if !d.track.muted.Load() {
				audio += d.track.rates.rate(d.track, 0, now)
			}
			continue
		}
		a, ok := d.allocationInput(now)
		if ok {
			videos = append(videos, a)
		}
	}
	avail := st.Estimate - audio - min(rtxRate, retransmitShare(st, int(l.copies.Load()))*st.Estimate)
	slices.SortFunc(videos, func(a, b allocation) int {
		if c := cmp.Compare(b.prio.Rank, a.prio.Rank); c != 0 {
			return c
		}
		if c := cmp.Compare(b.prio.Pixels, a.prio.Pixels); c != 0 {
			return c
		}
		// Between equals, the ones flowing keep their place: taking turns would make every
		// video wait for a keyframe and none be seen.
		if a.paused != b.paused {
			if a.paused {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.d.id, b.d.id)
	})
	left := avail
	if l.off || !st.Fed {
		left = 1e12
	}
	// Everyone's lowest layer first, in priority order.
	for i := range videos {
		a := &videos[i]
		a.layer = -1
		low := a.lowest()
		if low < 0 {
			continue
		}
		need := a.costs[low]
		if a.paused {
			need *= resumeMargin
		}
		if need <= left {
			a.layer = low
			left -= a.costs[low]
		}
	}
	// Then raise them, in the same order, as far as what is left allows; but a video is not
	// raised with the room that one as important, left paused, would resume in: a member sees
	// every colleague small before seeing one large and another not at all.
	for i := range videos {
		a := &videos[i]
		if a.layer < 0 {
			continue
		}
		room := left
		for j := range videos {
			if b := &videos[j]; b.layer < 0 && b.prio.Rank >= a.prio.Rank {
				if low := b.lowest(); low >= 0 {
					room -= b.costs[low] * resumeMargin
				}
			}
		}
		for up := a.wish; up > a.layer; up-- {
			if a.present[up] && a.costs[up]-a.costs[a.layer] <= room {
				left -= a.costs[up] - a.costs[a.layer]
				a.layer = up
				break
			}
		}
	}
	var deficit float64
	paused := 0
	usage := audio
	for i := range videos {
		a := &videos[i]
		top := a.highest()
		switch {
		case a.layer < 0:
			paused++
			if low := a.lowest(); low >= 0 {
				deficit += a.costs[low] * resumeMargin
			}
		case top > a.layer:
			deficit += a.costs[top] - a.costs[a.layer]
		}
		if a.layer >= 0 {
			usage += a.costs[a.layer]
		}
		reason := "fits"
		if a.layer < a.wish {
			reason = "does not fit"
		}
		if a.d.applyAllocation(a.layer) {
			state := "active"
			if a.layer < 0 {
				state = "paused"
			}
			l.log.Debug("stream allocation", "track", a.d.track.id, "state", state, "layer", a.layer, "wish", a.wish,
				"reason", reason, "rank", a.prio.Rank, "layer_costs", a.costs, "estimate", int(st.Estimate), "available", int(avail), "audio", int(audio),
				"retransmissions", int(rtxRate), "queueing_delay", st.QueueingDelay, "loss", st.Loss)
			if a.layer < 0 != a.paused {
				l.t.streamStateChanged(a.d, a.layer >= 0)
			}
			if a.layer < 0 {
				a.d.announce()
			}
		}
		a.d.track.updateWanted(now)
	}
	l.usage = usage
	l.mu.Lock()
	l.avail, l.paused, l.deficit = avail, paused, deficit
	l.mu.Unlock()
}

// lowest and highest are the allocation's bounds: the lowest layer published, and the best one
// the client takes; -1 when the track has no layer yet.
func (a *allocation) lowest() int8 {
	for i := int8(0); i <= a.wish; i++ {
		if a.present[i] {
			return i
		}
	}
	for i := a.wish + 1; i < maxLayers; i++ {
		if a.present[i] {
			return i
		}
	}
	return -1
}

func (a *allocation) highest() int8 {
	for i := a.wish; i >= 0; i-- {
		if a.present[i] {
			return i
		}
	}
	return a.lowest()
}

// allocationInput describes the DownTrack for the allocator; ok is false for a video the client
// disabled itself, which costs nothing and is not the allocator's to report.
func (d *DownTrack) allocationInput(now int64) (allocation, bool) {
	d.mu.Lock()
	a := allocation{d: d, prio: d.priority, wish: d.maxLayer, paused: d.allocPaused}
	off := d.paused || d.maxLayer < 0 || d.writer == nil
	d.mu.Unlock()
	if off || d.track.muted.Load() {
		return a, false
	}
	for i := int8(0); i < maxLayers; i++ {
		if d.track.layerAt(i) != nil {
			a.present[i] = true
			a.costs[i] = max(d.track.rates.rate(d.track, i, now), minLayerCost)
		}
	}
	// A lower layer costs no more than a higher one. Measured, it may for a while: after a
	// keyframe request the publisher sends keyframes on every layer, which weigh most on the
	// smallest; the video would then be paused for lack of room for its lowest layer while a
	// higher one fits.
	ceiling := math.Inf(1)
	for i := maxLayers - 1; i >= 0; i-- {
		if a.present[i] {
			a.costs[i] = min(a.costs[i], ceiling)
			ceiling = a.costs[i]
		}
	}
	return a, true
}

// applyAllocation sets the allocator's decision: the highest layer to send, -1 to pause. It
// reports whether anything changed.
func (d *DownTrack) applyAllocation(layer int8) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	pause := layer < 0
	if pause == d.allocPaused && (pause || layer == d.allocCap) {
		return false
	}
	now := time.Now().UnixNano()
	wasPaused := d.allocPaused
	d.allocPaused = pause
	if pause {
		return true
	}
	d.allocCap = layer
	d.retarget(now)
	if wasPaused {
		// Resume on a keyframe of the target, with continuous numbering.
		d.needSync = true
		d.track.requestKeyframe(d.target, now)
	}
	return true
}

// ceiling is the highest layer to forward: the client's wish, capped by the allocator.
func (d *DownTrack) ceiling() int8 {
	if d.maxLayer < 0 {
		return d.maxLayer
	}
	return min(d.maxLayer, d.allocCap)
}

// SetPriority sets the DownTrack's place in its subscriber's allocation.
func (d *DownTrack) SetPriority(p Priority) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.priority = p
}

// StreamPaused reports whether the allocator paused this DownTrack for lack of bandwidth.
func (d *DownTrack) StreamPaused() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.allocPaused
}

// probe raises the send rate with padding for a moment, when the allocation left something out
// and the path has not been congested lately; it stops at the first sign of queueing.
func (l *downlink) probe(now int64, dt time.Duration, st BWEState) {
	l.mu.Lock()
	deficit := l.deficit
	l.mu.Unlock()
	if l.probing {
		switch {
		case st.QueueingDelay > clearDelay || st.Congested:
			l.probing = false
			l.probeStreak = 0
			l.probeGap = min(2*l.probeGap, probeMaxGap)
			l.probeAt = now + int64(l.probeGap)
			l.log.Debug("probe stopped: queueing", "goal", int(l.probeGoal), "estimate", int(st.Estimate), "queueing_delay", st.QueueingDelay)
			return
		case now >= l.probeEnd:
			l.probing = false
			l.probeGap = probeMinGap
			l.probeAt = now + int64(l.probeGap)
			// The path carried the goal for a second without queueing: it is the new estimate
			// (the received rate alone lags, its window reaching back before the probe).
			if l.probeSent >= 0.8*l.probeOwed {
				l.bwe.raiseTo(l.probeGoal * 0.95)
				l.probeStreak++
			} else {
				l.probeStreak = 0
			}
			st = l.bwe.state(now)
			l.log.Debug("probe ended", "goal", int(l.probeGoal), "estimate", int(st.Estimate), "padding_sent", int(l.probeSent), "padding_meant", int(l.probeOwed))
			l.allocate(now, st)
			return
		}
		owed := max(l.probeGoal-l.usage, 0) / 8 * dt.Seconds()
		l.probeCredit += owed
		l.probeOwed += owed
		l.pad()
		return
	}
	if deficit <= 0 || now < l.probeAt || st.Congested || l.off || !st.Fed {
		return
	}
	l.probing = true
	step := probeStep
	if l.probeStreak > 0 {
		step = probeStreakStep
	}
	l.probeGoal = min(st.Estimate+deficit, st.Estimate*step)
	l.probeEnd = now + int64(probeDuration)
	l.probeCredit, l.probeOwed, l.probeSent = 0, 0, 0
	l.log.Debug("probe started", "goal", int(l.probeGoal), "estimate", int(st.Estimate), "deficit", int(deficit))
}

// pad sends the padding the probe owes on one video stream the subscriber already knows.
func (l *downlink) pad() {
	var carrier *DownTrack
	for _, d := range l.t.boundDownTracks() {
		if d.track.kind != webrtc.RTPCodecTypeVideo || !d.canPad() {
			continue
		}
		carrier = d
		if !d.StreamPaused() {
			break // prefer a stream that flows
		}
	}
	if carrier == nil {
		return
	}
	for l.probeCredit >= paddingPayload {
		n := carrier.sendPadding()
		if n == 0 {
			return
		}
		l.probeCredit -= float64(n)
		l.probeSent += float64(n)
	}
}

func (d *DownTrack) canPad() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writer != nil && d.twccID != 0
}

// announce sends a paused video that never sent anything two padding packets: some clients
// (pion's, in the LiveKit Go SDK) learn of a track only from its first packet, and would never
// report it subscribed, nor hear that it is paused.
func (d *DownTrack) announce() {
	d.mu.Lock()
	started := d.munger.started
	d.mu.Unlock()
	if !started {
		d.sendPadding()
		d.sendPadding()
	}
}

// sendPadding sends one padding-only packet on the DownTrack's stream, numbered after the last
// packet sent; it returns the bytes written.
func (d *DownTrack) sendPadding() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writer == nil {
		return 0
	}
	if !d.munger.started {
		// Nothing sent yet: the stream starts here, and its media will follow on.
		var seed [6]byte
		_, _ = rand.Read(seed[:])
		d.munger.lastSN = binary.BigEndian.Uint16(seed[:])
		d.munger.lastTS = binary.BigEndian.Uint32(seed[2:])
		d.munger.lastAt = time.Now().UnixNano()
		d.munger.started = true
	}
	sn := d.munger.lastSN + 1
	h := &d.hdr
	h.Version = 2
	h.Padding, h.PaddingSize = true, paddingPayload
	h.Marker = false
	h.PayloadType = d.pt
	h.SequenceNumber = sn
	h.Timestamp = d.munger.lastTS
	h.SSRC = d.ssrc
	h.CSRC = nil
	h.Extension, h.ExtensionProfile = false, 0
	h.Extensions = d.extBuf[:0]
	if d.send(h, nil, time.Now().UnixNano()) != writeOK {
		return 0
	}
	h.Padding, h.PaddingSize = false, 0
	d.munger.lastSN = sn
	d.munger.snOffset++
	d.seq.forget(sn)
	return paddingPayload + 12
}

// layerRates measures the bitrate of each layer of a published track, for the allocators.
type layerRates struct {
	mu    sync.Mutex
	at    int64
	bytes [maxLayers]uint64
	bps   [maxLayers]float64
}

const rateEvery = int64(500 * time.Millisecond)

// rate is layer i's bitrate in bits per second, smoothed over the last seconds. A layer that
// stopped (the publisher was told nobody needs it) keeps its last rate: it is what resuming it
// would cost.
func (r *layerRates) rate(p *PublishedTrack, i int8, now int64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if dt := now - r.at; r.at == 0 || dt >= rateEvery {
		for k := range r.bps {
			l := p.layers[k].Load()
			if l == nil {
				continue
			}
			b := l.bytes.Load()
			if r.at != 0 && b > r.bytes[k] {
				v := float64(b-r.bytes[k]) * 8 / time.Duration(dt).Seconds()
				if r.bps[k] == 0 {
					r.bps[k] = v
				} else {
					r.bps[k] += 0.5 * (v - r.bps[k])
				}
			}
			r.bytes[k] = b
		}
		r.at = now
	}
	return r.bps[i]
}

// wantedLayers is the dynacast state of a published track: the highest layer some subscriber
// receives, as last reported to the publisher.
type wantedLayers struct {
	mu         sync.Mutex
	reported   int8 // maxLayers-1 until a report: the publisher sends everything
	lowerSince int64
}

// dynacastLag is how long fewer layers must be enough before the publisher is told to stop
// one: a subscriber's allocation may come back up within seconds.
const dynacastLag = int64(3 * time.Second)

// updateWanted recomputes the highest layer the track's subscribers receive and tells the
// publisher when it rose, or fell and stayed down for dynacastLag.
func (p *PublishedTrack) updateWanted(now int64) {
	if p.onWanted == nil || p.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	downs := *p.downTracks.Load()
	want := int8(-1)
	if len(downs) == 0 {
		want = 0 // keep the lowest layer for the next subscriber
	}
	for _, d := range downs {
		d.mu.Lock()
		if !d.paused && !d.allocPaused && d.maxLayer >= 0 {
			want = max(want, d.ceiling())
		}
		d.mu.Unlock()
	}
	w := &p.wanted
	w.mu.Lock()
	report := false
	switch {
	case want > w.reported:
		report = true
	case want < w.reported:
		if w.lowerSince == 0 {
			w.lowerSince = now
		}
		report = now-w.lowerSince >= dynacastLag
	default:
		w.lowerSince = 0
	}
	if report {
		w.reported, w.lowerSince = want, 0
	}
	w.mu.Unlock()
	if report {
		p.onWanted(want)
	}
}
