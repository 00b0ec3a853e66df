package signaling

import (
	"testing"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func TestTwirpRequestsNameTheirRoom(t *testing.T) {
	cases := []struct {
		method string
		msg    proto.Message
		want   string
	}{
		{"CreateRoom", &livekit.CreateRoomRequest{Name: "a"}, "a"},
		{"DeleteRoom", &livekit.DeleteRoomRequest{Room: "b"}, "b"},
		{"RemoveParticipant", &livekit.RoomParticipantIdentity{Room: "c", Identity: "x"}, "c"},
		{"MutePublishedTrack", &livekit.MuteRoomTrackRequest{Room: "d"}, "d"},
		{"SendData", &livekit.SendDataRequest{Room: "e", Data: []byte("hi")}, "e"},
		{"UpdateRoomMetadata", &livekit.UpdateRoomMetadataRequest{Room: "f"}, "f"},
		{"PerformRpc", &livekit.PerformRpcRequest{Room: "h", DestinationIdentity: "x", Method: "m"}, "h"},
		{"ListRooms", &livekit.ListRoomsRequest{Names: []string{"g"}}, ""},
	}
	for _, c := range cases {
		pb, _ := proto.Marshal(c.msg)
		if got := twirpRoom(c.method, "application/protobuf", pb); got != c.want {
			t.Errorf("%s (protobuf): room %q, want %q", c.method, got, c.want)
		}
		js, _ := protojson.Marshal(c.msg)
		if got := twirpRoom(c.method, "application/json", js); got != c.want {
			t.Errorf("%s (JSON): room %q, want %q", c.method, got, c.want)
		}
	}
	// Twirp reads a content type in any case, with parameters, and a JSON body's first value.
	if got := twirpRoom("DeleteRoom", "Application/JSON; charset=utf-8", []byte(`{"room":"h"} trailing`)); got != "h" {
		t.Errorf("a JSON body followed by more names room %q, want h, as Twirp serves it", got)
	}
	if got := twirpRoom("DeleteRoom", "application/protobuf", []byte{0xff, 0xff}); got != "" {
		t.Errorf("an undecodable body names room %q", got)
	}
}
