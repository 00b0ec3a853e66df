package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisJournal keeps journals in Redis so that every node of a cluster shares them.
//
// Keys, with P the prefix given to NewRedis:
//
//	P{journal}:e:NAME   list of the entries' JSON, entry seq at index seq-1
//	P{journal}:h:NAME   hash: seq and hash of the last entry
//	P{journal}:names    set of journal names
//
// The {journal} hash tag keeps all of them in one Redis Cluster slot, which the
// atomic append needs; journals are small, so one slot is plenty.
//
// Hashes are computed here and the server only checks the link: an append script
// refuses an entry whose seq and prev do not follow the stored head, so two nodes
// appending to the same journal serialise on Redis and can never fork the chain.
type RedisJournal struct {
	client     redis.UniversalClient
	prefix     string
	opts       options
	verifier   PublicKeys    // nil when the store does not sign
	waitClient *redis.Client // client as a single-primary client, for WAIT

	mu     sync.Mutex // guards heads and closed
	heads  map[string]*redisHead
	closed bool
}

// redisHead caches a journal's last seq and hash to spare a round trip per append.
// Another node may have moved on; the append script then says so and the append is
// retried from the actual head.
type redisHead struct {
	turn  chan struct{} // serialises this process's appends to the journal
	known bool
	seq   uint64
	hash  string
}

// WithReplicaWait makes Append wait (Redis WAIT) until n replicas have the entry, up
// to timeout, so that an entry survives the primary's loss and a Sentinel failover.
// The timeout must be shorter than the client's ReadTimeout.
// It needs a client bound to one primary (*redis.Client, as returned for a single
// address or for Sentinel); with other clients Append fails. When fewer replicas
// confirm in time, Append returns the entry, which the primary holds, with an error
// wrapping ErrNotReplicated. It is for the Redis store only: OpenFile refuses it.
func WithReplicaWait(n int, timeout time.Duration) Option {
	return func(o *options) { o.waitN, o.waitTimeout = n, timeout }
}

// ErrNotReplicated reports an entry that Redis holds but fewer replicas than
// required confirmed.
var ErrNotReplicated = errors.New("entry not confirmed by enough replicas")

// maxRedisAttempts bounds how often one append retries after other nodes appended
// first; each retry means the journal progressed, so this only limits starvation.
const maxRedisAttempts = 64

var _ Journal = (*RedisJournal)(nil)

// NewRedis returns a journal store over client, with keys starting with prefix
// (e.g. "hemicycle:"). The client stays the caller's: Close does not close it.
func NewRedis(client redis.UniversalClient, prefix string, opts ...Option) *RedisJournal {
	r := &RedisJournal{client: client, prefix: prefix, opts: collect(opts), heads: make(map[string]*redisHead)}
	r.verifier = r.opts.verifier()
	r.waitClient, _ = client.(*redis.Client)
	return r
}

func (r *RedisJournal) entriesKey(journal string) string { return r.prefix + "{journal}:e:" + journal }
func (r *RedisJournal) headKey(journal string) string    { return r.prefix + "{journal}:h:" + journal }
func (r *RedisJournal) namesKey() string                 { return r.prefix + "{journal}:names" }

// appendScript adds an entry if it follows the stored head, atomically.
// KEYS: entries list, head hash, names set.
// ARGV: seq, prev, entry JSON, hash, journal name.
// Returns {1} when appended, {0, last seq, last hash} when the head differs.
var appendScript = redis.NewScript(`
local n = redis.call('LLEN', KEYS[1])
local head = redis.call('HMGET', KEYS[2], 'seq', 'hash')
local seq, hash = tonumber(head[1]) or 0, head[2] or ''
if seq ~= n then
  return redis.error_reply('journal ' .. ARGV[5] .. ' is damaged: its head says ' .. seq .. ' entries, its list holds ' .. n)
end
if tonumber(ARGV[1]) ~= n + 1 or ARGV[2] ~= hash then
  return {0, n, hash}
end
redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], 'seq', ARGV[1], 'hash', ARGV[4])
if n == 0 then
  redis.call('SADD', KEYS[3], ARGV[5])
end
return {1}
`)

func (r *RedisJournal) head(journal string) (*redisHead, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	h := r.heads[journal]
	if h == nil {
		h = &redisHead{turn: make(chan struct{}, 1)}
		r.heads[journal] = h
	}
	return h, nil
}

