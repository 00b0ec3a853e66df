package signaling_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/httpapi"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/store"
)

// startCouncilServer is a server with a file journal in a temporary folder.
func startCouncilServer(t *testing.T, mutate ...signalingtest.Option) (*signalingtest.Server, store.Journal) {
	t.Helper()
	ts := startServer(t, append([]signalingtest.Option{signalingtest.Council(t, t.TempDir())}, mutate...)...)
	return ts, ts.Journal
}

func openSession(t *testing.T, ts *signalingtest.Server, room, profile string) (chair, clerk string) {
	t.Helper()
	chair = ts.Token(t, room, "anne", auth.RoleChair, 1)
	clerk = ts.Token(t, room, "greffe", auth.RoleClerk, 0)
	must(t, ts, "POST", "/api/rooms/"+room+"/session", clerk, map[string]any{
		"body":  map[string]string{"name": "Conseil communautaire de Test", "kind": "epci", "profile": profile},
		"title": "Séance du 27 novembre", "chair": 1, "rosterCsv": signalingtest.Roster(5),
	})
	return chair, clerk
}

// TestAPIAuthorisationMatrix calls every route of the table whose token the table checks,
// with every role (seat 3, which does not preside), without a token and with another room's.
func TestAPIAuthorisationMatrix(t *testing.T) {
	ts, _ := startCouncilServer(t)
	var routes []httpapi.Route
	for _, rt := range ts.Signaling.Routes() {
		if rt.Access.ChecksToken() {
			routes = append(routes, rt)
		}
	}
	if len(routes) < 30 {
		t.Fatalf("only %d routes with a token check", len(routes))
	}
	for _, rt := range routes {
		pattern := rt.Key()
		path := strings.NewReplacer("{room}", "matrix", "{body}", "matrix", "{item}", "i1", "{vote}", "v1",
			"{sitting}", "s1", "{seat}", "3", "{hash}", "h").Replace(rt.Pattern)
		// A body's routes take a token naming the body (and no room), the others the room's.
		token := func(role auth.Role, seat int) string { return ts.Token(t, "matrix", "u-"+string(role), role, seat) }
		other := ts.Token(t, "elsewhere", "x", auth.RoleChair, 1)
		if rt.Access.OfBody() {
			token = func(role auth.Role, _ int) string { return ts.BodyToken(t, "matrix", "u-"+string(role), role) }
			other = ts.BodyToken(t, "elsewhere", "x", auth.RoleClerk)
		}
		for _, role := range auth.Roles() {
			tok := token(role, 3)
			status, raw := ts.CallIn(t, "en", rt.Method, path, tok, map[string]any{})
			msg, _ := signalingtest.Object(raw)["error"].(string)
			isAllowed := rt.Access.Admits(role)
			roleRefusal := status == 403 && strings.Contains(msg, "your token's role is "+string(role))
			if isAllowed && roleRefusal {
				t.Errorf("%s as %s: refused for the role, but the role is allowed", pattern, role)
			}
			if !isAllowed && !roleRefusal {
				t.Errorf("%s as %s: got %d %q, want 403 naming the role", pattern, role, status, msg)
			}
		}
		// No token, and a token for another room.
		if status, _ := call(t, ts, rt.Method, path, "", nil); status != 401 {
			t.Errorf("%s without a token: %d, want 401", pattern, status)
		}
		if status, out := call(t, ts, rt.Method, path, other, nil); status != 403 || !strings.Contains(fmt.Sprint(out["error"]), "wrong room") {
			t.Errorf("%s with another room's token: %d %v, want 403 wrong room", pattern, status, out)
		}
	}
}

// councilWatcher records the deliberation states pushed on the data channel.
type councilWatcher struct {
	mu     sync.Mutex
	states []map[string]any
}

func (w *councilWatcher) callback() *lksdk.RoomCallback {
	cb := lksdk.NewRoomCallback()
	cb.OnDataPacket = func(data lksdk.DataPacket, params lksdk.DataReceiveParams) {
		u, ok := data.(*lksdk.UserDataPacket)
		if !ok || u.Topic != signaling.CouncilTopic {
			return
		}
		var msg map[string]any
		if json.Unmarshal(u.Payload, &msg) == nil {
			w.mu.Lock()
			w.states = append(w.states, msg["view"].(map[string]any))
			w.mu.Unlock()
		}
	}
	return cb
}

func (w *councilWatcher) last() map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.states) == 0 {
		return nil
	}
	return w.states[len(w.states)-1]
}

