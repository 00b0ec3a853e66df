package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/ingeco/hemicycle/auth"
)

// lockedBuffer is the server's output, read while it is written.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A whole run of the server at debug level, with a member joining through the LiveKit SDK,
// API calls with good and forged tokens and a refused join, never writes the API secret or a
// token (nor a token's signature) to its output.
func TestSecretsNeverReachTheLogs(t *testing.T) {
	const key, secret = "mairie", "s3cr3t-0f-the-t0wn-hall-9f2c81d7e4b6a05c"
	env := map[string]string{"HEMICYCLE_KEYS": key + ": " + secret, "HEMICYCLE_DATA_DIR": t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--dev", "--port", "0", "--udp-port", "0", "--tcp-port", "0", "--log-level", "debug"},
			&out, &out, func(k string) string { return env[k] })
	}()
	listening := regexp.MustCompile(`hemicycle listening on (http://\S+)`)
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == ""; {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("the server did not start: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	issue := func(identity string, role auth.Role) string {
		tok, err := auth.Issue(auth.TokenOptions{Key: key, Secret: secret, Identity: identity, Room: "conseil", TTL: time.Hour,
			Video: auth.GrantsForRole(role, "conseil"), Council: &auth.CouncilGrant{Role: role}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	member, chair := issue("c12", auth.RoleMember), issue("anne", auth.RoleChair)
	forged := chair[:strings.LastIndex(chair, ".")+1] + "bm90LXRoZS1zaWduYXR1cmU"
	room, err := lksdk.ConnectToRoomWithToken("ws"+strings.TrimPrefix(base, "http"), member, lksdk.NewRoomCallback())
	if err != nil {
		t.Fatalf("member's join: %v", err)
	}
	if _, err := lksdk.ConnectToRoomWithToken("ws"+strings.TrimPrefix(base, "http"), forged, lksdk.NewRoomCallback()); err == nil {
		t.Fatal("a forged token joined")
	}
	for _, c := range []struct {
		token    string
		verified bool
	}{{chair, true}, {member, true}, {forged, false}} {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/rooms/conseil/state", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if (res.StatusCode != http.StatusUnauthorized) != c.verified {
			t.Errorf("GET state: %d for a token that verifies: %v", res.StatusCode, c.verified)
		}
	}
	room.Disconnect()
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop")
	}

	logs := out.String()
	if !strings.Contains(logs, "participant joined") {
		t.Fatalf("the run's output does not show the join: it is not the log of a run\n%s", logs)
	}
	for what, s := range map[string]string{
		"the API secret": secret, "the member's token": member, "the chair's token": chair, "the forged token": forged,
		"the member's token's signature": member[strings.LastIndex(member, ".")+1:],
	} {
		if strings.Contains(logs, s) {
			t.Errorf("%s appears in the server's output", what)
		}
	}
}
