package signaling_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"github.com/twitchtv/twirp"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

func TestMuteAndUnmuteReachSubscribers(t *testing.T) {
	ts := startServer(t)
	_, pub, bobRx := aliceHeardByBob(t, ts)

	pub.AudioPub.SetMuted(true)
	signalingtest.Eventually(t, "bob sees alice's microphone muted", 5*time.Second, func() bool { return bobRx.Muted("mic") })
	// While muted, the server forwards nothing of the track: once what was already on its way
	// has arrived (on a loaded machine that can take a while), nothing more comes.
	last, lastChange := -1, time.Now()
	signalingtest.Eventually(t, "audio stops arriving while muted", 5*time.Second, func() bool {
		if n := bobRx.Audio(); n != last {
			last, lastChange = n, time.Now()
			return false
		}
		return time.Since(lastChange) >= 300*time.Millisecond
	})
	before := bobRx.Audio()
	time.Sleep(time.Second)
	if got := bobRx.Audio() - before; got > 0 {
		t.Errorf("%d audio packets forwarded while the track was muted", got)
	}

	pub.AudioPub.SetMuted(false)
	signalingtest.Eventually(t, "bob sees alice's microphone unmuted", 5*time.Second, func() bool { return !bobRx.Muted("mic") })
	after := bobRx.Audio()
	signalingtest.Eventually(t, "audio flows again after unmute", 5*time.Second, func() bool { return bobRx.Audio() > after+10 })
}

type dataLog struct {
	mu   sync.Mutex
	msgs []string // "from:payload"
}

func (d *dataLog) add(from, payload string) {
	d.mu.Lock()
	d.msgs = append(d.msgs, from+":"+payload)
	d.mu.Unlock()
}

func (d *dataLog) count(entry string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, m := range d.msgs {
		if m == entry {
			n++
		}
	}
	return n
}

func dataCallback(log *dataLog) *lksdk.RoomCallback {
	cb := lksdk.NewRoomCallback()
	cb.OnDataPacket = func(data lksdk.DataPacket, params lksdk.DataReceiveParams) {
		if u, ok := data.(*lksdk.UserDataPacket); ok {
			log.add(params.SenderIdentity, string(u.Payload))
		}
	}
	return cb
}

func TestDataPacketsRelayedOnceWithServerStampedSender(t *testing.T) {
	ts := startServer(t)
	var bobLog, carolLog dataLog
	alice := join(t, ts, "r", "alice", nil)
	join(t, ts, "r", "bob", dataCallback(&bobLog))
	join(t, ts, "r", "carol", dataCallback(&carolLog))

	signalingtest.Eventually(t, "alice sees both others", 5*time.Second, func() bool { return len(alice.GetRemoteParticipants()) == 2 })
	// Reliable to everyone.
	if err := alice.LocalParticipant.PublishDataPacket(lksdk.UserData([]byte("hello all")), lksdk.WithDataPublishReliable(true)); err != nil {
		t.Fatal(err)
	}
	// Reliable to carol only.
	if err := alice.LocalParticipant.PublishDataPacket(lksdk.UserData([]byte("for carol")),
		lksdk.WithDataPublishReliable(true), lksdk.WithDataPublishDestination([]string{"carol"})); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "bob and carol receive the broadcast, carol the private one", 5*time.Second, func() bool {
		return bobLog.count("alice:hello all") == 1 && carolLog.count("alice:hello all") == 1 && carolLog.count("alice:for carol") == 1
	})
	// Lossy on loopback arrives too.
	if err := alice.LocalParticipant.PublishDataPacket(lksdk.UserData([]byte("lossy")), lksdk.WithDataPublishReliable(false)); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "lossy packet delivered", 5*time.Second, func() bool { return bobLog.count("alice:lossy") == 1 })

	// A packet claiming another sender is restamped with the real one.
	room, _ := ts.Signaling.Room("r")
	forged, _ := proto.Marshal(&livekit.DataPacket{
		ParticipantIdentity: "carol",
		Value: &livekit.DataPacket_User{User: &livekit.UserPacket{
			ParticipantIdentity: "carol", Payload: []byte("forged"),
		}},
	})
	room.ReceiveData("alice", true, forged)
	signalingtest.Eventually(t, "forged packet arrives as alice's", 5*time.Second, func() bool { return bobLog.count("alice:forged") == 1 })
	if n := bobLog.count("carol:forged"); n != 0 {
		t.Errorf("a packet was delivered under a sender identity the client chose")
	}
	time.Sleep(300 * time.Millisecond)
	if n := bobLog.count("alice:hello all"); n != 1 {
		t.Errorf("broadcast delivered %d times to bob, want exactly once", n)
	}
	if n := bobLog.count("alice:for carol"); n != 0 {
		t.Errorf("a packet addressed to carol reached bob")
	}
}

