package broadcast

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/test/media"
)

// TestHLSAndRTMPCarryTheBleep transcodes a programme playing the clips to HLS and pushes it
// over RTMP to an ffmpeg listening on loopback (standing in for a streaming platform), with a
// one-second bleep: ffprobe must accept the playlist and the received stream (H.264 and AAC),
// and both must have the 1 kHz tone in place of the 440 Hz for that second.
func TestHLSAndRTMPCarryTheBleep(t *testing.T) {
	media.NeedFFmpeg(t)
	const delay = 500 * time.Millisecond
	p, _ := airClips(t, "hls room", Config{Delay: delay, Logger: testLog()})

	// The "platform": ffmpeg listening for one RTMP publisher and saving what it gets.
	dir := t.TempDir()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	received := filepath.Join(dir, "received.flv")
	platform := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-listen", "1", "-timeout", "30",
		"-i", fmt.Sprintf("rtmp://127.0.0.1:%d/live/secret-key", port), "-c", "copy", "-y", received)
	var stderr strings.Builder
	platform.Stderr = &stderr
	if err := platform.Start(); err != nil {
		t.Fatal(err)
	}
	platformDone := make(chan struct{})
	var platformErr error
	go func() {
		platformErr = platform.Wait()
		close(platformDone)
	}()
	t.Cleanup(func() {
		_ = platform.Process.Kill()
		<-platformDone
	})
	time.Sleep(300 * time.Millisecond) // let it listen

	h, err := p.StartHLS(HLSConfig{Dir: filepath.Join(dir, "hls"), SegmentSeconds: 1, ListSize: 30})
	if err != nil {
		t.Fatal(err)
	}
	stopRTMP, err := p.StartRTMP(RTMPConfig{URL: fmt.Sprintf("rtmp://127.0.0.1:%d/live/secret-key", port)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.StartRTMP(RTMPConfig{URL: "http://example.invalid/x"}); err == nil {
		t.Error("a URL that is not rtmp:// was accepted")
	}

	// ffmpeg needs a keyframe and some probing before it produces anything: start counting
	// once the first segment is out.
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(h.Dir(), MediaPlaylist))
		if strings.Contains(string(b), ".ts") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no HLS segment after 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The RTMP side has its own ffmpeg (and the platform's) to start: wait until the platform
	// is receiving too, or a loaded machine makes it miss the bleep.
	deadline = time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(received); err == nil && fi.Size() > 20000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the RTMP platform received nothing after 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	p.Bleep(true)
	time.Sleep(time.Second)
	p.Bleep(false)
	time.Sleep(3*time.Second + delay)
	// A loaded machine's RTMP chain (two ffmpegs) may lag seconds behind: stop it once the
	// platform has the bleep and a second after it, or after 30 s (the checks below then say
	// what is missing).
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		cls := media.Pitches(partialPCM(t.Context(), received), media.Window)
		if i := slices.Index(cls, 1000); i >= 0 && slices.Index(cls[i:], 440) >= 0 && len(cls)-i-slices.Index(cls[i:], 440) >= 10 {
			break
		}
	}
	stopRTMP()
	h.Stop()
	select {
	case <-platformDone:
		if platformErr != nil {
			t.Fatalf("the RTMP receiver failed: %v %s", platformErr, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the RTMP receiver did not see the end of the stream")
	}

	waitPlaylistEnded(t, filepath.Join(h.Dir(), MediaPlaylist))
	playlist := filepath.Join(h.Dir(), Playlist)
	for what, path := range map[string]string{"HLS": playlist, "RTMP": received} {
		if got := media.ProbeFile(t, path).Kinds(); got != "video/h264,audio/aac" {
			t.Errorf("%s streams %s, want video/h264,audio/aac", what, got)
		}
		media.CheckBleepRun(t, what, media.Pitches(media.PCM(t, path), media.Window), 8, 13, 15)
	}
}

func TestHLSFileNames(t *testing.T) {
	h := &HLS{dir: "/srv/hls/room"}
	for name, ok := range map[string]bool{
		"index.m3u8": true, "r0-000012.ts": true, "r3-000001.ts": true,
		"video.m3u8": true, "captions.m3u8": true, "r0-000012.vtt": true, "r0-1.vtt.ts": false,
		"../index.m3u8": false, "index.m3u8.bak": false, "x.ts": false, "": false, "r0-1.ts/..": false,
	} {
		path, got := h.HLSFile(name)
		if got != ok {
			t.Errorf("HLSFile(%q) = %v, want %v", name, got, ok)
		}
		if got && filepath.Dir(path) != h.dir {
			t.Errorf("HLSFile(%q) = %s, outside the folder", name, path)
		}
	}
	if redactURL("rtmp://live.example/app/sk_123") != "rtmp://live.example/app/…" {
		t.Errorf("stream key not hidden: %s", redactURL("rtmp://live.example/app/sk_123"))
	}
}

// testLog shows the programme's log with HEMICYCLE_TEST_LOG set.
func testLog() *slog.Logger {
	if os.Getenv("HEMICYCLE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return discard()
}

// partialPCM decodes what a file being written holds so far, nothing if it cannot.
func partialPCM(ctx context.Context, path string) []float64 {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, _ := media.DecodePCM(ctx, path)
	return s
}

// cornerColours decodes a video's pictures at 2 per second and returns the mean colour of
// the region where the interpreter is inset (inside its margins), one per picture.
func cornerColours(t *testing.T, path string, w, h int) [][3]int {
	t.Helper()
	pw, ph := w/4, h/4-h/36 // the inset at 16:9 is a quarter wide and about as high
	x, y := w-pw, h-ph
	filter := fmt.Sprintf("fps=2,crop=%d:%d:%d:%d,scale=1:1:flags=area", pw*3/4, ph*3/4, x+pw/8-h/36, y+ph/8-h/36)
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", path, "-an", "-vf", filter,
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil {
		t.Fatalf("decode the corner of %s: %v", filepath.Base(path), err)
	}
	var cs [][3]int
	for i := 0; i+3 <= len(out); i += 3 {
		cs = append(cs, [3]int{int(out[i]), int(out[i+1]), int(out[i+2])})
	}
	return cs
}

// TestHLSInsetsTheInterpreter transcodes a programme to HLS, first without an interpreter, then
// with one whose camera shows a flat dark blue: the bottom-right corner of the output must turn
// that blue once the interpreter is on air, and not be that blue before.
func TestHLSInsetsTheInterpreter(t *testing.T) {
	media.NeedFFmpeg(t)
	const delay = 500 * time.Millisecond
	p, src := airClips(t, "pip room", Config{Delay: delay, Logger: testLog()})
	h, err := p.StartHLS(HLSConfig{Dir: t.TempDir(), SegmentSeconds: 1, ListSize: 60})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(h.Dir(), MediaPlaylist))
		if strings.Count(string(b), ".ts") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no HLS segments after 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	interpreter := playSlate(t)
	p.Select(Selection{Main: src.cam, Interpreter: interpreter, Audio: []Source{src.mic}})
	time.Sleep(4*time.Second + delay)
	h.Stop()
	waitPlaylistEnded(t, filepath.Join(h.Dir(), MediaPlaylist))
	playlist := filepath.Join(h.Dir(), Playlist)

	checkInsetArrives(t, cornerColours(t, playlist, 640, 360))
}

// waitPlaylistEnded waits for ffmpeg to end the HLS playlist after Stop.
func waitPlaylistEnded(t *testing.T, playlist string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(playlist)
		if strings.Contains(string(b), "#EXT-X-ENDLIST") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the playlist was not ended:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// slateBlue tells the interpreter slate's colour, 0x1d3557, after a lossy encoding or two.
func slateBlue(c [3]int) bool {
	return abs(c[0]-0x1d) < 20 && abs(c[1]-0x35) < 20 && abs(c[2]-0x57) < 20
}

// checkInsetArrives wants the bottom-right corner (two pictures a second) to turn the slate's
// blue when the interpreter comes on air, after the second picture, and to stay so.
func checkInsetArrives(t *testing.T, cs [][3]int) {
	t.Helper()
	t.Logf("corner colour at 2 per second: %v", cs)
	first := slices.IndexFunc(cs, slateBlue)
	if first < 2 {
		t.Fatalf("the corner is the interpreter's blue from picture %d, want it from the interpreter's arrival (after picture 2)", first)
	}
	if n := len(cs) - first; n < 4 || !slices.ContainsFunc(cs[:first], func(c [3]int) bool { return !slateBlue(c) }) {
		t.Errorf("%d pictures with the interpreter inset, want at least 4 and a different corner before", n)
	}
	for i, c := range cs[first:] {
		if !slateBlue(c) {
			t.Errorf("picture %d: the corner is %v once the interpreter is on, want the interpreter's blue", first+i, c)
		}
	}
}

func abs(x int) int { return max(x, -x) }
