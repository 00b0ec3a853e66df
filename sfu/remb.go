package sfu

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// REMB for publishers that do not do transport-wide congestion control.
//
// A publisher that negotiates transport-cc gets TWCC feedback (codecs.go) and estimates its
// uplink itself. An older client, or one configured without TWCC, offers goog-remb and stamps
// its packets with abs-send-time instead: it expects the receiver to estimate the path and to
// say, in REMB messages, how much it may send. The estimate is made by the same estimator as a
// subscriber's (bwe.go), fed with the same pairs: each packet's send time (abs-send-time, on the
// sender's clock) and its arrival (here, on ours), and the losses its sequence numbers show.
// pion has no receive-side estimator (its gcc package is send-side only, and its interceptors
// send REMB only for a bitrate they are given).
//
// A connection whose streams carry the TWCC extension is left alone: the browser would follow
// both estimates, and the two would fight.

const (
	// rembTick is how often what arrived is folded into the estimate, as a TWCC feedback
	// interval would.
	rembTick = 100 * time.Millisecond
	// rembInterval is how often the estimate is repeated to the publisher; a fall of more than
	// rembDrop is sent at once (the REMB draft's advice), so that the sender backs off before
	// the queue overflows.
	rembInterval = time.Second
	rembDrop     = 0.03
)

// configureREMB lets a publisher negotiate goog-remb feedback for its videos and the
// abs-send-time extension, and measures the streams of those that do it without TWCC. Audio
// that carries abs-send-time is measured too (browsers stamp it when offered), since it shares
// the uplink; only the videos, which asked for REMB, are named in it.
func configureREMB(m *webrtc.MediaEngine, reg *interceptor.Registry, log *slog.Logger) error {
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBGoogREMB}, webrtc.RTPCodecTypeVideo)
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.ABSSendTimeURI}, kind); err != nil {
			return fmt.Errorf("register abs-send-time for %s: %w", kind, err)
		}
	}
	reg.Add(rembFactory{log: log})
	return nil
}

// rembFactory makes the rembEstimator of each publisher peer connection.
type rembFactory struct{ log *slog.Logger }

func (f rembFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return newREMBEstimator(f.log, time.Now()), nil
}

// rembEstimator measures the streams of one publisher connection and sends it REMB. Its loop
// starts with the first stream it measures: a TWCC publisher costs nothing but the check.
type rembEstimator struct {
	interceptor.NoOp
	log        *slog.Logger
	est        *bwe
	start      int64  // Unix nanoseconds, origin of the arrival times
	senderSSRC uint32 // ours, in the REMB

	mu      sync.Mutex
	writer  interceptor.RTCPWriter
	streams map[uint32]*rembStream
	stop    chan struct{} // nil until the loop runs
	done    chan struct{}
	closed  bool
	batch   arrivals

	// The sender's clock, unwrapped: abs-send-time wraps every 64 s.
	clockInit bool
	lastSend  uint32 // the newest abs-send-time, 6.18 fixed-point seconds
	sendTicks int64  // the same, unwrapped, in 1/2^18 s
	lastAt    int64  // its arrival, Unix nanoseconds
}

// rembStream is one measured incoming stream. Its fields are used under the estimator's lock.
type rembStream struct {
	ssrc    uint32
	extID   uint8
	named   bool // a media stream whose sender asked for REMB: its SSRC is in the message
	hdr     rtp.Header
	highSN  uint16
	highDep int64 // its departure, µs on the sender's unwrapped clock
	seenSN  bool
}

// arrivals sums the packets of one rembTick, as one TWCC feedback would report them.
type arrivals struct {
	s        fbSummary
	owdSum   int64 // µs
	owdMin   int64
	owdCount int
}

func newArrivals() arrivals {
	return arrivals{s: fbSummary{firstArrival: math.MaxInt64}, owdMin: math.MaxInt64}
}

func newREMBEstimator(log *slog.Logger, now time.Time) *rembEstimator {
	return &rembEstimator{
		log: log, est: newBWE(now), start: now.UnixNano(), senderSSRC: rand.Uint32(),
		streams: map[uint32]*rembStream{}, batch: newArrivals(),
	}
}

// rembStreamOf says whether a stream is to be measured: it carries abs-send-time and not the
// TWCC extension.
func rembStreamOf(info *interceptor.StreamInfo) (*rembStream, bool) {
	st := &rembStream{ssrc: info.SSRC}
	for _, e := range info.RTPHeaderExtensions {
		switch e.URI {
		case sdp.TransportCCURI:
			return nil, false
		case sdp.ABSSendTimeURI:
			if e.ID > 0 && e.ID < 256 {
				st.extID = uint8(e.ID)
			}
		}
	}
	for _, fb := range info.RTCPFeedback {
		st.named = st.named || fb.Type == webrtc.TypeRTCPFBGoogREMB
	}
	return st, st.extID != 0
}

func (r *rembEstimator) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writer = w
	return w
}

