package sfu

import (
	"bytes"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// Fuzz targets for what the media plane parses from the network: the publisher's RTP (header,
// padding, payload descriptors for keyframe detection, RED blocks), the subscriber's RTCP and
// its TWCC feedback. The seeds are real packets built with pion's rtp and rtcp packages; the
// corpora under testdata/fuzz run as ordinary tests.

var (
	h264Codec = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		PayloadType: 102,
	}
	vp9Codec = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"},
		PayloadType:        98,
	}
	// fuzzCodecs are the publisher codecs a fuzzed packet may arrive on, chosen by its first byte.
	fuzzCodecs = []webrtc.RTPCodecParameters{vp8Codec, h264Codec, vp9Codec, opusCodec, redCodec}
)

func marshalRTP(t testing.TB, p rtp.Packet) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzPublisherPacket feeds a packet, as a layer reader reads it from the publisher, to a track
// that already forwards a stream to one subscriber. Whatever the bytes, nothing panics, and what
// reaches the subscriber is its own stream (its SSRC and payload type) carrying the payload the
// publisher sent.
func FuzzPublisherPacket(f *testing.F) {
	hdr := func(pt uint8, sn uint16, ts uint32) rtp.Header {
		return rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: sn, Timestamp: ts, SSRC: 1000}
	}
	f.Add(byte(0), marshalRTP(f, rtp.Packet{Header: hdr(96, 2, 6000), Payload: vp8Frame(false, 'd')}))
	f.Add(byte(0), marshalRTP(f, rtp.Packet{Header: hdr(96, 2, 6000), Payload: vp8Frame(true, 'k')}))
	f.Add(byte(0), marshalRTP(f, rtp.Packet{Header: hdr(96, 3, 9000), Payload: []byte{0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02}}))
	padded := rtp.Packet{Header: hdr(96, 2, 6000), Payload: vp8Frame(false, 'p'), PaddingSize: 20}
	padded.Padding = true
	f.Add(byte(0), marshalRTP(f, padded))
	withExt := rtp.Packet{Header: hdr(96, 2, 6000), Payload: vp8Frame(false, 'e')}
	if err := withExt.SetExtension(1, []byte{0x01, 0x02}); err != nil {
		f.Fatal(err)
	}
	f.Add(byte(0), marshalRTP(f, withExt))
	f.Add(byte(1), marshalRTP(f, rtp.Packet{Header: hdr(102, 2, 6000), Payload: []byte{0x78, 0x00, 0x03, 0x67, 0x42, 0xc0, 0x00, 0x02, 0x68, 0xce}}))
	f.Add(byte(1), marshalRTP(f, rtp.Packet{Header: hdr(102, 2, 6000), Payload: []byte{0x7c, 0x85, 0xb8, 0x00}}))
	f.Add(byte(1), marshalRTP(f, rtp.Packet{Header: hdr(102, 2, 6000), Payload: []byte{0x41, 0x9a, 0x02}}))
	f.Add(byte(2), marshalRTP(f, rtp.Packet{Header: hdr(98, 2, 6000), Payload: []byte{0xa8, 0x80, 0x01, 0x00, 0x05}}))
	f.Add(byte(3), marshalRTP(f, rtp.Packet{Header: hdr(111, 2, 960), Payload: []byte{0xfc, 0xff, 0xfe}}))
	f.Add(byte(4), marshalRTP(f, rtp.Packet{Header: hdr(63, 2, 960), Payload: redPayload(111, []byte{0xfc, 0xff}, redBlock{111, 960, []byte{0xaa, 0xbb}})}))
	f.Add(byte(0), []byte{0x80})

	f.Fuzz(func(t *testing.T, which byte, raw []byte) {
		codec := fuzzCodecs[int(which)%len(fuzzCodecs)]
		kind := webrtc.RTPCodecTypeVideo
		if codec.MimeType == webrtc.MimeTypeOpus || codec.MimeType == redCodec.MimeType {
			kind = webrtc.RTPCodecTypeAudio
		}
		p, layers := testTrack(t, codec, kind, nil, &rtcpRecorder{}, "")
		w := &recordWriter{}
		subscriberCodecs := []webrtc.RTPCodecParameters{codec}
		if codec.MimeType == redCodec.MimeType {
			subscriberCodecs = append(subscriberCodecs, opusCodec)
		}
		bindDownTrack(t, p, w, subscriberCodecs, nil)
		var start []byte
		switch codec.MimeType {
		case webrtc.MimeTypeVP8:
			start = vp8Frame(true, 'K')
		case webrtc.MimeTypeH264:
			start = []byte{0x65, 0x88, 0x84}
		case webrtc.MimeTypeVP9:
			start = []byte{0x08, 0x82}
		case webrtc.MimeTypeOpus:
			start = []byte{0xfc}
		default:
			start = redPayload(111, []byte{0xfc})
		}
		now := time.Now().UnixNano()
		var ip inPacket
		p.handle(layers[0], &ip, rawPacket(t, uint8(codec.PayloadType), 1, 3000, 1000, false, start), now)
		before := len(w.sent())

		in := append([]byte(nil), raw...)
		p.handle(layers[0], &ip, in, now+int64(20*time.Millisecond))
		if !bytes.Equal(in, raw) {
			t.Fatalf("handle modified the publisher's packet: %x became %x", raw, in)
		}
		sent := w.sent()
		var pkt rtp.Packet
		parsed := pkt.Unmarshal(raw) == nil
		for _, s := range sent {
			// A RED track may carry plain Opus packets, which go out as the subscriber's Opus.
			negotiated := slices.ContainsFunc(subscriberCodecs, func(c webrtc.RTPCodecParameters) bool { return uint8(c.PayloadType) == s.hdr.PayloadType })
			if s.hdr.SSRC != 4242 || !negotiated {
				t.Fatalf("forwarded a packet with SSRC %d pt %d, the subscriber's stream is 4242 with %v", s.hdr.SSRC, s.hdr.PayloadType, subscriberCodecs)
			}
		}
		for _, s := range sent[before:] {
			if !parsed {
				t.Fatalf("forwarded %x from a packet pion cannot parse (%x)", s.payload, raw)
			}
			if !bytes.Equal(s.payload, pkt.Payload) {
				t.Fatalf("forwarded payload %x, the publisher sent %x", s.payload, pkt.Payload)
			}
		}
	})
}

