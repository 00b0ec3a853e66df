package broadcast

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/auth"
	bc "github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/test/media"
)

// TestCaptionsInHLSAndTheRecording holds a room with HLS and recording on, the chair speaking
// (the 440 Hz tone) on camera. A captioner posts lines through the captions route: one just
// before the chair bleeps, one during the bleep, one (first as an interim version) just after.
// The HLS master playlist must list a French subtitles rendition that ffprobe reads as WebVTT,
// whose segments (fetched live, as a player does, then read by ffmpeg) hold the lines before and
// after the bleep and neither the bleeped one nor the interim text; the recording's captions
// file must hold the same, each cue starting within 0.5 s of where the line was sent on the
// file's timeline, measured against the bleep's tone in the file's own audio. The same offset
// is measured, and logged, on the HLS timeline (X-TIMESTAMP-MAP against the segments' PTS).
func TestCaptionsInHLSAndTheRecording(t *testing.T) {
	needFFmpeg(t)
	const delay = 2 * time.Second
	const room = "captions"
	recDir, hlsDir := t.TempDir(), t.TempDir()
	s := startServer(t, signaling.ProgrammeConfig{
		Broadcast: bc.Config{Delay: delay},
		Recording: &bc.RecordingConfig{Dir: recDir},
		HLS:       &bc.HLSConfig{Dir: hlsDir, ListSize: 60},
	})
	chairTok := s.Token(t, room, "anne", auth.RoleChair, 1)
	velo := s.Token(t, room, "velo", auth.RoleCaptioner, 0)
	chair := s.Join(t, room, "anne", auth.RoleChair, 1, nil)
	pub := publish(t, chair, true)

	base := s.HTTP.URL + "/live/" + room + "/"
	master := waitServed(t, base+bc.Playlist)
	if !strings.Contains(master, `TYPE=SUBTITLES`) || !strings.Contains(master, `LANGUAGE="fr"`) ||
		!strings.Contains(master, `NAME="Français"`) || !strings.Contains(master, `SUBTITLES="captions"`) {
		t.Errorf("the master playlist lists no French subtitles rendition for its stream:\n%s", master)
	}
	rendition := regexp.MustCompile(`TYPE=SUBTITLES[^\n]*URI="([^"]+)"`).FindStringSubmatch(master)
	if rendition == nil {
		t.Fatalf("no subtitles URI in the master playlist:\n%s", master)
	}
	// Let the recording and HLS run a few seconds before the first line.
	time.Sleep(3 * time.Second)

	caption := func(id, text string, final bool) time.Time {
		t.Helper()
		sent := time.Now()
		status, out := s.Call(t, "POST", "/api/rooms/"+room+"/captions", velo,
			map[string]any{"speaker": "anne", "segments": []map[string]any{{"id": id, "text": text, "final": final}}})
		if status != 200 {
			t.Fatalf("caption %q: %d %s", text, status, out)
		}
		return sent
	}
	bleep := func(on bool) bc.Bleep {
		t.Helper()
		var out struct {
			Bleep bc.Bleep `json:"bleep"`
		}
		if code := post(t, s, "/api/rooms/"+room+"/bleep", chairTok, map[string]bool{"on": on}, &out); code != 200 {
			t.Fatalf("bleep %v: status %d", on, code)
		}
		return out.Bleep
	}
	const before, bleeped, after, interim = "La séance est ouverte", "Un nom qui ne doit pas sortir", "La séance reprend", "La séance rep"
	sentBefore := caption("l1", before, true)
	b := bleep(true)
	time.Sleep(300 * time.Millisecond)
	caption("l2", bleeped, true)
	time.Sleep(time.Second)
	b = bleep(false)
	caption("l3", interim, false)
	sentAfter := caption("l3", after, true)
	time.Sleep(3 * time.Second)

	// A player's view: the rendition's playlist and segments, over HTTP, while live.
	var live string
	signalingtest.Eventually(t, "the line after the bleep in the HLS captions", 30*time.Second, func() bool {
		live = fetchCaptions(t, base+rendition[1])
		return strings.Contains(live, after)
	})
	checkCaptionTexts(t, "HLS (live)", live, before, after, bleeped, interim)

	pub.Stop()
	s.Signaling.Close() // the room closes: HLS ends its playlists, the recording its files

	// The HLS folder as ffmpeg and our code left it, ended.
	dir := filepath.Join(hlsDir, room)
	probe := media.ProbeFile(t, filepath.Join(dir, rendition[1]))
	if got := probe.Kinds(); got != "subtitle/webvtt" {
		t.Errorf("ffprobe reads the subtitles rendition as %q, want subtitle/webvtt", got)
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", filepath.Join(dir, rendition[1]), "-f", "webvtt", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg reading the subtitles rendition: %v", err)
	}
	checkCaptionTexts(t, "HLS (ffmpeg)", string(out), before, after, bleeped, interim)
	if got := media.ProbeFile(t, filepath.Join(dir, bc.Playlist)).Kinds(); !strings.HasPrefix(got, "video/h264,audio/aac") {
		t.Errorf("ffprobe reads the master playlist as %q, want the H.264 and AAC stream", got)
	}

	files, _ := filepath.Glob(filepath.Join(recDir, room+"-*.webm"))
	if len(files) != 1 {
		t.Fatalf("recordings %v, want one", files)
	}
	vttBytes, err := os.ReadFile(strings.TrimSuffix(files[0], ".webm") + ".fr.vtt")
	if err != nil {
		t.Fatal(err)
	}
	vtt := string(vttBytes)
	t.Logf("recording's captions:\n%s", vtt)
	checkCaptionTexts(t, "recording", vtt, before, after, bleeped, interim)
	if !strings.HasPrefix(vtt, "WEBVTT\n") || !strings.Contains(vtt, "<v ") {
		t.Errorf("the recording's captions are not WebVTT with the speaker's voice:\n%s", vtt)
	}

	// The file's timeline: the bleep's tone, where it is heard, places when things happened.
	cls := media.Pitches(media.PCM(t, files[0]), media.Window)
	start, err := media.AudioStart(t.Context(), files[0])
	if err != nil {
		t.Fatal(err)
	}
	toneFrom, toneTo := toneRun(t, "recording", cls)
	heardFrom := start + time.Duration(toneFrom)*100*time.Millisecond
	heardTo := start + time.Duration(toneTo)*100*time.Millisecond
	checkCueAt(t, "recording", vtt, before, heardFrom-b.From.Sub(sentBefore), 0)
	checkCueAt(t, "recording", vtt, after, heardTo+sentAfter.Sub(b.To), 0)

	// The HLS timeline, in MPEG-TS time: the cue's LOCAL time mapped by X-TIMESTAMP-MAP, the
	// tone where the AAC is heard from the audio's first PTS.
	hlsCls := media.Pitches(media.PCM(t, filepath.Join(dir, bc.MediaPlaylist)), media.Window)
	aStart, err := media.AudioStart(t.Context(), filepath.Join(dir, bc.MediaPlaylist))
	if err != nil {
		t.Fatal(err)
	}
	hFrom, hTo := toneRun(t, "HLS", hlsCls)
	segs := readCaptionSegments(t, dir, rendition[1])
	shift := timestampShift(t, segs)
	t.Logf("HLS: audio from %s, segments' time 0 at %s, tone from window %d to %d", aStart, shift, hFrom, hTo)
	checkCueAt(t, "HLS", segs, before, aStart+time.Duration(hFrom)*100*time.Millisecond-b.From.Sub(sentBefore), shift)
	checkCueAt(t, "HLS", segs, after, aStart+time.Duration(hTo)*100*time.Millisecond+sentAfter.Sub(b.To), shift)
}

