package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

func noEnv(string) string { return "" }

func TestServeRefusesToStartWithoutKeys(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"serve", "--config", "../../configs/hemicycle.yaml"}, &out, &errOut, noEnv)
	if err == nil || !strings.Contains(err.Error(), "no API keys") {
		t.Fatalf("serve without keys: got %v, want a refusal naming the missing keys", err)
	}
}

func TestServeRefusesWeakKeysOutsideDev(t *testing.T) {
	env := func(k string) string {
		if k == "HEMICYCLE_KEYS" {
			return "k: short"
		}
		return ""
	}
	err := run(context.Background(), []string{"serve", "--config", "../../configs/hemicycle.yaml"}, &bytes.Buffer{}, &bytes.Buffer{}, env)
	if err == nil {
		t.Fatal("serve accepted a short secret")
	}
}

func TestShippedConfigurationParses(t *testing.T) {
	c := defaultConfig()
	if err := loadConfigFile("../../configs/hemicycle.yaml", &c); err != nil {
		t.Fatal(err)
	}
	if c.Port != 7880 || c.RTC.UDPPort != 7882 || c.RTC.TCPPort != 7881 {
		t.Errorf("shipped ports %d/%d/%d, want LiveKit's 7880/7882/7881", c.Port, c.RTC.UDPPort, c.RTC.TCPPort)
	}
}

func TestTokenCommandMintsAVerifiableToken(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"token", "--room", "conseil", "--identity", "c12", "--role", "member", "--seat", "12"}, &out, &errOut, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out.String())
	if !strings.Contains(errOut.String(), "/join?token="+tok) {
		t.Errorf("no invitation link printed: %q", errOut.String())
	}
	claims, err := auth.NewVerifier(signalingtest.DevKeys.KeySet()).VerifyForRoom(tok, "conseil")
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	if claims.ParticipantIdentity() != "c12" || claims.Role() != auth.RoleMember || claims.Council.Seat != 12 {
		t.Errorf("claims %+v", claims)
	}
	err = run(context.Background(), []string{"token", "--room", "conseil", "--identity", "x", "--role", "mayor"}, &out, &errOut, noEnv)
	if err == nil || !strings.Contains(err.Error(), "mayor") {
		t.Fatalf("unknown role: got %v", err)
	}
}

// TestWebhooksConfiguration: the signing key is one of keys (the only one by default), its
// secret is taken from them, and a bad URL or key is refused with the setting's name.
func TestWebhooksConfiguration(t *testing.T) {
	c := defaultConfig()
	c.Keys = map[string]string{"hemicycle": strings.Repeat("s", 32)}
	c.Webhooks.URLs = []string{"https://mairie.example.fr/hooks"}
	w, err := c.webhooks()
	if err != nil || w.APIKey != "hemicycle" || w.APISecret != c.Keys["hemicycle"] {
		t.Fatalf("the only key: %+v, %v", w, err)
	}
	c.Keys["other"] = strings.Repeat("o", 32)
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "webhooks.api_key") {
		t.Errorf("two keys, none named: %v", err)
	}
	c.Webhooks.APIKey = "unknown"
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), `"unknown"`) {
		t.Errorf("unknown key: %v", err)
	}
	c.Webhooks.APIKey, c.Webhooks.URLs = "other", []string{"ftp://mairie.example.fr/hooks"}
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "ftp://") {
		t.Errorf("an ftp URL: %v", err)
	}
	if err := applyEnv(&c, func(k string) string {
		return map[string]string{"HEMICYCLE_WEBHOOKS_URLS": "https://a.example/h,https://b.example/h"}[k]
	}); err != nil || len(c.Webhooks.URLs) != 2 {
		t.Errorf("HEMICYCLE_WEBHOOKS_URLS: %v %v", c.Webhooks.URLs, err)
	}
}

// Every command answers -h and --help with its usage on stdout and ends well (exit 0), without
// doing anything else (journal verify once took --help for a journal's name); a mistyped
// option still ends with exit 2 and says what was wrong.
func TestEveryCommandPrintsItsUsageForHelp(t *testing.T) {
	commands := [][]string{{}, {"serve"}, {"bench"}, {"token"}, {"journal"}, {"journal", "verify"},
		{"journal", "keys"}, {"journal", "keys", "rotate"}, {"minutes"}}
	for _, cmd := range commands {
		for _, help := range []string{"-h", "--help"} {
			var stdout, stderr bytes.Buffer
			args := append(append([]string{}, cmd...), help)
			err := run(context.Background(), args, &stdout, &stderr, func(string) string { return "" })
			if code := exitCode(err, &stderr); code != 0 {
				t.Errorf("hemicycle %s: exit %d, want 0 (%v)", strings.Join(args, " "), code, err)
			}
			if !strings.Contains(strings.ToLower(stdout.String()), "usage") || stderr.Len() > 0 {
				t.Errorf("hemicycle %s: stdout %q, stderr %q; want the usage on stdout alone", strings.Join(args, " "), stdout.String(), stderr.String())
			}
		}
	}
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--bogus"}, io.Discard, &stderr, func(string) string { return "" })
	if code := exitCode(err, &stderr); code != 2 || !strings.Contains(stderr.String(), "bogus") {
		t.Errorf("hemicycle serve --bogus: exit %d, stderr %q; want 2 naming the option", code, stderr.String())
	}
}

// The invitation link that token prints starts with the address of the server the
// configuration describes: its public URL, or its bind address and port.
func TestTokenLinkUsesTheConfiguredAddress(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ config, want string }{
		{"", "http://127.0.0.1:7880/join?token="},
		{"port: 8443\nbind: 0.0.0.0\n", "http://127.0.0.1:8443/join?token="},
		{"public_url: wss://mairie.example/\n", "https://mairie.example/join?token="},
	} {
		args := []string{"token", "--room", "conseil", "--identity", "c12"}
		if c.config != "" {
			path := filepath.Join(dir, "hemicycle.yaml")
			if err := os.WriteFile(path, []byte(c.config+"keys:\n  k1: 0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--config", path)
		}
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut, noEnv); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut.String(), c.want) {
			t.Errorf("with %q: %q, want a link starting %s", c.config, errOut.String(), c.want)
		}
	}
}