func TestWholeSessionThroughTheAPI(t *testing.T) {
	ts, j := startCouncilServer(t)
	room := "cc-test"
	chair, clerk := openSession(t, ts, room, "fr-epci-visio")

	// Seats 4 and 5 join from home with their member tokens: recorded remote, not yet counted.
	var watch4 councilWatcher
	ts.Join(t, room, "david", auth.RoleMember, 4, watch4.callback())
	ts.Join(t, room, "emma", auth.RoleMember, 5, nil)
	view := must(t, ts, "GET", "/api/rooms/"+room+"/state", chair, nil)
	if p := signalingtest.SeatPresence(view, 4); p != "remote-unverified" {
		t.Fatalf("seat 4 is %q after connecting, want remote-unverified", p)
	}
	// The clerk records two in the chamber and verifies the remote members.
	for _, seat := range []int{1, 2} {
		must(t, ts, "POST", "/api/rooms/"+room+"/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "chamber"})
	}
	status, out := call(t, ts, "POST", "/api/rooms/"+room+"/items", chair, map[string]any{"id": "1", "title": "Budget annexe des eaux"})
	if status != 200 {
		t.Fatalf("add item: %d %v", status, out)
	}
	// 2 of 5 counted: no quorum yet (more than half needed).
	status, out = call(t, ts, "POST", "/api/rooms/"+room+"/items/1/open", chair, nil)
	if status != 409 || !strings.Contains(fmt.Sprint(out["error"]), "quorum") {
		t.Fatalf("open item without quorum: %d %v, want 409 naming the quorum", status, out)
	}
	for _, seat := range []int{4, 5} {
		must(t, ts, "POST", "/api/rooms/"+room+"/attendance/verify", clerk, map[string]any{"seat": seat})
	}
	must(t, ts, "POST", "/api/rooms/"+room+"/items/1/open", chair, nil)
	must(t, ts, "POST", "/api/rooms/"+room+"/votes", chair, map[string]any{"id": "v1", "item": "1", "mode": "roll-call", "question": "Adopter le budget annexe"})

	// Members vote for themselves; the chair records the chamber's ballots.
	emma := ts.Token(t, room, "emma", auth.RoleMember, 5)
	david := ts.Token(t, room, "david", auth.RoleMember, 4)
	must(t, ts, "POST", "/api/rooms/"+room+"/votes/v1/ballots", david, map[string]any{"choice": "for"})
	must(t, ts, "POST", "/api/rooms/"+room+"/votes/v1/ballots", emma, map[string]any{"choice": "against"})
	if status, out := call(t, ts, "POST", "/api/rooms/"+room+"/votes/v1/ballots", emma, map[string]any{"choice": "for"}); status != 409 || !strings.Contains(fmt.Sprint(out["error"]), "already") {
		t.Fatalf("second ballot: %d %v, want 409 already voted", status, out)
	}
	if status, _ := call(t, ts, "POST", "/api/rooms/"+room+"/votes/v1/ballots", emma, map[string]any{"seat": 2, "choice": "against"}); status != 403 {
		t.Fatalf("ballot for another member's seat: %d, want 403", status)
	}
	must(t, ts, "POST", "/api/rooms/"+room+"/votes/v1/ballots", chair, map[string]any{"seat": 1, "choice": "for"})
	must(t, ts, "POST", "/api/rooms/"+room+"/votes/v1/ballots", chair, map[string]any{"seat": 2, "choice": "abstain"})
	view = must(t, ts, "POST", "/api/rooms/"+room+"/votes/v1/close", chair, nil)
	votes := view["votes"].([]any)
	result := votes[0].(map[string]any)["result"].(map[string]any)
	if result["adopted"] != true || result["for"] != 2.0 || result["against"] != 1.0 || result["abstain"] != 1.0 {
		t.Fatalf("result %v, want adopted (2 for, 1 against, 1 abstention)", result)
	}
	// The member's client received the state on the council topic.
	signalingtest.Eventually(t, "the closed vote reaches seat 4's client on topic hemicycle.council", 5*time.Second, func() bool {
		v := watch4.last()
		return v != nil && len(v["votes"].([]any)) == 1 && v["votes"].([]any)[0].(map[string]any)["result"] != nil
	})

	// Minutes name each voter per choice.
	req, _ := http.NewRequest("GET", ts.HTTP.URL+"/api/rooms/"+room+"/minutes?format=md", nil)
	req.Header.Set("Authorization", "Bearer "+clerk)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"Anne Maire", "David Elu", "Emma Vote", "Bruno Adjoint"} {
		if !bytes.Contains(md, []byte(name)) {
			t.Errorf("minutes do not name %s:\n%s", name, md)
		}
	}
	// The journal verifies.
	entries, err := j.Read(t.Context(), room, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Verify(entries); err != nil {
		t.Fatalf("journal does not verify: %v", err)
	}
}

func TestSecondConnectionReplacesFirstAndTheLeaveIsADeparture(t *testing.T) {
	ts, _ := startCouncilServer(t, func(c *signaling.Config) {
		c.ResumeWindow = 200 * time.Millisecond
		c.DepartureGrace = 300 * time.Millisecond
	})
	room := "grace"
	chair, _ := openSession(t, ts, room, "fr-epci-visio")
	first := ts.Join(t, room, "david-laptop", auth.RoleMember, 4, nil)
	second := ts.Join(t, room, "david-phone", auth.RoleMember, 4, nil)
	signalingtest.Eventually(t, "the first connection of seat 4 is replaced", 5*time.Second, func() bool {
		return first.ConnectionState() == lksdk.ConnectionStateDisconnected
	})
	r, _ := ts.Signaling.Room(room)
	if n := len(r.Participants()); n != 1 {
		t.Fatalf("%d participants for one seat", n)
	}
	view := must(t, ts, "GET", "/api/rooms/"+room+"/state", chair, nil)
	if p := signalingtest.SeatPresence(view, 4); p != "remote-unverified" {
		t.Fatalf("seat 4 is %q with one live connection, want remote-unverified", p)
	}
	second.Disconnect()
	signalingtest.Eventually(t, "seat 4 recorded as departed when its last connection leaves", 5*time.Second, func() bool {
		return signalingtest.SeatPresence(must(t, ts, "GET", "/api/rooms/"+room+"/state", chair, nil), 4) == "absent"
	})
}

func TestFloorControlMutesMicrophonesOnTheServer(t *testing.T) {
	ts, _ := startCouncilServer(t)
	room := "floor"
	chair, clerk := openSession(t, ts, room, "fr-epci-visio")
	// Seat 4 speaks from home; seat 3 listens.
	speaker := ts.Join(t, room, "david", auth.RoleMember, 4, nil)
	pub := publish(t, speaker, false)
	rx, cb := signalingtest.NewReceiver()
	ts.Join(t, room, "chloe", auth.RoleMember, 3, cb)
	must(t, ts, "POST", "/api/rooms/"+room+"/attendance/verify", clerk, map[string]any{"seat": 4})
	signalingtest.Eventually(t, "seat 4's audio flows", 15*time.Second, func() bool { return rx.Audio() > 20 })

	must(t, ts, "POST", "/api/rooms/"+room+"/floor/control", chair, map[string]any{"enabled": true})
	signalingtest.Eventually(t, "seat 4's microphone is muted by the server", 5*time.Second, func() bool { return pub.AudioPub.IsMuted() && rx.Muted("mic") })
	time.Sleep(300 * time.Millisecond)
	before := rx.Audio()
	// Unmuting without the floor is refused: the client is told to stay muted, nothing flows.
	pub.AudioPub.SetMuted(false)
	time.Sleep(700 * time.Millisecond)
	if got := rx.Audio() - before; got > 0 {
		t.Errorf("%d audio packets forwarded from a member without the floor", got)
	}
	signalingtest.Eventually(t, "the refused unmute is undone at the client", 5*time.Second, pub.AudioPub.IsMuted)

	// With the floor, the member may speak.
	must(t, ts, "POST", "/api/rooms/"+room+"/floor/grant", chair, map[string]any{"seat": 4})
	pub.AudioPub.SetMuted(false)
	signalingtest.Eventually(t, "audio flows once the floor is given", 5*time.Second, func() bool { return rx.Audio() > before+20 })
	// Withdrawing the floor closes the microphone again.
	must(t, ts, "POST", "/api/rooms/"+room+"/floor/end", chair, nil)
	signalingtest.Eventually(t, "the microphone is closed when the floor is withdrawn", 5*time.Second, func() bool { return pub.AudioPub.IsMuted() && rx.Muted("mic") })
}

func TestEventStreamPushesState(t *testing.T) {
	ts, _ := startCouncilServer(t)
	room := "sse"
	chair, clerk := openSession(t, ts, room, "generic")
	viewer := ts.Token(t, room, "public", auth.RoleViewer, 0)
	resp, err := http.Get(ts.HTTP.URL + "/api/rooms/" + room + "/events?access_token=" + viewer)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	must(t, ts, "POST", "/api/rooms/"+room+"/attendance/arrival", clerk, map[string]any{"seat": 2, "place": "chamber"})
	_ = chair
	deadline := time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended")
			}
			if strings.HasPrefix(l, "data: ") && strings.Contains(l, `"presence":"chamber"`) {
				return
			}
		case <-deadline:
			t.Fatal("no state with seat 2 in the chamber on the event stream")
		}
	}
}

