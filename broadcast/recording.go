package broadcast

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RecordingConfig sets up the recording of the programme.
type RecordingConfig struct {
	// Dir is the folder of the recordings; it is created if needed.
	Dir string
	// FFmpeg is the ffmpeg program ("ffmpeg" from PATH when empty).
	FFmpeg string
	// BleepTitle names a bleeped passage in the chapters; ResumedTitleF (a format taking the
	// interrupted chapter's title) names what follows it, ResumedTitle when no chapter came
	// before. All three are required: broadcast knows no language, the caller's words do
	// (signaling gives council.Labels').
	BleepTitle, ResumedTitleF, ResumedTitle string
	// CopyVideo keeps the cameras' VP8 as the programme sends it, without the sign-language
	// interpreter: no video decoding or encoding at all. By default the picture is re-encoded
	// (VP8, libvpx) with the interpreter inset bottom-right as on HLS and RTMP, so that deaf
	// citizens can follow the archive; that costs an encoder per recorded room (README).
	CopyVideo bool
	// Height of the re-encoded picture (360 when 0); the width follows at 16:9, each camera
	// letterboxed. FrameRate of it (25 when 0), VideoBitrate in kb/s (600 when 0, suited to
	// 360 lines: raise it with the height). Unused with CopyVideo.
	Height, FrameRate, VideoBitrate int
}

func (c RecordingConfig) withDefaults() RecordingConfig {
	SetDefault(&c.FFmpeg, "ffmpeg")
	SetDefault(&c.Height, 360)
	SetDefault(&c.FrameRate, 25)
	SetDefault(&c.VideoBitrate, 600)
	return c
}

// recordingKeyEvery spaces the re-encoded picture's keyframes, in seconds: where a player can
// seek to in the archive.
const recordingKeyEvery = 4

// recordingArgs are ffmpeg's arguments writing the recording of the SDP's streams to path.
// Copying, the SDP holds the picture then audioTracks audio tracks; re-encoding, the picture,
// the interpreter, then the audio tracks.
func recordingArgs(c RecordingConfig, sdp, path string, audioTracks int) []string {
	args := []string{
		"-hide_banner", "-nostats", "-nostdin", "-loglevel", "warning",
		// Probe at most 2 s of media: the SDP gives every parameter but the picture size,
		// which the first keyframe gives (the slate's are 200 ms apart, cameras' 2 s).
		"-analyzeduration", "2000000",
		"-protocol_whitelist", "file,udp,rtp", "-i", sdp,
	}
	if c.CopyVideo {
		args = append(args,
			"-filter_complex", audioMix(audioTracks),
			"-map", "0:v:0", "-map", "[mix]",
			"-c:v", "copy")
	} else {
		w, h := pictureSize(c.Height)
		args = append(args,
			"-filter_complex", programmePicture(w, h, c.FrameRate, "pic")+";"+audioMix(audioTracks),
			"-map", "[pic]", "-map", "[mix]",
			// libvpx's fastest real-time setting, on one thread: re-encoding a 720p camera to
			// 360 lines on a 2-vCPU server, 16 rather than 8 took a quarter less processor time
			// for 0.003 less SSIM, and one thread rather than two a quarter less again
			// (BenchmarkRecordingCPU measures the whole recording). No alternate reference
			// frames: they need look-ahead.
			"-c:v", "libvpx", "-threads", "1", "-deadline", "realtime", "-cpu-used", "16", "-auto-alt-ref", "0",
			"-b:v", fmt.Sprintf("%dk", c.VideoBitrate), "-pix_fmt", "yuv420p",
			"-g", strconv.Itoa(c.FrameRate*recordingKeyEvery))
	}
	return append(args,
		"-c:a", "libopus", "-b:a", "64k",
		"-f", "webm", "-y", path)
}

// Chapter is a mark in the session (an item opened, a vote, its result), at the time it
// happened in the room: the recording shows it the programme's delay later.
type Chapter struct {
	At    time.Time
	Title string
}

// Recording writes the programme, as the public gets it (delayed, bleeped), to a WebM file per
// ffmpeg run (VP8 with the interpreter inset, or the cameras' VP8 copied; the audio tracks
// mixed into one Opus track), with a WebVTT chapters file and a WebVTT captions file beside each.
type Recording struct {
	prog *Programme
	cfg  RecordingConfig
	base string // path without extension
	log  *slog.Logger
	stop context.CancelFunc
	eg   *egress

	finished chan struct{} // closed once the files are complete

	mu       sync.Mutex
	parts    []recordingPart
	chapters []Chapter
	cues     []cue // the captions released while recording (webvtt.go)
	ended    time.Time
}

type recordingPart struct {
	path    string
	started time.Time // when its first packet went to ffmpeg: the file's time 0
	ran     time.Time // when its ffmpeg started
	exited  time.Time // when its ffmpeg ended
}

