package signaling

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/twitchtv/twirp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/sfu"
	"github.com/ingeco/hemicycle/store"
	"github.com/ingeco/hemicycle/test/sse"
)

// fakePlacement places rooms from a table: a room at the node's own URL, or absent, is local.
type fakePlacement struct {
	mu       sync.Mutex
	self     string
	where    map[string]string
	locates  map[string]int
	released []string
	// moveAfter, when set, places the room here after that many locates (its node "died").
	moveAfter map[string]int
}

func newFakePlacement() *fakePlacement {
	return &fakePlacement{where: map[string]string{}, locates: map[string]int{}, moveAfter: map[string]int{}}
}

func (f *fakePlacement) Locate(_ context.Context, room string) (bool, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.locates[room]++
	if n, ok := f.moveAfter[room]; ok && f.locates[room] > n {
		f.where[room] = f.self
	}
	u, ok := f.where[room]
	if !ok || u == f.self {
		return true, f.self, nil
	}
	return false, u, nil
}

func (f *fakePlacement) RoomsElsewhere(context.Context) (map[string][]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]string{}
	for room, u := range f.where {
		if u != f.self {
			out[u] = append(out[u], room)
		}
	}
	return out, nil
}

func (f *fakePlacement) Release(_ context.Context, room string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, room)
	return nil
}

func (f *fakePlacement) set(room, url string) {
	f.mu.Lock()
	f.where[room] = url
	f.mu.Unlock()
}

// twoNodes starts node A and node B, each with its own placement table.
func twoNodes(t *testing.T, mutate ...func(*Config)) (a, b *testServer, pa, pb *fakePlacement) {
	t.Helper()
	pa, pb = newFakePlacement(), newFakePlacement()
	a = startServer(t, append([]func(*Config){func(c *Config) { c.Placement = pa; c.NodeID = "A" }}, mutate...)...)
	b = startServer(t, append([]func(*Config){func(c *Config) { c.Placement = pb; c.NodeID = "B" }}, mutate...)...)
	pa.self, pb.self = a.http.URL, b.http.URL
	return a, b, pa, pb
}

func adminClient(t *testing.T, ts *testServer, room string) (livekit.RoomService, context.Context) {
	t.Helper()
	tok, err := auth.Issue(auth.TokenOptions{Key: testKey, Secret: testSecret, Identity: "admin", TTL: time.Hour,
		Video: auth.VideoGrant{RoomCreate: true, RoomList: true, RoomAdmin: room != "", Room: room}})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok)
	ctx, err := twirp.WithHTTPRequestHeaders(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	return livekit.NewRoomServiceProtobufClient(ts.http.URL, http.DefaultClient), ctx
}

func TestClientsEnteringThroughAnotherNodeReachTheRoomsNode(t *testing.T) {
	a, b, pa, pb := twoNodes(t)
	pa.set("council", b.http.URL)
	pb.set("council", b.http.URL)

	alice := a.join(t, "council", "alice", nil) // through A
	pub := publish(t, alice, false)
	rx, cb := newReceiver(pub)
	b.join(t, "council", "bob", cb) // directly on B
	eventually(t, "bob hears alice, who entered through A", 15*time.Second, func() bool {
		return rx.audioPackets.Load() >= 25 && rx.opusMatched.Load() >= 25
	})
	if _, ok := a.srv.Room("council"); ok {
		t.Fatal("A opened the room although B holds it")
	}
	r, ok := b.srv.Room("council")
	if !ok || len(r.Participants()) != 2 {
		t.Fatalf("B should hold council with both participants")
	}
	// RoomService through A: about the room (relayed) and listing (asked of B).
	rs, ctx := adminClient(t, a, "council")
	ps, err := rs.ListParticipants(ctx, &livekit.ListParticipantsRequest{Room: "council"})
	if err != nil || len(ps.Participants) != 2 {
		t.Fatalf("ListParticipants through A: %v %v", ps, err)
	}
	list, err := rs.ListRooms(ctx, &livekit.ListRoomsRequest{})
	if err != nil || len(list.Rooms) != 1 || list.Rooms[0].Name != "council" || list.Rooms[0].NumParticipants != 2 {
		t.Fatalf("ListRooms through A: %v %v", list, err)
	}
}

