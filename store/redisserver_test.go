package store

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
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a real redis-server started by a test on a loopback port.
type redisServer struct {
	t      testing.TB
	dir    string
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// redisBinary finds redis-server, or skips the test when it is absent and
// HEMICYCLE_REQUIRE_REDIS is unset (CI sets it so that a missing binary fails).
func redisBinary(t testing.TB) string {
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

// startRedis runs redis-server with its data in dir, configured as councils should
// run it (AOF, fsync before every reply). extra adds configuration arguments.
func startRedis(t testing.TB, dir string, extra ...string) *redisServer {
	t.Helper()
	bin := redisBinary(t)
	var lastErr error
	for range 5 { // the free port we picked may be taken before redis binds it
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s := &redisServer{t: t, dir: dir, addr: "127.0.0.1:" + strconv.Itoa(port), exited: make(chan struct{})}
		args := append([]string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--appendonly", "yes", "--appendfsync", "always", "--save", "",
			"--daemonize", "no", "--logfile", filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log"),
		}, extra...)
		s.cmd = exec.Command(bin, args...)
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		go func() { s.cmd.Wait(); close(s.exited) }()
		t.Cleanup(s.kill)
		if lastErr = s.waitReady(); lastErr == nil {
			return s
		}
		s.kill()
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady waits until the server answers PING and has loaded its data.
func (s *redisServer) waitReady() error {
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis-"+strings.Split(s.addr, ":")[1]+".log"))
			return fmt.Errorf("redis-server exited: %s", lastLines(string(log), 5))
		case <-ctx.Done():
			return fmt.Errorf("redis-server at %s not ready: %w", s.addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// kill stops the server with SIGKILL, as a crash would, and waits for it to be gone.
func (s *redisServer) kill() {
	select {
	case <-s.exited:
		return
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Errorf("kill redis-server: %v", err)
	}
	<-s.exited
}

func (s *redisServer) client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.addr})
	t.Cleanup(func() { c.Close() })
	return c
}
