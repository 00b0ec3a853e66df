package sfu

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Quality is the highest simulcast layer a subscriber wants. The values match LiveKit's
// VideoQuality (LOW, MEDIUM, HIGH, OFF).
type Quality int

// Qualities map to the simulcast rids q, h and f.
const (
	QualityLow Quality = iota
	QualityMedium
	QualityHigh
	QualityOff // forward nothing, as if paused
)

func (q Quality) layer() int8 {
	switch q {
	case QualityLow:
		return 0
	case QualityMedium:
		return 1
	case QualityOff:
		return -1
	}
	return 2
}

// ErrNoCommonCodec reports a subscriber that cannot receive the published codec; the SFU does
// not transcode.
var ErrNoCommonCodec = errors.New("subscriber did not negotiate the published codec")

// DownTrack is a webrtc.TrackLocal.
var _ webrtc.TrackLocal = (*DownTrack)(nil)

// DownTrack sends one PublishedTrack to one subscriber. It is the webrtc.TrackLocal bound to the
// subscriber's RTPSender.
type DownTrack struct {
	track        *PublishedTrack
	transport    *Transport // nil in benchmarks
	id, streamID string
	sender       *webrtc.RTPSender
	rtcpDone     chan struct{}

	stats   downTrackCounters
	reports downReports // the subscriber's receiver reports, for the connection quality

	mu       sync.Mutex
	writer   webrtc.TrackLocalWriter // nil until bound
	refused  bool                    // the subscriber's answer has no codec to carry the track
	ssrc     uint32
	pt       uint8 // payload type of what is sent: the video codec, Opus or RED
	opusPT   uint8 // the subscriber's Opus payload type (RED tracks)
	sendRED  bool  // the subscriber takes RED as published; otherwise RED is reduced to Opus
	ext      [numFwdExt]uint8
	maxLayer int8 // from SetMaxQuality; -1 for QualityOff
	target   int8 // the layer wanted now
	current  int8 // the layer being forwarded, -1 before the first keyframe
	paused   bool // by the subscriber (UpdateTrackSettings.disabled)
	// The allocator's decision (allocator.go): the highest layer that fits the subscriber's
	// estimate, and whether none does.
	allocCap    int8
	allocPaused bool
	priority    Priority
	link        *downlink // the subscriber connection's congestion control; nil for sinks
	twccID      uint8     // transport-wide sequence number extension; 0 when not negotiated
	twccBuf     [2]byte
	needSync    bool  // wait for a switching point (keyframe) on the target, then rebase
	sentAny     bool  // a packet went out: the transport was told media flows
	missing     int64 // output sequence numbers skipped: packets the subscriber never got from us
	// payloadOctets is the RTP payload bytes sent, for sender reports (wrapping, as RTCP's).
	payloadOctets uint32
	munger        Munger
	seq           sequencer
	hdr           rtp.Header
	extBuf        [numFwdExt + 1]rtp.Extension // the forwarded ones and transport-cc
	redBuf        []byte                       // RED payload with renumbered blocks, when the two sides number Opus differently
	rtxRaw        [maxPacketSize]byte
	rtxHdr        rtp.Header
}

func newDownTrack(p *PublishedTrack, t *Transport, id, streamID string) *DownTrack {
	d := &DownTrack{
		track:     p,
		transport: t,
		id:        id,
		streamID:  streamID,
		rtcpDone:  make(chan struct{}),
		maxLayer:  QualityHigh.layer(),
		allocCap:  QualityHigh.layer(),
		current:   -1,
		needSync:  true,
	}
	d.munger.clockRate = p.codec.ClockRate
	d.target = max(p.bestLayer(d.maxLayer, time.Now().UnixNano()), 0)
	if t != nil {
		d.link = t.link
	}
	return d
}

// ID is the track id announced to the subscriber.
func (d *DownTrack) ID() string { return d.id }

