package signaling_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/twitchtv/twirp"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// calls records the RPC invocations a participant's handlers received.
type calls struct {
	mu  sync.Mutex
	got []lksdk.RpcInvocationData
}

func (c *calls) add(d lksdk.RpcInvocationData) {
	c.mu.Lock()
	c.got = append(c.got, d)
	c.mu.Unlock()
}

// withPayload is the invocation that carried payload, if any.
func (c *calls) withPayload(payload string) (lksdk.RpcInvocationData, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.got {
		if d.Payload == payload {
			return d, true
		}
	}
	return lksdk.RpcInvocationData{}, false
}

// rpcError asserts that err is LiveKit's Twirp answer to a failed RPC: code, and a message
// naming the RpcError's number and text.
func rpcError(t *testing.T, what string, err error, code twirp.ErrorCode, rpcCode int, text string) {
	t.Helper()
	var te twirp.Error
	if !errors.As(err, &te) {
		t.Fatalf("%s: got %v, want a Twirp error", what, err)
	}
	want := fmt.Sprintf("RpcError %d: %s", rpcCode, text)
	if te.Code() != code || !strings.Contains(te.Msg(), want) {
		t.Fatalf("%s: got %s %q, want %s containing %q", what, te.Code(), te.Msg(), code, want)
	}
}

