package sfu

import (
	"sync/atomic"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func TestLocalTrackFansOutToSinksAndSubscribers(t *testing.T) {
	var keyframes atomic.Int32
	p, w, err := (*Engine)(nil).NewLocalTrack(vp8Codec, "programme-video", "programme", func() { keyframes.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind() != webrtc.RTPCodecTypeVideo {
		t.Fatalf("kind %s, want video", p.Kind())
	}
	sub := &recordWriter{}
	d := bindDownTrack(t, p, sub, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	got := &recordWriter{}
	sink := p.AddSink(got, QualityHigh)
	if keyframes.Load() == 0 {
		t.Error("adding a video sink did not ask the producer for a keyframe")
	}

	write := func(sn uint16, ts uint32, payload []byte) {
		t.Helper()
		h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: sn, Timestamp: ts, Marker: true}
		if err := w.WriteRTP(&h, payload); err != nil {
			t.Fatal(err)
		}
	}
	write(100, 9000, vp8Frame(false, 1)) // before any keyframe: held back
	write(101, 12000, vp8Frame(true, 2))
	write(102, 15000, vp8Frame(false, 3))
	write(104, 21000, vp8Frame(false, 4)) // 103 lost upstream: the gap is kept

	for name, rec := range map[string]*recordWriter{"sink": got, "subscriber": sub} {
		pkts := rec.sent()
		if tg := tags(pkts); string(tg) != "\x02\x03\x04" {
			t.Fatalf("%s got tags %v, want 2,3,4 (from the keyframe on)", name, tg)
		}
		if d := pkts[2].hdr.SequenceNumber - pkts[1].hdr.SequenceNumber; d != 2 {
			t.Errorf("%s: sequence gap %d between 102 and 104, want 2 (loss stays visible)", name, d)
		}
		if d := pkts[1].hdr.Timestamp - pkts[0].hdr.Timestamp; d != 3000 {
			t.Errorf("%s: timestamp step %d, want 3000", name, d)
		}
	}

	// A subscriber's keyframe request reaches the producer (the throttle allows one per 500 ms,
	// and the sink's request above was the last one).
	before := keyframes.Load()
	p.layerAt(0).pli.last.Store(0)
	d.handleRTCP(marshalRTCP(t, &rtcp.PictureLossIndication{MediaSSRC: 4242}))
	if keyframes.Load() != before+1 {
		t.Errorf("a subscriber's PLI made %d keyframe requests to the producer, want 1", keyframes.Load()-before)
	}

	// A NACK from the subscriber is answered from the local track's cache.
	first := sub.sent()[0].hdr.SequenceNumber
	d.handleRTCP(marshalRTCP(t, &rtcp.TransportLayerNack{MediaSSRC: 4242, Nacks: []rtcp.NackPair{{PacketID: first}}}))
	if n := len(sub.sent()); n != 4 {
		t.Errorf("subscriber has %d packets after a NACK, want 4 (one retransmission)", n)
	}

	sink.Close()
	write(105, 24000, vp8Frame(false, 5))
	if n := len(got.sent()); n != 3 {
		t.Errorf("sink got %d packets, want 3: nothing after Close", n)
	}

	w.Close()
	select {
	case <-p.Done():
	default:
		t.Error("closing the writer did not end the track")
	}
	if err := w.WriteRTP(&rtp.Header{}, nil); err != ErrLocalTrackClosed {
		t.Errorf("write after Close: %v, want ErrLocalTrackClosed", err)
	}
}

func TestSinkGetsPlainOpusFromRED(t *testing.T) {
	p, layers := testTrack(t, redCodec, webrtc.RTPCodecTypeAudio, nil, nil, "")
	got := &recordWriter{}
	p.AddSink(got, QualityHigh)
	f := newFeeder(t, p)
	// RED: one redundant block (pt 111, offset 960, length 2), then the primary (pt 111).
	red := []byte{0x80 | 111, 0x03, 0xc0, 0x02, 111, 0xaa, 0xbb, 0x01, 0x02, 0x03}
	f.send(layers[0], 63, 7, 960, red)
	pkts := got.sent()
	if len(pkts) != 1 {
		t.Fatalf("sink got %d packets, want 1", len(pkts))
	}
	if string(pkts[0].payload) != "\x01\x02\x03" || pkts[0].hdr.PayloadType != 111 {
		t.Errorf("sink got pt %d payload %x, want the Opus primary 010203 as pt 111", pkts[0].hdr.PayloadType, pkts[0].payload)
	}
}

func TestNewLocalTrackRefusesUnknownKind(t *testing.T) {
	c := vp8Codec
	c.MimeType = "application/x-data"
	if _, _, err := (*Engine)(nil).NewLocalTrack(c, "x", "y", nil); err == nil {
		t.Error("a non audio/video mime type was accepted")
	}
}

// nullSink accepts and drops packets, as a well-behaved sink copies and returns.
type nullSink struct{ n int }

func (s *nullSink) WriteRTP(_ *rtp.Header, payload []byte) (int, error) {
	s.n += len(payload)
	return len(payload), nil
}

// BenchmarkLocalTrackWrite measures one server-fed packet reaching a sink and a subscriber.
func BenchmarkLocalTrackWrite(b *testing.B) {
	p, w, err := (*Engine)(nil).NewLocalTrack(opusCodec, "a", "s", nil)
	if err != nil {
		b.Fatal(err)
	}
	bindDownTrack(b, p, discardWriter{}, []webrtc.RTPCodecParameters{opusCodec}, nil)
	p.AddSink(&nullSink{}, QualityHigh)
	payload := make([]byte, 80)
	h := rtp.Header{Version: 2, PayloadType: 111}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		h.SequenceNumber = uint16(i)
		h.Timestamp = uint32(i) * 960
		if err := w.WriteRTP(&h, payload); err != nil {
			b.Fatal(err)
		}
	}
}
