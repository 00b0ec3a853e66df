// Package media holds small pre-encoded clips for tests and the load generator: 4 s of a 440 Hz
// tone in Opus (20 ms frames) and 4 s of a test pattern in VP8 (15 fps, a keyframe every second)
// at 320x240, and at 160x120 and 640x480 for simulcast. They were made with Debian's ffmpeg:
//
//	ffmpeg -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=4" -c:a libopus -b:a 32k \
//	       -frame_duration 20 -application voip tone.ogg
//	ffmpeg -f lavfi -i testsrc=size=320x240:rate=15 -t 4 -c:v libvpx -b:v 200k -g 15 \
//	       -keyint_min 15 -deadline realtime -cpu-used 8 -auto-alt-ref 0 testsrc.ivf
//
// (testsrc-160.ivf at 60k and testsrc-640.ivf at 300k likewise, with their sizes.)
package media

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

//go:embed tone.ogg
var toneOgg []byte

//go:embed testsrc.ivf
var testsrcIVF []byte

//go:embed testsrc-160.ivf
var testsrc160IVF []byte

//go:embed testsrc-640.ivf
var testsrc640IVF []byte

// Frame is one encoded media frame.
type Frame struct {
	Data     []byte
	Duration time.Duration
	Keyframe bool // video only
}

// OpusFrameDuration is the duration of each Opus packet of the tone.
const OpusFrameDuration = 20 * time.Millisecond

// ToneFrequency is the tone's pitch in Hz.
const ToneFrequency = 440

// Opus returns the Opus packets of the tone, in order.
func Opus() ([]Frame, error) {
	packets, err := oggPackets(toneOgg)
	if err != nil {
		return nil, fmt.Errorf("tone.ogg: %w", err)
	}
	// The first two packets are the OpusHead and OpusTags headers.
	if len(packets) < 3 || !bytes.HasPrefix(packets[0], []byte("OpusHead")) {
		return nil, errors.New("tone.ogg: not an Ogg Opus stream")
	}
	out := make([]Frame, 0, len(packets)-2)
	for _, p := range packets[2:] {
		out = append(out, Frame{Data: p, Duration: OpusFrameDuration})
	}
	return out, nil
}

// oggPackets splits an Ogg bitstream into packets using each page's segment table: a packet
// ends at a lacing value below 255 and may continue across pages.
func oggPackets(data []byte) ([][]byte, error) {
	var packets [][]byte
	var cur []byte
	for off := 0; off < len(data); {
		if len(data)-off < 27 || string(data[off:off+4]) != "OggS" {
			return nil, fmt.Errorf("bad Ogg page at byte %d", off)
		}
		nseg := int(data[off+26])
		segs := data[off+27 : off+27+nseg]
		body := off + 27 + nseg
		for _, l := range segs {
			if body+int(l) > len(data) {
				return nil, fmt.Errorf("truncated Ogg page at byte %d", off)
			}
			cur = append(cur, data[body:body+int(l)]...)
			body += int(l)
			if l < 255 {
				packets = append(packets, cur)
				cur = nil
			}
		}
		off = body
	}
	return packets, nil
}

// VP8 returns the frames of the 320x240 test pattern, in order.
func VP8() ([]Frame, error) { return ivfFrames(testsrcIVF) }

// VP8Sized returns the test pattern at width 160, 320 or 640 (simulcast layers).
func VP8Sized(width int) ([]Frame, error) {
	switch width {
	case 160:
		return ivfFrames(testsrc160IVF)
	case 320:
		return ivfFrames(testsrcIVF)
	case 640:
		return ivfFrames(testsrc640IVF)
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

func ivfFrames(d []byte) ([]Frame, error) {
	if len(d) < 32 || string(d[:4]) != "DKIF" || string(d[8:12]) != "VP80" {
		return nil, errors.New("not a VP8 IVF file")
	}
	den := binary.LittleEndian.Uint32(d[16:20])
	num := binary.LittleEndian.Uint32(d[20:24])
	if den == 0 || num == 0 {
		return nil, errors.New("IVF: zero timebase")
	}
	frameDur := time.Duration(float64(time.Second) * float64(num) / float64(den))
	var out []Frame
	for off := int(binary.LittleEndian.Uint16(d[6:8])); off < len(d); {
		if len(d)-off < 12 {
			return nil, fmt.Errorf("IVF: truncated frame header at byte %d", off)
		}
		size := int(binary.LittleEndian.Uint32(d[off : off+4]))
		off += 12
		if off+size > len(d) || size == 0 {
			return nil, fmt.Errorf("IVF: truncated frame at byte %d", off)
		}
		frame := d[off : off+size]
		// VP8 frame tag: bit 0 is 0 for a keyframe (RFC 6386 section 9.1).
		out = append(out, Frame{Data: frame, Duration: frameDur, Keyframe: frame[0]&1 == 0})
		off += size
	}
	return out, nil
}
