package store

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ingeco/hemicycle/council"
)

// Keyring holds the journal signing keys of a deployment, rotated like API keys: several keys
// known by id, each signing the entries from its start time until the next key's, the older
// ones kept so that what they signed still verifies. Every node of a cluster holds the same
// ring (see KeyringFile), so that each verifies what any other signed. It is read-only once
// built, so stores share it between appends.
//
// On disk it is a JWK Set (RFC 7517) of Ed25519 keys (RFC 8037: kty OKP, crv Ed25519, x the
// public key, d the private seed, base64url) with each key's "from" time. PublicKeys reads
// the same document without the private parts, as the node publishes it.
type Keyring struct {
	keys []signingKey // by start time, oldest first
}

type signingKey struct {
	PublicKey
	private ed25519.PrivateKey
}

// PublicKey is a journal signing key as verifiers see it.
type PublicKey struct {
	ID   string
	Key  ed25519.PublicKey
	From time.Time // it signs the entries whose time is from this one on, until the next key's
}

// PublicKeys are the keys a verifier trusts, by id.
type PublicKeys map[string]PublicKey

// KeyringFile is the key ring's default file name, in the data directory beside the journal
// directory (DATA_DIR/journal-keys.json).
const KeyringFile = "journal-keys.json"

// jwk is one key of the JWK Set document.
type jwk struct {
	Kty  string    `json:"kty"`
	Crv  string    `json:"crv"`
	Alg  string    `json:"alg"`
	Use  string    `json:"use"`
	Kid  string    `json:"kid"`
	X    string    `json:"x"`
	D    string    `json:"d,omitempty"`
	From time.Time `json:"from"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

var b64 = base64.RawURLEncoding

// newSigningKey makes a key whose id is its start date and the beginning of its public key's
// SHA-256: readable in the minutes, and two keys never share one.
func newSigningKey(from time.Time) (signingKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return signingKey{}, fmt.Errorf("generate a journal signing key: %w", err)
	}
	sum := sha256.Sum256(pub)
	from = from.UTC().Round(0)
	id := from.Format("20060102") + "-" + hex.EncodeToString(sum[:4])
	return signingKey{PublicKey: PublicKey{ID: id, Key: pub, From: from}, private: priv}, nil
}

// NewKeyring returns a key ring with one new key, signing from from on.
func NewKeyring(from time.Time) (*Keyring, error) {
	k, err := newSigningKey(from)
	if err != nil {
		return nil, err
	}
	return &Keyring{keys: []signingKey{k}}, nil
}

// Rotate returns a key ring with a new key that signs the entries from from on; the older
// keys stay, for what they signed. Several nodes take a start time a little ahead, so that
// the new ring reaches every node before any signs with the new key. k is unchanged.
func (k *Keyring) Rotate(from time.Time) (*Keyring, error) {
	newest := k.keys[len(k.keys)-1]
	if !from.After(newest.From) {
		return nil, fmt.Errorf("rotate the journal keys: the new key must start after the newest one, %s (from %s)", newest.ID, newest.From.Format(time.RFC3339))
	}
	nk, err := newSigningKey(from)
	if err != nil {
		return nil, err
	}
	return &Keyring{keys: append(slices.Clone(k.keys), nk)}, nil
}

// signer is the key that signs an entry of time at: the newest one started by then, or the
// oldest when at comes before all of them.
func (k *Keyring) signer(at time.Time) *signingKey {
	for i := len(k.keys) - 1; i > 0; i-- {
		if !at.Before(k.keys[i].From) {
			return &k.keys[i]
		}
	}
	return &k.keys[0]
}

// Current is the key that signs entries of time at.
func (k *Keyring) Current(at time.Time) PublicKey { return k.signer(at).PublicKey }

// Public returns every key of the ring without its private part.
func (k *Keyring) Public() PublicKeys {
	out := make(PublicKeys, len(k.keys))
	for _, sk := range k.keys {
		out[sk.ID] = sk.PublicKey
	}
	return out
}

// sign signs an entry's hash with the key of the entry's time.
func (k *Keyring) sign(e *Entry) {
	sk := k.signer(e.At)
	e.Key = sk.ID
	e.Sig = b64.EncodeToString(ed25519.Sign(sk.private, signedMessage(e.Key, e.Hash)))
}

// MarshalJSON writes the public keys as a JWK Set, oldest first.
func (p PublicKeys) MarshalJSON() ([]byte, error) {
	set := jwkSet{Keys: []jwk{}}
	for _, pk := range p.sorted() {
		set.Keys = append(set.Keys, pk.jwk())
	}
	return json.Marshal(set)
}

func (p PublicKeys) sorted() []PublicKey {
	keys := slices.Collect(maps.Values(p))
	slices.SortFunc(keys, func(a, b PublicKey) int {
		if c := a.From.Compare(b.From); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return keys
}

// Merge adds the keys of other, as when a verifier trusts the keys of several deployments; a
// key id both hold must be the same key.
func (p PublicKeys) Merge(other PublicKeys) error {
	for id, pk := range other {
		if have, ok := p[id]; ok && !have.Key.Equal(pk.Key) {
			return fmt.Errorf("journal keys: two different keys have the id %q", id)
		}
		p[id] = pk
	}
	return nil
}

// IDs lists the keys' ids, oldest first, for messages.
func (p PublicKeys) IDs() []string {
	var ids []string
	for _, pk := range p.sorted() {
		ids = append(ids, pk.ID)
	}
	return ids
}

func (pk PublicKey) jwk() jwk {
	return jwk{Kty: "OKP", Crv: "Ed25519", Alg: "EdDSA", Use: "sig", Kid: pk.ID, X: pk.Encoded(), From: pk.From}
}

// Encoded is the public key in base64url, as published and printed in the minutes.
func (pk PublicKey) Encoded() string { return b64.EncodeToString(pk.Key) }

// ParsePublicKeys reads a JWK Set of Ed25519 keys: the keys a node publishes, or its key ring
// file (whose private parts it ignores).
func ParsePublicKeys(data []byte) (PublicKeys, error) {
	set, err := parseSet(data)
	if err != nil {
		return nil, err
	}
	out := PublicKeys{}
	for i, j := range set.Keys {
		pk, err := j.public(i + 1)
		if err != nil {
			return nil, err
		}
		if _, dup := out[pk.ID]; dup {
			return nil, fmt.Errorf("journal keys: key %d repeats id %q", i+1, pk.ID)
		}
		out[pk.ID] = pk
	}
	return out, nil
}

func parseSet(data []byte) (jwkSet, error) {
	var set jwkSet
	if err := json.Unmarshal(data, &set); err != nil {
		return set, fmt.Errorf("journal keys: not a JWK Set: %w", err)
	}
	if len(set.Keys) == 0 {
		return set, errors.New(`journal keys: the set has no key ("keys" is empty or missing)`)
	}
	return set, nil
}

func (j jwk) public(n int) (PublicKey, error) {
	switch {
	case j.Kid == "":
		return PublicKey{}, fmt.Errorf("journal keys: key %d has no kid", n)
	case j.Kty != "OKP" || j.Crv != "Ed25519":
		return PublicKey{}, fmt.Errorf("journal keys: key %q is %s/%s, only OKP/Ed25519 is used", j.Kid, j.Kty, j.Crv)
	case j.Alg != "" && j.Alg != "EdDSA":
		return PublicKey{}, fmt.Errorf("journal keys: key %q has alg %q, want EdDSA", j.Kid, j.Alg)
	}
	x, err := b64.DecodeString(j.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("journal keys: key %q: x is not a base64url Ed25519 public key", j.Kid)
	}
	return PublicKey{ID: j.Kid, Key: x, From: j.From}, nil
}

// ParseKeyring reads a key ring file's content: every key with its private part.
func ParseKeyring(data []byte) (*Keyring, error) {
	set, err := parseSet(data)
	if err != nil {
		return nil, err
	}
	k := &Keyring{}
	for i, j := range set.Keys {
		pk, err := j.public(i + 1)
		if err != nil {
			return nil, err
		}
		d, err := b64.DecodeString(j.D)
		if err != nil || len(d) != ed25519.SeedSize {
			return nil, fmt.Errorf("journal keys: key %q: d is not a base64url Ed25519 private seed (is this the published keys rather than the key ring?)", pk.ID)
		}
		priv := ed25519.NewKeyFromSeed(d)
		if !priv.Public().(ed25519.PublicKey).Equal(pk.Key) {
			return nil, fmt.Errorf("journal keys: key %q: its private part does not match its public key x", pk.ID)
		}
		if slices.ContainsFunc(k.keys, func(o signingKey) bool { return o.ID == pk.ID }) {
			return nil, fmt.Errorf("journal keys: key %d repeats id %q", i+1, pk.ID)
		}
		if n := len(k.keys); n > 0 && !pk.From.After(k.keys[n-1].From) {
			return nil, fmt.Errorf("journal keys: key %q starts at %s, not after key %q: keys go oldest first", pk.ID, pk.From.Format(time.RFC3339), k.keys[n-1].ID)
		}
		k.keys = append(k.keys, signingKey{PublicKey: pk, private: priv})
	}
	return k, nil
}

// MarshalJSON writes the key ring file's content, private parts included.
func (k *Keyring) MarshalJSON() ([]byte, error) {
	var set jwkSet
	for _, sk := range k.keys {
		j := sk.jwk()
		j.D = b64.EncodeToString(sk.private.Seed())
		set.Keys = append(set.Keys, j)
	}
	return json.MarshalIndent(set, "", "  ")
}

// LoadKeyring reads a key ring file, refusing one that others than its owner may read.
func LoadKeyring(path string) (*Keyring, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("journal keys: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("journal keys: %s may be read by others (mode %04o): the private signing keys must be mode 0600 (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("journal keys: %w", err)
	}
	k, err := ParseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateKeyring reads the key ring at path, or makes one with a single key starting at
// now and writes it there when no file exists: what a development node does on its first
// start. Nodes starting at once on the same path end with the same ring: only the first
// creates the file, the others read it. created reports that this call made it.
func LoadOrCreateKeyring(path string, now time.Time) (k *Keyring, created bool, err error) {
	k, err = LoadKeyring(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if k, err = NewKeyring(now); err != nil {
		return nil, false, err
	}
	err = k.write(path, func(tmp, path string) error { return os.Link(tmp, path) })
	if errors.Is(err, fs.ErrExist) {
		k, err = LoadKeyring(path)
		return k, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// Save writes the key ring to path durably and atomically (a new file, mode 0600, renamed
// over the old one), so that a crash leaves either the old ring or the new one.
func (k *Keyring) Save(path string) error { return k.write(path, os.Rename) }

// write writes the ring to a new file beside path, mode 0600, synced, then puts it in place
// with put (rename over, or link where nothing is) and syncs the directory.
func (k *Keyring) write(path string, put func(tmp, path string) error) error {
	data, err := k.MarshalJSON()
	if err != nil {
		return fmt.Errorf("journal keys: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("journal keys: %w", err)
	}
	f, err := os.CreateTemp(dir, ".journal-keys-*")
	if err != nil {
		return fmt.Errorf("journal keys: %w", err)
	}
	defer os.Remove(f.Name()) // the ring is at path by then, or was not written
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = put(f.Name(), path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("journal keys: write %s: %w", path, err)
	}
	return nil
}

// Seal is what the minutes print of a journal's last entry: its hash, its signature and the
// public key that checks it (when keys holds it).
func Seal(last Entry, keys PublicKeys) *council.JournalSeal {
	s := &council.JournalSeal{Journal: last.Journal, Entries: last.Seq, Hash: last.Hash, KeyID: last.Key, Signature: last.Sig}
	if pk, ok := keys[last.Key]; ok && last.Sig != "" {
		s.PublicKey = pk.Encoded()
	}
	return s
}
