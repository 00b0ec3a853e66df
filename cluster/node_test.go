package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ingeco/hemicycle/cluster"
	"github.com/ingeco/hemicycle/store/redistest"
)

const prefix = "test:"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newNode registers a node on its own client; its heartbeat runs until the test ends, unless
// the test stops it (crash) with the returned cancel.
func newNode(t *testing.T, rs *redistest.Redis, id string, mutate ...func(*cluster.Config)) (*cluster.Node, context.CancelFunc) {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: 1, DialTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { client.Close() })
	cfg := cluster.Config{
		ID: id, URL: "http://" + id + ".test:7880", Prefix: prefix,
		Heartbeat: 100 * time.Millisecond, TTL: 400 * time.Millisecond, TakeoverGrace: time.Millisecond,
		Logger: quiet(),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	n, err := cluster.New(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := n.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	t.Cleanup(cancel)
	return n, cancel
}

func locate(t *testing.T, n *cluster.Node, room string) (bool, string) {
	t.Helper()
	local, url, err := n.Locate(context.Background(), room)
	if err != nil {
		t.Fatalf("%s locates %s: %v", n.ID(), room, err)
	}
	return local, url
}

// waitExpired waits until Redis has expired node id's registration (no fixed delay).
func waitExpired(t *testing.T, c *redis.Client, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := c.Exists(context.Background(), prefix+"{cluster}:node:"+id).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("registration of %s never expired", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConcurrentClaimsAgree(t *testing.T) {
	rs := redistest.StartRedis(t)
	nodes := make([]*cluster.Node, 3)
	for i := range nodes {
		nodes[i], _ = newNode(t, rs, fmt.Sprintf("n%d", i+1))
	}
	for round := range 5 {
		room := fmt.Sprintf("room-%d", round)
		const claimers = 24
		var wg sync.WaitGroup
		urls := make([]string, claimers)
		locals := make([]bool, claimers)
		errs := make([]error, claimers)
		for i := range claimers {
			wg.Go(func() {
				n := nodes[i%len(nodes)]
				locals[i], urls[i], errs[i] = n.Locate(context.Background(), room)
			})
		}
		wg.Wait()
		owner := ""
		for i := range claimers {
			if errs[i] != nil {
				t.Fatalf("claimer %d: %v", i, errs[i])
			}
			if owner == "" {
				owner = urls[i]
			}
			if urls[i] != owner {
				t.Fatalf("%s: claimers disagree: %q and %q", room, owner, urls[i])
			}
			if self := nodes[i%len(nodes)].URL(); locals[i] != (self == owner) {
				t.Fatalf("%s: claimer %d on %s told local=%v, owner %s", room, i, self, locals[i], owner)
			}
		}
		placed, err := nodes[0].Placement(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := "http://" + placed[room] + ".test:7880"; got != owner {
			t.Fatalf("%s: Redis says %s, claimers were told %s", room, got, owner)
		}
	}
	// Each node's placement weight counts each of its rooms once.
	infos, err := nodes[0].Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, in := range infos {
		total += in.Rooms
	}
	if total != 5 {
		t.Fatalf("nodes hold %d rooms in all, want 5: %+v", total, infos)
	}
}

func TestPlacementSpreadsAndStays(t *testing.T) {
	rs := redistest.StartRedis(t)
	a, _ := newNode(t, rs, "a")
	b, _ := newNode(t, rs, "b")
	c, _ := newNode(t, rs, "c")
	count := map[string]int{}
	where := map[string]string{}
	for i := range 9 {
		room := fmt.Sprintf("r%d", i)
		_, url := locate(t, a, room) // one entry node for every room
		count[url]++
		where[room] = url
	}
	for _, n := range []*cluster.Node{a, b, c} {
		if count[n.URL()] != 3 {
			t.Fatalf("rooms per node %v, want 3 each", count)
		}
	}
	// Asked again from any node, a room stays where it is.
	for room, url := range where {
		for _, n := range []*cluster.Node{a, b, c} {
			local, got := locate(t, n, room)
			if got != url || local != (n.URL() == url) {
				t.Fatalf("%s moved: was on %s, %s now says %s (local %v)", room, url, n.ID(), got, local)
			}
		}
	}
	// A node with fewer rooms gets the next one, whatever its participants.
	if err := b.Release(context.Background(), firstOn(where, b.URL())); err != nil {
		t.Fatal(err)
	}
	if _, url := locate(t, c, "newcomer"); url != b.URL() {
		t.Fatalf("newcomer placed on %s, want the node with fewest rooms %s", url, b.URL())
	}
}

func firstOn(where map[string]string, url string) string {
	var rooms []string
	for r, u := range where {
		if u == url {
			rooms = append(rooms, r)
		}
	}
	sort.Strings(rooms)
	return rooms[0]
}

func TestDeadNodesRoomsAreTakenOver(t *testing.T) {
	rs := redistest.StartRedis(t)
	c := rs.Client(t)
	a, crashA := newNode(t, rs, "a")
	b, crashB := newNode(t, rs, "b")
	_, url := locate(t, a, "council")
	holder, other, crash := a, b, crashA
	if url == b.URL() {
		holder, other, crash = b, a, crashB
	}
	if local, got := locate(t, other, "council"); local || got != holder.URL() {
		t.Fatalf("%s should see council on %s, got local=%v url=%s", other.ID(), holder.ID(), local, got)
	}
	crash() // heartbeat stops; the registration is left to expire
	waitExpired(t, c, holder.ID())
	local, url := locate(t, other, "council")
	if !local || url != other.URL() {
		t.Fatalf("after %s expired, %s should take council; got local=%v url=%s", holder.ID(), other.ID(), local, url)
	}
	infos, err := other.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].ID != other.ID() || infos[0].Rooms != 1 {
		t.Fatalf("live nodes after the takeover: %+v", infos)
	}
}

func TestNoTakeoverRightAfterRedisStarts(t *testing.T) {
	rs := redistest.StartRedis(t)
	c := rs.Client(t)
	long := func(cfg *cluster.Config) { cfg.TakeoverGrace = time.Hour }
	a, crashA := newNode(t, rs, "a", long)
	b, crashB := newNode(t, rs, "b", long)
	_, url := locate(t, a, "council")
	other := b
	if url == b.URL() {
		crashB()
		waitExpired(t, c, "b")
		other = a
	} else {
		crashA()
		waitExpired(t, c, "a")
	}
	_, _, err := other.Locate(context.Background(), "council")
	if !errors.Is(err, cluster.ErrRoomMoving) {
		t.Fatalf("a takeover within the grace should be refused as temporary, got %v", err)
	}
	// A free room is placed at once: only takeovers wait.
	if _, _, err := other.Locate(context.Background(), "other"); err != nil {
		t.Fatalf("free room: %v", err)
	}
}

func TestHeartbeatReportsLostRoomsAndReclaimsVanishedOnes(t *testing.T) {
	rs := redistest.StartRedis(t)
	c := rs.Client(t)
	var mu sync.Mutex
	var lost []string
	open := []string{"open-room"}
	a, _ := newNode(t, rs, "a", func(cfg *cluster.Config) {
		cfg.Heartbeat = time.Hour // beats are driven by the test
		cfg.TTL = 2 * time.Hour
		cfg.OnLost = func(room string) { mu.Lock(); lost = append(lost, room); mu.Unlock() }
		cfg.Load = func() cluster.Load { return cluster.Load{Rooms: open, Participants: 2, Tracks: 3} }
	})
	b, _ := newNode(t, rs, "b", func(cfg *cluster.Config) { cfg.Heartbeat = time.Hour; cfg.TTL = 2 * time.Hour })
	ctx := context.Background()
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	placed, _ := a.Placement(ctx)
	if placed["open-room"] != "a" {
		t.Fatalf("a room open on a is claimed for a by its heartbeat, got %v", placed)
	}
	if err := c.HSet(ctx, prefix+"{cluster}:rooms", "stolen", "a").Err(); err != nil {
		t.Fatal(err)
	}
	if local, _ := locate(t, a, "stolen"); !local {
		t.Fatal("a holds stolen")
	}
	// Another live node now holds it (as after a stall of a longer than its TTL).
	if err := c.HSet(ctx, prefix+"{cluster}:rooms", "stolen", "b").Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := append([]string(nil), lost...)
	mu.Unlock()
	if len(got) != 1 || got[0] != "stolen" {
		t.Fatalf("lost rooms reported %v, want [stolen]", got)
	}
	if local, url := locate(t, a, "stolen"); local || url != b.URL() {
		t.Fatalf("after losing it, a must relay stolen to b; local=%v url=%s", local, url)
	}
	// Redis lost everything (restarted without its file): the next beat registers again and
	// claims the open room again.
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	placed, _ = a.Placement(ctx)
	if placed["open-room"] != "a" {
		t.Fatalf("after a flush the heartbeat should claim open-room again, got %v", placed)
	}
	infos, _ := a.Nodes(ctx)
	if len(infos) != 1 || infos[0].ID != "a" || infos[0].Participants != 2 || infos[0].Tracks != 3 || infos[0].Open != 1 {
		t.Fatalf("registry after the flush: %+v", infos)
	}
}

func TestReleaseOnlyByTheHolderAndCloseHandsOver(t *testing.T) {
	rs := redistest.StartRedis(t)
	a, _ := newNode(t, rs, "a")
	b, _ := newNode(t, rs, "b")
	ctx := context.Background()
	_, url := locate(t, a, "x")
	holder, other := a, b
	if url == b.URL() {
		holder, other = b, a
	}
	if err := other.Release(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if placed, _ := a.Placement(ctx); placed["x"] != holder.ID() {
		t.Fatalf("%s released %s's room: %v", other.ID(), holder.ID(), placed)
	}
	elsewhere, err := other.RoomsElsewhere(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := elsewhere[holder.URL()]; len(got) != 1 || got[0] != "x" {
		t.Fatalf("%s sees rooms elsewhere %v", other.ID(), elsewhere)
	}
	if err := holder.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// No TTL to wait for: the holder left on purpose.
	if local, _ := locate(t, other, "x"); !local {
		t.Fatal("after the holder closed, the other node should take x at once")
	}
	if _, _, err := holder.Locate(ctx, "y"); err == nil {
		t.Fatal("a closed node should refuse to place rooms")
	}
}

func TestOwnedRoomsAreServedWhileRedisIsDown(t *testing.T) {
	rs := redistest.StartRedis(t)
	a, _ := newNode(t, rs, "a")
	locate(t, a, "live")
	rs.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if local, _, err := a.Locate(ctx, "live"); err != nil || !local {
		t.Fatalf("a room held here must be located without Redis: local=%v err=%v", local, err)
	}
	_, _, err := a.Locate(ctx, "unknown")
	if err == nil || errors.Is(err, cluster.ErrRoomMoving) {
		t.Fatalf("an unknown room while Redis is down should fail plainly, got %v", err)
	}
	if err := a.Beat(ctx); err == nil {
		t.Fatal("a beat without Redis should fail")
	}
	rs.Start()
	if err := a.Beat(context.Background()); err != nil {
		t.Fatalf("beat after Redis came back: %v", err)
	}
	infos, err := a.Nodes(context.Background())
	if err != nil || len(infos) != 1 || infos[0].Rooms != 1 {
		t.Fatalf("registry after Redis came back: %+v, %v", infos, err)
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := cluster.New(nil, cluster.Config{ID: "a", URL: "127.0.0.1:7880"}); err == nil {
		t.Error("a URL without scheme should be refused")
	}
	if _, err := cluster.New(nil, cluster.Config{URL: "http://a:1"}); err == nil {
		t.Error("a node without id should be refused")
	}
	if _, err := cluster.New(nil, cluster.Config{ID: "a", URL: "http://a:1", Heartbeat: time.Second, TTL: time.Second}); err == nil {
		t.Error("a TTL not longer than the heartbeat should be refused")
	}
	if err := (cluster.RedisConfig{Address: "redis"}).Validate(); err == nil {
		t.Error("an address without port should be refused")
	}
	if (cluster.RedisConfig{}).Enabled() {
		t.Error("no address: not enabled")
	}
	rc := cluster.RedisConfig{Addresses: []string{"a:1", " b:2 "}}
	if !rc.Enabled() || rc.Prefix() != cluster.DefaultKeyPrefix {
		t.Errorf("enabled %v prefix %q", rc.Enabled(), rc.Prefix())
	}
}
