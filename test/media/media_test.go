package media

import (
	"testing"
	"time"
)

func TestClipsDecodeIntoFrames(t *testing.T) {
	opus, err := Opus()
	if err != nil {
		t.Fatal(err)
	}
	// 4 s of 20 ms frames, give or take the encoder's priming frame.
	if len(opus) < 199 || len(opus) > 202 {
		t.Errorf("%d Opus frames, want about 200", len(opus))
	}
	for i, f := range opus {
		if len(f.Data) == 0 {
			t.Fatalf("Opus frame %d is empty", i)
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

func TestOggPacketsSpanPages(t *testing.T) {
	// One page holding a 300-byte packet (lacing 255+45) and a 2-byte one.
	page := []byte("OggS")
	page = append(page, make([]byte, 22)...)
	page = append(page, 3, 255, 45, 2)
	page = append(page, make([]byte, 302)...)
	packets, err := oggPackets(page)
	if err != nil {
		t.Fatal(err)
	}
	if len(packets) != 2 || len(packets[0]) != 300 || len(packets[1]) != 2 {
		t.Fatalf("got %d packets", len(packets))
	}
	if _, err := oggPackets([]byte("NotOgg")); err == nil {
		t.Error("garbage accepted as Ogg")
	}
}

func TestSimulcastPatternsCarryTheirWidth(t *testing.T) {
	for _, w := range []int{160, 320, 640} {
		frames, err := VP8Sized(w)
		if err != nil {
			t.Fatal(err)
		}
		if got := KeyframeWidth(frames[0].Data); got != w {
			t.Errorf("keyframe of the %d pattern says width %d", w, got)
		}
		if got := KeyframeWidth(frames[1].Data); got != 0 {
			t.Errorf("a delta frame read as a keyframe of width %d", got)
		}
	}
	if _, err := VP8Sized(1920); err == nil {
		t.Error("no error for a size that is not shipped")
	}
}
