package sfu

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// linkUnderTest is a subscriber connection without pion: its DownTracks write to recorders,
// and its estimate is set by the test.
type linkUnderTest struct {
	t      *testing.T
	tr     *Transport
	now    int64
	states map[*DownTrack][]bool // StreamState reports, in order
}

var twccExt = []webrtc.RTPHeaderExtensionParameter{{URI: sdp.TransportCCURI, ID: 5}}

func newLinkUnderTest(t *testing.T) *linkUnderTest {
	lt := &linkUnderTest{t: t, now: time.Now().UnixNano(), states: map[*DownTrack][]bool{}}
	lt.tr = &Transport{log: discardLogger(), downTracks: map[*DownTrack]struct{}{}}
	lt.tr.h.OnStreamState = func(d *DownTrack, active bool) { lt.states[d] = append(lt.states[d], active) }
	lt.tr.link = newDownlink(lt.tr, false)
	return lt
}

// subscribe adds a track whose layers send at the given rates (bits per second).
func (lt *linkUnderTest) subscribe(kind webrtc.RTPCodecType, rates ...float64) (*DownTrack, *recordWriter) {
	codec, rids := vp8Codec, []string{""}
	if kind == webrtc.RTPCodecTypeAudio {
		codec = opusCodec
	}
	if len(rates) > 1 {
		rids = []string{"q", "h", "f"}[:len(rates)]
	}
	p, layers := testTrack(lt.t, codec, kind, nil, nil, rids...)
	for i, r := range rates {
		p.rates.bps[layers[i].index] = r
	}
	p.rates.at = lt.now + int64(time.Hour) // measured: no new measurement during the test
	w := &recordWriter{}
	d := newDownTrack(p, lt.tr, "TR_"+fmt.Sprint(len(lt.tr.downTracks)), "PA_x")
	if _, err := d.Bind(&fakeBinding{codecs: []webrtc.RTPCodecParameters{codec}, exts: twccExt, ssrc: webrtc.SSRC(5000 + len(lt.tr.downTracks)), writer: w}); err != nil {
		lt.t.Fatal(err)
	}
	p.addDownTrack(d)
	lt.tr.downTracks[d] = struct{}{}
	return d, w
}

// allocate sets the estimate and runs one allocation; the StreamState events are delivered.
func (lt *linkUnderTest) allocate(estimate float64) {
	b := lt.tr.link.bwe
	b.mu.Lock()
	b.estimate, b.refInit = estimate, true
	b.mu.Unlock()
	lt.now += int64(time.Second)
	lt.tr.link.allocate(lt.now, b.state(lt.now))
	lt.tr.events.mu.Lock()
	events := lt.tr.events.items
	lt.tr.events.items = nil
	lt.tr.events.mu.Unlock()
	for _, f := range events {
		f()
	}
}

func TestAllocatorPausesTheVideosThatDoNotFit(t *testing.T) {
	lt := newLinkUnderTest(t)
	var mics []*DownTrack
	for range 4 {
		d, _ := lt.subscribe(webrtc.RTPCodecTypeAudio, 40_000)
		mics = append(mics, d)
	}
	var cams []*DownTrack
	for i := range 4 {
		d, _ := lt.subscribe(webrtc.RTPCodecTypeVideo, 500_000)
		d.SetPriority(Priority{Rank: i}) // the last one first
		cams = append(cams, d)
	}
	// 1 Mbit/s: 160 kbit/s of audio, room for one camera of 500 kbit/s.
	lt.allocate(1_000_000)
	for i, d := range cams {
		if want := i != 3; d.StreamPaused() != want {
			t.Errorf("camera %d (rank %d): paused %v, want %v", i, i, d.StreamPaused(), want)
		}
		if want := []bool{false}; i != 3 && fmt.Sprint(lt.states[d]) != fmt.Sprint(want) {
			t.Errorf("camera %d: stream states %v, want %v", i, lt.states[d], want)
		}
	}
	for i, d := range mics {
		if d.StreamPaused() || len(lt.states[d]) > 0 {
			t.Errorf("microphone %d paused (states %v): audio is never paused", i, lt.states[d])
		}
	}
	// Even at the floor of the estimate the microphones stay.
	lt.allocate(minEstimate)
	for i, d := range mics {
		if d.StreamPaused() {
			t.Errorf("microphone %d paused at the lowest estimate", i)
		}
	}
	if !cams[3].StreamPaused() {
		t.Error("a camera still flows at 100 kbit/s, with 160 kbit/s of audio")
	}
	// The link opens: every camera resumes, and each was told once.
	lt.allocate(3_000_000)
	for i, d := range cams {
		if d.StreamPaused() {
			t.Errorf("camera %d still paused at 3 Mbit/s", i)
		}
		if got := lt.states[d]; len(got) == 0 || !got[len(got)-1] {
			t.Errorf("camera %d: stream states %v, want the last one active", i, got)
		}
	}
}

