package sfu

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// feeder sends packets into a PublishedTrack the way a layer reader does, on a synthetic clock
// that starts at the real time (layer liveness is judged against it).
type feeder struct {
	t   *testing.T
	p   *PublishedTrack
	pkt inPacket
	now int64
}

func newFeeder(t *testing.T, p *PublishedTrack) *feeder {
	return &feeder{t: t, p: p, now: time.Now().UnixNano()}
}

func (f *feeder) send(l *upLayer, pt uint8, sn uint16, ts uint32, payload []byte) {
	f.p.handle(l, &f.pkt, rawPacket(f.t, pt, sn, ts, l.ssrc, false, payload), f.now)
}

func (f *feeder) wait(d time.Duration) { f.now += int64(d) }

// checkContinuous asserts that the packets form one stream: one SSRC, consecutive sequence
// numbers, timestamps that never go back.
func checkContinuous(t *testing.T, pkts []sentPacket) {
	t.Helper()
	for i := 1; i < len(pkts); i++ {
		a, b := pkts[i-1].hdr, pkts[i].hdr
		if b.SSRC != a.SSRC {
			t.Fatalf("packet %d: SSRC changed %d -> %d", i, a.SSRC, b.SSRC)
		}
		if b.SequenceNumber != a.SequenceNumber+1 {
			t.Fatalf("packet %d: sequence %d follows %d", i, b.SequenceNumber, a.SequenceNumber)
		}
		if int32(b.Timestamp-a.Timestamp) < 0 {
			t.Fatalf("packet %d: timestamp %d goes back from %d", i, b.Timestamp, a.Timestamp)
		}
	}
}

func tags(pkts []sentPacket) []byte {
	var out []byte
	for _, p := range pkts {
		out = append(out, p.payload[len(p.payload)-1])
	}
	return out
}

func TestSimulcastSwitchKeepsOneStream(t *testing.T) {
	rec := &rtcpRecorder{}
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, rec, "q", "h", "f")
	q, f := layers[0], layers[2]
	w := &recordWriter{}
	d := bindDownTrack(t, p, w, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	feed := newFeeder(t, p)

	// Each layer has its own numbering, as in a real simulcast publication.
	qSN, hSN, fSN := uint16(100), uint16(30000), uint16(65530)
	qTS, hTS, fTS := uint32(5000), uint32(1<<31), uint32(4294960000)
	frame := func(key bool, tag byte) {
		feed.send(layers[0], 96, qSN, qTS, vp8Frame(key, 'q'))
		feed.send(layers[1], 96, hSN, hTS, vp8Frame(key, 'h'))
		feed.send(layers[2], 96, fSN, fTS, vp8Frame(key, tag))
		qSN, hSN, fSN = qSN+1, hSN+1, fSN+1
		qTS, hTS, fTS = qTS+3000, hTS+3000, fTS+3000
		feed.wait(33 * time.Millisecond)
	}
	frame(false, 'x') // nothing before a keyframe
	frame(true, 'F')
	frame(false, 'f')
	frame(false, 'f') // f crosses the 16-bit wrap here
	if got := tags(w.sent()); !bytes.Equal(got, []byte("Fff")) {
		t.Fatalf("before the switch got %q, want the f layer from its keyframe", got)
	}

	d.SetMaxQuality(QualityLow)
	if rec.count(q.ssrc) != 1 {
		t.Fatalf("switching down sent %d PLIs for the q layer, want 1", rec.count(q.ssrc))
	}
	// Until q sends a keyframe, f goes on.
	frame(false, 'f')
	feed.send(q, 96, qSN, qTS, vp8Frame(true, 'Q'))
	qSN, qTS = qSN+1, qTS+3000
	feed.wait(10 * time.Millisecond)
	feed.send(f, 96, fSN, fTS, vp8Frame(false, 'f')) // after the switch, f is dropped
	fSN++
	frame(false, 'z')

	pkts := w.sent()
	if got := tags(pkts); !bytes.Equal(got, []byte("FfffQq")) {
		t.Fatalf("got %q, want FfffQq", got)
	}
	checkContinuous(t, pkts)
	// The timestamp advances across the switch by the time elapsed (33 ms at 90 kHz), and
	// then follows the q layer's own clock.
	if gap := pkts[4].hdr.Timestamp - pkts[3].hdr.Timestamp; gap != 33*90 {
		t.Errorf("timestamp gap across the switch = %d, want %d", gap, 33*90)
	}
	if gap := pkts[5].hdr.Timestamp - pkts[4].hdr.Timestamp; gap != 3000 {
		t.Errorf("timestamp step after the switch = %d, want 3000", gap)
	}
	if pkts[0].hdr.SSRC != 4242 || pkts[0].hdr.PayloadType != 96 {
		t.Errorf("header = ssrc %d pt %d, want the subscriber's 4242/96", pkts[0].hdr.SSRC, pkts[0].hdr.PayloadType)
	}

	// A NACK for a packet sent before the switch is served from the f layer's cache.
	before := pkts[2]
	d.handleRTCP(marshalRTCP(t, &rtcp.TransportLayerNack{
		MediaSSRC: 4242, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{before.hdr.SequenceNumber}),
	}))
	pkts = w.sent()
	last := pkts[len(pkts)-1]
	if last.hdr.SequenceNumber != before.hdr.SequenceNumber || last.hdr.Timestamp != before.hdr.Timestamp ||
		!bytes.Equal(last.payload, before.payload) {
		t.Fatalf("retransmission = sn %d ts %d %x, want sn %d ts %d %x", last.hdr.SequenceNumber, last.hdr.Timestamp,
			last.payload, before.hdr.SequenceNumber, before.hdr.Timestamp, before.payload)
	}
	if d.Retransmits() != 1 {
		t.Fatalf("Retransmits = %d", d.Retransmits())
	}
}

