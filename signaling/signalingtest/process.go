package signalingtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The hemicycle binary, built at most once per test binary and removed by Main.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary builds cmd/hemicycle the first time a test asks for it and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "hemicycle-bin-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "hemicycle")
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/hemicycle")
		cmd.Dir = ModuleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("%w\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatalf("build hemicycle: %v", built.err)
	}
	return built.path
}

func removeBinary() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}

// Command is a server process to start: hemicycle (or a test binary serving as one), which
// says "hemicycle listening on URL" on its standard output once it serves.
type Command struct {
	Path string   // the executable; Binary(t) for hemicycle
	Args []string // after the executable's name
	Env  []string // added to this process's environment
	Dir  string   // working directory; this process's when empty
	Log  string   // file its output is appended to; a new one in the test's folder when empty
}

// Process is a running server started by StartProcess.
type Process struct {
	URL string // where it serves HTTP, from its own announcement
	Pid int

	cmd      *exec.Cmd
	log      string
	logStart int64         // where this run's output begins in log
	done     chan struct{} // closed once the process has been waited for
	waitErr  error
}

// StartProcess starts c and returns once the process has said where it listens and answers
// on /healthz. The test's end kills it; when the test failed, the last lines of its output go
// to the test's log. An error says why it did not become ready (it is killed then).
func StartProcess(t testing.TB, c Command) (*Process, error) {
	t.Helper()
	if c.Log == "" {
		f, err := os.CreateTemp(t.TempDir(), filepath.Base(c.Path)+"-*.log")
		if err != nil {
			return nil, err
		}
		c.Log = f.Name()
		f.Close()
	}
	logf, err := os.OpenFile(c.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the server's log: %w", err)
	}
	defer logf.Close() // the child and the reader below hold their own handles
	start, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	p := &Process{log: c.Log, logStart: start, done: make(chan struct{})}
	p.cmd = exec.Command(c.Path, c.Args...)
	p.cmd.Env = append(os.Environ(), c.Env...)
	p.cmd.Dir = c.Dir
	p.cmd.Stderr = logf
	pr, pw := io.Pipe()
	p.cmd.Stdout = pw
	p.cmd.WaitDelay = 2 * time.Second // a child holding standard output must not hang Wait
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Path, err)
	}
	p.Pid = p.cmd.Process.Pid
	go func() {
		p.waitErr = p.cmd.Wait()
		_ = pw.Close() // ends the reader below
		close(p.done)
	}()
	listening := make(chan string, 1)
	out, err := os.OpenFile(c.Log, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.kill()
		return nil, err
	}
	go func() {
		// Standard output is read to its end, into the log, so that the process never blocks.
		defer out.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = io.WriteString(out, line+"\n")
			if _, rest, ok := strings.Cut(line, "hemicycle listening on "); ok {
				url, _, _ := strings.Cut(rest, " ")
				select {
				case listening <- url:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("---- last lines of %s's output (%s) ----\n%s", filepath.Base(c.Path), c.Log, p.lastLines(40))
		}
	})
	if err := p.waitReady(listening); err != nil {
		p.kill()
		return nil, fmt.Errorf("%s: %w\n%s", filepath.Base(c.Path), err, p.lastLines(40))
	}
	return p, nil
}

func (p *Process) waitReady(listening chan string) error {
	deadline := time.After(60 * time.Second) // a bound for a broken build, not a measure
	select {
	case p.URL = <-listening:
	case <-p.done:
		return fmt.Errorf("exited before listening (%v)", p.waitErr)
	case <-deadline:
		return errors.New("did not say where it listens within 60 s")
	}
	for {
		resp, err := http.Get(p.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited at start (%v)", p.waitErr)
		case <-deadline:
			return fmt.Errorf("not healthy within 60 s: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WS is the process's WebSocket URL, for SDK clients.
func (p *Process) WS() string { return "ws" + strings.TrimPrefix(p.URL, "http") }

// Kill ends the process with SIGKILL, as a crash would, and waits until it is gone: no
// shutdown code runs. The error says how it ended otherwise (it had exited before, say).
func (p *Process) Kill() error {
	select {
	case <-p.done:
		return fmt.Errorf("the process had already ended: %v", p.waitErr)
	default:
	}
	p.kill()
	var exit *exec.ExitError
	if !errors.As(p.waitErr, &exit) {
		return fmt.Errorf("the process ended with %v, not killed", p.waitErr)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return fmt.Errorf("the process ended with %v, not by SIGKILL", p.waitErr)
	}
	return nil
}

func (p *Process) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Output is what this run of the process has written so far, standard output and error.
func (p *Process) Output() string {
	f, err := os.Open(p.log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if _, err := f.Seek(p.logStart, io.SeekStart); err != nil {
		return err.Error()
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

func (p *Process) lastLines(n int) string {
	lines := strings.Split(strings.TrimSpace(p.Output()), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
