package store

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// newRing makes a key ring starting at the first test event; loaded is the same ring as
// another node reads it from the key ring file.
func newRing(t *testing.T) (ring, loaded *Keyring) {
	t.Helper()
	ring, err := NewKeyring(at(0))
	if err != nil {
		t.Fatal(err)
	}
	return ring, reload(t, ring)
}

// reload writes ring to a key ring file and reads it back, as a node starting does.
func reload(t *testing.T, ring *Keyring) *Keyring {
	t.Helper()
	path := t.TempDir() + "/" + KeyringFile
	if err := ring.Save(path); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rewriteEntries turns an edit of a journal's entries into an edit of its stored lines, as
// someone who can write the store but lacks the key would make it.
func rewriteEntries(t *testing.T, edit func([]Entry) []Entry) func([]string) []string {
	return func(lines []string) []string {
		var es []Entry
		for _, l := range lines {
			e, err := decodeLine([]byte(l))
			if err != nil {
				t.Fatal(err)
			}
			es = append(es, e)
		}
		var out []string
		for _, e := range edit(es) {
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
		return out
	}
}

// rechain numbers, links and hashes the entries again from the from-th on, as a forger does
// to make the chain hold; the signatures stay as they were.
func rechain(es []Entry, from int) []Entry {
	for i := from - 1; i < len(es); i++ {
		es[i].Seq, es[i].Prev = uint64(i+1), ""
		if i > 0 {
			es[i].Prev = es[i-1].Hash
		}
		es[i].Hash = EntryHash(es[i])
	}
	return es
}

// unsign removes the signatures of the entries from the from-th on.
func unsign(es []Entry, from int) []Entry {
	for i := from - 1; i < len(es); i++ {
		es[i].Key, es[i].Sig = "", ""
	}
	return es
}

// runSignedContract checks what signing adds to the Journal contract, on stores that
// newBackend opens with the options given: the whole contract still holds, every entry is
// signed, a chain re-hashed without the key is refused though it holds as a chain, and
// sittings signed before a key rotation still read.
func runSignedContract(t *testing.T, newBackend func(opts ...Option) backend) {
	ctx := context.Background()
	ring, loaded := newRing(t)
	b := newBackend(WithSigner(ring))

	t.Run("Contract", func(t *testing.T) { runContract(t, b) })

	t.Run("EveryEntrySigned", func(t *testing.T) {
		j := b.open(t)
		written := appendFive(t, j)
		// Another node, holding the same ring loaded from its file, reads and verifies them.
		es := mustRead(t, newBackend(WithSigner(loaded)).reopen(t, j), "j", 1)
		checkSame(t, es, written)
		for _, e := range es {
			if e.Key != ring.Current(e.At).ID || e.Sig == "" {
				t.Fatalf("entry %d signed %q by key %q, want a signature by %q", e.Seq, e.Sig, e.Key, ring.Current(e.At).ID)
			}
		}
		if err := VerifySigned(es, loaded.Public()); err != nil {
			t.Fatalf("verify with the published keys: %v", err)
		}
	})

	other, _ := newRing(t) // another deployment's
	forged := `{"n":"forged"}`
	// Each way of altering the signed journal j (entries 1 to 5), and the entry it is
	// refused at.
	forgeries := []struct {
		name       string
		edit       func([]Entry) []Entry
		consistent bool // the forgery holds as a hash chain: only the signatures tell
		want       string
	}{
		{"Changed", func(es []Entry) []Entry { es[2].Data = json.RawMessage(forged); return es },
			false, "entry 3: hash mismatch"},
		{"ChangedRehashed", func(es []Entry) []Entry { es[2].Data = json.RawMessage(forged); return rechain(es, 3) },
			true, `entry 3: its signature by key "` + ring.Current(at(2)).ID + `" does not match its hash`},
		{"ChangedRehashedUnsigned", func(es []Entry) []Entry {
			es[2].Data = json.RawMessage(forged)
			return unsign(rechain(es, 3), 3)
		}, true, "entry 3: not signed, though entry 1 before it is"},
		// Every signature removed, the journal would pass for one written before signing
		// began, had its entries not been written after the keys' start.
		{"ChangedRehashedAllUnsigned", func(es []Entry) []Entry {
			es[2].Data = json.RawMessage(forged)
			return unsign(rechain(es, 1), 1)
		}, true, "entry 1: not signed, though written at " + formatAt(at(0)) + ", after signing began"},
		{"Removed", func(es []Entry) []Entry { return append(es[:2], es[3:]...) },
			false, "gap after 2: next entry is 4"},
		{"RemovedRenumbered", func(es []Entry) []Entry { return rechain(append(es[:2], es[3:]...), 3) },
			true, "entry 3: its signature by key"},
		{"Reordered", func(es []Entry) []Entry { es[2], es[3] = es[3], es[2]; return es },
			false, "entry 4: out of order, found before entry 3"},
		{"SignedByAnotherKey", func(es []Entry) []Entry {
			es[2].Data = json.RawMessage(forged)
			es = rechain(es, 3)
			for i := 2; i < len(es); i++ {
				other.sign(&es[i])
			}
			return es
		}, true, `entry 3: signed with key "` + other.Current(at(2)).ID + `", which is not among the trusted keys`},
		{"LastSignatureRemoved", func(es []Entry) []Entry { return unsign(es, 5) },
			true, "entry 5: not signed, though entry 1 before it is"},
	}
	for _, f := range forgeries {
		t.Run("Forged"+f.name, func(t *testing.T) {
			j := b.open(t)
			appendFive(t, j)
			var stored []Entry
			j = b.rewrite(t, j, "j", rewriteEntries(t, func(es []Entry) []Entry {
				stored = f.edit(es)
				return stored
			}))
			if err := Verify(stored); (err == nil) != f.consistent {
				t.Fatalf("as a hash chain the forgery gives %v, want it to hold: %v", err, f.consistent)
			}
			if err := VerifySigned(stored, loaded.Public()); err == nil || !strings.Contains(err.Error(), f.want) {
				t.Fatalf("VerifySigned of the forgery: %v, want an error naming %q", err, f.want)
			}
			if es, err := j.Read(ctx, "j", 1); err == nil || !strings.Contains(err.Error(), f.want) {
				t.Fatalf("read of the forgery: %d entries, %v; want it refused naming %q", len(es), err, f.want)
			}
			// A node that just started refuses it too, and never signs over a forged chain.
			j = b.reopen(t, j)
			if _, err := j.Read(ctx, "j", 1); err == nil || !strings.Contains(err.Error(), f.want) {
				t.Fatalf("read after restart: %v, want an error naming %q", err, f.want)
			}
			if _, err := j.Append(ctx, "j", 0, at(9), "x", nil); f.consistent && err == nil {
				t.Fatal("the store signed an entry over the forged chain")
			}
		})
	}

	// An upgrade: a journal kept before the node signed (entries 1 to 5, before the keys'
	// start) opens, goes on signed, and the first signature covers what came before it.
	t.Run("WrittenBeforeSigning", func(t *testing.T) {
		ring, err := NewKeyring(at(5))
		if err != nil {
			t.Fatal(err)
		}
		signing := newBackend(WithSigner(ring))
		upgraded := func(t *testing.T) Journal {
			j := newBackend().open(t)
			before := appendFive(t, j)
			j = signing.reopen(t, j)
			checkSame(t, mustRead(t, j, "j", 1), before)
			for i := 5; i < 7; i++ {
				if e := mustAppend(t, j, "j", uint64(i+1), i, "event", `{"after":"upgrade"}`); e.Key != ring.Current(at(i)).ID || e.Sig == "" {
					t.Fatalf("entry %d after the upgrade signed %q by %q, want a signature by %q", e.Seq, e.Sig, e.Key, ring.Current(at(i)).ID)
				}
			}
			return j
		}

		j := upgraded(t)
		// Another node, holding the ring from its file, reads it and signs on.
		j = newBackend(WithSigner(reload(t, ring))).reopen(t, j)
		mustAppend(t, j, "j", 8, 7, "event", `{"after":"restart"}`)
		es := mustRead(t, j, "j", 1)
		if err := VerifySigned(es, ring.Public()); err != nil {
			t.Fatalf("verify the upgraded journal: %v", err)
		}
		if n := Unsigned(es); n != 5 || len(es) != 8 {
			t.Fatalf("%d entries, %d unsigned at the start; want 8, 5 (those before the upgrade)", len(es), n)
		}

		for _, f := range []struct {
			name string
			edit func([]Entry) []Entry
			want string
		}{
			{"EntryBeforeSigningChanged", func(es []Entry) []Entry {
				es[1].Data = json.RawMessage(`{"n":"forged"}`)
				return rechain(es, 2)
			}, "entry 6: its signature by key"},
			{"SignaturesRemoved", func(es []Entry) []Entry {
				es[5].Data = json.RawMessage(`{"n":"forged"}`)
				return unsign(rechain(es, 6), 6)
			}, "entry 6: not signed, though written at " + formatAt(at(5)) + ", after signing began"},
		} {
			t.Run(f.name, func(t *testing.T) {
				j := signing.rewrite(t, upgraded(t), "j", rewriteEntries(t, f.edit))
				if _, err := j.Read(ctx, "j", 1); err == nil || !strings.Contains(err.Error(), f.want) {
					t.Fatalf("read of the forgery: %v, want it refused naming %q", err, f.want)
				}
				if _, err := signing.reopen(t, j).Append(ctx, "j", 0, at(9), "x", nil); err == nil {
					t.Fatal("the store signed an entry over the forged chain")
				}
			})
		}
	})

	t.Run("OldSittingsReadAfterRotation", func(t *testing.T) {
		j := b.open(t)
		old := appendFive(t, j)                          // a sitting before the rotation
		mustAppend(t, j, "later", 0, 1, "x", `"before"`) // a sitting that goes on after it
		rotated, err := ring.Rotate(at(10))
		if err != nil {
			t.Fatal(err)
		}
		j = newBackend(WithSigner(reload(t, rotated))).reopen(t, j)
		checkSame(t, mustRead(t, j, "j", 1), old)
		after := mustAppend(t, j, "later", 0, 11, "x", `"after"`)
		newKey := rotated.Current(at(11)).ID
		if after.Key != newKey || newKey == old[0].Key {
			t.Fatalf("entry after the rotation signed by %q, want the new key %q (old key %q)", after.Key, newKey, old[0].Key)
		}
		later := mustRead(t, j, "later", 1)
		if err := VerifySigned(later, rotated.Public()); err != nil {
			t.Fatalf("a sitting signed by both keys: %v", err)
		}
		// Without the new public key, its entries cannot be trusted.
		if err := VerifySigned(later, ring.Public()); err == nil || !strings.Contains(err.Error(), `entry 2: signed with key "`+newKey+`", which is not among the trusted keys`) {
			t.Fatalf("verify with the keys before the rotation: %v", err)
		}
		if _, err := rotated.Rotate(at(5)); err == nil {
			t.Fatal("a rotation to a key starting before the newest one was accepted")
		}
	})

	t.Run("AnotherDeploymentsKeyRefused", func(t *testing.T) {
		j := b.open(t)
		appendFive(t, j)
		other, _ := newRing(t)
		j = newBackend(WithSigner(other)).reopen(t, j)
		if _, err := j.Read(ctx, "j", 1); err == nil || !strings.Contains(err.Error(), "not among the trusted keys") {
			t.Fatalf("read with another key ring: %v", err)
		}
	})
}
