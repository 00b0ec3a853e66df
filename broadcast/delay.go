package broadcast

// held is one packet waiting in a delay queue. Its payload buffer belongs to the queue's slot
// and is reused once the packet is released, so the steady state allocates nothing.
type held struct {
	at      int64 // programme time at which it is due (its arrival, or its playout time for audio)
	arrived int64 // programme time of arrival
	sn      uint16
	ts      uint32
	marker  bool
	data    []byte
}

// delayQueue is a FIFO of packets in arrival order. Arrival times come from one monotonic
// clock read under the owner's lock, so the order of the queue is the order of time.
type delayQueue struct {
	items []held
	head  int
	n     int
	limit int // most packets held; the oldest is dropped beyond it
}

// maxHeldPayload bounds a packet's payload; RTP from the SFU never exceeds it.
const maxHeldPayload = 1500

func newDelayQueue(initial, limit int) delayQueue {
	return delayQueue{items: make([]held, initial), limit: limit}
}

// push appends a packet, copying payload. It reports false when the payload was too large.
func (q *delayQueue) push(at int64, sn uint16, ts uint32, marker bool, payload []byte) bool {
	if len(payload) > maxHeldPayload {
		return false
	}
	if q.n == len(q.items) {
		if q.limit > 0 && q.n >= q.limit {
			q.pop() // a stalled release must not grow memory without bound
		} else {
			q.grow()
		}
	}
	h := &q.items[(q.head+q.n)%len(q.items)]
	if cap(h.data) < len(payload) {
		h.data = make([]byte, len(payload), maxHeldPayload)
	}
	h.data = h.data[:len(payload)]
	copy(h.data, payload)
	h.at, h.arrived, h.sn, h.ts, h.marker = at, at, sn, ts, marker
	q.n++
	return true
}

func (q *delayQueue) grow() {
	size := max(2*len(q.items), 64)
	if q.limit > 0 {
		size = min(size, q.limit)
	}
	next := make([]held, size)
	for i := range q.n {
		next[i] = q.items[(q.head+i)%len(q.items)]
	}
	q.items, q.head = next, 0
}

// setArrived records, for the packet just pushed, an arrival time other than its due time.
func (q *delayQueue) setArrived(arrived int64) {
	if q.n > 0 {
		q.items[(q.head+q.n-1)%len(q.items)].arrived = arrived
	}
}

// peek returns the oldest packet, or nil. It stays valid until the next push or pop.
func (q *delayQueue) peek() *held {
	if q.n == 0 {
		return nil
	}
	return &q.items[q.head]
}

func (q *delayQueue) pop() {
	if q.n == 0 {
		return
	}
	q.head = (q.head + 1) % len(q.items)
	q.n--
}

func (q *delayQueue) len() int { return q.n }

// munger numbers one output continuously while its source changes: at each switch it is
// rebased so that the new source's packets follow the last one sent, with the timestamp
// advanced by the time that passed.
type munger struct {
	clockRate uint32
	started   bool
	snOffset  uint16
	tsOffset  uint32
	lastSN    uint16
	lastTS    uint32
	lastAt    int64
}

// rebase makes the source packet (sn, ts), arriving at programme time at, follow the last
// packet out.
func (m *munger) rebase(sn uint16, ts uint32, at int64) {
	if !m.started {
		// Start the output on its own numbers: a viewer must not tell one session's sources
		// apart from the numbering.
		m.snOffset, m.tsOffset = 0, 0
		return
	}
	m.snOffset = m.lastSN + 1 - sn
	gap := uint64(1)
	if at > m.lastAt {
		if g := uint64(at-m.lastAt) * uint64(m.clockRate) / 1e9; g > gap {
			gap = min(g, 1<<30)
		}
	}
	m.tsOffset = m.lastTS + uint32(gap) - ts
}

// translate maps a source packet to the output and remembers the newest one.
func (m *munger) translate(sn uint16, ts uint32, at int64) (uint16, uint32) {
	osn, ots := sn+m.snOffset, ts+m.tsOffset
	if !m.started || int16(osn-m.lastSN) > 0 {
		m.lastSN, m.lastTS, m.lastAt, m.started = osn, ots, at, true
	}
	return osn, ots
}
