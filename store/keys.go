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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Keyring holds a node's journal signing keys, rotated like API keys: several keys known by
// id, one current that signs every new entry, the retired ones kept so that the entries they
// signed still verify. It is read-only once loaded, so a store may share it between appends.
//
// On disk (KeyringFile, mode 0600) and on the wire it is a JWK Set (RFC 7517) of Ed25519
// keys (RFC 8037: kty OKP, crv Ed25519, x the public key, d the private seed, base64url),
// with "current" naming the signing key and each key's "created" and "retired" times.
// PublicKeys reads the same document without the private parts, as the node publishes it.
type Keyring struct {
	current string
	keys    []signingKey // in order of creation
}

type signingKey struct {
	PublicKey
	private ed25519.PrivateKey
}

// PublicKey is a journal signing key as verifiers see it.
type PublicKey struct {
	ID      string
	Key     ed25519.PublicKey
	Created time.Time // when the key was made
	Retired time.Time // when a newer key became current; zero for the current key
}

// PublicKeys are the keys a verifier trusts, by id.
type PublicKeys map[string]PublicKey

// KeyringFile is the key ring's file name in the data directory.
const KeyringFile = "journal-keys.json"

// jwk is one key of the JWK Set document.
type jwk struct {
	Kty     string    `json:"kty"`
	Crv     string    `json:"crv"`
	Alg     string    `json:"alg"`
	Use     string    `json:"use"`
	Kid     string    `json:"kid"`
	X       string    `json:"x"`
	D       string    `json:"d,omitempty"`
	Created time.Time `json:"created"`
	Retired time.Time `json:"retired,omitzero"`
}

type jwkSet struct {
	Current string `json:"current,omitempty"`
	Keys    []jwk  `json:"keys"`
}

var b64 = base64.RawURLEncoding

// newSigningKey makes a key whose id is its creation date and the start of its public key's
// SHA-256, so ids are readable in the minutes and two keys never share one.
func newSigningKey(now time.Time) (signingKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return signingKey{}, fmt.Errorf("generate journal signing key: %w", err)
	}
	sum := sha256.Sum256(pub)
	id := now.UTC().Format("20060102") + "-" + hex.EncodeToString(sum[:4])
	return signingKey{PublicKey: PublicKey{ID: id, Key: pub, Created: now.UTC().Round(0)}, private: priv}, nil
}

// NewKeyring returns a key ring with one new key, current.
func NewKeyring(now time.Time) (*Keyring, error) {
	k, err := newSigningKey(now)
	if err != nil {
		return nil, err
	}
	return &Keyring{current: k.ID, keys: []signingKey{k}}, nil
}

// Rotate returns a key ring in which a new key is current and the old current key is retired
// at now; every key it held still verifies. k itself is unchanged.
func (k *Keyring) Rotate(now time.Time) (*Keyring, error) {
	nk, err := newSigningKey(now)
	if err != nil {
		return nil, err
	}
	out := &Keyring{current: nk.ID, keys: slices.Clone(k.keys)}
	for i := range out.keys {
		if out.keys[i].ID == k.current {
			out.keys[i].Retired = nk.Created
		}
		if out.keys[i].ID == nk.ID {
			return nil, fmt.Errorf("rotate journal keys: new key id %s is already in the ring", nk.ID)
		}
	}
	out.keys = append(out.keys, nk)
	return out, nil
}

// Current is the id of the key that signs new entries.
func (k *Keyring) Current() string { return k.current }

// Public returns every key of the ring without its private part.
func (k *Keyring) Public() PublicKeys {
	out := make(PublicKeys, len(k.keys))
	for _, sk := range k.keys {
		out[sk.ID] = sk.PublicKey
	}
	return out
}

// sign signs an entry's hash with the current key.
func (k *Keyring) sign(e *Entry) {
	for _, sk := range k.keys {
		if sk.ID == k.current {
			e.Key = sk.ID
			e.Sig = b64.EncodeToString(ed25519.Sign(sk.private, signedMessage(e.Key, e.Hash)))
			return
		}
	}
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
	keys := make([]PublicKey, 0, len(p))
	for _, pk := range p {
		keys = append(keys, pk)
	}
	slices.SortFunc(keys, func(a, b PublicKey) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return keys
}

func (pk PublicKey) jwk() jwk {
	return jwk{Kty: "OKP", Crv: "Ed25519", Alg: "EdDSA", Use: "sig", Kid: pk.ID, X: b64.EncodeToString(pk.Key), Created: pk.Created, Retired: pk.Retired}
}

// Encoded is the public key in base64url, as published and printed in the minutes.
func (pk PublicKey) Encoded() string { return b64.EncodeToString(pk.Key) }

// ParsePublicKeys reads a JWK Set of Ed25519 keys: the node's published keys or its key ring
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
	return PublicKey{ID: j.Kid, Key: x, Created: j.Created, Retired: j.Retired}, nil
}

// ParseKeyring reads a key ring file's content: every key must carry its private part, and
// the current key must be one of them.
func ParseKeyring(data []byte) (*Keyring, error) {
	set, err := parseSet(data)
	if err != nil {
		return nil, err
	}
	k := &Keyring{current: set.Current}
	for i, j := range set.Keys {
		pk, err := j.public(i + 1)
		if err != nil {
			return nil, err
		}
		d, err := b64.DecodeString(j.D)
		if err != nil || len(d) != ed25519.SeedSize {
			return nil, fmt.Errorf("journal keys: key %q: d is not a base64url Ed25519 private seed", pk.ID)
		}
		priv := ed25519.NewKeyFromSeed(d)
		if !priv.Public().(ed25519.PublicKey).Equal(pk.Key) {
			return nil, fmt.Errorf("journal keys: key %q: its private part does not match its public key x", pk.ID)
		}
		if slices.ContainsFunc(k.keys, func(o signingKey) bool { return o.ID == pk.ID }) {
			return nil, fmt.Errorf("journal keys: key %d repeats id %q", i+1, pk.ID)
		}
		k.keys = append(k.keys, signingKey{PublicKey: pk, private: priv})
	}
	if !slices.ContainsFunc(k.keys, func(o signingKey) bool { return o.ID == k.current }) {
		return nil, fmt.Errorf("journal keys: current key %q is not in the set", k.current)
	}
	return k, nil
}

// MarshalJSON writes the key ring file's content, private parts included.
func (k *Keyring) MarshalJSON() ([]byte, error) {
	set := jwkSet{Current: k.current}
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
		return nil, fmt.Errorf("journal keys: %s is readable by others (mode %04o): the node's private signing keys must be mode 0600 (chmod 600 %s)", path, fi.Mode().Perm(), path)
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

// LoadOrCreateKeyring reads the key ring at path, or makes one with a single key and writes
// it there (mode 0600) when no file exists: what a node does on its first start. created
// reports the second case.
func LoadOrCreateKeyring(path string, now time.Time) (k *Keyring, created bool, err error) {
	k, err = LoadKeyring(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if k, err = NewKeyring(now); err != nil {
		return nil, false, err
	}
	if err := k.Save(path); err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// Save writes the key ring to path durably and atomically (a new file renamed over the old
// one, mode 0600), so that a crash leaves either the old ring or the new one.
func (k *Keyring) Save(path string) error {
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
	defer os.Remove(f.Name()) // fails harmlessly once renamed
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
		err = os.Rename(f.Name(), path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("journal keys: write %s: %w", path, err)
	}
	return nil
}
