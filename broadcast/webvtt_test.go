package broadcast

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/test/media"
)

// TestCaptionCues: a line stays up for its reading time, or from a speech engine's start to its
// end; an engine start far before the line is not believed; the speaker is a voice, escaped.
// In a recording's file a cue gives way to the next one and is cut at the file's ends.
func TestCaptionCues(t *testing.T) {
	at := time.Date(2024, 1, 31, 18, 0, 10, 0, time.UTC)
	short := cueOf(Caption{ID: "a", Speaker: "Anne <Maire>", Text: "Oui", At: at})
	if !short.from.Equal(at) || short.to.Sub(short.from) != cueMin || short.text != "<v Anne &lt;Maire&gt;>Oui" {
		t.Errorf("short line: %v to %v, %q; want %s from the line, the escaped voice", short.from, short.to, short.text, cueMin)
	}
	long := cueOf(Caption{Text: strings.Repeat("mot ", 100), At: at})
	if long.to.Sub(long.from) != cueMax || strings.HasPrefix(long.text, "<v") {
		t.Errorf("long line lasts %s (want %s), text %q", long.to.Sub(long.from), cueMax, long.text[:10])
	}
	spoken := cueOf(Caption{Text: "La séance est ouverte", At: at, Start: at.Add(-4 * time.Second), End: at.Add(-3 * time.Second)})
	if !spoken.from.Equal(at.Add(-4*time.Second)) || !spoken.to.Equal(at.Add(-4*time.Second+2260*time.Millisecond)) {
		t.Errorf("spoken line: %v to %v; want from the words' start for its reading time", spoken.from, spoken.to)
	}
	slow := cueOf(Caption{Text: "Oui", At: at, Start: at.Add(-time.Second), End: at.Add(2 * time.Second)})
	if !slow.to.Equal(at.Add(2 * time.Second)) {
		t.Errorf("words spoken until %v: the cue ends %v", at.Add(2*time.Second), slow.to)
	}
	if c := cueOf(Caption{Text: "Oui", At: at, Start: at.Add(-time.Minute)}); !c.from.Equal(at) {
		t.Errorf("an engine start a minute before the line moved the cue to %v", c.from)
	}

	origin := at.Add(-5 * time.Second)
	got := captionsVTT([]cue{
		{from: at.Add(-6 * time.Second), to: at.Add(-4 * time.Second), text: "avant"}, // starts before the file
		{from: at, to: at.Add(3 * time.Second), text: "un"},
		{from: at.Add(time.Second), to: at.Add(9 * time.Second), text: "deux"}, // past the end
		{from: at.Add(20 * time.Second), to: at.Add(21 * time.Second), text: "après"},
	}, origin, 12*time.Second)
	want := "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\navant\n\n00:00:05.000 --> 00:00:06.000\nun\n\n00:00:06.000 --> 00:00:12.000\ndeux\n"
	if got != want {
		t.Errorf("captions file\n%q\nwant\n%q", got, want)
	}
}

func TestParseMediaPlaylist(t *testing.T) {
	header, entries, ended := parseMediaPlaylist([]byte("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4\n" +
		"#EXTINF:2.000000,\nr0-000004.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.520000,\nr1-000000.ts\n#EXT-X-ENDLIST\n"))
	if strings.Join(header, "|") != "#EXTM3U|#EXT-X-VERSION:3|#EXT-X-TARGETDURATION:2|#EXT-X-MEDIA-SEQUENCE:4" || !ended || len(entries) != 2 {
		t.Fatalf("header %q, %d entries, ended %v", header, len(entries), ended)
	}
	if e := entries[1]; e.name != "r1-000000.ts" || e.duration != 1520*time.Millisecond || strings.Join(e.tags, "|") != "#EXT-X-DISCONTINUITY|#EXTINF:1.520000," {
		t.Errorf("second segment %+v", e)
	}
}

