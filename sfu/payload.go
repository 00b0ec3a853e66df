package sfu

import (
	"strconv"
	"strings"
)

// codecKind is the payload format of a published track, resolved once from its MIME type so that
// the per-packet path switches on an integer.
type codecKind uint8

const (
	codecOther codecKind = iota
	codecOpus
	codecRED
	codecVP8
	codecVP9
	codecH264
)

func codecKindOf(mime string) codecKind {
	switch strings.ToLower(mime) {
	case "audio/opus":
		return codecOpus
	case "audio/red":
		return codecRED
	case "video/vp8":
		return codecVP8
	case "video/vp9":
		return codecVP9
	case "video/h264":
		return codecH264
	}
	return codecOther
}

// keyframeStart reports whether an RTP payload (padding removed) is the first packet of a
// keyframe, the only place where a subscriber can join a video stream or change layer.
func keyframeStart(kind codecKind, payload []byte) bool {
	switch kind {
	case codecVP8:
		return vp8KeyframeStart(payload)
	case codecVP9:
		return vp9KeyframeStart(payload)
	case codecH264:
		return h264KeyframeStart(payload)
	}
	return false
}

// vp8KeyframeStart parses the RFC 7741 payload descriptor, then the start of the VP8 frame
// header: its lowest bit (P) is 0 for a key frame, which is followed by the 0x9d012a start code.
func vp8KeyframeStart(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	start := p[0]&0x10 != 0
	partition := p[0] & 0x07
	if !start || partition != 0 {
		return false
	}
	i := 1
	if p[0]&0x80 != 0 { // X: extended control bits follow
		if len(p) < 2 {
			return false
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture ID, 7 or 15 bits
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX share one byte
			i++
		}
	}
	if len(p) < i+6 {
		return false
	}
	h := p[i:]
	return h[0]&0x01 == 0 && h[3] == 0x9d && h[4] == 0x01 && h[5] == 0x2a
}

// vp9KeyframeStart parses the VP9 payload descriptor (RFC 9628): a packet that begins a frame
// (B) which is not inter-picture predicted (P clear) in the base spatial layer starts a keyframe.
func vp9KeyframeStart(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	d := p[0]
	predicted := d&0x40 != 0
	begins := d&0x08 != 0
	if predicted || !begins {
		return false
	}
	if d&0x20 == 0 { // no layer indices: a single spatial layer
		return true
	}
	i := 1
	if d&0x80 != 0 { // I: picture ID, 7 or 15 bits
		if len(p) < 2 {
			return false
		}
		if p[1]&0x80 != 0 {
			i = 3
		} else {
			i = 2
		}
	}
	if len(p) <= i {
		return false
	}
	spatialID := (p[i] >> 1) & 0x07
	return spatialID == 0
}

// NAL unit types (RFC 6184) that matter for switching: an IDR slice, or the SPS that precedes it.
const (
	h264NALIDR   = 5
	h264NALSPS   = 7
	h264NALSTAPA = 24
	h264NALFUA   = 28
)

// h264KeyframeStart reports a packet carrying an SPS or the start of an IDR slice. Encoders send
// the SPS (alone or in a STAP-A with the PPS) before the IDR, so switching at the SPS keeps the
// parameter sets that the decoder needs.
func h264KeyframeStart(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case h264NALIDR, h264NALSPS:
		return true
	case h264NALSTAPA:
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return false
			}
			if nt := p[i] & 0x1f; nt == h264NALIDR || nt == h264NALSPS {
				return true
			}
			i += size
		}
	case h264NALFUA:
		if len(p) < 2 {
			return false
		}
		fu := p[1]
		nt := fu & 0x1f
		return fu&0x80 != 0 && (nt == h264NALIDR || nt == h264NALSPS)
	}
	return false
}

// redPrimary returns the primary block of an RFC 2198 payload: the last one, whose data follows
// the data of every redundant block. The slice aliases p.
func redPrimary(p []byte) (primary []byte, pt uint8, ok bool) {
	i, redundant := 0, 0
	for {
		if i >= len(p) {
			return nil, 0, false
		}
		if p[i]&0x80 == 0 { // the final, one-byte header of the primary block
			pt = p[i] & 0x7f
			i++
			break
		}
		if i+4 > len(p) {
			return nil, 0, false
		}
		redundant += int(p[i+2]&0x03)<<8 | int(p[i+3])
		i += 4
	}
	if i+redundant > len(p) {
		return nil, 0, false
	}
	return p[i+redundant:], pt, true
}

// redRewritePT copies an RFC 2198 payload into dst with every block header that names payload
// type from renamed to to, for a subscriber that numbered Opus differently from the publisher.
func redRewritePT(dst, p []byte, from, to uint8) ([]byte, bool) {
	if len(dst) < len(p) {
		return nil, false
	}
	dst = dst[:len(p)]
	copy(dst, p)
	for i := 0; i < len(dst); {
		last := dst[i]&0x80 == 0
		if dst[i]&0x7f == from {
			dst[i] = dst[i]&0x80 | to
		}
		if last {
			return dst, true
		}
		i += 4
	}
	return nil, false
}

// redPrimaryPT reads the primary payload type from a RED fmtp line such as "111/111".
func redPrimaryPT(fmtp string) (uint8, bool) {
	first, _, _ := strings.Cut(fmtp, "/")
	v, err := strconv.ParseUint(strings.TrimSpace(first), 10, 7)
	if err != nil {
		return 0, false
	}
	return uint8(v), true
}