// FuzzKeyframeStart checks the payload descriptor parsers against pion's depacketizers: when
// pion reads a VP8 or VP9 descriptor, our verdict is the one its fields give; H.264 is judged by
// its NAL unit type alone.
func FuzzKeyframeStart(f *testing.F) {
	f.Add([]byte{0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01})
	f.Add([]byte{0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a})
	f.Add([]byte{0x90, 0x80, 0x05, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a})
	f.Add([]byte{0x10, 0x11, 0x02, 0x00, 0x12, 0x34, 0x56})
	f.Add([]byte{0xa8, 0x80, 0x01, 0x00, 0x05})
	f.Add([]byte{0xb8, 0x01, 0x00})
	f.Add([]byte{0x78, 0x00, 0x02, 0x06, 0x05, 0x00, 0x02, 0x65, 0x88})
	f.Add([]byte{0x7c, 0x85, 0xb8, 0x00})
	f.Fuzz(func(t *testing.T, p []byte) {
		vp8 := keyframeStart(codecVP8, p)
		var v8 codecs.VP8Packet
		if _, err := v8.Unmarshal(p); err == nil {
			h := v8.Payload
			want := v8.S == 1 && v8.PID == 0 && len(h) >= 6 && h[0]&0x01 == 0 && h[3] == 0x9d && h[4] == 0x01 && h[5] == 0x2a
			if vp8 != want {
				t.Errorf("VP8 %x: keyframe start %v, pion's descriptor (S %d PID %d frame %x) says %v", p, vp8, v8.S, v8.PID, h, want)
			}
		}

		vp9 := keyframeStart(codecVP9, p)
		var v9 codecs.VP9Packet
		if _, err := v9.Unmarshal(p); err == nil {
			want := v9.B && !v9.P && (!v9.L || v9.SID == 0)
			if vp9 != want {
				t.Errorf("VP9 %x: keyframe start %v, pion's descriptor (B %v P %v L %v SID %d) says %v", p, vp9, v9.B, v9.P, v9.L, v9.SID, want)
			}
		}

		if keyframeStart(codecH264, p) {
			switch p[0] & 0x1f {
			case h264NALIDR, h264NALSPS, h264NALSTAPA, h264NALFUA:
			default:
				t.Errorf("H.264 %x: keyframe start on NAL unit type %d", p, p[0]&0x1f)
			}
		}
		if keyframeStart(codecOpus, p) || keyframeStart(codecOther, p) {
			t.Errorf("an audio payload was taken for a keyframe")
		}
	})
}

