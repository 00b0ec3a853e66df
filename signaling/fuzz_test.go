package signaling_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// FuzzSignalFrame sends one binary frame of any contents to a real server over a joined /rtc
// WebSocket, then a ping. The server either goes on (it answers the ping) or closes that session
// with a close frame saying why; it never hangs or drops the socket without a word, and the next
// join, by the next input, is admitted. Seeds are real SignalRequests.
func FuzzSignalFrame(f *testing.F) {
	seed := func(req *livekit.SignalRequest) {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(&livekit.SignalRequest{Message: &livekit.SignalRequest_Ping{Ping: 7}})
	seed(&livekit.SignalRequest{Message: &livekit.SignalRequest_PingReq{PingReq: &livekit.Ping{Timestamp: 1, Rtt: 20}}})
	seed(&livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: &livekit.AddTrackRequest{Cid: "mic", Name: "mic", Type: livekit.TrackType_AUDIO, Source: livekit.TrackSource_MICROPHONE}}})
	seed(&livekit.SignalRequest{Message: &livekit.SignalRequest_Mute{Mute: &livekit.MuteTrackRequest{Sid: "TR_nothing", Muted: true}}})
	seed(&livekit.SignalRequest{Message: &livekit.SignalRequest_Subscription{Subscription: &livekit.UpdateSubscription{TrackSids: []string{"TR_x"}, Subscribe: true}}})
	seed(&livekit.SignalRequest{Message: &livekit.SignalRequest_TrackSetting{TrackSetting: &livekit.UpdateTrackSettings{TrackSids: []string{"TR_x"}, Quality: livekit.VideoQuality_LOW, Width: 1 << 30}}})
	seed(&livekit.SignalRequest{Message: &livekit.SignalRequest_UpdateMetadata{UpdateMetadata: &livekit.UpdateParticipantMetadata{Name: "Anne", Attributes: map[string]string{"seat": "7"}}}})
	seed(&livekit.SignalRequest{Message: &livekit.SignalRequest_Trickle{Trickle: &livekit.TrickleRequest{CandidateInit: `{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}`, Target: livekit.SignalTarget_PUBLISHER}}})
	seed(&livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{Type: "offer", Sdp: "v=0\r\n"}}})
	seed(&livekit.SignalRequest{Message: &livekit.SignalRequest_SyncState{SyncState: &livekit.SyncState{}}})
	seed(&livekit.SignalRequest{Message: &livekit.SignalRequest_Simulate{Simulate: &livekit.SimulateScenario{}}})
	f.Add([]byte{0xff, 0xff, 0xff})

	ts := signalingtest.Start(f, func(c *signaling.Config) { c.ResumeWindow = time.Second })
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, frame []byte) {
		identity := fmt.Sprintf("fuzz-%d", n.Add(1))
		ws, _, err := websocket.DefaultDialer.Dial(ts.WS+"/rtc?protocol=17&access_token="+ts.Token(t, "salle", identity, auth.RoleMember, 0), nil)
		if err != nil {
			t.Fatalf("join refused after the previous input: %v", err)
		}
		defer ws.Close()
		if resp := readSignal(t, ws); resp.GetJoin() == nil {
			t.Fatalf("first frame is not a JoinResponse: %v", resp.Message)
		}
		if err := ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
			t.Fatal(err)
		}
		pongOrClose(t, ws)
	})
}

// pongOrClose pings over a joined session, after the input sent, and reads until the pong,
// returning nil, or until the server closes the session, returning its close frame, which
// gives a reason unless the close is normal. A session that ends without a close frame, a
// frame that is not a SignalResponse, and ten seconds without either fail the test.
func pongOrClose(t *testing.T, ws *websocket.Conn) *websocket.CloseError {
	t.Helper()
	ping, err := proto.Marshal(&livekit.SignalRequest{Message: &livekit.SignalRequest_Ping{Ping: 424242}})
	if err != nil {
		t.Fatal(err)
	}
	_ = ws.WriteMessage(websocket.BinaryMessage, ping) // the server may have closed already
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("the session ended without a close frame: %v", err)
			}
			if ce.Code != websocket.CloseNormalClosure && ce.Text == "" {
				t.Fatalf("the session was closed (%d) without a reason", ce.Code)
			}
			return ce
		}
		var resp livekit.SignalResponse
		if err := proto.Unmarshal(data, &resp); err != nil {
			t.Fatalf("the server sent a frame that is not a SignalResponse: %v", err)
		}
		if resp.GetPong() == 424242 {
			return nil
		}
	}
}
