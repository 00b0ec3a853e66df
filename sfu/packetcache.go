package sfu

import "sync"

// maxPacketSize bounds what the SFU stores and forwards; pion reads at most 1460 bytes per packet.
const maxPacketSize = 1500

// packetCache keeps the latest packets of one incoming RTP stream so that NACKs from any number
// of subscribers are answered from a single copy. Slots are indexed by extended sequence number;
// a slot remembers which extended number it holds, so a lookup never returns a newer packet that
// reused the slot.
type packetCache struct {
	mu      sync.Mutex
	data    []byte
	slots   []cacheSlot
	mask    uint64
	head    uint64 // extended sequence number of the newest packet stored
	started bool
}

type cacheSlot struct {
	ext  uint64
	size uint16
}

// newPacketCache returns a cache of n packets; n is rounded up to a power of two.
func newPacketCache(n int) *packetCache {
	size := 1
	for size < n {
		size <<= 1
	}
	return &packetCache{
		data:  make([]byte, size*maxPacketSize),
		slots: make([]cacheSlot, size),
		mask:  uint64(size - 1),
	}
}

// extend places a 16-bit sequence number next to the newest one seen (within half the number
// space), which is how RTP receivers unwrap sequence numbers.
func (c *packetCache) extend(sn uint16) uint64 {
	return uint64(int64(c.head) + int64(int16(sn-uint16(c.head))))
}

// store copies packet (a whole RTP packet) into the cache. It reports a packet the cache
// already holds: a publisher resends packets that arrived (Chromium pads its bandwidth probes
// with resends of what it just sent), and forwarding one again would reach subscribers as a
// replay, which they discard and report lost.
func (c *packetCache) store(sn uint16, packet []byte) (duplicate bool) {
	if len(packet) > maxPacketSize || len(packet) == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var ext uint64
	if !c.started {
		// Start one wrap up so that packets just before the first one do not underflow.
		ext = 1<<16 | uint64(sn)
		c.head, c.started = ext, true
	} else {
		ext = c.extend(sn)
		if ext > c.head {
			c.head = ext
		} else if c.head-ext > c.mask {
			return false // older than anything the cache still holds
		}
	}
	i := ext & c.mask
	if s := c.slots[i]; s.ext == ext && s.size != 0 {
		return true
	}
	copy(c.data[i*maxPacketSize:], packet)
	c.slots[i] = cacheSlot{ext: ext, size: uint16(len(packet))}
	return false
}

// get copies the packet with sequence number sn into dst and returns its length, or 0 when the
// packet was never received or is too old to be held any more.
func (c *packetCache) get(sn uint16, dst []byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		return 0
	}
	ext := c.extend(sn)
	if ext > c.head || c.head-ext > c.mask {
		return 0
	}
	i := ext & c.mask
	s := c.slots[i]
	if s.ext != ext || s.size == 0 || int(s.size) > len(dst) {
		return 0
	}
	off := i * maxPacketSize
	return copy(dst, c.data[off:off+uint64(s.size)])
}