func TestLeaveIsSeenAndSameIdentityRejoins(t *testing.T) {
	ts := startServer(t)
	var left atomic.Int32
	bobRx, cb := signalingtest.NewReceiver()
	cb.OnParticipantDisconnected = func(p *lksdk.RemoteParticipant) {
		if p.Identity() == "alice" {
			left.Add(1)
		}
	}
	bob := join(t, ts, "r", "bob", cb)

	alice1 := join(t, ts, "r", "alice", nil)
	signalingtest.Eventually(t, "bob sees alice", 5*time.Second, func() bool { return bob.GetParticipantByIdentity("alice") != nil })
	alice1.Disconnect()
	signalingtest.Eventually(t, "bob sees alice leave", 5*time.Second, func() bool { return left.Load() == 1 })

	// The same identity joins again and publishes: media flows to bob.
	alice2 := join(t, ts, "r", "alice", nil)
	pub := publish(t, alice2, false)
	signalingtest.Eventually(t, "bob receives the rejoined alice's audio", 15*time.Second, func() bool { return bobRx.Matched(pub) > 20 })

	// A second session under the same identity replaces the first, never doubles it.
	var replaced atomic.Bool
	cb3 := lksdk.NewRoomCallback()
	alice3 := join(t, ts, "r", "alice", cb3)
	_ = alice3
	signalingtest.Eventually(t, "the earlier alice session is disconnected", 5*time.Second, func() bool {
		replaced.Store(alice2.ConnectionState() == lksdk.ConnectionStateDisconnected)
		return replaced.Load()
	})
	room, _ := ts.Signaling.Room("r")
	n := 0
	for _, p := range room.Participants() {
		if p.Identity == "alice" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("room lists alice %d times, want once", n)
	}
}

func TestResumeAfterSignalDropKeepsSubscriptions(t *testing.T) {
	ts := startServer(t)
	alice := join(t, ts, "r", "alice", nil)
	publish(t, alice, false)
	bobRx, cb := signalingtest.NewReceiver()
	var reconnected atomic.Bool
	cb.OnReconnected = func() { reconnected.Store(true) }
	bob := join(t, ts, "r", "bob", cb)
	signalingtest.Eventually(t, "audio flows", 15*time.Second, func() bool { return bobRx.Audio() > 20 })
	room, _ := ts.Signaling.Room("r")
	sidBefore := participant(room, "bob").Sid

	bob.Simulate(lksdk.SimulateSignalReconnect)
	signalingtest.Eventually(t, "bob's client reports it reconnected", 15*time.Second, reconnected.Load)
	if p := participant(room, "bob"); p == nil || p.Sid != sidBefore {
		t.Fatalf("bob's session was not resumed (participant %v)", p)
	}
	after := bobRx.Audio()
	signalingtest.Eventually(t, "audio still flows after the resume", 10*time.Second, func() bool { return bobRx.Audio() > after+25 })
}

