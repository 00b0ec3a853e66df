package sfu

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// BenchmarkForwardPion measures the whole forwarding path to real subscribers: the SFU's header
// rewrite, pion's interceptors, SRTP encryption (AES-GCM, as negotiated with browsers) and one
// UDP send per copy (or one sendmmsg per fan-out, as the Engine does), over loopback. The subscribers are pion peer connections in a child
// process (this test binary again), so that their reading and decrypting is not timed: the
// figure is the server's own cost per forwarded packet. Run it pinned, with the clients on the
// other core:
//
//	HEMICYCLE_BENCH_CLIENT_CPU=1 taskset -c 0 go test -run '^$' -bench ForwardPion -benchmem -cpu 1 ./sfu
//
// cpu-ns/forward is the process's CPU time (all its threads, pion's included) per forwarded
// packet: unlike ns/forward it does not count the time spent waiting for a core on a busy
// machine. Allocations are those of the whole process while the packets are forwarded (pion's own
// goroutines included), divided by the packets handed to the track.
func BenchmarkForwardPion(b *testing.B) {
	for _, c := range []struct {
		name    string
		codec   webrtc.RTPCodecParameters
		kind    webrtc.RTPCodecType
		payload int
	}{
		{"audio-100B", opusCodec, webrtc.RTPCodecTypeAudio, 100},
		{"video-1100B", vp8Codec, webrtc.RTPCodecTypeVideo, 1100},
	} {
		for _, n := range []int{1, 20, 100} {
			var f *pionFixture // made by the first sub-benchmark that runs: setting up 100 clients takes a while
			for _, batch := range []bool{false, true} {
				send := "sendto"
				if batch {
					send = "sendmmsg"
				}
				b.Run(fmt.Sprintf("%s/subscribers=%d/%s", c.name, n, send), func(b *testing.B) {
					if f == nil {
						f = newPionFixture(b, c.codec, c.kind, n)
					}
					f.track.fanout = nil
					if batch {
						f.track.fanout = f.engine.udpBatch
					}
					f.run(b, c.payload)
				})
			}
			if f != nil {
				f.close()
			}
		}
	}
}

// pionFixture is an Engine with n subscriber transports, connected to clients in a child
// process, all subscribed to one track fed by the benchmark.
type pionFixture struct {
	tb     testing.TB
	engine *Engine
	track  *PublishedTrack
	layer  *upLayer
	subs   []*Transport
	kind   webrtc.RTPCodecType
	pt     uint8
	sn     uint16
	pkt    inPacket
	raw    [maxPacketSize]byte

	child   *exec.Cmd
	toChild io.WriteCloser
	sendMu  sync.Mutex
	enc     *json.Encoder
	answers sync.Map // id -> chan string
	counts  chan clientCount
	readEnd chan struct{}
}

