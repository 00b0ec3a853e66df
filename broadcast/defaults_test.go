package broadcast

import (
	"testing"
	"time"
)

// An unset field (empty, zero or negative) takes the default; a set one keeps its value.
func TestSetDefault(t *testing.T) {
	unset, negative, set := 0, -1, 720
	SetDefault(&unset, 360)
	SetDefault(&negative, 360)
	SetDefault(&set, 360)
	if unset != 360 || negative != 360 || set != 720 {
		t.Errorf("heights 0, -1, 720 became %d, %d, %d; want 360, 360, 720", unset, negative, set)
	}
	empty, preset := "", "slow"
	SetDefault(&empty, "veryfast")
	SetDefault(&preset, "veryfast")
	if empty != "veryfast" || preset != "slow" {
		t.Errorf("presets \"\", slow became %q, %q", empty, preset)
	}
	var ttl time.Duration
	SetDefault(&ttl, 15*time.Minute)
	if ttl != 15*time.Minute {
		t.Errorf("an unset duration became %s", ttl)
	}
}
