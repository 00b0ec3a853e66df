package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Records keeps what changes in place beside the journals: a body and its roster, a
// prepared sitting, an invitation, a member's contact details. A journal cannot forget;
// these can (Delete really removes, which privacy asks of contact details), and each
// change that matters is journalled by the caller with who and when.
//
// Every record has a version, 1 for the first Put and one more on each; Put takes the
// version the caller read (0 for a record that must not exist yet) and refuses with
// ErrConflict when another writer came first, so read-modify-write never loses a change.
type Records interface {
	Put(ctx context.Context, kind, id string, expectVersion uint64, data json.RawMessage) (Record, error)
	// Get returns the record, or an error wrapping ErrNotFound.
	Get(ctx context.Context, kind, id string) (Record, error)
	// List returns the records of a kind, sorted by id.
	List(ctx context.Context, kind string) ([]Record, error)
	// Delete removes the record for good; deleting an absent record is not an error.
	Delete(ctx context.Context, kind, id string) error
}

// Record is one stored document.
type Record struct {
	Kind    string          `json:"kind"`
	ID      string          `json:"id"`
	Version uint64          `json:"version"`
	Data    json.RawMessage `json:"data"`
}

// ErrNotFound reports a record that does not exist.
var ErrNotFound = errors.New("record not found")

// checkRecord refuses kinds and ids that could not be stored the same way everywhere,
// and returns the payload in its canonical compact form.
func checkRecord(kind, id string, data json.RawMessage) (json.RawMessage, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	if err := checkName(id); err != nil {
		return nil, fmt.Errorf("record %s: id: %w", kind, err)
	}
	if data == nil {
		return nil, nil
	}
	canon, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("record %s %q: data is not valid JSON: %w", kind, id, err)
	}
	return canon, nil
}

// checkKind keeps kinds to plain lowercase words: they name a directory and a key part.
func checkKind(kind string) error {
	if kind == "" || len(kind) > 32 {
		return fmt.Errorf("record kind %q must be 1 to 32 characters", kind)
	}
	for i := 0; i < len(kind); i++ {
		if c := kind[i]; !(c >= 'a' && c <= 'z' || c == '-') {
			return fmt.Errorf("record kind %q: only a-z and - allowed", kind)
		}
	}
	return nil
}

func recordConflict(kind, id string, expect, have uint64) error {
	return fmt.Errorf("record %s %q: %w (expected version %d, stored version %d)", kind, id, ErrConflict, expect, have)
}

func recordNotFound(kind, id string) error {
	return fmt.Errorf("record %s %q: %w", kind, id, ErrNotFound)
}
