package signaling

import (
	"maps"
	"testing"

	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/sfu"
)

func TestCombineRatings(t *testing.T) {
	r := func(q sfu.LinkQuality, score float64) linkRating { return linkRating{q, score} }
	excellent, good, poor, lost := r(sfu.LinkExcellent, 95), r(sfu.LinkGood, 60), r(sfu.LinkPoor, 25), r(sfu.LinkLost, 0)
	for _, tc := range []struct {
		name     string
		up, down []linkRating
		want     livekit.ConnectionQuality
		score    float64
	}{
		{"nothing rated: the connection is up", nil, nil, livekit.ConnectionQuality_EXCELLENT, 100},
		{"the worst link decides", []linkRating{excellent, good}, []linkRating{excellent}, livekit.ConnectionQuality_GOOD, 60},
		{"a poor subscriber link", []linkRating{excellent}, []linkRating{excellent, poor}, livekit.ConnectionQuality_POOR, 25},
		{"everything published stopped", []linkRating{lost, lost}, []linkRating{excellent}, livekit.ConnectionQuality_LOST, 0},
		{"every subscriber link stopped reporting", []linkRating{excellent}, []linkRating{lost}, livekit.ConnectionQuality_LOST, 0},
		{"one frozen track among live ones says nothing", []linkRating{lost, good}, nil, livekit.ConnectionQuality_GOOD, 60},
		{"a frozen track and a poor one", []linkRating{lost, poor}, []linkRating{excellent}, livekit.ConnectionQuality_POOR, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, score := combineRatings(tc.up, tc.down)
			if q != tc.want || score != tc.score {
				t.Errorf("got %s %.0f, want %s %.0f", q, score, tc.want, tc.score)
			}
		})
	}
}

func TestQualityNewsOnlyChanges(t *testing.T) {
	info := func(sid string, q livekit.ConnectionQuality) *livekit.ConnectionQualityInfo {
		return &livekit.ConnectionQualityInfo{ParticipantSid: sid, Quality: q}
	}
	// Nothing told yet: everything is news.
	news, told := qualityNews(nil, []*livekit.ConnectionQualityInfo{info("PA_a", livekit.ConnectionQuality_EXCELLENT), info("PA_b", livekit.ConnectionQuality_POOR)})
	if len(news) != 2 {
		t.Fatalf("first round: %d ratings sent, want 2", len(news))
	}
	// POOR is the protocol's zero value: it must still count as told.
	news, told = qualityNews(told, []*livekit.ConnectionQualityInfo{info("PA_a", livekit.ConnectionQuality_EXCELLENT), info("PA_b", livekit.ConnectionQuality_POOR)})
	if len(news) != 0 {
		t.Fatalf("nothing changed, yet %d ratings sent", len(news))
	}
	// One changes, one leaves, one arrives.
	news, told = qualityNews(told, []*livekit.ConnectionQualityInfo{info("PA_a", livekit.ConnectionQuality_LOST), info("PA_c", livekit.ConnectionQuality_GOOD)})
	sent := map[string]livekit.ConnectionQuality{}
	for _, n := range news {
		sent[n.ParticipantSid] = n.Quality
	}
	want := map[string]livekit.ConnectionQuality{"PA_a": livekit.ConnectionQuality_LOST, "PA_c": livekit.ConnectionQuality_GOOD}
	if !maps.Equal(sent, want) {
		t.Errorf("sent %v, want %v", sent, want)
	}
	if _, kept := told["PA_b"]; kept || len(told) != 2 {
		t.Errorf("told %v: the participant that left should be forgotten", told)
	}
}

func TestMOS(t *testing.T) {
	for _, tc := range []struct {
		r    float64
		want float32
	}{{-5, 1}, {0, 1}, {100, 4.5}, {120, 4.5}, {50, 1 + 1.75 - 7e-6*50*10*50}, {93.2, 1 + 0.035*93.2 + 7e-6*93.2*33.2*6.8}} {
		if got := mos(tc.r); got-tc.want > 1e-5 || tc.want-got > 1e-5 {
			t.Errorf("mos(%v) = %v, want %v", tc.r, got, tc.want)
		}
	}
	// Monotonic over the range used, so that a worse score never reads as a better MOS.
	for r := 0.0; r < 100; r++ {
		if mos(r+1) < mos(r) {
			t.Fatalf("mos(%v) = %v < mos(%v) = %v", r+1, mos(r+1), r, mos(r))
		}
	}
}
