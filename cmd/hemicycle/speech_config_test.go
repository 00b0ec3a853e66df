package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped configuration sends no audio anywhere; speech.engine_url turns recognition on,
// in the server's language unless speech.language says otherwise, and a bad address or a
// sitting-start switch without an engine refuses to start.
func TestSpeechEngineIsConfiguredOnlyByItsURL(t *testing.T) {
	withKeys := func(c *Config) { c.Keys = map[string]string{"council": "a secret of at least thirty-two bytes"} }
	c := defaultConfig()
	if err := loadConfigFile("../../configs/hemicycle.yaml", &c); err != nil {
		t.Fatal(err)
	}
	if sc := c.speech(); sc != nil {
		t.Fatalf("the shipped configuration names an engine: %+v", sc)
	}

	path := filepath.Join(t.TempDir(), "hemicycle.yaml")
	yaml := "speech:\n  engine_url: ws://127.0.0.1:2700/hemicycle\n  at_sitting_start: true\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c = defaultConfig()
	if err := loadConfigFile(path, &c); err != nil {
		t.Fatal(err)
	}
	withKeys(&c)
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	sc := c.speech()
	if sc == nil || sc.EngineURL != "ws://127.0.0.1:2700/hemicycle" || !sc.AtSittingStart || sc.Language != "fr" {
		t.Fatalf("speech configured as %+v, want the engine at sitting start, in French (language)", sc)
	}

	for _, bad := range []struct {
		speech SpeechConfig
		says   string
	}{
		{SpeechConfig{EngineURL: "http://127.0.0.1:2700"}, "ws://"},
		{SpeechConfig{EngineURL: "ws://"}, "ws://"},
		{SpeechConfig{AtSittingStart: true}, "engine_url"},
	} {
		c := defaultConfig()
		withKeys(&c)
		c.Speech = bad.speech
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("speech %+v: %v, want a refusal naming %s", bad.speech, err, bad.says)
		}
	}
}
