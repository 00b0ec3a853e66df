package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// backend lets the contract suite run against every Journal implementation.
type backend struct {
	// open returns a new, empty store.
	open func(t *testing.T) Journal
	// reopen closes j and returns a new store over the same data, as after a restart.
	reopen func(t *testing.T, j Journal) Journal
	// rewrite closes j, replaces the stored lines of a journal with edit's result (as
	// an intruder with access to the disk or to Redis could), and returns a store to
	// read it with.
	rewrite func(t *testing.T, j Journal, journal string, edit func(lines []string) []string) Journal
}

var paris = time.FixedZone("CET", 3600)

// at returns the time of the i-th test event, in a non-UTC zone on purpose.
func at(i int) time.Time {
	return time.Date(2026, 3, 5, 18, 30, 0, 0, paris).Add(time.Duration(i)*time.Second + 250*time.Millisecond)
}

func mustAppend(t *testing.T, j Journal, journal string, expectSeq uint64, i int, typ, data string) Entry {
	t.Helper()
	e, err := j.Append(context.Background(), journal, expectSeq, at(i), typ, json.RawMessage(data))
	if err != nil {
		t.Fatalf("append %d to %q: %v", i, journal, err)
	}
	return e
}

func mustRead(t *testing.T, j Journal, journal string, from uint64) []Entry {
	t.Helper()
	es, err := j.Read(context.Background(), journal, from)
	if err != nil {
		t.Fatalf("read %q from %d: %v", journal, from, err)
	}
	return es
}

func sameEntry(a, b Entry) bool {
	return a.Journal == b.Journal && a.Seq == b.Seq && a.At.Equal(b.At) && a.Type == b.Type &&
		string(a.Data) == string(b.Data) && a.Prev == b.Prev && a.Hash == b.Hash && a.Key == b.Key && a.Sig == b.Sig
}

func checkSame(t *testing.T, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if !sameEntry(got[i], want[i]) {
			t.Fatalf("entry %d differs:\n got %+v\nwant %+v", i+1, got[i], want[i])
		}
	}
}

// appendFive fills journal "j" with five entries and returns them.
func appendFive(t *testing.T, j Journal) []Entry {
	var es []Entry
	for i := range 5 {
		es = append(es, mustAppend(t, j, "j", 0, i, "event", fmt.Sprintf(`{"n":%d}`, i)))
	}
	return es
}

