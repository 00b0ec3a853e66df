package media

import (
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func tone(f float64, n int, amp float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = amp * math.Sin(2*math.Pi*f*float64(i)/SampleRate)
	}
	return s
}

func TestPitchTellsTheTonesApart(t *testing.T) {
	mixed := tone(440, Window, 0.3)
	for i, x := range tone(1000, Window, 0.3) {
		mixed[i] += x
	}
	cases := []struct {
		name   string
		window []float64
		want   int
	}{
		{"440 Hz", tone(440, Window, 0.3), 440},
		{"1 kHz", tone(1000, Window, 0.3), 1000},
		{"both at once", mixed, -1},
		{"silence", make([]float64, Window), 0},
		{"a whisper below -50 dBFS", tone(440, Window, 0.002), 0},
	}
	for _, c := range cases {
		if got := Pitch(c.window); got != c.want {
			t.Errorf("%s: Pitch = %d, want %d", c.name, got, c.want)
		}
	}
	got := Pitches(slices.Concat(tone(440, 2*Window, 0.3), tone(1000, Window, 0.3), make([]float64, Window/2)), Window)
	if !slices.Equal(got, []int{440, 440, 1000}) {
		t.Errorf("Pitches = %v, want [440 440 1000] (the half window at the end is left out)", got)
	}
}

func TestCueStart(t *testing.T) {
	vtt := "WEBVTT\n\n00:00:00.000 --> 00:01:02.500\nOuverture\n\n00:01:02.500 --> 01:00:00.000\nPassage coupé (bip)\n"
	if d, ok := CueStart(vtt, "Passage coupé (bip)"); !ok || d != time.Minute+2500*time.Millisecond {
		t.Errorf("CueStart = %v %v, want 1m2.5s", d, ok)
	}
	if _, ok := CueStart(vtt, "Point 2"); ok {
		t.Error("CueStart found a cue that is not there")
	}
}

// The tone clip, decoded by ffmpeg, is 440 Hz from its start.
func TestDecodePCMHearsTheToneClip(t *testing.T) {
	path := filepath.Join("..", "..", "cmd", "hemicycle", "clips", "tone.ogg")
	samples, err := DecodePCM(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	cls := Pitches(samples, Window)
	if len(cls) < 38 || slices.ContainsFunc(cls[1:len(cls)-1], func(c int) bool { return c != 440 }) {
		t.Errorf("the 4 s tone clip decodes to %v, want 40 windows of 440 Hz", cls)
	}
	if start, err := AudioStart(t.Context(), path); err != nil || start < 0 || start > 100*time.Millisecond {
		t.Errorf("AudioStart = %v, %v; want the start of the file", start, err)
	}
	if _, err := DecodePCM(t.Context(), filepath.Join(t.TempDir(), "missing.ogg")); err == nil {
		t.Error("decoding a missing file gave no error")
	}
}
