package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const fuzzJournal = "conseil/2026-03-05"

// FuzzJournalFile opens a directory holding one journal file with arbitrary contents, as a disk
// error, a crash or a hand edit may leave it. Whatever the bytes: OpenFile fails only on I/O,
// a journal it accepts reads back as a sound chain and takes the next entry, which a reopened
// store reads too; a journal it refuses refuses appends and its file is left as it was, so that
// nothing an acknowledged ballot wrote is lost to the repair.
func FuzzJournalFile(f *testing.F) {
	ctx := context.Background()
	dir := f.TempDir()
	j, err := OpenFile(dir)
	if err != nil {
		f.Fatal(err)
	}
	at := time.Date(2026, 3, 5, 18, 30, 0, 0, time.UTC)
	for i, ev := range []struct{ typ, data string }{
		{"session.opened", `{"chair":1,"title":"Séance ordinaire"}`},
		{"member.arrived", `{"seat":12,"place":"remote"}`},
		{"ballot.cast", `{"vote":"1-1","seat":12,"choice":"for"}`},
	} {
		if _, err := j.Append(ctx, fuzzJournal, uint64(i+1), at.Add(time.Duration(i)*time.Minute), ev.typ, json.RawMessage(ev.data)); err != nil {
			f.Fatal(err)
		}
	}
	j.Close()
	real, err := os.ReadFile(filepath.Join(dir, fileName(fuzzJournal)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real)
	f.Add(real[:len(real)-7])                                                 // torn last line
	f.Add(bytes.Replace(real, []byte(`"for"`), []byte(`"against"`), 1))       // an edited ballot
	f.Add(append(append([]byte(nil), real...), "{\"seq\":4}\n"...))           // a forged line
	f.Add(bytes.Replace(real, []byte(`"seq":2`), []byte(`"seq":2,"x":1`), 1)) // an unknown field
	f.Add([]byte{})
	if vector, err := os.ReadFile("testdata/vector.jsonl"); err == nil {
		f.Add(vector) // entries of another journal
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, fileName(fuzzJournal))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenFile(dir)
		if err != nil {
			t.Fatalf("OpenFile failed on contents, not on I/O: %v", err)
		}
		defer s.Close()
		entries, readErr := s.Read(ctx, fuzzJournal, 1)
		if readErr == nil {
			if err := Verify(entries); err != nil {
				t.Fatalf("Read returned entries that do not verify: %v", err)
			}
			for _, e := range entries {
				if e.Journal != fuzzJournal {
					t.Fatalf("Read returned an entry of journal %q", e.Journal)
				}
			}
		}
		next := uint64(len(entries)) + 1
		appended, appendErr := s.Append(ctx, fuzzJournal, next, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), "fuzz.checked", json.RawMessage(`{"ok":true}`))
		after, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if readErr != nil || appendErr != nil {
			if readErr == nil {
				t.Fatalf("a journal that reads refused the next entry: %v", appendErr)
			}
			if appendErr == nil {
				t.Fatalf("a journal refused for reading (%v) took an entry", readErr)
			}
			if !bytes.Equal(after, b) {
				t.Fatalf("a refused journal's file was changed:\n%q\nbecame\n%q", b, after)
			}
			return
		}
		sc, _ := scanJournal(b)
		if !bytes.HasPrefix(after, b[:sc.end]) {
			t.Fatalf("appending changed what the file held before:\n%q\nbecame\n%q", b, after)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2, err := OpenFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		again, err := s2.Read(ctx, fuzzJournal, 1)
		if err != nil {
			t.Fatalf("reopened after an append, the journal does not read: %v", err)
		}
		if uint64(len(again)) != next || again[next-1].Hash != appended.Hash {
			t.Fatalf("reopened, the journal has %d entries, want %d ending with the one appended", len(again), next)
		}
		var torn *TornTailError
		for _, r := range s2.Recovery() {
			if errors.As(r, &torn) {
				t.Fatalf("the repaired journal was found torn again: %v", r)
			}
		}
	})
}
