package signaling_test

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// FuzzRelayedRoomService sends a RoomService request of any body, in protobuf or in JSON, to
// an entry node, node A, which reads the room in it and relays it to the room's node, node B,
// and sends the same request to node B directly. Relaying changes nothing: both answers have
// the same status and the same body, neither is a server error, and a refusal says why; and
// node B's room reads the same after a refused request. Only calls that change nothing
// twice are sent (every answer is compared with a second one). The seeds are the requests
// the server SDKs make.
func FuzzRelayedRoomService(f *testing.F) {
	methods := []string{"ListParticipants", "GetParticipant", "MutePublishedTrack", "UpdateParticipant",
		"UpdateSubscriptions", "SendData", "UpdateRoomMetadata", "ListRooms"}
	requests := []proto.Message{
		&livekit.ListParticipantsRequest{Room: "salle"},
		&livekit.RoomParticipantIdentity{Room: "salle", Identity: "doyen"},
		&livekit.MuteRoomTrackRequest{Room: "salle", Identity: "doyen", TrackSid: "TR_x", Muted: true},
		&livekit.UpdateParticipantRequest{Room: "salle", Identity: "nobody", Metadata: "{}"},
		&livekit.UpdateSubscriptionsRequest{Room: "salle", Identity: "nobody", TrackSids: []string{"TR_x"}, Subscribe: true},
		&livekit.SendDataRequest{Room: "salle", Data: []byte("ordre du jour"), Kind: livekit.DataPacket_RELIABLE},
		&livekit.UpdateRoomMetadataRequest{Room: "salle", Metadata: `{"séance":"ouverte"}`},
		&livekit.ListRoomsRequest{Names: []string{"salle"}},
	}
	for i, m := range requests {
		pb, js := wireForms(f, m)
		f.Add(byte(i), false, pb)
		f.Add(byte(i), true, js)
	}
	f.Add(byte(0), true, []byte(`{"room":`))
	f.Add(byte(1), false, []byte{0x0a, 0xff, 0xff})

	pa, pb := newFakePlacement(), newFakePlacement()
	a := signalingtest.Start(f, func(c *signaling.Config) { c.Placement = pa; c.NodeID = "A" })
	b := signalingtest.Start(f, func(c *signaling.Config) { c.Placement = pb; c.NodeID = "B" })
	pa.self, pb.self = a.HTTP.URL, b.HTTP.URL
	pa.set("salle", b.HTTP.URL)
	pb.set("salle", b.HTTP.URL)
	b.Join(f, "salle", "doyen", auth.RoleMember, 1, nil)
	// Answers are compared: the member's state must have settled (its connection is up).
	signalingtest.Eventually(f, "the member active on B", 15*time.Second, func() bool {
		r, ok := b.Signaling.Room("salle")
		return ok && len(r.Participants()) == 1 && r.Participants()[0].State == livekit.ParticipantInfo_ACTIVE
	})
	token := a.AdminToken(f, "salle")
	roomOnB := func() []byte {
		r, ok := b.Signaling.Room("salle")
		if !ok {
			return nil
		}
		var ids []string
		for _, p := range r.Participants() {
			ids = append(ids, p.Identity+" "+p.Metadata)
		}
		out, _ := proto.Marshal(&livekit.ListRoomsRequest{Names: ids})
		return out
	}
	call := func(t *testing.T, node *signalingtest.Server, method string, json bool, body []byte) (int, []byte) {
		contentType := "application/protobuf"
		if json {
			contentType = "application/json"
		}
		return node.Call(t, "POST", "/twirp/livekit.RoomService/"+method, token, signalingtest.Raw{ContentType: contentType, Body: body})
	}

	// answer is what an answer says, to compare: a Twirp error as it is; a response as JSON
	// (protobuf writes maps in any order), without the participants' versions, which count
	// their updates (the second UpdateParticipant is one more).
	responses := map[string]func() proto.Message{
		"ListParticipants":    func() proto.Message { return &livekit.ListParticipantsResponse{} },
		"GetParticipant":      func() proto.Message { return &livekit.ParticipantInfo{} },
		"MutePublishedTrack":  func() proto.Message { return &livekit.MuteRoomTrackResponse{} },
		"UpdateParticipant":   func() proto.Message { return &livekit.ParticipantInfo{} },
		"UpdateSubscriptions": func() proto.Message { return &livekit.UpdateSubscriptionsResponse{} },
		"SendData":            func() proto.Message { return &livekit.SendDataResponse{} },
		"UpdateRoomMetadata":  func() proto.Message { return &livekit.Room{} },
	}
	version := regexp.MustCompile(`"version":\s*\d+`)
	answer := func(t *testing.T, method string, json bool, status int, out []byte) []byte {
		if status != 200 {
			return out
		}
		msg := responses[method]()
		var err error
		if json {
			err = protojson.Unmarshal(out, msg)
		} else {
			err = proto.Unmarshal(out, msg)
		}
		if err != nil {
			t.Fatalf("%s answered 200 with %q: %v", method, out, err)
		}
		js, err := protojson.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		return version.ReplaceAll(js, nil)
	}
	f.Fuzz(func(t *testing.T, which byte, json bool, body []byte) {
		method := methods[int(which)%len(methods)]
		before := roomOnB()
		viaA, outA := call(t, a, method, json, body)
		direct, outB := call(t, b, method, json, body)
		if viaA >= 500 || direct >= 500 {
			t.Fatalf("%s %q: %d through A (%s), %d on B (%s)", method, body, viaA, outA, direct, outB)
		}
		if viaA != direct || (method != "ListRooms" && !bytes.Equal(answer(t, method, json, viaA, outA), answer(t, method, json, direct, outB))) {
			t.Fatalf("%s %q: through A %d %s, on B %d %s", method, body, viaA, outA, direct, outB)
		}
		if viaA != 200 {
			if len(bytes.TrimSpace(outA)) == 0 {
				t.Fatalf("%s %q: %d without a reason", method, body, viaA)
			}
			if !bytes.Equal(roomOnB(), before) {
				t.Fatalf("%s %q: refused (%d %s), but the room on B changed", method, body, viaA, outA)
			}
		}
	})
}

// wireForms is a message in protobuf and in protojson, for seeds.
func wireForms(f *testing.F, m proto.Message) (pb, js []byte) {
	pb, err := proto.Marshal(m)
	if err == nil {
		js, err = protojson.Marshal(m)
	}
	if err != nil {
		f.Fatal(err)
	}
	return pb, js
}
