package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Load is what a node carries, reported with every heartbeat.
type Load struct {
	// Rooms are the rooms open on the node; the heartbeat asserts their claims.
	Rooms        []string
	Participants int
	Tracks       int
}

// Config describes this node to the cluster.
type Config struct {
	// ID names the node; it must be unique among the nodes sharing a Redis key prefix.
	ID string
	// URL is the base HTTP URL other nodes relay requests to, e.g. http://10.0.0.5:7880.
	URL string
	// Prefix starts every key (DefaultKeyPrefix when empty).
	Prefix string
	// Heartbeat is how often the node refreshes its registration (1 s when zero).
	Heartbeat time.Duration
	// TTL is how long a registration outlives the last heartbeat (3 s when zero): the bound
	// on how long a dead node's rooms stay unreachable.
	TTL time.Duration
	// TakeoverGrace is how long Redis must have been up before a room is taken from a node
	// whose registration expired (TTL when zero); see the package documentation.
	TakeoverGrace time.Duration
	// Load reports the node's load; nil reports none.
	Load func() Load
	// OnLost is told of a room this node serves but another live node now holds. It is called
	// from the heartbeat goroutine and must not block for long.
	OnLost func(room string)
	Logger *slog.Logger
}

// Node is this process's membership of the cluster: its registration, heartbeat and the
// placement of rooms; the binary hands it to signalling as its Placement.
type Node struct {
	client redis.UniversalClient
	cfg    Config
	log    *slog.Logger
	keys   keys

	mu      sync.Mutex
	owned   map[string]bool // rooms Redis placed here, so that Locate needs no round trip
	started bool
	beaten  bool // a heartbeat succeeded once: a missing registration then means it expired
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
	cpu     cpuMeter

	failing bool // the last heartbeat failed; only the heartbeat goroutine touches it
}

type keys struct{ base, nodes, rooms string }

func (k keys) node(id string) string      { return k.base + "node:" + id }
func (k keys) nodeRooms(id string) string { return k.base + "rooms:" + id }

// New prepares a node; Start registers it. The client stays the caller's.
func New(client redis.UniversalClient, cfg Config) (*Node, error) {
	if cfg.ID == "" {
		return nil, errors.New("cluster: the node needs an id")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("cluster: node URL %q: want http://host:port or https://host:port that other nodes can reach", cfg.URL)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultKeyPrefix
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 3 * time.Second
	}
	if cfg.TTL <= cfg.Heartbeat {
		return nil, fmt.Errorf("cluster: TTL %s must be longer than the heartbeat %s, or live nodes would expire", cfg.TTL, cfg.Heartbeat)
	}
	if cfg.TakeoverGrace <= 0 {
		cfg.TakeoverGrace = cfg.TTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	base := cfg.Prefix + "{cluster}:"
	return &Node{
		client: client,
		cfg:    cfg,
		log:    cfg.Logger.With("node", cfg.ID),
		keys:   keys{base: base, nodes: base + "nodes", rooms: base + "rooms"},
		owned:  map[string]bool{},
	}, nil
}

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.ID }

// URL is the node's advertised base URL.
func (n *Node) URL() string { return n.cfg.URL }

// Start registers the node (failing if Redis cannot be reached: a node that cannot join the
// cluster should not accept work) and keeps the registration alive until ctx ends or Close.
// Ending ctx without Close stops the heartbeat and leaves the registration to expire, which is
// how the tests imitate a crash.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.started || n.closed {
		n.mu.Unlock()
		return errors.New("cluster: node already started or closed")
	}
	n.started = true
	n.cpu.sample()
	n.mu.Unlock()
	first, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := n.Beat(first)
	cancel()
	if err != nil {
		return fmt.Errorf("cluster: register node %s: %w", n.cfg.ID, err)
	}
	ctx, stop := context.WithCancel(ctx)
	n.mu.Lock()
	n.cancel, n.done = stop, make(chan struct{})
	n.mu.Unlock()
	go n.heartbeat(ctx)
	n.log.Info("node registered", "url", n.cfg.URL, "heartbeat", n.cfg.Heartbeat, "ttl", n.cfg.TTL)
	return nil
}

func (n *Node) heartbeat(ctx context.Context) {
	defer close(n.done)
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A beat must finish before the next is due, or it is worth nothing.
		bctx, cancel := context.WithTimeout(ctx, n.cfg.Heartbeat)
		err := n.Beat(bctx)
		cancel()
		switch {
		case err != nil && !n.failing:
			n.failing = true
			n.log.Warn("heartbeat failed: Redis unreachable; media keeps flowing, new placements wait", "err", err)
		case err == nil && n.failing:
			n.failing = false
			n.log.Info("heartbeat restored: Redis reachable again")
		}
	}
}

