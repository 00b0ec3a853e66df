package signaling

import (
	"maps"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/ingeco/hemicycle/auth"
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

// qualityWatch records the connection qualities a client is told, through the SDK's callback.
type qualityWatch struct {
	mu     sync.Mutex
	latest map[string]livekit.ConnectionQuality // by participant identity
}

func newQualityWatch() (*qualityWatch, *lksdk.RoomCallback) {
	w := &qualityWatch{latest: map[string]livekit.ConnectionQuality{}}
	cb := lksdk.NewRoomCallback()
	cb.OnConnectionQualityChanged = func(u *livekit.ConnectionQualityInfo, p lksdk.Participant) {
		w.mu.Lock()
		w.latest[p.Identity()] = u.GetQuality()
		w.mu.Unlock()
	}
	return w, cb
}

// is says whether the latest quality told about identity is one of qs.
func (w *qualityWatch) is(identity string, qs ...livekit.ConnectionQuality) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	got, ok := w.latest[identity]
	if !ok {
		return false
	}
	for _, q := range qs {
		if got == q {
			return true
		}
	}
	return false
}

func (w *qualityWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := ""
	for id, q := range w.latest {
		out += id + "=" + q.String() + " "
	}
	return out
}

var fine = []livekit.ConnectionQuality{livekit.ConnectionQuality_EXCELLENT, livekit.ConnectionQuality_GOOD}

func TestConnectionQualityReachesEveryone(t *testing.T) {
	ts := startServer(t)
	metrics := httptest.NewServer(NewMetrics(ts.srv).Handler())
	t.Cleanup(metrics.Close)

	aliceSees, aliceCB := newQualityWatch()
	alice := ts.join(t, "r", "alice", aliceCB)
	publish(t, alice, true)
	bobSees, bobCB := newQualityWatch()
	bob := ts.join(t, "r", "bob", bobCB)
	publish(t, bob, true)

	// A watch-only viewer: rated, told its own quality, shown to nobody.
	viewerSees, viewerCB := newQualityWatch()
	viewer, err := lksdk.ConnectToRoomWithToken(ts.url, ts.token(t, "r", "viewer", auth.RoleViewer), viewerCB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(viewer.Disconnect)

	eventually(t, "alice and bob see each other's and their own connection as excellent or good", 30*time.Second, func() bool {
		return aliceSees.is("alice", fine...) && aliceSees.is("bob", fine...) && bobSees.is("bob", fine...) && bobSees.is("alice", fine...)
	})
	eventually(t, "the viewer is told its own quality", 30*time.Second, func() bool { return viewerSees.is("viewer", fine...) })

	room, _ := ts.srv.Room("r")
	room.mu.Lock()
	viewerSID := room.participants["viewer"].sid
	for _, id := range []string{"alice", "bob"} {
		if _, shown := room.participants[id].qualityTold[viewerSID]; shown {
			t.Errorf("%s was told the hidden viewer's quality", id)
		}
	}
	if told := room.participants["viewer"].qualityTold; len(told) != 1 {
		t.Errorf("the viewer was told %d qualities, want its own only", len(told))
	}
	room.mu.Unlock()
	if aliceSees.is("viewer", fine...) || bobSees.is("viewer", fine...) {
		t.Error("a member's client heard of the hidden viewer's quality")
	}

	s := scrapeMetrics(t, metrics.URL)
	rated := s.must(t, "hemicycle_participants_by_connection_quality", "quality=excellent") +
		s.must(t, "hemicycle_participants_by_connection_quality", "quality=good")
	if rated != 3 {
		t.Errorf("%v participants rated excellent or good in /metrics, want 3", rated)
	}
}

// Modes of a lossyLink.
const (
	linkClean int32 = iota
	linkLossy       // one outgoing RTP packet in four is dropped
	linkDead        // nothing goes out, RTP or RTCP (ICE and DTLS still do, below the interceptors)
)

// lossyLink is a client-side pion interceptor that spoils what the client sends, as a bad or
// broken network would. The same factory serves the client's two peer connections; only the
// publisher one sends RTP.
type lossyLink struct{ mode atomic.Int32 }

func (l *lossyLink) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &lossyInterceptor{link: l}, nil
}

type lossyInterceptor struct {
	interceptor.NoOp
	link *lossyLink
}

func (i *lossyInterceptor) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var n atomic.Uint64
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		switch i.link.mode.Load() {
		case linkLossy:
			if n.Add(1)%4 == 0 {
				return h.MarshalSize() + len(payload), nil
			}
		case linkDead:
			return h.MarshalSize() + len(payload), nil
		}
		return w.Write(h, payload, a)
	})
}

func (i *lossyInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		if i.link.mode.Load() == linkDead {
			return 0, nil
		}
		return w.Write(pkts, a)
	})
}

func TestConnectionQualityFollowsALossyThenDeadPublisher(t *testing.T) {
	ts := startServer(t)
	bobSees, bobCB := newQualityWatch()
	bob := ts.join(t, "r", "bob", bobCB)
	publish(t, bob, false)

	link := &lossyLink{}
	link.mode.Store(linkLossy)
	carolSees, carolCB := newQualityWatch()
	carol := ts.join(t, "r", "carol", carolCB,
		lksdk.WithInterceptors([]interceptor.Factory{link}), lksdk.WithIncludeDefaultInterceptors(true))
	publish(t, carol, true)

	// A quarter of carol's packets never arrive. Bob receives her stream with those holes, but
	// his own link is fine: he must not be blamed for them.
	eventually(t, "bob sees carol's lossy connection as poor, and his own as fine", 30*time.Second, func() bool {
		return bobSees.is("carol", livekit.ConnectionQuality_POOR) && bobSees.is("bob", fine...)
	})
	eventually(t, "carol is told her own connection is poor", 30*time.Second, func() bool {
		return carolSees.is("carol", livekit.ConnectionQuality_POOR)
	})

	// Carol's media path dies while her signalling socket stays up, her tracks unmuted.
	link.mode.Store(linkDead)
	eventually(t, "bob sees carol's connection lost", 30*time.Second, func() bool {
		return bobSees.is("carol", livekit.ConnectionQuality_LOST)
	})

	// It comes back, clean: carol recovers in bob's eyes.
	link.mode.Store(linkClean)
	eventually(t, "bob sees carol's connection recover", 30*time.Second, func() bool {
		return bobSees.is("carol", fine...)
	})
	t.Logf("bob sees %s; carol sees %s", bobSees, carolSees)
}
