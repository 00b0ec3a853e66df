package sfu

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchSize is the most datagrams one sendmmsg call carries. A fan-out to more subscribers goes
// out in several calls.
const batchSize = 64

// batchConn is the Engine's UDP socket as pion's UDP mux sees it. Outside a fan-out it sends
// each datagram at once, as the bare socket would. While a fan-out is under way (between hold
// and release, called by the PublishedTrack that forwards one packet to all its subscribers),
// it queues the datagrams and sends them with sendmmsg when the fan-out ends: one system call
// for many subscribers, and no added delay. Datagrams written meanwhile by other goroutines
// (STUN, DTLS, RTCP, retransmissions, other fan-outs) join the batch.
//
// Two queues alternate: one fills while the other is being sent, so queueing never waits for
// the system call, and batches leave one at a time, in order.
//
// It implements pion/ice's AddrPortReaderWriter, so that the mux reads and writes with
// netip.AddrPort and no allocation.
type batchConn struct {
	*net.UDPConn
	writeBatch func([]ipv4.Message, int) (int, error) // the ipv4 or ipv6 PacketConn's
	unbatched  atomic.Bool                            // sendmmsg is missing: send one by one

	holders atomic.Int32 // fan-outs under way
	pending atomic.Int32 // datagrams queued and not yet sent

	mu   sync.Mutex // guards fill and its contents
	fill *sendQueue

	sendMu sync.Mutex // held while a batch is sent; guards spare
	spare  *sendQueue
}

// sendQueue is one batch: datagrams copied out of pion's buffers, with their destinations.
type sendQueue struct {
	n     int
	msgs  [batchSize]ipv4.Message
	bufs  [batchSize][maxPacketSize]byte
	iovs  [batchSize][1][]byte
	addrs [batchSize]net.UDPAddr
	ips   [batchSize][16]byte
}

func newSendQueue() *sendQueue {
	q := &sendQueue{}
	for i := range q.msgs {
		q.msgs[i].Addr = &q.addrs[i]
		q.msgs[i].Buffers = q.iovs[i][:]
	}
	return q
}

// add copies one datagram in; the queue must not be full.
func (q *sendQueue) add(p []byte, addr netip.AddrPort) {
	i := q.n
	q.iovs[i][0] = q.bufs[i][:copy(q.bufs[i][:], p)]
	a := &q.addrs[i]
	if ip := addr.Addr(); ip.Is4() {
		v4 := ip.As4()
		a.IP = q.ips[i][:copy(q.ips[i][:], v4[:])]
	} else {
		v6 := ip.As16()
		a.IP = q.ips[i][:copy(q.ips[i][:], v6[:])]
	}
	a.Port = int(addr.Port())
	q.n++
}

func newBatchConn(c *net.UDPConn) *batchConn {
	b := &batchConn{UDPConn: c, fill: newSendQueue(), spare: newSendQueue()}
	if ip := c.LocalAddr().(*net.UDPAddr).IP; ip.To4() != nil {
		b.writeBatch = ipv4.NewPacketConn(c).WriteBatch
	} else {
		b.writeBatch = ipv6.NewPacketConn(c).WriteBatch
	}
	return b
}

// ReadFromAddrPort reads one datagram (pion's mux reads the socket from one goroutine).
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return b.ReadFromUDPAddrPort(p)
}

// WriteToAddrPort sends p to addr, or queues it while a fan-out is under way. A queued datagram
// counts as written: UDP promises no delivery either way.
func (b *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	if len(p) > maxPacketSize || b.unbatched.Load() {
		return b.WriteToUDPAddrPort(p, addr)
	}
	if b.holders.Load() == 0 {
		if b.pending.Load() != 0 {
			b.flush() // what a fan-out queued leaves first: a writer's datagrams keep their order
		}
		return b.WriteToUDPAddrPort(p, addr)
	}
	for {
		b.mu.Lock()
		if b.fill.n < batchSize {
			break
		}
		// Full: a flush is about to take it; wait for that, then queue in the next one.
		b.mu.Unlock()
		b.flush()
	}
	b.fill.add(p, addr)
	b.pending.Add(1)
	full := b.fill.n == batchSize
	b.mu.Unlock()
	// Send a full batch now; and if the fan-out ended between the check above and the queueing,
	// nobody else would send this datagram.
	if full || b.holders.Load() == 0 {
		b.flush()
	}
	return len(p), nil
}

// batchGroup is the Engine's batching sockets (one per local address when it listens on all of
// them): a fan-out holds and releases every one, since its subscribers may be reached through any.
type batchGroup struct{ conns []*batchConn }

func (g *batchGroup) hold() {
	for _, b := range g.conns {
		b.hold()
	}
}

func (g *batchGroup) release() {
	for _, b := range g.conns {
		b.release()
	}
}

// hold starts a fan-out: datagrams are queued until release.
func (b *batchConn) hold() { b.holders.Add(1) }

// release ends a fan-out and sends what is queued, so that the fan-out's datagrams have left
// when it returns.
func (b *batchConn) release() {
	b.holders.Add(-1)
	b.flush()
}

// flush sends the filling queue, if it holds anything, while the other one takes its place. It
// returns once every datagram queued before the call has been sent.
func (b *batchConn) flush() {
	b.sendMu.Lock()
	defer b.sendMu.Unlock()
	b.mu.Lock()
	q := b.fill
	if q.n == 0 {
		b.mu.Unlock()
		return
	}
	b.fill, b.spare = b.spare, nil
	b.mu.Unlock()

	sent := 0
	for sent < q.n && !b.unbatched.Load() {
		n, err := b.writeBatch(q.msgs[sent:q.n], 0)
		if err != nil {
			if sent == 0 && n <= 0 && isNotImplemented(err) {
				b.unbatched.Store(true)
				break
			}
			// The datagram at sent could not go (a destination the kernel refuses, a full
			// buffer): it is lost, as it would be after a failed sendto; send the rest.
			n = max(n, 0) + 1
		}
		sent += n
	}
	for ; sent < q.n; sent++ { // no sendmmsg on this system
		_, _ = b.WriteTo(q.msgs[sent].Buffers[0], q.msgs[sent].Addr)
	}
	b.pending.Add(-int32(q.n))
	q.n = 0
	b.spare = q
}

// isNotImplemented tells an error meaning that the system has no sendmmsg.
func isNotImplemented(err error) bool {
	return errors.Is(err, syscall.ENOSYS) || strings.Contains(err.Error(), "not implemented")
}
