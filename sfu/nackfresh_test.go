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

// askedAfter waits until the generator has asked for every number in want (it runs on its own
// ticker), then reports which of the numbers in old it asked for meanwhile, and forgets what
// it saw. Waiting for a number that must be asked for keeps "not asked" from passing merely
// because the generator had not run yet.
func (r *nackRig) askedAfter(want []uint16, old ...uint16) []uint16 {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		all := true
		for _, sn := range want {
			all = all && r.nacked[sn] > 0
		}
		if all {
			var asked []uint16
			for _, sn := range old {
				if r.nacked[sn] > 0 {
					asked = append(asked, sn)
				}
			}
			clear(r.nacked)
			r.mu.Unlock()
			return asked
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			r.t.Fatalf("the generator never asked for %v", want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNACKsLeaveOutWhatACutSwallowed(t *testing.T) {
	r := newNACKRig(t)
	r.arrive(1, 20)
	// The link is down for 2 s; its first packet after the return is number 200. Then one
	// packet is lost at random (202): it is asked for, and none of those the cut swallowed.
	r.wait(2 * time.Second)
	r.arrive(200, 201)
	r.arrive(203, 205)
	if asked := r.askedAfter([]uint16{202}, 21, 100, 150, 199); len(asked) > 0 {
		t.Fatalf("packets sent during a 2 s cut were asked for: %v", asked)
	}
}

func TestNACKsAfterAShortSilenceKeepTheRecentPart(t *testing.T) {
	r := newNACKRig(t)
	r.arrive(1, 10)
	// 300 ms without a packet (a path switch), 49 packets missing across it: right after it,
	// all of them may still be played.
	r.wait(300 * time.Millisecond)
	r.arrive(60, 60)
	r.askedAfter([]uint16{11, 30, 59})
	// 300 ms later the first packets of the gap are 600 ms old, the last ones 300 ms.
	r.wait(300 * time.Millisecond)
	r.arrive(61, 61)
	r.askedAfter([]uint16{59}) // a round under way when the clock moved may still ask for 11
	if asked := r.askedAfter([]uint16{59}, 11, 12); len(asked) > 0 {
		t.Fatalf("asked for %v, sent over 400 ms ago", asked)
	}
}
