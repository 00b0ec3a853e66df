package sfu

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// A publisher is asked to resend only what a subscriber could still play.
//
// After a cut of the publisher's link (Wi-Fi gone for seconds, an ICE restart that moves it to
// a new path), its first packet shows a gap of tens or hundreds of sequence numbers, and pion's
// NACK generator asks for all of them. Chromium still holds them and resends them first: for
// up to a second after the link's return its pacer sends little but those resends, which
// arrive too late to be played (handle drops them), and the video it encodes meanwhile waits
// behind them (seen in the blackout test: 1.1-1.4 s without a new video packet, audio
// flowing). freshNACKs leaves out of what the generator writes the packets that were sent too
// long ago to be worth it. When each missing packet was sent is not known. After a silence
// longer than a resend could take to be useful (a cut), all of the gap counts as old: a
// publisher whose link is down does not send evenly (it queues, drops, bursts on the way
// back), so no number in it can be dated. After a shorter silence each is taken to lie between
// the arrivals of the packets on either side, in proportion to its number. The latest cut and
// the latest shorter gap are remembered; older shorter gaps age out of the generator by
// themselves (it asks a few times, 100 ms apart).
//
// It must come before the NACK generator in the registry: its reader then sees each packet
// before the generator does, and the generator writes through its RTCP writer.

// nackUseful is the oldest a packet may be for a resend to be asked for: the resend takes a
// round trip, and what arrives later than rtxDeadline after it was first sent is not played.
const nackUseful = rtxDeadline - 100*time.Millisecond

// freshNACKsFactory makes one freshNACKs per publisher connection.
type freshNACKsFactory struct {
	now func() time.Time // the clock; time.Now outside tests
}

func (f freshNACKsFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	now := f.now
	if now == nil {
		now = time.Now
	}
	return &freshNACKs{now: now, streams: map[uint32]*nackStream{}}, nil
}

type freshNACKs struct {
	interceptor.NoOp
	now func() time.Time

	mu      sync.Mutex
	streams map[uint32]*nackStream // by media SSRC
}

// nackStream is what the reader of one stream saw: the newest sequence number and when it
// came, the latest cut (a gap after a silence longer than rtxDeadline, all of it too old) and
// the latest shorter gap, with the arrivals on either side of it.
type nackStream struct {
	mu   sync.Mutex
	seen bool
	high uint16
	at   time.Time
	cut  seqRun
	gap  seqRun
	// gapStart and gapEnd are the arrivals of the packets before and after gap.
	gapStart, gapEnd time.Time
}

// seqRun is a run of n sequence numbers from first; n is 0 for none.
type seqRun struct {
	first, n uint16
}

func (r seqRun) holds(sn uint16) bool { return r.n > 0 && sn-r.first < r.n }

// behind says whether the run ended more than a NACK generator's memory (512 packets) before
// high: its numbers are no longer asked for, and soon will be used again.
func (r seqRun) behind(high uint16) bool {
	d := high - (r.first + r.n)
	return d > 1024 && d < 0x8000
}

// tooOld says whether sn, missing, was sent longer than nackUseful before now.
func (s *nackStream) tooOld(sn uint16, now time.Time) bool {
	if s.cut.holds(sn) {
		return true
	}
	if !s.gap.holds(sn) {
		return false
	}
	span := s.gapEnd.Sub(s.gapStart)
	sent := s.gapStart.Add(span * time.Duration(sn-s.gap.first+1) / time.Duration(s.gap.n+1))
	return now.Sub(sent) > nackUseful
}

func (f *freshNACKs) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	st := &nackStream{}
	f.mu.Lock()
	f.streams[info.SSRC] = st
	f.mu.Unlock()
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err != nil || n < 12 {
			return n, a, err
		}
		sn := binary.BigEndian.Uint16(b[2:4])
		now := f.now()
		st.mu.Lock()
		switch {
		case !st.seen:
			st.seen, st.high, st.at = true, sn, now
		case int16(sn-st.high) > 0:
			if n := sn - st.high - 1; n > 0 {
				if now.Sub(st.at) > rtxDeadline {
					st.cut = seqRun{st.high + 1, n}
				} else {
					st.gap, st.gapStart, st.gapEnd = seqRun{st.high + 1, n}, st.at, now
				}
			}
			st.high, st.at = sn, now
			if st.cut.behind(sn) {
				st.cut = seqRun{}
			}
			if st.gap.behind(sn) {
				st.gap = seqRun{}
			}
		}
		st.mu.Unlock()
		return n, a, err
	})
}

func (f *freshNACKs) UnbindRemoteStream(info *interceptor.StreamInfo) {
	f.mu.Lock()
	delete(f.streams, info.SSRC)
	f.mu.Unlock()
}

func (f *freshNACKs) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, attrs interceptor.Attributes) (int, error) {
		kept := pkts[:0:0]
		changed := false
		for _, p := range pkts {
			nack, ok := p.(*rtcp.TransportLayerNack)
			if !ok {
				kept = append(kept, p)
				continue
			}
			fresh := f.filter(nack)
			if fresh != nack {
				changed = true
			}
			if fresh != nil {
				kept = append(kept, fresh)
			}
		}
		if !changed {
			return w.Write(pkts, attrs)
		}
		if len(kept) == 0 {
			return 0, nil
		}
		return w.Write(kept, attrs)
	})
}

// filter returns the NACK without the numbers sent too long ago: n itself when it names none,
// nil when it names nothing else.
func (f *freshNACKs) filter(n *rtcp.TransportLayerNack) *rtcp.TransportLayerNack {
	f.mu.Lock()
	st := f.streams[n.MediaSSRC]
	f.mu.Unlock()
	if st == nil {
		return n
	}
	now := f.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.cut.n == 0 && (st.gap.n == 0 || now.Sub(st.gapStart) <= nackUseful) {
		return n // nothing missing is old enough
	}
	var fresh []uint16
	dropped := false
	for _, pair := range n.Nacks {
		for _, sn := range pair.PacketList() {
			if st.tooOld(sn, now) {
				dropped = true
				continue
			}
			fresh = append(fresh, sn)
		}
	}
	switch {
	case !dropped:
		return n
	case len(fresh) == 0:
		return nil
	}
	return &rtcp.TransportLayerNack{SenderSSRC: n.SenderSSRC, MediaSSRC: n.MediaSSRC, Nacks: rtcp.NackPairsFromSequenceNumbers(fresh)}
}