// Record starts recording the programme until it stops (or StopRecording). The file names
// are the room's name and the start time: room-20240131-183000.webm, then -part2 … after an
// ffmpeg failure (one that wrote nothing leaves no part).
func (p *Programme) Record(cfg RecordingConfig) (*Recording, error) {
	if cfg.Dir == "" {
		return nil, errors.New("broadcast: recording: no folder configured")
	}
	if cfg.BleepTitle == "" || cfg.ResumedTitleF == "" || cfg.ResumedTitle == "" {
		return nil, errors.New("broadcast: recording: the chapter titles BleepTitle, ResumedTitleF and ResumedTitle are required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("broadcast: recording folder %s: %w", cfg.Dir, err)
	}
	cfg = cfg.withDefaults()
	r := &Recording{
		prog: p,
		cfg:  cfg,
		base: filepath.Join(cfg.Dir, safeName(p.room)+"-"+time.Now().Format("20060102-150405")),
		log:  p.log,

		finished: make(chan struct{}),
	}
	var outputs []Output
	for _, o := range p.Outputs() {
		// Copying, the interpreter has nowhere to go: it would need compositing.
		if !cfg.CopyVideo || o.Name != TrackInterpreter {
			outputs = append(outputs, o)
		}
	}
	audioTracks := len(outputs) - 1
	if !cfg.CopyVideo {
		audioTracks--
	}
	r.eg = &egress{
		name:    "recording",
		kind:    EgressRecording,
		outputs: outputs,
		ffmpeg:  cfg.FFmpeg,
		files:   r.egressFiles,
		firstPacket: func(at time.Time) {
			r.mu.Lock()
			if n := len(r.parts); n > 0 && r.parts[n-1].started.IsZero() {
				r.parts[n-1].started = at
			}
			r.mu.Unlock()
		},
		exited: func(at time.Time) {
			r.mu.Lock()
			if n := len(r.parts); n > 0 {
				r.parts[n-1].exited = at
			}
			r.mu.Unlock()
		},
		args: func(sdp string, _ int) ([]string, error) {
			r.mu.Lock()
			r.dropUnwrittenPartLocked()
			path := r.base + ".webm"
			if n := len(r.parts); n > 0 {
				path = fmt.Sprintf("%s-part%d.webm", r.base, n+1)
			}
			r.parts = append(r.parts, recordingPart{path: path, ran: time.Now()})
			r.mu.Unlock()
			r.writeChapters()
			r.writeCaptions(false)
			return recordingArgs(cfg, sdp, path, audioTracks), nil
		},
	}
	removeCaptions := p.captions.add(r.caption)
	// The recording lives as long as the programme unless stopped sooner.
	r.stop = p.startEgress(r.eg, func() {
		removeCaptions()
		r.mu.Lock()
		r.ended = time.Now()
		r.dropUnwrittenPartLocked()
		r.mu.Unlock()
		r.writeChapters()
		r.writeCaptions(false)
		r.log.Info("recording ended", "files", r.Files())
		close(r.finished)
	})
	p.log.Info("recording started", "file", r.base+".webm", "interpreter", !cfg.CopyVideo)
	return r, nil
}

// dropUnwrittenPartLocked forgets the last part if its ffmpeg wrote nothing (it could not bind
// its ports, say): the next run takes its name, and a clerk is not handed an empty part. Called
// with r.mu held.
func (r *Recording) dropUnwrittenPartLocked() {
	n := len(r.parts)
	if n == 0 {
		return
	}
	last := r.parts[n-1]
	if st, err := os.Stat(last.path); err == nil && st.Size() > 0 {
		return
	}
	r.log.Warn("recording part left out: its ffmpeg wrote nothing", "file", last.path)
	_ = os.Remove(last.path)
	_ = os.Remove(strings.TrimSuffix(last.path, ".webm") + ".vtt")
	_ = os.Remove(r.captionsPath(last.path))
	r.parts = r.parts[:n-1]
}

// Stop ends the recording and waits until its files are complete.
func (r *Recording) Stop() {
	r.stop()
	<-r.finished
}

// Files lists the recording's files (one per ffmpeg run), oldest first.
func (r *Recording) Files() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, p := range r.parts {
		out = append(out, p.path)
	}
	return out
}

// egressFiles describes the recording's files for its updates, with their size now.
func (r *Recording) egressFiles() []EgressFile {
	r.mu.Lock()
	parts := slices.Clone(r.parts)
	r.mu.Unlock()
	files := make([]EgressFile, 0, len(parts))
	for _, p := range parts {
		f := EgressFile{Path: p.path, StartedAt: p.started, EndedAt: p.exited}
		if !p.started.IsZero() {
			end := p.exited
			if end.IsZero() {
				end = time.Now()
			}
			f.Duration = end.Sub(p.started)
		}
		if info, err := os.Stat(p.path); err == nil {
			f.Size = info.Size()
		}
		files = append(files, f)
	}
	return files
}

