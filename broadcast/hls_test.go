package broadcast

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/sfu"
)

// oneRun checks that the pitch classes hold one run of 1 kHz of about want windows (a bleep),
// and enough 440 Hz around it.
func oneRun(t *testing.T, what string, cls []int, want int) {
	t.Helper()
	first, last, tone, low := -1, -1, 0, 0
	for i, c := range cls {
		switch c {
		case 1000:
			tone++
			if first < 0 {
				first = i
			}
			last = i
		case 440:
			low++
		}
	}
	t.Logf("%s pitch per 100 ms: %v", what, cls)
	if tone < want-2 || tone > want+3 || last-first+1 != tone {
		t.Errorf("%s: %d windows of 1 kHz (from %d to %d), want one run of about %d", what, tone, first, last, want)
	}
	if low < 15 {
		t.Errorf("%s: only %d windows of 440 Hz outside the bleep", what, low)
	}
}

// TestHLSAndRTMPCarryTheBleep transcodes a programme playing the clips to HLS and pushes it
// over RTMP to an ffmpeg listening on loopback (standing in for a streaming platform), with a
// one-second bleep: ffprobe must accept the playlist and the received stream (H.264 and AAC),
// and both must have the 1 kHz tone in place of the 440 Hz for that second.
func TestHLSAndRTMPCarryTheBleep(t *testing.T) {
	needFFmpeg(t)
	const delay = 500 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := New(ctx, nil, "hls room", Config{Delay: delay, Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	src := playClips(t)
	p.Select(Selection{Main: src.cam, Audio: []*sfu.PublishedTrack{src.mic}})

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
		b, _ := os.ReadFile(filepath.Join(h.Dir(), Playlist))
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

	playlist := filepath.Join(h.Dir(), Playlist)
	deadline = time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(playlist)
		if strings.Contains(string(b), "#EXT-X-ENDLIST") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the playlist was not ended:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for what, path := range map[string]string{"HLS": playlist, "RTMP": received} {
		pr := ffprobe(t, path)
		var kinds []string
		for _, s := range pr.Streams {
			kinds = append(kinds, s.CodecType+"/"+s.CodecName)
		}
		if got := strings.Join(kinds, ","); got != "video/h264,audio/aac" {
			t.Errorf("%s streams %s, want video/h264,audio/aac", what, got)
		}
		oneRun(t, what, pitches(pcm(t, path)), 10)
	}
}

func TestHLSFileNames(t *testing.T) {
	h := &HLS{dir: "/srv/hls/room"}
	for name, ok := range map[string]bool{
		"index.m3u8": true, "r0-000012.ts": true, "r3-000001.ts": true,
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
