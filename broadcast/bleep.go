package broadcast

import (
	"math"
	"slices"
	"sync"
)

// open marks an interval whose end the chair has not given yet.
const open = math.MaxInt64

// span is a bleeped interval [from, to) in programme time (nanoseconds since the programme
// started), matched against the arrival time of each audio packet.
type span struct{ from, to int64 }

// bleepLog holds the intervals marked in a session. A session has a handful, so a sorted slice
// scanned per audio frame costs less than any index.
type bleepLog struct {
	mu    sync.Mutex
	spans []span // sorted by from, not overlapping
}

// on starts a bleep at now; it reports false if one is already running.
func (b *bleepLog) on(now int64) (span, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.openLocked(); ok {
		return s, false
	}
	b.addLocked(span{now, open})
	s, _ := b.openLocked()
	return s, true
}

// off ends the running bleep at now; it reports false if none was running.
func (b *bleepLog) off(now int64) (span, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.spans {
		if b.spans[i].to == open {
			b.spans[i].to = max(now, b.spans[i].from)
			return b.spans[i], true
		}
	}
	return span{}, false
}

// add marks [from, to) and returns the interval it became part of.
func (b *bleepLog) add(from, to int64) span {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addLocked(span{from, to})
	for _, s := range b.spans {
		if s.from <= from && from < s.to {
			return s
		}
	}
	return span{from, to}
}

func (b *bleepLog) addLocked(n span) {
	if n.to <= n.from {
		return
	}
	spans := append(b.spans, n)
	slices.SortFunc(spans, func(x, y span) int {
		switch {
		case x.from < y.from:
			return -1
		case x.from > y.from:
			return 1
		}
		return 0
	})
	merged := spans[:1]
	for _, s := range spans[1:] {
		last := &merged[len(merged)-1]
		if s.from <= last.to {
			last.to = max(last.to, s.to)
			continue
		}
		merged = append(merged, s)
	}
	b.spans = merged
}

func (b *bleepLog) openLocked() (span, bool) {
	for _, s := range b.spans {
		if s.to == open {
			return s, true
		}
	}
	return span{}, false
}

// covers reports whether programme time t is bleeped.
func (b *bleepLog) covers(t int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.spans {
		if t < s.from {
			return false
		}
		if t < s.to {
			return true
		}
	}
	return false
}

// all returns a copy of the intervals.
func (b *bleepLog) all() []span {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.spans)
}
