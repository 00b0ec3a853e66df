package sfu

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func TestUpstreamLossAndLateCounting(t *testing.T) {
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, nil, "")
	pkt := &inPacket{}
	for _, sn := range []uint16{65534, 65535, 2, 1, 2, 3} { // 0 and 1 missing across the wrap; 1 late; 2 twice
		p.handle(layers[0], pkt, rawPacket(t, 96, sn, uint32(sn)*3000, layers[0].ssrc, false, vp8Frame(false, 0)), 0)
	}
	p.handle(layers[0], pkt, rawPacket(t, 96, 3+maxCountedGap+1, 0, layers[0].ssrc, false, vp8Frame(false, 0)), 0)
	p.handle(layers[0], pkt, []byte{0x80, 96}, 0) // too short for an RTP header

	var s MediaStats
	p.readStats(&s)
	if s.UpstreamLost != 2 {
		t.Errorf("lost = %d, want 2 (sequence numbers 0 and 1; the jump past %d is a discontinuity)", s.UpstreamLost, maxCountedGap)
	}
	if s.UpstreamLate != 2 {
		t.Errorf("late = %d, want 2 (1 after 2, and 2 again)", s.UpstreamLate)
	}
	if s.UpstreamMalformed != 1 {
		t.Errorf("malformed = %d, want 1", s.UpstreamMalformed)
	}
	if s.PacketsIn != 7 {
		t.Errorf("packets in = %d, want 7 (the malformed one is not counted)", s.PacketsIn)
	}
}

func TestStatsKeepEndedTracksAndNeverGoBack(t *testing.T) {
	reg := newStatsRegistry()
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, nil, "")
	reg.addTrack(p)
	ready := &recordWriter{}
	d := bindDownTrack(t, p, ready, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	reg.addDownTrack(d)
	early := bindDownTrack(t, p, &recordWriter{notYet: true}, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	reg.addDownTrack(early)

	pkt := &inPacket{}
	for sn := uint16(0); sn < 3; sn++ {
		p.handle(layers[0], pkt, rawPacket(t, 96, sn, uint32(sn)*3000, layers[0].ssrc, false, vp8Frame(sn == 0, byte(sn))), 0)
	}
	live := reg.snapshot()
	if v := live.Video; v.PublishedTracks != 1 || v.SubscribedTracks != 2 || v.PacketsIn != 3 || v.PacketsOut != 3 {
		t.Fatalf("live video stats %+v: want 1 published, 2 subscribed, 3 packets in, 3 out", v)
	}
	if live.Video.NotReady != 1 {
		t.Errorf("not ready = %d, want 1: the subscriber without SRTP missed the keyframe, then waits for the next", live.Video.NotReady)
	}
	if live.Audio != (MediaStats{}) {
		t.Errorf("audio stats %+v, want none", live.Audio)
	}

	p.removeDownTrack(d)
	reg.endDownTrack(d)
	reg.endDownTrack(d) // a second retirement changes nothing
	afterDown := reg.snapshot()
	if v := afterDown.Video; v.SubscribedTracks != 1 || v.PacketsOut != 3 {
		t.Errorf("after one DownTrack ended: %+v, want 1 subscribed and still 3 packets out", v)
	}
	reg.endDownTrack(early)
	reg.endTrack(p)
	ended := reg.snapshot()
	if v := ended.Video; v.PublishedTracks != 0 || v.SubscribedTracks != 0 || v.PacketsIn != 3 || v.PacketsOut != 3 || v.NotReady != 1 {
		t.Errorf("after everything ended: %+v, want no live track and the same totals", v)
	}
}

func TestRTCPCounterCountsFeedbackSent(t *testing.T) {
	reg := newStatsRegistry()
	ic, err := rtcpCounterFactory{reg: reg}.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	var forwarded atomic.Int32
	w := ic.BindRTCPWriter(interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, _ interceptor.Attributes) (int, error) {
		if fail.Load() {
			return 0, errors.New("connection closed")
		}
		forwarded.Add(int32(len(pkts)))
		return 100, nil
	}))
	feedback := []rtcp.Packet{
		&rtcp.TransportLayerNack{MediaSSRC: 1, Nacks: []rtcp.NackPair{{PacketID: 10, LostPackets: 0b101}, {PacketID: 40}}},
		&rtcp.PictureLossIndication{MediaSSRC: 1},
		&rtcp.FullIntraRequest{MediaSSRC: 1},
		&rtcp.ReceiverReport{SSRC: 2},
	}
	if _, err := w.Write(feedback, nil); err != nil {
		t.Fatal(err)
	}
	if forwarded.Load() != 4 {
		t.Errorf("%d packets reached the connection, want all 4", forwarded.Load())
	}
	if n := reg.nacksSent.Load(); n != 4 {
		t.Errorf("NACKed packets = %d, want 4 (10, 11, 13 and 40)", n)
	}
	if n := reg.keyframeRequestsSent.Load(); n != 2 {
		t.Errorf("keyframe requests = %d, want 2 (a PLI and a FIR)", n)
	}
	fail.Store(true)
	if _, err := w.Write(feedback, nil); err == nil {
		t.Fatal("the write error was swallowed")
	}
	if reg.nacksSent.Load() != 4 || reg.keyframeRequestsSent.Load() != 2 {
		t.Error("feedback that failed to go out was counted")
	}
}