func TestPerformRpcFromTheRoomService(t *testing.T) {
	ts := startServer(t)
	// LiveKit's own RoomService client (the Go SDK's wrapper lacks PerformRpc).
	admin := adminWithToken(ts, signalingtest.TestKeys.AdminToken(t, "r"))
	ctx := context.Background()
	bob := join(t, ts, "r", "bob", nil)
	var seen calls
	if err := bob.RegisterRpcMethod("greet", func(d lksdk.RpcInvocationData) (string, error) {
		seen.add(d)
		return "bonjour " + d.Payload, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := bob.RegisterRpcMethod("quorum", func(d lksdk.RpcInvocationData) (string, error) {
		detail := "12 of 27 present"
		return "", lksdk.NewRpcError(2001, "no quorum", &detail)
	}); err != nil {
		t.Fatal(err)
	}

	res, err := admin.PerformRpc(ctx, &livekit.PerformRpcRequest{Room: "r", DestinationIdentity: "bob", Method: "greet", Payload: "Claire", ResponseTimeoutMs: 5000})
	if err != nil {
		t.Fatalf("PerformRpc to bob's greet: %v", err)
	}
	if res.Payload != "bonjour Claire" {
		t.Fatalf("PerformRpc answered %q, want bob's %q", res.Payload, "bonjour Claire")
	}
	d, _ := seen.withPayload("Claire")
	if d.ResponseTimeout <= 0 || d.ResponseTimeout > 5*time.Second {
		t.Errorf("bob's handler was given %s to answer, want at most the 5 s asked", d.ResponseTimeout)
	}
	if d.CallerIdentity == "" || d.CallerIdentity == "bob" {
		t.Errorf("the server's call came from %q", d.CallerIdentity)
	}

	// A method bob did not register: the SDK's own error comes back.
	_, err = admin.PerformRpc(ctx, &livekit.PerformRpcRequest{Room: "r", DestinationIdentity: "bob", Method: "absent", ResponseTimeoutMs: 5000})
	rpcError(t, "unregistered method", err, twirp.InvalidArgument, 1400, "Method not supported at destination")
	// The application's error, with its data.
	_, err = admin.PerformRpc(ctx, &livekit.PerformRpcRequest{Room: "r", DestinationIdentity: "bob", Method: "quorum", ResponseTimeoutMs: 5000})
	rpcError(t, "the handler's error", err, twirp.Internal, 2001, "no quorum: 12 of 27 present")

	// Only the callee answers the server's call: carol, who learnt the request id, cannot.
	join(t, ts, "r", "carol", nil)
	room, _ := ts.Signaling.Room("r")
	release := make(chan struct{})
	if err := bob.RegisterRpcMethod("hold", func(d lksdk.RpcInvocationData) (string, error) {
		forged, _ := proto.Marshal(&livekit.DataPacket{DestinationIdentities: []string{d.CallerIdentity},
			Value: &livekit.DataPacket_RpcResponse{RpcResponse: &livekit.RpcResponse{
				RequestId: d.RequestID, Value: &livekit.RpcResponse_Payload{Payload: "carol's answer"}}}})
		room.ReceiveData("carol", true, forged)
		<-release
		return "bob's answer", nil
	}); err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(300 * time.Millisecond); close(release) }()
	res, err = admin.PerformRpc(ctx, &livekit.PerformRpcRequest{Room: "r", DestinationIdentity: "bob", Method: "hold", ResponseTimeoutMs: 5000})
	if err != nil || res.Payload != "bob's answer" {
		t.Fatalf("PerformRpc with another participant answering first: %v %v, want bob's answer", res, err)
	}

	// A participant who may not publish data still answers the server: the answer goes to
	// the server, not to the others.
	viewer := ts.Join(t, "r", "public", auth.RoleViewer, 0, nil)
	if err := viewer.RegisterRpcMethod("greet", func(d lksdk.RpcInvocationData) (string, error) { return "vu", nil }); err != nil {
		t.Fatal(err)
	}
	res, err = admin.PerformRpc(ctx, &livekit.PerformRpcRequest{Room: "r", DestinationIdentity: "public", Method: "greet", ResponseTimeoutMs: 3000})
	if err != nil || res.Payload != "vu" {
		t.Fatalf("PerformRpc to a participant without canPublishData: %v %v, want its answer", res, err)
	}

	// Not for a member, nor for someone absent, nor beyond LiveKit's payload limit.
	_, err = adminWithToken(ts, ts.Token(t, "r", "mallory", auth.RoleMember, 0)).PerformRpc(ctx,
		&livekit.PerformRpcRequest{Room: "r", DestinationIdentity: "bob", Method: "greet"})
	var te twirp.Error
	if !errors.As(err, &te) || te.Code() != twirp.PermissionDenied {
		t.Fatalf("PerformRpc with a member's token: %v, want permission denied", err)
	}
	_, err = admin.PerformRpc(ctx, &livekit.PerformRpcRequest{Room: "r", DestinationIdentity: "dave", Method: "greet"})
	if !errors.As(err, &te) || te.Code() != twirp.NotFound {
		t.Fatalf("PerformRpc to someone absent: %v, want not found", err)
	}
	_, err = admin.PerformRpc(ctx, &livekit.PerformRpcRequest{Room: "r", DestinationIdentity: "bob", Method: "greet", Payload: strings.Repeat("x", 15361)})
	rpcError(t, "an oversized payload", err, twirp.Malformed, 1402, "Request payload too large")

	// A handler slower than the caller's timeout: LiveKit's response timeout.
	if err := bob.RegisterRpcMethod("slow", func(d lksdk.RpcInvocationData) (string, error) {
		time.Sleep(1500 * time.Millisecond)
		return "too late", nil
	}); err != nil {
		t.Fatal(err)
	}
	_, err = admin.PerformRpc(ctx, &livekit.PerformRpcRequest{Room: "r", DestinationIdentity: "bob", Method: "slow", ResponseTimeoutMs: 800})
	rpcError(t, "a handler slower than the timeout", err, twirp.Canceled, 1502, "Response timeout")
	// The late answer goes nowhere, and the next call is answered as usual.
	res, err = admin.PerformRpc(ctx, &livekit.PerformRpcRequest{Room: "r", DestinationIdentity: "bob", Method: "greet", Payload: "encore", ResponseTimeoutMs: 5000})
	if err != nil || res.Payload != "bonjour encore" {
		t.Fatalf("PerformRpc after a timeout: %v %v", res, err)
	}
}

func TestRpcBetweenParticipantsReachesOnlyTheCallee(t *testing.T) {
	ts := startServer(t)
	alice := join(t, ts, "r", "alice", nil)
	bob := join(t, ts, "r", "bob", nil)
	carol := join(t, ts, "r", "carol", nil)
	var bobSaw, carolSaw calls
	for _, c := range []struct {
		room *lksdk.Room
		log  *calls
	}{{bob, &bobSaw}, {carol, &carolSaw}} {
		name := c.room.LocalParticipant.Identity()
		if err := c.room.RegisterRpcMethod("vote", func(d lksdk.RpcInvocationData) (string, error) {
			c.log.add(d)
			return name + " received " + d.Payload + " from " + d.CallerIdentity, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	signalingtest.Eventually(t, "alice sees both others", 5*time.Second, func() bool { return len(alice.GetRemoteParticipants()) == 2 })

	res, err := alice.LocalParticipant.PerformRpc(lksdk.PerformRpcParams{DestinationIdentity: "bob", Method: "vote", Payload: "pour"})
	if err != nil {
		t.Fatalf("alice's RPC to bob: %v", err)
	}
	if *res != "bob received pour from alice" {
		t.Fatalf("alice's RPC answered %q", *res)
	}
	_, err = alice.LocalParticipant.PerformRpc(lksdk.PerformRpcParams{DestinationIdentity: "bob", Method: "absent"})
	var re *lksdk.RpcError
	if !errors.As(err, &re) || re.Code != lksdk.RpcUnsupportedMethod {
		t.Fatalf("alice's RPC to a method bob lacks: %v, want the SDK's unsupported method", err)
	}

	// To someone absent: the server says so at once (the SDK alone would wait 7 s for an ack).
	_, err = alice.LocalParticipant.PerformRpc(lksdk.PerformRpcParams{DestinationIdentity: "dave", Method: "vote"})
	if !errors.As(err, &re) || re.Code != lksdk.RpcRecipientNotFound {
		t.Fatalf("alice's RPC to someone absent: %v, want recipient not found", err)
	}

	// Sent under carol's identity, a request reaches bob as alice's.
	room, _ := ts.Signaling.Room("r")
	request := func(id, payload string, dest ...string) []byte {
		b, _ := proto.Marshal(&livekit.DataPacket{ParticipantIdentity: "carol", DestinationIdentities: dest,
			Value: &livekit.DataPacket_RpcRequest{RpcRequest: &livekit.RpcRequest{
				Id: id, Method: "vote", Payload: payload, ResponseTimeoutMs: 5000, Version: 1}}})
		return b
	}
	room.ReceiveData("alice", true, request("no-destination", "à tous"))
	room.ReceiveData("alice", true, request("forged", "contre", "bob"))
	signalingtest.Eventually(t, "bob receives the forged request", 5*time.Second, func() bool { _, ok := bobSaw.withPayload("contre"); return ok })
	if d, _ := bobSaw.withPayload("contre"); d.CallerIdentity != "alice" {
		t.Errorf("a request alice sent under carol's name reached bob from %q, want alice", d.CallerIdentity)
	}
	// Data on one channel arrives in order: once carol has this one, she had the others.
	room.ReceiveData("alice", true, request("to-carol", "abstention", "carol"))
	signalingtest.Eventually(t, "carol receives her request", 5*time.Second, func() bool { _, ok := carolSaw.withPayload("abstention"); return ok })
	for _, p := range []string{"pour", "contre"} {
		if _, ok := carolSaw.withPayload(p); ok {
			t.Errorf("carol's handler ran for the request %q addressed to bob", p)
		}
	}
	for who, log := range map[string]*calls{"bob": &bobSaw, "carol": &carolSaw} {
		if _, ok := log.withPayload("à tous"); ok {
			t.Errorf("an RPC request without a destination ran at %s", who)
		}
	}
}

func TestAttributesReachTheOthers(t *testing.T) {
	ts := startServer(t)
	admin := lksdk.NewRoomServiceClient(ts.HTTP.URL, signalingtest.TestKeys.Key, signalingtest.TestKeys.Secret)
	grants := auth.GrantsForRole(auth.RoleMember, "r")
	grants.CanUpdateOwnMetadata = new(true)
	tok := signalingtest.TestKeys.Mint(t, auth.TokenOptions{Identity: "alice", Name: "alice", Room: "r", Video: grants,
		Council: &auth.CouncilGrant{Role: auth.RoleMember, Seat: 4}})
	alice := signalingtest.Connect(t, ts.WS, tok, nil)
	bob := join(t, ts, "r", "bob", nil)
	mallory := join(t, ts, "r", "mallory", nil)
	aliceAt := func(key string) string {
		if rp := bob.GetParticipantByIdentity("alice"); rp != nil {
			return rp.Attributes()[key]
		}
		return "?"
	}
	signalingtest.Eventually(t, "bob sees alice", 5*time.Second, func() bool { return aliceAt("x") == "" })
	seat := aliceAt("hemicycle.seat")

	// Set by the participant itself (the council's own keys stay the council's).
	alice.LocalParticipant.SetAttributes(map[string]string{"lectern": "12", "hemicycle.seat": "99"})
	signalingtest.Eventually(t, "bob sees the attribute alice set", 5*time.Second, func() bool { return aliceAt("lectern") == "12" })
	if got := aliceAt("hemicycle.seat"); got != seat {
		t.Errorf("alice changed her council attribute hemicycle.seat from %q to %q", seat, got)
	}

	// Set and removed by the RoomService; alice's own SDK follows.
	if _, err := admin.UpdateParticipant(context.Background(), &livekit.UpdateParticipantRequest{Room: "r", Identity: "alice",
		Attributes: map[string]string{"lectern": "", "microphone": "cut"}}); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "bob sees the RoomService's attributes", 5*time.Second, func() bool {
		_, still := bob.GetParticipantByIdentity("alice").Attributes()["lectern"]
		return aliceAt("microphone") == "cut" && !still
	})
	signalingtest.Eventually(t, "alice's own SDK sees them", 5*time.Second, func() bool {
		return alice.LocalParticipant.Attributes()["microphone"] == "cut"
	})

	// A token without canUpdateOwnMetadata changes nothing.
	mallory.LocalParticipant.SetAttributes(map[string]string{"lectern": "1"})
	time.Sleep(500 * time.Millisecond)
	if got := bob.GetParticipantByIdentity("mallory").Attributes()["lectern"]; got != "" {
		t.Errorf("mallory, without canUpdateOwnMetadata, set her attribute to %q", got)
	}
}

func TestRoomMetadataReachesTheClients(t *testing.T) {
	ts := startServer(t)
	admin := lksdk.NewRoomServiceClient(ts.HTTP.URL, signalingtest.TestKeys.Key, signalingtest.TestKeys.Secret)
	ctx := context.Background()
	if _, err := admin.CreateRoom(ctx, &livekit.CreateRoomRequest{Name: "r", Metadata: "séance ouverte"}); err != nil {
		t.Fatal(err)
	}
	changed := make(chan string, 4)
	cb := lksdk.NewRoomCallback()
	cb.OnRoomMetadataChanged = func(m string) { changed <- m }
	alice := join(t, ts, "r", "alice", cb)
	if got := alice.Metadata(); got != "séance ouverte" {
		t.Errorf("alice joined with room metadata %q, want the room's", got)
	}
	if _, err := admin.UpdateRoomMetadata(ctx, &livekit.UpdateRoomMetadataRequest{Room: "r", Metadata: "séance suspendue"}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-changed:
		if m != "séance suspendue" {
			t.Errorf("alice was told the room metadata %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("alice was not told the room's new metadata")
	}
	if got := alice.Metadata(); got != "séance suspendue" {
		t.Errorf("alice's room metadata %q after the update", got)
	}
	if got := join(t, ts, "r", "bob", nil).Metadata(); got != "séance suspendue" {
		t.Errorf("bob, joining after the update, has room metadata %q", got)
	}
}

func TestStreamsRelayedUnchanged(t *testing.T) {
	ts := startServer(t)
	alice := join(t, ts, "r", "alice", nil)
	type received struct {
		topic, sender, name string
		attrs               map[string]string
		content             []byte
	}
	got := map[string]chan received{"bob": make(chan received, 4), "carol": make(chan received, 4)}
	for _, who := range []string{"bob", "carol"} {
		r := join(t, ts, "r", who, nil)
		for _, topic := range []string{"chat", "notices"} {
			if err := r.RegisterTextStreamHandler(topic, func(rd *lksdk.TextStreamReader, sender string) {
				text := rd.ReadAll()
				got[who] <- received{topic: rd.Info.Topic, sender: sender, attrs: rd.Info.Attributes, content: []byte(text)}
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.RegisterByteStreamHandler("files", func(rd *lksdk.ByteStreamReader, sender string) {
			data := rd.ReadAll()
			name := ""
			if rd.Info.Name != nil {
				name = *rd.Info.Name
			}
			got[who] <- received{topic: rd.Info.Topic, sender: sender, name: name, attrs: rd.Info.Attributes, content: data}
		}); err != nil {
			t.Fatal(err)
		}
	}
	signalingtest.Eventually(t, "alice sees both others", 5*time.Second, func() bool { return len(alice.GetRemoteParticipants()) == 2 })
	next := func(who string) received {
		t.Helper()
		select {
		case r := <-got[who]:
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("%s received no stream", who)
			return received{}
		}
	}

	// Text over several chunks, to bob only, with its attributes.
	text := strings.Repeat("Point 3 : la motion est adoptée à l'unanimité. ", 700)
	alice.LocalParticipant.SendText(text, lksdk.StreamTextOptions{Topic: "chat", DestinationIdentities: []string{"bob"}, Attributes: map[string]string{"lang": "fr"}})
	r := next("bob")
	if string(r.content) != text || r.topic != "chat" || r.sender != "alice" || r.attrs["lang"] != "fr" {
		t.Errorf("bob received text of %d bytes on %q from %q with %v, want alice's %d bytes on chat with lang=fr", len(r.content), r.topic, r.sender, r.attrs, len(text))
	}
	// Bytes of every value, over several chunks, to bob only.
	content := make([]byte, 40000)
	for i := range content {
		content[i] = byte(i * 7)
	}
	name := "motion.pdf"
	w := alice.LocalParticipant.StreamBytes(lksdk.StreamBytesOptions{Topic: "files", MimeType: "application/pdf", FileName: &name,
		DestinationIdentities: []string{"bob"}, TotalSize: uint64(len(content))})
	w.Write(content, nil)
	w.Close()
	r = next("bob")
	if !bytes.Equal(r.content, content) || r.name != name || r.sender != "alice" {
		t.Errorf("bob received %d bytes named %q from %q, want alice's %d bytes named %q", len(r.content), r.name, r.sender, len(content), name)
	}
	// To everyone: carol receives this one, and it is the first she receives.
	alice.LocalParticipant.SendText("la séance est levée", lksdk.StreamTextOptions{Topic: "notices"})
	if r := next("carol"); string(r.content) != "la séance est levée" {
		t.Errorf("carol's first stream is %.40q on %q: a stream addressed to bob reached her", r.content, r.topic)
	}
	if r := next("bob"); string(r.content) != "la séance est levée" {
		t.Errorf("bob received %.40q", r.content)
	}
}

func TestPerformRpcToSomeoneWhoLeaves(t *testing.T) {
	ts := startServer(t)
	admin := adminWithToken(ts, signalingtest.TestKeys.AdminToken(t, "r"))
	bob := join(t, ts, "r", "bob", nil)
	called := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	if err := bob.RegisterRpcMethod("hang", func(d lksdk.RpcInvocationData) (string, error) {
		close(called)
		select {
		case <-release:
		case <-time.After(15 * time.Second):
		}
		return "too late", nil
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		<-called
		_, _ = admin.RemoveParticipant(context.Background(), &livekit.RoomParticipantIdentity{Room: "r", Identity: "bob"})
	}()
	_, err := admin.PerformRpc(context.Background(), &livekit.PerformRpcRequest{Room: "r", DestinationIdentity: "bob", Method: "hang", ResponseTimeoutMs: 12000})
	rpcError(t, "the callee removed during the call", err, twirp.Unavailable, 1503, "Recipient disconnected")
}

func TestPerformRpcThroughAnotherNode(t *testing.T) {
	a, b, pa, pb := twoNodes(t)
	pa.set("council", b.HTTP.URL)
	pb.set("council", b.HTTP.URL)
	bob := join(t, b, "council", "bob", nil)
	if err := bob.RegisterRpcMethod("greet", func(d lksdk.RpcInvocationData) (string, error) { return "bonjour " + d.Payload, nil }); err != nil {
		t.Fatal(err)
	}
	rs, ctx := signalingtest.RoomService(t, a.HTTP.URL, a.AdminToken(t, "council"))
	res, err := rs.PerformRpc(ctx, &livekit.PerformRpcRequest{Room: "council", DestinationIdentity: "bob", Method: "greet", Payload: "A", ResponseTimeoutMs: 5000})
	if err != nil || res.Payload != "bonjour A" {
		t.Fatalf("PerformRpc through A to bob on B: %v %v", res, err)
	}
	_, err = rs.PerformRpc(ctx, &livekit.PerformRpcRequest{Room: "council", DestinationIdentity: "bob", Method: "absent", ResponseTimeoutMs: 5000})
	rpcError(t, "an unregistered method through A", err, twirp.InvalidArgument, 1400, "Method not supported at destination")
}
