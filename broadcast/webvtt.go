package broadcast

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Captions in the public outputs: the room's final caption lines, as the public gets them
// (held for the delay, never what was bleeped: signaling decides and calls Caption at that
// release), become WebVTT cues in HLS's subtitles rendition (hlscaptions.go) and in a captions
// file beside each recording part. Interim lines never reach these outputs: a file or a segment
// once written is not taken back.

// Caption is one final line of the captions.
type Caption struct {
	// ID is the line's segment id: a later version with the same id corrects it.
	ID string
	// Speaker is the name shown before the line (a WebVTT voice); empty for none.
	Speaker string
	Text    string
	// At is when the room had the line (the public sees it the delay later).
	At time.Time
	// Start and End, when not zero, are when the words were spoken (a speech engine tells
	// them): the cue then starts with the words rather than when the line was finished.
	Start, End time.Time
}

const (
	// cueLookBack bounds how far before At a speech engine's Start may put a cue: older
	// times are taken for an engine's clock error.
	cueLookBack = 15 * time.Second
	// A cue stays up for its reading time: a second plus 60 ms a character (about 16
	// characters a second, subtitlers' pace), within these bounds.
	cueMin, cueMax, cuePerRune = 1500 * time.Millisecond, 7 * time.Second, 60 * time.Millisecond
)

// cue is a caption placed on the room's clock.
type cue struct {
	id       string
	from, to time.Time
	text     string // WebVTT cue text, escaped, with the speaker's voice
}

func cueOf(c Caption) cue {
	from := c.At
	if !c.Start.IsZero() && !c.Start.After(c.At) && c.At.Sub(c.Start) <= cueLookBack {
		from = c.Start
	}
	reading := min(max(time.Second+cuePerRune*time.Duration(utf8.RuneCountInString(c.Text)), cueMin), cueMax)
	to := from.Add(reading)
	if c.End.After(to) && !c.End.After(c.At.Add(cueMax)) {
		to = c.End
	}
	text := vttText(c.Text)
	if name := strings.Join(strings.Fields(c.Speaker), " "); name != "" {
		// A voice span: players show (or announce) who speaks.
		text = "<v " + vttText(name) + ">" + text
	}
	return cue{id: c.ID, from: from, to: to, text: text}
}

// writeCue writes one cue whose times are given relative to the file's time 0.
func writeCue(b *strings.Builder, c cue, from, to time.Duration) {
	fmt.Fprintf(b, "\n%s --> %s\n%s\n", vttTime(from), vttTime(to), c.text)
}

// captionSinks are the outputs that take the programme's captions.
type captionSinks struct {
	mu    sync.Mutex
	next  int
	sinks map[int]func(cue)
}

// add registers a sink and returns the function that removes it.
func (s *captionSinks) add(f func(cue)) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sinks == nil {
		s.sinks = map[int]func(cue){}
	}
	id := s.next
	s.next++
	s.sinks[id] = f
	return func() {
		s.mu.Lock()
		delete(s.sinks, id)
		s.mu.Unlock()
	}
}

// Caption hands a released caption line to HLS and the recording. Call it when the public
// gets the line, in the order the lines were released.
func (p *Programme) Caption(c Caption) {
	if strings.TrimSpace(c.Text) == "" {
		return
	}
	k := cueOf(c)
	p.captions.mu.Lock()
	defer p.captions.mu.Unlock()
	for _, f := range p.captions.sinks {
		f(k)
	}
}

// TakesCaptions says whether an output (HLS, a recording) writes captions now: without one,
// the lines need not be held for the programme.
func (p *Programme) TakesCaptions() bool {
	p.captions.mu.Lock()
	defer p.captions.mu.Unlock()
	return len(p.captions.sinks) > 0
}

// Captions of the recording: one WebVTT file per part, rewritten as lines are released and
// once more when the part ends.

// captionsSuffix ends the name of a recording part's captions file: room-20240131-183000.fr.vtt
// for captions in French ("und" when the language is not known), beside the chapters'
// room-20240131-183000.vtt.
func (p *Programme) captionsSuffix() string {
	lang := p.cfg.CaptionsLanguage
	if lang == "" {
		lang = "und"
	}
	return "." + safeName(lang) + ".vtt"
}

// captionsPath is the captions file of the part at path.
func (r *Recording) captionsPath(part string) string {
	return strings.TrimSuffix(part, ".webm") + r.prog.captionsSuffix()
}

// caption is the recording's caption sink.
func (r *Recording) caption(c cue) {
	r.mu.Lock()
	if !r.ended.IsZero() {
		r.mu.Unlock()
		return
	}
	// A correction replaces its line where it was.
	if i := slices.IndexFunc(r.cues, func(k cue) bool { return k.id == c.id && c.id != "" }); i >= 0 {
		r.cues[i].text = c.text
	} else {
		r.cues = append(r.cues, c)
	}
	r.mu.Unlock()
	r.writeCaptions(true)
}

// writeCaptions writes the captions file of each part (only the last one when live: the
// others are finished).
func (r *Recording) writeCaptions(live bool) {
	r.mu.Lock()
	parts := slices.Clone(r.parts)
	cues := slices.Clone(r.cues)
	ended := r.ended
	r.mu.Unlock()
	slices.SortStableFunc(cues, func(a, b cue) int { return a.from.Compare(b.from) })
	for i, part := range parts {
		if live && i+1 < len(parts) {
			continue
		}
		start := part.started
		if start.IsZero() {
			start = part.ran
		}
		end := ended
		if i+1 < len(parts) {
			end = parts[i+1].ran
		}
		length := time.Duration(1<<63 - 1)
		if !end.IsZero() {
			length = end.Sub(start)
		}
		vtt := captionsVTT(cues, start.Add(-r.prog.cfg.Delay), length)
		path := r.captionsPath(part.path)
		if err := writeFileAtomic(path, []byte(vtt), 0o640); err != nil {
			r.log.Warn("captions not written", "file", path, "err", err)
		}
	}
}

// captionsVTT writes the cues of a file whose time 0 shows what happened in the room at origin
// and which lasts length. A cue gives way to the next one: in a file, lines do not pile up.
func captionsVTT(cues []cue, origin time.Time, length time.Duration) string {
	var b strings.Builder
	b.WriteString("WEBVTT\n")
	for i, c := range cues {
		from, to := c.from.Sub(origin), c.to.Sub(origin)
		if i+1 < len(cues) {
			to = min(to, cues[i+1].from.Sub(origin))
		}
		from, to = max(from, 0), min(to, length)
		if to <= from {
			continue
		}
		writeCue(&b, c, from, to)
	}
	return b.String()
}

// writeFileAtomic replaces path with data, so that a reader never sees half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), perm)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, werr)
	}
	return nil
}
