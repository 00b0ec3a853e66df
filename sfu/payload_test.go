package sfu

import (
	"bytes"
	"testing"
)

func TestVP8KeyframeStart(t *testing.T) {
	keyHeader := []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01}
	deltaHeader := []byte{0x11, 0x02, 0x00, 0x12, 0x34, 0x56}
	cat := func(a, b []byte) []byte { return append(append([]byte(nil), a...), b...) }
	tests := []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"key frame, short descriptor", cat([]byte{0x10}, keyHeader), true},
		{"key frame, 15-bit picture id, TL0PICIDX, TID", cat([]byte{0x90, 0xe0, 0x80, 0x01, 0x05, 0x20}, keyHeader), true},
		{"key frame, 7-bit picture id", cat([]byte{0x90, 0x80, 0x05}, keyHeader), true},
		{"key frame, KEYIDX only", cat([]byte{0x90, 0x10, 0x00}, keyHeader), true},
		{"delta frame", cat([]byte{0x10}, deltaHeader), false},
		{"delta frame with extensions", cat([]byte{0x90, 0xe0, 0x80, 0x01, 0x05, 0x20}, deltaHeader), false},
		{"continuation packet of a key frame", cat([]byte{0x00}, keyHeader), false},
		{"second partition", cat([]byte{0x11}, keyHeader), false},
		{"key bit clear but no start code", []byte{0x10, 0x10, 0x02, 0x00, 0x00, 0x00, 0x00}, false},
		{"truncated frame header", []byte{0x10, 0x10, 0x02}, false},
		{"truncated descriptor", []byte{0x90}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		if got := keyframeStart(codecVP8, tt.payload); got != tt.want {
			t.Errorf("%s: keyframeStart = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestH264KeyframeStart(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"single IDR slice", []byte{0x65, 0x88, 0x84}, true},
		{"single SPS", []byte{0x67, 0x42, 0xc0, 0x1f}, true},
		{"single non-IDR slice", []byte{0x41, 0x9a, 0x02}, false},
		{"single PPS", []byte{0x68, 0xce, 0x3c, 0x80}, false},
		{"STAP-A with SPS and PPS", []byte{0x78, 0x00, 0x03, 0x67, 0x42, 0xc0, 0x00, 0x02, 0x68, 0xce}, true},
		{"STAP-A with SEI then IDR", []byte{0x78, 0x00, 0x02, 0x06, 0x05, 0x00, 0x02, 0x65, 0x88}, true},
		{"STAP-A with PPS and SEI", []byte{0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x02, 0x06, 0x05}, false},
		{"STAP-A with a size past the end", []byte{0x78, 0x00, 0x09, 0x67, 0x42}, false},
		{"FU-A start of an IDR", []byte{0x7c, 0x85, 0xb8, 0x00}, true},
		{"FU-A middle of an IDR", []byte{0x7c, 0x05, 0x11}, false},
		{"FU-A start of a non-IDR slice", []byte{0x5c, 0x81, 0x9a}, false},
		{"FU-A without header", []byte{0x7c}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		if got := keyframeStart(codecH264, tt.payload); got != tt.want {
			t.Errorf("%s: keyframeStart = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestVP9KeyframeStart(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"begin, not predicted, no layers", []byte{0x08, 0x82}, true},
		{"begin, predicted", []byte{0x48, 0x86}, false},
		{"not the beginning of a frame", []byte{0x04, 0x82}, false},
		{"15-bit picture id, layer indices SID 0", []byte{0xa8, 0x80, 0x01, 0x00, 0x05}, true},
		{"7-bit picture id, layer indices SID 1", []byte{0xa8, 0x01, 0x02, 0x05}, false},
		{"flexible mode, SID 0", []byte{0xb8, 0x01, 0x00}, true},
		{"layer indices missing", []byte{0xa8, 0x80, 0x01}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		if got := keyframeStart(codecVP9, tt.payload); got != tt.want {
			t.Errorf("%s: keyframeStart = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// redPayload builds an RFC 2198 payload: redundant blocks (pt, ts offset, data) then the primary.
func redPayload(primaryPT uint8, primary []byte, redundant ...redBlock) []byte {
	var b []byte
	for _, r := range redundant {
		b = append(b, 0x80|r.pt, byte(r.tsOffset>>6), byte(r.tsOffset<<2)|byte(len(r.data)>>8), byte(len(r.data)))
	}
	b = append(b, primaryPT)
	for _, r := range redundant {
		b = append(b, r.data...)
	}
	return append(b, primary...)
}

type redBlock struct {
	pt       uint8
	tsOffset uint16
	data     []byte
}

func TestREDPrimary(t *testing.T) {
	primary := []byte{0xfc, 0x01, 0x02, 0x03}
	older := redBlock{111, 1920, bytes.Repeat([]byte{0xaa}, 300)} // 300 needs the 10-bit length
	old := redBlock{111, 960, []byte{0xbb, 0xbb}}

	tests := []struct {
		name    string
		payload []byte
		want    []byte
		ok      bool
	}{
		{"two redundant blocks", redPayload(111, primary, older, old), primary, true},
		{"primary only", redPayload(111, primary), primary, true},
		{"empty primary (DTX)", redPayload(111, nil, old), []byte{}, true},
		{"block longer than the payload", redPayload(111, nil, old)[:6], nil, false},
		{"header cut short", []byte{0x80 | 111, 0x00}, nil, false},
		{"no final header", nil, nil, false},
	}
	for _, tt := range tests {
		got, pt, ok := redPrimary(tt.payload)
		if ok != tt.ok {
			t.Errorf("%s: ok = %v, want %v", tt.name, ok, tt.ok)
			continue
		}
		if ok && (pt != 111 || !bytes.Equal(got, tt.want)) {
			t.Errorf("%s: primary = %x pt %d, want %x pt 111", tt.name, got, pt, tt.want)
		}
	}
}

func TestREDRewritePT(t *testing.T) {
	primary := []byte{0xfc, 0x01}
	in := redPayload(111, primary, redBlock{111, 960, []byte{0xbb}}, redBlock{100, 480, []byte{0xcc}})
	orig := append([]byte(nil), in...)
	buf := make([]byte, maxPacketSize)
	out, ok := redRewritePT(buf, in, 111, 109)
	if !ok {
		t.Fatal("rewrite failed")
	}
	want := redPayload(109, primary, redBlock{109, 960, []byte{0xbb}}, redBlock{100, 480, []byte{0xcc}})
	if !bytes.Equal(out, want) {
		t.Fatalf("rewritten = %x, want %x", out, want)
	}
	if !bytes.Equal(in, orig) {
		t.Fatal("the source payload was modified; other subscribers share it")
	}
	if _, ok := redRewritePT(buf, []byte{0x80 | 111, 0x00}, 111, 109); ok {
		t.Fatal("a truncated header list was accepted")
	}
	if pt, ok := redPrimaryPT("111/111"); !ok || pt != 111 {
		t.Fatalf("redPrimaryPT = %d, %v", pt, ok)
	}
}
