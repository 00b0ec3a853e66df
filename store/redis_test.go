package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/store/redistest"
	"github.com/redis/go-redis/v9"
)

// redisBackend keeps each subtest's journals under its own prefix on one server, in
// stores opened with opts.
func redisBackend(srv *redistest.Redis, opts ...Option) backend {
	return backend{
		open: func(t *testing.T) Journal {
			return NewRedis(srv.Client(t), t.Name()+":", opts...)
		},
		reopen: func(t *testing.T, j Journal) Journal {
			closeJournal(t, j)
			return NewRedis(srv.Client(t), t.Name()+":", opts...) // a new client, as another node
		},
		rewrite: func(t *testing.T, j Journal, journal string, edit func([]string) []string) Journal {
			r := j.(*RedisJournal)
			ctx := context.Background()
			key := r.entriesKey(journal)
			lines, err := r.client.LRange(ctx, key, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			lines = edit(lines)
			// The head follows the last line, as an intruder covering their tracks would set it.
			var last Entry
			if len(lines) > 0 {
				last, _ = decodeLine([]byte(lines[len(lines)-1]))
			}
			if _, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Del(ctx, key)
				for _, l := range lines {
					p.RPush(ctx, key, l)
				}
				p.HSet(ctx, r.headKey(journal), "seq", last.Seq, "hash", last.Hash)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return j
		},
	}
}

func TestRedisJournal(t *testing.T) {
	srv := redistest.StartRedis(t)
	runContract(t, redisBackend(srv))
}

func TestRedisJournalSigned(t *testing.T) {
	srv := redistest.StartRedis(t)
	runSignedContract(t, func(opts ...Option) backend { return redisBackend(srv, opts...) })
}

// Two nodes (two clients, two RedisJournal values) appending to the same journal at
// once extend one chain: the server-side check serialises them.
func TestRedisTwoNodesShareOneChain(t *testing.T) {
	srv := redistest.StartRedis(t)
	ctx := context.Background()
	nodes := []*RedisJournal{NewRedis(srv.Client(t), "hc:"), NewRedis(srv.Client(t), "hc:")}

	const writers, each = 4, 20 // per node
	appendAtOnce(t, ctx, append(slices.Repeat([]Journal{nodes[0]}, writers), slices.Repeat([]Journal{nodes[1]}, writers)...), "council", each)
	es := mustRead(t, nodes[0], "council", 1)
	if len(es) != len(nodes)*writers*each {
		t.Fatalf("got %d entries, want %d", len(es), len(nodes)*writers*each)
	}
	if err := Verify(es); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range es {
		if seen[string(e.Data)] {
			t.Fatalf("entry %d duplicates %s", e.Seq, e.Data)
		}
		seen[string(e.Data)] = true
	}

	// A node whose cached head is behind still honours expectSeq against the
	// journal's real state.
	last := uint64(len(es))
	mustAppend(t, nodes[1], "council", last+1, 0, "x", `"from node 1"`)
	e := mustAppend(t, nodes[0], "council", last+2, 1, "x", `"from node 0"`)
	if _, err := nodes[0].Append(ctx, "council", last+2, at(2), "x", nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale expectSeq: got %v, want ErrConflict", err)
	}
	if err := Verify(mustRead(t, nodes[1], "council", 1)); err != nil || e.Seq != last+2 {
		t.Fatalf("after cross-node appends: seq %d, verify %v", e.Seq, err)
	}

	// Both nodes validated against the same state and race for the same seq: one wins.
	var won sync.Map
	var wg sync.WaitGroup
	for n, node := range nodes {
		for w := range writers {
			wg.Go(func() {
				_, err := node.Append(ctx, "council", last+3, at(3), "x", json.RawMessage(fmt.Sprint(n*writers+w)))
				if err == nil {
					won.Store(n*writers+w, true)
				} else if !errors.Is(err, ErrConflict) {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	winners := 0
	won.Range(func(any, any) bool { winners++; return true })
	if es := mustRead(t, nodes[0], "council", last+3); winners != 1 || len(es) != 1 {
		t.Fatalf("%d appends won seq %d, journal holds %d from there; want exactly 1", winners, last+3, len(es))
	}
}

// A client that retries the append script after losing the reply finds its own
// entry already in; that must count as success, not as a reason to append twice.
func TestRedisRetryFindsOwnEntry(t *testing.T) {
	srv := redistest.StartRedis(t)
	ctx := context.Background()
	r := NewRedis(srv.Client(t), "hc:")
	e := mustAppend(t, r, "j", 0, 0, "x", `1`)
	next := newEntry(nil, "j", e.Seq, e.Hash, at(1).UTC(), "x", json.RawMessage(`2`))
	line, _ := json.Marshal(next)
	for attempt := range 2 { // the second run plays the retry
		ok, seq, hash, _, err := r.runAppend(ctx, "j", next, line)
		if err != nil {
			t.Fatal(err)
		}
		if attempt == 1 && (ok || seq != next.Seq || hash != next.Hash) {
			t.Fatalf("retry: ok=%v head=%d %s; want the entry reported as the head", ok, seq, hash)
		}
	}
	if es := mustRead(t, r, "j", 1); len(es) != 2 {
		t.Fatalf("journal has %d entries, want 2", len(es))
	}
}

// If the entries list and the head disagree (someone removed an entry), appends stop
// rather than chain onto a damaged journal.
func TestRedisDamagedJournalRefusesAppend(t *testing.T) {
	srv := redistest.StartRedis(t)
	ctx := context.Background()
	r := NewRedis(srv.Client(t), "hc:")
	appendFive(t, r)
	r.client.RPop(ctx, r.entriesKey("j"))
	_, err := r.Append(ctx, "j", 0, at(6), "x", nil)
	if err == nil || !strings.Contains(err.Error(), "is damaged: its head says 5 entries, its list holds 4") {
		t.Fatalf("append to a damaged journal: %v", err)
	}
}

// TestRedisSurvivesKill appends from several goroutines to a Redis configured with
// appendonly yes and appendfsync always, kills it with SIGKILL in the middle, starts
// it again on the same directory, and finds every acknowledged entry.
func TestRedisSurvivesKill(t *testing.T) {
	srv := redistest.StartRedis(t)
	ctx := context.Background()
	// No client retries: once Redis is killed the writers should stop at once.
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	defer c.Close()
	r := NewRedis(c, "hc:")

	var mu sync.Mutex
	var acked []Entry
	enough := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				e, err := r.Append(ctx, "council", 0, at(i), "ballot.cast", json.RawMessage(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)))
				if err != nil {
					return // Redis is gone
				}
				mu.Lock()
				acked = append(acked, e)
				if len(acked) == 300 {
					close(enough)
				}
				mu.Unlock()
			}
		})
	}
	<-enough
	srv.Kill()
	wg.Wait()

	srv.Start() // same port and data directory
	r = NewRedis(srv.Client(t), "hc:")
	es := mustRead(t, r, "council", 1)
	if err := Verify(es); err != nil {
		t.Fatal(err)
	}
	for _, a := range acked {
		if a.Seq > uint64(len(es)) || !sameEntry(es[a.Seq-1], a) {
			t.Fatalf("acknowledged entry %d lost after SIGKILL (journal has %d entries)", a.Seq, len(es))
		}
	}
	e := mustAppend(t, r, "council", uint64(len(es))+1, 0, "x", `"after restart"`)
	if e.Prev != es[len(es)-1].Hash {
		t.Fatal("append after the restart does not follow the last entry")
	}
	t.Logf("%d acknowledged before SIGKILL, %d entries after restart", len(acked), len(es))
}

// With WithReplicaWait, an acknowledged entry is on the replica too; without a
// replica to confirm, Append says so.
func TestRedisReplicaWait(t *testing.T) {
	primary := redistest.StartRedis(t, "--repl-diskless-sync-delay", "0")
	replica := redistest.StartRedis(t, "--replicaof", strings.Replace(primary.Addr, ":", " ", 1))
	ctx := context.Background()
	pc := primary.Client(t)
	waitFor(t, "the replica to sync", func() bool {
		info, _ := pc.Info(ctx, "replication").Result()
		return strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online")
	})

	r := NewRedis(pc, "hc:", WithReplicaWait(1, 2*time.Second))
	want := appendFive(t, r)
	// Read on the replica itself: what WAIT confirmed must be there.
	checkSame(t, mustRead(t, NewRedis(replica.Client(t), "hc:"), "j", 1), want)

	replica.Kill()
	r = NewRedis(pc, "hc:", WithReplicaWait(1, 100*time.Millisecond))
	e, err := r.Append(ctx, "j", 0, at(6), "x", nil)
	if !errors.Is(err, ErrNotReplicated) || e.Seq != 6 {
		t.Fatalf("without a replica: entry %d, %v; want entry 6 and ErrNotReplicated", e.Seq, err)
	}
	if es := mustRead(t, r, "j", 1); len(es) != 6 {
		t.Fatalf("the primary holds %d entries, want 6", len(es))
	}

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{primary.Addr}})
	defer cc.Close()
	cluster := NewRedis(cc, "hc:", WithReplicaWait(1, time.Second))
	if _, err := cluster.Append(ctx, "j", 0, at(7), "x", nil); err == nil || !strings.Contains(err.Error(), "needs a *redis.Client") {
		t.Fatalf("replica wait with a cluster client: %v", err)
	}
}

// waitFor polls cond until it holds, failing the test after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two nodes holding the same key ring (each loaded from its copy of the file) sign one
// chain between them, and each verifies what the other signed.
func TestRedisTwoNodesSignOneChain(t *testing.T) {
	srv := redistest.StartRedis(t)
	ring, loaded := newRing(t)
	nodes := []Journal{NewRedis(srv.Client(t), "hc:", WithSigner(ring)), NewRedis(srv.Client(t), "hc:", WithSigner(loaded))}
	appendAtOnce(t, context.Background(), append(slices.Repeat(nodes[:1], 3), slices.Repeat(nodes[1:], 3)...), "council", 10)
	for i, node := range nodes {
		es := mustRead(t, node, "council", 1)
		if len(es) != 60 {
			t.Fatalf("node %d reads %d entries, want 60", i, len(es))
		}
		if err := VerifySigned(es, ring.Public()); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
}