func TestAllocatorLowersLayersBeforePausing(t *testing.T) {
	lt := newLinkUnderTest(t)
	a, _ := lt.subscribe(webrtc.RTPCodecTypeVideo, 150_000, 500_000, 1_500_000)
	b, _ := lt.subscribe(webrtc.RTPCodecTypeVideo, 150_000, 500_000, 1_500_000)
	a.SetPriority(Priority{Rank: 1})
	// 1 Mbit/s: both at their middle layer (2 × 500 kbit/s), none at the top.
	lt.allocate(1_000_000)
	for name, d := range map[string]*DownTrack{"a": a, "b": b} {
		d.mu.Lock()
		capLayer, paused := d.allocCap, d.allocPaused
		d.mu.Unlock()
		if paused || capLayer != 1 {
			t.Errorf("%s: layer cap %d paused %v, want layer 1, not paused", name, capLayer, paused)
		}
	}
	// 400 kbit/s: both at their lowest layer.
	lt.allocate(400_000)
	for name, d := range map[string]*DownTrack{"a": a, "b": b} {
		if d.allocCap != 0 || d.StreamPaused() {
			t.Errorf("%s: layer cap %d paused %v, want layer 0", name, d.allocCap, d.StreamPaused())
		}
	}
	// 200 kbit/s: the one of higher priority keeps its lowest layer.
	lt.allocate(200_000)
	if a.StreamPaused() || !b.StreamPaused() {
		t.Errorf("at 200 kbit/s: a paused %v, b paused %v; want a flowing, b paused", a.StreamPaused(), b.StreamPaused())
	}
	// The client's own wish still caps the layer when there is room.
	b.SetMaxQuality(QualityLow)
	lt.allocate(10_000_000)
	if a.allocCap != 2 || b.ceiling() != 0 || b.StreamPaused() {
		t.Errorf("at 10 Mbit/s: a cap %d, b ceiling %d paused %v; want 2 and 0", a.allocCap, b.ceiling(), b.StreamPaused())
	}
}

func TestAllocatorOffPausesNothing(t *testing.T) {
	lt := newLinkUnderTest(t)
	lt.tr.link.off = true
	cams := make([]*DownTrack, 4)
	for i := range cams {
		cams[i], _ = lt.subscribe(webrtc.RTPCodecTypeVideo, 500_000)
	}
	lt.allocate(minEstimate)
	for i, d := range cams {
		if d.StreamPaused() {
			t.Errorf("camera %d paused with the allocation off", i)
		}
	}
}

func TestPausedVideoForwardsNothingAndResumesOnAKeyframe(t *testing.T) {
	lt := newLinkUnderTest(t)
	d, w := lt.subscribe(webrtc.RTPCodecTypeVideo, 500_000)
	f := &feeder{t: t, p: d.track, now: time.Now().UnixNano()}
	l := d.track.layerAt(0)
	f.send(l, 96, 1, 3000, vp8Frame(true, 'K'))
	lt.allocate(minEstimate) // 500 kbit/s does not fit in 100
	f.send(l, 96, 2, 6000, vp8Frame(false, 'x'))
	lt.allocate(2_000_000)
	f.send(l, 96, 3, 9000, vp8Frame(false, 'y')) // not a keyframe: waits
	f.send(l, 96, 4, 12000, vp8Frame(true, 'L'))
	pkts := w.sent()
	if got := tags(pkts); string(got) != "KL" {
		t.Fatalf("forwarded %q, want K, nothing while paused, then L (the first keyframe after resuming)", got)
	}
	checkContinuous(t, pkts)
}

