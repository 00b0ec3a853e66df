package signalingtest

import (
	"context"
	"net/http"
	"testing"

	"github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"
)

// RoomService is LiveKit's RoomService client (Twirp) for the server at url, and the context
// its calls carry token in.
func RoomService(t testing.TB, url, token string) (livekit.RoomService, context.Context) {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	ctx, err := twirp.WithHTTPRequestHeaders(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	return livekit.NewRoomServiceProtobufClient(url, http.DefaultClient), ctx
}