func TestRoomServiceMuteAndRemove(t *testing.T) {
	ts := startServer(t)
	alice, pub, bobRx := aliceHeardByBob(t, ts)

	admin := lksdk.NewRoomServiceClient(ts.HTTP.URL, signalingtest.TestKeys.Key, signalingtest.TestKeys.Secret)
	ctx := context.Background()
	parts, err := admin.ListParticipants(ctx, &livekit.ListParticipantsRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if len(parts.Participants) != 2 {
		t.Fatalf("ListParticipants: %d participants, want 2", len(parts.Participants))
	}
	if _, err := admin.MutePublishedTrack(ctx, &livekit.MuteRoomTrackRequest{Room: "r", Identity: "alice", TrackSid: pub.AudioPub.SID(), Muted: true}); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "bob sees alice muted by the server", 5*time.Second, func() bool { return bobRx.Muted("mic") })
	signalingtest.Eventually(t, "alice's client follows the server mute", 5*time.Second, pub.AudioPub.IsMuted)

	if _, err := admin.RemoveParticipant(ctx, &livekit.RoomParticipantIdentity{Room: "r", Identity: "alice"}); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "alice is disconnected", 5*time.Second, func() bool {
		return alice.ConnectionState() == lksdk.ConnectionStateDisconnected
	})
	room, _ := ts.Signaling.Room("r")
	if participant(room, "alice") != nil {
		t.Error("alice is still in the room after RemoveParticipant")
	}

	// Grants are checked: a member's token cannot administer.
	tok := ts.Token(t, "r", "mallory", auth.RoleMember, 0)
	_, err = adminWithToken(ts, tok).RemoveParticipant(ctx, &livekit.RoomParticipantIdentity{Room: "r", Identity: "bob"})
	var te twirp.Error
	if !errors.As(err, &te) || te.Code() != twirp.PermissionDenied || !strings.Contains(te.Msg(), "roomAdmin") {
		t.Fatalf("RemoveParticipant with a member token: got %v, want permission denied naming roomAdmin", err)
	}
	// A chair of another room is refused for this one.
	tok = ts.Token(t, "elsewhere", "chair2", auth.RoleChair, 0)
	_, err = adminWithToken(ts, tok).MutePublishedTrack(ctx, &livekit.MuteRoomTrackRequest{Room: "r", Identity: "bob", TrackSid: "TR_x", Muted: true})
	if !errors.As(err, &te) || te.Code() != twirp.PermissionDenied || !strings.Contains(te.Msg(), "wrong room") {
		t.Fatalf("mute with another room's chair token: got %v, want permission denied for the wrong room", err)
	}
}

// adminWithToken calls RoomService with a given token instead of one minted from the key pair.
func adminWithToken(ts *signalingtest.Server, tok string) livekit.RoomService {
	return livekit.NewRoomServiceProtobufClient(ts.HTTP.URL, &http.Client{Transport: bearerTransport(tok)})
}

type bearerTransport string

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}

