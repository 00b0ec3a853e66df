// Package cluster_test runs several hemicycle processes sharing a real redis-server on loopback,
// with LiveKit SDK clients, and kills things: nodes (SIGKILL) and Redis.
package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/store/redistest"
)

const keyPrefix = "hemicycle:"

// keys sign the tokens; every node is configured with them.
var keys = signalingtest.TestKeys

func TestMain(m *testing.M) { signalingtest.Main(m) }

// testCluster is a redis-server and hemicycle nodes on loopback.
type testCluster struct {
	t     *testing.T
	redis *redistest.Redis
	rdb   *redis.Client
	dir   string
	ring  string // the journal key ring file every node signs with (journal_keys)
	nodes []*node
	extra string // YAML appended to every node's configuration
}

// node is one hemicycle process, started again on the same configuration after a kill.
type node struct {
	id                   string
	cfgPath, logPath     string
	httpPort, udp, tcpPt int
	proc                 *signalingtest.Process
}

func (n *node) url() string { return "http://127.0.0.1:" + strconv.Itoa(n.httpPort) }
func (n *node) ws() string  { return "ws://127.0.0.1:" + strconv.Itoa(n.httpPort) }

// kill ends the node with SIGKILL, as a crash would, and waits for it to be gone.
func (n *node) kill() { _ = n.proc.Kill() }

func startCluster(t *testing.T, nodes int) *testCluster {
	t.Helper()
	return startClusterWith(t, nodes, "")
}

// startClusterWith starts nodes whose configuration ends with extra (top-level YAML sections
// that the common one leaves out).
func startClusterWith(t *testing.T, nodes int, extra string) *testCluster {
	t.Helper()
	rs := redistest.StartRedis(t)
	c := &testCluster{t: t, redis: rs, rdb: rs.Client(t), dir: t.TempDir(), extra: extra}
	c.ring = signalingtest.JournalKeys(t, c.dir)
	for i := range nodes {
		n := &node{id: fmt.Sprintf("node%d", i+1)}
		n.cfgPath = filepath.Join(c.dir, n.id+".yaml")
		n.logPath = filepath.Join(c.dir, n.id+".log")
		c.nodes = append(c.nodes, n)
		c.start(n)
	}
	return c
}

// start runs the node, on new free ports if its own are taken.
func (c *testCluster) start(n *node) {
	c.t.Helper()
	bin := signalingtest.Binary(c.t)
	var lastErr error
	for attempt := range 4 {
		if n.httpPort == 0 || attempt > 0 {
			n.httpPort, n.udp, n.tcpPt = freePorts(c.t)
		}
		cfg := fmt.Sprintf(`bind: 127.0.0.1
port: %d
rtc:
  udp_port: %d
  tcp_port: %d
keys:
  %s: %s
logging:
  level: info
  format: text
redis:
  address: %s
  key_prefix: %q
node:
  id: %s
  url: %s
data_dir: %q
journal_keys: %q
`, n.httpPort, n.udp, n.tcpPt, keys.Key, keys.Secret, c.redis.Addr, keyPrefix, n.id, n.url(), filepath.Join(c.dir, n.id+"-data"), c.ring) + c.extra
		if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o600); err != nil {
			c.t.Fatal(err)
		}
		n.proc, lastErr = signalingtest.StartProcess(c.t, signalingtest.Command{
			Path: bin, Args: []string{"serve", "--dev", "--config", n.cfgPath}, Log: n.logPath})
		if lastErr == nil {
			return
		}
	}
	c.t.Fatalf("start %s: %v", n.id, lastErr)
}

func freePorts(t *testing.T) (http, udp, tcp int) {
	var err error
	if http, err = redistest.FreePort(); err != nil {
		t.Fatal(err)
	}
	if tcp, err = redistest.FreePort(); err != nil {
		t.Fatal(err)
	}
	if udp, err = redistest.FreeUDPPort(); err != nil {
		t.Fatal(err)
	}
	return http, udp, tcp
}

// placement reads which node holds each room, from Redis.
func (c *testCluster) placement() map[string]string {
	c.t.Helper()
	m, err := c.rdb.HGetAll(context.Background(), keyPrefix+"{cluster}:rooms").Result()
	if err != nil {
		c.t.Fatalf("read placement: %v", err)
	}
	return m
}

func (c *testCluster) node(id string) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	c.t.Fatalf("no node %q", id)
	return nil
}

// others lists the nodes other than the given one.
func (c *testCluster) others(id string) []*node {
	var out []*node
	for _, n := range c.nodes {
		if n.id != id {
			out = append(out, n)
		}
	}
	return out
}

// ---- the deliberation API ----

// call sends a deliberation API request to a node and decodes the JSON answer.
func call(t *testing.T, n *node, method, path, tok string, body any) (int, map[string]any) {
	t.Helper()
	status, raw := signalingtest.Call(t, method, n.url()+path, tok, body)
	return status, signalingtest.Object(raw)
}

func must(t *testing.T, n *node, method, path, tok string, body any) map[string]any {
	t.Helper()
	status, out := call(t, n, method, path, tok, body)
	if status != 200 {
		t.Fatalf("%s %s on %s: %d %v", method, path, n.id, status, out)
	}
	return out
}

// ---- SDK clients ----

func join(t *testing.T, n *node, tok string, cb *lksdk.RoomCallback) *lksdk.Room {
	t.Helper()
	return signalingtest.Connect(t, n.ws(), tok, cb)
}

// publish loops the test tone (and the test pattern) into name's tracks until the test ends.
func publish(t *testing.T, r *lksdk.Room, name string, withVideo bool) {
	t.Helper()
	signalingtest.Publish(t, r, signalingtest.Clips{Video: withVideo, Prefix: name + "-"})
}
