package broadcast

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/test/media"
)

func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (scripts/test installs Debian's ffmpeg): %v", tool, err)
		}
	}
}

// source plays the test clips (440 Hz tone, VP8 pattern) into local tracks, as a member's
// microphone and camera would arrive, until stopped.
type source struct {
	cam, mic *sfu.PublishedTrack
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func playClips(t testing.TB) *source {
	t.Helper()
	opus, err := media.Opus()
	if err != nil {
		t.Fatal(err)
	}
	vp8, err := media.VP8()
	if err != nil {
		t.Fatal(err)
	}
	s := &source{}
	var camW, micW *sfu.LocalWriter
	s.cam, camW = localTrack(t, VideoCodec, "cam")
	s.mic, micW = localTrack(t, AudioCodec, "mic")
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		var sn uint16
		var ts uint32
		pace(ctx, len(opus), 20*time.Millisecond, func(i int) {
			_ = micW.WriteRTP(&rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: sn, Timestamp: ts}, opus[i].Data)
			sn++
			ts += 960
		})
	}()
	go func() {
		defer s.wg.Done()
		pay := &codecs.VP8Payloader{EnablePictureID: true}
		var sn uint16
		var ts uint32
		pace(ctx, len(vp8), vp8[0].Duration, func(i int) {
			pkts := pay.Payload(1200, vp8[i].Data)
			for j, p := range pkts {
				_ = camW.WriteRTP(&rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: sn, Timestamp: ts, Marker: j == len(pkts)-1}, p)
				sn++
			}
			ts += uint32(vp8[i].Duration.Seconds() * 90000)
		})
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *source) stop() {
	s.cancel()
	s.wg.Wait()
}

// pace calls f(i) for i = 0, 1, … n-1, 0, … every period until ctx ends.
func pace(ctx context.Context, n int, period time.Duration, f func(i int)) {
	next := time.Now()
	for i := 0; ; i = (i + 1) % n {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		f(i)
		next = next.Add(period)
	}
}

