package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/ingeco/hemicycle/cmd/hemicycle/clips"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

func TestPercentileNearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample is every percentile", ms(7), 99, 7 * time.Millisecond},
		{"median of odd count", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of even count is the lower middle", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(slices.Collect(func(yield func(int) bool) {
			for i := 1; i <= 100; i++ {
				if !yield(i) {
					return
				}
			}
		})...), 99, 99 * time.Millisecond},
		{"p99 of 10 is the largest", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p100 is the largest", ms(1, 2, 3), 100, 3 * time.Millisecond},
	}
	for _, c := range cases {
		if got := percentile(c.sorted, c.p); got != c.want {
			t.Errorf("%s: percentile(%v, %g) = %v, want %v", c.name, c.sorted, c.p, got, c.want)
		}
	}
}

func TestDurationSamplesSummary(t *testing.T) {
	var s durationSamples
	for _, v := range []int{50, 10, 40, 20, 30} { // unsorted on purpose
		s.add(time.Duration(v) * time.Millisecond)
	}
	got := s.summary()
	want := latencySummary{Count: 5, P50: 30 * time.Millisecond, P99: 50 * time.Millisecond, Max: 50 * time.Millisecond}
	if got != want {
		t.Fatalf("summary = %+v, want %+v", got, want)
	}
}

func TestHistogramBucketsCoverEveryValueOnce(t *testing.T) {
	prev := -1
	check := func(v int64) {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d, outside [0, %d)", v, i, histBuckets)
		}
		lo, hi := histBounds(i)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d whose bounds are [%d, %d]", v, i, lo, hi)
		}
		if hi > histLinear && float64(hi-lo+1)/float64(lo) > 1.0/histSub+1e-12 {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its values", i, lo, hi, histSub)
		}
	}
	for v := int64(0); v < 1<<16; v++ {
		check(v)
		if i := histIndex(v); i < prev || i > prev+1 {
			t.Fatalf("histIndex(%d) = %d after %d: buckets must be consecutive", v, i, prev)
		} else {
			prev = i
		}
	}
	for shift := 16; shift < 63; shift++ {
		check(1<<shift - 1)
		check(1 << shift)
		check(1<<shift + 1<<(shift-1))
	}
	check(1<<63 - 1)
}

func TestHistogramPercentilesMatchExactOnes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h histogram
	var exact []time.Duration
	for range 20000 {
		// A long-tailed delay distribution: mostly sub-millisecond, some tens of milliseconds.
		v := int64(rng.ExpFloat64() * 400e3)
		if rng.IntN(50) == 0 {
			v += int64(rng.IntN(30e6))
		}
		h.record(v)
		exact = append(exact, time.Duration(v))
	}
	slices.Sort(exact)
	for _, p := range []float64{50, 90, 99, 99.9} {
		want := float64(percentile(exact, p))
		got := float64(h.percentile(p))
		if d := (got - want) / want; d > 1.0/histSub || d < -1.0/histSub {
			t.Errorf("p%g = %.0f ns from the histogram, %.0f ns exactly: %.2f%% off, want within %.2f%%",
				p, got, want, 100*d, 100.0/histSub)
		}
	}
	if got := h.summary(); got.Count != 20000 || got.Max != exact[len(exact)-1] {
		t.Errorf("summary count %d max %v, want 20000 and %v", got.Count, got.Max, exact[len(exact)-1])
	}
	var empty histogram
	if empty.percentile(99) != 0 {
		t.Error("an empty histogram must report 0")
	}
}

func TestHistogramClampsNegativeValues(t *testing.T) {
	var h histogram
	h.record(-5) // a clock step backwards between stamping and receipt
	if h.percentile(50) != 0 || h.total.Load() != 1 {
		t.Fatalf("negative value: p50 %d, count %d; want it counted as 0", h.percentile(50), h.total.Load())
	}
}

func TestSeqUnwrapperAcrossTheWrap(t *testing.T) {
	var u seqUnwrapper
	seqs := []uint16{65533, 65534, 65535, 0, 1, 65535 /* late */, 3, 2 /* reordered */, 4}
	var got []int64
	for _, s := range seqs {
		got = append(got, u.update(s))
	}
	base := got[0]
	want := []int64{0, 1, 2, 3, 4, 2, 6, 5, 7}
	for i := range want {
		if got[i]-base != want[i] {
			t.Fatalf("extended sequence numbers %v (relative %d at %d), want relative %v", got, got[i]-base, i, want)
		}
	}
	if u.highest-base != 7 {
		t.Fatalf("highest %d, want base+7", u.highest-base)
	}
}

