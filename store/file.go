package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// FileJournal is the embedded store: one append-only JSON-lines file per journal in a
// directory, each line one Entry. It is safe for concurrent use; one process at a
// time may open a directory.
type FileJournal struct {
	dir      string
	lock     *os.File
	recovery []error
	keys     *Keyring   // signs appended entries; nil when the store does not sign
	verifier PublicKeys // what Read checks signatures with; nil when the store does not sign

	recMu sync.Mutex // serialises the records (file_records.go)

	mu     sync.Mutex // guards logs and closed
	logs   map[string]*fileLog
	closed bool
}

// fileLog is one journal's file and what is known of its end.
type fileLog struct {
	name, path string
	turn       chan struct{} // a token held while using the fields below; a channel so waiting obeys ctx

	f        *os.File // nil until the first append creates the file
	offsets  []int64  // offsets[i] is where entry i+1's line starts
	size     int64    // end of the last acknowledged line
	lastHash string
	damaged  error // set when the file cannot be trusted or extended any more
	closed   bool
}

var _ Journal = (*FileJournal)(nil)

// OpenFile opens (creating it if needed) a directory of journal files. Every journal
// is checked: a torn last line left by a crash is cut off, a journal whose chain does
// not verify is refused (its Append and Read fail, naming the broken entry) while the
// others work. Neither stops OpenFile; both are listed by Recovery for the caller to
// log. With WithSigner, every entry appended is signed and a journal whose last entry's
// signature does not hold is refused the same way.
func OpenFile(dir string, opts ...Option) (*FileJournal, error) {
	o := collect(opts)
	if o.waitN != 0 {
		return nil, errors.New("open journal directory: WithReplicaWait is for the Redis store only")
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create journal directory: %w", err)
		}
		// Like a new file, a new directory needs its parent synced to survive a crash.
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return nil, fmt.Errorf("create journal directory: sync parent: %w", err)
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &FileJournal{dir: dir, lock: lock, keys: o.keys, verifier: o.verifier(), logs: make(map[string]*fileLog)}
	items, err := os.ReadDir(dir)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open journal directory: %w", err)
	}
	for _, it := range items {
		if it.Name()[0] == '.' || it.IsDir() {
			continue
		}
		name, ok := journalName(it.Name())
		if !ok {
			s.recovery = append(s.recovery, fmt.Errorf("ignored %s: not a journal file name", filepath.Join(dir, it.Name())))
			continue
		}
		l, err := s.load(name)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.logs[name] = l
	}
	return s, nil
}

// Recovery lists what OpenFile found and did: *TornTailError for each torn last line
// it cut, and an error naming the broken entry for each journal it refused.
func (s *FileJournal) Recovery() []error { return slices.Clone(s.recovery) }

// load reads, repairs and verifies one journal file. Only I/O failures are returned;
// damage is recorded in the log and in s.recovery.
func (s *FileJournal) load(name string) (*fileLog, error) {
	l := s.newLog(name)
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("open journal %q: %w", name, err)
	}
	l.f = f
	b, err := os.ReadFile(l.path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read journal %q: %w", name, err)
	}
	sc, lineErr := scanJournal(b)
	if _, err := checkRead(s.verifier, name, 1, sc.entries); err != nil {
		l.damaged = fmt.Errorf("journal %q (%s) is damaged, refused: %w", name, l.path, err)
	} else if lineErr != nil {
		l.damaged = fmt.Errorf("journal %q (%s) is damaged, refused: %w", name, l.path, lineErr)
	}
	if l.damaged != nil {
		s.recovery = append(s.recovery, l.damaged)
		return l, nil
	}
	if sc.tail != nil {
		// The interrupted write was never acknowledged; cut it so the next append
		// starts on a line of its own.
		if err := f.Truncate(sc.end); err != nil {
			f.Close()
			return nil, fmt.Errorf("journal %q: cut torn last line: %w", name, err)
		}
		if err := datasync(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("journal %q: cut torn last line: %w", name, err)
		}
		s.recovery = append(s.recovery, &TornTailError{Path: l.path, Offset: sc.end, Tail: sc.tail, Cut: true})
	}
	l.offsets, l.size = sc.offsets, sc.end
	if n := len(sc.entries); n > 0 {
		l.lastHash = sc.entries[n-1].Hash
	}
	return l, nil
}

func (s *FileJournal) newLog(name string) *fileLog {
	return &fileLog{name: name, path: filepath.Join(s.dir, fileName(name)), turn: make(chan struct{}, 1)}
}

// log returns the journal's state, creating it (not its file) when create is set.
func (s *FileJournal) log(name string, create bool) (*fileLog, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	l := s.logs[name]
	if l == nil && create {
		l = s.newLog(name)
		s.logs[name] = l
	}
	return l, nil
}

// acquire waits for the journal's turn, or for ctx.
func (l *fileLog) acquire(ctx context.Context) error {
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("journal %q: %w", l.name, ctx.Err())
	}
	if l.closed {
		<-l.turn
		return ErrClosed
	}
	if l.damaged != nil {
		<-l.turn
		return l.damaged
	}
	return nil
}