func TestRelayedRequestIsNeverRelayedAgain(t *testing.T) {
	a, b, pa, _ := twoNodes(t)
	pa.set("council", b.http.URL)
	req, _ := http.NewRequest("GET", a.http.URL+"/rtc/validate", nil)
	req.Header.Set("Authorization", "Bearer "+a.token(t, "council", "alice", auth.RoleMember))
	req.Header.Set(RelayHeader, "C")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("a relayed request for a room held elsewhere: %d, want 421", resp.StatusCode)
	}
}

func TestEntryNodeChecksTheTokenBeforeRelaying(t *testing.T) {
	a, b, pa, pb := twoNodes(t)
	pa.set("council", b.http.URL)
	resp, err := http.Get(a.http.URL + "/rtc/validate?access_token=not-a-token")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pb.mu.Lock()
	seen := pb.locates["council"]
	pb.mu.Unlock()
	if resp.StatusCode != 401 || seen != 0 {
		t.Fatalf("bad token through A: %d, and B was asked %d times; want 401 from A alone", resp.StatusCode, seen)
	}
}

func TestRelayWaitsWhileTheRoomsNodeIsUnreachable(t *testing.T) {
	a, _, pa, _ := twoNodes(t, func(c *Config) { c.RelayWait = 10 * time.Second })
	dead := "http://127.0.0.1:1" // nothing listens on port 1: connection refused
	pa.set("council", dead)
	pa.mu.Lock()
	pa.moveAfter["council"] = 3 // the room comes here on the 4th look-up
	pa.mu.Unlock()
	req, _ := http.NewRequest("GET", a.http.URL+"/rtc/validate", nil)
	req.Header.Set("Authorization", "Bearer "+a.token(t, "council", "alice", auth.RoleMember))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pa.mu.Lock()
	n := pa.locates["council"]
	pa.mu.Unlock()
	if resp.StatusCode != 200 || n != 4 {
		t.Fatalf("validate while the room's node is unreachable: %d after %d look-ups, want 200 after 4", resp.StatusCode, n)
	}
}

func TestRelayGivesUpWithAReason(t *testing.T) {
	a, _, pa, _ := twoNodes(t, func(c *Config) { c.RelayWait = 300 * time.Millisecond })
	pa.set("council", "http://127.0.0.1:1")
	status, out := a.call(t, "GET", "/rtc/validate?access_token="+a.token(t, "council", "alice", auth.RoleMember), "", nil)
	if status != 503 || !strings.Contains(out["raw"].(string), "no reachable node") {
		t.Fatalf("a room whose node never comes back: %d %v, want 503 saying so", status, out)
	}
}

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
	if got := twirpRoom("DeleteRoom", "application/protobuf", []byte{0xff, 0xff}); got != "" {
		t.Errorf("an undecodable body names room %q", got)
	}
}

func TestEvictedRoomsClientsRejoinAndClosedRoomsAreReleased(t *testing.T) {
	p := newFakePlacement()
	ts := startServer(t, func(c *Config) { c.Placement = p })
	p.self = ts.http.URL
	alice := ts.join(t, "council", "alice", lksdk.NewRoomCallback())
	first := alice.LocalParticipant.SID()

	// Another node took the room: this one tells the client to reconnect in full (here the
	// placement sends it back to the same node, so it rejoins as a new participant).
	ts.srv.Evict("council")
	eventually(t, "alice rejoins as a new participant", 15*time.Second, func() bool {
		r, ok := ts.srv.Room("council")
		if !ok {
			return false
		}
		ps := r.Participants()
		return len(ps) == 1 && ps[0].Sid != first && ps[0].Identity == "alice"
	})
	rs, ctx := adminClient(t, ts, "council")
	if _, err := rs.DeleteRoom(ctx, &livekit.DeleteRoomRequest{Room: "council"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted room is released", 5*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		n := 0
		for _, r := range p.released {
			if r == "council" {
				n++
			}
		}
		return n >= 2 // once when evicted, once when deleted
	})
}

func withJournal(t *testing.T) func(*Config) {
	return func(c *Config) {
		j, err := store.OpenFile(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = j.Close() })
		c.Journal, c.Profiles = j, loadProfile
	}
}

