package signaling_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// The signalling tests run on the one harness, signalingtest; what is particular to them is
// here.

func TestMain(m *testing.M) { signalingtest.Main(m) }

// startServer starts a server whose participants may resume for 5 s, then opts.
func startServer(t *testing.T, opts ...signalingtest.Option) *signalingtest.Server {
	t.Helper()
	resume := func(c *signaling.Config) { c.ResumeWindow = 5 * time.Second }
	return signalingtest.Start(t, append([]signalingtest.Option{resume}, opts...)...)
}

// join connects identity as a member (no seat) with the real LiveKit Go SDK.
func join(t *testing.T, ts *signalingtest.Server, room, identity string, cb *lksdk.RoomCallback, opts ...lksdk.ConnectOption) *lksdk.Room {
	t.Helper()
	return ts.Join(t, room, identity, auth.RoleMember, 0, cb, opts...)
}

// publish loops the test tone as "mic" (and the test pattern as "camera").
func publish(t *testing.T, r *lksdk.Room, withVideo bool) *signalingtest.Publisher {
	t.Helper()
	return signalingtest.Publish(t, r, signalingtest.Clips{Video: withVideo})
}

// aliceHeardByBob joins alice to room "r", publishing the tone, then bob, and waits until bob
// receives her audio.
func aliceHeardByBob(t *testing.T, ts *signalingtest.Server) (alice *lksdk.Room, pub *signalingtest.Publisher, bobRx *signalingtest.Receiver) {
	t.Helper()
	alice = join(t, ts, "r", "alice", nil)
	pub = publish(t, alice, false)
	bobRx, cb := signalingtest.NewReceiver()
	join(t, ts, "r", "bob", cb)
	signalingtest.Eventually(t, "audio flows", 15*time.Second, func() bool { return bobRx.Audio() > 20 })
	return alice, pub, bobRx
}

// simulcastToBob has alice publish her camera in three layers with publish (PublishSimulcast
// or PublishDynacast) in room "r", and waits until bob receives the top one.
func simulcastToBob(t *testing.T, ts *signalingtest.Server, publish func(testing.TB, *lksdk.Room)) *signalingtest.Receiver {
	t.Helper()
	publish(t, join(t, ts, "r", "alice", nil))
	bobRx, cb := signalingtest.NewReceiver()
	join(t, ts, "r", "bob", cb)
	signalingtest.Eventually(t, "bob receives the top layer (640 wide)", 15*time.Second, func() bool { return bobRx.KeyframeWidth() == 640 })
	return bobRx
}

// audioAfterSettling lets the audio already on its way arrive (500 ms), then counts the audio
// packets rx receives in the next 500 ms.
func audioAfterSettling(rx *signalingtest.Receiver) int {
	time.Sleep(500 * time.Millisecond)
	before := rx.Audio()
	time.Sleep(500 * time.Millisecond)
	return rx.Audio() - before
}

// readSignal reads the next frame of a raw /rtc socket, a SignalResponse.
func readSignal(t *testing.T, ws *websocket.Conn) *livekit.SignalResponse {
	t.Helper()
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var resp livekit.SignalResponse
	if err := proto.Unmarshal(data, &resp); err != nil {
		t.Fatalf("a frame that is not a SignalResponse: %v", err)
	}
	return &resp
}

// call sends an API request and decodes the JSON answer.
func call(t *testing.T, ts *signalingtest.Server, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	status, raw := ts.Call(t, method, path, token, body)
	return status, signalingtest.Object(raw)
}

// must asserts a 200 answer.
func must(t *testing.T, ts *signalingtest.Server, method, path, token string, body any) map[string]any {
	t.Helper()
	status, out := call(t, ts, method, path, token, body)
	if status != 200 {
		t.Fatalf("%s %s: %d %v", method, path, status, out)
	}
	return out
}

// participant is identity's entry in room, nil when it is not there (neither connected nor
// waiting to resume).
func participant(r *signaling.Room, identity string) *livekit.ParticipantInfo {
	for _, p := range r.Participants() {
		if p.Identity == identity {
			return p
		}
	}
	return nil
}