// RID is empty: a subscriber receives one layer.
func (d *DownTrack) RID() string { return "" }

// StreamID is the stream id announced to the subscriber.
func (d *DownTrack) StreamID() string { return d.streamID }

// Kind is the published track's kind.
func (d *DownTrack) Kind() webrtc.RTPCodecType { return d.track.kind }

// Track is the published track this DownTrack forwards.
func (d *DownTrack) Track() *PublishedTrack { return d.track }

// Bind is called by pion once the subscriber's answer fixed the codecs.
func (d *DownTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	chosen, opusPT, sendRED, err := selectCodec(d.track.codec, ctx.CodecParameters())
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		// Failing the bind would fail the whole answer in pion (every other sender of the
		// connection left unstarted, a first connection never brought up). Bind to a codec
		// the subscriber took and send nothing; CodecRefused tells the caller to unsubscribe.
		accepted := ctx.CodecParameters()
		if len(accepted) == 0 {
			return webrtc.RTPCodecParameters{}, fmt.Errorf("bind track %s: %w", d.track.id, err)
		}
		d.writer, d.refused = nil, true
		return accepted[0], nil
	}
	d.refused = false
	d.writer = ctx.WriteStream()
	d.ssrc = uint32(ctx.SSRC())
	d.pt = uint8(chosen.PayloadType)
	d.opusPT = opusPT
	d.sendRED = sendRED
	d.ext = extensionIDs(ctx.HeaderExtensions())
	d.twccID = 0
	for _, e := range ctx.HeaderExtensions() {
		if e.URI == sdp.TransportCCURI && e.ID > 0 && e.ID < 15 {
			d.twccID = uint8(e.ID)
		}
	}
	d.current, d.needSync = -1, true
	if sendRED && d.track.opusPT != 0 && d.track.opusPT != opusPT && d.redBuf == nil {
		d.redBuf = make([]byte, maxPacketSize)
	}
	if d.transport != nil && d.transport.connected.Load() {
		d.track.requestKeyframe(d.target, time.Now().UnixNano())
	}
	return chosen, nil
}

// CodecRefused says whether the subscriber's last answer could not carry the track's codec (a
// client that does not decode VP9, say): nothing is sent, and the subscription should end.
func (d *DownTrack) CodecRefused() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refused
}

// Unbind is called by pion when the sender stops.
func (d *DownTrack) Unbind(webrtc.TrackLocalContext) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writer = nil
	return nil
}

// selectCodec picks, among the codecs the subscriber accepted, the one to send the published
// codec as. For RED it also reports whether RED goes through or is reduced to its Opus primary.
func selectCodec(src webrtc.RTPCodecParameters, accepted []webrtc.RTPCodecParameters) (
	chosen webrtc.RTPCodecParameters, opusPT uint8, sendRED bool, err error,
) {
	find := func(mime string, match func(webrtc.RTPCodecParameters) bool) (webrtc.RTPCodecParameters, bool) {
		for _, c := range accepted {
			if strings.EqualFold(c.MimeType, mime) && (match == nil || match(c)) {
				return c, true
			}
		}
		return webrtc.RTPCodecParameters{}, false
	}
	kind := codecKindOf(src.MimeType)
	switch kind {
	case codecRED, codecOpus:
		opus, ok := find(webrtc.MimeTypeOpus, nil)
		if !ok {
			return chosen, 0, false, fmt.Errorf("%w: %s", ErrNoCommonCodec, src.MimeType)
		}
		if kind == codecRED {
			if red, ok := find(src.MimeType, nil); ok {
				return red, uint8(opus.PayloadType), true, nil
			}
		}
		return opus, uint8(opus.PayloadType), false, nil
	}
	// Prefer the same profile (H.264 profile and packetization mode, VP9 profile-id), then any
	// variant of the same codec: decoders handle every profile they know.
	same := func(c webrtc.RTPCodecParameters) bool { return sameProfile(kind, src.SDPFmtpLine, c.SDPFmtpLine) }
	if c, ok := find(src.MimeType, same); ok {
		return c, 0, false, nil
	}
	if kind == codecH264 {
		mode := fmtpValue(src.SDPFmtpLine, "packetization-mode")
		if c, ok := find(src.MimeType, func(c webrtc.RTPCodecParameters) bool {
			return fmtpValue(c.SDPFmtpLine, "packetization-mode") == mode
		}); ok {
			return c, 0, false, nil
		}
	} else if c, ok := find(src.MimeType, nil); ok {
		return c, 0, false, nil
	}
	return chosen, 0, false, fmt.Errorf("%w: %s %s", ErrNoCommonCodec, src.MimeType, src.SDPFmtpLine)
}

