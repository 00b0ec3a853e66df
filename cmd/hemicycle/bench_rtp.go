package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Every payload the bench sends ends with a 12-byte stamp: 4 bytes of stampMagic, then the send
// time in Unix nanoseconds (big-endian). The SFU forwards payloads untouched, so the receiver,
// on the same clock, reads the one-way delay off the packet. The magic tells our stamp from
// bytes that merely sit at the end of a packet: a video frame split over several packets
// carries its stamp in the last one only, and may split the stamp itself.
const (
	stampMagic = "HCts"
	stampLen   = len(stampMagic) + 8
)

// appendStamp returns frame followed by the stamp for t, in a new slice (the SDK packetizes
// asynchronously from the caller's loop, so the buffer is never reused).
func appendStamp(frame []byte, t time.Time) []byte {
	out := make([]byte, len(frame), len(frame)+stampLen)
	copy(out, frame)
	out = append(out, stampMagic...)
	return binary.BigEndian.AppendUint64(out, uint64(t.UnixNano()))
}

// readStamp returns the send time stamped at the end of payload, if there is one.
func readStamp(payload []byte) (time.Time, bool) {
	if len(payload) < stampLen {
		return time.Time{}, false
	}
	tail := payload[len(payload)-stampLen:]
	if string(tail[:len(stampMagic)]) != stampMagic {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(tail[len(stampMagic):]))), true
}

var errShortRTP = errors.New("shorter than its RTP header")

// parseRTP reads what the bench needs from one RTP packet without allocating: sequence number,
// marker bit and payload (after CSRCs and header extension, before padding). The bench reads
// hundreds of thousands of packets per second on one core, where pion's full unmarshal into a
// new Packet would be a large share of its own CPU.
func parseRTP(b []byte) (seq uint16, marker bool, payload []byte, err error) {
	if len(b) < 12 {
		return 0, false, nil, errShortRTP
	}
	if v := b[0] >> 6; v != 2 {
		return 0, false, nil, fmt.Errorf("RTP version %d, want 2", v)
	}
	marker = b[1]&0x80 != 0
	seq = binary.BigEndian.Uint16(b[2:4])
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // header extension: 4-byte header, then length in 32-bit words
		if len(b) < off+4 {
			return 0, false, nil, errShortRTP
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:off+4]))
	}
	end := len(b)
	if b[0]&0x20 != 0 { // padding: the last byte counts the padding bytes, itself included
		end -= int(b[len(b)-1])
	}
	if off > end {
		return 0, false, nil, errShortRTP
	}
	return seq, marker, b[off:end], nil
}