func TestSimulcastFollowsLiveLayers(t *testing.T) {
	rec := &rtcpRecorder{}
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, rec, "q", "h", "f")
	q, h, f := layers[0], layers[1], layers[2]
	w := &recordWriter{}
	bindDownTrack(t, p, w, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	feed := newFeeder(t, p)
	var sn [3]uint16
	send := func(l *upLayer, key bool, tag byte) {
		feed.send(l, 96, sn[l.index], uint32(sn[l.index])*3000, vp8Frame(key, tag))
		sn[l.index]++
	}
	for i := 0; i < 3; i++ {
		send(q, i == 0, 'q')
		send(h, i == 0, 'h')
		send(f, i == 0, 'f')
		feed.wait(33 * time.Millisecond)
	}
	// The browser stops sending f (bandwidth). After a few of its frame intervals without it
	// (minLiveFor here, at 30 frames a second), the subscriber moves to h, asking h for a
	// keyframe.
	for i := 0; i < 12; i++ {
		send(q, false, 'q')
		send(h, false, 'h')
		feed.wait(33 * time.Millisecond)
	}
	if rec.count(h.ssrc) != 1 {
		t.Fatalf("PLIs to h = %d, want 1", rec.count(h.ssrc))
	}
	send(h, true, 'H')
	send(h, false, 'h')
	// f comes back: the subscriber goes up again on f's next keyframe.
	send(f, false, 'f')
	if rec.count(f.ssrc) != 1 {
		t.Fatalf("PLIs to f = %d, want 1", rec.count(f.ssrc))
	}
	send(h, false, 'h')
	send(f, true, 'F')
	send(h, false, 'h')
	pkts := w.sent()
	if got := tags(pkts); !bytes.Equal(got, []byte("fffHhhF")) {
		t.Fatalf("got %q, want fffHhhF", got)
	}
	checkContinuous(t, pkts)
}

