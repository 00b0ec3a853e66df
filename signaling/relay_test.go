package signaling_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
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

// lookups is how many times room was located.
func (f *fakePlacement) lookups(room string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.locates[room]
}

func (f *fakePlacement) set(room, url string) {
	f.mu.Lock()
	f.where[room] = url
	f.mu.Unlock()
}

// twoNodes starts node A and node B, each with its own placement table.
func twoNodes(t *testing.T, mutate ...signalingtest.Option) (a, b *signalingtest.Server, pa, pb *fakePlacement) {
	t.Helper()
	pa, pb = newFakePlacement(), newFakePlacement()
	a = startServer(t, append([]signalingtest.Option{func(c *signaling.Config) { c.Placement = pa; c.NodeID = "A" }}, mutate...)...)
	b = startServer(t, append([]signalingtest.Option{func(c *signaling.Config) { c.Placement = pb; c.NodeID = "B" }}, mutate...)...)
	pa.self, pb.self = a.HTTP.URL, b.HTTP.URL
	return a, b, pa, pb
}

func TestClientsEnteringThroughAnotherNodeReachTheRoomsNode(t *testing.T) {
	a, b, pa, pb := twoNodes(t)
	pa.set("council", b.HTTP.URL)
	pb.set("council", b.HTTP.URL)

	alice := join(t, a, "council", "alice", nil) // through A
	pub := publish(t, alice, false)
	rx, cb := signalingtest.NewReceiver()
	join(t, b, "council", "bob", cb) // directly on B
	signalingtest.Eventually(t, "bob hears alice, who entered through A", 15*time.Second, func() bool {
		return rx.Audio() >= 25 && rx.Matched(pub) >= 25
	})
	if _, ok := a.Signaling.Room("council"); ok {
		t.Fatal("A opened the room although B holds it")
	}
	r, ok := b.Signaling.Room("council")
	if !ok || len(r.Participants()) != 2 {
		t.Fatalf("B should hold council with both participants")
	}
	// RoomService through A: about the room (relayed) and listing (asked of B).
	rs, ctx := signalingtest.RoomService(t, a.HTTP.URL, a.AdminToken(t, "council"))
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
	pa.set("council", b.HTTP.URL)
	req, _ := http.NewRequest("GET", a.HTTP.URL+"/rtc/validate", nil)
	req.Header.Set("Authorization", "Bearer "+a.Token(t, "council", "alice", auth.RoleMember, 0))
	req.Header.Set(signaling.RelayHeader, "C")
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
	pa.set("council", b.HTTP.URL)
	status, _ := a.Call(t, "GET", "/rtc/validate?access_token=not-a-token", "", nil)
	if seen := pb.lookups("council"); status != 401 || seen != 0 {
		t.Fatalf("bad token through A: %d, and B was asked %d times; want 401 from A alone", status, seen)
	}
}

func TestRelayWaitsWhileTheRoomsNodeIsUnreachable(t *testing.T) {
	a, _, pa, _ := twoNodes(t, func(c *signaling.Config) { c.RelayWait = 10 * time.Second })
	dead := "http://127.0.0.1:1" // nothing listens on port 1: connection refused
	pa.set("council", dead)
	pa.mu.Lock()
	pa.moveAfter["council"] = 3 // the room comes here on the 4th look-up
	pa.mu.Unlock()
	status, _ := a.Call(t, "GET", "/rtc/validate", a.Token(t, "council", "alice", auth.RoleMember, 0), nil)
	if n := pa.lookups("council"); status != 200 || n != 4 {
		t.Fatalf("validate while the room's node is unreachable: %d after %d look-ups, want 200 after 4", status, n)
	}
}