// sameProfile compares the fmtp parameters that make two variants of a codec incompatible.
func sameProfile(kind codecKind, a, b string) bool {
	switch kind {
	case codecH264:
		return fmtpValue(a, "packetization-mode") == fmtpValue(b, "packetization-mode") &&
			h264Profile(a) == h264Profile(b)
	case codecVP9:
		return fmtpValue(a, "profile-id") == fmtpValue(b, "profile-id")
	}
	return true
}

func fmtpValue(line, key string) string {
	for _, kv := range strings.Split(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, key) {
			return strings.ToLower(v)
		}
	}
	return ""
}

// h264Profile is the profile_idc and constraint flags of profile-level-id, without the level.
func h264Profile(fmtp string) string {
	v := fmtpValue(fmtp, "profile-level-id")
	if len(v) != 6 {
		return v
	}
	return v[:4]
}

// writeResult tells forward what became of a packet.
type writeResult uint8

const (
	writeOK       writeResult = iota
	writeDropped              // unusable packet; nothing to recover
	writeNotReady             // the subscriber's transport cannot send yet (no SRTP), or failed
)

// forward sends one packet of the published track, if this subscriber should get it.
// Called by the layer readers with no lock shared between DownTracks.
func (d *DownTrack) forward(p *inPacket) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writer == nil || d.paused || d.allocPaused || d.maxLayer < 0 {
		return
	}
	if p.layer != d.target {
		d.retarget(p.arrival)
	}
	switch {
	case p.layer == d.target && (p.layer != d.current || d.needSync):
		if !p.keyframe {
			// Ask again while waiting: an earlier request may have been swallowed by the
			// throttle (another subscriber asked just before), and publishers rarely send a
			// keyframe unprompted. The throttle keeps this cheap.
			d.track.requestKeyframe(d.target, p.arrival)
			return
		}
		d.current, d.needSync = p.layer, false
		d.munger.Rebase(p.hdr.SequenceNumber, p.hdr.Timestamp, p.arrival)
	case p.layer != d.current || d.needSync:
		return // another layer, or the current one while waiting for the target's keyframe
	}
	sn, ts, ok := d.munger.Translate(p.hdr.SequenceNumber, p.hdr.Timestamp)
	if !ok {
		return
	}
	switch d.write(&p.hdr, p.payload, &p.ext, p.red, sn, ts, p.arrival) {
	case writeOK:
		if d.munger.started {
			// A gap in what we send is upstream loss (or a packet we could not send), not
			// the subscriber's: remember it so that its reports are read net of it.
			if gap := int16(sn - d.munger.lastSN); gap > 1 {
				d.missing += int64(gap - 1)
			} else if gap < 0 {
				d.missing-- // a late packet filled a gap
			}
		}
		d.munger.Sent(p.hdr.SequenceNumber, sn, ts, p.arrival)
		d.seq.push(sn, p.hdr.SequenceNumber, ts, p.layer, p.arrival)
		if !d.sentAny {
			d.sentAny = true
			if d.transport != nil {
				d.transport.mediaSent()
			}
		}
	case writeNotReady:
		// Nothing went out: restart from the next keyframe once SRTP is up. If the transport
		// is already connected this is the short window before SRTP starts, so ask for one.
		d.needSync = true
		if d.transport != nil && d.transport.connected.Load() {
			d.track.requestKeyframe(d.target, p.arrival)
		}
	}
}