func TestPaddingContinuesTheStream(t *testing.T) {
	lt := newLinkUnderTest(t)
	d, w := lt.subscribe(webrtc.RTPCodecTypeVideo, 500_000)
	f := &feeder{t: t, p: d.track, now: time.Now().UnixNano()}
	l := d.track.layerAt(0)
	f.send(l, 96, 1, 3000, vp8Frame(true, 'K'))
	if n := d.sendPadding(); n == 0 {
		t.Fatal("no padding sent")
	}
	f.send(l, 96, 2, 6000, vp8Frame(false, 'x'))
	pkts := w.sent()
	if len(pkts) != 3 {
		t.Fatalf("%d packets, want 3", len(pkts))
	}
	pad := pkts[1].hdr
	if !pad.Padding || len(pkts[1].payload) != 0 || pad.Timestamp != pkts[0].hdr.Timestamp {
		t.Errorf("padding packet: padding %v payload %d bytes ts %d; want padding only, on the last timestamp", pad.Padding, len(pkts[1].payload), pad.Timestamp)
	}
	checkContinuous(t, pkts)
	// Every packet carries a transport-wide sequence number, the padding too, in order.
	for i := 1; i < len(pkts); i++ {
		a, b := pkts[i-1].hdr.GetExtension(5), pkts[i].hdr.GetExtension(5)
		if len(a) != 2 || len(b) != 2 || uint16(b[0])<<8|uint16(b[1]) != uint16(a[0])<<8|uint16(a[1])+1 {
			t.Fatalf("transport-wide sequence numbers %x then %x", a, b)
		}
	}
	// A NACK for the padding has nothing to resend.
	d.handleRTCP(marshalRTCP(t, &rtcp.TransportLayerNack{MediaSSRC: uint32(d.ssrc), Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{pad.SequenceNumber})}))
	if d.Retransmits() != 0 {
		t.Error("a padding packet was resent")
	}
}

func TestRetransmissionsAreBounded(t *testing.T) {
	lt := newLinkUnderTest(t)
	d, w := lt.subscribe(webrtc.RTPCodecTypeVideo, 500_000)
	f := &feeder{t: t, p: d.track, now: time.Now().UnixNano()}
	l := d.track.layerAt(0)
	f.send(l, 96, 1, 3000, vp8Frame(true, 'K'))
	sn := w.sent()[0].hdr.SequenceNumber
	nack := marshalRTCP(t, &rtcp.TransportLayerNack{MediaSSRC: uint32(d.ssrc), Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{sn})})

	lt.tr.link.rtxTokens.Store(0) // the budget is spent
	d.handleRTCP(nack)
	if d.Retransmits() != 0 || d.stats.rtxSkipped.Load() != 1 {
		t.Fatalf("without budget: %d resent, %d skipped; want 0 and 1", d.Retransmits(), d.stats.rtxSkipped.Load())
	}
	lt.tr.link.rtxTokens.Store(1 << 20)
	for range 2 * maxRetransmits {
		d.handleRTCP(nack)
	}
	if d.Retransmits() != maxRetransmits {
		t.Fatalf("NACKed %d times: resent %d times, want %d", 2*maxRetransmits, d.Retransmits(), maxRetransmits)
	}
	// A packet sent longer ago than it could still be played is not resent.
	f.send(l, 96, 2, 6000, vp8Frame(false, 'x'))
	late := w.sent()[len(w.sent())-1].hdr.SequenceNumber
	e := d.seq.lookup(late)
	e.sentMs -= uint32(2 * rtxDeadline / time.Millisecond)
	d.handleRTCP(marshalRTCP(t, &rtcp.TransportLayerNack{MediaSSRC: uint32(d.ssrc), Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{late})}))
	if d.Retransmits() != maxRetransmits {
		t.Fatal("a packet too late to be played was resent")
	}
}

