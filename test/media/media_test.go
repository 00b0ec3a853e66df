package media

import "testing"

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