// TestHLSCaptionsFollowTheSegments transcodes a programme to HLS with short segments and a short
// list, and releases a caption every second: the subtitles playlist must name one WebVTT segment
// per video segment with the same sequence, durations and end, none left on disk once ffmpeg has
// deleted its video segment; each segment's X-TIMESTAMP-MAP must give the PTS ffprobe reads
// first in the run's first segment, and the captions must be in the segments.
func TestHLSCaptionsFollowTheSegments(t *testing.T) {
	media.NeedFFmpeg(t)
	const delay = 500 * time.Millisecond
	p, _ := airClips(t, "sous-titres", Config{Delay: delay, Logger: testLog(), CaptionsLanguage: "fr", CaptionsName: "Français"})
	h, err := p.StartHLS(HLSConfig{Dir: t.TempDir(), SegmentSeconds: 1, ListSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the master playlist, once ffmpeg has written its first segment", func() bool {
		_, err := os.Stat(filepath.Join(h.Dir(), Playlist))
		return err == nil
	})
	master, err := os.ReadFile(filepath.Join(h.Dir(), Playlist))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(master), `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="captions",NAME="Français",LANGUAGE="fr"`) ||
		!strings.Contains(string(master), "SUBTITLES=\"captions\"\n"+MediaPlaylist+"\n") {
		t.Errorf("master playlist:\n%s", master)
	}
	var firstTS []byte
	for i := range 8 {
		// The programme releases a line as signaling does: when the public gets it.
		time.Sleep(delay)
		p.Caption(Caption{ID: strconv.Itoa(i), Text: "ligne " + strconv.Itoa(i), At: time.Now().Add(-delay)})
		time.Sleep(time.Second - delay)
		if firstTS == nil {
			firstTS, _ = os.ReadFile(filepath.Join(h.Dir(), "r0-000000.ts"))
		}
	}
	time.Sleep(2 * time.Second)
	h.Stop()
	waitPlaylistEnded(t, filepath.Join(h.Dir(), MediaPlaylist))
	waitPlaylistEnded(t, filepath.Join(h.Dir(), CaptionsPlaylist))

	video, _ := os.ReadFile(filepath.Join(h.Dir(), MediaPlaylist))
	subs, _ := os.ReadFile(filepath.Join(h.Dir(), CaptionsPlaylist))
	if want := strings.ReplaceAll(string(video), ".ts\n", ".vtt\n"); string(subs) != want {
		t.Errorf("subtitles playlist\n%s\nwant the video's with .vtt segments\n%s", subs, want)
	}
	onDisk, _ := filepath.Glob(filepath.Join(h.Dir(), "*.vtt"))
	if listed := strings.Count(string(subs), ".vtt"); len(onDisk) < listed || len(onDisk) > listed+2 {
		t.Errorf("%d WebVTT segments on disk for %d listed (ffmpeg keeps one deleted segment): %v", len(onDisk), listed, onDisk)
	}
	var all strings.Builder
	for _, f := range onDisk {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	if !strings.Contains(all.String(), "ligne 7") {
		t.Errorf("the last line is in no segment:\n%s", all.String())
	}

	// The map's PTS is the run's first one, as ffprobe reads the first segment.
	if firstTS == nil {
		t.Fatal("the first segment was never seen")
	}
	path := filepath.Join(t.TempDir(), "first.ts")
	if err := os.WriteFile(path, firstTS, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=pts", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	lowest := int64(-1)
	for _, f := range strings.Fields(string(out)) {
		if v, err := strconv.ParseInt(strings.TrimSuffix(f, ","), 10, 64); err == nil && (lowest < 0 || v < lowest) {
			lowest = v
		}
	}
	m := regexp.MustCompile(`X-TIMESTAMP-MAP=MPEGTS:([0-9]+),`).FindStringSubmatch(all.String())
	if m == nil || m[1] != strconv.FormatInt(lowest, 10) {
		t.Errorf("segments map LOCAL 0 to %v, ffprobe's first PTS is %d", m, lowest)
	}
}

// TestHLSCaptionsAcrossARestart: when ffmpeg fails and a new run starts (segments r1-…, a
// discontinuity), the subtitles follow the new run's playlist, and its WebVTT segments map to
// the new run's first PTS; the line released before the failure stays in the old run's segment.
func TestHLSCaptionsAcrossARestart(t *testing.T) {
	media.NeedFFmpeg(t)
	const delay = 500 * time.Millisecond
	p, _ := airClips(t, "reprise", Config{Delay: delay, Logger: testLog()})
	ffmpeg, fail := media.FFmpegFirstRun(t, media.FailWhenTold)
	h, err := p.StartHLS(HLSConfig{TranscodeConfig: TranscodeConfig{FFmpeg: ffmpeg}, Dir: t.TempDir(), SegmentSeconds: 1, ListSize: 30})
	if err != nil {
		t.Fatal(err)
	}
	segments := func(prefix string) int {
		b, _ := os.ReadFile(filepath.Join(h.Dir(), CaptionsPlaylist))
		return strings.Count(string(b), "\n"+prefix)
	}
	read := func(glob string) string {
		names, _ := filepath.Glob(filepath.Join(h.Dir(), glob))
		var b strings.Builder
		for _, n := range names {
			data, _ := os.ReadFile(n)
			b.Write(data)
		}
		return b.String()
	}
	eventually(t, "the first run's subtitles", func() bool { return segments("r0-") >= 1 })
	p.Caption(Caption{ID: "1", Text: "avant la panne", At: time.Now().Add(-delay)})
	// However slowly a loaded machine's ffmpeg writes its segments, the line is in one of them.
	eventually(t, "the line in the first run's subtitles", func() bool { return strings.Contains(read("r0-*.vtt"), "avant la panne") })
	fail()
	eventually(t, "the second run's subtitles", func() bool { return segments("r1-") >= 1 })
	p.Caption(Caption{ID: "2", Text: "après la panne", At: time.Now().Add(-delay)})
	eventually(t, "the line in the second run's subtitles", func() bool { return strings.Contains(read("r1-*.vtt"), "après la panne") })
	h.Stop()
	waitPlaylistEnded(t, filepath.Join(h.Dir(), CaptionsPlaylist))

	video, _ := os.ReadFile(filepath.Join(h.Dir(), MediaPlaylist))
	subs, _ := os.ReadFile(filepath.Join(h.Dir(), CaptionsPlaylist))
	if want := strings.ReplaceAll(string(video), ".ts\n", ".vtt\n"); string(subs) != want || !strings.Contains(string(subs), "#EXT-X-DISCONTINUITY") {
		t.Errorf("subtitles playlist\n%s\nwant the video's, with its discontinuity and .vtt segments\n%s", subs, video)
	}
	before, after := read("r0-*.vtt"), read("r1-*.vtt")
	if !strings.Contains(before, "avant la panne") || strings.Contains(before, "après la panne") {
		t.Errorf("the first run's subtitles:\n%s", before)
	}
	if !strings.Contains(after, "après la panne") {
		t.Errorf("the second run's subtitles lack the line sent during it:\n%s", after)
	}
	pts, err := firstPTS(filepath.Join(h.Dir(), "r1-000000.ts"))
	if err != nil {
		t.Fatal(err)
	}
	maps := regexp.MustCompile(`X-TIMESTAMP-MAP=MPEGTS:([0-9]+),`).FindAllStringSubmatch(after, -1)
	for _, m := range maps {
		if m[1] != strconv.FormatInt(pts, 10) {
			t.Errorf("a second-run segment maps LOCAL 0 to %s, the run's first PTS is %d", m[1], pts)
		}
	}
}