func TestPauseAndMuteKeepNumberingContinuous(t *testing.T) {
	exts := []webrtc.RTPHeaderExtensionParameter{{URI: uriAudioLevel, ID: 1}}
	p, layers := testTrack(t, opusCodec, webrtc.RTPCodecTypeAudio, exts, nil, "")
	l := layers[0]
	w := &recordWriter{}
	d := bindDownTrack(t, p, w, []webrtc.RTPCodecParameters{opusCodec}, nil)
	feed := newFeeder(t, p)
	sn, ts := uint16(65534), uint32(4294967000)
	step := func(n int) {
		for i := 0; i < n; i++ {
			feed.send(l, 111, sn, ts, []byte{0xfc, byte(sn)})
			sn, ts = sn+1, ts+960
			feed.wait(20 * time.Millisecond)
		}
	}
	step(3)
	d.SetPaused(true)
	step(10) // 200 ms paused
	d.SetPaused(false)
	step(2)
	p.SetMuted(true)
	step(5) // 100 ms muted
	p.SetMuted(false)
	step(2)

	pkts := w.sent()
	if len(pkts) != 7 {
		t.Fatalf("sent %d packets, want 7 (3 + 2 + 2)", len(pkts))
	}
	checkContinuous(t, pkts)
	// Across the pause, the timestamp moves by the 220 ms between the two packets sent:
	// 48 kHz × 0.22 s.
	if gap := pkts[3].hdr.Timestamp - pkts[2].hdr.Timestamp; gap != 220*48 {
		t.Errorf("timestamp gap across the pause = %d, want %d", gap, 220*48)
	}
	if gap := pkts[5].hdr.Timestamp - pkts[4].hdr.Timestamp; gap != 120*48 {
		t.Errorf("timestamp gap across the mute = %d, want %d", gap, 120*48)
	}
	if gap := pkts[4].hdr.Timestamp - pkts[3].hdr.Timestamp; gap != 960 {
		t.Errorf("timestamp step while forwarding = %d, want 960", gap)
	}
}

func TestVideoResumesOnKeyframe(t *testing.T) {
	rec := &rtcpRecorder{}
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, rec, "")
	l := layers[0]
	w := &recordWriter{}
	d := bindDownTrack(t, p, w, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	feed := newFeeder(t, p)
	sn := uint16(0)
	send := func(key bool, tag byte) {
		feed.send(l, 96, sn, uint32(sn)*3000, vp8Frame(key, tag))
		sn++
		feed.wait(33 * time.Millisecond)
	}
	send(true, 'K')
	send(false, 'a')
	d.SetPaused(true)
	send(false, 'x')
	plis := rec.count(l.ssrc)
	d.SetPaused(false)
	if rec.count(l.ssrc) != plis+1 {
		t.Fatalf("resuming did not ask the publisher for a keyframe")
	}
	send(false, 'x') // not decodable without the keyframe
	send(true, 'K')
	send(false, 'b')
	pkts := w.sent()
	if got := tags(pkts); !bytes.Equal(got, []byte("KaKb")) {
		t.Fatalf("got %q, want KaKb", got)
	}
	checkContinuous(t, pkts)
}

func TestNotReadySubscriberWaitsForKeyframe(t *testing.T) {
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, &rtcpRecorder{}, "")
	w := &recordWriter{notYet: true}
	bindDownTrack(t, p, w, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	feed := newFeeder(t, p)
	feed.send(layers[0], 96, 1, 3000, vp8Frame(true, 'K')) // lost: SRTP not up yet
	w.mu.Lock()
	w.notYet = false
	w.mu.Unlock()
	feed.send(layers[0], 96, 2, 6000, vp8Frame(false, 'x'))
	feed.send(layers[0], 96, 3, 9000, vp8Frame(true, 'K'))
	if got := tags(w.sent()); !bytes.Equal(got, []byte("K")) {
		t.Fatalf("got %q, want one keyframe after the transport came up", got)
	}
}

