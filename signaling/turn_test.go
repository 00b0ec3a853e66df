package signaling_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// withTURN gives the test server an embedded relay on loopback.
func withTURN(t *testing.T, relay **sfu.TURNServer) signalingtest.Option {
	return func(cfg *signaling.Config) {
		srv, err := sfu.NewTURNServer(sfu.TURNConfig{
			Secret: sfu.TURNSecret(signalingtest.TestKeys.Secret), Host: "127.0.0.1", UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0",
			RelayIP: net.IPv4(127, 0, 0, 1), RelayBind: "127.0.0.1", RelayPortMin: 41000, RelayPortMax: 41999,
			CredentialTTL: time.Hour, Logger: signalingtest.Logger(),
		}, cfg.Media)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		cfg.TURN, *relay = srv, srv
	}
}

// TestJoinAndResumeCarryTURN: each participant is told the relay's URLs with a credential of its
// own identity when it joins, and a fresh one when it resumes.
func TestJoinAndResumeCarryTURN(t *testing.T) {
	var relay *sfu.TURNServer
	ts := startServer(t, withTURN(t, &relay))
	tok := ts.Token(t, "council", "bob", auth.RoleMember, 0)
	first := signal(t, ts.WS+"/rtc?protocol=17&access_token="+tok)
	join := first.GetJoin()
	if join == nil {
		t.Fatalf("first frame is not a JoinResponse: %v", first.Message)
	}
	checkRelay := func(what string, servers []*livekit.ICEServer) {
		t.Helper()
		if len(servers) != 1 || !strings.HasSuffix(servers[0].Username, ":bob") || servers[0].Credential == "" {
			t.Fatalf("%s ice_servers %v: want one relay with bob's credential", what, servers)
		}
		if got, want := strings.Join(servers[0].Urls, " "), strings.Join(relay.URLs(), " "); got != want {
			t.Errorf("%s URLs %q, want the relay's %q", what, got, want)
		}
	}
	checkRelay("JoinResponse", join.GetIceServers())
	resumed := signal(t, ts.WS+"/rtc?protocol=17&reconnect=1&sid="+join.GetParticipant().GetSid()+"&access_token="+tok)
	if resumed.GetReconnect() == nil {
		t.Fatalf("first frame of the resumed session is not a ReconnectResponse: %v", resumed.Message)
	}
	checkRelay("ReconnectResponse", resumed.GetReconnect().GetIceServers())
}

// signal opens /rtc at url and returns its first frame; the socket is closed at once.
func signal(t *testing.T, url string) *livekit.SignalResponse {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	return readSignal(t, ws)
}

// TestMediaThroughTURN: two SDK clients that may use relayed candidates only (as behind a
// firewall that passes nothing else) publish and receive audio and video through the relay.
func TestMediaThroughTURN(t *testing.T) {
	var relay *sfu.TURNServer
	ts := startServer(t, withTURN(t, &relay))
	relayOnly := lksdk.WithICETransportPolicy(webrtc.ICETransportPolicyRelay)
	alice := join(t, ts, "council", "alice", nil, relayOnly)
	pub := publish(t, alice, true)
	bobRx, cb := signalingtest.NewReceiver()
	join(t, ts, "council", "bob", cb, relayOnly)
	signalingtest.Eventually(t, "bob receives alice's audio and video through the relay", 20*time.Second, func() bool {
		return bobRx.Audio() > 50 && bobRx.Video() > 50
	})
	if n := bobRx.Foreign(pub); n != 0 {
		t.Errorf("%d audio packets bob received were not alice's", n)
	}
	if n := relay.Allocations(); n < 4 {
		t.Errorf("%d TURN allocations, want one per peer connection of each client (4 or more)", n)
	}
}