// retarget follows the publisher's live layers: called on packets of layers other than the
// target, it moves the target when a better allowed layer is live or the target stopped.
func (d *DownTrack) retarget(now int64) {
	best := d.track.bestLayer(d.ceiling(), now)
	if best < 0 || best == d.target {
		return
	}
	d.target = best
	if best != d.current {
		d.track.requestKeyframe(best, now)
	}
}

// write rewrites the header for this subscriber and sends. Called with d.mu held.
func (d *DownTrack) write(src *rtp.Header, payload []byte, ext *[numFwdExt][]byte, red bool,
	sn uint16, ts uint32, now int64,
) writeResult {
	pt := d.pt
	switch {
	case red && d.sendRED:
		if d.redBuf != nil {
			b, ok := redRewritePT(d.redBuf, payload, d.track.opusPT, d.opusPT)
			if !ok {
				d.stats.undeliverable.Add(1)
				return writeDropped
			}
			payload = b
		}
	case red:
		primary, _, ok := redPrimary(payload)
		if !ok {
			d.stats.undeliverable.Add(1)
			return writeDropped
		}
		payload, pt = primary, d.opusPT
	case d.track.ck == codecRED:
		pt = d.opusPT // a plain Opus packet in a RED track
	}
	h := &d.hdr
	h.Version = 2
	h.Padding = src.Padding
	h.PaddingSize = src.PaddingSize
	h.Marker = src.Marker
	h.PayloadType = pt
	h.SequenceNumber = sn
	h.Timestamp = ts
	h.SSRC = d.ssrc
	h.CSRC = src.CSRC
	h.Extension = false
	h.ExtensionProfile = 0
	h.Extensions = d.extBuf[:0]
	for k, id := range d.ext {
		if id != 0 && len(ext[k]) > 0 {
			_ = h.SetExtension(id, ext[k]) // fails only for IDs or sizes we never produce
		}
	}
	return d.send(h, payload, now)
}

// send stamps the transport-wide sequence number, writes, and counts. Called with d.mu held.
// now is the departure recorded for the estimate: for a forwarded packet, its arrival, which
// is off by the fan-out's delay, the same for consecutive packets and cheaper than a clock
// read per copy.
func (d *DownTrack) send(h *rtp.Header, payload []byte, now int64) writeResult {
	var twcc uint16
	stamp := d.twccID != 0 && d.link != nil
	if stamp {
		twcc = d.link.bwe.nextSeq()
		_ = h.SetExtension(d.twccID, putTWCC(&d.twccBuf, twcc))
	}
	n, err := d.writer.WriteRTP(h, payload)
	switch {
	case err != nil:
		d.stats.writeErrors.Add(1)
		return writeNotReady
	case n == 0:
		d.stats.notReady.Add(1)
		return writeNotReady
	}
	if stamp {
		d.link.bwe.onSent(twcc, n, now)
	}
	d.stats.packets.Add(1)
	// The RTP packet as the publisher's side counts it; n has the SRTP tag besides.
	d.stats.bytes.Add(uint64(h.MarshalSize() + len(payload) + int(h.PaddingSize)))
	d.payloadOctets += uint32(len(payload))
	return writeOK
}

