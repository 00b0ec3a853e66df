package sfu

import (
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// A send-side bandwidth estimate per subscriber connection, from the transport-wide congestion
// control feedback (TWCC) the subscriber sends.
//
// Every packet sent to the subscriber carries a transport-wide sequence number; the send time
// and size of each are kept in a ring of atomics, so that stamping and recording cost a few
// nanoseconds and no allocation on the forwarding path. pion's gcc package does the same work
// with a map, a linked list and an interface value per packet (three allocations and a lock
// shared by every stream of the connection, BenchmarkGCCOnSent), which the forwarding path
// cannot afford; its estimator cannot be fed from anything else.
//
// The estimate follows the queueing delay, which grows before a bottleneck drops anything: the
// one-way delay of each packet (arrival on the subscriber's clock minus departure on ours)
// minus the smallest seen in the last ten seconds is the time it spent in queues. When it
// exceeds congestedDelay, or too much is lost, the estimate falls to a little under the rate
// the subscriber actually received; while queues stay empty it may rise, but only a little
// above what was shown to pass. Beyond that, the allocator probes (probe.go): it sends padding
// for a moment and keeps the higher rate if it arrived without queueing.

const (
	sentHistory = 1 << 12 // packets remembered for feedback; at 2,000 packets/s, two seconds

	// initialEstimate is where a new subscriber starts: enough for every microphone and one
	// or two cameras; probing finds more within seconds.
	initialEstimate = 600_000
	minEstimate     = 100_000
	maxEstimate     = 50_000_000

	congestedDelay = 40 * time.Millisecond // queueing delay that says the path is full...
	// ...when it lasts this long. A bottleneck's queue stays full; a receiver that stamped one
	// batch of packets late (its CPU busy decoding a keyframe, a burst after a video resumed)
	// does not, and a cut on that account would pause the videos of a member whose line is
	// fine.
	congestedPersist = 200 * time.Millisecond
	clearDelay       = 15 * time.Millisecond // below this the queues are empty
	congestedLoss    = 0.20                  // lost in the rate window: congested even without delay...
	// ...when it lasts this long with the queues empty. A policer's drops last as long as the
	// overshoot; a burst of random loss (Wi-Fi, a receiver that fell behind for a moment) does
	// not, and a cut to what was sent would pause videos on a line that has room for them.
	congestedLossPersist = time.Second
	holdLoss             = 0.15 // above this the estimate does not rise
	decreaseFactor       = 0.85 // of the received rate, when congested
	minDecreaseGap       = 300 * time.Millisecond
	growthPerSec         = 0.05 // rise per second while clear...
	growthCap            = 1.25 // ...up to this much above the received rate
	// outageRun: lost packets in a row sent over this long are a cut (Wi-Fi gone, a tunnel),
	// not a queue that overflowed, which drops some packets and passes others. What a cut
	// lost says nothing of the path's capacity: it is not counted as loss.
	outageRun  = 300 * time.Millisecond
	rateWindow = time.Second
	baseWindow = 5 * time.Second // the base delay is the minimum over two of these
)

// bwe is the estimator of one subscriber connection.
type bwe struct {
	start int64 // Unix nanoseconds, origin of the departure times kept
	seq   atomic.Uint32
	sent  [sentHistory]atomic.Uint64 // seq<<48 | departure µs<<11 | size

	rtxBytes atomic.Uint64 // retransmitted bytes, for the allocator

	mu       sync.Mutex
	estimate float64 // bits per second
	lastFB   [3]uint32
	refTime  int64 // unwrapped TWCC reference time, in 64 ms units
	refInit  bool

	baseCur, basePrev int64 // minimum one-way delay in µs, this window and the last
	baseAt            int64 // start of the current window, Unix nanoseconds

	window       [32]fbSummary // the latest feedback packets, for the received rate and loss
	windowNext   int
	qdelay       time.Duration // of the latest feedback
	lastDecrease int64
	lastUpdate   int64
	congestedAt  int64 // last time the path was seen congested
	delayedSince int64 // since when every feedback said the queueing delay is over congestedDelay; 0: it is not
	lossySince   int64 // since when the rate window's loss is over congestedLoss; 0: it is not
}

// fbSummary is what one feedback packet said.
type fbSummary struct {
	at                          int64 // when it was processed, Unix nanoseconds
	firstArrival, lastArrival   int64 // µs, subscriber's clock
	bytes, received, lost, sent int
}

func newBWE(now time.Time) *bwe {
	return &bwe{start: now.UnixNano(), estimate: initialEstimate, baseCur: math.MaxInt64, basePrev: math.MaxInt64, baseAt: now.UnixNano()}
}

// nextSeq hands out the transport-wide sequence number of the next packet.
func (b *bwe) nextSeq() uint16 { return uint16(b.seq.Add(1)) }

// onSent records a packet that went out at now (Unix nanoseconds) with size bytes.
func (b *bwe) onSent(seq uint16, size int, now int64) {
	us := uint64(max(now-b.start, 0)/1000) & (1<<37 - 1)
	b.sent[seq%sentHistory].Store(uint64(seq)<<48 | us<<11 | uint64(min(size, 2047)))
}

// lookup returns the departure (µs since start) and size of the packet seq, ok false when it
// was overwritten.
func (b *bwe) lookup(seq uint16) (dep int64, size int, ok bool) {
	v := b.sent[seq%sentHistory].Load()
	if v == 0 || uint16(v>>48) != seq {
		return 0, 0, false
	}
	return int64(v >> 11 & (1<<37 - 1)), int(v & 2047), true
}

// Estimate is the current estimate in bits per second.
func (b *bwe) Estimate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.estimate
}

