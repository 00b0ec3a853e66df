package sfu

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// fakeBinding stands in for the context pion passes to TrackLocal.Bind.
type fakeBinding struct {
	codecs []webrtc.RTPCodecParameters
	exts   []webrtc.RTPHeaderExtensionParameter
	ssrc   webrtc.SSRC
	writer webrtc.TrackLocalWriter
}

func (f *fakeBinding) CodecParameters() []webrtc.RTPCodecParameters { return f.codecs }
func (f *fakeBinding) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter {
	return f.exts
}
func (f *fakeBinding) SSRC() webrtc.SSRC                       { return f.ssrc }
func (f *fakeBinding) SSRCRetransmission() webrtc.SSRC         { return 0 }
func (f *fakeBinding) SSRCForwardErrorCorrection() webrtc.SSRC { return 0 }
func (f *fakeBinding) WriteStream() webrtc.TrackLocalWriter    { return f.writer }
func (f *fakeBinding) ID() string                              { return "binding" }
func (f *fakeBinding) RTCPReader() interceptor.RTCPReader      { return nil }

// sentPacket is what a recordWriter saw, copied.
type sentPacket struct {
	hdr     rtp.Header
	payload []byte
}

// recordWriter keeps every packet written to it.
type recordWriter struct {
	mu      sync.Mutex
	packets []sentPacket
	notYet  bool // behave like pion before SRTP is up: accept nothing, report nothing
}

func (w *recordWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.notYet {
		return 0, nil
	}
	hc := *h
	hc.Extensions = nil
	raw, err := h.Marshal()
	if err != nil {
		return 0, err
	}
	if _, err := hc.Unmarshal(raw); err != nil { // a deep copy, extensions included
		return 0, err
	}
	w.packets = append(w.packets, sentPacket{hdr: hc, payload: append([]byte(nil), payload...)})
	return len(raw) + len(payload), nil
}

func (w *recordWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *recordWriter) sent() []sentPacket {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]sentPacket(nil), w.packets...)
}

// rtcpRecorder stands for the publisher's connection and keeps the keyframe requests sent to it.
type rtcpRecorder struct {
	mu   sync.Mutex
	plis []uint32 // media SSRCs
}

func (r *rtcpRecorder) write(pkts []rtcp.Packet) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range pkts {
		if pli, ok := p.(*rtcp.PictureLossIndication); ok {
			r.plis = append(r.plis, pli.MediaSSRC)
		}
	}
	return nil
}

func (r *rtcpRecorder) count(ssrc uint32) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.plis {
		if s == ssrc {
			n++
		}
	}
	return n
}

var (
	vp8Codec = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		PayloadType:        96,
	}
	opusCodec = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1",
		},
		PayloadType: 111,
	}
	redCodec = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: "audio/red", ClockRate: 48000, Channels: 2, SDPFmtpLine: "111/111",
		},
		PayloadType: 63,
	}
)

// testTrack builds a PublishedTrack with the given simulcast rids (a single "" for none),
// without a peer connection.
func testTrack(t testing.TB, codec webrtc.RTPCodecParameters, kind webrtc.RTPCodecType,
	exts []webrtc.RTPHeaderExtensionParameter, rec *rtcpRecorder, rids ...string,
) (*PublishedTrack, []*upLayer) {
	t.Helper()
	var write func([]rtcp.Packet) error
	if rec != nil {
		write = rec.write
	}
	p := newPublishedTrack("track", "stream", codec, kind, exts, write, discardLogger())
	var layers []*upLayer
	for i, rid := range rids {
		l, ok := p.addLayer(rid, uint32(1000+i))
		if !ok {
			t.Fatalf("addLayer(%q) refused", rid)
		}
		layers = append(layers, l)
	}
	return p, layers
}

// bindDownTrack subscribes a fake subscriber to p.
func bindDownTrack(t testing.TB, p *PublishedTrack, w webrtc.TrackLocalWriter, codecs []webrtc.RTPCodecParameters,
	exts []webrtc.RTPHeaderExtensionParameter,
) *DownTrack {
	t.Helper()
	d := newDownTrack(p, nil, "TR_x", "PA_y|TR_x")
	if _, err := d.Bind(&fakeBinding{codecs: codecs, exts: exts, ssrc: 4242, writer: w}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	p.addDownTrack(d)
	return d
}

// rawPacket marshals an RTP packet.
func rawPacket(t testing.TB, pt uint8, sn uint16, ts uint32, ssrc uint32, marker bool, payload []byte) []byte {
	t.Helper()
	pkt := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: sn, Timestamp: ts, SSRC: ssrc, Marker: marker},
		Payload: payload,
	}
	b, err := pkt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vp8Frame is a one-packet VP8 frame: a payload descriptor with S set, then a frame header
// that is a key frame or not, then a tag byte so tests can tell packets apart.
func vp8Frame(key bool, tag byte) []byte {
	if key {
		return []byte{0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, tag}
	}
	return []byte{0x10, 0x11, 0x02, 0x00, 0xaa, 0xbb, tag}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// pace calls write every interval with 0, 1, 2… until ctx ends or write fails (a track closed,
// or a packet the test could not build), as a publisher's encoder would.
func pace(ctx context.Context, interval time.Duration, write func(i int) error) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if write(i) != nil {
			return
		}
	}
}
