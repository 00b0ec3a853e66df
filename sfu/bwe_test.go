package sfu

import (
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

// bottleneck is a simulated path to a subscriber: a link of rate bits per second behind a
// drop-tail queue that holds at most maxQueue of sending time (tc tbf's latency), then a fixed
// propagation delay. The subscriber's side is pion's own TWCC recorder, which builds the
// feedback exactly as the LiveKit Go SDK's interceptor does.
type bottleneck struct {
	rate     float64
	maxQueue time.Duration
	busy     int64 // when the link finishes what it holds, ns
	rec      *twcc.Recorder
	pending  []arrival
	dropped  int
	// A receiver that stops reading for a moment (its CPU busy): what arrives between
	// stallFrom and stallTo (our clock, ns) is stamped stallTo.
	stallFrom, stallTo int64
	// A cut: what is sent between cutFrom and cutTo (ns) is lost.
	cutFrom, cutTo int64
	// Loss without a queue (poor Wi-Fi, a policer): between lossFrom and lossTo, one packet in
	// lossEvery is lost.
	lossFrom, lossTo int64
	lossEvery, sent  int
}

type arrival struct {
	seq uint16
	at  int64 // ns, on the subscriber's clock (offset from ours)
}

const (
	simPropagation = int64(20 * time.Millisecond)
	simClockOffset = int64(7 * time.Hour) // the subscriber's clock has its own origin
)

func newBottleneck(rate float64) *bottleneck {
	return &bottleneck{rate: rate, maxQueue: 100 * time.Millisecond, rec: twcc.NewRecorder(1)}
}

func (l *bottleneck) send(seq uint16, size int, now int64) {
	if now >= l.cutFrom && now < l.cutTo {
		return
	}
	if l.sent++; now >= l.lossFrom && now < l.lossTo && l.sent%l.lossEvery == 0 {
		return
	}
	wait := max(l.busy-now, 0)
	if time.Duration(wait) > l.maxQueue {
		l.dropped++
		return
	}
	l.busy = max(l.busy, now) + int64(float64(size*8)/l.rate*1e9)
	at := l.busy + simPropagation
	if at >= l.stallFrom && at < l.stallTo {
		at = l.stallTo
	}
	l.pending = append(l.pending, arrival{seq: seq, at: at + simClockOffset})
}

// feedback records what arrived by now and returns the subscriber's feedback packets.
func (l *bottleneck) feedback(now int64) []*rtcp.TransportLayerCC {
	n := 0
	for _, a := range l.pending {
		if a.at-simClockOffset > now {
			break
		}
		l.rec.Record(5, a.seq, a.at/1000)
		n++
	}
	l.pending = l.pending[n:]
	var out []*rtcp.TransportLayerCC
	for _, p := range l.rec.BuildFeedbackPacket() {
		if fb, ok := p.(*rtcp.TransportLayerCC); ok {
			// Through the wire format, as the DownTracks receive it.
			raw, err := fb.Marshal()
			if err != nil {
				panic(err)
			}
			var back rtcp.TransportLayerCC
			if err := back.Unmarshal(raw); err != nil {
				panic(err)
			}
			out = append(out, &back)
		}
	}
	return out
}

// simulate sends at sendRate through the link for d, with feedback every 100 ms, starting at
// start; it returns the time reached.
func simulate(b *bwe, l *bottleneck, sendRate float64, start int64, d time.Duration) int64 {
	const size = 1200
	interval := int64(float64(size*8) / sendRate * 1e9)
	next, fbAt := start, start+int64(100*time.Millisecond)
	end := start + int64(d)
	for now := start; now < end; now += int64(time.Millisecond) {
		for next <= now {
			seq := b.nextSeq()
			b.onSent(seq, size, next)
			l.send(seq, size, next)
			next += interval
		}
		if now >= fbAt {
			for _, fb := range l.feedback(now) {
				b.onFeedback(fb, now+simPropagation)
			}
			fbAt += int64(100 * time.Millisecond)
		}
	}
	return end
}

func TestBWEFallsToABottleneck(t *testing.T) {
	start := time.Unix(1000, 0)
	b := newBWE(start)
	l := newBottleneck(1_000_000)
	now := simulate(b, l, 600_000, start.UnixNano(), 2*time.Second) // settle below the limit
	if st := b.state(now); st.Congested || st.Estimate < 600_000 {
		t.Fatalf("at 600 kbit/s through a 1 Mbit/s link: %+v, want uncongested and at least 600 kbit/s", st)
	}
	now = simulate(b, l, 2_000_000, now, 3*time.Second) // twice what the link carries
	st := b.state(now)
	if !st.Congested || st.Estimate > 1_000_000 || st.Estimate < 500_000 {
		t.Fatalf("at 2 Mbit/s through a 1 Mbit/s link: %+v (dropped %d), want congested, estimate 0.5–1 Mbit/s", st, l.dropped)
	}
	t.Logf("estimate %.0f bit/s, received %.0f, queueing %v, loss %.2f", st.Estimate, st.Received, st.QueueingDelay, st.Loss)
}

// On a link with room to spare, neither a receiver that stamps 150 ms of packets late once (its
// CPU busy), nor a 3 s cut of the link (the first feedback after it reports everything sent
// during the cut as lost), nor a burst of random loss with the queues empty shows a full path:
// the estimate holds, and the videos that fitted before still fit. A bottleneck's queue lasts,
// and is still cut for (TestBWEFallsToABottleneck), and so is loss that lasts
// (TestBWEFallsWhenLossLasts).
func TestBWEHoldsThroughAStallOrACut(t *testing.T) {
	for name, c := range map[string]struct {
		upset func(l *bottleneck, now int64)
		then  time.Duration // how long after it the estimate is read
	}{
		"a 150 ms receiver stall": {func(l *bottleneck, now int64) {
			l.stallFrom, l.stallTo = now+int64(30*time.Millisecond), now+int64(180*time.Millisecond)
		}, time.Second},
		"a 3 s cut": {func(l *bottleneck, now int64) { l.cutFrom, l.cutTo = now, now+int64(3*time.Second) }, 3500 * time.Millisecond},
		"half the packets lost for 500 ms, queues empty": {func(l *bottleneck, now int64) {
			l.lossFrom, l.lossTo, l.lossEvery = now, now+int64(500*time.Millisecond), 2
		}, 1500 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Unix(1000, 0)
			b := newBWE(start)
			l := newBottleneck(10_000_000)
			now := simulate(b, l, 900_000, start.UnixNano(), 4*time.Second)
			before := b.state(now)
			c.upset(l, now)
			now = simulate(b, l, 900_000, now, c.then)
			after := b.state(now)
			if after.Estimate < 0.95*before.Estimate || after.Congested {
				t.Fatalf("on a 10 Mbit/s link: estimate %.0f → %.0f bit/s (congested %v, loss %.2f), want it held",
					before.Estimate, after.Estimate, after.Congested, after.Loss)
			}
		})
	}
}

