package signaling_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/programme"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// Each limit is reached by a real client and refused with its reason, the refusal is counted,
// and another participant in the same room goes on as before. The limits are small here, set
// through the configuration as an operator sets them.

func limited(l signaling.Limits) signalingtest.Option {
	return func(c *signaling.Config) { c.Limits = l }
}

// refusals reads hemicycle_limit_refusals_total{limit} from the server's /metrics.
func refusals(t *testing.T, ts *signalingtest.Server) func(limit string) float64 {
	t.Helper()
	hs := httptest.NewServer(signaling.NewMetrics(ts.Signaling).Handler())
	t.Cleanup(hs.Close)
	return func(limit string) float64 {
		t.Helper()
		return scrapeMetrics(t, hs.URL).must(t, "hemicycle_limit_refusals_total", "limit="+limit)
	}
}

// get answers a plain GET: its status, body and headers.
func get(t *testing.T, url string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// stillHeard asserts that bob goes on receiving alice's audio and that alice is connected.
func stillHeard(t *testing.T, alice *lksdk.Room, bobRx *signalingtest.Receiver) {
	t.Helper()
	if alice.ConnectionState() != lksdk.ConnectionStateConnected {
		t.Errorf("alice's state is %s after another client was refused", alice.ConnectionState())
	}
	before := bobRx.Audio()
	signalingtest.Eventually(t, "media still flows to bob", 5*time.Second, func() bool { return bobRx.Audio() > before+20 })
}

func TestJoinRatesRefusedBeforeTheUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits signaling.Limits
		metric string
		reason string
	}{
		// Almost no refill during the test: the burst is what is left.
		{"per address", signaling.Limits{JoinsPerSecondPerAddress: 0.001, JoinBurstPerAddress: 2}, "joins_per_address", "too many joins from your address"},
		{"in total", signaling.Limits{JoinsPerSecond: 0.001, JoinBurst: 2}, "joins_total", "the server is admitting as many joins as it may"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, limited(tc.limits))
			refused := refusals(t, ts)
			alice, _, bobRx := aliceHeardByBob(t, ts) // the two joins of the burst

			carol := ts.Token(t, "r", "carol", auth.RoleMember, 0)
			_, err := lksdk.ConnectToRoomWithToken(ts.WS, carol, lksdk.NewRoomCallback())
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("the SDK's third join: %v, want a refusal saying %q", err, tc.reason)
			}
			status, body, h := get(t, ts.HTTP.URL+"/rtc?protocol=17&access_token="+carol)
			if wait, _ := strconv.Atoi(h.Get("Retry-After")); status != http.StatusTooManyRequests || !strings.Contains(body, tc.reason) || wait < 1 {
				t.Errorf("/rtc over the join rate: %d %q Retry-After %q, want 429 saying %q with a wait", status, body, h.Get("Retry-After"), tc.reason)
			}
			counted := refused(tc.metric)
			if counted < 2 { // the SDK's /rtc and ours
				t.Errorf("%s refusals = %v after two refused joins", tc.metric, counted)
			}
			// The SDKs ask /rtc/validate why a join failed: it answers the same, and neither takes
			// a join nor counts one.
			for range 3 {
				if status, body, _ := get(t, ts.HTTP.URL+"/rtc/validate?access_token="+carol); status != http.StatusTooManyRequests || !strings.Contains(body, tc.reason) {
					t.Errorf("/rtc/validate: %d %q, want 429 saying %q", status, body, tc.reason)
				}
			}
			if n := refused(tc.metric); n != counted {
				t.Errorf("validations counted as refused joins: %v, then %v", counted, n)
			}
			if room, _ := ts.Signaling.Room("r"); participant(room, "carol") != nil {
				t.Error("carol is in the room")
			}
			stillHeard(t, alice, bobRx)
		})
	}
}

