package cluster_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"gopkg.in/yaml.v3"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/store"
)

// Clients joining through different nodes see and hear each other: signalling is relayed to
// the room's node, media goes straight to it.
func TestClientsThroughDifferentNodesSeeAndHearEachOther(t *testing.T) {
	c := startCluster(t, 3)
	room := "plenary"
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]

	bobRx, bobCB := signalingtest.NewReceiver()
	carolRx, carolCB := signalingtest.NewReceiver()
	aliceRx, aliceCB := signalingtest.NewReceiver()
	alice := join(t, n1, keys.Token(t, room, "alice", auth.RoleMember, 0), aliceCB)
	publish(t, alice, "alice", true)
	bob := join(t, n2, keys.Token(t, room, "bob", auth.RoleMember, 0), bobCB)
	publish(t, bob, "bob", false)
	join(t, n3, keys.Token(t, room, "carol", auth.RoleMember, 0), carolCB)

	signalingtest.Eventually(t, "bob (via node2) hears and sees alice (via node1)", 20*time.Second, func() bool {
		return bobRx.Count("alice-mic") >= 50 && bobRx.Count("alice-camera") >= 30
	})
	signalingtest.Eventually(t, "alice hears bob", 20*time.Second, func() bool { return aliceRx.Count("bob-mic") >= 50 })
	signalingtest.Eventually(t, "carol (via node3) hears both", 20*time.Second, func() bool {
		return carolRx.Count("alice-mic") >= 50 && carolRx.Count("bob-mic") >= 50 && carolRx.Count("alice-camera") >= 30
	})

	// The room lives on one node, whichever node is asked.
	holder := c.placement()[room]
	if holder == "" {
		t.Fatalf("room %s is not placed: %v", room, c.placement())
	}
	for _, n := range c.nodes {
		rs, ctx := signalingtest.RoomService(t, n.url(), keys.AdminToken(t, room))
		list, err := rs.ListRooms(ctx, &livekit.ListRoomsRequest{})
		if err != nil {
			t.Fatalf("ListRooms on %s: %v", n.id, err)
		}
		if len(list.Rooms) != 1 || list.Rooms[0].Name != room || list.Rooms[0].NumParticipants != 3 {
			t.Fatalf("ListRooms on %s: %v, want %s with 3 participants", n.id, list.Rooms, room)
		}
		ps, err := rs.ListParticipants(ctx, &livekit.ListParticipantsRequest{Room: room})
		if err != nil {
			t.Fatalf("ListParticipants on %s: %v", n.id, err)
		}
		if len(ps.Participants) != 3 {
			t.Fatalf("ListParticipants on %s: %d participants", n.id, len(ps.Participants))
		}
	}
	// A RoomService change through a node that does not hold the room reaches its clients.
	entry := c.others(holder)[0]
	rs, ctx := signalingtest.RoomService(t, entry.url(), keys.AdminToken(t, room))
	if _, err := rs.UpdateRoomMetadata(ctx, &livekit.UpdateRoomMetadataRequest{Room: room, Metadata: "séance publique"}); err != nil {
		t.Fatalf("UpdateRoomMetadata through %s: %v", entry.id, err)
	}
	signalingtest.Eventually(t, "bob sees the room's new metadata", 10*time.Second, func() bool {
		return bob.Metadata() == "séance publique"
	})

	// Tokens are checked on the entry node too.
	for _, n := range c.nodes {
		req, _ := http.NewRequest("GET", n.url()+"/rtc/validate", nil)
		req.Header.Set("Authorization", "Bearer "+keys.Token(t, room, "mallory", auth.RoleMember, 0)[:40]+"forged")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("a forged token through %s: %d, want 401", n.id, resp.StatusCode)
		}
	}
}

