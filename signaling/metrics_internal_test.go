package signaling

import (
	"testing"
	"time"
)

func TestJoinHistogramBuckets(t *testing.T) {
	var h joinHistogram
	for _, d := range []time.Duration{30 * time.Millisecond, 100 * time.Millisecond, 400 * time.Millisecond, time.Minute} {
		h.observe(d)
	}
	n, sum, buckets := h.read()
	if n != 4 {
		t.Errorf("count = %d, want 4", n)
	}
	if want := 60.53; sum < want-1e-9 || sum > want+1e-9 {
		t.Errorf("sum = %v s, want %v", sum, want)
	}
	for bound, want := range map[float64]uint64{0.05: 1, 0.1: 2, 0.3: 2, 0.5: 3, 30: 3} {
		if buckets[bound] != want {
			t.Errorf("bucket le=%v holds %d, want %d (cumulative)", bound, buckets[bound], want)
		}
	}
}
