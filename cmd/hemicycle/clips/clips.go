// Package clips holds the media that the load generator's bots publish, embedded in the binary:
// 4 s of a 440 Hz tone in Opus (20 ms frames) and 4 s of a test pattern in VP8 (320x240, 15 fps,
// a keyframe every second). The tests publish the same clips (through test/media, which adds
// what only they need). They were made with Debian's ffmpeg:
//
//	ffmpeg -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=4" -c:a libopus -b:a 32k \
//	       -frame_duration 20 -application voip -page_duration 20000 tone.ogg
//	ffmpeg -f lavfi -i testsrc=size=320x240:rate=15 -t 4 -c:v libvpx -b:v 200k -g 15 \
//	       -keyint_min 15 -deadline realtime -cpu-used 8 -auto-alt-ref 0 testsrc.ivf
//
// -page_duration 20000 puts each Opus packet on its own Ogg page: pion's oggreader reads a page
// at a time and does not split a page into its packets.
package clips

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"time"

	protologger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"go.uber.org/zap"
)

//go:embed tone.ogg
var toneOgg []byte

//go:embed testsrc.ivf
var testsrcIVF []byte

// Frame is one encoded media frame.
type Frame struct {
	Data     []byte
	Duration time.Duration
	Keyframe bool // video only
}

// opusFrame is the duration of each Opus packet of the tone.
const opusFrame = 20 * time.Millisecond

// Opus returns the Opus packets of the tone, in order.
func Opus() ([]Frame, error) {
	frames, err := ReadOpus(toneOgg)
	if err != nil {
		return nil, fmt.Errorf("tone.ogg: %w", err)
	}
	return frames, nil
}

// ReadOpus returns the Opus packets of an Ogg file of 20 ms packets, one per page (made with
// -page_duration 20000 as above), in order.
func ReadOpus(ogg []byte) ([]Frame, error) {
	r, _, err := oggreader.NewWith(bytes.NewReader(ogg))
	if err != nil {
		return nil, err
	}
	var out []Frame
	for {
		page, h, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if kind, _ := h.HeaderType(page); kind != oggreader.HeaderOpusTags {
			out = append(out, Frame{Data: page, Duration: opusFrame})
		}
	}
}

// VP8 returns the frames of the 320x240 test pattern, in order.
func VP8() ([]Frame, error) {
	frames, err := ReadVP8(testsrcIVF)
	if err != nil {
		return nil, fmt.Errorf("testsrc.ivf: %w", err)
	}
	return frames, nil
}

// ReadVP8 returns the frames of a VP8 IVF file, each lasting the file's time base.
func ReadVP8(ivf []byte) ([]Frame, error) {
	// VP8 frame tag: bit 0 is 0 for a keyframe (RFC 6386 section 9.1).
	return ReadIVF(ivf, "VP80", func(f []byte) bool { return f[0]&1 == 0 })
}

// ReadIVF returns the frames of an IVF file of the codec fourCC names ("VP80", "VP90"), each
// lasting the file's time base, marked by keyframe.
func ReadIVF(ivf []byte, fourCC string, keyframe func(frame []byte) bool) ([]Frame, error) {
	r, h, err := ivfreader.NewWith(bytes.NewReader(ivf))
	if err != nil {
		return nil, err
	}
	if h.FourCC != fourCC {
		return nil, fmt.Errorf("IVF of %q, not %q", h.FourCC, fourCC)
	}
	frameDur := time.Second * time.Duration(h.TimebaseNumerator) / time.Duration(h.TimebaseDenominator)
	var out []Frame
	for {
		data, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(data) == 0 {
			return nil, fmt.Errorf("empty frame %d", len(out))
		}
		out = append(out, Frame{Data: data, Duration: frameDur, Keyframe: keyframe(data)})
	}
}

// QuietSDK silences the LiveKit Go SDK that publishes the clips (the bots, the tests'
// participants). It installs a zap logger that drops everything below errors, not the discard
// logger: pion's debug messages are formatted for the discard logger anyway, and one of them
// ("got new track") reads a receiver that the SDK is still configuring, a data race under -race.
func QuietSDK() {
	quiet, err := protologger.FromZapLogger(zap.NewNop(), &protologger.Config{Level: "error"})
	if err == nil {
		lksdk.SetLogger(quiet)
	}
}
