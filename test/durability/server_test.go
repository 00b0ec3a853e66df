// Package durability checks, against the real binary, that a ballot acknowledged by the
// server is never lost: the server is killed with SIGKILL (no shutdown, no flush) and
// restarted on the same data folder, and every acknowledged ballot must be found again.
package durability

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/store"
)

// keys are those of the development server (hemicycle --dev).
var keys = signalingtest.DevKeys

func TestMain(m *testing.M) { signalingtest.Main(m) }

// startServer runs `hemicycle --dev` on free ports with dataDir as HEMICYCLE_DATA_DIR and
// returns once it serves.
func startServer(t *testing.T, bin, dataDir string) *signalingtest.Process {
	t.Helper()
	p, err := signalingtest.StartProcess(t, signalingtest.Command{
		Path: bin, Args: []string{"--dev", "--port", "0", "--udp-port", "0", "--tcp-port", "0"},
		Env: []string{"HEMICYCLE_DATA_DIR=" + dataDir},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// kill sends SIGKILL and waits until the server is gone: no shutdown code runs.
func kill(t *testing.T, s *signalingtest.Process) {
	t.Helper()
	if err := s.Kill(); err != nil {
		t.Fatalf("hemicycle: %v", err)
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

// call sends one API request; err is a transport failure (the server is gone), not a refusal.
func (c *client) call(s *signalingtest.Process, method, path, tok string, body any) (int, []byte, error) {
	return signalingtest.Request(context.Background(), c.http, method, s.URL+"/api/rooms/"+c.room+path, tok, body)
}

func (c *client) must(t *testing.T, s *signalingtest.Process, method, path, tok string, body any) []byte {
	t.Helper()
	status, out, err := c.call(s, method, path, tok, body)
	if err != nil {
		t.Fatalf("%s %s: %v\nserver log:\n%s", method, path, err, s.Output())
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

func (c *client) state(t *testing.T, s *signalingtest.Process, tok string) stateView {
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
