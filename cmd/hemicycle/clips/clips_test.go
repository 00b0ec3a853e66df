package clips

import (
	"testing"
	"time"
)

func TestClipsDecodeIntoFrames(t *testing.T) {
	opus, err := Opus()
	if err != nil {
		t.Fatal(err)
	}
	// 4 s of 20 ms frames, give or take the encoder's priming frame: a file with several
	// packets to a page would read as a handful of frames here.
	if len(opus) < 199 || len(opus) > 202 {
		t.Errorf("%d Opus frames, want about 200", len(opus))
	}
	for i, f := range opus {
		// TOC byte (RFC 6716 section 3.1): code 0, one frame in the packet.
		if len(f.Data) == 0 || f.Data[0]&3 != 0 {
			t.Fatalf("Opus frame %d is not a single frame: % x", i, f.Data[:min(len(f.Data), 4)])
		}
	}
	vp8, err := VP8()
	if err != nil {
		t.Fatal(err)
	}
	if len(vp8) != 60 {
		t.Errorf("%d VP8 frames, want 60 (4 s at 15 fps)", len(vp8))
	}
	if !vp8[0].Keyframe {
		t.Error("the first VP8 frame is not a keyframe")
	}
	keys := 0
	for _, f := range vp8 {
		if f.Keyframe {
			keys++
		}
	}
	if keys != 4 {
		t.Errorf("%d keyframes, want 4 (one a second)", keys)
	}
	if d := vp8[0].Duration; d < 66*time.Millisecond || d > 67*time.Millisecond {
		t.Errorf("VP8 frame duration %v, want 1/15 s", d)
	}
}

func TestReadVP8RefusesOtherFiles(t *testing.T) {
	if _, err := ReadVP8([]byte("not an IVF file at all, but long enough for a header")); err == nil {
		t.Error("garbage accepted as IVF")
	}
	av1 := append([]byte(nil), testsrcIVF...)
	copy(av1[8:12], "AV01")
	if _, err := ReadVP8(av1); err == nil {
		t.Error("an IVF file of another codec accepted as VP8")
	}
	if _, err := ReadVP8(testsrcIVF[:len(testsrcIVF)-10]); err == nil {
		t.Error("a truncated IVF file accepted")
	}
}