func TestFullRoomAndFullNodeRefused(t *testing.T) {
	for _, capped := range []bool{false, true} {
		t.Run(fmt.Sprintf("viewers capped %v", capped), func(t *testing.T) {
			opts := []signalingtest.Option{limited(signaling.Limits{ParticipantsPerRoom: 2, RoomsPerNode: 1})}
			if capped {
				opts = append(opts, signalingtest.Programme(signaling.ProgrammeConfig{Viewers: programme.Viewers{MaxViewers: 5}}))
			}
			ts := startServer(t, opts...)
			refused := refusals(t, ts)
			alice, _, bobRx := aliceHeardByBob(t, ts) // room r holds its two, the node its one room

			for _, tc := range []struct {
				who, room, reason, metric string
			}{
				{"carol", "r", `room "r" is full: it admits 2 participants at once`, "participants_per_room"},
				{"dave", "s", "this server already holds 1 rooms", "rooms_per_node"},
			} {
				tok := ts.Token(t, tc.room, tc.who, auth.RoleMember, 0)
				_, err := lksdk.ConnectToRoomWithToken(ts.WS, tok, lksdk.NewRoomCallback())
				if err == nil || !strings.Contains(err.Error(), tc.reason) {
					t.Errorf("%s joining %s: %v, want a refusal saying %q", tc.who, tc.room, err, tc.reason)
				}
				if status, body, _ := get(t, ts.HTTP.URL+"/rtc/validate?access_token="+tok); status != http.StatusServiceUnavailable || !strings.Contains(body, tc.reason) {
					t.Errorf("/rtc/validate for %s: %d %q, want 503 saying %q", tc.who, status, body, tc.reason)
				}
				if n := refused(tc.metric); n < 1 {
					t.Errorf("%s refusals = %v after %s was refused", tc.metric, n, tc.who)
				}
			}
			// LiveKit's server API is refused the room too, with the same reason.
			before := refused("rooms_per_node")
			rs, ctx := signalingtest.RoomService(t, ts.HTTP.URL, ts.AdminToken(t, ""))
			if _, err := rs.CreateRoom(ctx, &livekit.CreateRoomRequest{Name: "s"}); err == nil || !strings.Contains(err.Error(), "already holds 1 rooms") {
				t.Errorf("CreateRoom beyond the node's rooms: %v, want a refusal saying so", err)
			}
			if n := refused("rooms_per_node"); n != before+1 {
				t.Errorf("rooms_per_node refusals %v after CreateRoom, want %v", n, before+1)
			}
			if _, ok := ts.Signaling.Room("s"); ok {
				t.Error("room s was opened beyond the node's limit")
			}
			// Bob's own session again takes no new place (it would replace itself); a viewer
			// takes none when max_viewers caps the viewers instead, and one otherwise.
			if status, body, _ := get(t, ts.HTTP.URL+"/rtc/validate?access_token="+ts.Token(t, "r", "bob", auth.RoleMember, 0)); status != http.StatusOK {
				t.Errorf("/rtc/validate for bob again: %d %q, want 200", status, body)
			}
			want := http.StatusServiceUnavailable
			if capped {
				want = http.StatusOK
			}
			if status, body, _ := get(t, ts.HTTP.URL+"/rtc/validate?access_token="+ts.Token(t, "r", "citizen", auth.RoleViewer, 0)); status != want {
				t.Errorf("/rtc/validate for a viewer: %d %q, want %d", status, body, want)
			}
			stillHeard(t, alice, bobRx)
		})
	}
}

// next reads a raw /rtc socket until a response that want accepts, within 5 s.
func next(t *testing.T, ws *websocket.Conn, what string, want func(*livekit.SignalResponse) bool) *livekit.SignalResponse {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer ws.SetReadDeadline(time.Time{})
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		var resp livekit.SignalResponse
		if err := proto.Unmarshal(data, &resp); err != nil {
			t.Fatalf("waiting for %s: a frame that is not a SignalResponse: %v", what, err)
		}
		if want(&resp) {
			return &resp
		}
	}
}

func sendSignal(t *testing.T, ws *websocket.Conn, req *livekit.SignalRequest) error {
	t.Helper()
	data, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return ws.WriteMessage(websocket.BinaryMessage, data)
}

