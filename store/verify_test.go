package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// chain builds a valid journal of n entries in memory.
func chain(n int) []Entry {
	var es []Entry
	prev := ""
	for i := range n {
		when, data, err := checkAppend("j", at(i), "x", json.RawMessage(fmt.Sprintf(`{"n":%d}`, i+1)))
		if err != nil {
			panic(err)
		}
		e := newEntry(nil, "j", uint64(i), prev, when, "x", data)
		prev = e.Hash
		es = append(es, e)
	}
	return es
}

func TestVerifyNamesFirstBrokenEntry(t *testing.T) {
	cases := []struct {
		name    string
		tamper  func(es []Entry) []Entry
		want    string
		wantSeq uint64
	}{
		{"intact", func(es []Entry) []Entry { return es }, "", 0},
		{"edited payload", func(es []Entry) []Entry { es[2].Data = json.RawMessage(`{"n":30}`); return es }, "entry 3: hash mismatch", 3},
		{"edited time", func(es []Entry) []Entry { es[2].At = es[2].At.Add(1); return es }, "entry 3: hash mismatch", 3},
		{"edited type", func(es []Entry) []Entry { es[2].Type = "y"; return es }, "entry 3: hash mismatch", 3},
		{"edited payload with its hash recomputed", func(es []Entry) []Entry {
			es[2].Data = json.RawMessage(`{"n":30}`)
			es[2].Hash = EntryHash(es[2])
			return es
		}, "entry 4: prev does not match entry 3", 4},
		{"deleted entry", func(es []Entry) []Entry { return append(es[:2], es[3:]...) }, "gap after 2: next entry is 4", 3},
		{"deleted last entries", func(es []Entry) []Entry { return es[:3] }, "", 0}, // needs an anchor: see doc.go
		{"deleted first entry", func(es []Entry) []Entry { return es[1:] }, "gap after 0: the journal starts at entry 2", 1},
		{"reordered entries", func(es []Entry) []Entry { es[2], es[3] = es[3], es[2]; return es }, "entry 4: out of order, found before entry 3", 4},
		{"duplicated entry", func(es []Entry) []Entry { return append(es[:3:3], es[2:]...) }, "entry 3: out of order, found after entry 3", 3},
		{"renumbered after a deletion", func(es []Entry) []Entry {
			es = append(es[:2], es[3:]...)
			for i := 2; i < len(es); i++ {
				es[i].Seq--
			}
			return es
		}, "entry 3: prev does not match entry 2", 3},
		{"entry from another journal", func(es []Entry) []Entry {
			es[1].Journal = "k"
			es[1].Hash = EntryHash(es[1])
			return es
		}, `entry 2: belongs to journal "k", not "j"`, 2},
		{"first entry with a prev", func(es []Entry) []Entry {
			es[0].Prev = strings.Repeat("0", 64)
			es[0].Hash = EntryHash(es[0])
			return es
		}, "entry 1: prev is not empty", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.tamper(chain(6)))
			if c.want == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			var ce *ChainError
			if !errors.As(err, &ce) || err.Error() != c.want || ce.Seq != c.wantSeq {
				t.Fatalf("got %v (%+v), want %q at seq %d", err, ce, c.want, c.wantSeq)
			}
		})
	}
}

func TestVerifyAfter(t *testing.T) {
	es := chain(5)
	if err := VerifyAfter(es[1], es[2:]); err != nil {
		t.Fatalf("valid continuation: %v", err)
	}
	if err := VerifyAfter(es[0], es[2:]); err == nil || err.Error() != "gap after 1: next entry is 3" {
		t.Fatalf("continuation after the wrong entry: %v", err)
	}
	other := chain(2)[1]
	other.Data = json.RawMessage(`{"n":99}`)
	other.Hash = EntryHash(other)
	if err := VerifyAfter(other, es[2:]); err == nil || err.Error() != "entry 3: prev does not match entry 2" {
		t.Fatalf("continuation of a different entry 2: %v", err)
	}
}