func TestTokensRefusedWithTheirReason(t *testing.T) {
	ts := startServer(t)
	valid := ts.Token(t, "r", "alice", auth.RoleMember, 0)
	forged := valid[:strings.LastIndex(valid, ".")+1] + "AAAA" + valid[strings.LastIndex(valid, ".")+5:]
	expired := ts.Mint(t, auth.TokenOptions{Identity: "alice", Room: "r",
		TTL: time.Minute, Now: time.Now().Add(-time.Hour), Video: auth.GrantsForRole(auth.RoleMember, "r")})
	otherKey := ts.Mint(t, auth.TokenOptions{Key: "stranger", Identity: "alice", Room: "r",
		Video: auth.GrantsForRole(auth.RoleMember, "r")})
	noJoin := ts.Mint(t, auth.TokenOptions{Identity: "alice", Video: auth.VideoGrant{RoomList: true}})
	for _, tc := range []struct {
		name, token string
		status      int
		reason      string
	}{
		{"forged signature", forged, 401, "bad signature"},
		{"expired", expired, 401, "token expired"},
		{"unknown key", otherKey, 401, "unknown API key"},
		{"no roomJoin grant", noJoin, 403, "roomJoin"},
		{"no token", "", 401, "no access token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/rtc/validate", "/rtc"} {
				resp, err := http.Get(ts.HTTP.URL + path + "?access_token=" + tc.token)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.reason) {
					t.Errorf("%s: got %d %q, want %d with %q", path, resp.StatusCode, body, tc.status, tc.reason)
				}
			}
			// The real SDK is refused too and reports the reason.
			_, err := lksdk.ConnectToRoomWithToken(ts.WS, tc.token, lksdk.NewRoomCallback())
			if err == nil {
				t.Fatal("the SDK connected with a bad token")
			}
		})
	}
	// The v1 path answers 404 with CORS headers so that the browser SDK falls back to /rtc.
	resp, err := http.Get(ts.HTTP.URL + "/rtc/v1/validate?access_token=" + valid)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || strings.Contains(string(body), "requested room does not exist") {
		t.Errorf("/rtc/v1/validate: %d %q cors=%q", resp.StatusCode, body, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

// rawJoin opens /rtc with a plain WebSocket and returns it after the JoinResponse.
func rawJoin(t *testing.T, ts *signalingtest.Server, room, identity string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(ts.WS+"/rtc?protocol=17&access_token="+ts.Token(t, room, identity, auth.RoleMember, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	resp := readSignal(t, ws)
	if resp.GetJoin() == nil {
		t.Fatalf("first frame is not a JoinResponse: %v", resp.Message)
	}
	if resp.GetJoin().GetServerInfo().GetVersion() == "" || resp.GetJoin().GetParticipant().GetPermission() == nil {
		t.Fatalf("JoinResponse lacks server version or permission: %v", resp.GetJoin())
	}
	return ws
}

// readUntilClose returns the close error of the socket.
func readUntilClose(ws *websocket.Conn) error {
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return err
		}
	}
}

func TestMalformedAndOversizedFramesCloseOnlyThatSession(t *testing.T) {
	// A resume window far longer than the wait below: an offender that is merely dropped
	// (left to resume) instead of removed makes the test fail.
	ts := startServer(t, func(c *signaling.Config) { c.ResumeWindow = time.Minute })
	alice, _, bobRx := aliceHeardByBob(t, ts)

	for i, tc := range []struct {
		name string
		kind int
		data []byte
		want string
	}{
		{"garbage protobuf", websocket.BinaryMessage, []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}, "malformed signal frame"},
		{"text frame", websocket.TextMessage, []byte(`{"offer":{}}`), "expected a binary protobuf frame"},
		{"oversized frame", websocket.BinaryMessage, make([]byte, signaling.MaxFrameBytes+1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := rawJoin(t, ts, "r", fmt.Sprintf("mallory%d", i))
			if err := ws.WriteMessage(tc.kind, tc.data); err != nil {
				t.Fatal(err)
			}
			err := readUntilClose(ws)
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("socket ended with %v, want a close frame", err)
			}
			if tc.want != "" && !strings.Contains(ce.Text, tc.want) {
				t.Errorf("close reason %q, want it to say %q", ce.Text, tc.want)
			}
			room, _ := ts.Signaling.Room("r")
			signalingtest.Eventually(t, "the offender is removed", 5*time.Second, func() bool { return participant(room, fmt.Sprintf("mallory%d", i)) == nil })
		})
	}
	// The race once seen under load, made certain: gorilla answers an oversized frame with its
	// own close frame, so a write of ours can fail (ErrCloseSent) and close the connection
	// before the read returns ErrReadLimit. The offender must still be removed at once.
	t.Run("oversized frame after the write side failed", func(t *testing.T) {
		tok := ts.Token(t, "r", "mallory9", auth.RoleMember, 0)
		if err := ts.Signaling.EndAfterWriteFailed(serverSideSocket(t), "r", tok); err != nil {
			t.Fatal(err)
		}
		room, _ := ts.Signaling.Room("r")
		if participant(room, "mallory9") != nil {
			t.Fatal("the offender is still in the room after its oversized frame")
		}
	})
	// The others go on.
	before := bobRx.Audio()
	signalingtest.Eventually(t, "media still flows to bob", 5*time.Second, func() bool { return bobRx.Audio() > before+20 })
	if alice.ConnectionState() != lksdk.ConnectionStateConnected {
		t.Errorf("alice's state is %s after another session misbehaved", alice.ConnectionState())
	}
}

