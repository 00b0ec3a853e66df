package broadcast

import (
	"context"
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

	"github.com/ingeco/hemicycle/test/media"
)

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
	media.NeedFFmpeg(t)
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

	// The bleep lasts what the clock gave it (a loaded machine oversleeps), in 100 ms windows.
	want := int(bleep.To.Sub(bleep.From) / (100 * time.Millisecond))
	media.CheckBleepRun(t, "recording", media.Pitches(media.PCM(t, file), media.Window), want-2, want+2, 20)

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

// TestRecordingPartsAreWhatFFmpegWrote: an ffmpeg that fails before writing anything (as one
// that cannot bind its ports does) leaves no part, and the next run takes the recording's
// name; one that dies after writing leaves its part, and the next run writes "-part2".
func TestRecordingPartsAreWhatFFmpegWrote(t *testing.T) {
	media.NeedFFmpeg(t)
	cases := []struct {
		name  string
		first string // what the first ffmpeg run does instead of running to the end
		// How long to record: the failure, the restart's wait (2 s) and a second run long
		// enough to write (ffmpeg probes 2 s, then buffers).
		record time.Duration
		parts  []string
	}{
		{"failed before writing", `echo "bind failed: Address already in use" >&2; exit 1`, 7 * time.Second, []string{".webm"}},
		// ffmpeg buffers its first seconds: it is killed once its file holds something.
		{"killed after writing", `"$ffmpeg" "$@" & pid=$!; for out; do :; done; n=0
  while [ ! -s "$out" ] && [ $n -lt 100 ]; do sleep 0.2; n=$((n+1)); done
  kill -9 $pid; exit 1`, 16 * time.Second, []string{".webm", "-part2.webm"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, _ := airClips(t, "salle", Config{Delay: 500 * time.Millisecond, KeyframeInterval: time.Second, Logger: testLog()})
			dir := t.TempDir()
			ffmpeg, _ := media.FFmpegFirstRun(t, c.first)
			rec, err := p.Record(RecordingConfig{Dir: dir, CopyVideo: true, FFmpeg: ffmpeg, BleepTitle: bleepTitle, ResumedTitleF: resumedTitleF, ResumedTitle: "Suite"})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(c.record)
			rec.Stop()
			files := rec.Files()
			if len(files) != len(c.parts) {
				t.Fatalf("recording files %v, want %d ending %v", files, len(c.parts), c.parts)
			}
			for i, f := range files {
				if !strings.HasSuffix(f, c.parts[i]) || (i == 0 && strings.Contains(f, "-part")) {
					t.Errorf("part %d is %s, want a name ending %s", i+1, f, c.parts[i])
				}
				checkStreams(t, f)
				if _, err := os.Stat(strings.TrimSuffix(f, ".webm") + ".vtt"); err != nil {
					t.Errorf("part %d has no chapters file: %v", i+1, err)
				}
			}
			// Nothing else was left in the folder: no empty part, no orphan chapters or captions file.
			left, err := filepath.Glob(filepath.Join(dir, "*"))
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 3*len(c.parts) {
				t.Errorf("the recording folder holds %v, want the %d parts with their chapters and captions", left, len(c.parts))
			}
		})
	}
}