func TestDynacastReportsTheBestLayerReceived(t *testing.T) {
	lt := newLinkUnderTest(t)
	a, _ := lt.subscribe(webrtc.RTPCodecTypeVideo, 150_000, 500_000, 1_500_000)
	p := a.track
	var told []int8
	p.onWanted = func(l int8) { told = append(told, l) }
	b := newDownTrack(p, lt.tr, "TR_b", "PA_b")
	if _, err := b.Bind(&fakeBinding{codecs: []webrtc.RTPCodecParameters{vp8Codec}, exts: twccExt, ssrc: 6000, writer: &recordWriter{}}); err != nil {
		t.Fatal(err)
	}
	p.addDownTrack(b)
	a.SetMaxQuality(QualityMedium)
	b.SetMaxQuality(QualityLow)
	now := time.Now().UnixNano()
	p.updateWanted(now)
	if len(told) != 0 {
		t.Fatalf("told %v at once; a lower layer waits %v", told, time.Duration(dynacastLag))
	}
	p.updateWanted(now + dynacastLag)
	if fmt.Sprint(told) != "[1]" {
		t.Fatalf("told %v, want [1]: the top layer is received by nobody", told)
	}
	a.SetMaxQuality(QualityHigh)
	p.updateWanted(now + dynacastLag + 1)
	if fmt.Sprint(told) != "[1 2]" {
		t.Fatalf("told %v, want [1 2]: a subscriber wants the top layer again, at once", told)
	}
	a.applyAllocation(-1)
	b.applyAllocation(-1)
	p.updateWanted(now + 2*dynacastLag)
	p.updateWanted(now + 3*dynacastLag + 1)
	if fmt.Sprint(told) != "[1 2 -1]" {
		t.Fatalf("told %v, want [1 2 -1]: every subscriber is paused", told)
	}
}

// A video is not raised above its lowest layer with the room a paused one of the same rank
// would resume in (it needs a margin over its cost): the member sees both small rather than one
// larger and the other not at all. One of a higher rank (the floor's camera) still is.
func TestAllocatorResumesBeforeRaising(t *testing.T) {
	lt := newLinkUnderTest(t)
	a, _ := lt.subscribe(webrtc.RTPCodecTypeVideo, 150_000, 300_000)
	b, _ := lt.subscribe(webrtc.RTPCodecTypeVideo, 150_000, 300_000)
	a.SetPriority(Priority{Pixels: 2}) // a first between equals
	b.SetPriority(Priority{Pixels: 1})
	lt.allocate(200_000) // room for one lowest layer: b paused
	if a.StreamPaused() || !b.StreamPaused() {
		t.Fatalf("at 200 kbit/s: a paused %v, b paused %v; want b paused", a.StreamPaused(), b.StreamPaused())
	}
	// 320 kbit/s: a's lowest layer leaves 170 kbit/s, short of b's 150 kbit/s and its margin,
	// enough to raise a by 150 kbit/s.
	lt.allocate(320_000)
	if !b.StreamPaused() || a.allocCap != 0 {
		t.Errorf("at 320 kbit/s: a cap %d, b paused %v; want a kept at layer 0 for b, b still paused", a.allocCap, b.StreamPaused())
	}
	a.SetPriority(Priority{Rank: 3, Pixels: 2})
	lt.allocate(320_000)
	if a.allocCap != 1 {
		t.Errorf("at 320 kbit/s, a ranked above b: a cap %d, want 1", a.allocCap)
	}
	lt.allocate(400_000)
	if b.StreamPaused() {
		t.Errorf("at 400 kbit/s b is still paused")
	}
}

// A probe's end allocates again in the same instant as the tick did: that allocation sees the
// same room, and pauses nothing (the retransmission rate over no time was 0/0, and every video
// was paused).
func TestAllocatorTwiceInAnInstantPausesNothing(t *testing.T) {
	lt := newLinkUnderTest(t)
	a, _ := lt.subscribe(webrtc.RTPCodecTypeVideo, 300_000)
	lt.allocate(1_000_000)
	lt.allocate(1_000_000)
	b := lt.tr.link.bwe
	lt.tr.link.allocate(lt.now, b.state(lt.now)) // the same now as the last one
	if a.StreamPaused() {
		t.Fatal("a video that fits was paused by a second allocation in the same instant")
	}
}

