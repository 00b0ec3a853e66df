package signaling_test

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// dataSeen is what one SDK client received on its data channels, in order.
type dataSeen struct {
	mu   sync.Mutex
	got  []dataItem
	seen map[string]bool // the markers received
}

type dataItem struct {
	sender, topic string // for a transcription, sender is the participant it captions
	payload       []byte
	marker        bool
}

func (d *dataSeen) callback() *lksdk.RoomCallback {
	cb := lksdk.NewRoomCallback()
	cb.OnDataPacket = func(data lksdk.DataPacket, params lksdk.DataReceiveParams) {
		it := dataItem{sender: params.SenderIdentity}
		if u, ok := data.(*lksdk.UserDataPacket); ok {
			it.topic, it.payload = u.Topic, u.Payload
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if it.topic == "fuzz.marker" {
			it.marker = true
			d.seen[string(it.payload)] = true
		}
		d.got = append(d.got, it)
	}
	cb.OnTranscriptionReceived = func(_ []*lksdk.TranscriptionSegment, p lksdk.Participant, _ lksdk.TrackPublication) {
		it := dataItem{topic: "transcription"}
		if p != nil {
			it.sender = p.Identity()
		}
		d.mu.Lock()
		d.got = append(d.got, it)
		d.mu.Unlock()
	}
	return cb
}

// since returns what arrived after the first n items.
func (d *dataSeen) since(n int) []dataItem {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.got[n:])
}

func (d *dataSeen) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.got)
}

func (d *dataSeen) has(marker string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[marker]
}

// FuzzDataPacket hands the server a message of any contents as a member's reliable or lossy
// data channel carries it, then a reliable marker packet; two other members, real Go SDK
// clients, receive what the server relays. Nothing panics; every packet they receive is sent
// by the member who sent it, whatever identity the bytes claim, and a caption names the member
// (only captioners caption others); a user packet addressed to one of them reaches neither
// the other nor, with no receiver named, fails to reach both; and after any input the marker
// reaches both: a refused packet loses nothing else. The seeds are the packets livekit-client
// sends: user data with a topic and destinations, a chat message, a transcription, an RPC
// request, a forged sender.
func FuzzDataPacket(f *testing.F) {
	seed := func(reliable bool, p *livekit.DataPacket) {
		b, err := proto.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(reliable, b)
	}
	topic := "chat"
	seed(true, &livekit.DataPacket{Value: &livekit.DataPacket_User{User: &livekit.UserPacket{Payload: []byte("bonjour"), Topic: &topic}}})
	seed(false, &livekit.DataPacket{Value: &livekit.DataPacket_User{User: &livekit.UserPacket{Payload: []byte("lossy")}}})
	seed(true, &livekit.DataPacket{DestinationIdentities: []string{"carol"}, Value: &livekit.DataPacket_User{User: &livekit.UserPacket{Payload: []byte("for carol")}}})
	seed(true, &livekit.DataPacket{Value: &livekit.DataPacket_User{User: &livekit.UserPacket{Payload: []byte("old style"), DestinationIdentities: []string{"bob"}}}})
	seed(true, &livekit.DataPacket{ParticipantIdentity: "bob", Value: &livekit.DataPacket_User{User: &livekit.UserPacket{ParticipantIdentity: "bob", Payload: []byte("forged")}}})
	seed(true, &livekit.DataPacket{Value: &livekit.DataPacket_ChatMessage{ChatMessage: &livekit.ChatMessage{Id: "m1", Timestamp: 1, Message: "salut"}}})
	seed(true, &livekit.DataPacket{Value: &livekit.DataPacket_Transcription{Transcription: &livekit.Transcription{
		TranscribedParticipantIdentity: "alice", TrackId: "TR_mic",
		Segments: []*livekit.TranscriptionSegment{{Id: "s1", Text: "Je propose", StartTime: 1, EndTime: 2, Final: true, Language: "fr"}}}}})
	seed(true, &livekit.DataPacket{Value: &livekit.DataPacket_Transcription{Transcription: &livekit.Transcription{
		TranscribedParticipantIdentity: "bob", Segments: []*livekit.TranscriptionSegment{{Id: "s2", Text: "pas moi", Final: true}}}}})
	seed(true, &livekit.DataPacket{DestinationIdentities: []string{"bob"}, Value: &livekit.DataPacket_RpcRequest{RpcRequest: &livekit.RpcRequest{Id: "r1", Method: "ping", Payload: "{}", ResponseTimeoutMs: 1000, Version: 1}}})
	f.Add(true, []byte{0x0a, 0xff})
	f.Add(false, []byte{})

	ts := signalingtest.Start(f)
	const room = "salle"
	ts.Join(f, room, "alice", auth.RoleMember, 1, nil)
	receivers := map[string]*dataSeen{"bob": {seen: map[string]bool{}}, "carol": {seen: map[string]bool{}}}
	for id, d := range receivers {
		ts.Join(f, room, id, auth.RoleMember, 0, d.callback())
	}
	r, ok := ts.Signaling.Room(room)
	if !ok {
		f.Fatal("the room is not open")
	}
	marker := func(i int) []byte {
		topic := "fuzz.marker"
		b, err := proto.Marshal(&livekit.DataPacket{Value: &livekit.DataPacket_User{User: &livekit.UserPacket{Payload: fmt.Appendf(nil, "%d", i), Topic: &topic}}})
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	// The SDK clients see each other before the first input.
	r.ReceiveData("alice", true, marker(0))
	signalingtest.Eventually(f, "the first marker at bob and carol", 15*time.Second, func() bool {
		return receivers["bob"].has("0") && receivers["carol"].has("0")
	})

	var mu sync.Mutex // inputs one at a time: each is judged by what arrived between markers
	n := 0
	f.Fuzz(func(t *testing.T, reliable bool, data []byte) {
		mu.Lock()
		defer mu.Unlock()
		n++
		before := map[string]int{}
		for id, d := range receivers {
			before[id] = d.count()
		}
		r.ReceiveData("alice", reliable, data)
		r.ReceiveData("alice", true, marker(n))
		id := fmt.Sprint(n)
		deadline := time.Now().Add(10 * time.Second)
		for !receivers["bob"].has(id) || !receivers["carol"].has(id) {
			if time.Now().After(deadline) {
				t.Fatalf("the marker after the input did not reach both members")
			}
			time.Sleep(2 * time.Millisecond)
		}
		var sent livekit.DataPacket
		decoded := proto.Unmarshal(data, &sent) == nil
		user := sent.GetUser()
		if user.GetTopic() == "fuzz.marker" {
			return // it would pass for a marker
		}
		dest := sent.GetDestinationIdentities()
		if len(dest) == 0 {
			dest = user.GetDestinationIdentities()
		}
		for who, d := range receivers {
			got := d.since(before[who])
			delivered := false
			for _, it := range got {
				if it.sender != "alice" {
					t.Fatalf("%s received a packet (topic %q) from %q, not from alice, who sent it", who, it.topic, it.sender)
				}
				if !it.marker && user != nil && it.topic == user.GetTopic() && bytes.Equal(it.payload, user.GetPayload()) {
					delivered = true
				}
			}
			if !reliable || !decoded || user == nil {
				continue
			}
			wanted := len(dest) == 0 || slices.Contains(dest, who)
			if delivered && !wanted {
				t.Fatalf("a user packet addressed to %q reached %s", dest, who)
			}
			if wanted && !delivered {
				t.Fatalf("a reliable user packet for %s (addressed to %q) did not reach it before the marker", who, dest)
			}
		}
	})
}
