package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/signaling"
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