// Moving bytes from one field to its neighbour must change the hash: that is what
// the length prefixes are for.
func TestHashFieldsUnambiguous(t *testing.T) {
	base := chain(1)[0]
	a, b := base, base
	a.Journal, a.Type = "ab", "c"
	b.Journal, b.Type = "a", "bc"
	if EntryHash(a) == EntryHash(b) {
		t.Fatal("shifting bytes between fields kept the hash")
	}
	a, b = base, base
	a.Type, a.Data = "x1", json.RawMessage(`2`)
	b.Type, b.Data = "x", json.RawMessage(`12`)
	if EntryHash(a) == EntryHash(b) {
		t.Fatal("shifting bytes between type and data kept the hash")
	}
}

// testdata/vector.jsonl was written by testdata/vector.py, an implementation of the
// documented encoding that shares no code with this package.
func TestIndependentImplementationAgrees(t *testing.T) {
	path := filepath.Join("testdata", "vector.jsonl")
	sound, err := VerifyFile(path, nil)
	if len(sound) != 3 || err != nil {
		t.Fatalf("VerifyFile(%s) = %d, %v; want 3, nil", path, len(sound), err)
	}
	// The same events appended through the store, with a payload written loosely,
	// give the same hashes: Append's canonical form is the documented one.
	b, _ := os.ReadFile(path)
	j := openFile(t, t.TempDir())
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		want, err := decodeLine([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		var loose any
		json.Unmarshal(want.Data, &loose)
		spaced, _ := json.MarshalIndent(loose, "", "  ")
		got, err := j.Append(context.Background(), want.Journal, 0, want.At.In(paris), want.Type, spaced)
		if err != nil {
			t.Fatal(err)
		}
		if got.Hash != want.Hash {
			t.Fatalf("entry %d: store hash %s, independent hash %s", i+1, got.Hash, want.Hash)
		}
	}
}

func TestVerifyFileReportsLineAndChain(t *testing.T) {
	dir := t.TempDir()
	good := []string{}
	for _, e := range chain(4) {
		b, _ := json.Marshal(e)
		good = append(good, string(b))
	}
	write := func(lines ...string) string {
		p := filepath.Join(dir, "x.jsonl")
		os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o640)
		return p
	}
	cases := []struct {
		lines []string
		n     int
		want  string
	}{
		{good, 4, ""},
		{[]string{good[0], good[1], "{}", good[3]}, 2, "line 3: not a journal entry: seq is missing"},
		{[]string{good[0], good[1], `{"journal":"j","seq":3,"extra":1}`, good[3]}, 2, `line 3: not a journal entry: json: unknown field "extra"`},
		{[]string{good[0], good[2], good[3]}, 1, "gap after 1: next entry is 3"},
		{[]string{good[0], strings.Replace(good[1], `"n":2`, `"n":5`, 1), "garbage", good[3]}, 1, "entry 2: hash mismatch"},
	}
	for _, c := range cases {
		sound, err := VerifyFile(write(c.lines...), nil)
		if n := len(sound); n != c.n || (c.want == "") != (err == nil) || err != nil && err.Error() != c.want {
			t.Errorf("got %d, %v; want %d, %q", len(sound), err, c.n, c.want)
		}
	}
	if _, err := VerifyFile(filepath.Join(dir, "missing.jsonl"), nil); err == nil {
		t.Error("a missing file verified")
	}
}

// Marshalling an entry again (as an API handler might) keeps it verifiable.
func TestEntryJSONRoundTrip(t *testing.T) {
	when, data, err := checkAppend("j", at(0), "x", json.RawMessage("{\"note\":\"<script>&amp;</script>\", \"é\":\"\u2028\"}"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEntry(nil, "j", 0, "", when, "x", data)
	for range 2 {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
	}
	if err := Verify([]Entry{e}); err != nil {
		t.Fatalf("after two JSON round trips: %v", err)
	}
	if want := `{"note":"\u003cscript\u003e\u0026amp;\u003c/script\u003e","é":"\u2028"}`; string(e.Data) != want {
		t.Fatalf("stored data %s, want %s", e.Data, want)
	}
}
