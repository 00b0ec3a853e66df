package main

import (
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of sorted values: the
// smallest value with at least p% of the values at or below it. Nearest rank never invents a
// value between two samples, so p99 of few joins is an observed join, not an interpolation.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// durationSamples keeps every sample: used for join times, of which there are at most a few
// thousand per run.
type durationSamples struct {
	mu sync.Mutex
	v  []time.Duration
}

func (s *durationSamples) add(d time.Duration) {
	s.mu.Lock()
	s.v = append(s.v, d)
	s.mu.Unlock()
}

// summary returns the count, p50 and p99.
func (s *durationSamples) summary() latencySummary {
	s.mu.Lock()
	v := slices.Clone(s.v)
	s.mu.Unlock()
	slices.Sort(v)
	out := latencySummary{Count: len(v)}
	if len(v) > 0 {
		out.P50 = percentile(v, 50)
		out.P99 = percentile(v, 99)
		out.Max = v[len(v)-1]
	}
	return out
}

// latencySummary is what the report says of a latency distribution.
type latencySummary struct {
	Count         int
	P50, P99, Max time.Duration
}

// Histogram layout: values below histLinear are counted exactly; above, each power of two is
// split into histSub buckets, so a bucket is at most 1/64 (1.6%) wide relative to its values.
// One packet per forwarded stream is recorded, up to millions per run: a fixed array of
// counters costs nothing per sample and needs no lock.
const (
	histSubBits = 6
	histSub     = 1 << histSubBits // buckets per power of two
	histLinear  = 2 * histSub      // values below this have a bucket of their own
	histBuckets = histLinear + 57*histSub
)

// histogram counts non-negative int64 values (nanoseconds here) in log-linear buckets.
// Safe for concurrent use.
type histogram struct {
	counts   [histBuckets]atomic.Uint64
	total    atomic.Uint64
	maxValue atomic.Int64
}

func histIndex(v int64) int {
	if v < histLinear {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - (histSubBits + 1) // keeps the top 7 bits: 64..127
	mantissa := int(v >> shift)
	return histLinear + (shift-1)*histSub + mantissa - histSub
}

// histBounds returns the smallest and largest value counted in bucket i.
func histBounds(i int) (lo, hi int64) {
	if i < histLinear {
		return int64(i), int64(i)
	}
	shift := (i-histLinear)/histSub + 1
	mantissa := int64((i-histLinear)%histSub + histSub)
	return mantissa << shift, (mantissa+1)<<shift - 1
}

func (h *histogram) record(v int64) {
	v = max(v, 0)
	h.counts[histIndex(v)].Add(1)
	h.total.Add(1)
	for {
		m := h.maxValue.Load()
		if v <= m || h.maxValue.CompareAndSwap(m, v) {
			return
		}
	}
}

// percentile returns the nearest-rank p-th percentile, as the middle of its bucket (never
// above the largest value seen).
func (h *histogram) percentile(p float64) int64 {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := histBounds(i)
			return min(lo+(hi-lo)/2, h.maxValue.Load())
		}
	}
	return h.maxValue.Load()
}

func (h *histogram) summary() latencySummary {
	return latencySummary{
		Count: int(h.total.Load()),
		P50:   time.Duration(h.percentile(50)),
		P99:   time.Duration(h.percentile(99)),
		Max:   time.Duration(h.maxValue.Load()),
	}
}

// seqUnwrapper turns 16-bit RTP sequence numbers into a monotonic 64-bit count, so that gaps
// can be counted across the wrap at 65535.
type seqUnwrapper struct {
	started bool
	highest int64
}

// update returns the extended sequence number of seq, taken as the one nearest the highest
// seen so far (a packet up to 32767 behind is late, not from the next cycle).
func (u *seqUnwrapper) update(seq uint16) int64 {
	if !u.started {
		u.started = true
		u.highest = int64(seq) + 1<<16 // room below for late packets of the first cycle
		return u.highest
	}
	ext := u.highest + int64(int16(seq-uint16(u.highest)))
	u.highest = max(u.highest, ext)
	return ext
}

// streamCounter is what one bot knows of one received track. The bot's reader goroutine is
// the only writer; the run reads it when the measurement window opens and closes.
type streamCounter struct {
	kind    string // "audio" or "video"
	packets atomic.Int64
	bytes   atomic.Int64
	first   atomic.Int64 // extended sequence number of the first packet, -1 before it
	highest atomic.Int64 // highest extended sequence number, -1 before the first packet
	unwrap  seqUnwrapper // reader goroutine only
}

func newStreamCounter(kind string) *streamCounter {
	c := &streamCounter{kind: kind}
	c.first.Store(-1)
	c.highest.Store(-1)
	return c
}

func (c *streamCounter) observe(seq uint16, size int) {
	ext := c.unwrap.update(seq)
	if c.first.Load() < 0 {
		c.first.Store(ext)
	}
	c.highest.Store(c.unwrap.highest)
	c.bytes.Add(int64(size))
	c.packets.Add(1) // last: a snapshot that sees this packet also sees its sequence number
}

// streamSnapshot is a streamCounter at one instant.
type streamSnapshot struct {
	packets, bytes, first, highest int64
}

func (c *streamCounter) snapshot() streamSnapshot {
	packets := c.packets.Load()
	return streamSnapshot{packets: packets, bytes: c.bytes.Load(), first: c.first.Load(), highest: c.highest.Load()}
}

// windowCounts is what a stream did between two snapshots.
type windowCounts struct {
	packets, bytes, expected, lost int64
}

// streamWindow compares a stream at the opening and the closing of the window. A stream that
// had no packet yet at the opening is expected to have sent everything from its first one.
func streamWindow(start, end streamSnapshot) windowCounts {
	if end.highest < 0 {
		return windowCounts{}
	}
	base := start.highest
	if base < 0 {
		base = end.first - 1
	}
	w := windowCounts{
		packets:  end.packets - start.packets,
		bytes:    end.bytes - start.bytes,
		expected: end.highest - base,
	}
	// Duplicates and packets reordered across the opening can make received exceed expected.
	w.lost = max(w.expected-w.packets, 0)
	return w
}