func (r *rembEstimator) BindRemoteStream(info *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	st, ok := rembStreamOf(info)
	if !ok {
		return reader
	}
	r.mu.Lock()
	r.streams[st.ssrc] = st
	if r.stop == nil && !r.closed {
		r.stop, r.done = make(chan struct{}), make(chan struct{})
		go r.run(r.stop, r.done)
	}
	r.mu.Unlock()
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := reader.Read(b, a)
		if err == nil {
			r.observe(st, b[:n], time.Now().UnixNano())
		}
		return n, a, err
	})
}

func (r *rembEstimator) UnbindRemoteStream(info *interceptor.StreamInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.streams, info.SSRC)
}

// Close ends the loop; pion calls it when the peer connection closes.
func (r *rembEstimator) Close() error {
	r.mu.Lock()
	r.closed = true
	stop, done := r.stop, r.done
	r.stop = nil
	r.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	return nil
}

// observe adds one packet read from st, arrived at now, to the current batch.
func (r *rembEstimator) observe(st *rembStream, raw []byte, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := st.hdr.Unmarshal(raw); err != nil {
		return
	}
	var sendTime rtp.AbsSendTimeExtension
	if sendTime.Unmarshal(st.hdr.GetExtension(st.extID)) != nil {
		return
	}
	// Departure on the sender's clock and arrival on ours, in µs (1/2^18 s is 15625/4096 µs):
	// their difference is the one-way delay, offset by the two clocks' difference.
	dep := r.unwrapSendTime(uint32(sendTime.Timestamp), now) * 15625 / 4096
	arrival := (now - r.start) / 1000
	owd := arrival - dep

	lost := 0
	sn := st.hdr.SequenceNumber
	switch d := sn - st.highSN; {
	case !st.seenSN:
		st.highSN, st.highDep, st.seenSN = sn, dep, true
	case d == 0 || d >= 0x8000: // a duplicate, or older than the newest: no loss to count
	default:
		// What went missing over more than outageRun was a cut, not an overflowing queue: as
		// for TWCC (bwe.go), it says nothing of the path's capacity.
		if d > 1 && d <= maxCountedGap && dep-st.highDep <= outageRun.Microseconds() {
			lost = int(d - 1)
		}
		st.highSN, st.highDep = sn, dep
	}

	b := &r.batch
	b.s.sent += 1 + lost
	b.s.lost += lost
	b.s.received++
	b.s.bytes += len(raw)
	b.s.firstArrival = min(b.s.firstArrival, arrival)
	b.s.lastArrival = max(b.s.lastArrival, arrival)
	b.owdSum += owd
	b.owdMin = min(b.owdMin, owd)
	b.owdCount++
}

// unwrapSendTime places a 24-bit abs-send-time on the sender's unwrapped clock: the number of
// 64 s wraps since the newest packet is what our own clock says elapsed, so that a publisher
// silent for minutes, or a packet that overtook another, is placed right.
func (r *rembEstimator) unwrapSendTime(ast uint32, now int64) int64 {
	if !r.clockInit {
		r.clockInit, r.lastSend, r.sendTicks, r.lastAt = true, ast, int64(ast), now
		return r.sendTicks
	}
	elapsed := int64(float64(now-r.lastAt) * (1 << 18) / 1e9)
	d := int64((ast - r.lastSend) & 0xffffff)
	d += (elapsed - d + 1<<23) >> 24 << 24
	t := r.sendTicks + d
	if d > 0 {
		r.lastSend, r.sendTicks, r.lastAt = ast, t, now
	}
	return t
}

// run folds each tick's packets into the estimate and sends the REMB it calls for.
func (r *rembEstimator) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(rembTick)
	defer tick.Stop()
	var sent float64 // the last estimate sent
	var sentAt int64
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		now := time.Now().UnixNano()
		r.mu.Lock()
		b := r.batch
		r.batch = newArrivals()
		w := r.writer
		var ssrcs []uint32
		for ssrc, st := range r.streams {
			if st.named {
				ssrcs = append(ssrcs, ssrc)
			}
		}
		r.mu.Unlock()
		b.s.at = now
		r.est.onArrivals(b.s, b.owdSum, b.owdCount, b.owdMin, now)

		st := r.est.state(now)
		if w == nil || len(ssrcs) == 0 || st.Received == 0 { // nothing to say yet: too little arrived
			continue
		}
		var reason string
		switch {
		case sentAt == 0:
			reason = "first"
		case st.Estimate < sent*(1-rembDrop):
			reason = "decrease"
		case now-sentAt >= int64(rembInterval):
			reason = "periodic"
		default:
			continue
		}
		slices.Sort(ssrcs)
		remb := &rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: r.senderSSRC, Bitrate: float32(st.Estimate), SSRCs: ssrcs}
		if _, err := w.Write([]rtcp.Packet{remb}, nil); err != nil {
			r.log.Debug("REMB to publisher not sent", "err", err)
			continue
		}
		sent, sentAt = st.Estimate, now
		r.log.Debug("REMB to publisher", "estimate", int(st.Estimate), "reason", reason, "received", int(st.Received),
			"loss", math.Round(st.Loss*1000)/1000, "queueing", st.QueueingDelay.Round(time.Millisecond), "ssrcs", ssrcs)
	}
}