func TestREDStrippedOrPassedThrough(t *testing.T) {
	exts := []webrtc.RTPHeaderExtensionParameter{{URI: uriAudioLevel, ID: 1}}
	p, layers := testTrack(t, redCodec, webrtc.RTPCodecTypeAudio, exts, nil, "")
	l := layers[0]

	// A subscriber without RED, numbering Opus 109 and audio level 5.
	opus109 := opusCodec
	opus109.PayloadType = 109
	plainW := &recordWriter{}
	bindDownTrack(t, p, plainW, []webrtc.RTPCodecParameters{opus109},
		[]webrtc.RTPHeaderExtensionParameter{{URI: uriAudioLevel, ID: 5}})
	// A subscriber with RED, numbering RED 120 and Opus 109.
	red120 := redCodec
	red120.PayloadType, red120.SDPFmtpLine = 120, "109/109"
	redW := &recordWriter{}
	bindDownTrack(t, p, redW, []webrtc.RTPCodecParameters{red120, opus109}, nil)
	// A subscriber numbering like the publisher gets the very same bytes.
	sameW := &recordWriter{}
	bindDownTrack(t, p, sameW, []webrtc.RTPCodecParameters{redCodec, opusCodec}, nil)

	primary := []byte{0xfc, 0xff, 0xfe}
	payload := redPayload(111, primary, redBlock{111, 960, []byte{0xaa, 0xbb}})
	pkt := rawPacket(t, 63, 7, 96000, l.ssrc, false, payload)
	// Add an audio level of -30 dBov with extension id 1.
	withLevel := append([]byte(nil), pkt[:12]...)
	withLevel[0] |= 0x10
	withLevel = append(withLevel, 0xbe, 0xde, 0x00, 0x01, 0x10, 30, 0x00, 0x00)
	withLevel = append(withLevel, pkt[12:]...)
	var ip inPacket
	p.handle(l, &ip, withLevel, time.Now().UnixNano())

	plain := plainW.sent()
	if len(plain) != 1 || plain[0].hdr.PayloadType != 109 || !bytes.Equal(plain[0].payload, primary) {
		t.Fatalf("without RED: %+v, want the Opus primary %x as PT 109", plain, primary)
	}
	if lv := plain[0].hdr.GetExtension(5); !bytes.Equal(lv, []byte{30}) {
		t.Fatalf("audio level forwarded as %x under id 5, want 1e", lv)
	}
	red := redW.sent()
	want := redPayload(109, primary, redBlock{109, 960, []byte{0xaa, 0xbb}})
	if len(red) != 1 || red[0].hdr.PayloadType != 120 || !bytes.Equal(red[0].payload, want) {
		t.Fatalf("with RED: %+v, want %x as PT 120", red, want)
	}
	same := sameW.sent()
	if len(same) != 1 || same[0].hdr.PayloadType != 63 || !bytes.Equal(same[0].payload, payload) {
		t.Fatalf("with the publisher's numbering: %+v, want the published payload", same)
	}
	if lvl, active := p.AudioLevel(); lvl != -30 || active {
		t.Fatalf("AudioLevel = %v %v, want -30 and not yet speaking (one packet is no syllable)", lvl, active)
	}
}

func TestPLIThrottle(t *testing.T) {
	var th pliThrottle
	interval := int64(500 * time.Millisecond)
	base := int64(1e12)
	steps := []struct {
		at   int64
		want bool
	}{
		{base, true},
		{base + int64(100*time.Millisecond), false},
		{base + int64(499*time.Millisecond), false},
		{base + interval, true},
		{base + interval + 1, false},
		{base + 3*interval, true},
	}
	for _, s := range steps {
		if got := th.allow(s.at, interval); got != s.want {
			t.Errorf("allow(+%v) = %v, want %v", time.Duration(s.at-base), got, s.want)
		}
	}
}

