package main

import (
	"strings"
	"testing"
	"time"
)

func TestShippedTURNSettings(t *testing.T) {
	c := defaultConfig()
	if err := loadConfigFile("../../configs/hemicycle.yaml", &c); err != nil {
		t.Fatal(err)
	}
	want := TURNConfig{Port: 3478, TLSPort: 443, RelayPortMin: 30000, RelayPortMax: 39999, CredentialTTL: 12 * time.Hour}
	if c.TURN != want {
		t.Errorf("shipped turn settings %+v, want %+v", c.TURN, want)
	}
	if d := devConfig(); !d.TURN.Enabled || d.turnHost() != "127.0.0.1" || d.turnRelayIP().String() != "127.0.0.1" {
		t.Errorf("--dev: TURN enabled %v on %q relaying as %v, want it on loopback", d.TURN.Enabled, d.turnHost(), d.turnRelayIP())
	}
}

func TestTURNSettingsRefused(t *testing.T) {
	base := func() Config {
		c := defaultConfig()
		c.Keys = map[string]string{"k": "a-secret-of-at-least-thirty-two-bytes"}
		c.TURN.Enabled = true
		return c
	}
	for name, tc := range map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"no address clients could reach":    {func(c *Config) {}, "turn.domain"},
		"a name but no address to relay as": {func(c *Config) { c.TURN.Domain = "turn.example.fr" }, "IPv4 address to announce"},
		"certificate without key":           {func(c *Config) { c.Bind, c.TURN.CertFile = "192.0.2.1", "turn.pem" }, "cert_file and key_file"},
		"relay range upside down":           {func(c *Config) { c.Bind, c.TURN.RelayPortMin, c.TURN.RelayPortMax = "192.0.2.1", 40000, 30000 }, "relay ports"},
		"credential that never lives":       {func(c *Config) { c.Bind, c.TURN.CredentialTTL = "192.0.2.1", 0 }, "credential_ttl"},
	} {
		t.Run(name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			if err := c.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validate: %v, want an error about %q", err, tc.want)
			}
		})
	}
	c := base()
	c.TURN.Domain, c.RTC.PublicIPs = "turn.example.fr", []string{"203.0.113.10"}
	if err := c.validate(); err != nil {
		t.Fatalf("a domain and a public IP: %v", err)
	}
	if c.turnHost() != "turn.example.fr" || c.turnRelayIP().String() != "203.0.113.10" {
		t.Errorf("host %q relay %v, want the domain in URLs and the public IP as relay address", c.turnHost(), c.turnRelayIP())
	}
}