type probe struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		CodecType string `json:"codec_type"`
		Width     int    `json:"width"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, path string) probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", path).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("ffprobe refuses %s: %v %s", filepath.Base(path), err, msg)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// pcm decodes a file's audio to mono 48 kHz.
func pcm(t *testing.T, path string) []float64 {
	t.Helper()
	s, err := media.DecodePCM(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pitches classifies 100 ms windows: 440, 1000, 0 (silence) or -1.
func pitches(s []float64) []int { return media.Pitches(s, media.Window) }

// TestRecordingIsTheBleepedProgramme records a programme playing the clips, with a bleep and
// chapters: ffprobe must accept the file (VP8 and Opus), its audio must be 440 Hz with one
// stretch of 1 kHz about as long as the bleep, and the chapters file must list the marks at
// their place in the recording.
// The chapter titles a recording is given; signaling gives council.Labels' (its tests check those).
const bleepTitle, resumedTitleF = "Passage coupé (bip)", "%s (suite)"

// TestRecordingNeedsItsChapterTitles: broadcast has no words of its own for the chapters it adds.
func TestRecordingNeedsItsChapterTitles(t *testing.T) {
	p, err := New(t.Context(), nil, "conseil", Config{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Record(RecordingConfig{Dir: t.TempDir(), BleepTitle: bleepTitle}); err == nil || !strings.Contains(err.Error(), "ResumedTitleF") {
		t.Fatalf("a recording without its resumed-chapter titles: %v, want an error naming them", err)
	}
}

func TestRecordingIsTheBleepedProgramme(t *testing.T) {
	needFFmpeg(t)
	const delay = 500 * time.Millisecond
	p, _ := airClips(t, "salle du conseil", Config{Delay: delay, KeyframeInterval: time.Second, Logger: discard()})

	dir := t.TempDir()
	rec, err := p.Record(RecordingConfig{Dir: dir, BleepTitle: bleepTitle, ResumedTitleF: resumedTitleF, ResumedTitle: "Suite"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rec.SetChapters([]Chapter{
		{At: start.Add(-time.Minute), Title: "Ouverture de la séance"},
		{At: start.Add(1500 * time.Millisecond), Title: "Point 1 : budget <primitif>"},
	})
	time.Sleep(2500 * time.Millisecond)
	p.Bleep(true)
	time.Sleep(time.Second)
	bleep, _ := p.Bleep(false)
	time.Sleep(1500*time.Millisecond + delay)
	file := stopOneFile(t, rec)
	checkStreams(t, file)

	cls := pitches(pcm(t, file))
	var tone, low, other int
	first, last := -1, -1
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
		case -1:
			other++
		}
	}
	t.Logf("recording pitch per 100 ms: %v", cls)
	// The bleep lasts what the clock gave it (a loaded machine oversleeps), in 100 ms windows.
	want := int(bleep.To.Sub(bleep.From) / (100 * time.Millisecond))
	if tone < want-2 || tone > want+2 || last-first+1 != tone {
		t.Errorf("%d windows of 1 kHz (from %d to %d), want one run of about %d for a bleep of %s", tone, first, last, want, bleep.To.Sub(bleep.From))
	}
	if low < 20 {
		t.Errorf("only %d windows of 440 Hz outside the bleep", low)
	}

	vtt, err := os.ReadFile(strings.TrimSuffix(file, ".webm") + ".vtt")
	if err != nil {
		t.Fatal(err)
	}
	text := string(vtt)
	for _, want := range []string{"WEBVTT\n", "\n00:00:00.000 --> ", "Ouverture de la séance", "Point 1 : budget &lt;primitif&gt;", "Passage coupé (bip)", "Point 1 : budget &lt;primitif&gt; (suite)"} {
		if !strings.Contains(text, want) {
			t.Errorf("chapters lack %q:\n%s", want, text)
		}
	}
}

func TestChaptersVTT(t *testing.T) {
	origin := time.Date(2024, 1, 31, 18, 0, 0, 0, time.UTC)
	got := chaptersVTT([]Chapter{
		{At: origin.Add(-time.Hour), Title: "Ouverture"},
		{At: origin.Add(65 * time.Second), Title: "Point 2"},
		{At: origin.Add(65 * time.Second), Title: "Point 2 bis"},
		{At: origin.Add(2 * time.Hour), Title: "after the end"},
	}, origin, time.Hour+time.Second)
	want := "WEBVTT\n\nchapter-1\n00:00:00.000 --> 00:01:05.000\nOuverture\n\nchapter-2\n00:01:05.000 --> 01:00:01.000\nPoint 2 bis\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestRetentionDeletesOnlyExpiredRecordings(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	files := map[string]time.Duration{
		"old.webm":      40 * 24 * time.Hour,
		"old.vtt":       40 * 24 * time.Hour,
		"recent.webm":   2 * 24 * time.Hour,
		"old-notes.txt": 40 * 24 * time.Hour, // not ours to delete
	}
	for name, age := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := EnforceRetention(dir, 30*24*time.Hour, now, discard())
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Errorf("removed %v, want old.webm and old.vtt", removed)
	}
	for name, age := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		expired := age > 30*24*time.Hour && !strings.HasSuffix(name, ".txt")
		if expired != os.IsNotExist(err) {
			t.Errorf("%s: expired=%v but stat says %v", name, expired, err)
		}
	}
	if _, err := EnforceRetention(filepath.Join(dir, "missing"), time.Hour, now, discard()); err != nil {
		t.Errorf("a missing folder is not an error: %v", err)
	}
}

// slowFFmpeg is an ffmpeg that takes lag to start, as a loaded machine's does: a shell script
// that sleeps, then runs the real one.
func slowFFmpeg(t *testing.T, lag time.Duration) string {
	t.Helper()
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "slow-ffmpeg")
	script := fmt.Sprintf("#!/bin/sh\nsleep %.3f\nexec %q \"$@\"\n", lag.Seconds(), real)
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestChaptersFollowTheFirstMediaFFmpegReceives records through an ffmpeg that starts 1.5 s
// late: what the programme sends before ffmpeg listens is lost, so the file begins later than
// the recorder, and the bleep's chapter must still start where its tone is heard in the file.
func TestChaptersFollowTheFirstMediaFFmpegReceives(t *testing.T) {
	needFFmpeg(t)
	const delay = 500 * time.Millisecond
	const lag = 1500 * time.Millisecond
	p, _ := airClips(t, "salle", Config{Delay: delay, KeyframeInterval: time.Second, Logger: testLog()})
	rec, err := p.Record(RecordingConfig{Dir: t.TempDir(), FFmpeg: slowFFmpeg(t, lag), BleepTitle: bleepTitle, ResumedTitleF: resumedTitleF, ResumedTitle: "Suite"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(lag + 2*time.Second)
	p.Bleep(true)
	time.Sleep(time.Second)
	p.Bleep(false)
	time.Sleep(time.Second + delay)
	file := stopOneFile(t, rec)
	cls := pitches(pcm(t, file))
	t.Logf("recording pitch per 100 ms: %v", cls)
	first := slices.Index(cls, 1000)
	if first < 0 {
		t.Fatal("no bleep tone in the recording")
	}
	// Where the audio starts on the file's timeline: decoding to raw samples drops it.
	start, err := media.AudioStart(t.Context(), file)
	if err != nil {
		t.Fatal(err)
	}
	heard := start + time.Duration(first)*100*time.Millisecond
	vtt, err := os.ReadFile(strings.TrimSuffix(file, ".webm") + ".vtt")
	if err != nil {
		t.Fatal(err)
	}
	marked, ok := media.CueStart(string(vtt), "Passage coupé (bip)")
	if !ok {
		t.Fatalf("no chapter for the bleep:\n%s", vtt)
	}
	t.Logf("bleep chapter at %s, tone heard at %s", marked, heard)
	// The tone is found to within a 100 ms window and the chapter is stamped from the first
	// packet sent once ffmpeg listens; 0.5 s leaves room for a loaded machine's scheduling
	// while a chapter timed from before ffmpeg listened would be off by the whole lag.
	if d := marked - heard; d < -500*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("the bleep's chapter starts at %s in the recording, the tone at %s", marked, heard)
	}
}

func TestBoundUDPPortsSeesABoundSocket(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	bound, err := boundUDPPorts([]int{port})
	if errors.Is(err, errNoSocketTable) {
		t.Skip("this system shows no UDP socket table; the tap sends at once there")
	}
	if err != nil || !bound[port] {
		t.Fatalf("port %d bound by this test: %v %v", port, bound, err)
	}
	_ = conn.Close()
	if bound, err := boundUDPPorts([]int{port}); err != nil || bound[port] {
		t.Errorf("port %d closed but reported bound: %v %v", port, bound, err)
	}
}

// TestRecordingInsetsTheInterpreter records a programme whose main picture is the test pattern,
// first without an interpreter, then with one whose camera shows a flat dark blue. Re-encoding
// (the default), the recording's bottom-right corner must turn that blue once the interpreter is
// on air and not before, in a 640×360 VP8 picture ffprobe accepts; copying, the corner must
// never be that blue.
func TestRecordingInsetsTheInterpreter(t *testing.T) {
	needFFmpeg(t)
	for _, copyVideo := range []bool{false, true} {
		name := "inset"
		if copyVideo {
			name = "copy"
		}
		t.Run(name, func(t *testing.T) {
			const delay = 500 * time.Millisecond
			p, src := airClips(t, "salle", Config{Delay: delay, KeyframeInterval: time.Second, Logger: testLog()})
			rec, err := p.Record(RecordingConfig{Dir: t.TempDir(), CopyVideo: copyVideo, BleepTitle: bleepTitle, ResumedTitleF: resumedTitleF, ResumedTitle: "Suite"})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * time.Second)
			interpreter := playSlate(t)
			p.Select(Selection{Main: src.cam, Interpreter: interpreter, Audio: []*sfu.PublishedTrack{src.mic}})
			time.Sleep(4*time.Second + delay)
			file := stopOneFile(t, rec)
			pr := checkStreams(t, file)
			// Decoding scales every picture to the first one's size: the slate's 640×360 when
			// copying, the re-encoded size otherwise.
			cs := cornerColours(t, file, 640, 360)
			if copyVideo {
				if first := slices.IndexFunc(cs, slateBlue); first >= 0 {
					t.Errorf("copying, picture %d's corner is the interpreter's blue %v: nothing should be inset", first, cs[first])
				}
				return
			}
			if len(pr.Streams) > 0 && pr.Streams[0].Width != 640 {
				t.Errorf("re-encoded picture %d pixels wide, want 640", pr.Streams[0].Width)
			}
			checkInsetArrives(t, cs)
		})
	}
}

// cameraClip encodes a moving test pattern of w×h at fps, for 4 s, as a camera would send it
// (VP8, a keyframe every 2 s), and returns its frames.
func cameraClip(b *testing.B, w, h, fps, kbps int) [][]byte {
	b.Helper()
	path := filepath.Join(b.TempDir(), fmt.Sprintf("camera-%dx%d.ivf", w, h))
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
		"-i", fmt.Sprintf("testsrc2=s=%dx%d:r=%d", w, h, fps), "-t", "4",
		"-c:v", "libvpx", "-b:v", fmt.Sprintf("%dk", kbps), "-g", strconv.Itoa(2*fps),
		"-deadline", "realtime", "-cpu-used", "8", "-auto-alt-ref", "0", "-y", path).CombinedOutput()
	if err != nil {
		b.Fatalf("encode the camera clip: %v %s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	frames, err := ivfFrames(data)
	if err != nil {
		b.Fatal(err)
	}
	return frames
}

// playCamera plays frames in a loop into a local track at fps until the benchmark ends.
func playCamera(b *testing.B, frames [][]byte, fps int, id string) *sfu.PublishedTrack {
	b.Helper()
	track, w := localTrack(b, VideoCodec, id)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pay := &codecs.VP8Payloader{EnablePictureID: true}
		var sn uint16
		var ts uint32
		pace(ctx, len(frames), time.Second/time.Duration(fps), func(i int) {
			pkts := pay.Payload(1200, frames[i])
			for j, p := range pkts {
				_ = w.WriteRTP(&rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: sn, Timestamp: ts, Marker: j == len(pkts)-1}, p)
				sn++
			}
			ts += uint32(90000 / fps)
		})
	}()
	b.Cleanup(func() { cancel(); wg.Wait() })
	return track
}

// BenchmarkRecordingCPU measures the processor time the recording's ffmpeg takes for 20 s of a
// programme whose main camera sends 1280×720 at 30 fps (a moving pattern, harder than a council
// chamber), copied or re-encoded (at 360 lines, and 720), with no interpreter (the blank inset)
// or one sending 640×360 at 30 fps. Run it alone: go test -run '^$' -bench RecordingCPU -benchtime 1x ./broadcast/
func BenchmarkRecordingCPU(b *testing.B) {
	needFFmpeg(b)
	const fps = 30
	main := cameraClip(b, 1280, 720, fps, 1500)
	interp := cameraClip(b, 640, 360, fps, 600)
	for _, c := range []struct {
		name        string
		copyVideo   bool
		interpreter bool
		height      int
	}{
		{"copy", true, true, 0},
		{"inset-blank", false, false, 0},
		{"inset-interpreter", false, true, 0},
		{"inset-interpreter-720", false, true, 720},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				ctx, cancel := context.WithCancel(context.Background())
				p, err := New(ctx, nil, "salle", Config{Delay: 500 * time.Millisecond, Logger: discard()})
				if err != nil {
					b.Fatal(err)
				}
				src := playClips(b)
				sel := Selection{Main: playCamera(b, main, fps, "main-cam"), Audio: []*sfu.PublishedTrack{src.mic}}
				if c.interpreter {
					sel.Interpreter = playCamera(b, interp, fps, "interpreter-cam")
				}
				p.Select(sel)
				rc := RecordingConfig{Dir: b.TempDir(), CopyVideo: c.copyVideo, Height: c.height, BleepTitle: bleepTitle, ResumedTitleF: resumedTitleF, ResumedTitle: "Suite"}
				if c.height == 720 {
					rc.VideoBitrate = 1500
				}
				rec, err := p.Record(rc)
				if err != nil {
					b.Fatal(err)
				}
				time.Sleep(20 * time.Second)
				rec.Stop()
				p.Close()
				cancel()
				b.ReportMetric(time.Duration(rec.eg.cpu.Load()).Seconds(), "cpu-s/20s")
				if load, err := os.ReadFile("/proc/loadavg"); err == nil {
					b.Logf("load average after: %s", strings.TrimSpace(string(load)))
				}
			}
		})
	}
}

// airClips starts a programme for the room, with the test clips (camera and microphone) on
// air; it is closed when the test ends.
func airClips(t *testing.T, room string, cfg Config) (*Programme, *source) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p, err := New(ctx, nil, room, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	src := playClips(t)
	p.Select(Selection{Main: src.cam, Audio: []*sfu.PublishedTrack{src.mic}})
	return p, src
}

// stopOneFile stops a recording that must have made exactly one file, and returns it.
func stopOneFile(t *testing.T, rec *Recording) string {
	t.Helper()
	rec.Stop()
	files := rec.Files()
	if len(files) != 1 {
		t.Fatalf("recording files %v, want one", files)
	}
	return files[0]
}

// checkStreams checks with ffprobe that a recording holds VP8 video then Opus audio, and
// returns what ffprobe said.
func checkStreams(t *testing.T, file string) probe {
	t.Helper()
	pr := ffprobe(t, file)
	var kinds []string
	for _, s := range pr.Streams {
		kinds = append(kinds, s.CodecType+"/"+s.CodecName)
	}
	if strings.Join(kinds, ",") != "video/vp8,audio/opus" {
		t.Errorf("recording streams %v, want video/vp8 then audio/opus", kinds)
	}
	return pr
}