func TestTrackBeyondTheLimitRefusedAsLiveKitRefusesIt(t *testing.T) {
	ts := startServer(t, limited(signaling.Limits{TracksPerParticipant: 2}))
	refused := refusals(t, ts)
	alice, _, bobRx := aliceHeardByBob(t, ts)

	ws := rawJoin(t, ts, "r", "mallory")
	addTrack := func(cid string) {
		t.Helper()
		if err := sendSignal(t, ws, &livekit.SignalRequest{Message: &livekit.SignalRequest_AddTrack{AddTrack: &livekit.AddTrackRequest{
			Cid: cid, Name: "mic " + cid, Type: livekit.TrackType_AUDIO, Source: livekit.TrackSource_MICROPHONE,
		}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, cid := range []string{"a", "b"} { // announced, media not yet sent: they count
		addTrack(cid)
		next(t, ws, "track published", func(r *livekit.SignalResponse) bool { return r.GetTrackPublished().GetCid() == cid })
	}
	addTrack("c")
	rr := next(t, ws, "the refusal", func(r *livekit.SignalResponse) bool { return r.GetRequestResponse() != nil }).GetRequestResponse()
	if rr.GetReason() != livekit.RequestResponse_LIMIT_EXCEEDED || rr.GetAddTrack().GetCid() != "c" || !strings.Contains(rr.GetMessage(), "at most 2 tracks") {
		t.Errorf("refusal %v, want LIMIT_EXCEEDED for the AddTrack of c saying the limit", rr)
	}
	if n := refused("tracks_per_participant"); n != 1 {
		t.Errorf("tracks_per_participant refusals = %v, want 1", n)
	}
	// Refused a track, mallory keeps its session: its requests are still answered.
	if err := sendSignal(t, ws, &livekit.SignalRequest{Message: &livekit.SignalRequest_Ping{Ping: 42}}); err != nil {
		t.Fatal(err)
	}
	next(t, ws, "the pong", func(r *livekit.SignalResponse) bool { _, ok := r.Message.(*livekit.SignalResponse_Pong); return ok })
	stillHeard(t, alice, bobRx)
}

func TestMessageFloodAndOversizedFrameCloseOnlyThatSession(t *testing.T) {
	ts := startServer(t, func(c *signaling.Config) { c.ResumeWindow = time.Minute },
		limited(signaling.Limits{MessagesPerSecond: 20, MessageBurst: 100, FrameBytes: 4096}))
	refused := refusals(t, ts)
	alice, _, bobRx := aliceHeardByBob(t, ts)
	room, _ := ts.Signaling.Room("r")

	t.Run("flood", func(t *testing.T) {
		ws := rawJoin(t, ts, "r", "flooder")
		ping, err := proto.Marshal(&livekit.SignalRequest{Message: &livekit.SignalRequest_Ping{Ping: 1}})
		if err != nil {
			t.Fatal(err)
		}
		go func() { // as fast as the socket takes them, until the server closes it
			for range 2000 {
				if ws.WriteMessage(websocket.BinaryMessage, ping) != nil {
					return
				}
			}
		}()
		leave := next(t, ws, "a Leave", func(r *livekit.SignalResponse) bool { return r.GetLeave() != nil }).GetLeave()
		if leave.GetAction() != livekit.LeaveRequest_DISCONNECT || leave.GetReason() != livekit.DisconnectReason_PARTICIPANT_REMOVED {
			t.Errorf("leave %v, want DISCONNECT for PARTICIPANT_REMOVED", leave)
		}
		var ce *websocket.CloseError
		if err := readUntilClose(ws); !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, "signalling message rate exceeded") {
			t.Errorf("socket ended with %v, want a policy-violation close saying the message rate", err)
		}
		signalingtest.Eventually(t, "the flooder is removed", 5*time.Second, func() bool { return participant(room, "flooder") == nil })
		if n := refused("message_rate"); n != 1 {
			t.Errorf("message_rate refusals = %v, want 1", n)
		}
	})
	t.Run("oversized frame", func(t *testing.T) {
		ws := rawJoin(t, ts, "r", "bigmouth")
		if err := ws.WriteMessage(websocket.BinaryMessage, make([]byte, 5000)); err != nil {
			t.Fatal(err)
		}
		var ce *websocket.CloseError
		if err := readUntilClose(ws); !errors.As(err, &ce) {
			t.Errorf("socket ended with %v, want a close frame", err)
		}
		signalingtest.Eventually(t, "the offender is removed", 5*time.Second, func() bool { return participant(room, "bigmouth") == nil })
		if n := refused("frame_size"); n != 1 {
			t.Errorf("frame_size refusals = %v, want 1", n)
		}
	})
	// A client within the limits keeps its session.
	ws := rawJoin(t, ts, "r", "polite")
	for i := range 5 {
		if err := sendSignal(t, ws, &livekit.SignalRequest{Message: &livekit.SignalRequest_Ping{Ping: int64(i + 1)}}); err != nil {
			t.Fatal(err)
		}
		next(t, ws, fmt.Sprintf("pong %d", i+1), func(r *livekit.SignalResponse) bool { return r.GetPong() == int64(i+1) })
	}
	stillHeard(t, alice, bobRx)
	if participant(room, "polite") == nil {
		t.Error("a client within the limits lost its session")
	}
}

func TestAPIRequestsPerTokenRefusedInBothLanguages(t *testing.T) {
	ts := startServer(t, signalingtest.NoMedia, signalingtest.Council(t, t.TempDir()),
		limited(signaling.Limits{APIRequestsPerSecondPerToken: 0.001, APIBurstPerToken: 3}))
	refused := refusals(t, ts)
	alice, bob := ts.Token(t, "r", "alice", auth.RoleMember, 0), ts.Token(t, "r", "bob", auth.RoleMember, 0)
	state := ts.HTTP.URL + "/api/rooms/r/state"
	first, _, _ := get(t, state, "Authorization", "Bearer "+alice)
	if first == http.StatusTooManyRequests {
		t.Fatal("the first request refused")
	}
	for range 2 {
		if status, body, _ := get(t, state, "Authorization", "Bearer "+alice); status != first {
			t.Fatalf("a request within the burst: %d %s, want %d as the first", status, body, first)
		}
	}
	for _, c := range []struct{ lang, want string }{
		{"", "trop de requêtes avec ce jeton : au plus 0.001 par seconde (3 d’affilée)"},
		{"en", "too many requests with this token: at most 0.001 a second (bursts of 3)"},
	} {
		status, body, h := get(t, state, "Authorization", "Bearer "+alice, "Accept-Language", c.lang)
		out := signalingtest.Object([]byte(body))
		reasons, _ := out["reasons"].(map[string]any)
		wait, _ := strconv.Atoi(h.Get("Retry-After"))
		if status != http.StatusTooManyRequests || wait < 1 || !strings.HasPrefix(fmt.Sprint(out["error"]), c.want) || reasons["en"] == nil || reasons["fr"] == nil {
			t.Errorf("over the token's allowance (Accept-Language %q): %d %s Retry-After %q, want 429 saying %q with both reasons and a wait",
				c.lang, status, body, h.Get("Retry-After"), c.want)
		}
	}
	if n := refused("api_per_token"); n != 2 {
		t.Errorf("api_per_token refusals = %v, want 2", n)
	}
	// Another token in the same room is answered as before.
	if status, body, _ := get(t, state, "Authorization", "Bearer "+bob); status != first {
		t.Errorf("bob's request while alice is refused: %d %s, want %d", status, body, first)
	}

	// A route's own limit (invitation links: 10 at once per address) is counted under its name.
	for i := range 11 {
		status, _, _ := get(t, ts.HTTP.URL+"/api/invitations/no-such-code")
		if (status == http.StatusTooManyRequests) != (i == 10) {
			t.Fatalf("invitation request %d: %d", i+1, status)
		}
	}
	if n := refused("invitation_links"); n != 1 {
		t.Errorf("invitation_links refusals = %v, want 1", n)
	}
}
