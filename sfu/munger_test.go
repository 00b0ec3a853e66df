package sfu_test

import (
	"testing"

	"github.com/ingeco/hemicycle/sfu"
)

// TestMungerContinuousAcrossSwitch: the output keeps its first source's numbers, follows on
// without a gap when another source takes over, with the timestamp advanced by the time that
// passed, places a late packet of the current source where it belongs, and refuses one from
// before the switch, whose number was already sent for the previous source.
func TestMungerContinuousAcrossSwitch(t *testing.T) {
	m := sfu.NewMunger(90000)
	send := func(sn uint16, ts uint32, at int64) (uint16, uint32, bool) {
		osn, ots, ok := m.Translate(sn, ts)
		if ok {
			m.Sent(sn, osn, ots, at)
		}
		return osn, ots, ok
	}
	m.Rebase(1000, 50000, 0)
	if sn, ts, ok := send(1000, 50000, 0); !ok || sn != 1000 || ts != 50000 {
		t.Fatalf("first source starts at %d/%d (%v), want its own numbers", sn, ts, ok)
	}
	send(1001, 53000, 33e6)
	// Another source, 100 ms after the last packet, with unrelated numbers.
	m.Rebase(7, 123, 133e6)
	sn, ts, ok := send(7, 123, 133e6)
	if !ok || sn != 1002 {
		t.Errorf("switched source starts at SN %d (%v), want 1002", sn, ok)
	}
	if want := uint32(53000 + 9000); ts != want {
		t.Errorf("switched source starts at TS %d, want %d (100 ms later)", ts, want)
	}
	send(9, 6123, 200e6)
	if sn, ts, ok := send(8, 3123, 210e6); !ok || sn != 1003 || ts != 53000+9000+3000 {
		t.Errorf("late packet of the new source %d/%d (%v), want 1003/%d", sn, ts, ok, 53000+9000+3000)
	}
	if sn, _, _ := send(10, 9123, 233e6); sn != 1005 {
		t.Errorf("after the late packet the next is numbered %d, want 1005", sn)
	}
	if sn, _, ok := send(6, 0, 240e6); ok {
		t.Errorf("a packet from before the switch went out as %d, which the previous source already used", sn)
	}
}
