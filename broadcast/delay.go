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
