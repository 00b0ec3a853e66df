package netlab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Code that must run inside a namespace (a LiveKit Go SDK client, whose pion sockets are opened
// from any OS thread, so that setns in-process would not hold) runs in a copy of the test binary
// started there. The test package declares its roles once:
//
//	func TestNetlabChild(t *testing.T) { netlab.Serve(t, roles) }
//
//	var roles = map[string]netlab.Role{
//		"subscriber": func(ctx context.Context, t testing.TB, report func(any)) { ... },
//	}
//
// and a test starts one with Child(ctx, t, link, "subscriber", env), reads what it reports with
// Next, and ends it by cancelling ctx (or lets it end alone, then Wait).

// A Role is what a child runs: it reads its parameters from the environment that Child gave it,
// and reports results with report, each one a JSON value that the parent reads with Next. It
// ends when ctx does (the parent stopped it) or when it is done; t.Fatal fails the child, which
// the parent sees from Next and Wait.
type Role func(ctx context.Context, t testing.TB, report func(v any))

const (
	roleEnv = "NETLAB_ROLE"
	marker  = "netlab-result " // starts each result line on the child's stdout
)

// IsChild says whether this process is a child started by Child; a TestMain can skip the
// set-up that only the parent needs.
func IsChild() bool { return os.Getenv(roleEnv) != "" }

// Serve runs the role this process was started for. In the parent (no role) it skips: the
// TestNetlabChild that calls it is a door, not a test.
func Serve(t *testing.T, roles map[string]Role) {
	name := os.Getenv(roleEnv)
	if name == "" {
		t.Skip("netlab.Serve runs only in a child that netlab.Child started")
	}
	role, ok := roles[name]
	if !ok {
		t.Fatalf("netlab: no role %q in this test package", name)
	}
	// The parent stops a child with SIGTERM, which ends ctx so that the role can close its
	// connections before the process ends.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var mu sync.Mutex // roles may report from several goroutines; lines must not interleave
	report := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Errorf("netlab: result %#v is not JSON: %v", v, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, "%s%s\n", marker, b)
	}
	role(ctx, t, report)
}

// Process is a child running a role inside a link's namespace.
type Process struct {
	role        string
	cmd         *exec.Cmd
	results     chan json.RawMessage
	done        chan struct{} // closed when the child has exited and its output is read
	discard     chan struct{} // closed when results are no longer collected
	discardOnce sync.Once
	err         error // how it exited, set before done is closed
	mu          sync.Mutex
	output      bytes.Buffer // what the child wrote besides results, for the parent's log
}

// Child starts the test binary inside l's namespace to run role, with env added to this
// process's environment. It stops (SIGTERM, then SIGKILL after 5 s) when ctx ends or the test
// does; the child's own output is logged in the parent when the test fails or runs with -v.
func Child(ctx context.Context, t testing.TB, l *Link, role string, env map[string]string) *Process {
	t.Helper()
	args := []string{"netns", "exec", l.NS, os.Args[0], "-test.run=^TestNetlabChild$", "-test.count=1", "-test.v"}
	if deadline, ok := ctx.Deadline(); ok {
		// A child that outlives its parent's patience panics out instead of hanging.
		args = append(args, fmt.Sprintf("-test.timeout=%s", time.Until(deadline).Round(time.Second)+5*time.Second))
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &Process{role: role, cmd: cmd, results: make(chan json.RawMessage, 64), done: make(chan struct{}), discard: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("netlab: child %s: %v", role, err)
	}
	cmd.Stderr = writerFunc(p.log)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("netlab: starting child %s in %s: %v", role, l.NS, err)
	}
	go func() {
		p.read(stdout)
		p.err = cmd.Wait()
		close(p.results)
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		p.stopCollecting()
		<-p.done
		if t.Failed() || testing.Verbose() {
			p.mu.Lock()
			t.Logf("netlab child %s (%v):\n%s", role, p.err, p.output.String())
			p.mu.Unlock()
		}
	})
	return p
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func (p *Process) log(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.Write(b)
}

// read sorts the child's stdout into results and the rest. Once nobody will collect results
// (Wait, or the test's end), it drops them, so that the child never blocks on a full pipe.
func (p *Process) read(r io.Reader) {
	lines := bufio.NewScanner(r)
	lines.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for lines.Scan() {
		line := lines.Text()
		rest, ok := strings.CutPrefix(line, marker)
		if !ok {
			_, _ = p.log([]byte(line + "\n"))
			continue
		}
		select {
		case p.results <- json.RawMessage(rest):
		case <-p.discard:
		}
	}
}

func (p *Process) stopCollecting() { p.discardOnce.Do(func() { close(p.discard) }) }

// Next decodes the child's next result into v. It fails when the child ended without one more
// (with how it ended and what it wrote) or when ctx ends first.
func (p *Process) Next(ctx context.Context, v any) error {
	select {
	case raw, ok := <-p.results:
		if !ok {
			<-p.done
			return fmt.Errorf("netlab: child %s ended without another result (%v):\n%s", p.role, p.err, p.tail())
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("netlab: child %s's result %s: %w", p.role, raw, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("netlab: waiting for a result from child %s: %w", p.role, ctx.Err())
	}
}

// Wait waits for the child to end alone and says how it did; results not read are dropped.
func (p *Process) Wait() error {
	p.stopCollecting()
	<-p.done
	if p.err != nil {
		var exit *exec.ExitError
		if errors.As(p.err, &exit) {
			return fmt.Errorf("netlab: child %s failed (%v):\n%s", p.role, p.err, p.tail())
		}
		return fmt.Errorf("netlab: child %s: %w", p.role, p.err)
	}
	return nil
}

// tail is the end of what the child wrote, enough to see why it failed.
func (p *Process) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.output.String()
	if len(s) > 8000 {
		s = "…" + s[len(s)-8000:]
	}
	return s
}

// Every calls f every d until ctx ends: a role's periodic report to the parent.
func Every(ctx context.Context, d time.Duration, f func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f()
	}
}
