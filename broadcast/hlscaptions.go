package broadcast

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HLS subtitles. ffmpeg writes the picture and sound (MediaPlaylist and its .ts segments); our
// code writes, beside them, the master playlist (Playlist) naming that stream and a subtitles
// rendition, the rendition's playlist (CaptionsPlaylist) and one WebVTT segment per video
// segment, as ffmpeg lists each: same name but .vtt, same duration, same sequence numbers and
// discontinuities. Go rather than ffmpeg, because the captions are not one of ffmpeg's inputs:
// feeding them in would need a timed subtitle stream kept in step with the RTP (and lost with
// each ffmpeg restart), while here each cue's time is known exactly: the caption is released
// with the media, and the segment's own PTS, read from its .ts file, places it.
//
// X-TIMESTAMP-MAP ties each WebVTT segment's clock to the MPEG-TS one: LOCAL 0 is the instant
// the run's first packet went to ffmpeg (the run's time 0, as for the recording's chapters),
// MPEGTS the PTS that instant got, the smallest in the run's first segment.

// Names of the files our code writes in the room's HLS folder.
const (
	// MediaPlaylist is ffmpeg's playlist of the picture and sound.
	MediaPlaylist = "video.m3u8"
	// CaptionsPlaylist is the subtitles rendition's playlist.
	CaptionsPlaylist = "captions.m3u8"
)

// captionsSync is how often ffmpeg's playlist is read for new segments: well within a segment.
const captionsSync = 200 * time.Millisecond

// hlsCaptions writes the subtitles rendition of one HLS output.
type hlsCaptions struct {
	dir    string
	delay  time.Duration
	master []byte
	log    *slog.Logger

	mu      sync.Mutex
	cues    []cue
	runs    map[int]*hlsRun // by attempt, as in the segments' names
	written map[string]bool // WebVTT segments on disk
	listed  bool            // the master playlist is written
	failing string          // the last failure logged, not repeated every sync

	stop chan struct{}
	done chan struct{}
}

// hlsRun is one ffmpeg run's clock.
type hlsRun struct {
	first time.Time // when its first packet went out: its time 0
	pts0  int64     // the PTS of its time 0; -1 until read
}

func newHLSCaptions(dir string, delay time.Duration, master []byte, log *slog.Logger) *hlsCaptions {
	c := &hlsCaptions{dir: dir, delay: delay, master: master, log: log,
		runs: map[int]*hlsRun{}, written: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// masterPlaylist names the programme's stream and its subtitles rendition.
func masterPlaylist(tc TranscodeConfig, lang, name string) []byte {
	if lang == "" {
		lang = "und"
	}
	if name == "" {
		name = lang
	}
	w, h := pictureSize(tc.Height)
	quote := strings.NewReplacer(`"`, "'", "\n", " ", "\r", " ")
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	// AUTOSELECT: a player whose user asked for captions in that language shows them.
	fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"captions\",NAME=\"%s\",LANGUAGE=\"%s\",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,CHARACTERISTICS=\"public.accessibility.transcribes-spoken-dialog\",URI=\"%s\"\n",
		quote.Replace(name), quote.Replace(lang), CaptionsPlaylist)
	// BANDWIDTH is the peak: the encoder's maxrate and the audio.
	fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,RESOLUTION=%dx%d,FRAME-RATE=%d,SUBTITLES=\"captions\"\n%s\n",
		(tc.VideoBitrate*3/2+tc.AudioBitrate)*1000, (tc.VideoBitrate+tc.AudioBitrate)*1000, w, h, tc.FrameRate, MediaPlaylist)
	return b.Bytes()
}

// starting notes that ffmpeg run attempt is starting: its clock is not known yet.
func (c *hlsCaptions) starting(attempt int) {
	c.mu.Lock()
	c.runs[attempt] = &hlsRun{pts0: -1}
	c.mu.Unlock()
}

