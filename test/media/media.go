// Package media holds the tests' media: the clips the bench's bots publish (from
// cmd/hemicycle/clips, one copy of each file), the test pattern at 160x120 and 640x480 for
// simulcast, and helpers to hear what the outputs carry (audio.go). The simulcast patterns were
// made like clips' testsrc.ivf, with Debian's ffmpeg:
//
//	ffmpeg -f lavfi -i testsrc=size=160x120:rate=15 -t 4 -c:v libvpx -b:v 60k -g 15 \
//	       -keyint_min 15 -deadline realtime -cpu-used 8 -auto-alt-ref 0 testsrc-160.ivf
//
// (testsrc-640.ivf at 640x480 and 300k likewise.) The VP9 pattern, for the codec choices:
//
//	ffmpeg -f lavfi -i testsrc=size=160x120:rate=15 -t 2 -c:v libvpx-vp9 -b:v 60k -g 15 \
//	       -keyint_min 15 -deadline realtime -cpu-used 8 -auto-alt-ref 0 -lag-in-frames 0 \
//	       -row-mt 0 testsrc-vp9-160.ivf
package media

import (
	_ "embed"
	"encoding/binary"
	"fmt"

	"github.com/pion/rtp/codecs/vp9"

	"github.com/ingeco/hemicycle/cmd/hemicycle/clips"
)

//go:embed testsrc-160.ivf
var testsrc160IVF []byte

//go:embed testsrc-640.ivf
var testsrc640IVF []byte

//go:embed testsrc-vp9-160.ivf
var testsrcVP9IVF []byte

// Frame is one encoded media frame.
type Frame = clips.Frame

// Opus returns the Opus packets of the 440 Hz tone, in order.
func Opus() ([]Frame, error) { return clips.Opus() }

// ReadOpus returns the 20 ms Opus packets of an Ogg file, one per page (clips.ReadOpus).
func ReadOpus(ogg []byte) ([]Frame, error) { return clips.ReadOpus(ogg) }

// VP8 returns the frames of the 320x240 test pattern, in order.
func VP8() ([]Frame, error) { return clips.VP8() }

// VP9 returns the frames of the 160x120 test pattern in VP9 profile 0, in order.
func VP9() ([]Frame, error) {
	return clips.ReadIVF(testsrcVP9IVF, "VP90", func(f []byte) bool {
		var h vp9.Header
		return h.Unmarshal(f) == nil && !h.NonKeyFrame
	})
}

// QuietSDK silences the LiveKit Go SDK of the tests' participants (clips.QuietSDK says why).
func QuietSDK() { clips.QuietSDK() }

// VP8Sized returns the test pattern at width 160, 320 or 640 (simulcast layers).
func VP8Sized(width int) ([]Frame, error) {
	switch width {
	case 160:
		return clips.ReadVP8(testsrc160IVF)
	case 320:
		return clips.VP8()
	case 640:
		return clips.ReadVP8(testsrc640IVF)
	}
	return nil, fmt.Errorf("no %d-pixel-wide test pattern (160, 320 or 640)", width)
}

// KeyframeWidth reads the width from a VP8 keyframe's header (RFC 6386 section 9.1), 0 if
// data is not the start of a keyframe.
func KeyframeWidth(data []byte) int {
	if len(data) < 10 || data[0]&1 != 0 || data[3] != 0x9d || data[4] != 0x01 || data[5] != 0x2a {
		return 0
	}
	return int(binary.LittleEndian.Uint16(data[6:8]) & 0x3fff)
}

// ReadVP8 returns the frames of a VP8 IVF file, such as one a test encoded with ffmpeg.
func ReadVP8(ivf []byte) ([]Frame, error) { return clips.ReadVP8(ivf) }
