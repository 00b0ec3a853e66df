package sfu

import (
	"testing"
	"time"
)

// Speaking is read from the voiced packets over a window: a syllable of 100 ms is caught within
// about 500 ms, Chromium's fake microphone's beeps within a second, silence ends a speaker
// within about 1.5 s, and neither clicks nor a murmur under the threshold nor voiced packets too
// sparse to be speech make a speaker.
func TestSpeakingFromAWindowOfVoicedPackets(t *testing.T) {
	const packet = int64(20 * time.Millisecond)
	// level gives each 20 ms packet's RFC 6464 level (-dBov) at time i*packet.
	type pattern func(i int) uint8
	silence := uint8(90)
	burst := func(from, n int, lvl uint8) pattern {
		return func(i int) uint8 {
			if i >= from && i < from+n {
				return lvl
			}
			return silence
		}
	}
	sparse := func(i int) uint8 { // one voiced packet every 200 ms
		if i%10 == 0 {
			return 20
		}
		return silence
	}
	beeps := func(i int) uint8 { // Chromium's fake microphone as its audio level extension shows it
		return [25]uint8{10, 9, 25, 33, 37, 40, 44, 47, 50, 55, 58, 62, 68, 71, 76, 81, 87, 98, 127, 127, 127, 127, 127, 127, 127}[i%25]
	}
	for _, c := range []struct {
		name    string
		level   pattern
		packets int
		// speakingBy: active at the latest this long after the start (0: never active);
		// silentBy: inactive again this long after the start.
		speakingBy, silentBy time.Duration
	}{
		{"a syllable of 100 ms", burst(10, 5, 25), 150, 500 * time.Millisecond, 1800 * time.Millisecond},
		{"two seconds of speech", burst(0, 100, 20), 250, 200 * time.Millisecond, 3500 * time.Millisecond},
		{"a beep every 500 ms", beeps, 150, time.Second, time.Hour},
		{"a click of 40 ms", burst(10, 2, 10), 150, 0, 0},
		{"two clicks 300 ms apart", func(i int) uint8 { return min(burst(10, 2, 10)(i), burst(25, 2, 10)(i)) }, 150, 0, 0},
		{"a murmur under the threshold", burst(0, 100, 40), 150, 0, 0},
		{"voiced packets too sparse to be speech", sparse, 150, 0, 0},
	} {
		p := &PublishedTrack{}
		start := int64(1e12)
		var firstActive, lastActive int64
		for i := range c.packets {
			now := start + int64(i)*packet
			p.observeLevel(c.level(i), now)
			if _, active := p.audioLevelAt(now); active {
				if firstActive == 0 {
					firstActive = now
				}
				lastActive = now
			}
		}
		switch {
		case c.speakingBy == 0 && firstActive != 0:
			t.Errorf("%s: taken for speech %v after the start", c.name, time.Duration(firstActive-start))
		case c.speakingBy != 0 && (firstActive == 0 || firstActive-start > int64(c.speakingBy)):
			t.Errorf("%s: speaking only %v after the start, want within %v", c.name, time.Duration(firstActive-start), c.speakingBy)
		case c.speakingBy != 0 && lastActive-start >= int64(c.silentBy):
			t.Errorf("%s: still speaking %v after the start, want silent by %v", c.name, time.Duration(lastActive-start), c.silentBy)
		}
	}
	// The level reported while speaking is that of the speech, not the smoothed one.
	p := &PublishedTrack{}
	for i := range 5 {
		p.observeLevel(20, int64(1e12)+int64(i)*packet)
	}
	if lvl, active := p.audioLevelAt(int64(1e12) + 5*packet); lvl != -20 || !active {
		t.Fatalf("after 100 ms at -20 dBov: level %v, speaking %v; want -20 and speaking", lvl, active)
	}
}
