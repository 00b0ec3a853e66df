package broadcast

import (
	"testing"

	"github.com/ingeco/hemicycle/test/media"
)

func TestDelayQueueKeepsOrderAndReusesSlots(t *testing.T) {
	q := newDelayQueue(2, 0)
	for i := range 5 {
		if !q.push(int64(i*10), uint16(i), uint32(i*100), i == 4, []byte{byte(i), byte(i)}) {
			t.Fatal("push refused")
		}
	}
	if q.len() != 5 {
		t.Fatalf("len %d, want 5 after growing", q.len())
	}
	for i := range 3 {
		h := q.peek()
		if h.at != int64(i*10) || h.sn != uint16(i) || h.data[0] != byte(i) {
			t.Fatalf("packet %d out of order: at %d sn %d data %v", i, h.at, h.sn, h.data)
		}
		q.pop()
	}
	// Wrap around: new packets reuse the freed slots and stay behind the older ones.
	for i := 5; i < 8; i++ {
		q.push(int64(i*10), uint16(i), 0, false, []byte{byte(i)})
	}
	var got []uint16
	for h := q.peek(); h != nil; h = q.peek() {
		got = append(got, h.sn)
		if len(h.data) == 0 || h.data[0] != byte(h.sn) {
			t.Errorf("packet %d carries %v: payload of another packet", h.sn, h.data)
		}
		q.pop()
	}
	want := []uint16{3, 4, 5, 6, 7}
	if len(got) != len(want) {
		t.Fatalf("released %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("released %v, want %v", got, want)
		}
	}
	if q.push(0, 0, 0, false, make([]byte, maxHeldPayload+1)) {
		t.Error("an oversized payload was accepted")
	}
}

func TestDelayQueueLimitDropsOldest(t *testing.T) {
	q := newDelayQueue(4, 8)
	for i := range 20 {
		q.push(int64(i), uint16(i), 0, false, []byte{1})
	}
	if q.len() != 8 {
		t.Fatalf("len %d, want the limit 8", q.len())
	}
	if h := q.peek(); h.sn != 12 {
		t.Errorf("oldest held is %d, want 12 (the newest 8 kept)", h.sn)
	}
}

func TestDelayQueuePushAllocatesNothingOnceWarm(t *testing.T) {
	q := newDelayQueue(64, 0)
	payload := make([]byte, 1200)
	for i := range 64 {
		q.push(int64(i), 0, 0, false, payload)
	}
	for q.len() > 0 {
		q.pop()
	}
	allocs := testing.AllocsPerRun(1000, func() {
		q.push(1, 2, 3, false, payload)
		q.pop()
	})
	if allocs != 0 {
		t.Errorf("push+pop allocates %.1f times per packet, want 0", allocs)
	}
}

func TestBleepLog(t *testing.T) {
	var b bleepLog
	if b.covers(5) {
		t.Fatal("empty log covers a time")
	}
	if _, ok := b.on(100); !ok {
		t.Fatal("on refused")
	}
	if _, ok := b.on(150); ok {
		t.Error("a second on while bleeping was accepted")
	}
	if !b.covers(100) || !b.covers(1<<40) || b.covers(99) {
		t.Error("a running bleep must cover from its start onwards, not before")
	}
	s, ok := b.off(200)
	if !ok || s.from != 100 || s.to != 200 {
		t.Fatalf("off: %+v %v, want [100,200)", s, ok)
	}
	if _, ok := b.off(300); ok {
		t.Error("off without a running bleep reported a change")
	}
	if b.covers(200) || !b.covers(199) {
		t.Error("the interval must be [from, to)")
	}
	// Bleeping the last seconds merges with what overlaps.
	s = b.add(150, 260)
	if s.from != 100 || s.to != 260 {
		t.Errorf("overlapping add gave %+v, want [100,260)", s)
	}
	b.add(400, 500)
	b.add(10, 20)
	all := b.all()
	if len(all) != 3 || all[0] != (span{10, 20}) || all[1] != (span{100, 260}) || all[2] != (span{400, 500}) {
		t.Errorf("intervals %+v, want [10,20) [100,260) [400,500)", all)
	}
	if b.covers(300) || !b.covers(450) || !b.covers(15) {
		t.Error("covers disagrees with the intervals")
	}
}

func TestOpusSamples(t *testing.T) {
	cases := []struct {
		p    []byte
		want int
	}{
		{[]byte{0xf8}, 960},        // CELT FB 20 ms, one frame
		{[]byte{0x08}, 960},        // SILK NB 20 ms
		{[]byte{0x0b << 3}, 2880},  // SILK 60 ms
		{[]byte{0xf9}, 1920},       // CELT 20 ms, two frames
		{[]byte{0xf3, 0x03}, 1440}, // CELT FB 10 ms, code 3 with 3 frames
		{nil, 0},
	}
	for _, c := range cases {
		if got := opusSamples(c.p); got != c.want {
			t.Errorf("opusSamples(%x) = %d, want %d", c.p, got, c.want)
		}
	}
}

func TestFixtures(t *testing.T) {
	fx, err := loadFixtures()
	if err != nil {
		t.Fatal(err)
	}
	if len(fx.tone) < 50 {
		t.Errorf("%d tone frames, want at least 50 (1 s of 20 ms)", len(fx.tone))
	}
	for i, f := range fx.tone {
		if opusSamples(f) != opusFrameSamples {
			t.Fatalf("tone frame %d lasts %d samples, want %d", i, opusSamples(f), opusFrameSamples)
		}
	}
	if opusSamples(fx.silence) != opusFrameSamples {
		t.Errorf("silence frame lasts %d samples", opusSamples(fx.silence))
	}
	for i, f := range fx.slate {
		if f[0]&1 != 0 {
			t.Errorf("slate frame %d is not a keyframe", i)
		}
	}
	if len(fx.blank) == 0 {
		t.Fatal("no blank frame")
	}
	for i, f := range fx.blank {
		if f[0]&1 != 0 || media.KeyframeWidth(f) != blankWidth {
			t.Errorf("blank frame %d: keyframe %v, %d wide; want keyframes %d wide", i, f[0]&1 == 0, media.KeyframeWidth(f), blankWidth)
		}
	}
}