// FuzzRED checks the RFC 2198 reader and renumbering: the primary block is the payload's tail,
// and renumbering changes block headers only, so the primary read afterwards is the same bytes.
func FuzzRED(f *testing.F) {
	f.Add(redPayload(111, []byte{0xfc, 0x01}, redBlock{111, 1920, bytes.Repeat([]byte{0xaa}, 300)}, redBlock{111, 960, []byte{0xbb}}), byte(111), byte(109))
	f.Add(redPayload(111, nil, redBlock{100, 480, []byte{0xcc}}), byte(111), byte(109))
	f.Add([]byte{0x80 | 111, 0x00}, byte(111), byte(109))
	f.Fuzz(func(t *testing.T, p []byte, from, to byte) {
		from, to = from&0x7f, to&0x7f
		primary, pt, ok := redPrimary(p)
		if ok && (len(primary) > len(p) || !bytes.Equal(p[len(p)-len(primary):], primary)) {
			t.Fatalf("primary %x is not the tail of %x", primary, p)
		}
		dst := make([]byte, len(p))
		out, rewritten := redRewritePT(dst, p, from, to)
		if ok && !rewritten {
			t.Fatalf("a payload whose primary block reads could not be renumbered: %x", p)
		}
		if !rewritten {
			return
		}
		if len(out) != len(p) {
			t.Fatalf("renumbered payload has %d bytes, had %d", len(out), len(p))
		}
		if !ok {
			return
		}
		primary2, pt2, ok2 := redPrimary(out)
		wantPT := pt
		if pt == from {
			wantPT = to
		}
		if !ok2 || pt2 != wantPT || !bytes.Equal(primary2, primary) {
			t.Fatalf("after renumbering %d to %d, primary %x pt %d (ok %v), want %x pt %d", from, to, primary2, pt2, ok2, primary, wantPT)
		}
	})
}

// FuzzSubscriberRTCP feeds a subscriber's compound RTCP to a DownTrack that has forwarded ten
// packets. Nothing panics, and a NACK, however formed, is answered only with packets that were
// sent, each resent as it was.
func FuzzSubscriberRTCP(f *testing.F) {
	seed := func(pkts ...rtcp.Packet) {
		b, err := rtcp.Marshal(pkts)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 4242, FractionLost: 12, TotalLost: 3, LastSequenceNumber: 9, Jitter: 40, LastSenderReport: 1, Delay: 2}}})
	seed(&rtcp.TransportLayerNack{MediaSSRC: 4242, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{3, 4, 9, 500})})
	seed(&rtcp.PictureLossIndication{MediaSSRC: 4242}, &rtcp.FullIntraRequest{FIR: []rtcp.FIREntry{{SSRC: 4242, SequenceNumber: 1}}})
	seed(&rtcp.SenderReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 4242}}}, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "cname"}}}}})
	seed(&rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: 1, Bitrate: 1e6, SSRCs: []uint32{4242}}, &rtcp.Goodbye{Sources: []uint32{1}})
	seed(&rtcp.TransportLayerCC{SenderSSRC: 1, MediaSSRC: 4242, BaseSequenceNumber: 1, PacketStatusCount: 1, ReferenceTime: 1, FbPktCount: 1,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 1}},
		RecvDeltas:   []*rtcp.RecvDelta{{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250}}})

	f.Fuzz(func(t *testing.T, b []byte) {
		p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, &rtcpRecorder{}, "")
		w := &recordWriter{}
		d := bindDownTrack(t, p, w, []webrtc.RTPCodecParameters{vp8Codec}, nil)
		now := time.Now().UnixNano()
		var ip inPacket
		for sn := uint16(0); sn < 10; sn++ {
			p.handle(layers[0], &ip, rawPacket(t, 96, sn, uint32(sn)*3000, 1000, false, vp8Frame(sn == 0, byte(sn))), now)
		}
		forwarded := w.sent()
		d.handleRTCP(b)
		resent := w.sent()[len(forwarded):]
		if uint64(len(resent)) != d.Retransmits() {
			t.Fatalf("%d packets resent, %d retransmits counted", len(resent), d.Retransmits())
		}
		for _, r := range resent {
			i := int(r.hdr.SequenceNumber - forwarded[0].hdr.SequenceNumber)
			if i < 0 || i >= len(forwarded) || !bytes.Equal(forwarded[i].payload, r.payload) {
				t.Fatalf("resent sequence number %d with payload %x, which was not sent so", r.hdr.SequenceNumber, r.payload)
			}
		}
	})
}

