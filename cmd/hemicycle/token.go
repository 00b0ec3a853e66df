package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ingeco/hemicycle/auth"
)

func cmdToken(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := subcommandFlags("token", stdout, stderr)
	room := fs.String("room", "", "room to join (required unless --body: a body's clerk prepares sittings before their room exists)")
	identity := fs.String("identity", "", "participant identity (required)")
	name := fs.String("name", "", "display name")
	role := fs.String("role", "member", "council role: chair, clerk, member, agent, captioner, interpreter, viewer")
	seat := fs.Int("seat", 0, "the member's seat in the roster (0: none)")
	body := fs.String("body", "", "the deliberating body")
	ttl := fs.Duration("ttl", 4*time.Hour, "validity")
	key := fs.String("key", "", "API key (default: the first of HEMICYCLE_KEYS or of --config, else devkey)")
	secret := fs.String("secret", "", "API secret for --key")
	configPath := fs.String("config", "", "take the key pair from this configuration file")
	baseURL := fs.String("url", "", "server address for the printed invitation link (default: from --config, its public_url or bind and port; else http://127.0.0.1:7880)")
	if err := parseOptions(fs, args); err != nil {
		return err
	}
	if *baseURL == "" {
		u, err := invitationBase(*configPath)
		if err != nil {
			return fmt.Errorf("token: %w", err)
		}
		*baseURL = u
	}
	if (*room == "" && *body == "") || *identity == "" {
		return fmt.Errorf("token: --identity and --room (or --body, for a body's clerk) are required")
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	k, s, err := tokenKey(*key, *secret, *configPath, getenv)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	opts := auth.TokenOptions{
		Key: k, Secret: s, Identity: *identity, Name: *name, Room: *room, TTL: *ttl,
		Council: &auth.CouncilGrant{Role: r, Seat: *seat, Body: *body},
	}
	if *room != "" {
		opts.Video = auth.GrantsForRole(r, *room)
	}
	tok, err := auth.Issue(opts)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	if *room != "" {
		fmt.Fprintf(stderr, "invitation link: %s/join?token=%s\n", *baseURL, tok)
	}
	return nil
}

// tokenKey picks the signing pair: explicit flags, then the configuration, then HEMICYCLE_KEYS,
// then the development pair.
func tokenKey(key, secret, configPath string, getenv func(string) string) (string, string, error) {
	if key != "" || secret != "" {
		if key == "" || secret == "" {
			return "", "", fmt.Errorf("--key and --secret go together")
		}
		return key, secret, nil
	}
	keys := map[string]string{}
	if configPath != "" {
		c := defaultConfig()
		if err := loadConfigFile(configPath, &c); err != nil {
			return "", "", err
		}
		keys = c.Keys
	}
	if v := getenv("HEMICYCLE_KEYS"); v != "" {
		parsed, err := auth.ParseKeys(v)
		if err != nil {
			return "", "", fmt.Errorf("HEMICYCLE_KEYS: %w", err)
		}
		keys = parsed
	}
	if len(keys) == 0 {
		return "devkey", "secret", nil
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	return names[0], keys[names[0]], nil
}

// invitationBase is the address a printed invitation link starts with: the server's that the
// configuration describes (its public URL, or its bind address and port), else the development
// server's.
func invitationBase(configPath string) (string, error) {
	c := defaultConfig()
	if configPath != "" {
		if err := loadConfigFile(configPath, &c); err != nil {
			return "", err
		}
	}
	if c.PublicURL != "" {
		return "http" + strings.TrimPrefix(strings.TrimSuffix(c.PublicURL, "/"), "ws"), nil
	}
	return "http://" + hostForURL(c.Bind, c.Port), nil
}
