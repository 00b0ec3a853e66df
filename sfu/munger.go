package sfu

import (
	"sync/atomic"
	"time"
)

// Munger rewrites the sequence numbers and timestamps of one outgoing stream: a DownTrack, or a
// track of the public programme. The source may change under it (another simulcast layer, a
// pause, a server mute, another speaker on air); at each change it is rebased so that the
// receiver sees one stream without gaps in numbering and with time moving forward. Until a
// packet has been sent, the output keeps its source's numbers.
type Munger struct {
	clockRate uint32

	started  bool
	snOffset uint16
	tsOffset uint32

	// baseSN is the oldest source sequence number accepted: packets from before the last
	// rebase would collide with numbers already sent. It trails highSN so that late packets
	// of the current source still pass.
	baseSN, highSN uint16

	lastSN uint16 // newest output sequence number sent
	lastTS uint32 // its output timestamp
	lastAt int64  // when its source packet arrived, in Unix nanoseconds
}

// lateWindow is how far behind the newest packet a late (reordered or repaired) packet may be
// and still be forwarded.
const lateWindow = 4096

// NewMunger numbers a stream whose RTP clock runs at clockRate.
func NewMunger(clockRate uint32) Munger { return Munger{clockRate: clockRate} }

// Rebase makes the source packet (sn, ts), which arrived at time at (Unix nanoseconds, or any
// clock the caller keeps to), follow the last packet sent. The timestamp advances by the time
// elapsed, at least one tick.
func (m *Munger) Rebase(sn uint16, ts uint32, at int64) {
	if m.started {
		m.snOffset = m.lastSN + 1 - sn
		gap := uint64(1)
		if at > m.lastAt {
			if g := uint64(at-m.lastAt) * uint64(m.clockRate) / 1e9; g > gap {
				gap = min(g, 1<<30)
			}
		}
		m.tsOffset = m.lastTS + uint32(gap) - ts
	}
	m.baseSN, m.highSN = sn, sn
}

// Translate maps a source packet to the output numbering; ok is false for a packet older than
// the last rebase (its number could collide with one already sent).
func (m *Munger) Translate(sn uint16, ts uint32) (outSN uint16, outTS uint32, ok bool) {
	if int16(sn-m.baseSN) < 0 {
		return 0, 0, false
	}
	return sn + m.snOffset, ts + m.tsOffset, true
}

// Sent records that the source packet sn went out as (outSN, outTS), at time at.
func (m *Munger) Sent(sn, outSN uint16, outTS uint32, at int64) {
	if !m.started || int16(outSN-m.lastSN) > 0 {
		m.lastSN, m.lastTS, m.lastAt = outSN, outTS, at
		m.started = true
	}
	if int16(sn-m.highSN) > 0 {
		m.highSN = sn
		if int16(m.highSN-m.baseSN) > lateWindow {
			m.baseSN = m.highSN - lateWindow
		}
	}
}

// sequencer remembers, for the latest packets a DownTrack sent, which source packet each output
// sequence number came from, so that a NACK can be answered from the publisher's packet cache.
type sequencer struct {
	entries [sequencerSize]seqEntry
}

const (
	sequencerSize = 1024
	// maxRetransmits caps how often one packet is resent, so that a subscriber that keeps
	// NACKing cannot make us loop on it.
	maxRetransmits = 3
	// rtxDeadline: a packet sent longer ago than this would reach the subscriber after its
	// jitter buffer gave up on it; resending it only adds to a congested link.
	rtxDeadline = 500 * time.Millisecond
)

type seqEntry struct {
	outTS   uint32
	sentMs  uint32 // when it was sent, Unix milliseconds (wrapping)
	outSN   uint16
	srcSN   uint16
	layer   int8
	valid   bool
	resends uint8
}

func (s *sequencer) push(outSN, srcSN uint16, outTS uint32, layer int8, at int64) {
	s.entries[outSN%sequencerSize] = seqEntry{outTS: outTS, sentMs: uint32(at / 1e6), outSN: outSN, srcSN: srcSN, layer: layer, valid: true}
}

// forget makes outSN unanswerable: a padding packet, which has nothing to resend.
func (s *sequencer) forget(outSN uint16) { s.entries[outSN%sequencerSize].valid = false }

// lookup returns the entry for outSN, or nil when it was overwritten or never sent.
func (s *sequencer) lookup(outSN uint16) *seqEntry {
	e := &s.entries[outSN%sequencerSize]
	if !e.valid || e.outSN != outSN {
		return nil
	}
	return e
}

// pliThrottle lets through at most one keyframe request per interval, however many subscribers
// ask: each request costs the publisher a keyframe, several times the size of a normal frame.
type pliThrottle struct{ last atomic.Int64 }

func (t *pliThrottle) allow(now, interval int64) bool {
	for {
		last := t.last.Load()
		if last != 0 && now-last < interval {
			return false
		}
		if t.last.CompareAndSwap(last, now) {
			return true
		}
	}
}