func (l *fileLog) release() { <-l.turn }

// Append writes the entry and fdatasyncs the file before returning it.
func (s *FileJournal) Append(ctx context.Context, journal string, expectSeq uint64, at time.Time, typ string, data json.RawMessage) (Entry, error) {
	at, data, err := checkAppend(journal, at, typ, data)
	if err != nil {
		return Entry{}, err
	}
	l, err := s.log(journal, true)
	if err != nil {
		return Entry{}, err
	}
	if err := l.acquire(ctx); err != nil {
		return Entry{}, err
	}
	defer l.release()
	// Past this point the append is not abandoned half-way for a cancelled ctx.
	if err := ctx.Err(); err != nil {
		return Entry{}, fmt.Errorf("journal %q: %w", journal, err)
	}
	last := uint64(len(l.offsets))
	if expectSeq != 0 && expectSeq != last+1 {
		return Entry{}, conflict(journal, expectSeq, last+1)
	}
	e := newEntry(s.keys, journal, last, l.lastHash, at, typ, data)
	line, err := json.Marshal(e)
	if err != nil {
		return Entry{}, fmt.Errorf("journal %q: encode entry %d: %w", journal, e.Seq, err)
	}
	line = append(line, '\n')
	if err := l.write(s.dir, line); err != nil {
		return Entry{}, fmt.Errorf("journal %q: append entry %d: %w", journal, e.Seq, err)
	}
	l.offsets = append(l.offsets, l.size)
	l.size += int64(len(line))
	l.lastHash = e.Hash
	return e, nil
}

// write appends one line durably, creating the file first if needed. On failure the
// file is cut back to its last acknowledged line; if even that fails the journal is
// marked damaged, since a later line would follow garbage.
func (l *fileLog) write(dir string, line []byte) error {
	if l.f == nil {
		f, err := os.OpenFile(l.path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			return fmt.Errorf("create journal file: %w", err)
		}
		if err := syncDir(dir); err != nil {
			f.Close()
			os.Remove(l.path)
			return fmt.Errorf("sync journal directory after creating %s: %w", l.path, err)
		}
		l.f = f
	}
	if _, err := l.f.Write(line); err != nil {
		if terr := l.f.Truncate(l.size); terr != nil {
			l.damaged = fmt.Errorf("journal %q: a failed write (%v) could not be undone (%v); reopen the store to recover", l.name, err, terr)
		}
		return err
	}
	if err := datasync(l.f); err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages and
		// reports success next time: nothing written since can be trusted until
		// the file is read back from disk by a fresh OpenFile.
		l.damaged = fmt.Errorf("journal %q: sync failed (%v); reopen the store to recover", l.name, err)
		return err
	}
	return nil
}

// Read returns the entries from fromSeq on, checked against entry fromSeq-1.
func (s *FileJournal) Read(ctx context.Context, journal string, fromSeq uint64) ([]Entry, error) {
	if err := checkName(journal); err != nil {
		return nil, err
	}
	if fromSeq == 0 {
		fromSeq = 1
	}
	l, err := s.log(journal, false)
	if err != nil || l == nil {
		return nil, err
	}
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	n := uint64(len(l.offsets))
	if fromSeq > n {
		l.release()
		return nil, nil
	}
	// Start one entry early to check the link to the entry before fromSeq.
	first := max(fromSeq, 2) - 2
	buf := make([]byte, l.size-l.offsets[first])
	_, err = l.f.ReadAt(buf, l.offsets[first])
	l.release()
	if err != nil {
		return nil, fmt.Errorf("journal %q: read from entry %d: %w", journal, first+1, err)
	}
	sc, lineErr := scanJournal(buf)
	if lineErr == nil && sc.tail != nil {
		lineErr = errors.New("last entry is incomplete")
	}
	if lineErr != nil {
		return nil, fmt.Errorf("journal %q changed on disk since it was opened: %w", journal, lineErr)
	}
	entries, err := checkRead(s.verifier, journal, fromSeq, sc.entries)
	if err != nil {
		return nil, fmt.Errorf("journal %q changed on disk since it was opened: %w", journal, err)
	}
	return entries, nil
}

// Journals lists the journals that have at least one entry, damaged ones included.
func (s *FileJournal) Journals(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	logs := slices.Collect(maps.Values(s.logs))
	s.mu.Unlock()
	var names []string
	for _, l := range logs {
		select {
		case l.turn <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("list journals: %w", ctx.Err())
		}
		if len(l.offsets) > 0 || l.damaged != nil {
			names = append(names, l.name)
		}
		<-l.turn
	}
	slices.Sort(names)
	return names, nil
}

// Close waits for appends under way, closes every file and releases the directory.
func (s *FileJournal) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	logs := s.logs
	s.mu.Unlock()
	var errs []error
	for _, l := range logs {
		l.turn <- struct{}{}
		l.closed = true
		if l.f != nil {
			if err := l.f.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close journal %q: %w", l.name, err))
			}
		}
		<-l.turn
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}