// TestLoopbackStats runs real peer connections through the Engine and checks what its Stats
// say about them, before and after the tracks end.
func TestLoopbackStats(t *testing.T) {
	e := newTestEngine(t, false)
	defer func() { _ = e.Close() }()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	pub := publishRTP(t, e, clientOptions{}, vp8Capability, "TR_v", "PA_v")
	video, tracks, pubT := pub.track, pub.tracks, pub.transport
	var needKey atomic.Bool
	var plis atomic.Int32
	go keyframeRequests(pub.sender, "", &needKey, &plis)

	const lost = 30 // never sent: the SFU sees a gap and NACKs it
	go pace(ctx, 10*time.Millisecond, func(i int) error {
		sn := uint16(i)
		if sn == lost {
			return nil
		}
		key := sn%50 == 0 || needKey.Swap(false)
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: sn, Timestamp: uint32(sn) * 3000}, Payload: vp8Frame(key, byte(sn))}
		return video.WriteRTP(pkt)
	})
	track := firstTrack(t, tracks)

	sub := newTestPeer(t, newClientAPI(t, clientOptions{}))
	var received atomic.Int64
	var remoteSSRC atomic.Uint32
	sub.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		remoteSSRC.Store(uint32(tr.SSRC()))
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			received.Add(1)
		}
	})
	var firstMedia atomic.Int32
	subT := subscribeWith(t, e, sub, TransportHandlers{OnFirstMedia: func() { firstMedia.Add(1) }})
	if _, err := subT.Subscribe(track, "TR_v", "PA_v|TR_v"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the subscriber receives video", func() bool { return received.Load() >= 60 })

	// The subscriber asks for a keyframe and for a packet again, as a browser would.
	ssrc := remoteSSRC.Load()
	if err := sub.pc.WriteRTCP([]rtcp.Packet{
		&rtcp.PictureLossIndication{MediaSSRC: ssrc},
		&rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: []rtcp.NackPair{{PacketID: 0, LostPackets: 0}}},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the SFU counts the lost packet, the NACK it sent and the subscriber's feedback", func() bool {
		s := e.Stats().Video
		return s.UpstreamLost >= 1 && e.Stats().NACKsSent >= 1 && s.KeyframeRequestsReceived >= 1 && s.NACKsReceived >= 1
	})
	live := e.Stats()
	v := live.Video
	if v.PublishedTracks != 1 || v.SubscribedTracks != 1 {
		t.Errorf("live tracks %d published, %d subscribed; want 1 and 1", v.PublishedTracks, v.SubscribedTracks)
	}
	if v.PacketsIn < 60 || v.BytesIn == 0 {
		t.Errorf("in: %d packets, %d bytes; want at least the 60 the subscriber got", v.PacketsIn, v.BytesIn)
	}
	if got := received.Load(); v.PacketsOut < uint64(got) || v.BytesOut == 0 {
		t.Errorf("out: %d packets, %d bytes; the subscriber received %d", v.PacketsOut, v.BytesOut, got)
	}
	if live.KeyframeRequestsSent == 0 {
		t.Error("no keyframe request counted towards the publisher (the subscriber's first keyframe, or its PLI)")
	}
	if n := firstMedia.Load(); n != 1 {
		t.Errorf("OnFirstMedia called %d times, want once", n)
	}

	if err := subT.Close(); err != nil {
		t.Fatal(err)
	}
	afterSub := e.Stats().Video
	if afterSub.SubscribedTracks != 0 || afterSub.PacketsOut < v.PacketsOut || afterSub.NACKsReceived < v.NACKsReceived {
		t.Errorf("after the subscriber left: %+v; want no DownTrack and counters not below %+v", afterSub, v)
	}
	stop()
	if err := pubT.Close(); err != nil {
		t.Fatal(err)
	}
	afterPub := e.Stats().Video
	if afterPub.PublishedTracks != 0 || afterPub.PacketsIn < afterSub.PacketsIn || afterPub.UpstreamLost < afterSub.UpstreamLost {
		t.Errorf("after the publisher left: %+v; want no track and counters not below %+v", afterPub, afterSub)
	}
}

