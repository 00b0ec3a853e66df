package signaling_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// TestDynacastStopsTheLayersNobodyReceives: when the only subscriber of a simulcast camera
// wants its lowest layer, the publisher (the LiveKit Go SDK) is told with a
// SubscribedQualityUpdate and stops sending the two others; they come back when it wants them.
func TestDynacastStopsTheLayersNobodyReceives(t *testing.T) {
	ts := startServer(t)
	bobRx := simulcastToBob(t, ts, signalingtest.PublishDynacast)
	live := func() []string {
		r, ok := ts.Signaling.Room("r")
		if !ok {
			return nil
		}
		return r.LiveVideoLayers()
	}
	if got := live(); len(got) != 3 {
		t.Fatalf("live layers %v, want all three while bob takes the top one", got)
	}
	if err := bobRx.Publication("camera").SetVideoQuality(livekit.VideoQuality_LOW); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "alice stops the layers nobody receives", 10*time.Second, func() bool { return slices.Equal(live(), []string{"q"}) })
	if err := bobRx.Publication("camera").SetVideoQuality(livekit.VideoQuality_HIGH); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "alice sends every layer again, and bob gets the top one", 10*time.Second, func() bool {
		return len(live()) == 3 && bobRx.KeyframeWidth() == 640
	})
	t.Log(fmt.Sprint("live layers at the end: ", live()))
}