// Append extends the journal once Redis has acknowledged the entry (see the package
// documentation for what that guarantees).
func (r *RedisJournal) Append(ctx context.Context, journal string, expectSeq uint64, at time.Time, typ string, data json.RawMessage) (Entry, error) {
	at, data, err := checkAppend(journal, at, typ, data)
	if err != nil {
		return Entry{}, err
	}
	if r.opts.waitN > 0 && r.waitClient == nil {
		return Entry{}, fmt.Errorf("journal %q: waiting for replicas needs a *redis.Client, not %T", journal, r.client)
	}
	h, err := r.head(journal)
	if err != nil {
		return Entry{}, err
	}
	select {
	case h.turn <- struct{}{}:
	case <-ctx.Done():
		return Entry{}, fmt.Errorf("journal %q: %w", journal, ctx.Err())
	}
	defer func() { <-h.turn }()
	if err := ctx.Err(); err != nil {
		return Entry{}, fmt.Errorf("journal %q: %w", journal, err)
	}

	fresh := false // whether h was read from Redis during this call
	for range maxRedisAttempts {
		if !h.known {
			if err := r.loadHead(ctx, journal, h); err != nil {
				return Entry{}, err
			}
			fresh = true
		}
		if expectSeq != 0 && expectSeq != h.seq+1 {
			if fresh {
				return Entry{}, conflict(journal, expectSeq, h.seq+1)
			}
			h.known = false // the cache may be behind other nodes
			continue
		}
		e := newEntry(r.opts.keys, journal, h.seq, h.hash, at, typ, data)
		line, err := json.Marshal(e)
		if err != nil {
			return Entry{}, fmt.Errorf("journal %q: encode entry %d: %w", journal, e.Seq, err)
		}
		ok, seq, hash, waitErr, err := r.runAppend(ctx, journal, e, line)
		if err != nil {
			h.known = false // the entry may or may not be in
			return Entry{}, fmt.Errorf("journal %q: append entry %d: %w", journal, e.Seq, err)
		}
		// A client retry after a lost reply can find our own entry already in.
		if ok || seq == e.Seq && hash == e.Hash {
			h.seq, h.hash = e.Seq, e.Hash
			return e, waitErr
		}
		h.seq, h.hash, h.known, fresh = seq, hash, true, true
		if r.verifier != nil {
			h.known = false // a head another writer set is signed on only once its entry is checked
		}
	}
	return Entry{}, fmt.Errorf("journal %q: gave up after %d attempts: other writers kept appending first", journal, maxRedisAttempts)
}

// loadHead reads the journal's last seq and hash from Redis.
func (r *RedisJournal) loadHead(ctx context.Context, journal string, h *redisHead) error {
	vals, err := r.client.HMGet(ctx, r.headKey(journal), "seq", "hash").Result()
	if err != nil {
		return fmt.Errorf("journal %q: read head: %w", journal, err)
	}
	h.seq, h.hash = 0, ""
	if s, ok := vals[0].(string); ok {
		if h.seq, err = strconv.ParseUint(s, 10, 64); err != nil {
			return fmt.Errorf("journal %q: head seq %q: %w", journal, s, err)
		}
		h.hash, _ = vals[1].(string)
	}
	if r.verifier != nil && h.seq > 0 {
		if err := r.checkHead(ctx, journal, h); err != nil {
			return err
		}
	}
	h.known = true
	return nil
}

// checkHead makes sure that the head a signing store is about to extend is the hash of the
// stored entry of that seq, signed with a trusted key: a new entry's signature vouches for the whole
// chain before it, so a chain rewritten in Redis must not be signed over.
func (r *RedisJournal) checkHead(ctx context.Context, journal string, h *redisHead) error {
	// By index, not as the list's last: other nodes may have appended since the head was read.
	line, err := r.client.LIndex(ctx, r.entriesKey(journal), int64(h.seq-1)).Result()
	if err != nil {
		return fmt.Errorf("journal %q: read entry %d, its head: %w", journal, h.seq, err)
	}
	e, err := decodeLine([]byte(line))
	if err != nil {
		return fmt.Errorf("journal %q is damaged: entry %d, its head: %w", journal, h.seq, err)
	}
	if e.Seq != h.seq || e.Hash != h.hash || EntryHash(e) != e.Hash {
		return fmt.Errorf("journal %q is damaged: its head (entry %d, hash %.12s…) does not match the entry stored there (entry %d, hash %.12s…, or that entry's content)", journal, h.seq, h.hash, e.Seq, e.Hash)
	}
	if !e.signed() {
		// Unsigned, the head is only the end of a journal written before signing began, which
		// the whole journal shows.
		_, err := r.Read(ctx, journal, 1)
		return err
	}
	if err := r.verifier.check(&e, int(e.Seq-1)); err != nil {
		return fmt.Errorf("journal %q is damaged, refused: %w", journal, err)
	}
	return nil
}

