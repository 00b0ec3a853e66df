// Package durability checks, against the real binary, that a ballot acknowledged by the
// server is never lost: the server is killed with SIGKILL (no shutdown, no flush) and
// restarted on the same data folder, and every acknowledged ballot must be found again.
package durability

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/store"
)

// The development server's key pair (hemicycle --dev).
const (
	devKey    = "devkey"
	devSecret = "secret"
)

// moduleRoot is the repository's root, where the binary is built from.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		t.Fatal("not inside the hemicycle module")
	}
	return filepath.Dir(mod)
}

// buildHemicycle compiles cmd/hemicycle into a temporary folder.
func buildHemicycle(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hemicycle")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/hemicycle")
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build hemicycle: %v\n%s", err, out)
	}
	return bin
}

// server is one run of `hemicycle --dev` as a child process.
type server struct {
	cmd  *exec.Cmd
	url  string
	logs string // its standard error, kept for failure reports

	done    chan struct{} // closed once the process has been waited for
	waitErr error
}

// startServer runs `hemicycle --dev` on free ports with dataDir as HEMICYCLE_DATA_DIR and
// returns once it is listening.
func startServer(t *testing.T, bin, dataDir string) *server {
	t.Helper()
	logs, err := os.CreateTemp(t.TempDir(), "server-*.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logs.Close() })
	s := &server{logs: logs.Name(), done: make(chan struct{})}
	s.cmd = exec.Command(bin, "--dev", "--port", "0", "--udp-port", "0", "--tcp-port", "0")
	s.cmd.Env = append(os.Environ(), "HEMICYCLE_DATA_DIR="+dataDir)
	s.cmd.Stderr = logs
	pr, pw := io.Pipe()
	s.cmd.Stdout = pw
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start hemicycle: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		_ = pw.Close() // ends the reader below
		close(s.done)
	}()
	listening := make(chan string, 1)
	go func() {
		// Read stdout to its end, so that the process never blocks on it.
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "hemicycle listening on "); ok {
				url, _, _ := strings.Cut(rest, " ")
				select {
				case listening <- url:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		if s.cmd.Process != nil {
			_ = s.cmd.Process.Kill()
		}
		<-s.done
	})
	select {
	case s.url = <-listening:
		return s
	case <-s.done:
		t.Fatalf("hemicycle exited before listening (%v):\n%s", s.waitErr, s.log())
	case <-t.Context().Done():
		t.Fatal("test ended before hemicycle listened")
	}
	return nil
}

func (s *server) log() string {
	b, _ := os.ReadFile(s.logs)
	return string(b)
}

// kill sends SIGKILL and waits until the process is gone: no shutdown code runs.
func (s *server) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	<-s.done
	var exit *exec.ExitError
	if !errors.As(s.waitErr, &exit) {
		t.Fatalf("hemicycle ended with %v, not killed", s.waitErr)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("hemicycle ended with %v, want death by SIGKILL", s.waitErr)
	}
}

// client talks to the deliberation API of whichever server runs now. The timeout only keeps
// a broken server from hanging the test; nothing is asserted on time.
type client struct {
	http *http.Client
	room string
}

func newClient(room string) *client {
	return &client{http: &http.Client{Timeout: 2 * time.Minute}, room: room}
}

func token(t *testing.T, room, identity string, role auth.Role, seat int) string {
	t.Helper()
	tok, err := auth.Issue(auth.TokenOptions{
		Key: devKey, Secret: devSecret, Identity: identity, Name: identity, Room: room, TTL: time.Hour,
		Video: auth.GrantsForRole(role, room), Council: &auth.CouncilGrant{Role: role, Seat: seat},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call sends one API request; err is a transport failure (the server is gone), not a refusal.
func (c *client) call(s *server, method, path, tok string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+"/api/rooms/"+c.room+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, out, nil
}

func (c *client) must(t *testing.T, s *server, method, path, tok string, body any) []byte {
	t.Helper()
	status, out, err := c.call(s, method, path, tok, body)
	if err != nil {
		t.Fatalf("%s %s: %v\nserver log:\n%s", method, path, err, s.log())
	}
	if status != 200 {
		t.Fatalf("%s %s: %d %s", method, path, status, out)
	}
	return out
}

// voteView is what the state says of a vote.
type voteView struct {
	ID      string `json:"id"`
	Ballots []struct {
		Seat   int    `json:"seat"`
		Choice string `json:"choice"`
		CastBy int    `json:"castBy"`
	} `json:"ballots"`
	Result *struct {
		For, Against, Abstain int
		Adopted               bool
	} `json:"result"`
}

type stateView struct {
	Seats []struct {
		Seat     int    `json:"seat"`
		Presence string `json:"presence"`
	} `json:"seats"`
	Votes    []voteView `json:"votes"`
	OpenVote string     `json:"openVote"`
}

func (c *client) state(t *testing.T, s *server, tok string) stateView {
	t.Helper()
	var v stateView
	if err := json.Unmarshal(c.must(t, s, "GET", "/state", tok, nil), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// ballotsIn returns seat → choice for a vote of the state.
func ballotsIn(t *testing.T, v stateView, vote string) map[int]string {
	t.Helper()
	for _, vv := range v.Votes {
		if vv.ID == vote {
			out := map[int]string{}
			for _, b := range vv.Ballots {
				out[b.Seat] = b.Choice
			}
			return out
		}
	}
	t.Fatalf("vote %q is not in the state", vote)
	return nil
}

// journalBallots reads the journal file directly: seat → choice of every ballot.cast of a vote.
func journalBallots(t *testing.T, path, vote string) map[int]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for line := range strings.Lines(string(raw)) {
		if !strings.HasSuffix(line, "\n") {
			break // an incomplete last line is no entry
		}
		var e store.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journal line %q: %v", line, err)
		}
		if e.Type != "ballot.cast" {
			continue
		}
		var b struct {
			Vote   string `json:"vote"`
			Seat   int    `json:"seat"`
			Choice string `json:"choice"`
		}
		if err := json.Unmarshal(e.Data, &b); err != nil {
			t.Fatal(err)
		}
		if b.Vote == vote {
			out[b.Seat] = b.Choice
		}
	}
	return out
}

// verifyJournal runs `hemicycle journal verify FILE`.
func verifyJournal(t *testing.T, bin, path string) (string, error) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), bin, "journal", "verify", path).CombinedOutput()
	return string(out), err
}

// roster is a CSV roster of n seats.
func roster(n int) string {
	var b strings.Builder
	b.WriteString("seat,name,group,role\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d,Membre %03d,Groupe %c,conseiller\n", i, i, 'A'+rune(i%3))
	}
	return b.String()
}

// keyed renders a seat → choice map in seat order, for messages.
func keyed(m map[int]string) string {
	seats := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(seats))
	for i, seat := range seats {
		parts[i] = fmt.Sprintf("%d:%s", seat, m[seat])
	}
	return strings.Join(parts, " ")
}
