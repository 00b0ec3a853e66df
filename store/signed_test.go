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

// rehash returns a journal's lines with edit applied to entry seq's payload and every hash
// from there recomputed, as someone who can write the store but lacks the key would do;
// strip removes the signatures too.
func rehash(t *testing.T, seq int, data string, strip bool) func([]string) []string {
	return func(lines []string) []string {
		prev := ""
		for i, l := range lines {
			e, err := decodeLine([]byte(l))
			if err != nil {
				t.Fatal(err)
			}
			if i+1 >= seq {
				if i+1 == seq {
					e.Data = json.RawMessage(data)
				}
				e.Prev = prev
				e.Hash = EntryHash(e)
				if strip {
					e.Key, e.Sig = "", ""
				}
			}
			b, _ := json.Marshal(e)
			lines[i], prev = string(b), e.Hash
		}
		return lines
	}
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

	forgeries := []struct {
		name  string
		strip bool
		want  string
	}{
		{"SignaturesKept", false, "entry 2: its signature by key"},
		{"SignaturesRemoved", true, "entry 2: not signed"},
	}
	for _, f := range forgeries {
		t.Run("RehashedWithoutTheKey"+f.name, func(t *testing.T) {
			j := b.open(t)
			appendFive(t, j)
			var forged []Entry
			j = b.rewrite(t, j, "j", func(lines []string) []string {
				lines = rehash(t, 2, `{"n":"forged"}`, f.strip)(lines)
				for _, l := range lines {
					e, _ := decodeLine([]byte(l))
					forged = append(forged, e)
				}
				return lines
			})
			if err := Verify(forged); err != nil {
				t.Fatalf("the forgery should hold as a hash chain: %v", err)
			}
			if err := VerifySigned(forged, ring.Public()); err == nil || !strings.Contains(err.Error(), f.want) {
				t.Fatalf("VerifySigned of the forgery: %v, want an error naming %q", err, f.want)
			}
			for _, from := range []uint64{1, 4} {
				if es, err := j.Read(ctx, "j", from); err == nil || !strings.Contains(err.Error(), "entry ") {
					t.Fatalf("read from %d of the forgery: %d entries, %v; want it refused", from, len(es), err)
				}
			}
			if _, err := j.Append(ctx, "j", 0, at(9), "x", nil); err == nil {
				t.Fatal("the store signed an entry over the forged chain")
			}
			// A node that just started refuses it too.
			j = b.reopen(t, j)
			if _, err := j.Read(ctx, "j", 1); err == nil || !strings.Contains(err.Error(), f.want) {
				t.Fatalf("read after restart: %v, want an error naming %q", err, f.want)
			}
			if _, err := j.Append(ctx, "j", 0, at(9), "x", nil); err == nil {
				t.Fatal("after restart, the store signed an entry over the forged chain")
			}
		})
	}

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