// flowing notes when the newest run's first packet went out.
func (c *hlsCaptions) flowing(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	newest := -1
	for a := range c.runs {
		newest = max(newest, a)
	}
	if r := c.runs[newest]; r != nil && r.first.IsZero() {
		r.first = at
	}
}

// caption is the HLS output's caption sink.
func (c *hlsCaptions) caption(k cue) {
	c.mu.Lock()
	c.cues = append(c.cues, k)
	c.mu.Unlock()
}

func (c *hlsCaptions) run() {
	defer close(c.done)
	t := time.NewTicker(captionsSync)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			c.sync() // ffmpeg has ended its playlist: end ours
			return
		case <-t.C:
			c.sync()
		}
	}
}

// finish writes the rendition's end once ffmpeg has finished, and stops.
func (c *hlsCaptions) finish() {
	close(c.stop)
	<-c.done
}

// hlsEntry is one segment of ffmpeg's playlist.
type hlsEntry struct {
	tags     []string // the lines before it (#EXTINF, #EXT-X-DISCONTINUITY, ...)
	name     string
	duration time.Duration
}

var segmentRun = regexp.MustCompile(`^r([0-9]+)-([0-9]+)\.ts$`)

// sync writes a WebVTT segment for each video segment ffmpeg has listed since, then the
// rendition's playlist, and deletes the WebVTT segments whose video segment ffmpeg deleted.
func (c *hlsCaptions) sync() {
	data, err := os.ReadFile(filepath.Join(c.dir, MediaPlaylist))
	if err != nil {
		return // not written yet
	}
	header, entries, ended := parseMediaPlaylist(data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.listed {
		if err := writeFileAtomic(filepath.Join(c.dir, Playlist), c.master, 0o644); err != nil {
			c.log.Warn("HLS master playlist not written", "err", err)
			return
		}
		c.listed = true
	}
	var list bytes.Buffer
	list.WriteString(strings.Join(header, "\n") + "\n")
	listed := map[string]bool{}
	for _, e := range entries {
		vtt := strings.TrimSuffix(e.name, ".ts") + ".vtt"
		if !c.written[vtt] {
			if err := c.writeSegment(e, vtt); err != nil {
				if err.Error() != c.failing {
					c.failing = err.Error()
					c.log.Warn("HLS captions segment not written", "segment", vtt, "err", err)
				}
				break // the playlist must not name it; the next sync tries again
			}
			c.written[vtt] = true
		}
		listed[vtt] = true
		list.WriteString(strings.Join(e.tags, "\n") + "\n" + vtt + "\n")
	}
	if ended {
		list.WriteString("#EXT-X-ENDLIST\n")
	}
	if err := writeFileAtomic(filepath.Join(c.dir, CaptionsPlaylist), list.Bytes(), 0o644); err != nil {
		c.log.Warn("HLS captions playlist not written", "err", err)
	}
	for vtt := range c.written {
		if _, err := os.Stat(filepath.Join(c.dir, strings.TrimSuffix(vtt, ".vtt")+".ts")); !listed[vtt] && errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(filepath.Join(c.dir, vtt))
			delete(c.written, vtt)
		}
	}
	// Cues that ended before the oldest listed segment will not be written again.
	if len(entries) > 0 {
		oldest := time.Now().Add(-c.delay - time.Duration(len(entries)+2)*entries[0].duration - cueMax)
		c.cues = slices.DeleteFunc(c.cues, func(k cue) bool { return k.to.Before(oldest) })
	}
}