// SetChapters replaces the chapter marks (the whole list, as folded from the journal) and
// rewrites the chapters files.
func (r *Recording) SetChapters(chapters []Chapter) {
	r.mu.Lock()
	r.chapters = slices.Clone(chapters)
	r.mu.Unlock()
	r.writeChapters()
}

// writeChapters writes one WebVTT chapters file per part, beside its WebM file.
func (r *Recording) writeChapters() {
	r.mu.Lock()
	parts := slices.Clone(r.parts)
	marks := slices.Clone(r.chapters)
	ended := r.ended
	r.mu.Unlock()
	marks = append(marks, r.bleepMarks(marks)...)
	slices.SortStableFunc(marks, func(a, b Chapter) int { return a.At.Compare(b.At) })
	for i, part := range parts {
		start := part.started
		if start.IsZero() {
			start = part.ran // nothing sent yet
		}
		end := ended
		if i+1 < len(parts) {
			end = parts[i+1].ran
		}
		if end.IsZero() {
			end = time.Now()
		}
		// The file's time 0 shows what the room did the delay before it was sent.
		vtt := chaptersVTT(marks, start.Add(-r.prog.cfg.Delay), end.Sub(start))
		path := strings.TrimSuffix(part.path, ".webm") + ".vtt"
		if err := os.WriteFile(path, []byte(vtt), 0o640); err != nil {
			r.log.Warn("chapters not written", "file", path, "err", err)
		}
	}
}

// bleepMarks turns the bleeps into chapters: the bleeped passage, then the chapter it
// interrupted, continued.
func (r *Recording) bleepMarks(marks []Chapter) []Chapter {
	var out []Chapter
	for _, b := range r.prog.Bleeps() {
		out = append(out, Chapter{At: b.From, Title: r.cfg.BleepTitle})
		if b.To.IsZero() {
			continue
		}
		resumed := ""
		for _, m := range marks {
			if !m.At.After(b.From) {
				resumed = m.Title
			}
		}
		if resumed != "" {
			out = append(out, Chapter{At: b.To, Title: fmt.Sprintf(r.cfg.ResumedTitleF, resumed)})
		} else {
			out = append(out, Chapter{At: b.To, Title: r.cfg.ResumedTitle})
		}
	}
	return out
}

// chaptersVTT writes marks as WebVTT chapter cues for a file whose time 0 shows what happened
// in the room at origin and which lasts length. A mark before the file starts opens it.
func chaptersVTT(marks []Chapter, origin time.Time, length time.Duration) string {
	type cue struct {
		from  time.Duration
		title string
	}
	var cues []cue
	for _, m := range marks {
		off := max(m.At.Sub(origin), 0)
		if off >= length {
			break
		}
		if len(cues) > 0 && cues[len(cues)-1].from == off {
			cues[len(cues)-1].title = m.Title // the later mark at the same time wins
			continue
		}
		cues = append(cues, cue{off, m.Title})
	}
	var b strings.Builder
	b.WriteString("WEBVTT\n")
	for i, c := range cues {
		end := length
		if i+1 < len(cues) {
			end = cues[i+1].from
		}
		fmt.Fprintf(&b, "\nchapter-%d\n%s --> %s\n%s\n", i+1, vttTime(c.from), vttTime(end), vttText(c.title))
	}
	return b.String()
}

func vttTime(d time.Duration) string {
	ms := d.Milliseconds()
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}

// vttText escapes a title for a cue: one line, no markup.
func vttText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "-->", "--&gt;").Replace(s)
}

// safeName keeps a room name usable as a file name.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "room"
	}
	return b.String()
}

// Retention.

// recordingExts are the files retention may delete: recordings and their chapters, nothing
// else that an operator might keep in the folder.
var recordingExts = []string{".webm", ".vtt"}

// EnforceRetention deletes the recordings in dir last modified more than maxAge before now,
// logging each, and returns their paths.
func EnforceRetention(dir string, maxAge time.Duration, now time.Time, log *slog.Logger) ([]string, error) {
	if maxAge <= 0 {
		return nil, fmt.Errorf("retention of %s: the period must be positive", maxAge)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("retention: read %s: %w", dir, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !slices.Contains(recordingExts, filepath.Ext(e.Name())) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if now.Sub(info.ModTime()) <= maxAge {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err != nil {
			errs = append(errs, fmt.Errorf("retention: delete %s: %w", path, err))
			continue
		}
		log.Info("recording deleted: retention period over", "file", path, "modified", info.ModTime(), "retention", maxAge)
		removed = append(removed, path)
	}
	return removed, errors.Join(errs...)
}

// RunRetention enforces the retention period at once and then every interval (daily when
// 0), until ctx ends.
func RunRetention(ctx context.Context, dir string, maxAge, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = 24 * time.Hour
	}
	for {
		if _, err := EnforceRetention(dir, maxAge, time.Now(), log); err != nil {
			log.Error("retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