// serverSideSocket returns the server end of a WebSocket opened on loopback, with nobody
// reading it: the test drives the session by hand.
func serverSideSocket(t *testing.T) *websocket.Conn {
	t.Helper()
	got := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			close(got)
			return
		}
		got <- ws
	}))
	t.Cleanup(srv.Close)
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	ws, ok := <-got
	if !ok {
		t.FailNow()
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func TestPingIsAnswered(t *testing.T) {
	ts := startServer(t)
	ws := rawJoin(t, ts, "r", "pinger")
	req, _ := proto.Marshal(&livekit.SignalRequest{Message: &livekit.SignalRequest_PingReq{PingReq: &livekit.Ping{Timestamp: 12345}}})
	if err := ws.WriteMessage(websocket.BinaryMessage, req); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if pong := readSignal(t, ws).GetPongResp(); pong != nil {
			if pong.LastPingTimestamp != 12345 {
				t.Fatalf("pong echoes %d, want 12345", pong.LastPingTimestamp)
			}
			return
		}
	}
}

func TestRoomServiceAdministration(t *testing.T) {
	ts := startServer(t)
	admin := lksdk.NewRoomServiceClient(ts.HTTP.URL, signalingtest.TestKeys.Key, signalingtest.TestKeys.Secret)
	ctx := context.Background()

	if _, err := admin.CreateRoom(ctx, &livekit.CreateRoomRequest{Name: "conseil", Metadata: "séance"}); err != nil {
		t.Fatal(err)
	}
	rooms, err := admin.ListRooms(ctx, &livekit.ListRoomsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].Name != "conseil" || rooms.Rooms[0].Metadata != "séance" {
		t.Fatalf("ListRooms: %v", rooms.Rooms)
	}

	alice := join(t, ts, "conseil", "alice", nil)
	pub := publish(t, alice, false)
	var bobLog dataLog
	bobRx, cb := signalingtest.NewReceiver()
	cb.OnDataPacket = dataCallback(&bobLog).OnDataPacket
	var metadataSeen atomic.Value
	cb.OnMetadataChanged = func(_ string, p lksdk.Participant) {
		if p.Identity() == "alice" {
			metadataSeen.Store(p.Metadata())
		}
	}
	bob := join(t, ts, "conseil", "bob", cb)
	signalingtest.Eventually(t, "audio flows", 15*time.Second, func() bool { return bobRx.Audio() > 20 })

	// Metadata reaches the others.
	if _, err := admin.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: "conseil", Identity: "alice", Metadata: "rapporteure"}); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "bob sees alice's new metadata", 5*time.Second, func() bool { return metadataSeen.Load() == "rapporteure" })

	// Server data reaches the named participant, on its topic.
	if _, err := admin.SendData(ctx, &livekit.SendDataRequest{Room: "conseil", Data: []byte("ordre du jour"), Kind: livekit.DataPacket_RELIABLE,
		DestinationIdentities: []string{"bob"}, Topic: proto.String("agenda")}); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "bob receives the server's data", 5*time.Second, func() bool { return bobLog.count(":ordre du jour") == 1 })

	// Unsubscribing bob from alice's track stops the media.
	if _, err := admin.UpdateSubscriptions(ctx, &livekit.UpdateSubscriptionsRequest{Room: "conseil", Identity: "bob",
		TrackSids: []string{pub.AudioPub.SID()}, Subscribe: false}); err != nil {
		t.Fatal(err)
	}
	if got := audioAfterSettling(bobRx); got > 0 {
		t.Errorf("%d packets after UpdateSubscriptions unsubscribed bob", got)
	}

	// Withdrawing the right to publish unpublishes what alice publishes, as bob's SDK sees it.
	if _, err := admin.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: "conseil", Identity: "alice",
		Permission: &livekit.ParticipantPermission{CanSubscribe: true, CanPublish: false, CanPublishData: true}}); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "alice's microphone unpublished for bob when publishing is withdrawn", 5*time.Second, func() bool {
		rp := bob.GetParticipantByIdentity("alice")
		return rp != nil && rp.GetTrackPublication(livekit.TrackSource_MICROPHONE) == nil
	})

	// Deleting the room disconnects everyone.
	if _, err := admin.DeleteRoom(ctx, &livekit.DeleteRoomRequest{Room: "conseil"}); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "everyone is disconnected", 5*time.Second, func() bool {
		return alice.ConnectionState() == lksdk.ConnectionStateDisconnected && bob.ConnectionState() == lksdk.ConnectionStateDisconnected
	})
	if _, ok := ts.Signaling.Room("conseil"); ok {
		t.Error("the room still exists after DeleteRoom")
	}
	// Listing needs roomList; a member's token has none.
	_, err = adminWithToken(ts, ts.Token(t, "conseil", "mallory", auth.RoleMember, 0)).ListRooms(ctx, &livekit.ListRoomsRequest{})
	var te twirp.Error
	if !errors.As(err, &te) || te.Code() != twirp.PermissionDenied || !strings.Contains(te.Msg(), "roomList") {
		t.Fatalf("ListRooms with a member token: %v", err)
	}
}

