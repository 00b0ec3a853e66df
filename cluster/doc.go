// Package cluster coordinates several Hemicycle nodes through Redis: a registry of live nodes
// and the placement of each room on exactly one of them. Redis decides every contested
// question (who holds a room, who is alive) with atomic scripts and key expiry; the nodes
// never vote among themselves.
//
// # Keys
//
// With P the key prefix (default "hemicycle:"), all keys carry the {cluster} hash tag so that
// they sit in one Redis Cluster slot and one script may touch several of them:
//
//	P{cluster}:nodes         set of node ids that registered (pruned when found expired)
//	P{cluster}:node:ID       hash url, participants, tracks, cpu, open; expires after the TTL
//	P{cluster}:rooms         hash room -> id of the node that holds it
//	P{cluster}:rooms:ID      set of the rooms node ID holds (its placement weight)
//
// # Rules
//
//   - A node is alive while its P{cluster}:node:ID key exists. Each heartbeat rewrites it with
//     the node's load and sets its expiry again (by default every second, expiring after three).
//   - Locate keeps a room on its node while that node is alive. A room that is free, or whose
//     node's key has expired, goes to the live node holding the fewest rooms (then the fewest
//     participants, then the least CPU), in one script: concurrent callers all get the same
//     answer.
//   - Right after Redis starts (a restart, or a failover to a replica) every registration has
//     expired at once. Rooms are then not taken from their nodes until Redis has been up for
//     the takeover grace, long enough for live nodes to beat again.
//   - Each heartbeat also asserts the rooms this node serves: it claims again those whose claim
//     vanished, and reports through OnLost those another live node now holds (the node had
//     stalled or been cut from Redis for longer than the TTL), so that the node stops serving
//     them and its clients reconnect to the room's node.
//   - Close releases the node's rooms and its registration at once, so that a node stopped on
//     purpose hands its rooms over without waiting for the TTL.
package cluster