// retransmit answers a NACK for the output sequence number sn from the publisher's cache.
func (d *DownTrack) retransmit(sn uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writer == nil {
		return
	}
	e := d.seq.lookup(sn)
	if e == nil || e.resends >= maxRetransmits {
		return
	}
	now := time.Now().UnixNano()
	if int32(uint32(now/1e6)-e.sentMs) > int32(rtxDeadline/time.Millisecond) {
		d.stats.rtxSkipped.Add(1) // it would arrive too late to be played
		return
	}
	if d.link != nil && !d.link.spendRetransmit() {
		d.stats.rtxSkipped.Add(1) // the subscriber's link has no room for it
		return
	}
	l := d.track.layerAt(e.layer)
	if l == nil {
		return
	}
	n := l.cache.get(e.srcSN, d.rtxRaw[:])
	if n == 0 {
		return
	}
	raw := d.rtxRaw[:n]
	h := &d.rtxHdr
	hl, err := h.Unmarshal(raw)
	if err != nil {
		return
	}
	end := n
	h.PaddingSize = 0
	if h.Padding {
		pad := int(raw[end-1])
		if pad == 0 || hl+pad > end {
			return
		}
		end -= pad
		h.PaddingSize = byte(pad)
	}
	var ext [numFwdExt][]byte
	for k, id := range d.track.srcExt {
		if id != 0 {
			ext[k] = h.GetExtension(id)
		}
	}
	red := d.track.redPT != 0 && h.PayloadType == d.track.redPT
	if d.write(h, raw[hl:end], &ext, red, sn, e.outTS, now) != writeOK {
		return
	}
	e.resends++
	d.stats.retransmits.Add(1)
	if d.link == nil {
		return
	}
	d.link.retransmitted(n)
	// On a path that drops packets at random, copies make the resend lost about one time in a
	// thousand instead of one in ten (downlink.copies). Only while the budget keeps room for
	// the next first copy: one missing is worse than one lost twice.
	for c := d.link.copies.Load(); c > 1 && d.link.rtxTokens.Load() > int64(2*n); c-- {
		if d.write(h, raw[hl:end], &ext, red, sn, e.outTS, now) != writeOK {
			return
		}
		d.stats.retransmits.Add(1)
		d.link.retransmitted(n)
	}
}

// readRTCP serves the subscriber's feedback for this track until the sender stops.
func (d *DownTrack) readRTCP() {
	defer close(d.rtcpDone)
	buf := make([]byte, maxPacketSize)
	for {
		n, _, err := d.sender.Read(buf)
		if err != nil {
			return
		}
		d.handleRTCP(buf[:n])
	}
}

// pion hands each sender every compound packet that names its SSRC anywhere: a NACK or a
// keyframe request for another of the subscriber's tracks often comes with a receiver report
// that names them all. Only what is about this DownTrack's stream is acted on: answering a NACK
// for another stream would resend this stream's packets of the same numbers, which the
// subscriber already has and discards (its feedback then reports them lost).
func (d *DownTrack) handleRTCP(b []byte) {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	d.mu.Lock()
	ssrc := d.ssrc
	d.mu.Unlock()
	for _, pkt := range pkts {
		switch v := pkt.(type) {
		case *rtcp.ReceiverReport:
			d.receptionReports(v.Reports)
		case *rtcp.SenderReport: // a subscriber that also sends reports on what it receives here
			d.receptionReports(v.Reports)
		case *rtcp.PictureLossIndication:
			if v.MediaSSRC == ssrc {
				d.stats.keyframeRequests.Add(1)
				d.keyframeRequested()
			}
		case *rtcp.FullIntraRequest:
			if firNames(v, ssrc) {
				d.stats.keyframeRequests.Add(1)
				d.keyframeRequested()
			}
		case *rtcp.TransportLayerCC:
			if d.link != nil {
				d.link.bwe.onFeedback(v, time.Now().UnixNano())
			}
		case *rtcp.TransportLayerNack:
			if v.MediaSSRC != ssrc {
				continue
			}
			d.stats.nacks.Add(nackedPackets(v))
			for i := range v.Nacks {
				v.Nacks[i].Range(func(sn uint16) bool {
					d.retransmit(sn)
					return true
				})
			}
		}
	}
}

