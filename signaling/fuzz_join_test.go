package signaling_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
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

// FuzzJoinRequest joins a real server's room over /rtc with a valid token and query parameters
// of any contents (the SDKs' join_request, protocol, sdk, reconnect and sid among them), then
// sends one first frame of any contents, as a text frame (the JSON some clients try) or a
// binary one, and a ping. The handshake is never a server error, and a refusal says why; a
// session, once open, starts with a JoinResponse (or, for a resume of an unknown session, a
// Leave), then either answers the ping or closes with a close frame giving the reason, and a
// session closed leaves the room. A member present throughout stays, and the room holds
// nobody else. The seeds are the query strings of livekit-client and of the Go SDK, and real
// SignalRequests in protobuf and in protojson.
func FuzzJoinRequest(f *testing.F) {
	joinRequest := func(p int32, sdk livekit.ClientInfo_SDK) string {
		jr, err := proto.Marshal(&livekit.JoinRequest{
			ClientInfo:         &livekit.ClientInfo{Sdk: sdk, Version: "2.15.8", Protocol: p, Os: "Linux", Browser: "Chrome", BrowserVersion: "131"},
			ConnectionSettings: &livekit.ConnectionSettings{AutoSubscribe: true, AdaptiveStream: true},
			Metadata:           "{}", ParticipantAttributes: map[string]string{"seat": "3"},
		})
		if err != nil {
			f.Fatal(err)
		}
		wrapped, err := proto.Marshal(&livekit.WrappedJoinRequest{JoinRequest: jr})
		if err != nil {
			f.Fatal(err)
		}
		return url.QueryEscape(base64.URLEncoding.EncodeToString(wrapped))
	}
	ping, jsonPing := wireForms(f, &livekit.SignalRequest{Message: &livekit.SignalRequest_Ping{Ping: 7}})
	offer, jsonOffer := wireForms(f, &livekit.SignalRequest{Message: &livekit.SignalRequest_Offer{Offer: &livekit.SessionDescription{Type: "offer", Sdp: "v=0\r\n"}}})
	addTrack, _ := wireForms(f, &livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: &livekit.AddTrackRequest{Cid: "mic", Name: "mic", Type: livekit.TrackType_AUDIO}}})
	js := "sdk=js&version=2.15.8&protocol=16&auto_subscribe=1&adaptive_stream=1&join_request=" + joinRequest(16, livekit.ClientInfo_JS)
	goSDK := "auto_subscribe=true&sdk=go&version=2.9.1&protocol=15"
	for _, q := range []string{js, goSDK, "reconnect=1&sid=PA_unknown&protocol=15", "protocol=99999999999&auto_subscribe=0&join_request=%%%"} {
		f.Add(q, false, ping)
		f.Add(q, true, jsonPing)
	}
	f.Add(js, false, addTrack)
	f.Add(goSDK, true, jsonOffer)
	f.Add(goSDK, false, offer)
	f.Add("join_request=AAAA", true, []byte("{"))
	f.Add("", false, []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})

	ts := signalingtest.Start(f, func(c *signaling.Config) { c.ResumeWindow = time.Second })
	const room = "salle"
	ts.Join(f, room, "doyen", auth.RoleMember, 1, nil)
	inRoom := func() []string {
		r, ok := ts.Signaling.Room(room)
		if !ok {
			return nil
		}
		var ids []string
		for _, p := range r.Participants() {
			ids = append(ids, p.Identity)
		}
		slices.Sort(ids)
		return ids
	}
	// settled waits until the room holds exactly want besides the member present throughout.
	settled := func(t *testing.T, why string, want ...string) {
		t.Helper()
		want = append(want, "doyen")
		slices.Sort(want)
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Equal(inRoom(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the room holds %v, want %v", why, inRoom(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	var n atomic.Int64
	f.Fuzz(func(t *testing.T, query string, text bool, frame []byte) {
		identity := fmt.Sprintf("fuzz-%d", n.Add(1))
		u := ts.WS + "/rtc?access_token=" + ts.Token(t, room, identity, auth.RoleMember, 0) + "&" + query
		if _, err := url.Parse(u); err != nil || strings.ContainsAny(query, "# \r\n\x00") {
			return // no client can send this request line
		}
		ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			if resp == nil {
				t.Fatalf("the handshake failed without an HTTP answer: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode >= 500 || len(strings.TrimSpace(string(body))) == 0 {
				t.Fatalf("join refused with %d %q", resp.StatusCode, body)
			}
			settled(t, "after a refused join")
			return
		}
		defer ws.Close()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		first := readSignal(t, ws)
		if first.GetLeave() != nil {
			// A resume of a session the server does not know: it asks for a full join, and
			// nobody joined.
			settled(t, "after a refused resume")
			return
		}
		if first.GetJoin() == nil {
			t.Fatalf("the first frame is neither a JoinResponse nor a Leave: %v", first.Message)
		}
		kind := websocket.BinaryMessage
		if text {
			kind = websocket.TextMessage
		}
		if err := ws.WriteMessage(kind, frame); err != nil {
			t.Fatal(err)
		}
		if ce := pongOrClose(t, ws); ce != nil {
			if text && ce.Code == websocket.CloseNormalClosure {
				t.Fatalf("a text frame closed the session without a reason")
			}
			settled(t, "after the session closed")
			return
		}
		if text {
			t.Fatalf("a text frame %q was taken as a request", frame)
		}
		settled(t, "with the session open", identity)
		leave, err := proto.Marshal(&livekit.SignalRequest{Message: &livekit.SignalRequest_Leave{Leave: &livekit.LeaveRequest{}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.WriteMessage(websocket.BinaryMessage, leave); err != nil {
			t.Fatal(err)
		}
		settled(t, "after leaving")
	})
}
