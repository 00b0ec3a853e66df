package broadcast

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/test/media"
)

// clipSource is a member's published track for the tests: the test writes RTP packets into it,
// as the member's client would send them, and it hands them to its sinks as the SFU does: a
// video sink from the first packet of a keyframe on, an audio sink from the next packet.
type clipSource struct {
	kind webrtc.RTPCodecType
	mime string

	mu    sync.Mutex // held while delivering, so that a closed sink gets nothing more
	sinks []*clipSink
}

type clipSink struct {
	src     *clipSource
	w       sfu.SinkWriter
	started bool // under src.mu
}

func newClipSource(kind webrtc.RTPCodecType) *clipSource {
	mime := VideoCodec.MimeType
	if kind == webrtc.RTPCodecTypeAudio {
		mime = AudioCodec.MimeType
	}
	return &clipSource{kind: kind, mime: mime}
}

func (s *clipSource) Kind() webrtc.RTPCodecType { return s.kind }
func (s *clipSource) MimeType() string          { return s.mime }

func (s *clipSource) AddSink(w sfu.SinkWriter, _ sfu.Quality) sfu.Sink {
	k := &clipSink{src: s, w: w, started: s.kind == webrtc.RTPCodecTypeAudio}
	s.mu.Lock()
	s.sinks = append(s.sinks, k)
	s.mu.Unlock()
	return k
}

// write delivers one packet to the sinks; keyframe says that it begins a keyframe.
func (s *clipSource) write(h *rtp.Header, payload []byte, keyframe bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.sinks {
		if k.started = k.started || keyframe; k.started {
			_, _ = k.w.WriteRTP(h, payload)
		}
	}
}

// RequestKeyframe is left unanswered: the clips have a keyframe every second anyway.
func (k *clipSink) RequestKeyframe() {}

func (k *clipSink) Close() {
	k.src.mu.Lock()
	k.src.sinks = slices.DeleteFunc(k.src.sinks, func(o *clipSink) bool { return o == k })
	k.src.mu.Unlock()
}

// playVideo plays VP8 frames in a loop, one every period, into a new source, packetised as a
// browser does, until the test ends.
func playVideo(tb testing.TB, frames [][]byte, period time.Duration) *clipSource {
	src := newClipSource(webrtc.RTPCodecTypeVideo)
	pay := &codecs.VP8Payloader{EnablePictureID: true}
	var sn uint16
	var ts uint32
	play(tb, len(frames), period, func(i int) {
		pkts := pay.Payload(1200, frames[i])
		for j, p := range pkts {
			h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: sn, Timestamp: ts, Marker: j == len(pkts)-1}
			// VP8 frame tag: bit 0 is 0 for a keyframe (RFC 6386 section 9.1).
			src.write(&h, p, j == 0 && frames[i][0]&1 == 0)
			sn++
		}
		ts += uint32(period.Seconds() * 90000)
	})
	return src
}

// playAudio plays 20 ms Opus frames in a loop into a new source until the test ends.
func playAudio(tb testing.TB, frames []media.Frame) *clipSource {
	src := newClipSource(webrtc.RTPCodecTypeAudio)
	var sn uint16
	var ts uint32
	play(tb, len(frames), 20*time.Millisecond, func(i int) {
		src.write(&rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: sn, Timestamp: ts}, frames[i].Data, false)
		sn++
		ts += 960
	})
	return src
}

// play calls f(i) for i = 0, 1, … n-1, 0, … every period, on its own goroutine, until the test
// ends.
func play(tb testing.TB, n int, period time.Duration, f func(i int)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		next := time.Now()
		for i := 0; ; i = (i + 1) % n {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(next)):
			}
			f(i)
			next = next.Add(period)
		}
	}()
	tb.Cleanup(func() { cancel(); <-done })
}

// member is a member on air: the test clips as their camera (the VP8 pattern) and microphone
// (the 440 Hz tone).
type member struct{ cam, mic *clipSource }

func playClips(tb testing.TB) member {
	tb.Helper()
	opus, err := media.Opus()
	if err != nil {
		tb.Fatal(err)
	}
	vp8, err := media.VP8()
	if err != nil {
		tb.Fatal(err)
	}
	frames := make([][]byte, len(vp8))
	for i, f := range vp8 {
		frames[i] = f.Data
	}
	return member{cam: playVideo(tb, frames, vp8[0].Duration), mic: playAudio(tb, opus)}
}

// playSlate plays the slate's pictures (a flat dark blue, 640×360, every one a keyframe) at
// 5 fps, as an interpreter's camera, until the test ends.
func playSlate(t *testing.T) *clipSource {
	t.Helper()
	fx, err := loadFixtures()
	if err != nil {
		t.Fatal(err)
	}
	return playVideo(t, fx.slate, slateInterval)
}
