package media

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The tests hear the public outputs by decoding them with Debian's ffmpeg and measuring, per
// 100 ms window, whether the chair's 440 Hz test tone or the 1 kHz bleep dominates.

// SampleRate is the rate DecodePCM decodes to and the analysis below assumes.
const SampleRate = 48000

// Window is the analysis window of Pitches: 100 ms.
const Window = SampleRate / 10

// DecodePCM decodes the audio of any file ffmpeg reads to mono 48 kHz samples; extra arguments
// go before the input (for instance "-f", "ogg"). On error it returns what was decoded before
// it, with ffmpeg's complaint.
func DecodePCM(ctx context.Context, path string, extra ...string) ([]float64, error) {
	args := append([]string{"-hide_banner", "-loglevel", "error"}, extra...)
	args = append(args, "-i", path, "-vn", "-ac", "1", "-ar", strconv.Itoa(SampleRate), "-f", "s16le", "-")
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	samples := make([]float64, len(out)/2)
	for i := range samples {
		samples[i] = float64(int16(uint16(out[2*i])|uint16(out[2*i+1])<<8)) / 32768
	}
	if err != nil {
		return samples, fmt.Errorf("ffmpeg decode %s: %w %s", filepath.Base(path), err, strings.TrimSpace(stderr.String()))
	}
	return samples, nil
}

// Goertzel is the power of frequency f in 48 kHz samples.
func Goertzel(samples []float64, f float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*f/SampleRate)
	var s1, s2 float64
	for _, x := range samples {
		s1, s2 = x+coeff*s1-s2, s1
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

// Pitch classifies a window: 440 or 1000 when that tone has ten times the other's power, 0 for
// silence (below about -50 dBFS), -1 for anything else.
func Pitch(window []float64) int {
	var energy float64
	for _, x := range window {
		energy += x * x
	}
	if len(window) == 0 || energy/float64(len(window)) < 1e-5 {
		return 0
	}
	p440, p1k := Goertzel(window, 440), Goertzel(window, 1000)
	switch {
	case p440 > 10*p1k:
		return 440
	case p1k > 10*p440:
		return 1000
	}
	return -1
}

// Pitches classifies consecutive windows of n samples (Window: 100 ms).
func Pitches(samples []float64, n int) []int {
	var out []int
	for i := 0; i+n <= len(samples); i += n {
		out = append(out, Pitch(samples[i:i+n]))
	}
	return out
}

// AudioStart is when a file's first audio stream starts, by ffprobe; 0 when it starts with the
// file (ffprobe says "N/A").
func AudioStart(ctx context.Context, path string) (time.Duration, error) {
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "a:0",
		"-show_entries", "stream=start_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		return 0, fmt.Errorf("ffprobe %s: %w", filepath.Base(path), err)
	}
	// A playlist or a transport stream repeats the stream under its program: the first
	// number is the stream's start.
	for _, line := range strings.Fields(string(out)) {
		if s, err := strconv.ParseFloat(line, 64); err == nil {
			return time.Duration(s * float64(time.Second)), nil
		}
	}
	return 0, nil
}

// CueStart finds the start of the cue whose text is title in a WebVTT file.
func CueStart(vtt, title string) (time.Duration, bool) {
	lines := strings.Split(vtt, "\n")
	for i := 1; i < len(lines); i++ {
		if lines[i] != title {
			continue
		}
		from, _, ok := strings.Cut(lines[i-1], " --> ")
		if !ok {
			return 0, false
		}
		var h, m, s, ms int
		if _, err := fmt.Sscanf(from, "%d:%d:%d.%d", &h, &m, &s, &ms); err != nil {
			return 0, false
		}
		return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second + time.Duration(ms)*time.Millisecond, true
	}
	return 0, false
}