// A client whose network vanishes leaves its socket open: the server must not wait for TCP to
// give up (minutes) before it counts the client as gone. Clients that ping as told stay.
func TestSilentClientIsDroppedAfterThePingTimeout(t *testing.T) {
	const pingTimeout = 2 * time.Second
	ts := startServer(t, func(c *signaling.Config) {
		c.PingTimeout = pingTimeout
		c.ResumeWindow = 200 * time.Millisecond
	})
	// The Go SDK sends no protocol pings; its WebSocket answers the server's ping frames.
	alice := join(t, ts, "r", "alice", nil)
	rawJoin(t, ts, "r", "ghost") // joined, then never reads nor writes again
	room, _ := ts.Signaling.Room("r")
	if participant(room, "ghost") == nil {
		t.Fatal("the silent client never joined")
	}
	first := room.Socket("alice")
	signalingtest.Eventually(t, "the silent client is removed", 10*time.Second, func() bool { return participant(room, "ghost") == nil })
	// Alice is still there after several timeouts, on her first socket (not dropped and resumed).
	time.Sleep(3 * pingTimeout)
	if now := room.Socket("alice"); now == nil || now != first || alice.ConnectionState() != lksdk.ConnectionStateConnected {
		t.Fatalf("a client that answers pings lost its socket (state %s)", alice.ConnectionState())
	}
}

// TestWithdrawnSourceIsUnpublished: a permission that leaves the camera out of
// can_publish_sources unpublishes alice's camera (bob's SDK loses it and its media stops, alice's
// SDK is told), keeps her microphone flowing, and a new camera of hers is refused.
func TestWithdrawnSourceIsUnpublished(t *testing.T) {
	ts := startServer(t)
	admin := lksdk.NewRoomServiceClient(ts.HTTP.URL, signalingtest.TestKeys.Key, signalingtest.TestKeys.Secret)
	ctx := t.Context()
	alice := join(t, ts, "r", "alice", nil)
	publish(t, alice, true)
	bobRx, cb := signalingtest.NewReceiver()
	bob := join(t, ts, "r", "bob", cb)
	signalingtest.Eventually(t, "audio and video flow", 15*time.Second, func() bool { return bobRx.Audio() > 20 && bobRx.Video() > 20 })

	if _, err := admin.UpdateParticipant(ctx, &livekit.UpdateParticipantRequest{Room: "r", Identity: "alice",
		Permission: &livekit.ParticipantPermission{CanSubscribe: true, CanPublish: true, CanPublishData: true,
			CanPublishSources: []livekit.TrackSource{livekit.TrackSource_MICROPHONE}}}); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "alice's camera unpublished for bob", 5*time.Second, func() bool {
		rp := bob.GetParticipantByIdentity("alice")
		return rp != nil && rp.GetTrackPublication(livekit.TrackSource_CAMERA) == nil && rp.GetTrackPublication(livekit.TrackSource_MICROPHONE) != nil
	})
	signalingtest.Eventually(t, "alice's SDK told its camera is unpublished", 5*time.Second, func() bool {
		return alice.LocalParticipant.GetTrackPublication(livekit.TrackSource_CAMERA) == nil
	})
	// The camera's media stops reaching bob; the microphone's goes on.
	time.Sleep(time.Second)
	video, audio := bobRx.Video(), bobRx.Audio()
	time.Sleep(2 * time.Second)
	if got := bobRx.Video() - video; got > 0 {
		t.Errorf("%d video packets reached bob after the camera was withdrawn", got)
	}
	if got := bobRx.Audio() - audio; got < 20 {
		t.Errorf("only %d audio packets reached bob in 2 s: the microphone is still allowed", got)
	}
	// A new camera is refused.
	track, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{Name: "camera", Source: livekit.TrackSource_CAMERA}); err == nil {
		t.Error("a camera published again after the camera was withdrawn")
	}
}

