// Package redistest runs a real redis-server for tests, on a free loopback port, configured
// as councils should run it (append-only file, fsync before every reply).
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server process owned by a test. Kill and Start keep its port and data
// directory, so that a restart finds what the append-only file holds.
type Redis struct {
	t     testing.TB
	bin   string
	dir   string
	extra []string
	port  int
	Addr  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// RedisBinary finds redis-server, or skips the test when it is absent and
// HEMICYCLE_REQUIRE_REDIS is unset (CI sets it so that a missing binary fails).
func RedisBinary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err == nil {
		return path
	}
	if os.Getenv("HEMICYCLE_REQUIRE_REDIS") != "" {
		t.Fatalf("redis-server not found and HEMICYCLE_REQUIRE_REDIS is set: %v", err)
	}
	t.Skip("redis-server not found (apt-get install redis-server); set HEMICYCLE_REQUIRE_REDIS=1 to make this a failure")
	return ""
}

// StartRedis starts a redis-server that the test's cleanup kills; extra adds configuration
// arguments (replication, for example).
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	r := &Redis{t: t, bin: RedisBinary(t), dir: t.TempDir(), extra: extra}
	var lastErr error
	for range 5 { // the free port we picked may be taken before redis binds it
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		r.port, r.Addr = port, "127.0.0.1:"+strconv.Itoa(port)
		if lastErr = r.start(); lastErr == nil {
			t.Cleanup(r.Kill)
			return r
		}
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

func (r *Redis) start() error {
	args := append([]string{
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--logfile", filepath.Join(r.dir, "redis.log"),
	}, r.extra...)
	cmd := exec.Command(r.bin, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	if err := r.waitReady(exited); err != nil {
		r.Kill()
		return err
	}
	return nil
}

// Start starts the server again after Stop or Kill, on the same port and data.
func (r *Redis) Start() {
	r.t.Helper()
	var err error
	for range 20 { // the port may still be in TIME_WAIT for a moment
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("restart redis-server on %s: %v", r.Addr, err)
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it to be gone.
func (r *Redis) Kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		r.t.Errorf("kill redis-server: %v", err)
	}
	<-exited
}

func (r *Redis) waitReady(exited chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			l := strings.Split(strings.TrimSpace(string(log)), "\n")
			return fmt.Errorf("redis-server exited: %s", strings.Join(l[max(0, len(l)-5):], "\n"))
		case <-ctx.Done():
			return fmt.Errorf("redis-server at %s not ready: %w", r.Addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Client returns a client the test's cleanup closes.
func (r *Redis) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// FreePort returns a TCP port free on loopback a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeUDPPort returns a UDP port free on loopback a moment ago.
func FreeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free UDP port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
