package sfu

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Stats are the Engine's media counters: totals since the Engine started (tracks that ended
// included, so that they never go backwards) and the tracks alive now. They are read at the time
// of the call from the atomic counters each track keeps; the forwarding path pays nothing for
// them beyond those increments.
type Stats struct {
	Audio, Video MediaStats

	// NACKsSent counts the packets the SFU asked publishers to resend (pion's NACK generator,
	// for upstream loss).
	NACKsSent uint64
	// KeyframeRequestsSent counts the PLIs and FIRs sent to publishers.
	KeyframeRequestsSent uint64
}

// MediaStats are the counters of one kind of media (audio or video).
type MediaStats struct {
	// PublishedTracks and SubscribedTracks are alive now: tracks received from publishers,
	// and DownTracks sending them to subscribers.
	PublishedTracks, SubscribedTracks int

	// PacketsIn and BytesIn are the RTP packets received from publishers (whole packets,
	// after SRTP decryption).
	PacketsIn, BytesIn uint64
	// PacketsOut and BytesOut are the RTP packets sent to subscribers, retransmissions
	// included (before SRTP encryption).
	PacketsOut, BytesOut uint64
	// Retransmits counts the packets resent to subscribers in answer to their NACKs.
	Retransmits uint64
	// RetransmitsSkipped counts NACKed packets not resent: too late to be played, or beyond
	// what the subscriber's link had room for.
	RetransmitsSkipped uint64

	// UpstreamLost counts the packets missing from published streams when a later packet
	// arrived (sequence number gaps); UpstreamLate counts packets that arrived behind the
	// newest one (reordered, or repaired by a retransmission after a NACK); those older than
	// the newest by more than half a second are not forwarded.
	UpstreamLost, UpstreamLate uint64
	// UpstreamDuplicates counts packets received again (a publisher padding its bandwidth
	// probes with resends, or answering a NACK for a packet that was only late); they are not
	// forwarded.
	UpstreamDuplicates uint64
	// UpstreamMalformed counts received packets that could not be parsed.
	UpstreamMalformed uint64

	// NACKsReceived counts the packets subscribers asked to be resent; KeyframeRequestsReceived
	// counts their PLIs and FIRs.
	NACKsReceived, KeyframeRequestsReceived uint64

	// Forwarding errors: packets not sent to a subscriber because its transport could not send
	// yet (no SRTP keys: the connection is still being set up), because the write failed,
	// or because the packet could not be rewritten for it (a malformed RED payload).
	NotReady, WriteErrors, Undeliverable uint64
}

// add folds o's counters into s (the gauges are left alone).
func (s *MediaStats) add(o *MediaStats) {
	s.PacketsIn += o.PacketsIn
	s.BytesIn += o.BytesIn
	s.PacketsOut += o.PacketsOut
	s.BytesOut += o.BytesOut
	s.Retransmits += o.Retransmits
	s.RetransmitsSkipped += o.RetransmitsSkipped
	s.UpstreamLost += o.UpstreamLost
	s.UpstreamLate += o.UpstreamLate
	s.UpstreamDuplicates += o.UpstreamDuplicates
	s.UpstreamMalformed += o.UpstreamMalformed
	s.NACKsReceived += o.NACKsReceived
	s.KeyframeRequestsReceived += o.KeyframeRequestsReceived
	s.NotReady += o.NotReady
	s.WriteErrors += o.WriteErrors
	s.Undeliverable += o.Undeliverable
}

// Stats reads the counters of every track now. It takes a lock that only track creation and
// removal also take, never the forwarding path.
func (e *Engine) Stats() Stats {
	return e.stats.snapshot()
}

// trackCounters are the per-PublishedTrack counters, written by the track's layer readers.
type trackCounters struct {
	packets, bytes        atomic.Uint64
	lost, late, malformed atomic.Uint64
	duplicates            atomic.Uint64
}

// downTrackCounters are the per-DownTrack counters, written under the DownTrack's lock (forward,
// retransmit) or by its RTCP reader.
type downTrackCounters struct {
	packets, bytes, retransmits          atomic.Uint64
	rtxSkipped                           atomic.Uint64
	nacks, keyframeRequests              atomic.Uint64
	notReady, writeErrors, undeliverable atomic.Uint64
}

// statsRegistry knows the live tracks of an Engine and keeps the totals of those that ended. A
// track is moved from the live sets to the totals only once its counters are final (its readers
// or its sender stopped), under the same lock as a snapshot, so a snapshot never counts a track
// twice or misses it.
type statsRegistry struct {
	mu         sync.Mutex
	tracks     map[*PublishedTrack]struct{}
	downTracks map[*DownTrack]struct{}
	ended      [2]MediaStats // by kindIndex

	nacksSent, keyframeRequestsSent atomic.Uint64
}

func newStatsRegistry() *statsRegistry {
	return &statsRegistry{tracks: map[*PublishedTrack]struct{}{}, downTracks: map[*DownTrack]struct{}{}}
}

// kindIndex maps a track kind to its slot: 0 audio, 1 video.
func kindIndex(k webrtc.RTPCodecType) int {
	if k == webrtc.RTPCodecTypeAudio {
		return 0
	}
	return 1
}

func (r *statsRegistry) addTrack(p *PublishedTrack) {
	r.mu.Lock()
	r.tracks[p] = struct{}{}
	r.mu.Unlock()
}

