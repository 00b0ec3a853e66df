package signaling_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// TestLoopbackCandidatesOnlyToClientsOnThisMachine: a server whose media listens on every
// address, loopback included (as --dev does), trickles its loopback candidates to a client
// whose WebSocket comes from a loopback address, and not to one that comes from another: that
// one would check them against its own machine, in vain, and after an ICE restart the path that
// works would wait behind those checks.
func TestLoopbackCandidatesOnlyToClientsOnThisMachine(t *testing.T) {
	ip := nonLoopbackIPv4(t)
	for _, c := range []struct {
		listen       string
		wantLoopback bool
	}{
		{"127.0.0.1", true},
		{ip, false},
	} {
		t.Run("client from "+c.listen, func(t *testing.T) {
			engine, err := sfu.NewEngine(sfu.Config{UDPAddr: "0.0.0.0:0", Loopback: true, Logger: signalingtest.Logger()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = engine.Close() })
			ts := signalingtest.StartOn(t, c.listen, func(cfg *signaling.Config) { cfg.Media = engine })
			hosts := serverCandidates(t, ts)
			var loopback, other int
			for _, h := range hosts {
				if net.ParseIP(h).IsLoopback() {
					loopback++
				} else {
					other++
				}
			}
			if other == 0 {
				t.Fatalf("no candidate but loopback ones: %v", hosts)
			}
			if (loopback > 0) != c.wantLoopback {
				t.Errorf("client from %s was sent the candidates %v; loopback ones wanted: %v", c.listen, hosts, c.wantLoopback)
			}
		})
	}
}

// serverCandidates joins over a plain WebSocket, offers a publisher connection (a data channel)
// and returns the addresses of the candidates the server trickles for it within 2 s.
func serverCandidates(t *testing.T, ts *signalingtest.Server) []string {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(ts.WS+"/rtc?protocol=17&access_token="+ts.Token(t, "salle", "anne", auth.RoleMember, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if _, err := pc.CreateDataChannel("_reliable", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	req, _ := proto.Marshal(&livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{Type: "offer", Sdp: offer.SDP}}})
	if err := ws.WriteMessage(websocket.BinaryMessage, req); err != nil {
		t.Fatal(err)
	}
	var hosts []string
	answered := false
	_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			break // the deadline
		}
		var resp livekit.SignalResponse
		if err := proto.Unmarshal(data, &resp); err != nil {
			t.Fatal(err)
		}
		answered = answered || resp.GetAnswer() != nil
		tr := resp.GetTrickle()
		if tr == nil || tr.GetTarget() != livekit.SignalTarget_PUBLISHER {
			continue
		}
		var c webrtc.ICECandidateInit
		if err := json.Unmarshal([]byte(tr.GetCandidateInit()), &c); err != nil {
			t.Fatal(err)
		}
		if f := strings.Fields(c.Candidate); len(f) > 4 {
			hosts = append(hosts, f[4])
		}
	}
	if !answered {
		t.Fatal("the server did not answer the offer")
	}
	return hosts
}

// nonLoopbackIPv4 is an address of this machine's that is not loopback.
func nonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no address but loopback")
	return ""
}