// FuzzTWCCFeedback folds a subscriber's feedback, as pion's RTCP reader parses it, into an
// estimator that has sent two hundred packets: the estimate stays a number within its bounds,
// and the loss and received rate it reports are possible ones.
func FuzzTWCCFeedback(f *testing.F) {
	start := time.Now().UnixNano()
	rec := twcc.NewRecorder(1)
	for seq := uint16(1); seq <= 60; seq++ {
		if seq%7 != 0 {
			rec.Record(4242, seq, int64(seq)*5000)
		}
	}
	pkts := rec.BuildFeedbackPacket()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	seed := func(p rtcp.Packet) {
		b, err := p.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(&rtcp.TransportLayerCC{SenderSSRC: 1, MediaSSRC: 4242, BaseSequenceNumber: 190, PacketStatusCount: 20, ReferenceTime: 0xffffff, FbPktCount: 9,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit,
			SymbolList: []uint16{2, 1, 0, 1, 2, 1, 0}}, &rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketNotReceived, RunLength: 13}},
		RecvDeltas: []*rtcp.RecvDelta{{Type: rtcp.TypeTCCPacketReceivedLargeDelta, Delta: -8_000_000}, {Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250},
			{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 0}, {Type: rtcp.TypeTCCPacketReceivedLargeDelta, Delta: 8_000_000}, {Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 63_750}}})

	f.Fuzz(func(t *testing.T, b []byte) {
		e := newBWE(time.Unix(0, start))
		for i := range 200 {
			e.onSent(e.nextSeq(), 1200, start+int64(i)*int64(time.Millisecond))
		}
		pkts, err := rtcp.Unmarshal(b)
		if err != nil {
			return
		}
		now := start + int64(250*time.Millisecond)
		for _, p := range pkts {
			if fb, ok := p.(*rtcp.TransportLayerCC); ok {
				e.onFeedback(fb, now)
				e.onFeedback(fb, now) // the same packet handed to a second sender
				now += int64(100 * time.Millisecond)
			}
		}
		s := e.state(now)
		if math.IsNaN(s.Estimate) || s.Estimate < minEstimate || s.Estimate > maxEstimate {
			t.Fatalf("estimate %v outside [%d, %d]", s.Estimate, minEstimate, maxEstimate)
		}
		if math.IsNaN(s.Loss) || s.Loss < 0 || s.Loss > 1 {
			t.Fatalf("loss %v", s.Loss)
		}
		if math.IsNaN(s.Received) || s.Received < 0 || math.IsInf(s.Received, 0) {
			t.Fatalf("received rate %v", s.Received)
		}
		if s.QueueingDelay < 0 {
			t.Fatalf("queueing delay %v", s.QueueingDelay)
		}
	})
}
