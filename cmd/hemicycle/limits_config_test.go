package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// The limits: the shipped configuration writes down the defaults as they are, the hardened
// sample is tighter on every one and still valid, --dev lifts only those per address and per
// token, and a bad value is refused with its key.
func TestLimitsConfiguration(t *testing.T) {
	shipped := defaultConfig()
	shipped.Limits = signaling.Limits{} // what the file says, and only that
	if err := loadConfigFile("../../configs/hemicycle.yaml", &shipped); err != nil {
		t.Fatal(err)
	}
	if d := signaling.DefaultLimits(); shipped.Limits != d {
		t.Errorf("configs/hemicycle.yaml documents limits %+v; the defaults are %+v", shipped.Limits, d)
	}

	hardened := defaultConfig()
	if err := loadConfigFile("../../configs/hardened.yaml", &hardened); err != nil {
		t.Fatal(err)
	}
	h, d := hardened.Limits, signaling.DefaultLimits()
	for _, c := range []struct {
		key        string
		got, deflt float64
	}{
		{"messages_per_second", h.MessagesPerSecond, d.MessagesPerSecond},
		{"joins_per_second_per_address", h.JoinsPerSecondPerAddress, d.JoinsPerSecondPerAddress},
		{"joins_per_second", h.JoinsPerSecond, d.JoinsPerSecond},
		{"participants_per_room", float64(h.ParticipantsPerRoom), float64(d.ParticipantsPerRoom)},
		{"rooms_per_node", float64(h.RoomsPerNode), float64(d.RoomsPerNode)},
		{"tracks_per_participant", float64(h.TracksPerParticipant), float64(d.TracksPerParticipant)},
		{"api_requests_per_second_per_token", h.APIRequestsPerSecondPerToken, d.APIRequestsPerSecondPerToken},
	} {
		if c.got <= 0 || c.got > c.deflt {
			t.Errorf("hardened limits.%s = %v: want a limit, at most the default %v", c.key, c.got, c.deflt)
		}
	}
	if err := h.Validate(); err != nil {
		t.Errorf("hardened limits: %v", err)
	}
	if h.MessageBurst <= h.ParticipantsPerRoom || d.MessageBurst <= d.ParticipantsPerRoom {
		t.Errorf("message bursts %d (hardened) and %d (default) must exceed the participants a room holds (%d, %d): a client sets every video at once",
			h.MessageBurst, d.MessageBurst, h.ParticipantsPerRoom, d.ParticipantsPerRoom)
	}

	dev := devConfig().Limits
	if dev.JoinsPerSecondPerAddress != 0 || dev.APIRequestsPerSecondPerToken != 0 {
		t.Errorf("--dev keeps limits per address or per token: %+v", dev)
	}
	if dev.JoinsPerSecond != d.JoinsPerSecond || dev.ParticipantsPerRoom != d.ParticipantsPerRoom || dev.MessagesPerSecond != d.MessagesPerSecond {
		t.Errorf("--dev lifts more than the limits per address and per token: %+v", dev)
	}

	for _, bad := range []struct{ yaml, want string }{
		{"limits:\n  rooms_per_node: -1\n", "limits.rooms_per_node -1"},
		{"limits:\n  joins_per_second: 5\n  join_burst: 0\n", "limits.join_burst is 0"},
		{"limits:\n  tracks_per_room: 3\n", "field tracks_per_room not found"},
	} {
		path := filepath.Join(t.TempDir(), "hemicycle.yaml")
		if err := os.WriteFile(path, []byte("keys:\n  k: "+strings.Repeat("s", 40)+"\n"+bad.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c := defaultConfig()
		err := loadConfigFile(path, &c)
		if err == nil {
			err = c.validate()
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: got %v, want an error saying %q", bad.yaml, err, bad.want)
		}
	}
}

// The binary hands its limits section to the server: a --dev server given a configuration with limits
// per address and per token enforces them, and /metrics counts the refusals.
func TestServeEnforcesTheConfiguredLimits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hemicycle.yaml")
	config := "data_dir: " + filepath.Join(dir, "data") + "\nbroadcast:\n  enabled: false\nlimits:\n" +
		"  joins_per_second_per_address: 0.001\n  join_burst_per_address: 1\n" +
		"  api_requests_per_second_per_token: 0.001\n  api_burst_per_token: 1\n"
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stdout, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--dev", "--config", path, "--port", "0", "--udp-port", "0", "--tcp-port", "0", "--log-level", "error"}, w, io.Discard, noEnv)
		_ = w.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "hemicycle listening on "); ok {
				url, _, _ := strings.Cut(rest, " ")
				urls <- url
			}
		}
		close(urls)
	}()
	var base string
	select {
	case base = <-urls:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not say where it listens within 30 s")
	}
	get := func(path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, _ := get("/rtc", ""); status != http.StatusUnauthorized {
		t.Errorf("first /rtc without a token: %d, want 401", status)
	}
	if status, body := get("/rtc", ""); status != http.StatusTooManyRequests || !strings.Contains(body, "too many joins from your address") {
		t.Errorf("second /rtc: %d %q, want 429 for the address's joins", status, body)
	}
	tok := signalingtest.DevKeys.Token(t, "conseil", "c12", auth.RoleMember, 12)
	if status, _ := get("/api/rooms/conseil/state", tok); status == http.StatusTooManyRequests {
		t.Error("the token's first request refused")
	}
	if status, body := get("/api/rooms/conseil/state", tok); status != http.StatusTooManyRequests || !strings.Contains(body, "jeton") {
		t.Errorf("the token's second request: %d %q, want 429 worded in French first", status, body)
	}
	_, metrics := get("/metrics", "")
	for _, want := range []string{`hemicycle_limit_refusals_total{limit="joins_per_address"} 1`, `hemicycle_limit_refusals_total{limit="api_per_token"} 1`,
		`hemicycle_limit_refusals_total{limit="rooms_per_node"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
