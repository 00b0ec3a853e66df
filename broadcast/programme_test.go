package broadcast

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/sfu"
)

// captured is one packet as a sink saw it.
type captured struct {
	sn      uint16
	ts      uint32
	payload []byte
	at      time.Time
}

// capture records what a programme track sends.
type capture struct {
	mu   sync.Mutex
	pkts []captured
}

func (c *capture) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pkts = append(c.pkts, captured{sn: h.SequenceNumber, ts: h.Timestamp, payload: slices.Clone(payload), at: time.Now()})
	return len(payload), nil
}

func (c *capture) all() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pkts)
}

func localTrack(t testing.TB, codec webrtc.RTPCodecParameters, id string) (*sfu.PublishedTrack, *sfu.LocalWriter) {
	t.Helper()
	tr, w, err := (*sfu.Engine)(nil).NewLocalTrack(codec, id, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return tr, w
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// opusTagged is an Opus packet (CELT, 20 ms) whose bytes after the TOC carry a number.
func opusTagged(n int) []byte {
	b := []byte{0xf8, 0, 0}
	binary.BigEndian.PutUint16(b[1:], uint16(n))
	return b
}

func TestBleepReplacesExactlyTheInterval(t *testing.T) {
	fx, err := loadFixtures()
	if err != nil {
		t.Fatal(err)
	}
	toneSet := map[string]bool{}
	for _, f := range fx.tone {
		toneSet[string(f)] = true
	}
	var bleeps bleepLog
	const ms = int64(time.Millisecond)
	bleeps.add(1000*ms, 2000*ms)

	for index := range 2 {
		track, w := localTrack(t, AudioCodec, "a")
		o := &audioOutput{index: index, track: track, writer: w, pt: 111, q: newDelayQueue(8, 0)}
		got := &capture{}
		track.AddSink(got, sfu.QualityHigh)
		for k := range 150 {
			// Packets are due at their frame time; they reached the server 3 ms before.
			o.q.push(int64(k)*20*ms, 0, 0, false, opusTagged(k))
			o.q.setArrived(int64(k)*20*ms - 3*ms)
		}
		o.emit(2999*ms, fx, &bleeps)

		pkts := got.all()
		if len(pkts) != 150 {
			t.Fatalf("output %d sent %d frames for 3 s, want 150", index, len(pkts))
		}
		for k, p := range pkts {
			if k > 0 && (p.sn != pkts[k-1].sn+1 || p.ts != pkts[k-1].ts+960) {
				t.Fatalf("output %d frame %d: SN/TS %d/%d after %d/%d, want +1/+960", index, k, p.sn, p.ts, pkts[k-1].sn, pkts[k-1].ts)
			}
			// Arrived from 1 s to 2 s: frames 51 to 100 (frame 50 arrived at 997 ms), plus the
			// frame after, which may carry FEC of the last bleeped one.
			inBleep := k >= 51 && k <= 101
			isSource := len(p.payload) == 3 && p.payload[0] == 0xf8
			switch {
			case inBleep && isSource:
				t.Errorf("output %d frame %d (%d ms): original audio %x inside the bleep", index, k, k*20, p.payload)
			case inBleep && index == 0 && !toneSet[string(p.payload)]:
				t.Errorf("output 0 frame %d (%d ms): %x is not the tone", k, k*20, p.payload)
			case inBleep && index > 0 && string(p.payload) != string(fx.silence):
				t.Errorf("output %d frame %d: %x is not silence", index, k, p.payload)
			case !inBleep && (!isSource || int(binary.BigEndian.Uint16(p.payload[1:])) != k):
				t.Errorf("output %d frame %d (%d ms): %x, want the source's packet %d", index, k, k*20, p.payload, k)
			}
		}
	}
}

func TestAudioOutputFillsGapsAndDropsLatePackets(t *testing.T) {
	fx, err := loadFixtures()
	if err != nil {
		t.Fatal(err)
	}
	var bleeps bleepLog
	const ms = int64(time.Millisecond)
	track, w := localTrack(t, AudioCodec, "a")
	o := &audioOutput{track: track, writer: w, pt: 111, q: newDelayQueue(8, 0)}
	got := &capture{}
	track.AddSink(got, sfu.QualityHigh)
	o.q.push(0, 0, 0, false, opusTagged(0))
	// Nothing for 100 ms (DTX, a muted source), then a packet stamped long before its frame.
	o.emit(99*ms, fx, &bleeps)
	o.q.push(10*ms, 0, 0, false, opusTagged(1)) // far too late for the 100 ms frame
	o.q.push(100*ms, 0, 0, false, opusTagged(2))
	o.emit(119*ms, fx, &bleeps)
	pkts := got.all()
	if len(pkts) != 6 {
		t.Fatalf("%d frames for 120 ms, want 6", len(pkts))
	}
	want := []string{string(opusTagged(0)), string(fx.silence), string(fx.silence), string(fx.silence), string(fx.silence), string(opusTagged(2))}
	for i := range want {
		if string(pkts[i].payload) != want[i] {
			t.Errorf("frame %d is %x, want %x", i, pkts[i].payload, want[i])
		}
	}
}

// vp8 is a one-packet VP8 frame tagged with n.
func vp8(key bool, n byte) []byte {
	if key {
		return []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, n}
	}
	return []byte{0x10, 0x01, 0x00, 0x00, 0xaa, n}
}

func TestVideoSwitchesOnTheNewSourcesKeyframe(t *testing.T) {
	p := &Programme{start: time.Now()}
	out, w := localTrack(t, VideoCodec, "v")
	o := &videoOutput{prog: p, track: out, writer: w, pt: 96, q: newDelayQueue(8, 0)}
	o.m = sfu.NewMunger(90000)
	got := &capture{}
	out.AddSink(got, sfu.QualityHigh)
	camA, camB := newClipSource(webrtc.RTPCodecTypeVideo), newClipSource(webrtc.RTPCodecTypeVideo)

	fa, _ := o.want(camA, false)
	if fa == nil {
		t.Fatal("asking for a camera opened no feed")
	}
	fa.WriteRTP(&rtp.Header{SequenceNumber: 500, Timestamp: 9000, Marker: true}, vp8(true, 1))
	fa.WriteRTP(&rtp.Header{SequenceNumber: 501, Timestamp: 12000, Marker: true}, vp8(false, 2))
	fb, retired := o.want(camB, false)
	if fb == nil || len(retired) != 0 {
		t.Fatalf("switch to B: feed %v, retired %d; want a pending feed and A kept on air", fb, len(retired))
	}
	if again, _ := o.want(camB, false); again != nil {
		t.Error("asking again for the camera being switched to opened a second feed")
	}
	fa.WriteRTP(&rtp.Header{SequenceNumber: 502, Timestamp: 15000, Marker: true}, vp8(false, 3)) // A stays until B's keyframe
	fb.WriteRTP(&rtp.Header{SequenceNumber: 40, Timestamp: 777, Marker: true}, vp8(true, 4))
	fa.WriteRTP(&rtp.Header{SequenceNumber: 503, Timestamp: 18000, Marker: true}, vp8(false, 5)) // A is off air now
	fb.WriteRTP(&rtp.Header{SequenceNumber: 41, Timestamp: 3777, Marker: true}, vp8(false, 6))

	if o.q.len() != 5 {
		t.Fatalf("%d packets held, want 5", o.q.len())
	}
	o.release(p.clock())
	pkts := got.all()
	var tags []byte
	for _, pk := range pkts {
		tags = append(tags, pk.payload[len(pk.payload)-1])
	}
	if string(tags) != "\x01\x02\x03\x04\x06" {
		t.Fatalf("output carried %v, want A1 A2 A3 B4 B6", tags)
	}
	for i := 1; i < len(pkts); i++ {
		if pkts[i].sn != pkts[i-1].sn+1 {
			t.Errorf("SN %d after %d: the output must be continuous", pkts[i].sn, pkts[i-1].sn)
		}
		if int32(pkts[i].ts-pkts[i-1].ts) <= 0 {
			t.Errorf("TS %d after %d: time must move forward", pkts[i].ts, pkts[i-1].ts)
		}
	}
	if d := pkts[4].ts - pkts[3].ts; d != 3000 {
		t.Errorf("B's own timing is lost: step %d, want 3000", d)
	}

	// Back to nothing: the camera on air is retired and no feed opens.
	if f, r := o.want(nil, false); f != nil || len(r) != 1 || r[0] != fb {
		t.Errorf("dropping the camera: opened %v, retired %v", f, r)
	}
}

func TestVideoReleaseWaitsForTheCutoff(t *testing.T) {
	p := &Programme{start: time.Now()}
	out, w := localTrack(t, VideoCodec, "v")
	o := &videoOutput{prog: p, track: out, writer: w, pt: 96, q: newDelayQueue(8, 0)}
	got := &capture{}
	out.AddSink(got, sfu.QualityHigh)
	o.q.push(100, 1, 0, true, vp8(true, 1))
	o.q.push(200, 2, 3000, true, vp8(false, 2))
	o.q.push(300, 3, 6000, true, vp8(false, 3))
	o.release(99)
	if n := len(got.all()); n != 0 {
		t.Fatalf("%d packets out before their time", n)
	}
	o.release(200)
	if n := len(got.all()); n != 2 {
		t.Fatalf("%d packets out at cutoff 200, want 2", n)
	}
	o.release(1000)
	if n := len(got.all()); n != 3 {
		t.Fatalf("%d packets out at the end, want 3", n)
	}
}

// TestProgrammeDelaysAndSwitches runs a whole programme in real time with a short delay: the
// slate is on air until the camera's first keyframe, the camera's frames come out no earlier
// than the delay, and the microphone is carried on the first audio track.
func TestProgrammeDelaysAndSwitches(t *testing.T) {
	const delay = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := New(ctx, nil, "room", Config{Delay: delay, AudioTracks: 2, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	outs := p.Outputs()
	if len(outs) != 4 || outs[0].Name != TrackVideo || outs[1].Name != TrackInterpreter || outs[2].Kind != webrtc.RTPCodecTypeAudio {
		t.Fatalf("outputs %+v", outs)
	}
	video, audio0, audio1 := &capture{}, &capture{}, &capture{}
	outs[0].Track.AddSink(video, sfu.QualityHigh)
	outs[2].Track.AddSink(audio0, sfu.QualityHigh)
	outs[3].Track.AddSink(audio1, sfu.QualityHigh)

	cam, mic := newClipSource(webrtc.RTPCodecTypeVideo), newClipSource(webrtc.RTPCodecTypeAudio)
	p.Select(Selection{Main: cam, Audio: []Source{mic}})

	sent := map[byte]time.Time{}
	start := time.Now()
	for i := range 20 {
		tag := byte(i + 1)
		sent[tag] = time.Now()
		cam.write(&rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), Timestamp: uint32(i) * 3000, Marker: true}, vp8(i%10 == 0, tag), i%10 == 0)
		mic.write(&rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(i), Timestamp: uint32(i) * 960}, opusTagged(1000+i), false)
		time.Sleep(20 * time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		for _, pk := range video.all() {
			if len(pk.payload) > 0 && pk.payload[len(pk.payload)-1] == 20 {
				n++
			}
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the camera's last frame never came out of the programme")
		}
		time.Sleep(10 * time.Millisecond)
	}

	var lates []time.Duration
	var slate, camera int
	for _, pk := range video.all() {
		tag := pk.payload[len(pk.payload)-1]
		at, ok := sent[tag]
		if !ok || len(pk.payload) > 20 {
			slate++
			continue
		}
		camera++
		late := pk.at.Sub(at)
		if late < delay-time.Millisecond {
			t.Errorf("frame %d came out %s after it was sent, before the delay of %s", tag, late, delay)
		}
		lates = append(lates, late-delay)
	}
	if camera != 20 {
		t.Errorf("%d camera frames out, want 20", camera)
	}
	slices.Sort(lates)
	t.Logf("delay error over %d frames: min %s, median %s, max %s; %d slate packets before the switch",
		len(lates), lates[0], lates[len(lates)/2], lates[len(lates)-1], slate)
	if lates[len(lates)-1] > 2*time.Second {
		t.Errorf("a frame came out %s after its time", lates[len(lates)-1])
	}

	// The microphone went to the first audio track; the second carried only silence.
	var fromMic int
	for _, pk := range audio0.all() {
		if len(pk.payload) == 3 && pk.payload[0] == 0xf8 {
			fromMic++
		}
	}
	if fromMic < 15 {
		t.Errorf("only %d of 20 microphone packets reached the first audio track", fromMic)
	}
	for _, pk := range audio1.all() {
		if len(pk.payload) == 3 && pk.payload[0] == 0xf8 {
			t.Fatal("the second audio track carried the microphone too")
		}
	}
	if time.Since(start) < delay {
		t.Fatal("clock went backwards")
	}

	p.Close()
	select {
	case <-outs[0].Track.Done():
	default:
		t.Error("closing the programme did not end its tracks")
	}
}

func TestBleepLastRefusesAudioAlreadyOut(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := New(ctx, nil, "room", Config{Delay: 2 * time.Second, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.BleepLast(3 * time.Second); err == nil {
		t.Error("bleeping further back than the delay was accepted")
	}
	b, err := p.BleepLast(time.Second)
	if err != nil || b.To.Sub(b.From) != time.Second {
		t.Errorf("BleepLast(1s) = %+v, %v", b, err)
	}
	if _, changed := p.Bleep(true); !changed {
		t.Error("bleep on reported no change")
	}
	if _, changed := p.Bleep(true); changed {
		t.Error("a second bleep on reported a change")
	}
	b, changed := p.Bleep(false)
	if !changed || b.To.IsZero() {
		t.Errorf("bleep off: %+v changed=%v", b, changed)
	}
	if n := len(p.Bleeps()); n != 2 {
		t.Errorf("%d bleeps recorded, want 2", n)
	}
}