// benchMsg is the line protocol between the benchmark and its client process.
type benchMsg struct {
	Op        string                   `json:"op"` // offer, candidate, count (both ways), answer
	ID        int                      `json:"id,omitempty"`
	SDP       string                   `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	Receiving int                      `json:"receiving,omitempty"`
	Packets   int64                    `json:"packets,omitempty"`
}

type clientCount struct {
	receiving int
	packets   int64
}

const benchClientsEnv = "HEMICYCLE_SFU_BENCH_CLIENTS"

func newPionFixture(tb testing.TB, codec webrtc.RTPCodecParameters, kind webrtc.RTPCodecType, n int) *pionFixture {
	tb.Helper()
	e, err := NewEngine(Config{UDPAddr: "127.0.0.1:0", LoopbackOnly: true, BatchWrites: true, Logger: discardLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	f := &pionFixture{tb: tb, engine: e, kind: kind, pt: uint8(codec.PayloadType), counts: make(chan clientCount, 1), readEnd: make(chan struct{})}
	f.track = newPublishedTrack("TR_bench", "PA_bench", codec, kind, nil, nil, discardLogger())
	var ok bool
	if f.layer, ok = f.track.addLayer("", 0x1234); !ok {
		tb.Fatal("no layer")
	}
	f.startChild()
	for i := 0; i < n; i++ {
		f.subscribe(i)
	}
	// Feed packets until every client has received one: all transports are connected, every
	// DownTrack is bound and SRTP is up.
	deadline := time.Now().Add(60 * time.Second)
	for {
		for k := 0; k < 5; k++ {
			f.feed(make([]byte, 100), true)
		}
		if c := f.count(); c.receiving == n {
			break
		}
		if time.Now().After(deadline) {
			f.close()
			tb.Fatalf("after 60 s only %d of %d clients receive", f.count().receiving, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f
}

func (f *pionFixture) startChild() {
	f.tb.Helper()
	args := []string{"-test.run=^TestBenchClientProcess$", "-test.count=1"}
	name := os.Args[0]
	if cpu := os.Getenv("HEMICYCLE_BENCH_CLIENT_CPU"); cpu != "" {
		args = append([]string{"-c", cpu, name}, args...)
		name = "taskset"
	}
	f.child = exec.Command(name, args...)
	f.child.Env = append(os.Environ(), benchClientsEnv+"=1")
	f.child.Stderr = os.Stderr
	in, err := f.child.StdinPipe()
	if err != nil {
		f.tb.Fatal(err)
	}
	out, err := f.child.StdoutPipe()
	if err != nil {
		f.tb.Fatal(err)
	}
	if err := f.child.Start(); err != nil {
		f.tb.Fatalf("start the client process: %v", err)
	}
	f.toChild, f.enc = in, json.NewEncoder(in)
	go func() {
		defer close(f.readEnd)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m benchMsg
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue // the test framework's own output
			}
			switch m.Op {
			case "answer":
				if ch, ok := f.answers.Load(m.ID); ok {
					ch.(chan string) <- m.SDP
				}
			case "count":
				f.counts <- clientCount{m.Receiving, m.Packets}
			}
		}
	}()
}

func (f *pionFixture) send(m benchMsg) {
	f.sendMu.Lock()
	defer f.sendMu.Unlock()
	_ = f.enc.Encode(m)
}

func (f *pionFixture) count() clientCount {
	f.send(benchMsg{Op: "count"})
	select {
	case c := <-f.counts:
		return c
	case <-time.After(10 * time.Second):
		f.tb.Fatal("the client process does not answer")
		return clientCount{}
	}
}

func (f *pionFixture) subscribe(id int) {
	f.tb.Helper()
	answer := make(chan string, 1)
	f.answers.Store(id, answer)
	var tr *Transport
	var err error
	tr, err = f.engine.NewTransport(SubscriberRole, TransportHandlers{
		OnICECandidate: func(c webrtc.ICECandidateInit) { f.send(benchMsg{Op: "candidate", ID: id, Candidate: &c}) },
		OnNegotiationNeeded: func() {
			offer, err := tr.Offer(false)
			if err != nil {
				return
			}
			f.send(benchMsg{Op: "offer", ID: id, SDP: offer.SDP})
			select {
			case sdp := <-answer:
				_ = tr.SetAnswer(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp})
			case <-time.After(30 * time.Second):
			}
		},
	})
	if err != nil {
		f.tb.Fatal(err)
	}
	f.subs = append(f.subs, tr)
	if _, err := tr.Subscribe(f.track, "TR_bench", "PA_bench|TR_bench"); err != nil {
		f.tb.Fatal(err)
	}
}

// feed hands one packet to the track, as its reader would.
func (f *pionFixture) feed(payload []byte, key bool) {
	if f.kind == webrtc.RTPCodecTypeVideo {
		copy(payload, vp8Frame(key, 0)[:7])
	}
	raw := f.raw[:]
	raw[0], raw[1] = 0x80, f.pt
	binary.BigEndian.PutUint16(raw[2:], f.sn)
	binary.BigEndian.PutUint32(raw[4:], uint32(f.sn)*960)
	binary.BigEndian.PutUint32(raw[8:], f.layer.ssrc)
	n := 12 + copy(raw[12:], payload)
	f.sn++
	f.track.handle(f.layer, &f.pkt, raw[:n], time.Now().UnixNano())
}

func (f *pionFixture) run(b *testing.B, size int) {
	payload := make([]byte, size)
	before := f.count().packets
	sentBefore := f.sent()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		f.feed(payload, false)
	}
	cpu = processCPU() - cpu
	b.StopTimer()
	n := len(f.subs)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/forward")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/forward")
	if sent := f.sent() - sentBefore; sent != uint64(b.N*n) {
		b.Fatalf("%d packets sent to subscribers, want %d", sent, b.N*n)
	}
	// The kernel drops what a busy client cannot read in time; the figure says how much the
	// clients saw, as a check that the packets really went out.
	time.Sleep(200 * time.Millisecond)
	b.ReportMetric(float64(f.count().packets-before)/float64(b.N*n), "delivered")
}

func (f *pionFixture) sent() uint64 {
	var total uint64
	for _, d := range *f.track.downTracks.Load() {
		p, _ := d.Stats()
		total += p
	}
	return total
}

func (f *pionFixture) close() {
	for _, tr := range f.subs {
		_ = tr.Close()
	}
	_ = f.engine.Close()
	_ = f.toChild.Close()
	<-f.readEnd
	_ = f.child.Wait()
}

// processCPU is the CPU time this process has used (user and system, all threads). On a
// machine shared with other work it measures the cost of an operation better than the wall
// clock, which also counts the time the process waited for a core.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBenchClientProcess is the client side of BenchmarkForwardPion; it does nothing unless the
// benchmark started it. It answers the SFU's offers with pion peer connections that read and
// count what they receive, until its standard input closes.
func TestBenchClientProcess(t *testing.T) {
	if os.Getenv(benchClientsEnv) == "" {
		t.Skip("started by BenchmarkForwardPion only")
	}
	api := newClientAPI(t, clientOptions{})
	out := json.NewEncoder(os.Stdout)
	var outMu sync.Mutex
	reply := func(m benchMsg) {
		outMu.Lock()
		defer outMu.Unlock()
		_ = out.Encode(m)
	}
	var packets atomic.Int64
	var receiving atomic.Int32
	peers := map[int]*testPeer{}
	var wg sync.WaitGroup
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m benchMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("bad message %q: %v", sc.Text(), err)
		}
		switch m.Op {
		case "offer":
			p := peers[m.ID]
			if p == nil {
				p = newTestPeer(t, api)
				peers[m.ID] = p
				p.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
					wg.Add(1)
					defer wg.Done()
					buf := make([]byte, maxPacketSize)
					first := true
					for {
						if _, _, err := tr.Read(buf); err != nil {
							return
						}
						if first {
							receiving.Add(1)
							first = false
						}
						packets.Add(1)
					}
				})
			}
			if err := p.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
				t.Fatalf("client %d: apply offer: %v", m.ID, err)
			}
			answer, err := p.pc.CreateAnswer(nil)
			if err != nil {
				t.Fatalf("client %d: answer: %v", m.ID, err)
			}
			gathered := webrtc.GatheringCompletePromise(p.pc)
			if err := p.pc.SetLocalDescription(answer); err != nil {
				t.Fatalf("client %d: apply answer: %v", m.ID, err)
			}
			<-gathered
			reply(benchMsg{Op: "answer", ID: m.ID, SDP: p.pc.LocalDescription().SDP})
		case "candidate":
			if p := peers[m.ID]; p != nil && m.Candidate != nil {
				p.addCandidate(*m.Candidate)
			}
		case "count":
			reply(benchMsg{Op: "count", Receiving: int(receiving.Load()), Packets: packets.Load()})
		}
	}
	for _, p := range peers {
		_ = p.pc.Close()
	}
	wg.Wait()
}