// The deliberation API and its event stream work through a node that does not hold the room:
// the stream is relayed as it is written, not when it ends.
func TestDeliberationAndEventStreamThroughAnotherNode(t *testing.T) {
	a, b, pa, pb := twoNodes(t, withJournal(t))
	pa.set("cc", b.http.URL)
	pb.set("cc", b.http.URL)
	chair, clerk := openSession(t, a, "cc", "fr-epci-visio") // through A
	if a.srv.delib.existingDesk("cc") != nil || b.srv.delib.existingDesk("cc") == nil {
		t.Fatal("the session should live on B only")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.http.URL+"/api/rooms/cc/events", nil)
	req.Header.Set("Authorization", "Bearer "+clerk)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream through A: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	next := func() string {
		for lines.Scan() {
			if l := lines.Text(); strings.HasPrefix(l, "data: ") {
				return l
			}
		}
		t.Fatalf("event stream through A ended: %v", lines.Err())
		return ""
	}
	if first := next(); !strings.Contains(first, `"title"`) {
		t.Fatalf("first event %q", first)
	}
	a.must(t, "POST", "/api/rooms/cc/items", chair, map[string]any{"id": "1", "title": "Budget annexe des eaux"})
	if second := next(); !strings.Contains(second, "Budget annexe des eaux") {
		t.Fatalf("second event %q, want the new item", second)
	}
}

// startProgrammeNode is a node with the public programme (1 s delay, HLS through ffmpeg) and a
// journal, its routes mounted as cmd/hemicycle mounts them.
func startProgrammeNode(t *testing.T, pl *fakePlacement, id string) *testServer {
	t.Helper()
	log := testLogger()
	engine, err := sfu.NewEngine(sfu.Config{UDPAddr: "127.0.0.1:0", Loopback: true, LoopbackOnly: true, Logger: log})
	if err != nil {
		t.Fatalf("media engine: %v", err)
	}
	cfg := Config{
		Verifier: auth.NewVerifier(auth.KeySet{testKey: testSecret}), Media: engine, Logger: log,
		ResumeWindow: 5 * time.Second, Placement: pl, NodeID: id,
		Programme: &ProgrammeConfig{
			Key: testKey, Secret: testSecret, Broadcast: broadcast.Config{Delay: time.Second, Logger: log},
			HLS: &broadcast.HLSConfig{Dir: t.TempDir(), SegmentSeconds: 1},
		},
	}
	withJournal(t)(&cfg)
	srv := NewServer(cfg)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		_ = engine.Close()
	})
	return &testServer{srv: srv, http: hs, url: "ws" + strings.TrimPrefix(hs.URL, "http")}
}