// BWEState is a snapshot of a subscriber's estimate and what it rests on.
type BWEState struct {
	Estimate      float64 // bits per second
	Received      float64 // bits per second over the last second, as the feedback reports
	Loss          float64 // fraction lost over the last second
	QueueingDelay time.Duration
	Congested     bool // congestion was seen within the last two seconds
	// Fed is false until the first feedback: a subscriber that does not send TWCC (it did not
	// negotiate transport-cc) has no estimate, and its allocation is left alone.
	Fed bool
	// PausedVideos counts the videos the allocator paused for lack of room.
	PausedVideos int
}

func (b *bwe) state(now int64) BWEState {
	b.mu.Lock()
	defer b.mu.Unlock()
	rate, loss, _ := b.windowLocked(now)
	return BWEState{Estimate: b.estimate, Received: rate, Loss: loss, QueueingDelay: b.qdelay,
		Congested: b.congestedAt != 0 && now-b.congestedAt < int64(2*time.Second), Fed: b.refInit}
}

// onFeedback folds one TWCC feedback packet in. pion hands the subscriber's compound RTCP to
// every sender, so the same packet may come several times: it is counted once.
func (b *bwe) onFeedback(fb *rtcp.TransportLayerCC, now int64) {
	key := [3]uint32{uint32(fb.FbPktCount), uint32(fb.BaseSequenceNumber), uint32(fb.PacketStatusCount)<<16 | fb.ReferenceTime&0xffff}
	b.mu.Lock()
	defer b.mu.Unlock()
	if key == b.lastFB {
		return
	}
	b.lastFB = key

	ref := int64(fb.ReferenceTime & 0xffffff)
	if b.refInit { // the nearest epoch: the reference time wraps every 12 days
		ref = b.refTime + (ref-b.refTime+1<<23)&0xffffff - 1<<23
	}
	b.refTime, b.refInit = ref, true
	arrival := ref * 64_000 // µs

	if now-b.baseAt > int64(baseWindow) {
		b.basePrev, b.baseCur, b.baseAt = b.baseCur, math.MaxInt64, now
	}
	s := fbSummary{at: now, firstArrival: math.MaxInt64}
	var owdSum int64 // one-way delays of this feedback's packets, µs
	var owdCount int

	seq := fb.BaseSequenceNumber
	deltas := fb.RecvDeltas
	remaining := int(fb.PacketStatusCount)
	var run struct {
		n        int
		from, to int64 // departures of its first and last packets, µs
	}
	endRun := func() {
		if run.n > 0 && run.to-run.from > outageRun.Microseconds() {
			s.lost -= run.n
			s.sent -= run.n
		}
		run.n = 0
	}
	visit := func(symbol uint16) {
		dep, size, known := b.lookup(seq)
		seq++
		remaining--
		received := symbol == rtcp.TypeTCCPacketReceivedSmallDelta || symbol == rtcp.TypeTCCPacketReceivedLargeDelta
		if received {
			if len(deltas) == 0 {
				return
			}
			arrival += deltas[0].Delta
			deltas = deltas[1:]
		}
		if !known {
			return
		}
		s.sent++
		if !received {
			s.lost++
			if run.n == 0 {
				run.from = dep
			}
			run.n++
			run.to = dep
			return
		}
		endRun()
		s.received++
		s.bytes += size
		s.firstArrival = min(s.firstArrival, arrival)
		s.lastArrival = max(s.lastArrival, arrival)
		owd := arrival - dep
		b.baseCur = min(b.baseCur, owd)
		owdSum += owd
		owdCount++
	}
	for _, c := range fb.PacketChunks {
		if remaining <= 0 {
			break
		}
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for i := 0; i < int(c.RunLength) && remaining > 0; i++ {
				visit(c.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			for _, sym := range c.SymbolList {
				if remaining <= 0 {
					break
				}
				visit(sym)
			}
		}
	}
	endRun()
	b.foldLocked(s, owdSum, owdCount, now)
}

// windowLocked sums the feedback of the last rateWindow: the rate the subscriber received and
// the fraction lost. ok is false when there is too little to tell.
func (b *bwe) windowLocked(now int64) (rate, loss float64, ok bool) {
	first, last := int64(math.MaxInt64), int64(0)
	var bytes, sent, lost int
	for i := range b.window {
		s := &b.window[i]
		if s.sent == 0 || now-s.at > int64(rateWindow) {
			continue
		}
		sent += s.sent
		lost += s.lost
		if s.received == 0 {
			continue
		}
		bytes += s.bytes
		if s.firstArrival < first {
			first = s.firstArrival
		}
		last = max(last, s.lastArrival)
	}
	if sent > 0 {
		loss = float64(lost) / float64(sent)
	}
	span := last - first
	if span < 200_000 { // under 200 ms of arrivals: not a rate yet
		return 0, loss, false
	}
	return float64(bytes) * 8e6 / float64(span), loss, true
}

func (b *bwe) updateLocked(now int64) {
	rate, loss, ok := b.windowLocked(now)
	dt := time.Duration(now - b.lastUpdate)
	if b.lastUpdate == 0 || dt > time.Second {
		dt = 100 * time.Millisecond
	}
	b.lastUpdate = now
	delayed := b.qdelay > congestedDelay
	switch {
	case !delayed:
		b.delayedSince = 0
	case b.delayedSince == 0:
		b.delayedSince = now
	}
	lossy := loss > congestedLoss
	switch {
	case !lossy:
		b.lossySince = 0
	case b.lossySince == 0:
		b.lossySince = now
	}
	lossCongested := lossy && (b.qdelay >= clearDelay || now-b.lossySince >= int64(congestedLossPersist))
	switch {
	case delayed && now-b.delayedSince < int64(congestedPersist) && !lossCongested:
		// Queueing, not yet long enough to tell: hold.
	case lossy && !delayed && !lossCongested:
		// Loss with empty queues, not yet long enough to tell: hold.
	case delayed || lossCongested:
		b.congestedAt = now
		if ok && now-b.lastDecrease > int64(minDecreaseGap) {
			// What arrives while the queue is full is what the path carries; a little under
			// it lets the queue drain. (It may be above the last estimate, when that one was
			// made from a window that began before the path filled.)
			b.estimate = max(decreaseFactor*rate, minEstimate)
			b.lastDecrease = now
		}
	case b.qdelay < clearDelay && loss < holdLoss && ok:
		if rate > b.estimate {
			b.estimate = rate // the path just carried this much without queueing
		}
		if limit := growthCap * rate; b.estimate < limit {
			b.estimate = min(b.estimate*(1+growthPerSec*dt.Seconds()), limit)
		}
	}
	b.estimate = min(max(b.estimate, minEstimate), maxEstimate)
}

// raiseTo lifts the estimate to rate, after a probe showed the path carries it.
func (b *bwe) raiseTo(rate float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.estimate = min(max(b.estimate, rate), maxEstimate)
}

// putTWCC writes a transport-wide sequence number as the header extension carries it.
func putTWCC(buf *[2]byte, seq uint16) []byte {
	binary.BigEndian.PutUint16(buf[:], seq)
	return buf[:]
}

// onArrivals folds in packets measured where they arrive rather than reported by TWCC: the
// streams of a publisher that sends no transport-wide numbers, whose estimate goes back to it as
// REMB (remb.go). s sums the packets on this server's clock; their one-way delays (arrival
// minus the sender's abs-send-time, µs) add up to owdSum over owdCount, the least being owdMin.
func (b *bwe) onArrivals(s fbSummary, owdSum int64, owdCount int, owdMin int64, now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now-b.baseAt > int64(baseWindow) {
		b.basePrev, b.baseCur, b.baseAt = b.baseCur, math.MaxInt64, now
	}
	if owdCount > 0 {
		b.baseCur = min(b.baseCur, owdMin)
	}
	b.foldLocked(s, owdSum, owdCount, now)
}

// foldLocked adds one report (a feedback packet, or a publisher's arrivals) to the rate window,
// takes its mean queueing delay, and updates the estimate.
func (b *bwe) foldLocked(s fbSummary, owdSum int64, owdCount int, now int64) {
	if s.sent == 0 {
		return
	}
	b.window[b.windowNext%len(b.window)] = s
	b.windowNext++
	if owdCount > 0 {
		b.qdelay = time.Duration(owdSum/int64(owdCount)-min(b.baseCur, b.basePrev)) * time.Microsecond
	}
	b.updateLocked(now)
}
