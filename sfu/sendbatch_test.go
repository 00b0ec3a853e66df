package sfu

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/net/ipv4"
)

func listenLoopback(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// receiveAll reads want datagrams from c, each a big-endian uint32, failing after a generous
// deadline (liveness only).
func receiveAll(t *testing.T, c *net.UDPConn, want int) []uint32 {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	var got []uint32
	buf := make([]byte, 2000)
	for len(got) < want {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(got), want, err)
		}
		if n != 100 {
			t.Fatalf("datagram of %d bytes, want 100", n)
		}
		got = append(got, binary.BigEndian.Uint32(buf))
	}
	return got
}

func datagram(v uint32) []byte {
	b := make([]byte, 100)
	binary.BigEndian.PutUint32(b, v)
	return b
}

func TestBatchConnQueuesDuringFanoutOnly(t *testing.T) {
	b := newBatchConn(listenLoopback(t))
	dst := listenLoopback(t)
	to := dst.LocalAddr().(*net.UDPAddr).AddrPort()

	if _, err := b.WriteToAddrPort(datagram(1), to); err != nil {
		t.Fatal(err)
	}
	if b.fill.n != 0 {
		t.Fatalf("a datagram written outside a fan-out was queued")
	}
	b.hold()
	for v := uint32(2); v < 2+batchSize+10; v++ {
		if n, err := b.WriteToAddrPort(datagram(v), to); err != nil || n != 100 {
			t.Fatalf("queued write: %d, %v", n, err)
		}
	}
	if b.fill.n != 10 {
		t.Errorf("%d datagrams wait, want 10: a full batch leaves at once, the rest waits for the fan-out's end", b.fill.n)
	}
	b.release()
	if b.fill.n != 0 {
		t.Errorf("%d datagrams still wait after the fan-out ended", b.fill.n)
	}
	got := receiveAll(t, dst, 1+batchSize+10)
	for i, v := range got {
		if v != uint32(i+1) {
			t.Fatalf("datagram %d carries %d: order or content lost (%v)", i, v, got)
		}
	}
}

func TestBatchConnConcurrentFanouts(t *testing.T) {
	b := newBatchConn(listenLoopback(t))
	const fanouts, per = 4, 60 // per fan-out: 60 rounds to each destination
	dsts := make([]*net.UDPConn, 3)
	addrs := make([]netip.AddrPort, len(dsts))
	for i := range dsts {
		dsts[i] = listenLoopback(t)
		addrs[i] = dsts[i].LocalAddr().(*net.UDPAddr).AddrPort()
	}
	results := make([][]uint32, len(dsts))
	var readers sync.WaitGroup
	for i := range dsts {
		readers.Add(1)
		go func() {
			defer readers.Done()
			results[i] = receiveAll(t, dsts[i], (fanouts+1)*per)
		}()
	}
	var writers sync.WaitGroup
	for f := 0; f < fanouts; f++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for r := 0; r < per; r++ {
				b.hold()
				for _, to := range addrs {
					_, _ = b.WriteToAddrPort(datagram(uint32(f<<16|r)), to)
				}
				b.release()
			}
		}()
	}
	writers.Add(1)
	go func() { // a writer outside any fan-out, like pion's STUN and DTLS
		defer writers.Done()
		for r := 0; r < per; r++ {
			for _, to := range addrs {
				_, _ = b.WriteToAddrPort(datagram(uint32(fanouts<<16|r)), to)
			}
		}
	}()
	writers.Wait()
	readers.Wait()
	for i, got := range results {
		next := map[uint32]uint32{}
		for _, v := range got {
			src, seq := v>>16, v&0xffff
			if seq != next[src] {
				t.Fatalf("destination %d: writer %d's datagram %d arrived after %d: reordered within a writer", i, src, seq, next[src])
			}
			next[src]++
		}
	}
}

func TestBatchConnFallsBackWithoutSendmmsg(t *testing.T) {
	b := newBatchConn(listenLoopback(t))
	calls := 0
	b.writeBatch = func([]ipv4.Message, int) (int, error) {
		calls++
		return 0, fmt.Errorf("sendmmsg: %w", syscall.ENOSYS)
	}
	dst := listenLoopback(t)
	to := dst.LocalAddr().(*net.UDPAddr).AddrPort()
	for round := uint32(0); round < 2; round++ {
		b.hold()
		for v := uint32(0); v < 3; v++ {
			_, _ = b.WriteToAddrPort(datagram(round*3+v), to)
		}
		b.release()
	}
	got := receiveAll(t, dst, 6)
	for i, v := range got {
		if v != uint32(i) {
			t.Fatalf("got %v, want 0..5 in order", got)
		}
	}
	if calls != 1 || !b.unbatched.Load() {
		t.Errorf("sendmmsg tried %d times (want once, then never again), unbatched=%v", calls, b.unbatched.Load())
	}
}

// TestLoopbackFanoutBatched sends one publisher's audio to several real subscribers, whose
// copies the Engine sends in batches: every subscriber gets every payload, in order.
func TestLoopbackFanoutBatched(t *testing.T) {
	e, err := NewEngine(Config{UDPAddr: "127.0.0.1:0", LoopbackOnly: true, BatchWrites: true, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	pub := publishRTP(t, e, clientOptions{}, opusCapability, "TR_a", "PA_a")
	audio := pub.track
	go pace(ctx, 5*time.Millisecond, func(n int) error {
		i := uint16(n)
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: i, Timestamp: uint32(i) * 240}, Payload: []byte{0xfc, byte(i >> 8), byte(i)}}
		return audio.WriteRTP(pkt)
	})
	track := firstTrack(t, pub.tracks)
	if track.fanout == nil || track.fanout != e.udpBatch {
		t.Fatal("a published track does not send its fan-out through the Engine's batching socket")
	}

	const subscribers = 3
	got := make([]*received, subscribers)
	for i := range got {
		client := newTestPeer(t, newClientAPI(t, clientOptions{}))
		got[i] = collect(client)
		if _, err := subscribe(t, e, client).Subscribe(track, "TR_a", "PA_a|TR_a"); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every subscriber receives 100 packets", func() bool {
		for _, r := range got {
			if r.len() < 100 {
				return false
			}
		}
		return true
	})
	stop()
	for i, r := range got {
		pkts := r.snapshot()
		for k := 1; k < len(pkts); k++ {
			prev, cur := pkts[k-1], pkts[k]
			if cur.hdr.SequenceNumber != prev.hdr.SequenceNumber+1 {
				t.Fatalf("subscriber %d: sequence %d after %d", i, cur.hdr.SequenceNumber, prev.hdr.SequenceNumber)
			}
			if want := binary.BigEndian.Uint16(prev.payload[1:]) + 1; binary.BigEndian.Uint16(cur.payload[1:]) != want {
				t.Fatalf("subscriber %d: payload %x after %x: a packet was lost or reordered", i, cur.payload, prev.payload)
			}
		}
	}
}