func TestSubscriberPLIReachesTheForwardedLayerOnce(t *testing.T) {
	rec := &rtcpRecorder{}
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, rec, "q", "h")
	w := &recordWriter{}
	d1 := bindDownTrack(t, p, w, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	d2 := bindDownTrack(t, p, w, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	feed := newFeeder(t, p)
	feed.send(layers[0], 96, 1, 1, vp8Frame(true, 'q'))
	feed.send(layers[1], 96, 1, 1, vp8Frame(true, 'h'))
	before := rec.count(layers[1].ssrc)
	pli := marshalRTCP(t, &rtcp.PictureLossIndication{MediaSSRC: 4242})
	d1.handleRTCP(pli)
	d2.handleRTCP(pli) // within 500 ms of the first: absorbed
	d2.handleRTCP(marshalRTCP(t, &rtcp.FullIntraRequest{MediaSSRC: 4242}))
	if got := rec.count(layers[1].ssrc) - before; got > 1 {
		t.Fatalf("three requests within the interval sent %d PLIs to h", got)
	}
	if rec.count(layers[0].ssrc) != 0 {
		t.Fatalf("the q layer, which nobody receives, was asked for a keyframe")
	}
	// Directly: one request per layer per interval.
	now := time.Now().UnixNano() + int64(time.Hour)
	p.requestKeyframe(0, now)
	p.requestKeyframe(0, now+int64(time.Millisecond))
	p.requestKeyframe(1, now)
	if rec.count(layers[0].ssrc) != 1 || rec.count(layers[1].ssrc) != before+2 {
		t.Fatalf("PLIs q=%d h=%d", rec.count(layers[0].ssrc), rec.count(layers[1].ssrc))
	}
}

// A keyframe request that the throttle holds back is sent when the interval ends, once however
// many were held: the subscriber that asked may have lost its picture after the keyframe the
// earlier request brought, and would otherwise wait, frozen, until it asks again.
func TestAHeldKeyframeRequestIsSentWhenTheIntervalEnds(t *testing.T) {
	rec := &rtcpRecorder{}
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, rec, "")
	d := bindDownTrack(t, p, &recordWriter{}, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	newFeeder(t, p).send(layers[0], 96, 1, 1, vp8Frame(true, 'K'))
	ssrc := layers[0].ssrc
	before := rec.count(ssrc)
	pli := marshalRTCP(t, &rtcp.PictureLossIndication{MediaSSRC: 4242})
	d.handleRTCP(pli)
	asked := time.Now()
	d.handleRTCP(pli) // within the interval: held
	d.handleRTCP(pli)
	if got := rec.count(ssrc) - before; got != 1 {
		t.Fatalf("%d PLIs at once, want 1", got)
	}
	for rec.count(ssrc)-before < 2 {
		if time.Since(asked) > 5*time.Second {
			t.Fatal("the held request was never sent")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if early := time.Since(asked); early < time.Duration(pliInterval)-50*time.Millisecond {
		t.Errorf("the held request went out %v after the first, inside the %v interval", early, time.Duration(pliInterval))
	}
	time.Sleep(time.Duration(pliInterval) + 200*time.Millisecond)
	if got := rec.count(ssrc) - before; got != 2 {
		t.Errorf("%d PLIs for three requests within one interval, want 2", got)
	}
}

func TestNACKTooOldIsIgnored(t *testing.T) {
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, &rtcpRecorder{}, "")
	w := &recordWriter{}
	d := bindDownTrack(t, p, w, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	feed := newFeeder(t, p)
	feed.send(layers[0], 96, 0, 0, vp8Frame(true, 'K'))
	for sn := uint16(1); sn < videoCacheSize+20; sn++ {
		feed.send(layers[0], 96, sn, uint32(sn)*3000, vp8Frame(false, byte(sn)))
	}
	n := len(w.sent())
	first := w.sent()[0].hdr.SequenceNumber
	d.handleRTCP(marshalRTCP(t, &rtcp.TransportLayerNack{
		MediaSSRC: 4242, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{first, first + 1, first + 5000}),
	}))
	if len(w.sent()) != n || d.Retransmits() != 0 {
		t.Fatalf("NACKs for packets gone from the cache (or never sent) were answered")
	}
	recent := w.sent()[n-3]
	d.handleRTCP(marshalRTCP(t, &rtcp.TransportLayerNack{
		MediaSSRC: 4242, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{recent.hdr.SequenceNumber}),
	}))
	got := w.sent()
	if len(got) != n+1 || !bytes.Equal(got[n].payload, recent.payload) {
		t.Fatalf("a NACK for a recent packet was not answered with it")
	}
}

func marshalRTCP(t *testing.T, p rtcp.Packet) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randomLoss feeds the estimator two seconds of traffic to a subscriber whose path has room to
// spare and loses every tenth packet, as a poor Wi-Fi does: feedback every 100 ms, built by
// pion's TWCC recorder (the browser's side). It returns the time reached.
func randomLoss(b *bwe, start int64) int64 {
	rec := twcc.NewRecorder(1)
	now := start
	for range 20 {
		for i := range 30 { // 300 packets a second, 1,000 bytes each: 2.4 Mbit/s
			seq := b.nextSeq()
			at := now + int64(i)*int64(time.Millisecond)*10/3
			b.onSent(seq, 1000, at)
			if seq%10 != 0 {
				rec.Record(5, seq, (at+int64(20*time.Millisecond))/1000)
			}
		}
		now += int64(100 * time.Millisecond)
		for _, p := range rec.BuildFeedbackPacket() {
			if fb, ok := p.(*rtcp.TransportLayerCC); ok {
				b.onFeedback(fb, now)
			}
		}
	}
	return now
}

func TestResendsGoOutInCopiesOnAPathThatLosesAtRandom(t *testing.T) {
	lt := newLinkUnderTest(t)
	d, w := lt.subscribe(webrtc.RTPCodecTypeVideo, 500_000)
	f := &feeder{t: t, p: d.track, now: time.Now().UnixNano()}
	l := d.track.layerAt(0)
	nackLast := func() int {
		t.Helper()
		f.send(l, 96, uint16(len(w.sent())+1), uint32(len(w.sent())+1)*3000, vp8Frame(len(w.sent()) == 0, 'x'))
		sn := w.sent()[len(w.sent())-1].hdr.SequenceNumber
		before := len(w.sent())
		lt.tr.link.rtxTokens.Store(1 << 20)
		d.handleRTCP(marshalRTCP(t, &rtcp.TransportLayerNack{MediaSSRC: uint32(d.ssrc), Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{sn})}))
		for _, p := range w.sent()[before:] {
			if p.hdr.SequenceNumber != sn {
				t.Fatalf("NACKed %d, resent %d", sn, p.hdr.SequenceNumber)
			}
		}
		return len(w.sent()) - before
	}
	if n := nackLast(); n != 1 {
		t.Fatalf("with nothing known of the path, a NACKed packet was sent %d times, want once", n)
	}

	link := lt.tr.link
	now := randomLoss(link.bwe, time.Now().UnixNano())
	link.tick(now)
	st := link.bwe.state(now)
	if link.copies.Load() != 3 {
		t.Fatalf("10 %% lost without queueing (%+v): %d copies of each resend, want 3", st, link.copies.Load())
	}
	if n := nackLast(); n != 3 {
		t.Fatalf("on a path that loses 10 %% at random (%+v), a NACKed packet was sent %d times, want 3", st, n)
	}
	// Its budget covers three copies of every loss and once more: 40 % of the estimate, a
	// quarter second of it.
	link.rtxTokens.Store(0)
	link.tick(now + int64(500*time.Millisecond))
	if got, want := link.rtxTokens.Load(), int64(0.4*st.Estimate/8/4); got < want*9/10 {
		t.Fatalf("on a path that loses 10 %% at random, %d bytes of retransmission budget, want about %d", got, want)
	}
	if d.Retransmits() != 4 {
		t.Fatalf("%d retransmissions counted, want 4 (each copy)", d.Retransmits())
	}
	// The copy is paid from the same budget, and only while it leaves room for the next first
	// copy: with room for two packets, one copy.
	before := len(w.sent())
	f.send(l, 96, 100, 300000, vp8Frame(false, 'y'))
	last := w.sent()[len(w.sent())-1]
	link.rtxTokens.Store(int64(2 * (12 + len(last.payload))))
	d.handleRTCP(marshalRTCP(t, &rtcp.TransportLayerNack{MediaSSRC: uint32(d.ssrc), Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{last.hdr.SequenceNumber})}))
	if n := len(w.sent()) - before - 1; n != 1 {
		t.Fatalf("with room in the budget for two packets, the packet was resent %d times, want once", n)
	}

	// Loss with full queues is congestion: a second copy would only add to it.
	c := newBWE(time.Unix(1000, 0))
	cnow := simulate(c, newBottleneck(1_000_000), 2_000_000, time.Unix(1000, 0).UnixNano(), 3*time.Second)
	link.bwe = c
	link.tick(cnow)
	if link.copies.Load() != 1 {
		t.Fatalf("a congested path (%+v) is taken for one that loses at random", c.state(cnow))
	}
	if n := nackLast(); n != 1 {
		t.Fatalf("on a congested path, a NACKed packet was sent %d times, want once", n)
	}
}