// waitServed waits for a URL to answer 200 and returns its body.
func waitServed(t *testing.T, url string) string {
	t.Helper()
	var body string
	signalingtest.Eventually(t, url+" served", 40*time.Second, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	return body
}

// fetchCaptions downloads the WebVTT segments a live subtitles playlist names and returns them
// one after the other.
func fetchCaptions(t *testing.T, playlist string) string {
	t.Helper()
	root := playlist[:strings.LastIndex(playlist, "/")+1]
	var all strings.Builder
	for _, line := range strings.Split(waitServed(t, playlist), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			all.WriteString(waitServed(t, root+line))
		}
	}
	return all.String()
}

// readCaptionSegments reads from disk the WebVTT segments an ended subtitles playlist names.
func readCaptionSegments(t *testing.T, dir, playlist string) string {
	t.Helper()
	list, err := os.ReadFile(filepath.Join(dir, playlist))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(list), "#EXT-X-ENDLIST") {
		t.Errorf("the subtitles playlist was not ended:\n%s", list)
	}
	var all strings.Builder
	for _, line := range strings.Split(string(list), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			b, err := os.ReadFile(filepath.Join(dir, line))
			if err != nil {
				t.Fatal(err)
			}
			all.Write(b)
		}
	}
	return all.String()
}

