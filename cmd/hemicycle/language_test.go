package main

import (
	"strings"
	"testing"
)

// TestLanguageIsConfigured: the shipped configuration writes in French, HEMICYCLE_LANGUAGE
// changes it, and a language the server does not write stops it before it starts.
func TestLanguageIsConfigured(t *testing.T) {
	c := defaultConfig()
	if err := loadConfigFile("../../configs/hemicycle.yaml", &c); err != nil {
		t.Fatal(err)
	}
	c.Keys = map[string]string{"council": "a secret of at least thirty-two bytes"}
	if l, err := c.labels(); err != nil || l.Lang != "fr" {
		t.Fatalf("shipped language %q (%v), want fr", l.Lang, err)
	}
	env := map[string]string{"HEMICYCLE_LANGUAGE": "en"}
	if err := applyEnv(&c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if l, err := c.labels(); err != nil || l.ChapterBleep != "Passage cut (bleep)" {
		t.Fatalf("HEMICYCLE_LANGUAGE=en gives %q (%v), want the English labels", l.Lang, err)
	}
	if err := c.validate(); err != nil {
		t.Fatalf("English refused: %v", err)
	}
	c.Language = "de"
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), `language "de": use fr or en`) {
		t.Fatalf("language de: %v, want a refusal naming the languages", err)
	}
}