func TestFeedbackAboutAnotherStreamIsNotActedOn(t *testing.T) {
	rec := &rtcpRecorder{}
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, rec, "")
	w := &recordWriter{}
	d := bindDownTrack(t, p, w, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	feed := newFeeder(t, p)
	feed.send(layers[0], 96, 0, 0, vp8Frame(true, 'K'))
	for sn := uint16(1); sn < 10; sn++ {
		feed.send(layers[0], 96, sn, uint32(sn)*3000, vp8Frame(false, byte(sn)))
	}
	n, plis := len(w.sent()), rec.count(layers[0].ssrc)
	sn := w.sent()[n-2].hdr.SequenceNumber
	// pion hands this sender the compound packet because its report names 4242; the NACK and
	// the PLI are about another of the subscriber's streams, which has a packet numbered sn too.
	other := uint32(777)
	compound, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 4242}, {SSRC: other}}},
		&rtcp.TransportLayerNack{MediaSSRC: other, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{sn})},
		&rtcp.PictureLossIndication{MediaSSRC: other},
		&rtcp.FullIntraRequest{FIR: []rtcp.FIREntry{{SSRC: other, SequenceNumber: 1}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	feed.wait(time.Second) // past the keyframe request throttle
	d.handleRTCP(compound)
	if len(w.sent()) != n || d.Retransmits() != 0 {
		t.Fatalf("a NACK for stream %d made this stream resend its packet %d", other, sn)
	}
	if got := rec.count(layers[0].ssrc); got != plis {
		t.Fatalf("a keyframe request for stream %d reached this stream's publisher (%d PLIs, had %d)", other, got, plis)
	}
	d.handleRTCP(marshalRTCP(t, &rtcp.TransportLayerNack{MediaSSRC: 4242, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{sn})}))
	if len(w.sent()) != n+1 {
		t.Fatalf("the NACK for this stream's own packet was not answered")
	}
	d.handleRTCP(marshalRTCP(t, &rtcp.FullIntraRequest{FIR: []rtcp.FIREntry{{SSRC: 4242, SequenceNumber: 2}}}))
	if rec.count(layers[0].ssrc) != plis+1 {
		t.Fatalf("a FIR naming this stream did not reach its publisher")
	}
}

func TestAPacketReceivedTwiceIsForwardedOnce(t *testing.T) {
	p, layers := testTrack(t, vp8Codec, webrtc.RTPCodecTypeVideo, nil, &rtcpRecorder{}, "")
	w := &recordWriter{}
	bindDownTrack(t, p, w, []webrtc.RTPCodecParameters{vp8Codec}, nil)
	feed := newFeeder(t, p)
	feed.send(layers[0], 96, 100, 0, vp8Frame(true, 'K'))
	feed.send(layers[0], 96, 101, 3000, vp8Frame(false, 'a'))
	feed.send(layers[0], 96, 100, 0, vp8Frame(true, 'K')) // resent as probe padding
	feed.send(layers[0], 96, 102, 6000, vp8Frame(false, 'b'))
	feed.send(layers[0], 96, 102, 6000, vp8Frame(false, 'b'))
	pkts := w.sent()
	if len(pkts) != 3 {
		t.Fatalf("forwarded %d packets, want 3: each once", len(pkts))
	}
	checkContinuous(t, pkts)
	var s MediaStats
	p.readStats(&s)
	if s.UpstreamDuplicates != 2 {
		t.Fatalf("UpstreamDuplicates = %d, want 2", s.UpstreamDuplicates)
	}
}
