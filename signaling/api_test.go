package signaling

import (
	"bufio"
	"bytes"
	"context"
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
	"github.com/ingeco/hemicycle/configs/profiles"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/httpapi"
	"github.com/ingeco/hemicycle/store"
)

func loadProfile(name string) (*council.Profile, error) {
	data, err := profiles.Read(name)
	if err != nil {
		return nil, err
	}
	return council.ParseProfile(data)
}

// startCouncilServer is a server with a file journal in a temporary folder.
func startCouncilServer(t *testing.T, mutate ...func(*Config)) (*testServer, *store.FileJournal) {
	t.Helper()
	j, err := store.OpenFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	ts := startServer(t, append([]func(*Config){func(c *Config) {
		c.Journal = j
		c.Profiles = loadProfile
	}}, mutate...)...)
	return ts, j
}

// seatToken mints a token with a council role and seat.
func (ts *testServer) seatToken(t *testing.T, room, identity string, role auth.Role, seat int) string {
	t.Helper()
	tok, err := auth.Issue(auth.TokenOptions{
		Key: testKey, Secret: testSecret, Identity: identity, Name: identity, Room: room, TTL: time.Hour,
		Video: auth.GrantsForRole(role, room), Council: &auth.CouncilGrant{Role: role, Seat: seat},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call sends an API request and decodes the JSON answer.
func (ts *testServer) call(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, ts.http.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req = req.WithContext(ctx)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return resp.StatusCode, out // a stream does not end: its status is the answer
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	if len(out) == 0 {
		out["raw"] = string(raw)
	}
	return resp.StatusCode, out
}

// must asserts a 200 answer.
func (ts *testServer) must(t *testing.T, method, path, token string, body any) map[string]any {
	t.Helper()
	status, out := ts.call(t, method, path, token, body)
	if status != 200 {
		t.Fatalf("%s %s: %d %v", method, path, status, out)
	}
	return out
}

const fiveSeats = "seat,name,group,role\n1,Anne Maire,Majorité,maire\n2,Bruno Adjoint,Majorité,adjoint\n3,Chloé Conseil,Opposition,conseillère\n4,David Elu,Majorité,conseiller\n5,Emma Vote,Opposition,conseillère\n"

func openSession(t *testing.T, ts *testServer, room, profile string) (chair, clerk string) {
	t.Helper()
	chair = ts.seatToken(t, room, "anne", auth.RoleChair, 1)
	clerk = ts.seatToken(t, room, "greffe", auth.RoleClerk, 0)
	ts.must(t, "POST", "/api/rooms/"+room+"/session", clerk, map[string]any{
		"body":  map[string]string{"name": "Conseil communautaire de Test", "kind": "epci", "profile": profile},
		"title": "Séance du 27 novembre", "chair": 1, "rosterCsv": fiveSeats,
	})
	return chair, clerk
}

func seatPresence(view map[string]any, seat int) string {
	for _, s := range view["seats"].([]any) {
		m := s.(map[string]any)
		if int(m["seat"].(float64)) == seat {
			return m["presence"].(string)
		}
	}
	return ""
}

// TestAPIAuthorisationMatrix calls every route of the table whose token the table checks,
// with every role (seat 3, which does not preside), without a token and with another room's.
func TestAPIAuthorisationMatrix(t *testing.T) {
	ts, _ := startCouncilServer(t)
	var routes []httpapi.Route
	for _, rt := range ts.srv.Routes() {
		if rt.Access.ChecksToken() {
			routes = append(routes, rt)
		}
	}
	if len(routes) < 30 {
		t.Fatalf("only %d routes with a token check", len(routes))
	}
	for _, rt := range routes {
		pattern := rt.Key()
		path := strings.NewReplacer("{room}", "matrix", "{item}", "i1", "{vote}", "v1").Replace(rt.Pattern)
		for _, role := range auth.Roles() {
			tok := ts.seatToken(t, "matrix", "u-"+string(role), role, 3)
			status, out := ts.call(t, rt.Method, path, tok, map[string]any{})
			msg, _ := out["error"].(string)
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
		if status, _ := ts.call(t, rt.Method, path, "", nil); status != 401 {
			t.Errorf("%s without a token: %d, want 401", pattern, status)
		}
		other := ts.seatToken(t, "elsewhere", "x", auth.RoleChair, 1)
		if status, out := ts.call(t, rt.Method, path, other, nil); status != 403 || !strings.Contains(fmt.Sprint(out["error"]), "wrong room") {
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
		if !ok || u.Topic != CouncilTopic {
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
	connect := func(identity string, seat int, cb *lksdk.RoomCallback) *lksdk.Room {
		r, err := lksdk.ConnectToRoomWithToken(ts.url, ts.seatToken(t, room, identity, auth.RoleMember, seat), cb)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Disconnect)
		return r
	}
	connect("david", 4, watch4.callback())
	connect("emma", 5, nil)
	view := ts.must(t, "GET", "/api/rooms/"+room+"/state", chair, nil)
	if p := seatPresence(view, 4); p != "remote-unverified" {
		t.Fatalf("seat 4 is %q after connecting, want remote-unverified", p)
	}
	// The clerk records two in the chamber and verifies the remote members.
	for _, seat := range []int{1, 2} {
		ts.must(t, "POST", "/api/rooms/"+room+"/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "chamber"})
	}
	status, out := ts.call(t, "POST", "/api/rooms/"+room+"/items", chair, map[string]any{"id": "1", "title": "Budget annexe des eaux"})
	if status != 200 {
		t.Fatalf("add item: %d %v", status, out)
	}
	// 2 of 5 counted: no quorum yet (more than half needed).
	status, out = ts.call(t, "POST", "/api/rooms/"+room+"/items/1/open", chair, nil)
	if status != 409 || !strings.Contains(fmt.Sprint(out["error"]), "quorum") {
		t.Fatalf("open item without quorum: %d %v, want 409 naming the quorum", status, out)
	}
	for _, seat := range []int{4, 5} {
		ts.must(t, "POST", "/api/rooms/"+room+"/attendance/verify", clerk, map[string]any{"seat": seat})
	}
	ts.must(t, "POST", "/api/rooms/"+room+"/items/1/open", chair, nil)
	ts.must(t, "POST", "/api/rooms/"+room+"/votes", chair, map[string]any{"id": "v1", "item": "1", "mode": "roll-call", "question": "Adopter le budget annexe"})

	// Members vote for themselves; the chair records the chamber's ballots.
	emma := ts.seatToken(t, room, "emma", auth.RoleMember, 5)
	david := ts.seatToken(t, room, "david", auth.RoleMember, 4)
	ts.must(t, "POST", "/api/rooms/"+room+"/votes/v1/ballots", david, map[string]any{"choice": "for"})
	ts.must(t, "POST", "/api/rooms/"+room+"/votes/v1/ballots", emma, map[string]any{"choice": "against"})
	if status, out := ts.call(t, "POST", "/api/rooms/"+room+"/votes/v1/ballots", emma, map[string]any{"choice": "for"}); status != 409 || !strings.Contains(fmt.Sprint(out["error"]), "already") {
		t.Fatalf("second ballot: %d %v, want 409 already voted", status, out)
	}
	if status, _ := ts.call(t, "POST", "/api/rooms/"+room+"/votes/v1/ballots", emma, map[string]any{"seat": 2, "choice": "against"}); status != 403 {
		t.Fatalf("ballot for another member's seat: %d, want 403", status)
	}
	ts.must(t, "POST", "/api/rooms/"+room+"/votes/v1/ballots", chair, map[string]any{"seat": 1, "choice": "for"})
	ts.must(t, "POST", "/api/rooms/"+room+"/votes/v1/ballots", chair, map[string]any{"seat": 2, "choice": "abstain"})
	view = ts.must(t, "POST", "/api/rooms/"+room+"/votes/v1/close", chair, nil)
	votes := view["votes"].([]any)
	result := votes[0].(map[string]any)["result"].(map[string]any)
	if result["adopted"] != true || result["for"] != 2.0 || result["against"] != 1.0 || result["abstain"] != 1.0 {
		t.Fatalf("result %v, want adopted (2 for, 1 against, 1 abstention)", result)
	}
	// The member's client received the state on the council topic.
	eventually(t, "the closed vote reaches seat 4's client on topic hemicycle.council", 5*time.Second, func() bool {
		v := watch4.last()
		return v != nil && len(v["votes"].([]any)) == 1 && v["votes"].([]any)[0].(map[string]any)["result"] != nil
	})

	// Minutes name each voter per choice.
	req, _ := http.NewRequest("GET", ts.http.URL+"/api/rooms/"+room+"/minutes?format=md", nil)
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

func TestRemoteMemberDepartsAfterGraceAndSecondConnectionReplacesFirst(t *testing.T) {
	ts, _ := startCouncilServer(t, func(c *Config) {
		c.ResumeWindow = 200 * time.Millisecond
		c.DepartureGrace = 300 * time.Millisecond
	})
	room := "grace"
	chair, _ := openSession(t, ts, room, "fr-epci-visio")
	first, err := lksdk.ConnectToRoomWithToken(ts.url, ts.seatToken(t, room, "david-laptop", auth.RoleMember, 4), lksdk.NewRoomCallback())
	if err != nil {
		t.Fatal(err)
	}
	second, err := lksdk.ConnectToRoomWithToken(ts.url, ts.seatToken(t, room, "david-phone", auth.RoleMember, 4), lksdk.NewRoomCallback())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first connection of seat 4 is replaced", 5*time.Second, func() bool {
		return first.ConnectionState() == lksdk.ConnectionStateDisconnected
	})
	r, _ := ts.srv.Room(room)
	if n := len(r.Participants()); n != 1 {
		t.Fatalf("%d participants for one seat", n)
	}
	view := ts.must(t, "GET", "/api/rooms/"+room+"/state", chair, nil)
	if p := seatPresence(view, 4); p != "remote-unverified" {
		t.Fatalf("seat 4 is %q with one live connection, want remote-unverified", p)
	}
	second.Disconnect()
	eventually(t, "seat 4 recorded as departed after the grace", 5*time.Second, func() bool {
		return seatPresence(ts.must(t, "GET", "/api/rooms/"+room+"/state", chair, nil), 4) == "absent"
	})
}

func TestFloorControlMutesMicrophonesOnTheServer(t *testing.T) {
	ts, _ := startCouncilServer(t)
	room := "floor"
	chair, clerk := openSession(t, ts, room, "fr-epci-visio")
	// Seat 4 speaks from home; seat 3 listens.
	speaker, err := lksdk.ConnectToRoomWithToken(ts.url, ts.seatToken(t, room, "david", auth.RoleMember, 4), lksdk.NewRoomCallback())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(speaker.Disconnect)
	pub := publish(t, speaker, false)
	rx, cb := newReceiver(pub)
	listener, err := lksdk.ConnectToRoomWithToken(ts.url, ts.seatToken(t, room, "chloe", auth.RoleMember, 3), cb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(listener.Disconnect)
	ts.must(t, "POST", "/api/rooms/"+room+"/attendance/verify", clerk, map[string]any{"seat": 4})
	eventually(t, "seat 4's audio flows", 15*time.Second, func() bool { return rx.audioPackets.Load() > 20 })

	ts.must(t, "POST", "/api/rooms/"+room+"/floor/control", chair, map[string]any{"enabled": true})
	eventually(t, "seat 4's microphone is muted by the server", 5*time.Second, func() bool { return pub.audioPub.IsMuted() && rx.isMuted("mic") })
	time.Sleep(300 * time.Millisecond)
	before := rx.audioPackets.Load()
	// Unmuting without the floor is refused: the client is told to stay muted, nothing flows.
	pub.audioPub.SetMuted(false)
	time.Sleep(700 * time.Millisecond)
	if got := rx.audioPackets.Load() - before; got > 0 {
		t.Errorf("%d audio packets forwarded from a member without the floor", got)
	}
	eventually(t, "the refused unmute is undone at the client", 5*time.Second, pub.audioPub.IsMuted)

	// With the floor, the member may speak.
	ts.must(t, "POST", "/api/rooms/"+room+"/floor/grant", chair, map[string]any{"seat": 4})
	pub.audioPub.SetMuted(false)
	eventually(t, "audio flows once the floor is given", 5*time.Second, func() bool { return rx.audioPackets.Load() > before+20 })
	// Withdrawing the floor closes the microphone again.
	ts.must(t, "POST", "/api/rooms/"+room+"/floor/end", chair, nil)
	eventually(t, "the microphone is closed when the floor is withdrawn", 5*time.Second, func() bool { return pub.audioPub.IsMuted() && rx.isMuted("mic") })
}

func TestEventStreamPushesState(t *testing.T) {
	ts, _ := startCouncilServer(t)
	room := "sse"
	chair, clerk := openSession(t, ts, room, "generic")
	viewer := ts.seatToken(t, room, "public", auth.RoleViewer, 0)
	resp, err := http.Get(ts.http.URL + "/api/rooms/" + room + "/events?access_token=" + viewer)
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
	ts.must(t, "POST", "/api/rooms/"+room+"/attendance/arrival", clerk, map[string]any{"seat": 2, "place": "chamber"})
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
	j, err := store.OpenFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	withJournal := func(c *Config) { c.Journal, c.Profiles = j, loadProfile }
	first := startServer(t, withJournal)
	room := "restore"
	chair, clerk := openSession(t, first, room, "fr-epci-visio")
	member, err := lksdk.ConnectToRoomWithToken(first.url, first.seatToken(t, room, "david", auth.RoleMember, 4), lksdk.NewRoomCallback())
	if err != nil {
		t.Fatal(err)
	}
	first.must(t, "POST", "/api/rooms/"+room+"/attendance/verify", clerk, map[string]any{"seat": 4})
	// The node stops (as a node that dies would): nothing is recorded by it.
	member.Disconnect()
	first.srv.Close()

	// Another server takes the room over from the same journal: seat 4 never comes back.
	second := startServer(t, withJournal, func(c *Config) { c.DepartureGrace = 300 * time.Millisecond })
	if p := seatPresence(second.must(t, "GET", "/api/rooms/"+room+"/state", chair, nil), 4); p != "remote" {
		t.Fatalf("restored seat 4 is %q, want remote (as recorded)", p)
	}
	eventually(t, "the absent remote member recorded as departed after the grace", 5*time.Second, func() bool {
		return seatPresence(second.must(t, "GET", "/api/rooms/"+room+"/state", chair, nil), 4) == "absent"
	})
}