// writeSegment writes the WebVTT segment standing beside video segment e: the cues shown
// during it, on its run's clock. c.mu is held.
func (c *hlsCaptions) writeSegment(e hlsEntry, vtt string) error {
	m := segmentRun.FindStringSubmatch(e.name)
	if m == nil {
		return fmt.Errorf("segment %s is not named as the HLS output names them", e.name)
	}
	attempt, _ := strconv.Atoi(m[1])
	r := c.runs[attempt]
	if r == nil || r.first.IsZero() {
		return fmt.Errorf("segment %s: its run's start is not known", e.name)
	}
	pts, err := firstPTS(filepath.Join(c.dir, e.name))
	if err != nil {
		return err
	}
	if r.pts0 < 0 {
		if m[2] != strings.Repeat("0", len(m[2])) {
			return fmt.Errorf("segment %s: the run's first segment was not seen", e.name)
		}
		r.pts0 = pts
	}
	// The segment's time on the run's clock, and the room's time it shows.
	from := time.Duration((pts - r.pts0) * int64(time.Second) / 90000)
	origin := r.first.Add(-c.delay)
	var b strings.Builder
	fmt.Fprintf(&b, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:%d,LOCAL:00:00:00.000\n", r.pts0)
	for _, k := range c.cues {
		// Every cue shown during the segment, whole: players drop the repeats.
		kf, kt := k.from.Sub(origin), k.to.Sub(origin)
		if kt > from && kf < from+e.duration && kt > 0 {
			writeCue(&b, k, max(kf, 0), kt)
		}
	}
	return writeFileAtomic(filepath.Join(c.dir, vtt), []byte(b.String()), 0o644)
}

// parseMediaPlaylist splits ffmpeg's media playlist into its header (up to the first
// segment's tags), its segments and whether it has ended.
func parseMediaPlaylist(data []byte) (header []string, entries []hlsEntry, ended bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	var tags []string
	inHeader := true
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case line == "#EXT-X-ENDLIST":
			ended = true
		case strings.HasPrefix(line, "#EXTINF:") || strings.HasPrefix(line, "#EXT-X-DISCONTINUITY") && !strings.HasPrefix(line, "#EXT-X-DISCONTINUITY-SEQUENCE"):
			inHeader = false
			tags = append(tags, line)
		case strings.HasPrefix(line, "#"):
			if inHeader {
				header = append(header, line)
			} else {
				tags = append(tags, line)
			}
		default:
			e := hlsEntry{tags: tags, name: line}
			for _, t := range tags {
				if d, ok := strings.CutPrefix(t, "#EXTINF:"); ok {
					d, _, _ = strings.Cut(d, ",")
					if s, err := strconv.ParseFloat(d, 64); err == nil {
						e.duration = time.Duration(s * float64(time.Second))
					}
				}
			}
			entries = append(entries, e)
			tags = nil
		}
	}
	return header, entries, ended
}

// firstPTS is the smallest presentation time stamp (90 kHz) of the audio and video in the
// first packets of an MPEG-TS segment.
func firstPTS(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read segment: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 188*1024)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, fmt.Errorf("read segment %s: %w", filepath.Base(path), err)
	}
	best := int64(-1)
	for off := 0; off+188 <= n; off += 188 {
		pkt := buf[off : off+188]
		if pkt[0] != 0x47 || pkt[1]&0x40 == 0 { // sync byte; a PES starts here
			continue
		}
		payload := 4
		if pkt[3]&0x20 != 0 { // adaptation field
			payload += 1 + int(pkt[4])
		}
		if pkt[3]&0x10 == 0 || payload+14 > len(pkt) {
			continue
		}
		pes := pkt[payload:]
		audio, video := pes[3]&0xe0 == 0xc0, pes[3]&0xf0 == 0xe0
		if pes[0] != 0 || pes[1] != 0 || pes[2] != 1 || !(audio || video) || pes[7]&0x80 == 0 {
			continue
		}
		p := pes[9:14]
		pts := int64(p[0]>>1&0x07)<<30 | int64(p[1])<<22 | int64(p[2]>>1)<<15 | int64(p[3])<<7 | int64(p[4]>>1)
		if best < 0 || pts < best {
			best = pts
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("segment %s: no time stamp in its first packets", filepath.Base(path))
	}
	return best, nil
}