// subscribeWith is subscribe with extra handlers.
func subscribeWith(t *testing.T, e *Engine, client *testPeer, extra TransportHandlers) *Transport {
	t.Helper()
	tr := subscribe(t, e, client)
	// subscribe built the handlers before the transport existed; OnFirstMedia is read when the
	// first packet goes out, after this.
	tr.h.OnFirstMedia = extra.OnFirstMedia
	return tr
}

// bindRecorder is an interceptor that records how its writer was bound.
type bindRecorder struct {
	interceptor.NoOp
	rtcpBinds, streams int
}

func (b *bindRecorder) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	b.rtcpBinds++
	return w
}

func (b *bindRecorder) BindRemoteStream(_ *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	b.streams++
	return r
}

type bindRecorderFactory struct{ rec *bindRecorder }

func (f bindRecorderFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return f.rec, nil
}

func TestIdleUntilMediaStartsOnFirstStream(t *testing.T) {
	rec := &bindRecorder{}
	ic, err := idleUntilMediaFactory{bindRecorderFactory{rec}}.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	var wrote atomic.Int32
	w := interceptor.RTCPWriterFunc(func([]rtcp.Packet, interceptor.Attributes) (int, error) { wrote.Add(1); return 0, nil })
	got := ic.BindRTCPWriter(w)
	if rec.rtcpBinds != 0 {
		t.Fatal("the wrapped interceptor got its RTCP writer before any media")
	}
	if _, err := got.Write(nil, nil); err != nil || wrote.Load() != 1 {
		t.Fatal("the writer handed back does not reach the connection")
	}
	ic.BindRemoteStream(&interceptor.StreamInfo{SSRC: 1}, nil)
	ic.BindRemoteStream(&interceptor.StreamInfo{SSRC: 2}, nil)
	if rec.rtcpBinds != 1 || rec.streams != 2 {
		t.Errorf("after two streams: %d RTCP binds (want 1), %d streams (want 2)", rec.rtcpBinds, rec.streams)
	}
	if err := ic.Close(); err != nil {
		t.Fatal(err)
	}
}

// After a network cut, a publisher answers the NACKs for what it sent during the cut: those
// packets are seconds behind the newest and no subscriber can play them, so they are not
// forwarded; a packet repaired within a jitter buffer's wait still is.
func TestStalePacketsAreNotForwarded(t *testing.T) {
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, nil, "")
	w := &recordWriter{}
	bindDownTrack(t, p, w, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	pkt := &inPacket{}
	send := func(sn uint16, ts uint32, key bool) {
		p.handle(layers[0], pkt, rawPacket(t, 96, sn, ts, layers[0].ssrc, false, vp8Frame(key, byte(sn))), 0)
	}
	const second = 90000 // VP8's clock
	send(100, 0, true)
	send(400, 3*second, true)            // three seconds later, after a cut
	send(150, 3*second/2, false)         // repaired: 1.5 s behind the newest
	send(399, 3*second-second/25, false) // repaired: 40 ms behind
	var forwarded []byte                 // the tag of each, its input sequence number's low byte
	w.mu.Lock()
	for _, s := range w.packets {
		forwarded = append(forwarded, s.payload[len(s.payload)-1])
	}
	w.mu.Unlock()
	if want := []byte{100, 400 & 0xff, 399 & 0xff}; !bytes.Equal(forwarded, want) {
		t.Fatalf("forwarded the packets tagged %v, want %v: not the one 1.5 s behind the newest", forwarded, want)
	}
}

// A video layer that comes back after a second of silence (its publisher's link was cut) is
// asked for a keyframe at once; a layer that flows, or comes back on a keyframe, is not.
func TestAStreamBackFromSilenceAsksForAKeyframe(t *testing.T) {
	rec := &rtcpRecorder{}
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, rec, "")
	l := layers[0]
	pkt := &inPacket{}
	at := int64(time.Hour)
	send := func(sn uint16, key bool, after time.Duration) {
		at += int64(after)
		p.handle(l, pkt, rawPacket(t, 96, sn, uint32(sn)*3000, l.ssrc, false, vp8Frame(key, byte(sn))), at)
	}
	send(1, true, 0)
	for sn := uint16(2); sn < 10; sn++ {
		send(sn, false, 40*time.Millisecond)
	}
	if n := rec.count(l.ssrc); n != 0 {
		t.Fatalf("%d keyframe requests for a stream that flows, want 0", n)
	}
	send(100, false, 3*time.Second) // back after a cut, on a delta frame
	if n := rec.count(l.ssrc); n != 1 {
		t.Fatalf("%d keyframe requests after 3 s of silence, want 1", n)
	}
	send(200, true, 3*time.Second) // back on a keyframe: nothing to ask
	if n := rec.count(l.ssrc); n != 1 {
		t.Fatalf("%d keyframe requests after a stream came back on a keyframe, want still 1", n)
	}
}
