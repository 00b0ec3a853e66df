package signaling_test

import (
	"net/http/httptest"
	"slices"
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
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

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
	metrics := httptest.NewServer(signaling.NewMetrics(ts.Signaling).Handler())
	t.Cleanup(metrics.Close)

	aliceSees, aliceCB := newQualityWatch()
	alice := join(t, ts, "r", "alice", aliceCB)
	publish(t, alice, true)
	bobSees, bobCB := newQualityWatch()
	bob := join(t, ts, "r", "bob", bobCB)
	publish(t, bob, true)

	// A watch-only viewer: rated, told its own quality, shown to nobody.
	viewerSees, viewerCB := newQualityWatch()
	ts.Join(t, "r", "viewer", auth.RoleViewer, 0, viewerCB)

	signalingtest.Eventually(t, "alice and bob see each other's and their own connection as excellent or good", 30*time.Second, func() bool {
		return aliceSees.is("alice", fine...) && aliceSees.is("bob", fine...) && bobSees.is("bob", fine...) && bobSees.is("alice", fine...)
	})
	signalingtest.Eventually(t, "the viewer is told its own quality", 30*time.Second, func() bool { return viewerSees.is("viewer", fine...) })

	room, _ := ts.Signaling.Room("r")
	viewerSID := participant(room, "viewer").Sid
	for _, id := range []string{"alice", "bob"} {
		if slices.Contains(room.QualityTold(id), viewerSID) {
			t.Errorf("%s was told the hidden viewer's quality", id)
		}
	}
	if told := room.QualityTold("viewer"); len(told) != 1 {
		t.Errorf("the viewer was told %d qualities, want its own only", len(told))
	}
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
	bob := join(t, ts, "r", "bob", bobCB)
	publish(t, bob, false)

	link := &lossyLink{}
	link.mode.Store(linkLossy)
	carolSees, carolCB := newQualityWatch()
	carol := join(t, ts, "r", "carol", carolCB,
		lksdk.WithInterceptors([]interceptor.Factory{link}), lksdk.WithIncludeDefaultInterceptors(true))
	publish(t, carol, true)

	// A quarter of carol's packets never arrive. Bob receives her stream with those holes, but
	// his own link is fine: he must not be blamed for them.
	signalingtest.Eventually(t, "bob sees carol's lossy connection as poor, and his own as fine", 30*time.Second, func() bool {
		return bobSees.is("carol", livekit.ConnectionQuality_POOR) && bobSees.is("bob", fine...)
	})
	signalingtest.Eventually(t, "carol is told her own connection is poor", 30*time.Second, func() bool {
		return carolSees.is("carol", livekit.ConnectionQuality_POOR)
	})

	// Carol's media path dies while her signalling socket stays up, her tracks unmuted.
	link.mode.Store(linkDead)
	signalingtest.Eventually(t, "bob sees carol's connection lost", 30*time.Second, func() bool {
		return bobSees.is("carol", livekit.ConnectionQuality_LOST)
	})

	// It comes back, clean: carol recovers in bob's eyes.
	link.mode.Store(linkClean)
	signalingtest.Eventually(t, "bob sees carol's connection recover", 30*time.Second, func() bool {
		return bobSees.is("carol", fine...)
	})
	t.Logf("bob sees %s; carol sees %s", bobSees, carolSees)
}
