package main

import (
	"strings"
	"testing"
)

// TestInvitationSettings reads the SMTP relay and the links' base from the environment and
// refuses settings that would mail a password in clear or links nobody can open.
func TestInvitationSettings(t *testing.T) {
	env := map[string]string{
		"HEMICYCLE_KEYS":          "prod: 3c1f0e8b5a7d4c2e9f6b1a0d8c7e5f4a3c1f0e8b",
		"HEMICYCLE_SMTP_ADDR":     "smtp.example.fr:587",
		"HEMICYCLE_SMTP_FROM":     "Mairie de Saint-Exemple <greffe@saint-exemple.fr>",
		"HEMICYCLE_SMTP_USERNAME": "greffe",
		"HEMICYCLE_SMTP_PASSWORD": "secret du relais",
		"HEMICYCLE_PUBLIC_URL":    "wss://conseil.saint-exemple.fr",
	}
	c := defaultConfig()
	if err := applyEnv(&c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err != nil {
		t.Fatalf("valid settings refused: %v", err)
	}
	ic := invitationConfig(c, "http://0.0.0.0:7880")
	if ic.PublicURL != "https://conseil.saint-exemple.fr" || ic.Mail == nil || ic.Mail.Password != "secret du relais" || ic.Key != "prod" {
		t.Errorf("invitations: %+v", ic)
	}
	for name, change := range map[string]func(*Config){
		"password without TLS": func(c *Config) { c.SMTP.TLS = "none" },
		"sender":               func(c *Config) { c.SMTP.From = "greffe" },
		"address":              func(c *Config) { c.SMTP.Addr = "smtp.example.fr" },
		"tls mode":             func(c *Config) { c.SMTP.TLS = "sometimes" },
		"links' base":          func(c *Config) { c.Invitations.BaseURL = "conseil.saint-exemple.fr" },
		"early":                func(c *Config) { c.Invitations.Early = -1 },
	} {
		bad := c
		change(&bad)
		if err := bad.validate(); err == nil || !strings.Contains(err.Error(), "smtp") && !strings.Contains(err.Error(), "invitations") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