// On a path that loses at random with empty queues, a resend goes out in as many copies as
// make it lost about once in a thousand, and retransmissions may take what repairing every loss
// with its copies and once more costs (a packet skipped for want of budget freezes the video
// until the next keyframe); on any other path, one copy and rtxShare.
func TestRetransmitShare(t *testing.T) {
	for _, c := range []struct {
		loss   float64
		lossy  bool
		copies int
		share  float64
	}{
		{0.02, false, 1, rtxShare},
		{0.10, false, 1, rtxShare}, // congested, or queueing: resends add to the queue
		{0.03, true, 2, rtxShare},  // 0.03² = 0.0009
		{0.05, true, 3, 0.20},      // 0.05² = 0.0025
		{0.10, true, 3, 0.40},
		{0.25, true, 3, 0.40},
	} {
		copies := resendCopies(c.loss, c.lossy)
		if copies != c.copies {
			t.Errorf("loss %.2f, lossy %v: %d copies, want %d", c.loss, c.lossy, copies, c.copies)
		}
		if got := retransmitShare(BWEState{Loss: c.loss}, copies); got < c.share-1e-9 || got > c.share+1e-9 {
			t.Errorf("loss %.2f, lossy %v: share %.2f, want %.2f", c.loss, c.lossy, got, c.share)
		}
	}
}

func TestAllocatorTakesALowerLayerToCostNoMoreThanAHigherOne(t *testing.T) {
	lt := newLinkUnderTest(t)
	// Just after a keyframe request the small layer's keyframes weigh most: measured, it
	// costs more than the large one.
	d, _ := lt.subscribe(webrtc.RTPCodecTypeVideo, 900_000, 250_000)
	lt.allocate(500_000)
	d.mu.Lock()
	capLayer, paused := d.allocCap, d.allocPaused
	d.mu.Unlock()
	if paused || capLayer != 1 {
		t.Fatalf("layer cap %d paused %v, want layer 1 flowing: it fits in 500 kbit/s", capLayer, paused)
	}
}

// TestAllocatorRidesOutBurstsOfRetransmissions: resends that come in bursts, one allocation with
// 60 kbit/s of them and the next with none, do not pause and resume a camera in turn (each
// resume waits for a keyframe: a video frozen more than if left alone); resends that last take
// their room, and the camera is paused.
func TestAllocatorRidesOutBurstsOfRetransmissions(t *testing.T) {
	lt := newLinkUnderTest(t)
	for range 2 {
		lt.subscribe(webrtc.RTPCodecTypeAudio, 80_000)
	}
	cam, _ := lt.subscribe(webrtc.RTPCodecTypeVideo, 120_000)
	l := lt.tr.link
	const estimate = 320_000 // 160 kbit/s of audio, 160 left: the camera fits without resends
	step := 250 * time.Millisecond
	allocate := func(rtxBits float64) {
		b := l.bwe
		b.mu.Lock()
		b.estimate, b.refInit = estimate, true
		b.mu.Unlock()
		l.rtxBytes.Add(uint64(rtxBits * step.Seconds() / 8))
		lt.now += int64(step)
		l.allocate(lt.now, b.state(lt.now))
	}
	allocate(0)
	for i := range 16 {
		burst := 0.0
		if i%2 == 0 {
			burst = 60_000
		}
		allocate(burst)
		if cam.StreamPaused() {
			t.Fatalf("allocation %d (retransmissions averaging 30 kbit/s, in bursts): the camera was paused", i)
		}
	}
	for range 12 {
		allocate(60_000)
	}
	if !cam.StreamPaused() {
		t.Errorf("3 s of retransmissions at 60 kbit/s (room left %d kbit/s): the camera still flows", int(estimate-160_000-l.rtxRate)/1000)
	}
}
