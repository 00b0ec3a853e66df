package auth

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
)

// MinSecretBytes is the shortest secret accepted outside development: HS256
// is only as strong as its key, and RFC 7518 asks for at least the hash size.
const MinSecretBytes = 32

// KeySet maps API keys (the token's iss) to their secrets. Several keys let an
// operator rotate: add the new key, move issuers to it, then drop the old one.
type KeySet map[string]string

// ParseKeys reads keys written "key1: secret1, key2: secret2", the form of
// HEMICYCLE_KEYS and --keys (newlines separate pairs as well as commas; a
// secret may contain ':' but no space).
// Errors name the pair by position and key, never the secret.
func ParseKeys(s string) (KeySet, error) {
	keys := KeySet{}
	n := 0 // position of the pair, for messages
	for part := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		part = strings.TrimSpace(part)
		if part == "" { // a trailing comma or blank line says nothing
			continue
		}
		n++
		key, secret, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("keys: pair %d has no ':' between key and secret", n)
		}
		key, secret = strings.TrimSpace(key), strings.TrimSpace(secret)
		switch {
		case key == "":
			return nil, fmt.Errorf("keys: pair %d has an empty key", n)
		case strings.ContainsFunc(key, unicode.IsSpace):
			return nil, fmt.Errorf("keys: pair %d: key %q contains a space", n, key)
		case secret == "":
			return nil, fmt.Errorf("keys: pair %d (key %q) has an empty secret", n, key)
		case strings.ContainsFunc(secret, unicode.IsSpace):
			return nil, fmt.Errorf("keys: pair %d (key %q): secret contains a space", n, key)
		}
		if _, dup := keys[key]; dup {
			return nil, fmt.Errorf("keys: pair %d repeats key %q", n, key)
		}
		keys[key] = secret
	}
	if len(keys) == 0 {
		return nil, errors.New("keys: no key: secret pair given")
	}
	return keys, nil
}

// Validate checks that the set can serve: at least one key, no empty key or
// secret, and secrets of MinSecretBytes or more unless allowWeak (the --dev
// pair devkey/secret is weak on purpose).
func (k KeySet) Validate(allowWeak bool) error {
	if len(k) == 0 {
		return errors.New("keys: none configured")
	}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(k)) {
		secret := k[key]
		switch {
		case key == "":
			errs = append(errs, errors.New("keys: an API key is empty"))
		case secret == "":
			errs = append(errs, fmt.Errorf("keys: key %q has an empty secret", key))
		case len(secret) < MinSecretBytes && !allowWeak:
			errs = append(errs, fmt.Errorf("keys: key %q has a %d-byte secret, want at least %d (weak secrets are for development only)",
				key, len(secret), MinSecretBytes))
		}
	}
	return errors.Join(errs...)
}
