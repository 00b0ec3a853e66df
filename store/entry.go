package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"time"
	"unicode/utf8"
)

// Entry is one record of a journal.
type Entry struct {
	Journal string          `json:"journal"`       // journal name, e.g. the room or session id
	Seq     uint64          `json:"seq"`           // 1, 2, 3 ... without gaps
	At      time.Time       `json:"at"`            // given by the caller, stored in UTC
	Type    string          `json:"type"`          // what happened, defined by the caller
	Data    json.RawMessage `json:"data"`          // the event's JSON payload
	Prev    string          `json:"prev"`          // hash of entry Seq-1, "" for seq 1
	Hash    string          `json:"hash"`          // see the package documentation
	Key     string          `json:"key,omitempty"` // id of the node key that signed Hash
	Sig     string          `json:"sig,omitempty"` // Ed25519 signature of Hash, base64url
}

// Journal is an append-only, hash-chained log of entries, many journals per store.
type Journal interface {
	// Append adds an entry at the end of the journal and returns it once it is durable.
	// Appends to one journal are serialised. expectSeq, when not 0, is the seq the new
	// entry must take; if the journal has moved on (or is behind), Append returns an
	// error wrapping ErrConflict and appends nothing.
	Append(ctx context.Context, journal string, expectSeq uint64, at time.Time, typ string, data json.RawMessage) (Entry, error)
	// Read returns the entries with seq >= fromSeq (0 and 1 both mean all), checked
	// against each other and against entry fromSeq-1. An unknown journal reads empty.
	Read(ctx context.Context, journal string, fromSeq uint64) ([]Entry, error)
	// Journals lists the names of the journals that have entries, sorted.
	Journals(ctx context.Context) ([]string, error)
	Close() error
}

var (
	// ErrConflict reports that expectSeq did not match the journal's next seq.
	ErrConflict = errors.New("journal moved on: expected seq does not match")
	// ErrClosed reports a call on a closed store.
	ErrClosed = errors.New("journal store is closed")
)

// Option configures a store.
type Option func(*options)

type options struct {
	keys        *Keyring
	waitN       int
	waitTimeout time.Duration
}

func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithSigner makes the store sign every entry it appends with the ring's key for the entry's
// time, and refuse a journal whose last entry's signature does not verify with one of the
// ring's keys (see the package documentation).
func WithSigner(keys *Keyring) Option { return func(o *options) { o.keys = keys } }

// verifier is the keys Read checks with: nil when the store does not sign.
func (o options) verifier() PublicKeys {
	if o.keys == nil {
		return nil
	}
	return o.keys.Public()
}

// MaxNameLen is the longest journal name, in bytes. It keeps encoded file names under
// the 255-byte limit of common file systems.
const MaxNameLen = 80

// hashDomain versions the hash encoding; a new encoding gets a new tag.
const hashDomain = "hemicycle-journal-v1"

// EntryHash computes the hash that e must carry (its Hash field is ignored).
func EntryHash(e Entry) string {
	h := sha256.New()
	writeField(h, []byte(hashDomain))
	writeField(h, []byte(e.Journal))
	writeField(h, strconv.AppendUint(nil, e.Seq, 10))
	writeField(h, []byte(formatAt(e.At)))
	writeField(h, []byte(e.Type))
	writeField(h, e.Data)
	writeField(h, []byte(e.Prev))
	return hex.EncodeToString(h.Sum(nil))
}

func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

func formatAt(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// sigDomain versions what a signature covers; a new encoding gets a new tag.
const sigDomain = "hemicycle-journal-sig-v1"

// signedMessage is what an entry's signature covers: the domain tag, the key id and the
// entry's hash (as its 64 hex digits), each length-prefixed like the hash's fields. The hash
// already binds the entry to the whole chain before it, so a signature vouches for every
// entry up to its own.
func signedMessage(keyID, hash string) []byte {
	var b []byte
	for _, f := range []string{sigDomain, keyID, hash} {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// newEntry builds the entry that follows entry prevSeq (0 for an empty journal) from
// inputs already checked by checkAppend, signed when keys is not nil.
func newEntry(keys *Keyring, journal string, prevSeq uint64, prevHash string, at time.Time, typ string, data json.RawMessage) Entry {
	e := Entry{Journal: journal, Seq: prevSeq + 1, At: at, Type: typ, Data: data, Prev: prevHash}
	e.Hash = EntryHash(e)
	if keys != nil {
		keys.sign(&e)
	}
	return e
}

// checkName rejects journal names that could not be stored the same way by every
// implementation.
func checkName(journal string) error {
	switch {
	case journal == "":
		return errors.New("journal name is empty")
	case len(journal) > MaxNameLen:
		return fmt.Errorf("journal name %.20q... is %d bytes long, at most %d allowed", journal, len(journal), MaxNameLen)
	case !utf8.ValidString(journal):
		return fmt.Errorf("journal name %q is not valid UTF-8", journal)
	}
	return nil
}

// checkAppend validates Append's inputs and returns the time and payload in the
// form that is stored and hashed: UTC without monotonic reading, and the JSON text
// that encoding/json would write for the payload (compact, HTML characters escaped),
// so that marshalling an Entry again never changes its hashed bytes.
func checkAppend(journal string, at time.Time, typ string, data json.RawMessage) (time.Time, json.RawMessage, error) {
	if err := checkName(journal); err != nil {
		return time.Time{}, nil, err
	}
	if typ == "" {
		return time.Time{}, nil, fmt.Errorf("journal %q: entry type is empty", journal)
	}
	if !utf8.ValidString(typ) {
		return time.Time{}, nil, fmt.Errorf("journal %q: entry type %q is not valid UTF-8", journal, typ)
	}
	if at.IsZero() {
		return time.Time{}, nil, fmt.Errorf("journal %q: entry time is zero (the caller must give the time of the event)", journal)
	}
	at = at.UTC().Round(0)
	if y := at.Year(); y < 1 || y > 9999 {
		return time.Time{}, nil, fmt.Errorf("journal %q: entry time %s is outside years 1-9999", journal, at)
	}
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	canon, err := json.Marshal(data)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("journal %q: entry data is not valid JSON: %w", journal, err)
	}
	if !utf8.Valid(canon) {
		return time.Time{}, nil, fmt.Errorf("journal %q: entry data is not valid UTF-8", journal)
	}
	return at, canon, nil
}

// conflict builds the error for an expectSeq that does not match.
func conflict(journal string, expectSeq, next uint64) error {
	return fmt.Errorf("journal %q: %w (expected to append seq %d, next seq is %d)", journal, ErrConflict, expectSeq, next)
}
