package broadcast

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// The programme's own media, pre-encoded with Debian's ffmpeg so that the server never encodes:
//
//	ffmpeg -f lavfi -i "sine=frequency=1000:sample_rate=48000:duration=1" -c:a libopus -b:a 32k \
//	       -frame_duration 20 -application audio -ac 1 -page_duration 20000 bleep.ogg
//	ffmpeg -f lavfi -i "anullsrc=r=48000:cl=mono" -t 0.2 -c:a libopus -b:a 16k -frame_duration 20 \
//	       -ac 1 -page_duration 20000 silence.ogg
//	ffmpeg -f lavfi -i "color=c=0x1d3557:s=640x360:r=5" -t 1 -c:v libvpx -b:v 100k -g 1 \
//	       -keyint_min 1 -deadline realtime -cpu-used 8 -auto-alt-ref 0 slate.ivf
//	ffmpeg -f lavfi -i "color=c=black:s=16x16:r=5" -t 1 -c:v libvpx -b:v 10k -g 1 \
//	       -keyint_min 1 -deadline realtime -cpu-used 8 -auto-alt-ref 0 blank.ivf
//
// bleep.ogg is the 1 kHz tone that replaces bleeped audio, silence.ogg fills an audio track that
// has nothing to say, slate.ivf (every frame a keyframe) stands in for a missing camera, and
// blank.ivf (a tiny picture, every frame a keyframe) for a missing interpreter: ffmpeg's overlay
// needs pictures on both its inputs, and leaves one this small off the picture (hls.go).

//go:embed media/bleep.ogg
var bleepOgg []byte

//go:embed media/silence.ogg
var silenceOgg []byte

//go:embed media/slate.ivf
var slateIVF []byte

//go:embed media/blank.ivf
var blankIVF []byte

// ToneFrequency is the pitch of the bleep in Hz.
const ToneFrequency = 1000

// frameDuration is the duration of every pre-encoded Opus frame.
const opusFrameSamples = 960 // 20 ms at 48 kHz

type fixtures struct {
	tone    [][]byte // Opus frames of the 1 kHz tone
	silence []byte   // one Opus frame of silence
	slate   [][]byte // VP8 keyframes
	blank   [][]byte // VP8 keyframes of blankWidth pixels wide
}

// blankWidth is the width of blank.ivf's pictures; the overlay takes anything narrower than
// pipMinWidth for the blank.
const (
	blankWidth  = 16
	pipMinWidth = 32
)

var (
	fixturesOnce sync.Once
	fixturesVal  *fixtures
	fixturesErr  error
)

// loadFixtures parses the embedded media once; they are constants, so this is not mutable
// state, only a cache of their parsed form.
func loadFixtures() (*fixtures, error) {
	fixturesOnce.Do(func() {
		f := &fixtures{}
		var err error
		if f.tone, err = opusFrames(bleepOgg); err != nil {
			fixturesErr = fmt.Errorf("bleep.ogg: %w", err)
			return
		}
		silence, err := opusFrames(silenceOgg)
		if err != nil {
			fixturesErr = fmt.Errorf("silence.ogg: %w", err)
			return
		}
		// The last frame is well past the encoder's start-up.
		f.silence = silence[len(silence)-1]
		if f.slate, err = ivfFrames(slateIVF); err != nil {
			fixturesErr = fmt.Errorf("slate.ivf: %w", err)
			return
		}
		if f.blank, err = ivfFrames(blankIVF); err != nil {
			fixturesErr = fmt.Errorf("blank.ivf: %w", err)
			return
		}
		fixturesVal = f
	})
	return fixturesVal, fixturesErr
}

// ToneFrames returns the Opus frames (20 ms each) of the 1 kHz bleep tone.
func ToneFrames() ([][]byte, error) {
	f, err := loadFixtures()
	if err != nil {
		return nil, err
	}
	return f.tone, nil
}

// opusFrames returns the audio packets of an Ogg Opus file with one packet a page (made with
// ffmpeg's -page_duration 20000): pion's oggreader reads whole pages and does not split a page
// into its packets.
func opusFrames(ogg []byte) ([][]byte, error) {
	r, _, err := oggreader.NewWith(bytes.NewReader(ogg))
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		page, h, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if kind, _ := h.HeaderType(page); kind != oggreader.HeaderOpusTags {
			out = append(out, page)
		}
	}
}

// ivfFrames returns the frames of a VP8 IVF file.
func ivfFrames(ivf []byte) ([][]byte, error) {
	r, h, err := ivfreader.NewWith(bytes.NewReader(ivf))
	if err != nil {
		return nil, err
	}
	if h.FourCC != "VP80" {
		return nil, fmt.Errorf("IVF of %q, not VP8", h.FourCC)
	}
	var out [][]byte
	for {
		frame, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) && len(out) > 0 {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, frame)
	}
}

// opusSamples is the duration of an Opus packet in 48 kHz samples, from its TOC byte (RFC 6716
// section 3.1); 0 for a packet it cannot read.
func opusSamples(p []byte) int {
	if len(p) == 0 {
		return 0
	}
	toc := p[0]
	cfg := toc >> 3
	var per int // samples per frame at 48 kHz
	switch {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		per = [4]int{480, 960, 1920, 2880}[cfg&3]
	case cfg < 16: // hybrid: 10, 20 ms
		per = [2]int{480, 960}[cfg&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		per = [4]int{120, 240, 480, 960}[cfg&3]
	}
	switch toc & 3 {
	case 0:
		return per
	case 1, 2:
		return 2 * per
	default:
		if len(p) < 2 {
			return 0
		}
		return int(p[1]&0x3f) * per
	}
}