// TestBWEFallsWhenLossLasts: a policer drops what exceeds its rate without queueing it; a third
// of the packets lost for 3 s with the queues empty is a full path, and the estimate falls.
func TestBWEFallsWhenLossLasts(t *testing.T) {
	start := time.Unix(1000, 0)
	b := newBWE(start)
	l := newBottleneck(10_000_000)
	now := simulate(b, l, 900_000, start.UnixNano(), 4*time.Second)
	before := b.state(now)
	l.lossFrom, l.lossTo, l.lossEvery = now, now+int64(3*time.Second), 3
	now = simulate(b, l, 900_000, now, 3*time.Second)
	after := b.state(now)
	if !after.Congested || after.Estimate > 0.8*before.Estimate {
		t.Fatalf("a third of the packets lost for 3 s: estimate %.0f → %.0f bit/s (congested %v, loss %.2f), want congested and cut",
			before.Estimate, after.Estimate, after.Congested, after.Loss)
	}
}

func TestBWERisesOnlyToWhatPassed(t *testing.T) {
	start := time.Unix(1000, 0)
	b := newBWE(start)
	l := newBottleneck(10_000_000)
	now := simulate(b, l, 900_000, start.UnixNano(), 4*time.Second)
	st := b.state(now)
	if st.Congested || st.Estimate < 850_000 || st.Estimate > growthCap*900_000*1.05 {
		t.Fatalf("at 900 kbit/s through a 10 Mbit/s link: %+v, want 0.85–1.2 Mbit/s, not congested", st)
	}
	// A probe: padding to 2 Mbit/s for a second; the path carries it, so the estimate follows.
	now = simulate(b, l, 2_000_000, now, time.Second)
	if st := b.state(now); st.Estimate < 1_700_000 {
		t.Fatalf("after a second at 2 Mbit/s through a 10 Mbit/s link: %+v, want at least 1.7 Mbit/s", st)
	}
}

func TestBWEIgnoresRepeatedFeedback(t *testing.T) {
	start := time.Unix(1000, 0)
	b := newBWE(start)
	l := newBottleneck(10_000_000)
	now := start.UnixNano()
	for i := 0; i < 100; i++ {
		seq := b.nextSeq()
		b.onSent(seq, 1000, now+int64(i)*int64(time.Millisecond))
		l.send(seq, 1000, now+int64(i)*int64(time.Millisecond))
	}
	fbs := l.feedback(now + int64(200*time.Millisecond))
	if len(fbs) == 0 {
		t.Fatal("no feedback built")
	}
	for range 3 { // pion hands the same compound packet to every sender
		b.onFeedback(fbs[0], now+int64(220*time.Millisecond))
	}
	if got := b.windowNext; got != 1 {
		t.Fatalf("the same feedback was counted %d times", got)
	}
}

// BenchmarkBWEOnSent is the estimator's share of each forwarded packet: a sequence number and
// one atomic store.
func BenchmarkBWEOnSent(b *testing.B) {
	e := newBWE(time.Now())
	now := time.Now().UnixNano()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e.onSent(e.nextSeq(), 1200, now+int64(i))
	}
}

// BenchmarkBWEFeedback is the cost of one feedback packet reporting 50 packets (100 ms of a
// 5 Mbit/s subscriber), per packet reported.
func BenchmarkBWEFeedback(b *testing.B) {
	start := time.Unix(1000, 0)
	e := newBWE(start)
	l := newBottleneck(10_000_000)
	now := start.UnixNano()
	var fbs []*rtcp.TransportLayerCC
	for len(fbs) == 0 {
		for i := 0; i < 50; i++ {
			seq := e.nextSeq()
			e.onSent(seq, 1200, now)
			l.send(seq, 1200, now)
			now += int64(2 * time.Millisecond)
		}
		fbs = l.feedback(now)
	}
	fb := fbs[0]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fb.FbPktCount++ // a new packet each time
		e.onFeedback(fb, now)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(fb.PacketStatusCount), "ns/packet")
}
