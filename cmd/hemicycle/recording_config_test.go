package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// TestRecordingInsetsTheInterpreterUnlessConfigured reads the shipped configuration with
// recording on: the recording re-encodes with the interpreter inset, and copies the cameras'
// VP8 once broadcast.recording.interpreter is false.
func TestRecordingInsetsTheInterpreterUnlessConfigured(t *testing.T) {
	log := signalingtest.Logger()
	// Recording on, and the key pair viewer tokens are signed with.
	recorded := func(c *Config) {
		c.Privacy.Recorded, c.Privacy.RetentionDays = true, 30
		c.Keys = map[string]string{"council": "a secret of at least thirty-two bytes"}
	}
	c := defaultConfig()
	if err := loadConfigFile("../../configs/hemicycle.yaml", &c); err != nil {
		t.Fatal(err)
	}
	recorded(&c)
	pc, err := programmeConfig(c, log)
	if err != nil {
		t.Fatal(err)
	}
	if pc.Recording == nil || pc.Recording.CopyVideo || pc.Recording.Height != 360 || pc.Recording.VideoBitrate != 600 {
		t.Fatalf("shipped configuration records %+v, want the interpreter inset at 360 lines and 600 kb/s", pc.Recording)
	}

	path := filepath.Join(t.TempDir(), "hemicycle.yaml")
	yaml := "broadcast:\n  recording:\n    interpreter: false\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c = defaultConfig()
	if err := loadConfigFile(path, &c); err != nil {
		t.Fatal(err)
	}
	recorded(&c)
	if pc, err = programmeConfig(c, log); err != nil {
		t.Fatal(err)
	}
	if !pc.Recording.CopyVideo {
		t.Errorf("interpreter: false still re-encodes the recording: %+v", pc.Recording)
	}

	c = defaultConfig()
	recorded(&c)
	if pc, err = programmeConfig(c, log); err != nil || pc.Recording.CopyVideo {
		t.Errorf("without a configuration file the recording copies (%+v, %v), want the interpreter inset", pc.Recording, err)
	}
}
