package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	// The clerk may run this where the system has no zone database (a minimal container,
	// Windows); the zone names a council uses must still resolve.
	_ "time/tzdata"

	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/store"
)

// cmdMinutes writes the draft minutes (procès-verbal) of a session from its journal file:
//
//	hemicycle minutes --journal FILE [--keys FILE] [--format md|html] [--lang fr|en] [--tz Europe/Paris]
//
// The journal is verified first and nothing is written unless its hash chain holds, and its
// signatures when there are keys to check them with (--keys, or the key ring beside the
// journal directory, as for journal verify): minutes drawn from an altered record would lend
// it an authority it does not have. The minutes end with the journal's seal. They go to
// stdout; what was checked goes to stderr.
func cmdMinutes(args []string, stdout, stderr io.Writer) error {
	flags := subcommandFlags("minutes", stdout, stderr)
	path := flags.String("journal", "", "the session's journal file, e.g. data/journal/ROOM.jsonl (required)")
	format := flags.String("format", "md", "md (Markdown) or html")
	lang := flags.String("lang", "fr", "language of the minutes: fr or en")
	tz := flags.String("tz", "", "time zone of the times written, e.g. Europe/Paris (default: this machine's, as the server's download)")
	var keyPaths keyFiles
	flags.Var(&keyPaths, "keys", "the trusted public keys, as for journal verify, repeatable (default: DATA_DIR/journal-keys.json beside the journal directory, if there)")
	if err := parseOptions(flags, args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("minutes: --journal FILE is required (a session's journal, e.g. data/journal/ROOM.jsonl)")
	}
	// Check every option before reading anything, so a typo costs nothing.
	labels, err := council.LabelsFor(*lang)
	if err != nil {
		return fmt.Errorf("minutes: --lang %w", err)
	}
	var write func(*council.Minutes, io.Writer, *council.Labels) error
	switch *format {
	case "md", "markdown":
		write = (*council.Minutes).WriteMarkdown
	case "html":
		write = (*council.Minutes).WriteHTML
	default:
		return fmt.Errorf("minutes: --format %q: use md or html", *format)
	}
	loc := time.Local
	if *tz != "" {
		l, err := time.LoadLocation(*tz)
		if err != nil {
			return fmt.Errorf("minutes: --tz %q is not a time zone (use an IANA name such as Europe/Paris): %w", *tz, err)
		}
		loc = l
	}

	keys, keysFrom, err := trustedKeys(keyPaths, *path)
	if err != nil {
		return fmt.Errorf("minutes: %w", err)
	}

	entries, warning, err := readVerifiedJournal(*path, keys)
	if err != nil {
		return fmt.Errorf("minutes: %w", err)
	}
	state, err := replaySession(entries)
	if err != nil {
		return fmt.Errorf("minutes: %s: %w", *path, err)
	}
	// Render completely before writing, so that a failure leaves no half document behind.
	var out bytes.Buffer
	last := entries[len(entries)-1]
	m := council.DraftMinutes(state, loc)
	m.Seal = signaling.MinutesSeal(entries, keys)
	if err := write(m, &out, &labels); err != nil {
		return fmt.Errorf("minutes: %w", err)
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		return fmt.Errorf("minutes: write: %w", err)
	}

	if warning != "" {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, warning)
	}
	signed := "signatures not checked (no keys: pass --keys); last entry's hash " + last.Hash
	if keys != nil {
		signed = signingReport(entries, keys, keysFrom)
	}
	fmt.Fprintf(stderr, "%s: journal %q, %d entries, hash chain intact, %s\n", *path, last.Journal, len(entries), signed)
	if state.Session().ClosedAt.IsZero() {
		fmt.Fprintf(stderr, "%s: note: the session is not closed; these minutes stop at entry %d\n", *path, last.Seq)
	}
	return nil
}

// readVerifiedJournal checks a journal file with store.VerifyFile, then reads its entries and
// checks the chain of exactly the entries returned (the file may have grown in between, if the
// server is still appending). An incomplete last line is left out with a warning: Append
// acknowledges an entry only once its whole line is on disk, so such a line was never
// acknowledged to anyone, and the server cuts it on its next start.
func readVerifiedJournal(path string, keys store.PublicKeys) ([]store.Entry, string, error) {
	var warning string
	if sound, err := store.VerifyFile(path, keys); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("no journal file %s (journals are DATA_DIR/journal/ROOM.jsonl)", path)
		}
		if _, torn := errors.AsType[*store.TornTailError](err); !torn {
			return nil, "", fmt.Errorf("journal %s does not verify (%d sound entries before the problem): %w", path, len(sound), err)
		}
		warning = fmt.Sprintf("left out an incomplete last line (an interrupted write, never acknowledged): %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read journal: %w", err)
	}
	var entries []store.Entry
	for line := 1; len(data) > 0; line++ {
		text, rest, complete := bytes.Cut(data, []byte("\n"))
		if !complete {
			break // see above: never acknowledged
		}
		data = rest
		var e store.Entry
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, "", fmt.Errorf("journal %s, line %d: not a journal entry: %w", path, line, err)
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, "", fmt.Errorf("journal %s has no entry", path)
	}
	verify := store.Verify
	if keys != nil {
		verify = func(es []store.Entry) error { return store.VerifySigned(es, keys) }
	}
	if err := verify(entries); err != nil {
		return nil, "", fmt.Errorf("journal %s does not verify: %w", path, err)
	}
	return entries, warning, nil
}

// replaySession rebuilds a council session from its journal, under the legal profile that the
// opening entry names (the journal alone says which rules applied).
func replaySession(entries []store.Entry) (*council.State, error) {
	events := make([]council.Event, len(entries))
	for i, e := range entries {
		ev, err := council.DecodeEvent(e.Type, e.Data)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", e.Seq, err)
		}
		events[i] = ev
	}
	opened, ok := events[0].(council.SessionOpened)
	if !ok {
		return nil, fmt.Errorf("entry 1 is %q, not session.opened: this is not the journal of a council session", entries[0].Type)
	}
	profile, err := loadProfile(opened.Body.Profile)
	if err != nil {
		return nil, fmt.Errorf("the session was held under legal profile %q: %w", opened.Body.Profile, err)
	}
	state, err := council.Replay(profile, council.Roster{}, events)
	if err != nil {
		return nil, fmt.Errorf("the journal does not replay: %w", err)
	}
	return state, nil
}