// TestChaptersFollowTheFirstMediaFFmpegReceives records through an ffmpeg that starts 1.5 s
// late: what the programme sends before ffmpeg listens is lost, so the file begins later than
// the recorder, and the bleep's chapter must still start where its tone is heard in the file.
func TestChaptersFollowTheFirstMediaFFmpegReceives(t *testing.T) {
	media.NeedFFmpeg(t)
	const delay = 500 * time.Millisecond
	const lag = 1500 * time.Millisecond
	p, _ := airClips(t, "salle", Config{Delay: delay, KeyframeInterval: time.Second, Logger: testLog()})
	// A loaded machine's ffmpeg: it sleeps, then runs.
	ffmpeg, _ := media.FFmpegFirstRun(t, fmt.Sprintf(`sleep %.3f`, lag.Seconds()))
	rec, err := p.Record(RecordingConfig{Dir: t.TempDir(), FFmpeg: ffmpeg, BleepTitle: bleepTitle, ResumedTitleF: resumedTitleF, ResumedTitle: "Suite"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(lag + 2*time.Second)
	p.Bleep(true)
	time.Sleep(time.Second)
	p.Bleep(false)
	time.Sleep(time.Second + delay)
	file := stopOneFile(t, rec)
	cls := media.Pitches(media.PCM(t, file), media.Window)
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
	media.NeedFFmpeg(t)
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
			p.Select(Selection{Main: src.cam, Interpreter: interpreter, Audio: []Source{src.mic}})
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

// BenchmarkRecordingCPU measures the processor time the recording's ffmpeg takes for 20 s of a
// programme whose main camera sends 1280×720 at 30 fps (a moving pattern, harder than a council
// chamber), copied or re-encoded (at 360 lines, and 720), with no interpreter (the blank inset)
// or one sending 640×360 at 30 fps. Run it alone: go test -run '^$' -bench RecordingCPU -benchtime 1x ./broadcast/
func BenchmarkRecordingCPU(b *testing.B) {
	media.NeedFFmpeg(b)
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
				sel := Selection{Main: playVideo(b, main, time.Second/fps), Audio: []Source{src.mic}}
				if c.interpreter {
					sel.Interpreter = playVideo(b, interp, time.Second/fps)
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
func airClips(t *testing.T, room string, cfg Config) (*Programme, member) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p, err := New(ctx, nil, room, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	src := playClips(t)
	p.Select(Selection{Main: src.cam, Audio: []Source{src.mic}})
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
func checkStreams(t *testing.T, file string) media.Probe {
	t.Helper()
	pr := media.ProbeFile(t, file)
	if kinds := pr.Kinds(); kinds != "video/vp8,audio/opus" {
		t.Errorf("recording streams %v, want video/vp8 then audio/opus", kinds)
	}
	return pr
}

// TestRecordingReportsItsLife: a recording whose first ffmpeg fails once it has written some
// of its file tells its observer, in order: starting, active, restarting with ffmpeg's
// failure, active again, ending, complete. Every update names the same output; the last lists
// both files with their size on disk and the media time each holds.
func TestRecordingReportsItsLife(t *testing.T) {
	media.NeedFFmpeg(t)
	var mu sync.Mutex
	var updates []EgressUpdate
	got := func() []EgressUpdate {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(updates)
	}
	p, _ := airClips(t, "salle", Config{Delay: 200 * time.Millisecond, KeyframeInterval: time.Second, Logger: discard(),
		OnEgress: func(u EgressUpdate) {
			mu.Lock()
			updates = append(updates, u)
			mu.Unlock()
		}})
	ffmpeg, fail := media.FFmpegFirstRun(t, media.FailWhenTold)
	rec, err := p.Record(RecordingConfig{Dir: t.TempDir(), FFmpeg: ffmpeg, CopyVideo: true,
		BleepTitle: bleepTitle, ResumedTitleF: resumedTitleF, ResumedTitle: "Suite"})
	if err != nil {
		t.Fatal(err)
	}
	waitWritten(t, rec, 0)
	fail()
	eventually(t, "the recording active again after its ffmpeg failed", func() bool {
		us := got()
		return len(us) > 0 && us[len(us)-1].Status == EgressActive && us[len(us)-1].Restarts == 1
	})
	waitWritten(t, rec, 1)
	rec.Stop()

	us := got()
	var statuses []EgressStatus
	for _, u := range us {
		statuses = append(statuses, u.Status)
		if u.ID == "" || u.ID != us[0].ID || u.Kind != EgressRecording {
			t.Errorf("update %+v: want the recording's, with the first one's id %q", u, us[0].ID)
		}
	}
	want := []EgressStatus{EgressStarting, EgressActive, EgressRestarting, EgressActive, EgressEnding, EgressComplete}
	if !slices.Equal(statuses, want) {
		t.Fatalf("statuses %v, want %v", statuses, want)
	}
	if r := us[2]; !strings.Contains(r.Error, "ffmpeg exited") || r.Restarts != 1 {
		t.Errorf("restarting: error %q, restarts %d; want ffmpeg's failure, one restart", r.Error, r.Restarts)
	}
	if us[3].Error != "" || len(us[3].Files) != 2 {
		t.Errorf("active again: error %q, files %+v; want no error and the second file", us[3].Error, us[3].Files)
	}
	last := us[len(us)-1]
	if last.EndedAt.Before(last.StartedAt) || last.Error != "" {
		t.Errorf("complete: from %v to %v, error %q", last.StartedAt, last.EndedAt, last.Error)
	}
	if files := rec.Files(); len(last.Files) != 2 || last.Files[0].Path != files[0] || last.Files[1].Path != files[1] {
		t.Fatalf("files told %+v, recorded %v", last.Files, files)
	}
	for i, f := range last.Files {
		info, err := os.Stat(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		if f.Size <= 0 || f.Size != info.Size() {
			t.Errorf("file %d: size told %d, on disk %d", i+1, f.Size, info.Size())
		}
		if f.StartedAt.IsZero() || !f.EndedAt.After(f.StartedAt) || f.Duration != f.EndedAt.Sub(f.StartedAt) {
			t.Errorf("file %d: from %v to %v lasting %v", i+1, f.StartedAt, f.EndedAt, f.Duration)
		}
	}
	if first, second := last.Files[0], last.Files[1]; second.StartedAt.Before(first.EndedAt) {
		t.Errorf("the second file starts (%v) before the first ends (%v)", second.StartedAt, first.EndedAt)
	}
	for _, f := range last.Files {
		checkStreams(t, f.Path)
	}
}

// waitWritten waits until the recording's file i (from 0) holds some media on disk.
func waitWritten(t *testing.T, rec *Recording, i int) {
	t.Helper()
	eventually(t, fmt.Sprintf("media in the recording's file %d", i+1), func() bool {
		files := rec.Files()
		if len(files) <= i {
			return false
		}
		info, err := os.Stat(files[i])
		return err == nil && info.Size() > 0
	})
}

// eventually waits up to 40 s for cond, failing the test with what it waited for.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(40 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