func TestStreamCounterCountsLossInTheWindow(t *testing.T) {
	c := newStreamCounter("audio")
	if w := streamWindow(c.snapshot(), c.snapshot()); w != (windowCounts{}) {
		t.Fatalf("silent stream: %+v, want nothing expected", w)
	}
	for s := uint16(65530); s != 2; s++ { // 65530..65535, 0, 1
		c.observe(s, 100)
	}
	start := c.snapshot()
	// In the window: 2, 3, then 4 and 5 lost, 6, 7, a duplicate of 7, then 9 (8 lost).
	for _, s := range []uint16{2, 3, 6, 7, 7, 9} {
		c.observe(s, 100)
	}
	w := streamWindow(start, c.snapshot())
	want := windowCounts{packets: 6, bytes: 600, expected: 8, lost: 2}
	if w != want {
		t.Fatalf("window %+v, want %+v", w, want)
	}
}

func TestStreamWindowForAStreamStartingInTheWindow(t *testing.T) {
	c := newStreamCounter("video")
	start := c.snapshot()
	for _, s := range []uint16{100, 101, 103} {
		c.observe(s, 1000)
	}
	w := streamWindow(start, c.snapshot())
	if want := (windowCounts{packets: 3, bytes: 3000, expected: 4, lost: 1}); w != want {
		t.Fatalf("window %+v, want %+v (counted from the first packet)", w, want)
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process may choose for itself.
	line := "4242 (hemi (cycle) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615\n"
	got, system, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want { // (250+75) ticks of 10 ms
		t.Fatalf("CPU %v, want %v", got, want)
	}
	if want := 750 * time.Millisecond; system != want {
		t.Fatalf("system CPU %v, want %v (stime, 75 ticks)", system, want)
	}
	for _, bad := range []string{"", "4242 hemicycle S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 2x0 75 0"} {
		if _, _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) accepted a malformed line", bad)
		}
	}
	// And the real thing: this process has used some CPU, and not more than it has lived.
	self, err := readProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self.cpu < 0 || self.cpu > time.Hour {
		t.Fatalf("own CPU time %v is implausible", self.cpu)
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\themicycle\nVmPeak:\t  900000 kB\nVmRSS:\t   51200 kB\nRssAnon:\t   40000 kB\n"
	got, err := parseVmRSS([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if got != 51200*1024 {
		t.Fatalf("RSS %d bytes, want %d", got, 51200*1024)
	}
	if _, err := parseVmRSS([]byte("Name:\tkthreadd\nState:\tS\n")); err == nil {
		t.Error("a status without VmRSS was accepted")
	}
	if _, err := parseVmRSS([]byte("VmRSS:\t 12 MB\n")); err == nil {
		t.Error("a VmRSS in an unknown unit was accepted")
	}
	self, err := readProcRSS(os.Getpid())
	if err != nil || self < 1<<20 {
		t.Fatalf("own RSS %d, %v: want at least 1 MiB", self, err)
	}
}

func TestParseMachineBusy(t *testing.T) {
	stat := "cpu  1000 50 300 90000 20 10 40 5 7 0\ncpu0 500 25 150 45000 10 5 20 2 0 0\nintr 123\n"
	got, err := parseMachineBusy([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	// user+nice+system+irq+softirq+steal = 1000+50+300+10+40+5 ticks; idle, iowait and guest
	// (already inside user) excluded.
	if want := 14050 * time.Millisecond; got != want {
		t.Fatalf("busy %v, want %v", got, want)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 3\n", "cpu 1 2 x 4 5 6 7 8\n"} {
		if _, err := parseMachineBusy([]byte(bad)); err == nil {
			t.Errorf("parseMachineBusy(%q) accepted a malformed /proc/stat", bad)
		}
	}
	if _, err := readMachineCPU(); err != nil {
		t.Fatal(err)
	}
}

func TestCPUBetweenSubtractsBenchAndServer(t *testing.T) {
	t0 := time.Unix(100, 0)
	t1 := t0.Add(10 * time.Second)
	a := cpuSample{server: &procCPU{at: t0}, self: procCPU{at: t0}, machine: &machineCPU{at: t0}}
	b := cpuSample{server: &procCPU{at: t1, cpu: 6 * time.Second, system: 4 * time.Second}, self: procCPU{at: t1, cpu: 8 * time.Second},
		machine: &machineCPU{at: t1, busy: 17 * time.Second}}
	u := cpuBetween(a, b)
	if u.server == nil || *u.server != 0.6 || u.bench != 0.8 || u.others == nil || *u.others < 0.2999 || *u.others > 0.3001 {
		t.Fatalf("cpuBetween = server %v bench %g others %v; want 0.6, 0.8, 0.3", u.server, u.bench, u.others)
	}
	if u.serverSystem == nil || *u.serverSystem != 0.4 {
		t.Fatalf("server's kernel share %v, want 0.4", u.serverSystem)
	}
	a.server, b.server, b.machine = nil, nil, nil
	if u := cpuBetween(a, b); u.server != nil || u.others != nil {
		t.Fatalf("missing samples must give no figure, got %+v", u)
	}
}

func TestSchedWait(t *testing.T) {
	got, err := parseSchedWait([]byte("123456789 4500000 321\n"))
	if err != nil || got != 4500*time.Microsecond {
		t.Fatalf("parseSchedWait = %v, %v; want 4.5ms", got, err)
	}
	for _, bad := range []string{"", "1 2", "1 x 3"} {
		if _, err := parseSchedWait([]byte(bad)); err == nil {
			t.Errorf("parseSchedWait(%q) accepted a malformed line", bad)
		}
	}
	self, err := readProcCPU(os.Getpid())
	if err != nil || !self.waitKnown {
		t.Fatalf("own schedstats: %+v, %v", self, err)
	}
	t0 := time.Unix(0, 0)
	a := procCPU{at: t0, wait: time.Second, waitKnown: true}
	b := procCPU{at: t0.Add(2 * time.Second), wait: 1200 * time.Millisecond, waitKnown: true}
	if w := waitBetween(a, b); w < 0.0999 || w > 0.1001 {
		t.Errorf("200 ms of wait in 2 s = %g per second, want 0.1", w)
	}
	b.waitKnown = false
	if w := waitBetween(a, b); w >= 0 {
		t.Errorf("unknown wait reported as %g", w)
	}
}

func TestCoresBetween(t *testing.T) {
	t0 := time.Unix(100, 0)
	a := procCPU{at: t0, cpu: 2 * time.Second}
	b := procCPU{at: t0.Add(4 * time.Second), cpu: 5 * time.Second}
	if got := coresBetween(a, b); got != 0.75 {
		t.Fatalf("3 s of CPU in 4 s = %g cores, want 0.75", got)
	}
	if got := coresBetween(a, a); got != 0 {
		t.Fatalf("no wall time: %g, want 0", got)
	}
}

func TestStampRoundTrip(t *testing.T) {
	sent := time.Unix(1_700_000_000, 123_456_789)
	frame := []byte{0xfc, 1, 2, 3}
	p := appendStamp(frame, sent)
	if len(p) != len(frame)+stampLen || !bytes.Equal(p[:len(frame)], frame) {
		t.Fatalf("stamped payload %x: want the frame unchanged, then %d bytes", p, stampLen)
	}
	got, ok := readStamp(p)
	if !ok || !got.Equal(sent) {
		t.Fatalf("readStamp = %v, %v; want %v", got, ok, sent)
	}
	if &p[0] == &frame[0] {
		t.Fatal("appendStamp must copy: the SDK may still hold the previous buffer")
	}
	for _, notOurs := range [][]byte{nil, frame, bytes.Repeat([]byte{0xAB}, 64), p[1 : len(p)-1]} {
		if _, ok := readStamp(notOurs); ok {
			t.Errorf("readStamp(%x) found a stamp that is not there", notOurs)
		}
	}
}

func TestParseRTPMatchesPion(t *testing.T) {
	pkts := []rtp.Packet{
		{Header: rtp.Header{Version: 2, SequenceNumber: 65535, Marker: true, PayloadType: 111, SSRC: 1}, Payload: []byte("opus")},
		{Header: rtp.Header{Version: 2, SequenceNumber: 7, PayloadType: 96, SSRC: 2, CSRC: []uint32{9, 10}}, Payload: []byte("vp8 frame")},
		{Header: rtp.Header{Version: 2, SequenceNumber: 8, Marker: true, PayloadType: 96, SSRC: 2, Padding: true, PaddingSize: 5},
			Payload: []byte("padded")},
	}
	ext := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 9, PayloadType: 96, SSRC: 3}, Payload: []byte("with extensions")}
	if err := ext.SetExtension(1, []byte{0xaa, 0xbb, 0xcc}); err != nil {
		t.Fatal(err)
	}
	if err := ext.SetExtension(3, []byte{1, 2, 3, 4, 5, 6}); err != nil {
		t.Fatal(err)
	}
	pkts = append(pkts, ext)
	for _, p := range pkts {
		raw, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		seq, marker, payload, err := parseRTP(raw)
		if err != nil {
			t.Fatalf("seq %d: %v", p.SequenceNumber, err)
		}
		if seq != p.SequenceNumber || marker != p.Marker || !bytes.Equal(payload, p.Payload) {
			t.Errorf("parseRTP = seq %d marker %v payload %q; want %d %v %q", seq, marker, payload, p.SequenceNumber, p.Marker, p.Payload)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 11), append([]byte{0x40}, make([]byte, 11)...), {0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0, 9}} {
		if _, _, _, err := parseRTP(bad); err == nil {
			t.Errorf("parseRTP(%x) accepted a malformed packet", bad)
		}
	}
}

// The stamp travels in the last RTP packet of each frame, as pion's packetizers (used by the
// SDK) split it. When a frame's end falls so that the stamp is split over two packets, the
// receiver must skip that frame, never read a wrong time.
func TestStampSurvivesPacketization(t *testing.T) {
	frames, err := clips.VP8()
	if err != nil {
		t.Fatal(err)
	}
	opus, err := clips.Opus()
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, frames []clips.Frame, payloader rtp.Payloader, clock uint32) {
		pk := rtp.NewPacketizer(1200, 96, 1, payloader, rtp.NewRandomSequencer(), clock)
		recovered := 0
		for i, f := range frames {
			sent := time.Unix(1_700_000_000, int64(i)*1000)
			pkts := pk.Packetize(appendStamp(f.Data, sent), 3000)
			for j, p := range pkts {
				raw, err := p.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				_, marker, payload, err := parseRTP(raw)
				if err != nil {
					t.Fatal(err)
				}
				if marker != (j == len(pkts)-1) {
					t.Fatalf("%s frame %d packet %d: marker %v", name, i, j, marker)
				}
				got, ok := readStamp(payload)
				if ok && (!marker || !got.Equal(sent)) {
					t.Fatalf("%s frame %d packet %d: read stamp %v (marker %v), sent %v", name, i, j, got, marker, sent)
				}
				if ok {
					recovered++
				}
			}
		}
		if recovered < len(frames)*9/10 {
			t.Errorf("%s: stamp recovered from %d of %d frames, want at least 90%%", name, recovered, len(frames))
		}
	}
	check("VP8", frames, &codecs.VP8Payloader{EnablePictureID: true}, 90000)
	check("Opus", opus, &codecs.OpusPayloader{}, 48000)
}

func TestRecordDelayDropsImpossibleStamps(t *testing.T) {
	var r benchRun
	for _, d := range []time.Duration{300 * time.Microsecond, -2 * time.Millisecond, 2 * time.Second} {
		r.recordDelay(d)
	}
	for _, d := range []time.Duration{-3 * time.Second, 2 * time.Hour} {
		r.recordDelay(d)
	}
	if got := r.delay.total.Load(); got != 3 {
		t.Errorf("%d delays recorded, want the 3 plausible ones", got)
	}
	if got := r.implausibleStamps.Load(); got != 2 {
		t.Errorf("%d impossible stamps counted, want 2", got)
	}
	if max := r.delay.summary().Max; max < 1900*time.Millisecond || max > 2*time.Second {
		t.Errorf("max delay %v, want about 2 s", max)
	}
}

func TestNextKeyframe(t *testing.T) {
	f := []clips.Frame{{Keyframe: true}, {}, {}, {Keyframe: true}, {}}
	for i, want := range []int{3, 3, 3, 0, 0} {
		if got := nextKeyframe(f, i); got != want {
			t.Errorf("nextKeyframe(%d) = %d, want %d", i, got, want)
		}
	}
	if got := nextKeyframe([]clips.Frame{{}, {}}, 1); got != 1 {
		t.Errorf("no keyframe at all: got %d, want to stay at 1", got)
	}
}

func TestCheckLoopbackURL(t *testing.T) {
	for _, ok := range []string{"ws://127.0.0.1:7880", "ws://127.8.9.10:1", "wss://localhost", "http://LOCALHOST:7880/", "ws://[::1]:7880"} {
		if err := checkLoopbackURL(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"ws://10.0.0.1:7880", "ws://example.org", "ws://localhost.example.org", "ws://128.0.0.1", "ws://[::2]:7880",
		"ftp://127.0.0.1", "127.0.0.1:7880", "ws://0.0.0.0:7880", "ws://%zz"} {
		if err := checkLoopbackURL(bad); err == nil {
			t.Errorf("%s accepted: the bench must only load this machine", bad)
		}
	}
}

func TestBenchFlagsValidation(t *testing.T) {
	parse := func(args ...string) error {
		_, err := parseBenchFlags(args, io.Discard, io.Discard)
		return err
	}
	if err := parse("--scenario", "audio-fanout", "--listeners", "1999"); err != nil {
		t.Errorf("2000 participants refused: %v", err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "audio-fanout", "--listeners", "2000"}, "more than 2000"},
		{[]string{"--scenario", "council", "--viewers", "1995"}, "more than 2000"},
		{[]string{"--scenario", "join-storm", "--joins", "5000"}, "more than 2000"},
		{[]string{}, "--scenario is required"},
		{[]string{"--scenario", "conference"}, "want audio-fanout, council or join-storm"},
		{[]string{"--scenario", "council", "--url", "ws://192.0.2.1:7880"}, "not loopback"},
		{[]string{"--scenario", "council", "--councillors", "0"}, "--councillors 0"},
		{[]string{"--scenario", "join-storm", "--rate", "0"}, "--rate 0"},
		{[]string{"--scenario", "join-storm", "--rate", "NaN"}, "--rate NaN"},
		{[]string{"--scenario", "join-storm", "--duration", "2h"}, "--duration 2h0m0s"},
		{[]string{"--scenario", "join-storm", "--server-pid", "999999999"}, "process 999999999"},
		{[]string{"--scenario", "join-storm", "extra"}, "unexpected arguments"},
	}
	for _, c := range cases {
		err := parse(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("bench %v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}

func TestCmdBenchRefusesARemoteServerBeforeConnecting(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"bench", "--scenario", "audio-fanout", "--url", "ws://203.0.113.7:7880"}, &out, &errOut, noEnv)
	if err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Fatalf("got %v, want a refusal of the non-loopback URL", err)
	}
	if out.Len() != 0 {
		t.Fatalf("printed a report for a refused run: %q", out.String())
	}
}

func TestPlanScenario(t *testing.T) {
	council, err := planScenario(benchConfig{Scenario: scenarioCouncil, Councillors: 10, Viewers: 200})
	if err != nil {
		t.Fatal(err)
	}
	if len(council.senders) != 10 || len(council.receivers) != 200 || council.expectedStreams != 10*9*2+200*2 {
		t.Fatalf("council: %d senders, %d receivers, %d streams; want 10, 200, 580",
			len(council.senders), len(council.receivers), council.expectedStreams)
	}
	if council.senders[0].identity != floorHolderIdentity || !council.senders[0].video || !council.senders[0].autoSubscribe {
		t.Fatalf("first councillor %+v: want the floor holder, publishing video, seeing everyone", council.senders[0])
	}
	viewer := council.receivers[0]
	if !viewer.timed || !viewer.wants(floorHolderIdentity, "video") || !viewer.wants(floorHolderIdentity, "audio") ||
		viewer.wants("councillor-002", "audio") || viewer.wants("councillor-002", "video") {
		t.Fatalf("viewer %+v must receive the floor holder's audio and video only", viewer)
	}
	if council.senders[1].timed {
		t.Fatal("a councillor joining an empty room must not count as a timed join")
	}

	storm, err := planScenario(benchConfig{Scenario: scenarioJoinStorm, Joins: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(storm.senders) != 1 || !storm.senders[0].audio || storm.senders[0].video || len(storm.receivers) != 3 || storm.expectedStreams != 3 {
		t.Fatalf("join storm plan %+v", storm)
	}
	j := storm.receivers[2]
	if j.identity != "joiner-0003" || !j.wants(publisherIdentity, "audio") || j.wants(publisherIdentity, "video") || j.wants("joiner-0001", "audio") {
		t.Fatalf("joiner %+v must subscribe to the publisher's audio only", j)
	}

	fan, err := planScenario(benchConfig{Scenario: scenarioAudioFanout, Listeners: 5})
	if err != nil || fan.participants() != 6 || fan.expectedStreams != 5 {
		t.Fatalf("fan-out plan %+v, %v", fan, err)
	}
}

func sampleReport() *benchReport {
	cores := 0.5
	jpCores, perJoin := 0.8, 12.5
	r := &benchReport{
		Scenario: scenarioAudioFanout, URL: "ws://127.0.0.1:7880", Room: "bench-x", Listeners: 100, Rate: 20,
		ParticipantsPlanned: 101, ParticipantsJoined: 101, StreamsExpected: 100, StreamsReceiving: 99,
		WindowSeconds: 10, Packets: 50000, AudioPackets: 50000, Bytes: 5_000_000, PacketsExpected: 50100, PacketsLost: 100,
		ServerPID: 42, ServerCPUCores: &cores, ServerRSSBefore: 10 << 20, ServerRSSUnderLoad: 10<<20 + 101*512<<10,
		BenchCPUCores: 0.95, OtherCPUCores: new(0.4), ServerRunQueueWait: new(0.2), BenchRunQueueWait: new(0.01),
		JoinPhase: joinPhase{Seconds: 5, Joined: 100, ServerCPUCores: &jpCores, ServerCPUMsPerJoin: &perJoin, BenchCPUCores: 0.4},
		JoinTime:  latency{Count: 100, P50: 120, P99: 480, Max: 510},
		Delay:     latency{Count: 49000, P50: 0.4, P99: 3.2, Max: 9},
	}
	r.derive()
	return r
}

func TestReportDerivedFigures(t *testing.T) {
	r := sampleReport()
	near := func(name string, got *float64, want float64) {
		t.Helper()
		if got == nil || *got < want*0.999 || *got > want*1.001 {
			t.Errorf("%s = %v, want %g", name, got, want)
		}
	}
	if r.PacketsPerSecond != 5000 || r.MbitPerSecond != 4 {
		t.Errorf("rates %g pkt/s %g Mbit/s, want 5000 and 4", r.PacketsPerSecond, r.MbitPerSecond)
	}
	near("loss", &r.LossRatio, 100.0/50100)
	near("pkt/s per core", r.PacketsPerSecondCore, 10000)
	near("µs per packet", r.ServerCPUMicrosPacket, 100)        // 5 core-seconds over 50,000 packets
	near("core-ms per stream", r.ServerCPUPerStream, 500.0/99) // 500 core-ms per second over 99 streams
	near("RSS per participant", r.ServerRSSPerPart, 512<<10)
	joined := strings.Join(r.Warnings, "\n")
	for _, w := range []string{"99 of 100 expected streams", "bench itself used 0.95 cores", "other processes used 0.40 cores", "server waited 200 ms per second"} {
		if !strings.Contains(joined, w) {
			t.Errorf("warnings %q lack %q", joined, w)
		}
	}

	bare := &benchReport{Scenario: scenarioJoinStorm, WindowSeconds: 1}
	bare.derive()
	if bare.ServerCPUCores != nil || bare.PacketsPerSecondCore != nil || bare.ServerRSSPerPart != nil || len(bare.Warnings) != 0 {
		t.Errorf("without --server-pid or traffic, derived figures must stay absent: %+v", bare)
	}
}

func TestReportTable(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().writeTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"1 audio publisher → 100 listeners",
		"101 joined of 101",
		"99 receiving of 100 expected",
		"5000 pkt/s",
		"0.200% (100 of 50100 packets",
		"0.500 cores (pid 42",
		"100.0 µs",
		"10000",
		"512.0 KiB per participant",
		"p50 120 ms, p99 480 ms",
		"p50 0.40 ms, p99 3.20 ms",
		"12.5 ms server CPU per join",
		"server 200.0, bench 10.0 (ms per second",
		"warning",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	bare := &benchReport{Scenario: scenarioCouncil, Councillors: 10}
	bare.derive()
	if err := bare.writeTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "not measured (give --server-pid)") || !strings.Contains(b.String(), "none measured") {
		t.Errorf("a report without server figures must say so:\n%s", b.String())
	}
}

func TestReportJSON(t *testing.T) {
	path := t.TempDir() + "/report.json"
	if err := sampleReport().writeJSONFile(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, raw)
	}
	for key, want := range map[string]float64{
		"forwarded_packets_per_s":          5000,
		"server_cpu_cores":                 0.5,
		"forwarded_packets_per_s_per_core": 10000,
		"streams_receiving":                99,
		"packets_lost":                     100,
	} {
		if v, ok := got[key].(float64); !ok || v != want {
			t.Errorf("JSON %s = %v, want %g", key, got[key], want)
		}
	}
	jt, _ := got["join_time"].(map[string]any)
	if jt["p99_ms"] != 480.0 || jt["count"] != 100.0 {
		t.Errorf("JSON join_time = %v, want p99_ms 480 over 100", jt)
	}
	if err := sampleReport().writeJSONFile(t.TempDir() + "/missing/dir/report.json"); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

// TestBenchHelperServer is not a test: TestBenchScenariosAgainstDevServer runs this test
// binary again with HEMICYCLE_BENCH_SERVER=1 to get a development server in a process of its
// own, whose CPU and memory the bench can measure apart from its own.
func TestBenchHelperServer(t *testing.T) {
	if os.Getenv("HEMICYCLE_BENCH_SERVER") != "1" {
		t.Skip("helper process for TestBenchScenariosAgainstDevServer")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := run(ctx, []string{"--dev", "--port", "0", "--udp-port", "0", "--tcp-port", "0", "--log-level", "warn"}, os.Stdout, os.Stderr, noEnv); err != nil {
		t.Fatal(err)
	}
}

// startDevServerProcess starts the development server as a separate process and returns its
// WebSocket URL and process id; the process is stopped when the test ends.
func startDevServerProcess(t *testing.T) (string, int) {
	t.Helper()
	p, err := signalingtest.StartProcess(t, signalingtest.Command{
		Path: os.Args[0], Args: []string{"-test.run=^TestBenchHelperServer$", "-test.v"},
		Env: []string{"HEMICYCLE_BENCH_SERVER=1"},
		Dir: t.TempDir(), // the development store writes ./data
	})
	if err != nil {
		t.Fatalf("development server: %v", err)
	}
	return p.WS(), p.Pid
}

// Every scenario, small, against the real development server: what the bench reports must
// match what the scenario asked for.
func TestBenchScenariosAgainstDevServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and real WebRTC clients")
	}
	url, pid := startDevServerProcess(t)
	base := benchConfig{URL: url, Key: signalingtest.DevKeys.Key, Secret: signalingtest.DevKeys.Secret, Rate: 50, Duration: 2 * time.Second,
		Settle: 15 * time.Second, ServerPID: pid}
	log := signalingtest.Logger()

	check := func(t *testing.T, r *benchReport, receivers int) {
		t.Helper()
		if r.ParticipantsJoined != r.ParticipantsPlanned || r.JoinFailures != 0 {
			t.Errorf("%d of %d joined, %d failures: %v", r.ParticipantsJoined, r.ParticipantsPlanned, r.JoinFailures, r.Errors)
		}
		if r.StreamsReceiving != r.StreamsExpected {
			t.Errorf("%d of %d expected streams received media", r.StreamsReceiving, r.StreamsExpected)
		}
		if r.Packets == 0 || r.AudioPackets == 0 || r.PacketsExpected < r.Packets/2 {
			t.Errorf("window counts: %d packets (%d audio), %d expected", r.Packets, r.AudioPackets, r.PacketsExpected)
		}
		if r.LossRatio > 0.2 {
			t.Errorf("loss %.1f%% on loopback: sequence accounting is wrong", 100*r.LossRatio)
		}
		if r.JoinTime.Count != receivers || r.ConnectTime.Count != receivers {
			t.Errorf("%d join times and %d connect times, want one per receiver (%d)", r.JoinTime.Count, r.ConnectTime.Count, receivers)
		}
		if r.Delay.Count == 0 || r.Delay.P50 <= 0 || r.Delay.P99 < r.Delay.P50 {
			t.Errorf("one-way delay %+v: want stamped frames measured", r.Delay)
		}
		if r.ServerCPUCores == nil || *r.ServerCPUCores <= 0 || r.ServerRSSUnderLoad <= 0 || r.ServerCPUPerStream == nil {
			t.Errorf("server CPU %v, RSS %d: want both measured from /proc/%d", r.ServerCPUCores, r.ServerRSSUnderLoad, pid)
		}
		if r.BenchGoroutinesLeft != 0 {
			t.Errorf("%d bench goroutines still running after teardown", r.BenchGoroutinesLeft)
		}
	}

	t.Run("audio-fanout via the command line", func(t *testing.T) {
		jsonPath := t.TempDir() + "/fanout.json"
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"bench", "--url", url, "--scenario", "audio-fanout", "--listeners", "3",
			"--rate", "50", "--duration", "2s", "--server-pid", strconv.Itoa(pid), "--json", jsonPath}, &out, &errOut, noEnv)
		if err != nil {
			t.Fatalf("bench: %v\n%s", err, errOut.String())
		}
		for _, want := range []string{"1 audio publisher → 3 listeners", "4 joined of 4", "3 receiving of 3 expected", "server CPU"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("table lacks %q:\n%s", want, out.String())
			}
		}
		raw, err := os.ReadFile(jsonPath)
		if err != nil {
			t.Fatal(err)
		}
		var r benchReport
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		check(t, &r, 3)
		if r.VideoPackets != 0 {
			t.Errorf("%d video packets in an audio-only scenario", r.VideoPackets)
		}
	})
	t.Run("council", func(t *testing.T) {
		cfg := base
		cfg.Scenario, cfg.Councillors, cfg.Viewers = scenarioCouncil, 3, 2
		r, err := runBench(context.Background(), cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		if r.StreamsExpected != 3*2*2+2*2 {
			t.Fatalf("expected streams %d, want 16", r.StreamsExpected)
		}
		check(t, r, 2)
		if r.VideoPackets == 0 {
			t.Error("no video forwarded in the council")
		}
	})
	t.Run("join-storm", func(t *testing.T) {
		cfg := base
		cfg.Scenario, cfg.Joins = scenarioJoinStorm, 6
		r, err := runBench(context.Background(), cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		check(t, r, 6)
		if r.JoinPhase.Joined != 6 || r.JoinPhase.ServerCPUMsPerJoin == nil {
			t.Errorf("join phase %+v: want 6 joins and the server's CPU per join", r.JoinPhase)
		}
	})
}

// BenchmarkLoopbackUDPSend is this machine's floor for forwarding: one goroutine sending
// datagrams over loopback to 100 sockets, with no SFU work at all. BENCHMARKS.md quotes it
// next to the server's forwarded packets per core. Receivers drain every socket on other
// threads (so that each datagram is really delivered, as to a subscriber), and the figure
// is the sending thread's own CPU time per datagram, from its schedstat: the syscall plus the
// kernel's loopback delivery, which runs in the sender's context. Run it under
// taskset -c 0,1 so that the receivers have the other core.
func BenchmarkLoopbackUDPSend(b *testing.B) {
	for _, size := range []int{200, 1200} {
		b.Run(strconv.Itoa(size)+"B", func(b *testing.B) {
			sender, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer sender.Close()
			var drained sync.WaitGroup
			defer drained.Wait() // deferred first, so it runs after the sockets are closed
			dests := make([]netip.AddrPort, 100)
			for i := range dests {
				c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					b.Fatal(err)
				}
				dests[i] = c.LocalAddr().(*net.UDPAddr).AddrPort()
				drained.Go(func() {
					buf := make([]byte, 2048)
					for {
						if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
							return // closed at the end of the benchmark
						}
					}
				})
				defer c.Close()
			}
			payload := make([]byte, size)
			b.SetBytes(int64(size))
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU(b)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := sender.WriteToUDPAddrPort(payload, dests[i%len(dests)]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			perPacket := float64(threadCPU(b)-cpu0) / float64(b.N)
			b.ReportMetric(perPacket/1e3, "sender-µs/pkt")
			b.ReportMetric(1e9/perPacket, "pkt/s-per-core")
		})
	}
}

// threadCPU is the calling OS thread's time on a CPU, from its schedstat (nanoseconds).
func threadCPU(b *testing.B) time.Duration {
	raw, err := os.ReadFile("/proc/thread-self/schedstat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw))
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(ns)
}
