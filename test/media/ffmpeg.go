package media

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The tests' checks of what ffmpeg made: that the tools are there, what ffprobe says of a file,
// its audio decoded, and the bleep heard in it.

// NeedFFmpeg fails the test when ffmpeg or ffprobe is missing: scripts/test installs them, so a
// missing one is a broken machine, not a reason to pass.
func NeedFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (scripts/test installs Debian's ffmpeg): %v", tool, err)
		}
	}
}

// FFmpegFirstRun is an ffmpeg whose first run is the shell script first instead, and whose
// later runs are the real ffmpeg's, as a restarted egress meets them. The script sees the real
// ffmpeg as "$ffmpeg", its arguments as "$@", and "$failed", a file that exists once fail has
// been called (FailWhenTold waits for it).
func FFmpegFirstRun(t testing.TB, first string) (path string, fail func()) {
	t.Helper()
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path = filepath.Join(dir, "ffmpeg-first-run")
	failed := filepath.Join(dir, "fail")
	// mkdir is atomic: of two runs starting together, one only is the first.
	script := fmt.Sprintf("#!/bin/sh\nffmpeg=%q\nfailed=%q\nif mkdir %q 2>/dev/null; then\n%s\nfi\nexec \"$ffmpeg\" \"$@\"\n",
		real, failed, filepath.Join(dir, "ran"), first)
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return path, func() {
		if err := os.WriteFile(failed, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// FailWhenTold is a first run (FFmpegFirstRun) that quits when fail is called, finishing its
// output but exiting with a failure, as an ffmpeg whose input or output broke does. The real
// ffmpeg runs under it and is passed the interrupt asking it to stop.
const FailWhenTold = `	"$ffmpeg" "$@" &
	pid=$!
	trap 'kill -INT $pid' INT TERM
	while [ ! -e "$failed" ] && kill -0 $pid 2>/dev/null; do sleep 0.1; done
	kill -INT $pid 2>/dev/null
	wait $pid
	exit 1`

// Probe is what ffprobe says of a file's streams.
type Probe struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
	} `json:"streams"`
}

// ProbeFile asks ffprobe about the streams of path, and fails the test if ffprobe refuses it.
func ProbeFile(t testing.TB, path string) Probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-print_format", "json", "-show_streams", path).Output()
	if err != nil {
		var msg []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			msg = ee.Stderr
		}
		t.Fatalf("ffprobe refuses %s: %v %s", filepath.Base(path), err, msg)
	}
	var p Probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe's answer on %s: %v", filepath.Base(path), err)
	}
	return p
}

// Kinds lists the streams in order as type/codec: "video/vp8,audio/opus".
func (p Probe) Kinds() string {
	var kinds []string
	for _, s := range p.Streams {
		kinds = append(kinds, s.CodecType+"/"+s.CodecName)
	}
	return strings.Join(kinds, ",")
}

// PCM decodes the audio of path (DecodePCM), and fails the test if it cannot.
func PCM(t testing.TB, path string) []float64 {
	t.Helper()
	s, err := DecodePCM(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// CheckBleepRun wants pitch classes (Pitches) holding one run of minBleep to maxBleep windows
// of the bleep's 1 kHz, and at least min440 windows of the 440 Hz test tone around it.
func CheckBleepRun(t testing.TB, what string, cls []int, minBleep, maxBleep, min440 int) {
	t.Helper()
	first, last, bleep, tone := -1, -1, 0, 0
	for i, c := range cls {
		switch c {
		case 1000:
			bleep++
			if first < 0 {
				first = i
			}
			last = i
		case 440:
			tone++
		}
	}
	t.Logf("%s pitch per 100 ms: %v", what, cls)
	if bleep < minBleep || bleep > maxBleep || last-first+1 != bleep {
		t.Errorf("%s: %d windows of 1 kHz (from %d to %d), want one run of %d to %d", what, bleep, first, last, minBleep, maxBleep)
	}
	if tone < min440 {
		t.Errorf("%s: only %d windows of 440 Hz outside the bleep, want %d", what, tone, min440)
	}
}
