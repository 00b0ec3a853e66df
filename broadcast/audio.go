package broadcast

import (
	"sync"

	"github.com/pion/rtp"

	"github.com/ingeco/hemicycle/sfu"
)

const (
	// frameNanos is the frame clock of an audio output: one frame per 20 ms.
	frameNanos = int64(opusFrameSamples) * 1e9 / 48000
	// maxLag is how far behind the frame clock a source packet may be and still be played;
	// older ones (a burst after a network stall) are dropped so that the delay stays exact.
	maxLag = 3 * frameNanos
)

// audioOutput is one audio track of the programme. It sends one frame per frame time, on its
// own clock, so that the track never stops (a recorder or a mixer downstream waits for every
// input): the source's packet for that time, or silence, or, within a bleep, the tone (first
// output) or silence (the others). Its numbering is its own, hence continuous whatever the
// sources do.
type audioOutput struct {
	index  int
	prog   *Programme
	track  *sfu.PublishedTrack
	writer *sfu.LocalWriter
	pt     uint8

	mu          sync.Mutex
	feed        *audioFeed
	q           delayQueue
	next        int64 // programme time of the next frame to send
	sn          uint16
	ts          uint32
	prevBleeped bool
	lag         int64 // how long after it arrived the last source packet was due
	tone        int   // next tone frame
	hdr         rtp.Header

	// Counters for tests and logs.
	sentTone, sentSilence, sentSource uint64
}

// audioFeed is one published microphone read through a sink into an audio output. Its
// packets are placed on the programme's timeline by their RTP timestamps, not by when they
// arrived, so that network jitter (a burst after a stall) is absorbed by the delay instead of
// becoming gaps: the delay is a far larger jitter buffer than any client has.
type audioFeed struct {
	out   *audioOutput
	track Source
	sink  sfu.Sink
	clock playoutClock // under out.mu
}

func (f *audioFeed) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	f.out.ingest(f, h.Timestamp, payload)
	return len(payload), nil
}

// playoutClock maps a source's RTP timestamps to programme time. The anchor is the largest
// offset between arrival and timestamp seen recently (the packets that met the most delay), so
// that no packet plays before it arrived: the public never hears anything less than the delay
// after the server got it, which is what lets the chair bleep the last seconds. The anchor is
// kept over two blocks of anchorBlock, so that it comes back down after a burst of jitter and
// follows a drift between the sender's clock and ours.
type playoutClock struct {
	started   bool
	lastTS    uint32
	ext       int64 // extended timestamp of lastTS, from the first packet
	cur, prev int64 // the largest offsets of this block and the last one
	blockAt   int64
}

const anchorBlock = int64(5e9)

// at returns the programme time at which the packet with timestamp ts, arriving now, plays.
func (c *playoutClock) at(ts uint32, now int64) int64 {
	if !c.started {
		c.started, c.lastTS, c.ext = true, ts, 0
		c.cur, c.prev, c.blockAt = now, now, now
		return now
	}
	e := c.ext + int64(int32(ts-c.lastTS))
	if e > c.ext {
		c.ext, c.lastTS = e, ts
	}
	media := e * 1e9 / 48000
	off := now - media
	if now-c.blockAt >= anchorBlock {
		c.prev, c.cur, c.blockAt = c.cur, off, now
	} else if off > c.cur {
		c.cur = off
	}
	return media + max(c.cur, c.prev)
}

func (o *audioOutput) ingest(f *audioFeed, ts uint32, payload []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if f != o.feed || len(payload) == 0 {
		return
	}
	now := o.prog.clock()
	if o.q.push(f.clock.at(ts, now), 0, 0, false, payload) {
		o.q.setArrived(now)
	}
}

// set makes track this output's source (nil: none) and returns the feed to open a sink for
// and the feed to retire.
func (o *audioOutput) set(track Source) (opened, retired *audioFeed) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.feed != nil && o.feed.track == track {
		return nil, nil
	}
	retired = o.feed
	o.feed = nil
	if track != nil {
		o.feed = &audioFeed{out: o, track: track}
	}
	return o.feed, retired
}

func (o *audioOutput) attach(f *audioFeed, s sfu.Sink) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	f.sink = s
	return f == o.feed
}

func (o *audioOutput) source() Source {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.feed == nil {
		return nil
	}
	return o.feed.track
}

// emit sends every frame whose time is at or before cutoff (programme time).
func (o *audioOutput) emit(cutoff int64, fx *fixtures, bleeps *bleepLog) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.next <= cutoff {
		t := o.next
		for h := o.q.peek(); h != nil && h.at < t-maxLag; h = o.q.peek() {
			o.q.pop()
		}
		var src *held
		if h := o.q.peek(); h != nil && h.at <= t { // never before it is due: the delay is a floor
			src = h
		}
		// The chair marks what they hear, live: a packet is bleeped when it reached the
		// server within a bleep. A frame with no packet is placed on the same clock through
		// the lag of the last packet played, so that the tone covers the whole interval.
		var bleeped bool
		if src != nil {
			o.lag = t - src.arrived
			bleeped = bleeps.covers(src.arrived)
		} else {
			bleeped = bleeps.covers(t - o.lag)
		}
		payload, samples := fx.silence, opusFrameSamples
		switch {
		case bleeped || (o.prevBleeped && src != nil):
			// Within a bleep nothing of the source goes out. Nor does the first packet
			// after it: Opus in-band FEC carries the previous frame in it, at low rate.
			if o.index == 0 {
				payload = fx.tone[o.tone]
				o.tone = (o.tone + 1) % len(fx.tone)
				o.sentTone++
			} else {
				o.sentSilence++
			}
		case src != nil:
			payload = src.data
			if n := opusSamples(payload); n > 0 {
				samples = n
			}
			o.sentSource++
		default:
			o.sentSilence++
		}
		o.hdr = rtp.Header{Version: 2, PayloadType: o.pt, SequenceNumber: o.sn, Timestamp: o.ts}
		_ = o.writer.WriteRTP(&o.hdr, payload) // fails only once closed, and then nobody listens
		o.sn++
		o.ts += uint32(samples)
		o.next += int64(samples) * 1e9 / 48000
		o.prevBleeped = bleeped
		if src != nil {
			o.q.pop()
		}
	}
}