// runAppend runs the append script, followed by WAIT on the same connection when
// replicas are required. ok reports whether the entry was appended; if not, seq and
// hash are the journal's actual head.
func (r *RedisJournal) runAppend(ctx context.Context, journal string, e Entry, line []byte) (ok bool, seq uint64, hash string, waitErr, err error) {
	keys := []string{r.entriesKey(journal), r.headKey(journal), r.namesKey()}
	args := []any{e.Seq, e.Prev, line, e.Hash, journal}
	var res any
	if r.opts.waitN <= 0 {
		res, err = appendScript.Run(ctx, r.client, keys, args...).Result()
	} else {
		res, waitErr, err = r.runAppendAndWait(ctx, keys, args)
	}
	if err != nil {
		return false, 0, "", nil, err
	}
	arr, _ := res.([]any)
	if len(arr) == 1 && arr[0] == int64(1) {
		return true, 0, "", waitErr, nil
	}
	if len(arr) == 3 && arr[0] == int64(0) {
		n, _ := arr[1].(int64)
		hash, _ := arr[2].(string)
		return false, uint64(n), hash, waitErr, nil
	}
	return false, 0, "", nil, fmt.Errorf("unexpected reply %v from the append script", res)
}

// runAppendAndWait pipelines the script and WAIT: a pipeline of a *redis.Client runs
// on one connection, which WAIT needs to know which write to wait for.
func (r *RedisJournal) runAppendAndWait(ctx context.Context, keys []string, args []any) (res any, waitErr, err error) {
	c := r.waitClient
	for range 2 {
		var eval *redis.Cmd
		var wait *redis.Cmd
		_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
			eval = p.EvalSha(ctx, appendScript.Hash(), keys, args...)
			wait = p.Do(ctx, "wait", r.opts.waitN, r.opts.waitTimeout.Milliseconds())
			return nil
		})
		if redis.HasErrorPrefix(eval.Err(), "NOSCRIPT") {
			if err = appendScript.Load(ctx, c).Err(); err != nil {
				return nil, nil, fmt.Errorf("load append script: %w", err)
			}
			continue
		}
		if eval.Err() != nil {
			return nil, nil, eval.Err()
		}
		if err != nil {
			return nil, nil, err
		}
		if got, _ := wait.Int64(); got < int64(r.opts.waitN) {
			waitErr = fmt.Errorf("%w: %d of %d replicas within %s", ErrNotReplicated, got, r.opts.waitN, r.opts.waitTimeout)
		}
		return eval.Val(), waitErr, nil
	}
	return nil, nil, errors.New("append script vanished from Redis twice")
}

// Read returns the entries from fromSeq on, checked against entry fromSeq-1.
func (r *RedisJournal) Read(ctx context.Context, journal string, fromSeq uint64) ([]Entry, error) {
	if err := checkName(journal); err != nil {
		return nil, err
	}
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	if fromSeq == 0 {
		fromSeq = 1
	}
	// Start one entry early to check the link to the entry before fromSeq.
	first := max(fromSeq, 2) - 2
	lines, err := r.client.LRange(ctx, r.entriesKey(journal), int64(first), -1).Result()
	if err != nil {
		return nil, fmt.Errorf("journal %q: read from entry %d: %w", journal, first+1, err)
	}
	entries := make([]Entry, 0, len(lines))
	for i, l := range lines {
		e, err := decodeLine([]byte(l))
		if err != nil {
			return nil, fmt.Errorf("journal %q: entry %d is damaged: %w", journal, first+uint64(i)+1, err)
		}
		entries = append(entries, e)
	}
	entries, err = checkRead(r.verifier, journal, fromSeq, entries)
	if err != nil {
		return nil, fmt.Errorf("journal %q is damaged: %w", journal, err)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	return entries, nil
}

// Journals lists the journals that have entries.
func (r *RedisJournal) Journals(ctx context.Context) ([]string, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	names, err := r.client.SMembers(ctx, r.namesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("list journals: %w", err)
	}
	slices.Sort(names)
	return names, nil
}

func (r *RedisJournal) checkOpen() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	return nil
}

// Close stops further use; the Redis client is left open for its owner.
func (r *RedisJournal) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}
