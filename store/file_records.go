package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

var _ Records = (*FileJournal)(nil)

// Records live in dir/records/KIND/, one JSON file per record named as a journal file is
// (OpenFile skips directories, so they never pass for journals). A Put writes a temporary
// file, syncs it and renames it over the old one, so a crash leaves the old record or the
// new one, never half of either.

type fileRecord struct {
	Version uint64          `json:"version"`
	Data    json.RawMessage `json:"data"`
}

func (s *FileJournal) recordPath(kind, id string) string {
	return filepath.Join(s.dir, "records", kind, fileName(id))
}

// recordsOpen takes the records lock, or says the store is closed.
func (s *FileJournal) recordsOpen(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.recMu.Lock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		s.recMu.Unlock()
		return nil, ErrClosed
	}
	return s.recMu.Unlock, nil
}

// Put replaces the record if its stored version is expectVersion.
func (s *FileJournal) Put(ctx context.Context, kind, id string, expectVersion uint64, data json.RawMessage) (Record, error) {
	data, err := checkRecord(kind, id, data)
	if err != nil {
		return Record{}, err
	}
	unlock, err := s.recordsOpen(ctx)
	if err != nil {
		return Record{}, err
	}
	defer unlock()
	var have uint64
	if old, err := s.readRecord(kind, id); err == nil {
		have = old.Version
	} else if !errors.Is(err, ErrNotFound) {
		return Record{}, err
	}
	if have != expectVersion {
		return Record{}, recordConflict(kind, id, expectVersion, have)
	}
	rec := Record{Kind: kind, ID: id, Version: have + 1, Data: data}
	line, err := json.Marshal(fileRecord{Version: rec.Version, Data: data})
	if err != nil {
		return Record{}, fmt.Errorf("record %s %q: %w", kind, id, err)
	}
	if err := writeFileSynced(s.recordPath(kind, id), line); err != nil {
		return Record{}, fmt.Errorf("record %s %q: %w", kind, id, err)
	}
	return rec, nil
}

func (s *FileJournal) Get(ctx context.Context, kind, id string) (Record, error) {
	if _, err := checkRecord(kind, id, nil); err != nil {
		return Record{}, err
	}
	unlock, err := s.recordsOpen(ctx)
	if err != nil {
		return Record{}, err
	}
	defer unlock()
	return s.readRecord(kind, id)
}

func (s *FileJournal) readRecord(kind, id string) (Record, error) {
	b, err := os.ReadFile(s.recordPath(kind, id))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, recordNotFound(kind, id)
	}
	if err != nil {
		return Record{}, fmt.Errorf("record %s %q: %w", kind, id, err)
	}
	var fr fileRecord
	if err := json.Unmarshal(b, &fr); err != nil || fr.Version == 0 {
		return Record{}, fmt.Errorf("record %s %q: file %s is damaged: %v", kind, id, s.recordPath(kind, id), err)
	}
	return Record{Kind: kind, ID: id, Version: fr.Version, Data: fr.Data}, nil
}

func (s *FileJournal) List(ctx context.Context, kind string) ([]Record, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	unlock, err := s.recordsOpen(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	items, err := os.ReadDir(filepath.Join(s.dir, "records", kind))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list records %s: %w", kind, err)
	}
	var out []Record
	for _, it := range items {
		id, ok := journalName(it.Name())
		if !ok {
			continue // a temporary file left by a crash, or a stranger
		}
		rec, err := s.readRecord(kind, id)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	slices.SortFunc(out, func(a, b Record) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (s *FileJournal) Delete(ctx context.Context, kind, id string) error {
	if _, err := checkRecord(kind, id, nil); err != nil {
		return err
	}
	unlock, err := s.recordsOpen(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	path := s.recordPath(kind, id)
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete record %s %q: %w", kind, id, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("delete record %s %q: sync directory: %w", kind, id, err)
	}
	return nil
}

// writeFileSynced replaces path with b durably: temporary file, fsync, rename, fsync of
// the directory (created, with its parent synced, when missing).
func writeFileSynced(path string, b []byte) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(filepath.Dir(dir))); err != nil {
			return err
		}
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}