// The public programme of a room held on node A works for a public and a chair reaching node B:
// a viewer token from B brings the delayed programme from A, the delayed state streams through
// B, a bleep posted on B is marked on A and recorded in A's journal and minutes, and the HLS
// playlist and segments come through B. B never opens the room, nor places one nobody holds.
func TestProgrammeThroughAnotherNode(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is not installed (scripts/test installs Debian's ffmpeg): %v", err)
	}
	pa, pb := newFakePlacement(), newFakePlacement()
	a, b := startProgrammeNode(t, pa, "A"), startProgrammeNode(t, pb, "B")
	pa.self, pb.self = a.http.URL, b.http.URL
	const room = "council"
	pa.set(room, a.http.URL)
	pb.set(room, a.http.URL)

	chair, clerk := openSession(t, b, room, "generic") // through B, held on A
	anne, err := lksdk.ConnectToRoomWithToken(a.url, chair, lksdk.NewRoomCallback())
	if err != nil {
		t.Fatalf("the chair joins A: %v", err)
	}
	t.Cleanup(anne.Disconnect)
	pub := publish(t, anne, true)

	// A viewer token minted through B, used on B: the programme comes from A.
	status, tok := b.call(t, "POST", "/api/rooms/"+room+"/viewer-token", "", nil)
	if status != 200 {
		t.Fatalf("viewer token through B: %d %v", status, tok)
	}
	viewerToken := tok["token"].(string)
	rx, cb := newReceiver(pub)
	viewer, err := lksdk.ConnectToRoomWithToken(b.url, viewerToken, cb)
	if err != nil {
		t.Fatalf("the viewer joins through B: %v", err)
	}
	t.Cleanup(viewer.Disconnect)
	eventually(t, "the viewer on B hears the chair through A's programme", 20*time.Second, func() bool {
		return rx.opusMatched.Load() >= 25 && rx.videoPackets.Load() > 0
	})
	if status, info := b.call(t, "GET", "/api/rooms/"+room+"/programme", "", nil); status != 200 || info["delaySeconds"] != 1.0 {
		t.Errorf("programme info through B: %d %v", status, info)
	}

	// The delayed state and bleep marks stream through B as they are written.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", b.http.URL+"/api/rooms/"+room+"/programme/events?access_token="+viewerToken, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("programme events through B: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := sse.Names(ctx, resp.Body)
	waitEvent := func(name string) {
		t.Helper()
		if err := sse.Await(ctx, events, name); err != nil {
			t.Fatalf("programme events through B: %v", err)
		}
	}
	waitEvent("state")

	// The chair bleeps through B; A marks it, journals it and streams its mark.
	status, out := b.call(t, "POST", "/api/rooms/"+room+"/bleep", chair, map[string]float64{"lastSeconds": 0.5})
	if status != 200 || out["recorded"] != true {
		t.Fatalf("bleep through B: %d %v", status, out)
	}
	rm, ok := a.srv.Room(room)
	if !ok || len(rm.Programme().Bleeps()) != 1 {
		t.Fatalf("A should hold the room with the one bleep marked")
	}
	waitEvent("bleep")
	if status, out := b.call(t, "GET", "/api/rooms/"+room+"/bleep", clerk, nil); status != 200 || len(out["bleeps"].([]any)) != 1 {
		t.Errorf("bleeps listed through B: %d %v", status, out)
	}
	if status, out := b.call(t, "GET", "/api/rooms/"+room+"/minutes?format=markdown", clerk, nil); status != 200 || !strings.Contains(out["raw"].(string), "Diffusion publique interrompue de") {
		t.Errorf("minutes through B: %d %v", status, out)
	}

	// HLS through B: the playlist once ffmpeg on A has written it, then a segment it names.
	var playlist string
	eventually(t, "the HLS playlist through B", 30*time.Second, func() bool {
		status, out := b.call(t, "GET", "/live/"+room+"/index.m3u8", "", nil)
		playlist, _ = out["raw"].(string)
		return status == 200 && strings.Contains(playlist, ".ts")
	})
	var segment string
	for _, line := range strings.Split(playlist, "\n") {
		if strings.HasSuffix(strings.TrimSpace(line), ".ts") {
			segment = strings.TrimSpace(line)
		}
	}
	seg, err := http.Get(b.http.URL + "/live/" + room + "/" + segment)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(seg.Body)
	seg.Body.Close()
	if seg.StatusCode != 200 || seg.Header.Get("Content-Type") != "video/mp2t" || len(data) == 0 || data[0] != 0x47 {
		t.Errorf("segment %s through B: %d %s, %d bytes", segment, seg.StatusCode, seg.Header.Get("Content-Type"), len(data))
	}

	if _, ok := b.srv.Room(room); ok {
		t.Error("B opened the room although A holds it")
	}
	// Anonymous requests for a room open nowhere are answered by B, which places nothing.
	for _, path := range []string{"/api/rooms/nowhere/programme", "/live/nowhere/index.m3u8"} {
		if status, _ := b.call(t, "GET", path, "", nil); status != 404 {
			t.Errorf("GET %s through B: %d, want 404", path, status)
		}
	}
	if status, _ := b.call(t, "POST", "/api/rooms/nowhere/viewer-token", "", nil); status != 404 {
		t.Errorf("a viewer token for a room open nowhere: %d, want 404", status)
	}
	pb.mu.Lock()
	placed := pb.locates["nowhere"]
	pb.mu.Unlock()
	if placed != 0 {
		t.Errorf("B asked to place room \"nowhere\" %d times for anonymous requests", placed)
	}
}
