package sfu

import (
	"bytes"
	"testing"
)

func cachedPacket(sn uint16) []byte {
	return []byte{0x80, 96, byte(sn >> 8), byte(sn), 0, 0, 0, 1, 0, 0, 0, 2, byte(sn), 0xee}
}

func TestPacketCacheAcrossWraparound(t *testing.T) {
	c := newPacketCache(64)
	buf := make([]byte, maxPacketSize)
	for i := 0; i < 40; i++ {
		sn := uint16(65520 + i) // 65520 … 65535, then 0 … 23
		c.store(sn, cachedPacket(sn))
	}
	for _, sn := range []uint16{65520, 65535, 0, 23} {
		n := c.get(sn, buf)
		if !bytes.Equal(buf[:n], cachedPacket(sn)) {
			t.Errorf("get(%d) = %x, want %x", sn, buf[:n], cachedPacket(sn))
		}
	}
	if n := c.get(24, buf); n != 0 {
		t.Errorf("get(24), never stored, returned %d bytes", n)
	}
	if n := c.get(65519, buf); n != 0 {
		t.Errorf("get(65519), never stored, returned %d bytes", n)
	}
}

func TestPacketCacheTooOld(t *testing.T) {
	c := newPacketCache(50) // rounded up to 64
	buf := make([]byte, maxPacketSize)
	for sn := uint16(100); sn < 100+64+10; sn++ {
		c.store(sn, cachedPacket(sn))
	}
	// The newest is 173: 110 is the oldest of the 64 kept, 109 went out with its slot.
	if n := c.get(109, buf); n != 0 {
		t.Errorf("get(109) after it aged out returned %d bytes", n)
	}
	if n := c.get(110, buf); !bytes.Equal(buf[:n], cachedPacket(110)) {
		t.Errorf("get(110) = %x", buf[:n])
	}
	// A packet arriving later than the window is not stored over a newer one.
	c.store(105, cachedPacket(105))
	if n := c.get(105, buf); n != 0 {
		t.Errorf("a packet older than the window was stored")
	}
	if n := c.get(169, buf); !bytes.Equal(buf[:n], cachedPacket(169)) {
		t.Errorf("get(169) = %x after a late store", buf[:n])
	}
	// A late packet inside the window fills its hole.
	c2 := newPacketCache(64)
	c2.store(10, cachedPacket(10))
	c2.store(12, cachedPacket(12))
	if n := c2.get(11, buf); n != 0 {
		t.Errorf("a missing packet was returned")
	}
	c2.store(11, cachedPacket(11))
	if n := c2.get(11, buf); !bytes.Equal(buf[:n], cachedPacket(11)) {
		t.Errorf("late packet 11 = %x", buf[:n])
	}
}

func TestPacketCacheRefusesOversizedPackets(t *testing.T) {
	c := newPacketCache(8)
	c.store(1, make([]byte, maxPacketSize+1))
	if n := c.get(1, make([]byte, 2*maxPacketSize)); n != 0 {
		t.Fatalf("an oversized packet was stored (%d bytes)", n)
	}
}

func TestPacketCacheReportsDuplicates(t *testing.T) {
	c := newPacketCache(64)
	for _, tc := range []struct {
		sn   uint16
		want bool
	}{{10, false}, {11, false}, {10, true}, {12, false}, {11, true}, {9, false}, {9, true}} {
		if got := c.store(tc.sn, []byte{0x80, 96, byte(tc.sn >> 8), byte(tc.sn)}); got != tc.want {
			t.Errorf("store(%d) duplicate = %v, want %v", tc.sn, got, tc.want)
		}
	}
}
