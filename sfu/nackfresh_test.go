package sfu

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
)

// nackRig runs pion's NACK generator behind freshNACKs, as the publisher connection does, on a
// clock the test moves.
type nackRig struct {
	t      *testing.T
	mu     sync.Mutex
	now    time.Time
	nacked map[uint16]int // how often each number was asked for
	read   interceptor.RTPReader
	next   []byte
}

func newNACKRig(t *testing.T) *nackRig {
	r := &nackRig{t: t, now: time.Unix(1_000_000, 0), nacked: map[uint16]int{}}
	gen, err := nack.NewGeneratorInterceptor(nack.GeneratorInterval(5*time.Millisecond), nack.GeneratorMaxNacksPerPacket(1000))
	if err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	reg.Add(freshNACKsFactory{now: r.clock})
	reg.Add(gen)
	chain, err := reg.Build("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chain.Close() })
	chain.BindRTCPWriter(interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, _ interceptor.Attributes) (int, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, p := range pkts {
			if n, ok := p.(*rtcp.TransportLayerNack); ok {
				for _, pair := range n.Nacks {
					for _, sn := range pair.PacketList() {
						r.nacked[sn]++
					}
				}
			}
		}
		return 0, nil
	}))
	info := &interceptor.StreamInfo{SSRC: 5, RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}}}
	r.read = chain.BindRemoteStream(info, interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		return copy(b, r.next), a, nil
	}))
	return r
}

func (r *nackRig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *nackRig) wait(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

// arrive reads packets numbered from..to (inclusive), 10 ms apart on the test's clock.
func (r *nackRig) arrive(from, to uint16) {
	for sn := from; ; sn++ {
		pkt := make([]byte, 20)
		pkt[0] = 0x80
		pkt[1] = 96
		binary.BigEndian.PutUint16(pkt[2:], sn)
		binary.BigEndian.PutUint32(pkt[8:], 5)
		r.next = pkt
		if _, _, err := r.read.Read(make([]byte, 1500), interceptor.Attributes{}); err != nil {
			r.t.Fatal(err)
		}
		if sn == to {
			return
		}
		r.wait(10 * time.Millisecond)
	}
}

// askedFor waits for the generator's next rounds and reports which of the numbers were asked
// for since the last call.
func (r *nackRig) askedFor(sns ...uint16) map[uint16]bool {
	time.Sleep(40 * time.Millisecond) // several rounds of the generator
	r.mu.Lock()
	defer r.mu.Unlock()
	got := map[uint16]bool{}
	for _, sn := range sns {
		got[sn] = r.nacked[sn] > 0
	}
	clear(r.nacked)
	return got
}

func TestNACKsLeaveOutWhatACutSwallowed(t *testing.T) {
	r := newNACKRig(t)
	r.arrive(1, 20)
	// The link is down for 2 s; its first packet after the return is number 200.
	r.wait(2 * time.Second)
	r.arrive(200, 201)
	if got := r.askedFor(21, 100, 199); got[21] || got[100] || got[199] {
		t.Fatalf("packets sent during a 2 s cut were asked for: %v", got)
	}
	// Then one packet lost at random: it is asked for.
	r.arrive(203, 205)
	if got := r.askedFor(202, 150); !got[202] || got[150] {
		t.Fatalf("asked for %v; want 202 (lost just now) and not 150 (lost in the cut)", got)
	}
}

func TestNACKsAfterAShortSilenceKeepTheRecentPart(t *testing.T) {
	r := newNACKRig(t)
	r.arrive(1, 10)
	// 300 ms without a packet (a path switch), 49 packets missing across it.
	r.wait(300 * time.Millisecond)
	r.arrive(60, 60)
	if got := r.askedFor(11, 59); !got[11] || !got[59] {
		t.Fatalf("right after a 300 ms gap all of it may still be played; asked for %v", got)
	}
	// 300 ms later the first packets of the gap are 600 ms old, the last ones 300 ms.
	r.wait(300 * time.Millisecond)
	r.arrive(61, 61)
	if got := r.askedFor(11, 59); got[11] || !got[59] {
		t.Fatalf("asked for %v; want 59 and not 11 (sent over 400 ms ago)", got)
	}
}