// Rooms created through one node spread over the nodes; any node lists and administers them.
func TestPlacementSpreadsRooms(t *testing.T) {
	c := startCluster(t, 3)
	rs, ctx := signalingtest.RoomService(t, c.nodes[0].url(), keys.AdminToken(t, ""))
	var names []string
	for i := range 6 {
		name := fmt.Sprintf("commission-%d", i)
		names = append(names, name)
		if _, err := rs.CreateRoom(ctx, &livekit.CreateRoomRequest{Name: name, Metadata: "m" + name}); err != nil {
			t.Fatalf("CreateRoom %s: %v", name, err)
		}
	}
	perNode := map[string][]string{}
	for room, n := range c.placement() {
		perNode[n] = append(perNode[n], room)
	}
	for _, n := range c.nodes {
		if len(perNode[n.id]) != 2 {
			t.Fatalf("rooms per node %v, want 2 on each of the 3 nodes", perNode)
		}
	}
	for _, n := range c.nodes {
		rs, ctx := signalingtest.RoomService(t, n.url(), keys.AdminToken(t, ""))
		list, err := rs.ListRooms(ctx, &livekit.ListRoomsRequest{})
		if err != nil {
			t.Fatalf("ListRooms on %s: %v", n.id, err)
		}
		var got []string
		for _, r := range list.Rooms {
			got = append(got, r.Name)
			if r.Metadata != "m"+r.Name {
				t.Errorf("room %s listed by %s with metadata %q", r.Name, n.id, r.Metadata)
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, names) {
			t.Fatalf("ListRooms on %s: %v, want %v", n.id, got, names)
		}
	}
	// Deleting a room through a node that does not hold it.
	victim := perNode["node1"][0]
	rs3, ctx3 := signalingtest.RoomService(t, c.nodes[2].url(), keys.AdminToken(t, ""))
	if _, err := rs3.DeleteRoom(ctx3, &livekit.DeleteRoomRequest{Room: victim}); err != nil {
		t.Fatalf("DeleteRoom %s through node3: %v", victim, err)
	}
	signalingtest.Eventually(t, "the deleted room is released", 10*time.Second, func() bool {
		_, placed := c.placement()[victim]
		return !placed
	})
}

// The room's node is killed in the middle of a vote: the room comes back on another node, the
// clients reconnect through their entry nodes, and the vote ends with every ballot counted.
func TestNodeKilledDuringAVote(t *testing.T) {
	c := startCluster(t, 3)
	room := "conseil"
	chair := keys.Token(t, room, "anne", auth.RoleChair, 1)
	clerk := keys.Token(t, room, "greffe", auth.RoleClerk, 0)

	// Place the room first, so that the clients can enter through the other nodes.
	rs, ctx := signalingtest.RoomService(t, c.nodes[0].url(), keys.AdminToken(t, ""))
	if _, err := rs.CreateRoom(ctx, &livekit.CreateRoomRequest{Name: room}); err != nil {
		t.Fatal(err)
	}
	roomNode := c.node(c.placement()[room])
	entries := c.others(roomNode.id)
	a, b := entries[0], entries[1]

	must(t, a, "POST", "/api/rooms/"+room+"/session", clerk, map[string]any{
		"body":  map[string]string{"name": "Conseil communautaire", "kind": "epci", "profile": "fr-epci-visio"},
		"title": "Séance du 27 novembre", "chair": 1, "rosterCsv": signalingtest.Roster(5),
	})
	// Seats 3, 4, 5 take part from home through the two entry nodes; 4 speaks, 5 listens.
	join(t, b, keys.Token(t, room, "chloe", auth.RoleMember, 3), nil)
	david := join(t, a, keys.Token(t, room, "david", auth.RoleMember, 4), nil)
	publish(t, david, "david", false)
	emmaRx, emmaCB := signalingtest.NewReceiver()
	join(t, b, keys.Token(t, room, "emma", auth.RoleMember, 5), emmaCB)
	signalingtest.Eventually(t, "emma hears david", 20*time.Second, func() bool { return emmaRx.Count("david-mic") >= 25 })

	for _, seat := range []int{1, 2} {
		must(t, b, "POST", "/api/rooms/"+room+"/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "chamber"})
	}
	for _, seat := range []int{3, 4, 5} {
		must(t, a, "POST", "/api/rooms/"+room+"/attendance/verify", clerk, map[string]any{"seat": seat})
	}
	must(t, a, "POST", "/api/rooms/"+room+"/items", chair, map[string]any{"id": "1", "title": "Budget annexe des eaux"})
	must(t, b, "POST", "/api/rooms/"+room+"/items/1/open", chair, nil)
	must(t, a, "POST", "/api/rooms/"+room+"/votes", chair, map[string]any{"id": "v1", "item": "1", "mode": "roll-call", "question": "Adopter le budget annexe"})
	must(t, a, "POST", "/api/rooms/"+room+"/votes/v1/ballots", keys.Token(t, room, "david", auth.RoleMember, 4), map[string]any{"choice": "for"})
	must(t, b, "POST", "/api/rooms/"+room+"/votes/v1/ballots", chair, map[string]any{"seat": 1, "choice": "for"})

	killed := time.Now()
	roomNode.kill()
	back, failover := waitMediaBack(t, emmaRx, killed)
	t.Logf("failover: %s from SIGKILL of %s to media flowing again at a reconnected client", failover, roomNode.id)
	newHolder := c.placement()[room]
	if newHolder == roomNode.id || newHolder == "" {
		t.Fatalf("room still placed on %q after its node died", newHolder)
	}
	_ = back

	// The rest of the vote goes through whichever entry node.
	must(t, b, "POST", "/api/rooms/"+room+"/votes/v1/ballots", keys.Token(t, room, "chloe", auth.RoleMember, 3), map[string]any{"choice": "against"})
	must(t, a, "POST", "/api/rooms/"+room+"/votes/v1/ballots", keys.Token(t, room, "emma", auth.RoleMember, 5), map[string]any{"choice": "for"})
	must(t, b, "POST", "/api/rooms/"+room+"/votes/v1/ballots", chair, map[string]any{"seat": 2, "choice": "abstain"})
	// A ballot cast before the kill is still there: casting it again is refused.
	if status, out := call(t, a, "POST", "/api/rooms/"+room+"/votes/v1/ballots", keys.Token(t, room, "david", auth.RoleMember, 4), map[string]any{"choice": "against"}); status != 409 || !strings.Contains(fmt.Sprint(out["error"]), "already") {
		t.Fatalf("seat 4 voting again after the failover: %d %v, want 409 already voted", status, out)
	}
	view := must(t, a, "POST", "/api/rooms/"+room+"/votes/v1/close", chair, nil)
	result := view["votes"].([]any)[0].(map[string]any)["result"].(map[string]any)
	if result["adopted"] != true || result["for"] != 3.0 || result["against"] != 1.0 || result["abstain"] != 1.0 {
		t.Fatalf("result %v, want adopted with 3 for, 1 against, 1 abstention", result)
	}
	// Attendance survived: the remote members are still present and verified.
	for _, seat := range []int{3, 4, 5} {
		if p := signalingtest.SeatPresence(view, seat); p != "remote" {
			t.Errorf("seat %d is %q after the failover, want remote", seat, p)
		}
	}
	for _, seat := range []int{1, 2} {
		if p := signalingtest.SeatPresence(view, seat); p != "chamber" {
			t.Errorf("seat %d is %q after the failover, want chamber", seat, p)
		}
	}

	// The journal, read from Redis, holds every ballot; written by the room's node before it
	// died and by the one after, it is signed throughout with the keys every node publishes.
	published := map[string]string{}
	for _, n := range c.others(roomNode.id) {
		status, raw := signalingtest.Call(t, "GET", n.url()+"/.well-known/hemicycle-journal-keys", "", nil)
		if status != 200 {
			t.Fatalf("%s publishes its journal keys: %d %s", n.id, status, raw)
		}
		published[n.id] = filepath.Join(c.dir, n.id+"-keys.json")
		if err := os.WriteFile(published[n.id], raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(published[a.id])
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := store.ParsePublicKeys(raw)
	if err != nil {
		t.Fatal(err)
	}
	entries2, err := store.NewRedis(c.rdb, keyPrefix).Read(context.Background(), room, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.VerifySigned(entries2, trusted); err != nil || store.Unsigned(entries2) != 0 {
		t.Fatalf("journal does not verify with the published keys (%d unsigned): %v", store.Unsigned(entries2), err)
	}
	// A citizen's copy, as the clerk downloads it, checked with the keys of both live nodes.
	status, raw := signalingtest.Call(t, "GET", b.url()+"/api/rooms/"+room+"/journal", clerk, nil)
	if status != 200 {
		t.Fatalf("GET the journal: %d %s", status, raw)
	}
	copied := filepath.Join(c.dir, room+".jsonl")
	if err := os.WriteFile(copied, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	verify := exec.Command(signalingtest.Binary(t), "journal", "verify", "--require-signed", "--keys", published[a.id], "--keys", published[b.id], copied)
	if out, err := verify.CombinedOutput(); err != nil || !strings.Contains(string(out), "hash chain intact, every entry signed by a trusted key") {
		t.Fatalf("hemicycle journal verify of the journal written by two nodes: %v\n%s", err, out)
	}
	ballots := 0
	for _, e := range entries2 {
		if e.Type == "ballot.cast" {
			ballots++
		}
	}
	if ballots != 5 {
		t.Fatalf("journal holds %d ballots, want 5", ballots)
	}
}

// waitMediaBack waits until the receiver gets packets on a track subscribed after t0.
func waitMediaBack(t *testing.T, rx *signalingtest.Receiver, t0 time.Time) (time.Time, time.Duration) {
	t.Helper()
	var back time.Time
	signalingtest.Eventually(t, "media flows again after the room's node died", 40*time.Second, func() bool {
		var ok bool
		back, ok = rx.MediaBackAfter(t0)
		return ok
	})
	return back, back.Sub(t0)
}

// Failover time over several runs: SIGKILL of the room's node until a client that entered
// through another node receives media again. The median is logged (and reported).
func TestFailoverTime(t *testing.T) {
	if testing.Short() {
		t.Skip("several kills: not in -short")
	}
	c := startCluster(t, 3)
	var times []time.Duration
	for run := range 4 {
		room := fmt.Sprintf("failover-%d", run)
		rs, ctx := signalingtest.RoomService(t, c.nodes[0].url(), keys.AdminToken(t, ""))
		if _, err := rs.CreateRoom(ctx, &livekit.CreateRoomRequest{Name: room, EmptyTimeout: 1}); err != nil {
			t.Fatal(err)
		}
		roomNode := c.node(c.placement()[room])
		entries := c.others(roomNode.id)
		pubRoom := join(t, entries[0], keys.Token(t, room, "speaker", auth.RoleMember, 0), nil)
		publish(t, pubRoom, "speaker", false)
		rx, cb := signalingtest.NewReceiver()
		subRoom := join(t, entries[1], keys.Token(t, room, "listener", auth.RoleMember, 0), cb)
		signalingtest.Eventually(t, "the listener hears the speaker", 20*time.Second, func() bool { return rx.Count("speaker-mic") >= 25 })
		killed := time.Now()
		roomNode.kill()
		_, d := waitMediaBack(t, rx, killed)
		times = append(times, d)
		t.Logf("run %d: killed %s, media back after %s", run+1, roomNode.id, d)
		subRoom.Disconnect()
		pubRoom.Disconnect()
		c.start(roomNode) // back in the cluster, empty, for the next run
	}
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		median = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	t.Logf("failover times %v; median %s (heartbeat 1 s, registration TTL 3 s)", times, median)
}

// Redis stopped for five seconds and started again: live media never stops, writes during the
// outage are refused with a reason, and everything works again afterwards.
func TestRedisOutageDropsNoLiveCall(t *testing.T) {
	c := startCluster(t, 3)
	room := "telework"
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	speaker := join(t, n1, keys.Token(t, room, "speaker", auth.RoleAgent, 0), nil)
	publish(t, speaker, "speaker", true)
	rx, cb := signalingtest.NewReceiver()
	join(t, n2, keys.Token(t, room, "listener", auth.RoleAgent, 0), cb)
	signalingtest.Eventually(t, "the listener hears the speaker", 20*time.Second, func() bool { return rx.Count("speaker-mic") >= 50 })
	time.Sleep(time.Second) // a second of media before the outage

	stopped := time.Now()
	c.redis.Kill()
	clerk := keys.Token(t, room, "greffe", auth.RoleClerk, 0)
	open := map[string]any{
		"body":  map[string]string{"name": "Bureau", "kind": "epci", "profile": "generic"},
		"title": "Réunion", "chair": 1, "rosterCsv": signalingtest.Roster(5),
	}
	for _, n := range []*node{n1, n3} {
		status, out := call(t, n, "POST", "/api/rooms/"+room+"/session", clerk, open)
		msg, _ := out["error"].(string)
		if status != 503 || !strings.Contains(msg, "journal") && !strings.Contains(msg, "which node serves") {
			t.Fatalf("a write through %s while Redis is down: %d %v, want 503 saying what could not be reached", n.id, status, out)
		}
		t.Logf("through %s while Redis is down: %d %s", n.id, status, msg)
	}
	time.Sleep(time.Until(stopped.Add(5 * time.Second)))
	c.redis.Start()
	restarted := time.Now()

	// Every node registers again.
	signalingtest.Eventually(t, "every node registered again", 15*time.Second, func() bool {
		for _, n := range c.nodes {
			if c.rdb.Exists(context.Background(), keyPrefix+"{cluster}:node:"+n.id).Val() != 1 {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Until(restarted.Add(2 * time.Second)))
	if gap, at := rx.LongestAudioGap(stopped.Add(-time.Second), time.Now()); gap > time.Second {
		t.Fatalf("audio stopped for %s at %s (Redis stopped at %s, restarted at %s)", gap,
			at.Format("15:04:05.000"), stopped.Format("15:04:05.000"), restarted.Format("15:04:05.000"))
	} else {
		t.Logf("longest audio gap at the subscriber across the outage: %s", gap)
	}
	// Writes work again, through any node, and the room stayed where it was.
	must(t, n3, "POST", "/api/rooms/"+room+"/session", clerk, open)
	if got := must(t, n1, "GET", "/api/rooms/"+room+"/state", clerk, nil); got["session"].(map[string]any)["title"] != "Réunion" {
		t.Fatalf("state after the outage: %v", got)
	}
	// A new participant joins after the outage.
	late, lateCB := signalingtest.NewReceiver()
	join(t, n3, keys.Token(t, room, "late", auth.RoleAgent, 0), lateCB)
	signalingtest.Eventually(t, "a participant joining after the outage hears the speaker", 20*time.Second, func() bool {
		return late.Count("speaker-mic") >= 25
	})
}

// The shipped node configuration starts a node that joins the cluster.
func TestShippedNodeConfigJoinsTheCluster(t *testing.T) {
	c := startCluster(t, 0)
	_, err := signalingtest.StartProcess(t, signalingtest.Command{
		Path: signalingtest.Binary(t),
		Args: []string{"serve", "--dev", "--config", filepath.Join(signalingtest.ModuleRoot(), "configs", "node2.yaml"),
			"--port", "0", "--udp-port", "0", "--tcp-port", "0"},
		Env: []string{"HEMICYCLE_REDIS_ADDR=" + c.redis.Addr, "HEMICYCLE_NODE_URL=http://127.0.0.1:9", "HEMICYCLE_JOURNAL_KEYS=" + c.ring},
	})
	if err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "node2 from configs/node2.yaml registered", 20*time.Second, func() bool {
		return c.rdb.HGet(context.Background(), keyPrefix+"{cluster}:node:node2", "url").Val() == "http://127.0.0.1:9"
	})
}

// docker-compose.yml is valid: checked with docker compose (or Debian's docker-compose) when
// installed, and in any case for the structure this project relies on.
func TestComposeFile(t *testing.T) {
	root := signalingtest.ModuleRoot()
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       any               `yaml:"build"`
			Command     any               `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			DependsOn   any               `yaml:"depends_on"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if compose.Services["redis"].Image == "" {
		t.Error("no redis service with an image")
	}
	nodes := 0
	for name, s := range compose.Services {
		if !strings.HasPrefix(name, "node") {
			continue
		}
		nodes++
		if s.Build == nil || s.Environment["HEMICYCLE_REDIS_ADDR"] == "" || s.Environment["HEMICYCLE_NODE_URL"] == "" || s.Environment["HEMICYCLE_JOURNAL_KEYS"] == "" {
			t.Errorf("service %s: want build, HEMICYCLE_REDIS_ADDR, HEMICYCLE_NODE_URL and HEMICYCLE_JOURNAL_KEYS (the key ring shared by the nodes)", name)
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
	}
	if nodes < 2 {
		t.Errorf("%d hemicycle nodes in docker-compose.yml, want 2", nodes)
	}
	if _, err := os.Stat(filepath.Join(root, "Dockerfile")); err != nil {
		t.Error(err)
	}
	for _, tool := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		if _, err := exec.LookPath(tool[0]); err != nil {
			continue
		}
		if exec.Command(tool[0], append(tool[1:], "version")...).Run() != nil {
			continue // the docker CLI without its compose plugin
		}
		cmd := exec.Command(tool[0], append(tool[1:], "-f", filepath.Join(root, "docker-compose.yml"), "config", "-q")...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s config: %v\n%s", strings.Join(tool, " "), err, out)
		}
		t.Logf("%s config accepts docker-compose.yml", strings.Join(tool, " "))
		return
	}
	t.Log("no docker compose here: checked the structure only")
}
