package store

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// ChainError names the first entry at which a journal does not hold.
type ChainError struct {
	Seq     uint64 // the entry found wrong, or the first missing one for a gap
	Index   int    // position in the checked slice (line number - 1 in a file)
	Problem string // full description, e.g. "entry 17: hash mismatch"
}

func (e *ChainError) Error() string { return e.Problem }

// LineError reports a line of a journal file that is not an entry at all.
type LineError struct {
	Line int // 1-based
	Err  error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("line %d: not a journal entry: %v", e.Line, e.Err)
}
func (e *LineError) Unwrap() error { return e.Err }

// TornTailError describes the end of a journal file that holds no complete entry:
// what an append interrupted by a crash leaves behind. Such an entry was never
// acknowledged, since Append returns only after the whole line is on disk.
type TornTailError struct {
	Path   string
	Offset int64  // where the incomplete entry starts
	Tail   []byte // its bytes
	Cut    bool   // true when OpenFile truncated the file at Offset
}

func (e *TornTailError) Error() string {
	if e.Cut {
		return fmt.Sprintf("%s: cut %d bytes at offset %d: an incomplete last entry left by an interrupted write, never acknowledged", e.Path, len(e.Tail), e.Offset)
	}
	return fmt.Sprintf("%s: %d bytes at offset %d are an incomplete last entry left by an interrupted write", e.Path, len(e.Tail), e.Offset)
}

// Verify checks a whole journal, which must start at entry 1. The error, a
// *ChainError, names the first entry that does not hold.
func Verify(entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	return verifyChain(entries[0].Journal, 0, "", entries)
}

// VerifySigned checks a whole journal like Verify, then every entry's signature against
// keys. Entries written before signing began (before the oldest key's start) may be
// unsigned, as journals kept by a node that did not sign yet are: the first signed entry's
// signature covers them, since its hash covers the chain before it. From the first signed
// entry on, or from the oldest key's start, every entry must be signed. The error, a
// *ChainError, names the first entry that does not hold: one changed and re-hashed without
// the key fails its signature even though the chain holds.
func VerifySigned(entries []Entry, keys PublicKeys) error {
	if err := Verify(entries); err != nil {
		return err
	}
	return keys.checkAll(entries)
}

// Unsigned counts the entries at the start of a journal that are not signed: those written
// before signing began, when VerifySigned accepted the journal.
func Unsigned(entries []Entry) int {
	for i := range entries {
		if entries[i].signed() {
			return i
		}
	}
	return len(entries)
}

func (e *Entry) signed() bool { return e.Key != "" || e.Sig != "" }

// SigningBegan is when signing began for these keys: the start of the oldest one. Unsigned
// entries from then on are refused.
func (p PublicKeys) SigningBegan() time.Time {
	if len(p) == 0 {
		return time.Time{}
	}
	return p.sorted()[0].From
}

// checkAll checks the signature of every entry, past an unsigned start written before signing
// began; the entries' chain is already checked.
func (p PublicKeys) checkAll(entries []Entry) error {
	began := p.SigningBegan()
	firstSigned := -1
	for i := range entries {
		e := &entries[i]
		switch {
		case e.signed():
			if firstSigned < 0 {
				firstSigned = i
			}
			if err := p.check(e, i); err != nil {
				return err
			}
		case firstSigned >= 0:
			return chainError(e, i, "not signed, though entry %d before it is: it was rewritten by someone without the journal key, or appended by a node that does not sign", entries[firstSigned].Seq)
		case !e.At.Before(began):
			return chainError(e, i, "not signed, though written at %s, after signing began (%s): it was rewritten by someone without the journal key, or appended by a node that does not sign",
				formatAt(e.At), formatAt(began))
		}
	}
	return nil
}

func chainError(e *Entry, i int, format string, args ...any) error {
	return &ChainError{Seq: e.Seq, Index: i, Problem: fmt.Sprintf("entry %d: ", e.Seq) + fmt.Sprintf(format, args...)}
}

// check verifies the signature of one signed entry; i is its index, for the error.
func (p PublicKeys) check(e *Entry, i int) error {
	pk, ok := p[e.Key]
	if !ok {
		return chainError(e, i, "signed with key %q, which is not among the trusted keys (%s)", e.Key, strings.Join(p.IDs(), ", "))
	}
	sig, err := b64.DecodeString(e.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return chainError(e, i, "its signature is not a base64url Ed25519 signature")
	}
	if !ed25519.Verify(pk.Key, signedMessage(e.Key, e.Hash), sig) {
		return chainError(e, i, "its signature by key %q does not match its hash: the entry, or an entry before it, was changed or removed and the chain re-hashed without the key", e.Key)
	}
	return nil
}

// checkSealed verifies a chain already checked link by link the cheap way: the last entry's
// signature vouches for all of them, since its hash covers the chain. Only when the last
// entry is unsigned, or its signature fails, are the others checked: to accept a journal
// written before signing began, or to name the first entry that was changed.
func (p PublicKeys) checkSealed(entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	last := len(entries) - 1
	if entries[last].signed() && p.check(&entries[last], last) == nil {
		return nil
	}
	return p.checkAll(entries)
}

// VerifyAfter checks entries that continue from prev, an entry already trusted: for
// instance the result of Read(ctx, journal, prev.Seq+1).
func VerifyAfter(prev Entry, entries []Entry) error {
	return verifyChain(prev.Journal, prev.Seq, prev.Hash, entries)
}

