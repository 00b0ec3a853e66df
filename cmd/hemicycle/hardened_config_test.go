package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestHardenedConfigurationParses: configs/hardened.yaml holds no secret, passes validate once
// given the environment variables its header names (and only those), and keeps its promises:
// HTTP on loopback behind wss://, media and TURN/TLS on 443 on public addresses, the journal
// key ring outside data_dir, Redis with a user, TLS and the town's CA, SMTP with STARTTLS,
// JSON logs at info, the privacy notice filled in.
func TestHardenedConfigurationParses(t *testing.T) {
	const path = "../../configs/hardened.yaml"
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := defaultConfig()
	if err := loadConfigFile(path, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Keys) != 0 || c.Redis.Password != "" || c.SMTP.Password != "" {
		t.Fatalf("the sample writes a secret itself: keys %v, redis password %q, smtp password %q", c.Keys, c.Redis.Password, c.SMTP.Password)
	}
	if err := c.validate(); err == nil {
		t.Fatal("the sample is valid without its secrets")
	}

	// The header's "#   HEMICYCLE_X=..." lines are the environment it needs.
	var named []string
	for _, m := range regexp.MustCompile(`(?m)^#\s+(HEMICYCLE_[A-Z_]+)=`).FindAllStringSubmatch(string(text), -1) {
		named = append(named, m[1])
	}
	slices.Sort(named)
	if want := []string{"HEMICYCLE_KEYS", "HEMICYCLE_REDIS_PASSWORD", "HEMICYCLE_SMTP_PASSWORD"}; !slices.Equal(named, want) {
		t.Fatalf("the sample names the environment %v, want %v", named, want)
	}
	secret := strings.Repeat("k", 40)
	env := map[string]string{
		"HEMICYCLE_KEYS":           "council-2026: " + secret,
		"HEMICYCLE_REDIS_PASSWORD": "redis-password-from-the-environment",
		"HEMICYCLE_SMTP_PASSWORD":  "smtp-password-from-the-environment",
	}
	if err := applyEnv(&c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err != nil {
		t.Fatalf("the hardened sample with its environment: %v", err)
	}
	if c.Keys["council-2026"] != secret || c.Redis.Password != env["HEMICYCLE_REDIS_PASSWORD"] || c.SMTP.Password != env["HEMICYCLE_SMTP_PASSWORD"] {
		t.Errorf("secrets not taken from the environment: keys %v, redis %q, smtp %q", c.Keys, c.Redis.Password, c.SMTP.Password)
	}

	if c.Bind != "127.0.0.1" || !strings.HasPrefix(c.PublicURL, "wss://") {
		t.Errorf("HTTP on %s, public_url %q: want loopback behind a wss:// proxy", c.Bind, c.PublicURL)
	}
	if got := mediaBind(c); got == c.Bind || got != c.RTC.Bind {
		t.Errorf("media listen on %s: want rtc.bind, a public address", got)
	}
	if rel, err := filepath.Rel(c.DataDir, c.JournalKeys); err != nil || !strings.HasPrefix(rel, "..") {
		t.Errorf("journal_keys %s is inside data_dir %s", c.JournalKeys, c.DataDir)
	}
	if tr := c.TURN; !tr.Enabled || tr.TLSPort != 443 || tr.CertFile == "" || tr.KeyFile == "" || c.turnBind() == c.Bind || c.turnBind() == c.RTC.Bind {
		t.Errorf("turn %+v: want TURN over TLS on 443 of its own address", tr)
	}
	if r := c.Redis; !r.Enabled() || r.Username == "" || !r.TLS || r.TLSCAFile == "" || r.TLSCertFile == "" || r.TLSKeyFile == "" {
		t.Errorf("redis %+v: want a user, TLS, the town's CA and a client certificate", r)
	}
	if c.SMTP.TLS != "starttls" || c.SMTP.Username == "" {
		t.Errorf("smtp tls %q, user %q: want STARTTLS and authentication", c.SMTP.TLS, c.SMTP.Username)
	}
	if c.Logging != (LoggingConfig{Level: "info", Format: "json"}) {
		t.Errorf("logging %+v: want json at info", c.Logging)
	}
	if c.Privacy.Controller == "" || c.Privacy.Contact == "" || !strings.HasPrefix(c.Node.URL, "https://") {
		t.Errorf("privacy %+v, node.url %q: want the notice filled in and nodes relaying over TLS", c.Privacy, c.Node.URL)
	}
}

// TestRedisTLSAndMediaBindFromTheEnvironment: the Redis TLS files and name and the media
// address have their variables, and rtc.bind must be an address.
func TestRedisTLSAndMediaBindFromTheEnvironment(t *testing.T) {
	c := defaultConfig()
	c.Keys = map[string]string{"council-2026": strings.Repeat("k", 40)}
	env := map[string]string{
		"HEMICYCLE_REDIS_ADDR": "redis.saint-exemple.internal:6380", "HEMICYCLE_REDIS_TLS": "true",
		"HEMICYCLE_REDIS_TLS_CA_FILE": "/etc/hemicycle/tls/town-ca.pem", "HEMICYCLE_REDIS_TLS_CERT_FILE": "/etc/hemicycle/tls/node1.pem",
		"HEMICYCLE_REDIS_TLS_KEY_FILE": "/run/credentials/hemicycle.service/redis-key", "HEMICYCLE_REDIS_TLS_SERVER_NAME": "redis.test",
		"HEMICYCLE_RTC_BIND": "203.0.113.10",
	}
	if err := applyEnv(&c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	r := c.Redis
	if r.TLSCAFile != env["HEMICYCLE_REDIS_TLS_CA_FILE"] || r.TLSCertFile != env["HEMICYCLE_REDIS_TLS_CERT_FILE"] ||
		r.TLSKeyFile != env["HEMICYCLE_REDIS_TLS_KEY_FILE"] || r.TLSServerName != "redis.test" || c.RTC.Bind != "203.0.113.10" {
		t.Fatalf("from the environment: redis %+v, rtc.bind %q", r, c.RTC.Bind)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	c.Redis.TLS = false
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "redis.tls_ca_file is set but redis.tls is off") {
		t.Errorf("TLS files without tls: %v", err)
	}
	c.Redis.TLS, c.RTC.Bind = true, "media.saint-exemple.fr"
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "rtc.bind") {
		t.Errorf("a name as rtc.bind: %v", err)
	}
}
