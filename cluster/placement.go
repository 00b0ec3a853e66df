package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrRoomMoving says a room cannot be placed yet but will be soon: no node is alive, or Redis
// restarted too recently to tell a dead node from one that has not beaten again. Callers wait
// and ask again; any other error is a failure (Redis unreachable, for one).
var ErrRoomMoving = errors.New("the room is not placed yet")

// claimScript places a room: it keeps it on its node while that node is alive, else gives it
// to the least loaded live node.
// KEYS: rooms hash, nodes set. ARGV: base, room, takeover grace ms.
// Returns {node id, node url, code}: code 0 kept, 1 placed; or, with empty id and url, code 2
// (wait: Redis restarted too recently) or 3 (no live node).
var claimScript = redis.NewScript(`
local base, room = ARGV[1], ARGV[2]
local owner = redis.call('HGET', KEYS[1], room)
if owner then
  local url = redis.call('HGET', base .. 'node:' .. owner, 'url')
  if url then return {owner, url, 0} end
  local info = redis.call('INFO', 'server')
  local up = tonumber(string.match(info, 'uptime_in_seconds:(%d+)')) or 0
  -- uptime is whole seconds: wait only while Redis is surely younger than the grace
  if up * 1000 + 999 < tonumber(ARGV[3]) then return {'', '', 2} end
end
local best, bestURL, bestRooms, bestPeople, bestCPU
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local f = redis.call('HMGET', base .. 'node:' .. id, 'url', 'participants', 'cpu')
  if not f[1] then
    redis.call('SREM', KEYS[2], id)
    redis.call('DEL', base .. 'rooms:' .. id)
  else
    local rooms = redis.call('SCARD', base .. 'rooms:' .. id)
    local people, cpu = tonumber(f[2]) or 0, tonumber(f[3]) or 0
    local better = not best
    if not better then
      if rooms ~= bestRooms then better = rooms < bestRooms
      elseif people ~= bestPeople then better = people < bestPeople
      elseif cpu ~= bestCPU then better = cpu < bestCPU
      else better = id < best end
    end
    if better then best, bestURL, bestRooms, bestPeople, bestCPU = id, f[1], rooms, people, cpu end
  end
end
if not best then return {'', '', 3} end
redis.call('HSET', KEYS[1], room, best)
redis.call('SADD', base .. 'rooms:' .. best, room)
if owner then redis.call('SREM', base .. 'rooms:' .. owner, room) end
return {best, bestURL, 1}
`)

// Locate says where room lives, placing it if it is free or its node is dead. local means
// this node; otherwise nodeURL is the room's node. Rooms already placed here are answered
// from memory, so that they keep being served while Redis is away.
func (n *Node) Locate(ctx context.Context, room string) (local bool, nodeURL string, err error) {
	if room == "" {
		return false, "", errors.New("cluster: locate: no room name")
	}
	n.mu.Lock()
	if n.owned[room] {
		n.mu.Unlock()
		return true, n.cfg.URL, nil
	}
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return false, "", errors.New("cluster: this node is leaving the cluster")
	}
	res, err := claimScript.Run(ctx, n.client, []string{n.keys.rooms, n.keys.nodes},
		n.keys.base, room, n.cfg.TakeoverGrace.Milliseconds()).Slice()
	if err != nil {
		return false, "", fmt.Errorf("cluster: locate room %q: %w", room, err)
	}
	if len(res) != 3 {
		return false, "", fmt.Errorf("cluster: locate room %q: unexpected reply %v", room, res)
	}
	id, _ := res[0].(string)
	nodeURL, _ = res[1].(string)
	switch code, _ := res[2].(int64); code {
	case 2:
		return false, "", fmt.Errorf("%w: room %q: its node stopped beating but Redis restarted less than %s ago; waiting for live nodes to register again", ErrRoomMoving, room, n.cfg.TakeoverGrace)
	case 3:
		return false, "", fmt.Errorf("%w: room %q: no live node is registered", ErrRoomMoving, room)
	case 1:
		n.log.Info("room placed", "room", room, "on", id)
	}
	if id != n.cfg.ID {
		return false, nodeURL, nil
	}
	n.mu.Lock()
	if !n.closed {
		n.owned[room] = true
	}
	n.mu.Unlock()
	return true, nodeURL, nil
}

// releaseScript frees a room if the node still holds it.
// KEYS: rooms hash, node's rooms set. ARGV: room, id.
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
`)

// Release frees a room that closed here, so that its next use may place it anywhere. A room
// that another node took meanwhile is left alone.
func (n *Node) Release(ctx context.Context, room string) error {
	n.mu.Lock()
	delete(n.owned, room)
	n.mu.Unlock()
	if err := releaseScript.Run(ctx, n.client, []string{n.keys.rooms, n.keys.nodeRooms(n.cfg.ID)}, room, n.cfg.ID).Err(); err != nil {
		return fmt.Errorf("cluster: release room %q: %w", room, err)
	}
	return nil
}

// RoomsElsewhere lists the rooms placed on other live nodes, by node URL: for listing every
// room of the cluster from any node.
func (n *Node) RoomsElsewhere(ctx context.Context) (map[string][]string, error) {
	placed, err := n.client.HGetAll(ctx, n.keys.rooms).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: list rooms: %w", err)
	}
	byNode := map[string][]string{}
	for room, id := range placed {
		if id != n.cfg.ID {
			byNode[id] = append(byNode[id], room)
		}
	}
	out := map[string][]string{}
	for id, rooms := range byNode {
		u, err := n.client.HGet(ctx, n.keys.node(id), "url").Result()
		if errors.Is(err, redis.Nil) {
			continue // a dead node's rooms have nobody to describe them until they are placed again
		}
		if err != nil {
			return nil, fmt.Errorf("cluster: read node %s: %w", id, err)
		}
		out[u] = append(out[u], rooms...)
	}
	return out, nil
}

// Placement reports which node holds each placed room (live or not), for operators and tests.
func (n *Node) Placement(ctx context.Context) (map[string]string, error) {
	placed, err := n.client.HGetAll(ctx, n.keys.rooms).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: list rooms: %w", err)
	}
	return placed, nil
}