// heartbeatScript refreshes the registration and asserts the node's rooms.
// KEYS: node hash, nodes set, rooms hash, node's rooms set.
// ARGV: base, id, ttl ms, url, participants, tracks, cpu, open rooms, then rooms to assert.
// Returns {1 if the registration still existed, {rooms another live node holds}}.
var heartbeatScript = redis.NewScript(`
local base, id = ARGV[1], ARGV[2]
local existed = redis.call('EXISTS', KEYS[1])
redis.call('HSET', KEYS[1], 'url', ARGV[4], 'participants', ARGV[5], 'tracks', ARGV[6], 'cpu', ARGV[7], 'open', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], id)
local lost = {}
for i = 9, #ARGV do
  local room = ARGV[i]
  local owner = redis.call('HGET', KEYS[3], room)
  if owner == id then
    redis.call('SADD', KEYS[4], room)
  elseif owner and redis.call('EXISTS', base .. 'node:' .. owner) == 1 then
    table.insert(lost, room)
  else
    redis.call('HSET', KEYS[3], room, id)
    redis.call('SADD', KEYS[4], room)
    if owner then redis.call('SREM', base .. 'rooms:' .. owner, room) end
  end
end
for _, room in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if redis.call('HGET', KEYS[3], room) ~= id then redis.call('SREM', KEYS[4], room) end
end
return {existed, lost}
`)

// Beat refreshes the registration once, now. The heartbeat calls it; tests call it to avoid
// waiting.
func (n *Node) Beat(ctx context.Context) error {
	var load Load
	if n.cfg.Load != nil {
		load = n.cfg.Load()
	}
	n.mu.Lock()
	assert := map[string]bool{}
	for r := range n.owned {
		assert[r] = true
	}
	cpu := n.cpu.sample()
	beaten := n.beaten
	n.mu.Unlock()
	for _, r := range load.Rooms {
		assert[r] = true
	}
	rooms := make([]string, 0, len(assert))
	for r := range assert {
		rooms = append(rooms, r)
	}
	sort.Strings(rooms)
	args := []any{n.keys.base, n.cfg.ID, n.cfg.TTL.Milliseconds(), n.cfg.URL,
		load.Participants, load.Tracks, strconv.FormatFloat(cpu, 'f', 3, 64), len(load.Rooms)}
	for _, r := range rooms {
		args = append(args, r)
	}
	res, err := heartbeatScript.Run(ctx, n.client,
		[]string{n.keys.node(n.cfg.ID), n.keys.nodes, n.keys.rooms, n.keys.nodeRooms(n.cfg.ID)}, args...).Slice()
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if len(res) != 2 {
		return fmt.Errorf("heartbeat: unexpected reply %v", res)
	}
	if existed, _ := res[0].(int64); existed == 0 && beaten {
		n.log.Warn("registration had expired (Redis restarted or this node stalled); registered again")
	}
	n.mu.Lock()
	n.beaten = true
	n.mu.Unlock()
	lost, _ := res[1].([]any)
	for _, l := range lost {
		room, _ := l.(string)
		n.mu.Lock()
		delete(n.owned, room)
		n.mu.Unlock()
		n.log.Warn("room now held by another node; this node stops serving it", "room", room)
		if n.cfg.OnLost != nil {
			n.cfg.OnLost(room)
		}
	}
	return nil
}

// Close stops the heartbeat, releases the node's rooms and removes its registration, so that
// other nodes take its rooms at once.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	cancel, done := n.cancel, n.done
	n.owned = map[string]bool{}
	n.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if err := leaveScript.Run(ctx, n.client,
		[]string{n.keys.node(n.cfg.ID), n.keys.nodes, n.keys.rooms, n.keys.nodeRooms(n.cfg.ID)}, n.cfg.ID).Err(); err != nil {
		return fmt.Errorf("cluster: deregister node %s: %w", n.cfg.ID, err)
	}
	n.log.Info("node left the cluster")
	return nil
}

// leaveScript releases a node's rooms and registration.
// KEYS: node hash, nodes set, rooms hash, node's rooms set. ARGV: id.
var leaveScript = redis.NewScript(`
for _, room in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if redis.call('HGET', KEYS[3], room) == ARGV[1] then redis.call('HDEL', KEYS[3], room) end
end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
`)

// NodeInfo is one live node as the registry shows it.
type NodeInfo struct {
	ID           string
	URL          string
	Rooms        int // rooms placed on it
	Open         int // rooms it reported open
	Participants int
	Tracks       int
	CPU          float64 // share of the machine's CPU used by the process, 0..1
}

// Nodes lists the live nodes, by id.
func (n *Node) Nodes(ctx context.Context) ([]NodeInfo, error) {
	ids, err := n.client.SMembers(ctx, n.keys.nodes).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: list nodes: %w", err)
	}
	sort.Strings(ids)
	pipe := n.client.Pipeline()
	fields := make([]*redis.SliceCmd, len(ids))
	counts := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		fields[i] = pipe.HMGet(ctx, n.keys.node(id), "url", "participants", "tracks", "cpu", "open")
		counts[i] = pipe.SCard(ctx, n.keys.nodeRooms(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("cluster: read nodes: %w", err)
	}
	var out []NodeInfo
	for i, id := range ids {
		f := fields[i].Val()
		u, _ := f[0].(string)
		if u == "" {
			continue // expired
		}
		info := NodeInfo{ID: id, URL: u, Rooms: int(counts[i].Val())}
		info.Participants = atoi(f[1])
		info.Tracks = atoi(f[2])
		info.Open = atoi(f[4])
		if s, ok := f[3].(string); ok {
			info.CPU, _ = strconv.ParseFloat(s, 64)
		}
		out = append(out, info)
	}
	return out, nil
}

func atoi(v any) int {
	s, _ := v.(string)
	i, _ := strconv.Atoi(s)
	return i
}