// endTrack retires a track whose layer readers have all stopped.
func (r *statsRegistry) endTrack(p *PublishedTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.tracks[p]; !ok {
		return
	}
	delete(r.tracks, p)
	var s MediaStats
	p.readStats(&s)
	r.ended[kindIndex(p.kind)].add(&s)
}

func (r *statsRegistry) addDownTrack(d *DownTrack) {
	r.mu.Lock()
	r.downTracks[d] = struct{}{}
	r.mu.Unlock()
}

// endDownTrack retires a DownTrack that is unbound from its sender and whose RTCP reader ended.
func (r *statsRegistry) endDownTrack(d *DownTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.downTracks[d]; !ok {
		return
	}
	delete(r.downTracks, d)
	var s MediaStats
	d.readStats(&s)
	r.ended[kindIndex(d.track.kind)].add(&s)
}

func (r *statsRegistry) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	by := r.ended
	for p := range r.tracks {
		k := kindIndex(p.kind)
		by[k].PublishedTracks++
		p.readStats(&by[k])
	}
	for d := range r.downTracks {
		k := kindIndex(d.track.kind)
		by[k].SubscribedTracks++
		d.readStats(&by[k])
	}
	return Stats{
		Audio: by[0], Video: by[1],
		NACKsSent:            r.nacksSent.Load(),
		KeyframeRequestsSent: r.keyframeRequestsSent.Load(),
	}
}

// readStats adds the track's counters to s.
func (p *PublishedTrack) readStats(s *MediaStats) {
	c := &p.stats
	s.PacketsIn += c.packets.Load()
	s.BytesIn += c.bytes.Load()
	s.UpstreamLost += c.lost.Load()
	s.UpstreamLate += c.late.Load()
	s.UpstreamDuplicates += c.duplicates.Load()
	s.UpstreamMalformed += c.malformed.Load()
}

// readStats adds the DownTrack's counters to s.
func (d *DownTrack) readStats(s *MediaStats) {
	c := &d.stats
	s.PacketsOut += c.packets.Load()
	s.BytesOut += c.bytes.Load()
	s.Retransmits += c.retransmits.Load()
	s.RetransmitsSkipped += c.rtxSkipped.Load()
	s.NACKsReceived += c.nacks.Load()
	s.KeyframeRequestsReceived += c.keyframeRequests.Load()
	s.NotReady += c.notReady.Load()
	s.WriteErrors += c.writeErrors.Load()
	s.Undeliverable += c.undeliverable.Load()
}

// rtcpCounter is an interceptor that counts the feedback the SFU sends to publishers: the NACKs
// of pion's generator and the keyframe requests of the PublishedTracks both pass through it.
// It must be registered first, so that every other interceptor writes through it.
type rtcpCounter struct {
	interceptor.NoOp
	reg *statsRegistry
}

// rtcpCounterFactory makes the rtcpCounter of each publisher peer connection.
type rtcpCounterFactory struct{ reg *statsRegistry }

func (f rtcpCounterFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &rtcpCounter{reg: f.reg}, nil
}

func (c *rtcpCounter) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, attrs interceptor.Attributes) (int, error) {
		n, err := w.Write(pkts, attrs)
		if err != nil {
			return n, err
		}
		for _, p := range pkts {
			switch v := p.(type) {
			case *rtcp.TransportLayerNack:
				c.reg.nacksSent.Add(nackedPackets(v))
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				c.reg.keyframeRequestsSent.Add(1)
			}
		}
		return n, nil
	})
}

// nackedPackets counts the sequence numbers a NACK names.
func nackedPackets(n *rtcp.TransportLayerNack) uint64 {
	var total uint64
	for _, pair := range n.Nacks {
		total += uint64(1 + bits.OnesCount16(uint16(pair.LostPackets)))
	}
	return total
}

// idleUntilMediaFactory wraps an interceptor whose RTCP loop should only run on connections
// that receive media. pion's NACK generator starts a 100 ms ticker as soon as a connection
// binds its RTCP writer, and most participants (viewers, listeners) never publish: without this,
// every one of them would cost ten wake-ups a second for nothing.
type idleUntilMediaFactory struct{ inner interceptor.Factory }

func (f idleUntilMediaFactory) NewInterceptor(id string) (interceptor.Interceptor, error) {
	i, err := f.inner.NewInterceptor(id)
	if err != nil {
		return nil, err
	}
	return &idleUntilMedia{Interceptor: i}, nil
}

// idleUntilMedia hands the RTCP writer to the wrapped interceptor when the first remote stream
// is bound. The wrapped interceptor must return the writer it is given unchanged (it only
// writes through it), as pion's NACK generator does.
type idleUntilMedia struct {
	interceptor.Interceptor

	mu      sync.Mutex
	writer  interceptor.RTCPWriter
	started bool
}

func (l *idleUntilMedia) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		return l.Interceptor.BindRTCPWriter(w)
	}
	l.writer = w
	return w
}

func (l *idleUntilMedia) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	l.mu.Lock()
	if !l.started && l.writer != nil {
		l.started = true
		l.Interceptor.BindRTCPWriter(l.writer)
	}
	l.mu.Unlock()
	return l.Interceptor.BindRemoteStream(info, r)
}