// checkCaptionTexts wants the lines want in the captions and the ones left out absent.
func checkCaptionTexts(t *testing.T, what, vtt string, before, after, bleeped, interim string) {
	t.Helper()
	for _, want := range []string{before, after} {
		if !strings.Contains(vtt, want) {
			t.Errorf("%s captions lack %q:\n%s", what, want, vtt)
		}
	}
	if strings.Contains(vtt, bleeped) {
		t.Errorf("%s captions hold the line sent during the bleep:\n%s", what, vtt)
	}
	if strings.Contains(vtt, interim+"\n") {
		t.Errorf("%s captions hold the interim version of a line:\n%s", what, vtt)
	}
}

// toneRun finds the bleep's 1 kHz run in pitch classes: its first window and the first 440 Hz
// window after it.
func toneRun(t *testing.T, what string, cls []int) (from, to int) {
	t.Helper()
	from = slices.Index(cls, 1000)
	if from < 0 {
		t.Fatalf("%s: no bleep tone in the audio: %s", what, runs(cls))
	}
	to = slices.Index(cls[from:], 440)
	if to < 0 {
		t.Fatalf("%s: the tone never ends: %s", what, runs(cls))
	}
	return from, from + to
}

// checkCueAt wants the cue of text, said by anne, to start within 0.5 s of want on the timeline; shift is
// added to the cue's time first (an HLS segment's mapping to MPEG-TS time).
func checkCueAt(t *testing.T, what, vtt, text string, want, shift time.Duration) {
	t.Helper()
	at, ok := media.CueStart(vtt, "<v anne>"+text) // in the speaker's voice (anne joined without a name)
	if !ok {
		t.Errorf("%s: no cue for %q", what, text)
		return
	}
	at += shift
	t.Logf("%s: cue %q at %s, the line was sent at %s: off by %s", what, text, at, want, (at - want).Round(time.Millisecond))
	if d := at - want; d < -500*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("%s: the cue %q starts at %s, the line was sent at %s on the same timeline", what, text, at, want)
	}
}

// timestampShift reads the segments' X-TIMESTAMP-MAP (LOCAL 0 as written): the MPEG-TS time of
// their time 0. Every segment of one run must give the same.
func timestampShift(t *testing.T, vtt string) time.Duration {
	t.Helper()
	maps := regexp.MustCompile(`X-TIMESTAMP-MAP=MPEGTS:([0-9]+),LOCAL:00:00:00\.000`).FindAllStringSubmatch(vtt, -1)
	if len(maps) == 0 {
		t.Fatalf("no X-TIMESTAMP-MAP in the HLS captions:\n%s", vtt)
	}
	for _, m := range maps[1:] {
		if m[1] != maps[0][1] {
			t.Errorf("segments map to MPEG-TS %s and %s", maps[0][1], m[1])
		}
	}
	pts, _ := strconv.ParseInt(maps[0][1], 10, 64)
	return time.Duration(pts) * time.Second / 90000
}