func verifyChain(journal string, lastSeq uint64, lastHash string, entries []Entry) error {
	for i := range entries {
		e := &entries[i]
		want := lastSeq + 1
		switch {
		case e.Seq > want:
			// Tell a reordering (the missing entry comes later) from a removal.
			for j := i + 1; j < len(entries); j++ {
				if entries[j].Seq == want {
					return &ChainError{Seq: e.Seq, Index: i, Problem: fmt.Sprintf("entry %d: out of order, found before entry %d", e.Seq, want)}
				}
			}
			if lastSeq == 0 {
				return &ChainError{Seq: 1, Index: i, Problem: fmt.Sprintf("gap after 0: the journal starts at entry %d", e.Seq)}
			}
			return &ChainError{Seq: want, Index: i, Problem: fmt.Sprintf("gap after %d: next entry is %d", lastSeq, e.Seq)}
		case e.Seq < want:
			return &ChainError{Seq: e.Seq, Index: i, Problem: fmt.Sprintf("entry %d: out of order, found after entry %d", e.Seq, lastSeq)}
		case e.Journal != journal:
			return &ChainError{Seq: e.Seq, Index: i, Problem: fmt.Sprintf("entry %d: belongs to journal %q, not %q", e.Seq, e.Journal, journal)}
		case e.Prev != lastHash:
			if lastSeq == 0 {
				return &ChainError{Seq: e.Seq, Index: i, Problem: "entry 1: prev is not empty"}
			}
			return &ChainError{Seq: e.Seq, Index: i, Problem: fmt.Sprintf("entry %d: prev does not match entry %d", e.Seq, lastSeq)}
		case e.Hash != EntryHash(*e):
			return &ChainError{Seq: e.Seq, Index: i, Problem: fmt.Sprintf("entry %d: hash mismatch", e.Seq)}
		}
		lastSeq, lastHash = e.Seq, e.Hash
	}
	return nil
}

// checkRead verifies entries read for Read(journal, fromSeq), which start one entry
// early (at fromSeq-1) when fromSeq > 1 to check the link, and returns those asked for.
// With keys, the signature of the last entry read must hold too.
func checkRead(keys PublicKeys, journal string, fromSeq uint64, entries []Entry) ([]Entry, error) {
	if fromSeq <= 1 {
		if err := verifyChain(journal, 0, "", entries); err != nil {
			return nil, err
		}
		if keys != nil {
			if err := keys.checkSealed(entries); err != nil {
				return nil, err
			}
		}
		return entries, nil
	}
	if len(entries) == 0 {
		return nil, nil
	}
	anchor := entries[0]
	switch {
	case anchor.Seq != fromSeq-1:
		return nil, fmt.Errorf("entry %d found where entry %d belongs", anchor.Seq, fromSeq-1)
	case anchor.Journal != journal:
		return nil, fmt.Errorf("entry %d belongs to journal %q, not %q", anchor.Seq, anchor.Journal, journal)
	}
	if err := VerifyAfter(anchor, entries[1:]); err != nil {
		return nil, err
	}
	if keys != nil {
		if err := keys.checkSealed(entries); err != nil {
			return nil, err
		}
	}
	return entries[1:], nil
}

// VerifyFile checks a journal file offline (for `hemicycle journal verify FILE`): its hash
// chain and, when keys is not nil, every entry's signature. It returns the entries, from the
// first, found sound, and the first problem: a *ChainError, a *LineError, or a
// *TornTailError for an incomplete last line.
func VerifyFile(path string, keys PublicKeys) (sound []Entry, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("verify journal file: %w", err)
	}
	sc, lineErr := scanJournal(b)
	verify := Verify
	if keys != nil {
		verify = func(es []Entry) error { return VerifySigned(es, keys) }
	}
	if err := verify(sc.entries); err != nil {
		var ce *ChainError
		errors.As(err, &ce)
		return sc.entries[:ce.Index], err
	}
	if lineErr != nil {
		return sc.entries, lineErr
	}
	if sc.tail != nil {
		return sc.entries, &TornTailError{Path: path, Offset: sc.end, Tail: sc.tail}
	}
	return sc.entries, nil
}

// scanned is the content of a journal file.
type scanned struct {
	entries []Entry
	offsets []int64 // offsets[i] is where entries[i]'s line starts
	end     int64   // end of the last entry's line
	tail    []byte  // bytes after end that are no entry (a torn write), nil if none
}

// scanJournal splits a journal file into entries without checking the chain. Only
// the last line may fail to parse (an interrupted write, reported as tail); a bad
// line before it is a *LineError, the entries before it are returned.
func scanJournal(b []byte) (scanned, error) {
	var sc scanned
	for off := 0; off < len(b); {
		line, next, terminated := b[off:], len(b), false
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line, next, terminated = line[:i], off+i+1, true
		}
		e, err := decodeLine(line)
		if err != nil || !terminated {
			if next == len(b) {
				sc.tail = b[off:]
				return sc, nil
			}
			return sc, &LineError{Line: len(sc.entries) + 1, Err: err}
		}
		sc.entries = append(sc.entries, e)
		sc.offsets = append(sc.offsets, int64(off))
		sc.end = int64(next)
		off = next
	}
	return sc, nil
}

// decodeLine parses one JSON line strictly: unknown fields and trailing data are
// refused, since nothing but the store writes these files.
func decodeLine(line []byte) (Entry, error) {
	if len(line) == 0 || line[0] != '{' {
		return Entry{}, errors.New("not a JSON object")
	}
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return Entry{}, errors.New("unexpected data after the entry")
	}
	if e.Seq == 0 {
		return Entry{}, errors.New("seq is missing")
	}
	return e, nil
}