func runContract(t *testing.T, b backend) {
	ctx := context.Background()

	t.Run("AppendsChain", func(t *testing.T) {
		j := b.open(t)
		datas := []string{`{ "seat" : "12",  "choice": "for" }`, `"<b>&"`, ``, `[1, 2.5, null, true]`}
		wantData := []string{`{"seat":"12","choice":"for"}`, `"\u003cb\u003e\u0026"`, `null`, `[1,2.5,null,true]`}
		var got []Entry
		for i, d := range datas {
			e := mustAppend(t, j, "séance 1", 0, i, "ballot.cast", d)
			if e.Seq != uint64(i+1) {
				t.Fatalf("entry %d got seq %d", i+1, e.Seq)
			}
			if i == 0 && e.Prev != "" {
				t.Fatalf("entry 1 prev = %q, want empty", e.Prev)
			}
			if i > 0 && e.Prev != got[i-1].Hash {
				t.Fatalf("entry %d prev = %q, want entry %d's hash %q", i+1, e.Prev, i, got[i-1].Hash)
			}
			if e.Hash != EntryHash(e) || len(e.Hash) != 64 {
				t.Fatalf("entry %d hash %q is not its own", i+1, e.Hash)
			}
			if string(e.Data) != wantData[i] {
				t.Fatalf("entry %d data %s, want canonical %s", i+1, e.Data, wantData[i])
			}
			if !e.At.Equal(at(i)) || e.At.Location() != time.UTC {
				t.Fatalf("entry %d at %v, want %v in UTC", i+1, e.At, at(i))
			}
			got = append(got, e)
		}
		read := mustRead(t, j, "séance 1", 0)
		checkSame(t, read, got)
		if err := Verify(read); err != nil {
			t.Fatalf("verify: %v", err)
		}
	})

	t.Run("ReadFromSeq", func(t *testing.T) {
		j := b.open(t)
		all := appendFive(t, j)
		checkSame(t, mustRead(t, j, "j", 1), all)
		checkSame(t, mustRead(t, j, "j", 3), all[2:])
		checkSame(t, mustRead(t, j, "j", 5), all[4:])
		if es := mustRead(t, j, "j", 6); len(es) != 0 {
			t.Fatalf("read past the end gave %d entries", len(es))
		}
		if es := mustRead(t, j, "nobody", 1); len(es) != 0 {
			t.Fatalf("unknown journal gave %d entries", len(es))
		}
		if err := VerifyAfter(all[1], mustRead(t, j, "j", 3)); err != nil {
			t.Fatalf("a read from 3 does not continue entry 2: %v", err)
		}
	})

	t.Run("ExpectSeq", func(t *testing.T) {
		j := b.open(t)
		for _, bad := range []uint64{2, 7} {
			if _, err := j.Append(ctx, "j", bad, at(0), "x", nil); !errors.Is(err, ErrConflict) {
				t.Fatalf("expectSeq %d on an empty journal: got %v, want ErrConflict", bad, err)
			}
		}
		mustAppend(t, j, "j", 1, 0, "x", `1`)
		if _, err := j.Append(ctx, "j", 1, at(1), "x", nil); !errors.Is(err, ErrConflict) {
			t.Fatalf("expectSeq 1 again: got %v, want ErrConflict", err)
		}
		mustAppend(t, j, "j", 2, 1, "x", `2`)
		mustAppend(t, j, "j", 0, 2, "x", `3`)
		if n := len(mustRead(t, j, "j", 1)); n != 3 {
			t.Fatalf("conflicting appends left %d entries, want 3", n)
		}
	})

	t.Run("ExpectSeqRace", func(t *testing.T) {
		j := b.open(t)
		mustAppend(t, j, "j", 0, 0, "x", `0`)
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for w := range n {
			wg.Go(func() {
				_, errs[w] = j.Append(ctx, "j", 2, at(1), "x", json.RawMessage(fmt.Sprint(w)))
			})
		}
		wg.Wait()
		won := 0
		for w, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrConflict):
				t.Fatalf("writer %d: %v", w, err)
			}
		}
		if won != 1 {
			t.Fatalf("%d writers appended seq 2, want exactly 1", won)
		}
		if es := mustRead(t, j, "j", 1); len(es) != 2 {
			t.Fatalf("journal has %d entries, want 2", len(es))
		}
	})

	t.Run("ConcurrentAppendsSerialised", func(t *testing.T) {
		j := b.open(t)
		const writers, each = 8, 25
		appendAtOnce(t, ctx, slices.Repeat([]Journal{j}, writers), "j", each)
		es := mustRead(t, j, "j", 1)
		if len(es) != writers*each {
			t.Fatalf("got %d entries, want %d", len(es), writers*each)
		}
		if err := Verify(es); err != nil {
			t.Fatal(err)
		}
		next := make([]int, writers) // each writer's entries appear once, in its order
		for _, e := range es {
			var d struct{ W, I int }
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			if d.I != next[d.W] {
				t.Fatalf("entry %d: writer %d's append %d, expected its append %d", e.Seq, d.W, d.I, next[d.W])
			}
			next[d.W]++
		}
	})

	t.Run("Journals", func(t *testing.T) {
		j := b.open(t)
		names := []string{"b", "a", "Salle du Conseil/2026 é", "b"}
		for i, n := range names {
			e := mustAppend(t, j, n, 0, i, "x", `{}`)
			if want := uint64(1 + i/3); e.Seq != want {
				t.Fatalf("%q got seq %d, want %d: journals must chain separately", n, e.Seq, want)
			}
		}
		// A refused first append must not list a journal.
		if _, err := j.Append(ctx, "c", 5, at(0), "x", nil); !errors.Is(err, ErrConflict) {
			t.Fatalf("got %v, want ErrConflict", err)
		}
		got, err := j.Journals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"Salle du Conseil/2026 é", "a", "b"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("journals %q, want %q", got, want)
		}
	})

	t.Run("ReopenContinuesChain", func(t *testing.T) {
		j := b.open(t)
		before := []Entry{
			mustAppend(t, j, "j", 0, 0, "x", `1`),
			mustAppend(t, j, "j", 0, 1, "x", `2`),
			mustAppend(t, j, "j", 0, 2, "x", `3`),
		}
		j = b.reopen(t, j)
		checkSame(t, mustRead(t, j, "j", 1), before)
		e := mustAppend(t, j, "j", 4, 3, "x", `4`)
		if e.Prev != before[2].Hash {
			t.Fatalf("entry 4 prev %q, want entry 3's hash %q", e.Prev, before[2].Hash)
		}
		all := mustRead(t, j, "j", 1)
		if err := Verify(all); err != nil || len(all) != 4 {
			t.Fatalf("after reopen: %d entries, verify: %v", len(all), err)
		}
		if names, err := j.Journals(ctx); err != nil || fmt.Sprint(names) != "[j]" {
			t.Fatalf("journals after reopen: %q, %v", names, err)
		}
	})

	t.Run("RefusesBadInput", func(t *testing.T) {
		j := b.open(t)
		cases := []struct {
			name, journal, typ, data string
			at                       time.Time
			want                     string
		}{
			{"empty journal", "", "x", `{}`, at(0), "journal name is empty"},
			{"long journal", strings.Repeat("x", MaxNameLen+1), "x", `{}`, at(0), "bytes long"},
			{"empty type", "j", "", `{}`, at(0), "type is empty"},
			{"bad json", "j", "x", `{"a":`, at(0), "not valid JSON"},
			{"zero time", "j", "x", `{}`, time.Time{}, "time is zero"},
			{"year 10000", "j", "x", `{}`, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "outside years"},
		}
		for _, c := range cases {
			_, err := j.Append(ctx, c.journal, 0, c.at, c.typ, json.RawMessage(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.want)
			}
		}
		if names, err := j.Journals(ctx); err != nil || len(names) != 0 {
			t.Fatalf("refused appends left journals %q (%v)", names, err)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		j := b.open(t)
		mustAppend(t, j, "j", 0, 0, "x", `1`)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := j.Append(cctx, "j", 0, at(1), "x", nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("append with a cancelled context: got %v", err)
		}
		if n := len(mustRead(t, j, "j", 1)); n != 1 {
			t.Fatalf("cancelled append left %d entries, want 1", n)
		}
	})

	t.Run("Closed", func(t *testing.T) {
		j := b.open(t)
		mustAppend(t, j, "j", 0, 0, "x", `1`)
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := j.Append(ctx, "j", 0, at(1), "x", nil); !errors.Is(err, ErrClosed) {
			t.Errorf("append after close: %v", err)
		}
		if _, err := j.Read(ctx, "j", 1); !errors.Is(err, ErrClosed) {
			t.Errorf("read after close: %v", err)
		}
		if _, err := j.Journals(ctx); !errors.Is(err, ErrClosed) {
			t.Errorf("journals after close: %v", err)
		}
	})

	// Tampering with the stored record is found by Read, which names the entry.
	tampering := []struct {
		name     string
		edit     func(lines []string) []string
		want     string
		alsoFrom uint64 // a later fromSeq whose Read must fail too
	}{
		{"EditedPayload", func(l []string) []string {
			l[1] = strings.Replace(l[1], `{"n":1}`, `{"n":9}`, 1)
			return l
		}, "entry 2: hash mismatch", 0},
		{"DeletedEntry", func(l []string) []string {
			return append(l[:1:1], l[2:]...)
		}, "gap after 1", 3},
		{"ReorderedEntries", func(l []string) []string {
			l[1], l[2] = l[2], l[1]
			return l
		}, "entry 3: out of order", 0},
	}
	for _, tc := range tampering {
		t.Run("Detects"+tc.name, func(t *testing.T) {
			j := b.open(t)
			appendFive(t, j)
			j = b.rewrite(t, j, "j", tc.edit)
			_, err := j.Read(ctx, "j", 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("read after tampering: got %v, want an error naming %q", err, tc.want)
			}
			if tc.alsoFrom != 0 {
				if es, err := j.Read(ctx, "j", tc.alsoFrom); err == nil {
					t.Fatalf("read from %d after tampering gave %d entries and no error", tc.alsoFrom, len(es))
				}
			}
		})
	}
}

// appendAtOnce has every writer append each entries to the journal at the same time, the
// data saying whose append it is ({"w": writer's index, "i": its append's}), and fails the
// test on any error.
func appendAtOnce(t *testing.T, ctx context.Context, writers []Journal, journal string, each int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(writers))
	for w, j := range writers {
		wg.Go(func() {
			for i := range each {
				data := json.RawMessage(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))
				if _, err := j.Append(ctx, journal, 0, at(i), "x", data); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