func TestRestoredSessionRecordsRemoteMembersWhoDoNotComeBack(t *testing.T) {
	withJournal := signalingtest.Council(t, t.TempDir()) // one journal, for both servers
	first := startServer(t, withJournal)
	room := "restore"
	chair, clerk := openSession(t, first, room, "fr-epci-visio")
	member := first.Join(t, room, "david", auth.RoleMember, 4, nil)
	must(t, first, "POST", "/api/rooms/"+room+"/attendance/verify", clerk, map[string]any{"seat": 4})
	// The node stops (as a node that dies would): nothing is recorded by it.
	member.Disconnect()
	first.Signaling.Close()

	// Another server takes the room over from the same journal: seat 4 never comes back.
	second := startServer(t, withJournal, func(c *signaling.Config) { c.DepartureGrace = 300 * time.Millisecond })
	if p := signalingtest.SeatPresence(must(t, second, "GET", "/api/rooms/"+room+"/state", chair, nil), 4); p != "remote" {
		t.Fatalf("restored seat 4 is %q, want remote (as recorded)", p)
	}
	signalingtest.Eventually(t, "the absent remote member recorded as departed after the grace", 5*time.Second, func() bool {
		return signalingtest.SeatPresence(must(t, second, "GET", "/api/rooms/"+room+"/state", chair, nil), 4) == "absent"
	})
}