func TestRelayGivesUpWithAReason(t *testing.T) {
	a, _, pa, _ := twoNodes(t, func(c *signaling.Config) { c.RelayWait = 300 * time.Millisecond })
	pa.set("council", "http://127.0.0.1:1")
	status, out := call(t, a, "GET", "/rtc/validate?access_token="+a.Token(t, "council", "alice", auth.RoleMember, 0), "", nil)
	if status != 503 || !strings.Contains(out["raw"].(string), "no reachable node") {
		t.Fatalf("a room whose node never comes back: %d %v, want 503 saying so", status, out)
	}
}

func TestEvictedRoomsClientsRejoinAndClosedRoomsAreReleased(t *testing.T) {
	p := newFakePlacement()
	ts := startServer(t, func(c *signaling.Config) { c.Placement = p })
	p.self = ts.HTTP.URL
	alice := join(t, ts, "council", "alice", lksdk.NewRoomCallback())
	first := alice.LocalParticipant.SID()

	// Another node took the room: this one tells the client to reconnect in full (here the
	// placement sends it back to the same node, so it rejoins as a new participant).
	ts.Signaling.Evict("council")
	signalingtest.Eventually(t, "alice rejoins as a new participant", 15*time.Second, func() bool {
		r, ok := ts.Signaling.Room("council")
		if !ok {
			return false
		}
		ps := r.Participants()
		return len(ps) == 1 && ps[0].Sid != first && ps[0].Identity == "alice"
	})
	rs, ctx := signalingtest.RoomService(t, ts.HTTP.URL, ts.AdminToken(t, "council"))
	if _, err := rs.DeleteRoom(ctx, &livekit.DeleteRoomRequest{Room: "council"}); err != nil {
		t.Fatal(err)
	}
	signalingtest.Eventually(t, "the deleted room is released", 5*time.Second, func() bool {
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

// withJournal gives each server it is applied to a file journal of its own.
func withJournal(t *testing.T) signalingtest.Option {
	return func(c *signaling.Config) { signalingtest.Council(t, t.TempDir())(c) }
}

// The deliberation API and its event stream work through a node that does not hold the room:
// the stream is relayed as it is written, not when it ends.
func TestDeliberationAndEventStreamThroughAnotherNode(t *testing.T) {
	a, b, pa, pb := twoNodes(t, withJournal(t))
	pa.set("cc", b.HTTP.URL)
	pb.set("cc", b.HTTP.URL)
	chair, clerk := openSession(t, a, "cc", "fr-epci-visio") // through A
	if a.Signaling.HasDesk("cc") || !b.Signaling.HasDesk("cc") {
		t.Fatal("the session should live on B only")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.HTTP.URL+"/api/rooms/cc/events", nil)
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
	must(t, a, "POST", "/api/rooms/cc/items", chair, map[string]any{"id": "1", "title": "Budget annexe des eaux"})
	if second := next(); !strings.Contains(second, "Budget annexe des eaux") {
		t.Fatalf("second event %q, want the new item", second)
	}
}

// startProgrammeNode is a node with the public programme (1 s delay, HLS through ffmpeg) and a
// journal, its routes mounted as cmd/hemicycle mounts them.
func startProgrammeNode(t *testing.T, pl *fakePlacement, id string) *signalingtest.Server {
	t.Helper()
	return startServer(t, withJournal(t), func(c *signaling.Config) { c.Placement, c.NodeID = pl, id },
		signalingtest.Programme(signaling.ProgrammeConfig{
			Broadcast: broadcast.Config{Delay: time.Second},
			HLS:       &broadcast.HLSConfig{Dir: t.TempDir(), SegmentSeconds: 1},
		}))
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
	pa.self, pb.self = a.HTTP.URL, b.HTTP.URL
	const room = "council"
	pa.set(room, a.HTTP.URL)
	pb.set(room, a.HTTP.URL)

	chair, clerk := openSession(t, b, room, "generic") // through B, held on A
	anne := signalingtest.Connect(t, a.WS, chair, nil)
	pub := publish(t, anne, true)

	// A viewer token minted through B, used on B: the programme comes from A.
	status, tok := call(t, b, "POST", "/api/rooms/"+room+"/viewer-token", "", nil)
	if status != 200 {
		t.Fatalf("viewer token through B: %d %v", status, tok)
	}
	viewerToken := tok["token"].(string)
	rx, cb := signalingtest.NewReceiver()
	signalingtest.Connect(t, b.WS, viewerToken, cb)
	signalingtest.Eventually(t, "the viewer on B hears the chair through A's programme", 20*time.Second, func() bool {
		return rx.Matched(pub) >= 25 && rx.Video() > 0
	})
	if status, info := call(t, b, "GET", "/api/rooms/"+room+"/programme", "", nil); status != 200 || info["delaySeconds"] != 1.0 {
		t.Errorf("programme info through B: %d %v", status, info)
	}

	// The delayed state and bleep marks stream through B as they are written.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", b.HTTP.URL+"/api/rooms/"+room+"/programme/events?access_token="+viewerToken, nil)
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
	status, out := call(t, b, "POST", "/api/rooms/"+room+"/bleep", chair, map[string]float64{"lastSeconds": 0.5})
	if status != 200 || out["recorded"] != true {
		t.Fatalf("bleep through B: %d %v", status, out)
	}
	rm, ok := a.Signaling.Room(room)
	if !ok || len(rm.Programme().Bleeps()) != 1 {
		t.Fatalf("A should hold the room with the one bleep marked")
	}
	waitEvent("bleep")
	if status, out := call(t, b, "GET", "/api/rooms/"+room+"/bleep", clerk, nil); status != 200 || len(out["bleeps"].([]any)) != 1 {
		t.Errorf("bleeps listed through B: %d %v", status, out)
	}
	if status, out := call(t, b, "GET", "/api/rooms/"+room+"/minutes?format=markdown", clerk, nil); status != 200 || !strings.Contains(out["raw"].(string), "Diffusion publique interrompue de") {
		t.Errorf("minutes through B: %d %v", status, out)
	}

	// HLS through B: the playlist once ffmpeg on A has written it, then a segment it names.
	var playlist string
	signalingtest.Eventually(t, "the HLS playlist through B", 30*time.Second, func() bool {
		status, out := call(t, b, "GET", "/live/"+room+"/"+broadcast.MediaPlaylist, "", nil)
		playlist, _ = out["raw"].(string)
		return status == 200 && strings.Contains(playlist, ".ts")
	})
	var segment string
	for _, line := range strings.Split(playlist, "\n") {
		if strings.HasSuffix(strings.TrimSpace(line), ".ts") {
			segment = strings.TrimSpace(line)
		}
	}
	seg, err := http.Get(b.HTTP.URL + "/live/" + room + "/" + segment)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(seg.Body)
	seg.Body.Close()
	if seg.StatusCode != 200 || seg.Header.Get("Content-Type") != "video/mp2t" || len(data) == 0 || data[0] != 0x47 {
		t.Errorf("segment %s through B: %d %s, %d bytes", segment, seg.StatusCode, seg.Header.Get("Content-Type"), len(data))
	}

	if _, ok := b.Signaling.Room(room); ok {
		t.Error("B opened the room although A holds it")
	}
	// Anonymous requests for a room open nowhere are answered by B, which places nothing.
	for _, path := range []string{"/api/rooms/nowhere/programme", "/live/nowhere/index.m3u8"} {
		if status, _ := call(t, b, "GET", path, "", nil); status != 404 {
			t.Errorf("GET %s through B: %d, want 404", path, status)
		}
	}
	if status, _ := call(t, b, "POST", "/api/rooms/nowhere/viewer-token", "", nil); status != 404 {
		t.Errorf("a viewer token for a room open nowhere: %d, want 404", status)
	}
	if placed := pb.lookups("nowhere"); placed != 0 {
		t.Errorf("B asked to place room \"nowhere\" %d times for anonymous requests", placed)
	}
}
