package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func openFile(t *testing.T, dir string, opts ...Option) *FileJournal {
	t.Helper()
	j, err := OpenFile(dir, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func closeJournal(t *testing.T, j Journal) {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// fileBackend opens file stores with opts.
func fileBackend(opts ...Option) backend {
	return backend{
		open: func(t *testing.T) Journal { return openFile(t, t.TempDir(), opts...) },
		reopen: func(t *testing.T, j Journal) Journal {
			closeJournal(t, j)
			return openFile(t, j.(*FileJournal).dir, opts...)
		},
		rewrite: func(t *testing.T, j Journal, journal string, edit func([]string) []string) Journal {
			dir := j.(*FileJournal).dir
			closeJournal(t, j)
			path := filepath.Join(dir, fileName(journal))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := edit(strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"))
			if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			return openFile(t, dir, opts...)
		},
	}
}

func TestFileJournal(t *testing.T) { runContract(t, fileBackend()) }

func TestFileJournalSigned(t *testing.T) { runSignedContract(t, fileBackend) }

func TestFileOneLinePerEntry(t *testing.T) {
	dir := t.TempDir()
	j := openFile(t, dir)
	var want []Entry
	for i := range 3 {
		want = append(want, mustAppend(t, j, "Salle A/1", 0, i, "x", fmt.Sprintf(`{"i":%d}`, i)))
	}
	path := filepath.Join(dir, "%53alle%20%41%2F1.jsonl")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("journal file not where expected: %v", err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) != 4 || lines[3] != "" {
		t.Fatalf("want 3 newline-terminated lines, got %q", b)
	}
	for i, l := range lines[:3] {
		e, err := decodeLine([]byte(strings.TrimSuffix(l, "\n")))
		if err != nil || !sameEntry(e, want[i]) {
			t.Fatalf("line %d: %v: %+v, want %+v", i+1, err, e, want[i])
		}
	}
	if sound, err := VerifyFile(path, nil); len(sound) != 3 || err != nil {
		t.Fatalf("VerifyFile: %d, %v", len(sound), err)
	}
}

// A crash in the middle of a write leaves an incomplete last line; reopening cuts it,
// says so, and the chain continues from the last complete entry.
func TestFileTornLastLineRecovered(t *testing.T) {
	full := func(t *testing.T) string {
		// A whole line as an append would write it, minus its newline.
		e := newEntry(nil, "j", 3, "", at(3), "x", json.RawMessage(`{"n":3}`))
		b, _ := json.Marshal(e)
		return string(b)
	}
	cases := map[string]func(t *testing.T) string{
		"half a line":        func(t *testing.T) string { l := full(t); return l[:len(l)/2] },
		"line without \\n":   full,
		"zeros":              func(*testing.T) string { return "\x00\x00\x00\x00\x00\x00" },
		"garbage with a \\n": func(*testing.T) string { return "{\"journal\":\"j\",\"se\n" },
	}
	for name, tail := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			j := openFile(t, dir)
			before := []Entry{mustAppend(t, j, "j", 0, 0, "x", `1`), mustAppend(t, j, "j", 0, 1, "x", `2`), mustAppend(t, j, "j", 0, 2, "x", `3`)}
			closeJournal(t, j)
			path := filepath.Join(dir, "j.jsonl")
			st, _ := os.Stat(path)
			good := st.Size()
			torn := tail(t)
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString(torn)
			f.Close()

			// Offline verification reports the torn line without touching it.
			sound, err := VerifyFile(path, nil)
			var te *TornTailError
			if n := len(sound); n != 3 || !errors.As(err, &te) || te.Cut || te.Offset != good {
				t.Fatalf("VerifyFile: %d, %v; want 3 entries and a torn tail at %d", len(sound), err, good)
			}

			j = openFile(t, dir)
			rec := j.Recovery()
			if len(rec) != 1 || !errors.As(rec[0], &te) || !te.Cut || te.Offset != good || string(te.Tail) != torn {
				t.Fatalf("recovery %v; want one cut torn tail of %q at %d", rec, torn, good)
			}
			checkSame(t, mustRead(t, j, "j", 1), before)
			e := mustAppend(t, j, "j", 4, 3, "x", `4`)
			if e.Prev != before[2].Hash {
				t.Fatal("entry 4 does not follow entry 3")
			}
			if sound, err := VerifyFile(path, nil); len(sound) != 4 || err != nil {
				t.Fatalf("after recovery VerifyFile: %d, %v", len(sound), err)
			}
		})
	}
}

// A journal broken before its last line is refused, with the broken entry named; the
// other journals of the directory keep working.
func TestFileDamagedJournalRefused(t *testing.T) {
	cases := []struct {
		name string
		edit func(lines []string) []string
		want string
	}{
		{"edited payload", func(l []string) []string { l[1] = strings.Replace(l[1], `"n":1`, `"n":2`, 1); return l }, "entry 2: hash mismatch"},
		{"edited prev and hash", func(l []string) []string {
			e, _ := decodeLine([]byte(l[1]))
			e.Data = json.RawMessage(`{"n":7}`)
			e.Hash = EntryHash(e)
			b, _ := json.Marshal(e)
			l[1] = string(b)
			return l
		}, "entry 3: prev does not match entry 2"},
		{"garbled line", func(l []string) []string { l[1] = "not json"; return l }, "line 2: not a journal entry"},
		{"wrong journal", func(l []string) []string {
			for i := range l {
				e, _ := decodeLine([]byte(l[i]))
				e.Journal, e.Prev = "other", ""
				if i > 0 {
					p, _ := decodeLine([]byte(l[i-1]))
					e.Prev = p.Hash
				}
				e.Hash = EntryHash(e)
				b, _ := json.Marshal(e)
				l[i] = string(b)
			}
			return l
		}, `entry 1: belongs to journal "other", not "j"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := fileBackend().open(t)
			appendFive(t, j)
			mustAppend(t, j, "fine", 0, 0, "x", `1`)
			fj := fileBackend().rewrite(t, j, "j", c.edit).(*FileJournal)
			rec := fj.Recovery()
			if len(rec) != 1 || !strings.Contains(rec[0].Error(), c.want) {
				t.Fatalf("recovery %v, want one error naming %q", rec, c.want)
			}
			if _, err := fj.Append(context.Background(), "j", 0, at(9), "x", nil); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("append to a damaged journal: %v", err)
			}
			if _, err := fj.Read(context.Background(), "j", 1); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("read of a damaged journal: %v", err)
			}
			if e := mustAppend(t, fj, "fine", 0, 1, "x", `2`); e.Seq != 2 {
				t.Fatalf("healthy journal appended seq %d, want 2", e.Seq)
			}
			if names, _ := fj.Journals(context.Background()); fmt.Sprint(names) != "[fine j]" {
				t.Fatalf("journals %q, want both", names)
			}
		})
	}
}

// Appending to a file behind the store's back (after opening) is caught by Read.
func TestFileReadNoticesChangeOnDisk(t *testing.T) {
	dir := t.TempDir()
	j := openFile(t, dir)
	appendFive(t, j)
	path := filepath.Join(dir, "j.jsonl")
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte(`{"n":3}`), []byte(`{"n":4}`), 1), 0o640)
	if _, err := j.Read(context.Background(), "j", 2); err == nil || !strings.Contains(err.Error(), "entry 4: hash mismatch") {
		t.Fatalf("read after an edit on disk: %v", err)
	}
}

func TestFileDirectoryLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "journal") // created by OpenFile
	j := openFile(t, dir)
	if other, err := OpenFile(dir); err == nil {
		other.Close()
		t.Fatal("a second store opened the same directory")
	}
	closeJournal(t, j)
	openFile(t, dir)
}

func TestFileIgnoresForeignFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"notes.txt", "A.jsonl", "%61.jsonl", "%2f.jsonl"} {
		os.WriteFile(filepath.Join(dir, n), []byte("x\n"), 0o640)
	}
	j := openFile(t, dir)
	if rec := j.Recovery(); len(rec) != 4 {
		t.Fatalf("recovery %v, want 4 ignored files", rec)
	}
	if names, _ := j.Journals(context.Background()); len(names) != 0 {
		t.Fatalf("foreign files listed as journals: %q", names)
	}
}

func TestFileNames(t *testing.T) {
	for _, name := range []string{"a", "conseil-2026_03", "Salle du Conseil", "..", ".", "a/b\\c", "séance", "%41", "x.jsonl", "\x00\xff", "A", "a"} {
		f := fileName(name)
		if strings.Trim(strings.TrimSuffix(f, fileExt), "abcdefghijklmnopqrstuvwxyz0123456789-_%ABCDEF") != "" {
			t.Errorf("%q -> unsafe file name %q", name, f)
		}
		back, ok := journalName(f)
		if name == "\x00\xff" {
			if ok {
				t.Errorf("invalid UTF-8 name %q accepted back", name)
			}
			continue
		}
		if !ok || back != name {
			t.Errorf("%q -> %q -> %q, %v", name, f, back, ok)
		}
	}
	if fileName("A") == fileName("a") {
		t.Error("names differing in case share a file")
	}
	for _, f := range []string{"A.jsonl", "%61.jsonl", "%2f.jsonl", "%2.jsonl", ".jsonl", "x.json", "a b.jsonl"} {
		if n, ok := journalName(f); ok {
			t.Errorf("%q accepted as journal %q", f, n)
		}
	}
}

// TestFileSurvivesKill kills a process appending to a journal (SIGKILL, no chance to
// flush or close) and checks that every append it acknowledged is there afterwards,
// in a journal that verifies and accepts more appends.
func TestFileSurvivesKill(t *testing.T) {
	if dir := os.Getenv("HEMICYCLE_STORE_CRASH_DIR"); dir != "" {
		crashWriter(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileSurvivesKill$")
	cmd.Env = append(os.Environ(), "HEMICYCLE_STORE_CRASH_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]string{}
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(acked) < 150 {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "ACK" {
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			acked[seq] = f[2]
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	for sc.Scan() { // acknowledgements already on their way count too
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "ACK" {
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			acked[seq] = f[2]
		}
	}
	cmd.Wait()
	if len(acked) < 150 {
		t.Fatalf("writer acknowledged only %d appends before dying", len(acked))
	}

	j := openFile(t, dir)
	es := mustRead(t, j, "crash", 1)
	if err := Verify(es); err != nil {
		t.Fatal(err)
	}
	for seq, hash := range acked {
		if seq > uint64(len(es)) || es[seq-1].Hash != hash {
			t.Fatalf("acknowledged entry %d is lost (journal has %d entries)", seq, len(es))
		}
	}
	if e := mustAppend(t, j, "crash", uint64(len(es))+1, 0, "x", `"after"`); e.Prev != es[len(es)-1].Hash {
		t.Fatal("append after the crash does not follow the last entry")
	}
	t.Logf("%d acknowledged, %d in the journal, recovery: %v", len(acked), len(es), j.Recovery())
}

// crashWriter appends forever and reports each acknowledged entry on stdout; the
// parent test kills it.
func crashWriter(dir string) {
	j, err := OpenFile(dir)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	payload := json.RawMessage(`{"ballot":"` + strings.Repeat("x", 3000) + `"}`) // spans pages
	for i := 0; ; i++ {
		e, err := j.Append(context.Background(), "crash", 0, at(i), "ballot.cast", payload)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Printf("ACK %d %s\n", e.Seq, e.Hash)
	}
}