// RoomService.UpdateParticipant withdrawing canSubscribe stops everything the participant
// receives, as LiveKit does; giving it back subscribes it again to what it auto-subscribes to.
func TestWithdrawnSubscriptionStopsTheMedia(t *testing.T) {
	ts := startServer(t)
	admin := lksdk.NewRoomServiceClient(ts.HTTP.URL, signalingtest.TestKeys.Key, signalingtest.TestKeys.Secret)
	ctx := t.Context()
	alice := join(t, ts, "r", "alice", nil)
	publish(t, alice, true)
	bobRx, cb := signalingtest.NewReceiver()
	join(t, ts, "r", "bob", cb)
	signalingtest.Eventually(t, "audio and video flow to bob", 15*time.Second, func() bool { return bobRx.Audio() > 20 && bobRx.Video() > 20 })

	permission := func(canSubscribe bool) *livekit.UpdateParticipantRequest {
		return &livekit.UpdateParticipantRequest{Room: "r", Identity: "bob",
			Permission: &livekit.ParticipantPermission{CanSubscribe: canSubscribe, CanPublish: true, CanPublishData: true}}
	}
	info, err := admin.UpdateParticipant(ctx, permission(false))
	if err != nil {
		t.Fatal(err)
	}
	if info.GetPermission().GetCanSubscribe() {
		t.Fatal("the participant's description still says it may subscribe")
	}
	time.Sleep(time.Second)
	video, audio := bobRx.Video(), bobRx.Audio()
	time.Sleep(2 * time.Second)
	if got := bobRx.Video() - video + bobRx.Audio() - audio; got > 0 {
		t.Errorf("%d packets reached bob after its subscription was withdrawn", got)
	}

	if _, err := admin.UpdateParticipant(ctx, permission(true)); err != nil {
		t.Fatal(err)
	}
	video, audio = bobRx.Video(), bobRx.Audio()
	signalingtest.Eventually(t, "media flows to bob again", 15*time.Second, func() bool {
		return bobRx.Audio()-audio > 20 && bobRx.Video()-video > 20
	})
}

// A server started without a media engine (one that serves the API only) refuses a join with a
// reason, where LiveKit's SDKs look for it (the validate route), instead of failing inside it.
func TestJoinWithoutMediaEngineIsRefused(t *testing.T) {
	ts := startServer(t, signalingtest.NoMedia)
	token := ts.Token(t, "r", "alice", auth.RoleMember, 0)
	if _, err := lksdk.ConnectToRoomWithToken(ts.WS, token, lksdk.NewRoomCallback()); err == nil {
		t.Fatal("joined a server without media")
	}
	status, body := ts.Call(t, http.MethodGet, "/rtc/validate", token, nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "no media") {
		t.Fatalf("validate on a server without media: %d %q, want 503 saying so", status, body)
	}
}