// firNames says whether a full intra request asks for the stream ssrc (RFC 5104: the media
// source field is unused; each entry names a stream).
func firNames(f *rtcp.FullIntraRequest, ssrc uint32) bool {
	if f.MediaSSRC == ssrc {
		return true
	}
	for _, e := range f.FIR {
		if e.SSRC == ssrc {
			return true
		}
	}
	return false
}

// receptionReports takes, from a receiver or sender report, the block about this DownTrack's
// stream. pion hands every sender the whole compound packet, whose blocks may describe the
// subscriber's other tracks.
func (d *DownTrack) receptionReports(blocks []rtcp.ReceptionReport) {
	if len(blocks) == 0 {
		return
	}
	d.mu.Lock()
	ssrc, missing := d.ssrc, d.missing
	d.mu.Unlock()
	for i := range blocks {
		if blocks[i].SSRC == ssrc {
			d.reports.observeReport(&blocks[i], missing, time.Now())
			return
		}
	}
}

// RateDownstream closes the rating window of the link to the subscriber, from the receiver
// reports that arrived since the last call; rtt is the last round trip they gave. ok is false
// when there is nothing to rate: the subscriber never sent a report, or nothing was sent to it
// and nothing reported.
func (d *DownTrack) RateDownstream(now time.Time) (q LinkQuality, score float64, rtt time.Duration, ok bool) {
	weight := lossWeight(d.track.ck)
	if d.track.ck == codecRED {
		d.mu.Lock()
		if !d.sendRED {
			weight = lossWeight(codecOpus) // this subscriber gets plain Opus
		}
		d.mu.Unlock()
	}
	return d.reports.rate(now, d.stats.packets.Load(), d.munger.clockRate, weight)
}

// keyframeRequested forwards a subscriber's PLI or FIR to the layer it receives.
func (d *DownTrack) keyframeRequested() {
	d.mu.Lock()
	layer := d.current
	if layer < 0 {
		layer = d.target
	}
	d.mu.Unlock()
	d.track.requestKeyframe(layer, time.Now().UnixNano())
}

// resync makes the DownTrack restart from the next keyframe with continuous numbering, after a
// server mute or when its transport (re)connects.
func (d *DownTrack) resync() {
	d.mu.Lock()
	d.needSync = true
	target, bound := d.target, d.writer != nil
	d.mu.Unlock()
	if bound {
		d.track.requestKeyframe(target, time.Now().UnixNano())
	}
}

// SetMaxQuality caps the simulcast layer sent. The switch happens on a keyframe of the new
// layer, which is requested from the publisher.
func (d *DownTrack) SetMaxQuality(q Quality) {
	d.mu.Lock()
	defer d.mu.Unlock()
	layer := q.layer()
	if layer == d.maxLayer {
		return
	}
	wasOff := d.maxLayer < 0
	d.maxLayer = layer
	if layer < 0 {
		return
	}
	now := time.Now().UnixNano()
	old := d.target
	d.retarget(now)
	if wasOff {
		d.needSync = true
		if d.target == old {
			d.track.requestKeyframe(d.target, now)
		}
	}
}

// SetPaused stops (true) or resumes forwarding, as UpdateTrackSettings.disabled asks. A resumed
// video restarts on a keyframe, requested from the publisher.
func (d *DownTrack) SetPaused(paused bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if paused == d.paused {
		return
	}
	d.paused = paused
	if !paused {
		d.needSync = true
		d.track.requestKeyframe(d.target, time.Now().UnixNano())
	}
}

// Stats counts the packets and bytes sent to the subscriber, retransmissions included.
func (d *DownTrack) Stats() (packets, bytes uint64) {
	return d.stats.packets.Load(), d.stats.bytes.Load()
}

// Retransmits counts the packets resent in answer to the subscriber's NACKs.
func (d *DownTrack) Retransmits() uint64 { return d.stats.retransmits.Load() }
