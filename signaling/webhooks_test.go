package signaling_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lkauth "github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lkwebhook "github.com/livekit/protocol/webhook"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/signaling/webhook"
	"github.com/ingeco/hemicycle/test/media"
)

// hookReceiver is a webhook receiver on loopback that checks every request with the
// protocol's own verifier, as a LiveKit application does, and keeps the events it accepts.
type hookReceiver struct {
	t      *testing.T
	url    string
	before func() int // answered before verifying: 0 goes on
	mu     sync.Mutex
	events []*livekit.WebhookEvent
	tries  atomic.Int32
}

func newHookReceiver(t *testing.T, before func() int) *hookReceiver {
	h := &hookReceiver{t: t, before: before}
	keys := lkauth.NewSimpleKeyProvider(signalingtest.TestKeys.Key, signalingtest.TestKeys.Secret)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.tries.Add(1)
		if h.before != nil {
			if status := h.before(); status != 0 {
				w.WriteHeader(status)
				return
			}
		}
		ev, err := lkwebhook.ReceiveWebhookEvent(r, keys)
		if err != nil {
			t.Errorf("webhook refused by the protocol's verifier: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook"
	return h
}

// newHangingReceiver is a receiver that holds every request until free is called (at the
// latest when the test ends, before the receiver's Close, which waits for its requests).
func newHangingReceiver(t *testing.T) (h *hookReceiver, free func()) {
	release := make(chan struct{})
	var once sync.Once
	free = func() { once.Do(func() { close(release) }) }
	h = newHookReceiver(t, func() int { <-release; return 0 })
	t.Cleanup(free)
	return h, free
}

// option configures the server to send its webhooks here, signed with the test key, retrying
// quickly.
func (h *hookReceiver) option() signalingtest.Option {
	return func(c *signaling.Config) {
		c.Webhooks = webhook.Config{URLs: []string{h.url}, APIKey: signalingtest.TestKeys.Key, APISecret: signalingtest.TestKeys.Secret,
			RetryWaitMin: 20 * time.Millisecond, RetryWaitMax: 100 * time.Millisecond, Timeout: 5 * time.Second}
		c.EmptyTimeout = 300 * time.Millisecond
	}
}

func (h *hookReceiver) got() []*livekit.WebhookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// names lists the events received for room, in order, with their participant and track.
func (h *hookReceiver) names(room string) []string {
	var out []string
	for _, ev := range h.got() {
		if ev.GetRoom().GetName() != room {
			continue
		}
		s := ev.Event
		if p := ev.GetParticipant().GetIdentity(); p != "" {
			s += " " + p
		}
		if tr := ev.GetTrack().GetName(); tr != "" {
			s += " " + tr
		}
		out = append(out, s)
	}
	return out
}

// egresses lists the egress events received for room, in order.
func (h *hookReceiver) egresses(room string) []*livekit.WebhookEvent {
	var out []*livekit.WebhookEvent
	for _, ev := range h.got() {
		if ev.GetEgressInfo().GetRoomName() == room {
			out = append(out, ev)
		}
	}
	return out
}

func (h *hookReceiver) waitFor(t *testing.T, room string, want []string) {
	t.Helper()
	h.waitUntil(t, room, want, h.names)
}

// waitForAll is waitFor in any order.
func (h *hookReceiver) waitForAll(t *testing.T, room string, want []string) {
	t.Helper()
	sorted := func(room string) []string { return slices.Sorted(slices.Values(h.names(room))) }
	h.waitUntil(t, room, slices.Sorted(slices.Values(want)), sorted)
}

func (h *hookReceiver) waitUntil(t *testing.T, room string, want []string, names func(string) []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Equal(names(room), want) {
		if time.Now().After(deadline) {
			t.Fatalf("webhooks of room %s: got %q, want %q", room, names(room), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebhooksRoomFlow: real SDK clients join, publish and leave; the receiver verifies each
// POST with the protocol's verifier and sees LiveKit's events in order with the right room,
// participant and track, each with an id and the room's sid.
func TestWebhooksRoomFlow(t *testing.T) {
	h := newHookReceiver(t, nil)
	ts := startServer(t, h.option())
	alice := join(t, ts, "wh", "alice", nil)
	publish(t, alice, false)
	h.waitFor(t, "wh", []string{"room_started", "participant_joined alice", "track_published alice mic"})
	bob := join(t, ts, "wh", "bob", nil)
	h.waitFor(t, "wh", []string{"room_started", "participant_joined alice", "track_published alice mic", "participant_joined bob"})
	alice.Disconnect()
	h.waitFor(t, "wh", []string{"room_started", "participant_joined alice", "track_published alice mic", "participant_joined bob",
		"track_unpublished alice mic", "participant_left alice"})
	bob.Disconnect()
	want := []string{"room_started", "participant_joined alice", "track_published alice mic", "participant_joined bob",
		"track_unpublished alice mic", "participant_left alice", "participant_left bob", "room_finished"}
	h.waitFor(t, "wh", want)
	evs := h.got()
	sid := evs[0].GetRoom().GetSid()
	ids := map[string]bool{}
	for _, ev := range evs {
		if ev.GetRoom().GetSid() != sid || sid == "" {
			t.Errorf("%s: room sid %q, want %q", ev.Event, ev.GetRoom().GetSid(), sid)
		}
		if ev.Id == "" || ids[ev.Id] || ev.CreatedAt == 0 {
			t.Errorf("%s: id %q (repeated: %v), created_at %d", ev.Event, ev.Id, ids[ev.Id], ev.CreatedAt)
		}
		ids[ev.Id] = true
	}
	if tr := evs[2].GetTrack(); tr.GetSid() == "" || tr.GetSid() != evs[4].GetTrack().GetSid() || tr.GetType() != livekit.TrackType_AUDIO {
		t.Errorf("published track %v, unpublished %v: want the same audio track", tr, evs[4].GetTrack())
	}
	if evs[1].GetParticipant().GetSid() == "" || evs[1].GetParticipant().GetSid() != evs[5].GetParticipant().GetSid() {
		t.Errorf("alice joined as %q and left as %q", evs[1].GetParticipant().GetSid(), evs[5].GetParticipant().GetSid())
	}
}

// TestWebhooksRetried: a receiver that fails the first two attempts with 503 gets the event
// on the third.
func TestWebhooksRetried(t *testing.T) {
	var failures atomic.Int32
	h := newHookReceiver(t, func() int {
		if failures.Add(1) <= 2 {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	ts := startServer(t, h.option())
	join(t, ts, "retry", "alice", nil)
	h.waitFor(t, "retry", []string{"room_started", "participant_joined alice"})
	if n := h.tries.Load(); n != 4 {
		t.Errorf("%d requests, want 4 (two refused, then the two events)", n)
	}
}

// TestWebhooksReceiverHanging: while the receiver holds every request, clients still join and
// publish; once it answers, the events arrive.
func TestWebhooksReceiverHanging(t *testing.T) {
	h, free := newHangingReceiver(t)
	// One POST outlasts the whole test: no retry doubles an event.
	ts := startServer(t, h.option(), func(c *signaling.Config) { c.Webhooks.Timeout = time.Minute })
	alice := join(t, ts, "hang", "alice", nil)
	publish(t, alice, false)
	rx, cb := signalingtest.NewReceiver()
	join(t, ts, "hang", "bob", cb)
	signalingtest.Eventually(t, "bob hears alice while the receiver hangs", 15*time.Second, func() bool { return rx.Audio() > 20 })
	if len(h.got()) != 0 {
		t.Fatal("events accepted while the receiver hangs")
	}
	free()
	// Bob may join before alice's media arrives, which publishes her track.
	h.waitForAll(t, "hang", []string{"room_started", "participant_joined alice", "track_published alice mic", "participant_joined bob"})
}

// TestWebhooksSitting: Hemicycle's own events, in the same envelope and signature: the sitting
// opened, the quorum reached, a vote closed with its result, the sitting closed.
func TestWebhooksSitting(t *testing.T) {
	h := newHookReceiver(t, nil)
	ts, _ := startCouncilServer(t, h.option())
	const room = "sitting"
	chair, clerk := openSession(t, ts, room, "fr-epci-visio")
	for _, seat := range []int{1, 2, 3} {
		must(t, ts, "POST", "/api/rooms/"+room+"/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "chamber"})
	}
	must(t, ts, "POST", "/api/rooms/"+room+"/items", chair, map[string]any{"id": "1", "title": "Budget annexe des eaux"})
	must(t, ts, "POST", "/api/rooms/"+room+"/items/1/open", chair, nil)
	must(t, ts, "POST", "/api/rooms/"+room+"/votes", chair, map[string]any{"id": "v1", "item": "1", "mode": "roll-call", "question": "Adopter le budget annexe"})
	for seat, choice := range map[int]string{1: "for", 2: "for", 3: "against"} {
		must(t, ts, "POST", "/api/rooms/"+room+"/votes/v1/ballots", chair, map[string]any{"seat": seat, "choice": choice})
	}
	must(t, ts, "POST", "/api/rooms/"+room+"/votes/v1/close", chair, nil)
	h.waitFor(t, room, []string{"sitting_opened", "quorum_reached", "vote_closed"})
	facts := func(i int) signaling.SittingFacts {
		var f signaling.SittingFacts
		if err := json.Unmarshal([]byte(h.got()[i].GetRoom().GetMetadata()), &f); err != nil {
			t.Fatalf("%s: facts %q: %v", h.got()[i].Event, h.got()[i].GetRoom().GetMetadata(), err)
		}
		return f
	}
	if f := facts(0); f.Sitting == nil || f.Sitting.Title != "Séance du 27 novembre" || f.Quorum.Reached {
		t.Errorf("sitting_opened: %+v", f)
	}
	if f := facts(1); !f.Quorum.Reached || f.Quorum.Counted != 3 {
		t.Errorf("quorum_reached: %+v", f.Quorum)
	}
	if f := facts(2); f.Vote == nil || f.Vote.ID != "v1" || f.Vote.Result == nil || f.Vote.Result.For != 2 || f.Vote.Result.Against != 1 || !f.Vote.Result.Adopted {
		t.Errorf("vote_closed: %+v", f.Vote)
	}
}

// TestWebhooksQueueFull: with the receiver holding its first request and room for one more
// event, the others are dropped while everyone still joins; the drops are counted in the
// metrics and told in the next delivered event's num_dropped.
func TestWebhooksQueueFull(t *testing.T) {
	h, free := newHangingReceiver(t)
	ts := startServer(t, h.option(), func(c *signaling.Config) {
		c.Webhooks.Workers, c.Webhooks.QueueSize, c.Webhooks.Timeout = 1, 1, time.Minute
	})
	metrics := signaling.NewMetrics(ts.Signaling)
	for _, who := range []string{"alice", "bob", "carol"} {
		join(t, ts, "full", who, nil)
	}
	dropped := func() float64 {
		families, err := metrics.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "hemicycle_webhooks_dropped_total" {
				return f.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return -1
	}
	// The server tells the join after the JoinResponse the client returns on.
	signalingtest.Eventually(t, "bob's and carol's joins dropped", 5*time.Second, func() bool { return dropped() == 2 })
	time.Sleep(100 * time.Millisecond) // no third drop comes
	if d := dropped(); d != 2 {
		t.Fatalf("%v events dropped, want 2", d)
	}
	free()
	h.waitFor(t, "full", []string{"room_started", "participant_joined alice"})
	if n := h.got()[1].NumDropped; n != 2 {
		t.Errorf("num_dropped %d in the event after the drops, want 2", n)
	}
}

// TestWebhooksRecording: a room's recording, by a real ffmpeg that fails once it has written
// some of its file, is told as LiveKit tells an egress, every POST verified by the protocol:
// egress_started, egress_updated active, then starting again with ffmpeg's error and one
// retry, active again, ending as the server shuts down, and egress_ended complete with both
// files, whose sizes are those on disk, delivered before the server is gone.
func TestWebhooksRecording(t *testing.T) {
	media.NeedFFmpeg(t)
	h := newHookReceiver(t, nil)
	ffmpeg, fail := media.FFmpegFirstRun(t, media.FailWhenTold)
	dir := t.TempDir()
	ts := startServer(t, h.option(), signalingtest.Programme(signaling.ProgrammeConfig{
		Broadcast: broadcast.Config{Delay: 200 * time.Millisecond},
		Recording: &broadcast.RecordingConfig{Dir: dir, FFmpeg: ffmpeg, CopyVideo: true},
	}))
	const room = "rec"
	// The chair's camera and microphone on air: the slate and silence alone fill a file slowly.
	publish(t, ts.Join(t, room, "alice", auth.RoleChair, 0, nil), true)
	written := func(what, pattern string) {
		signalingtest.Eventually(t, what+" written", 40*time.Second, func() bool {
			files, _ := filepath.Glob(filepath.Join(dir, pattern))
			if len(files) != 1 {
				return false
			}
			info, err := os.Stat(files[0])
			return err == nil && info.Size() > 0
		})
	}
	written("the first file", room+"-????????-??????.webm")
	fail()
	signalingtest.Eventually(t, "the recording active again", 40*time.Second, func() bool {
		evs := h.egresses(room)
		return len(evs) > 0 && evs[len(evs)-1].GetEgressInfo().GetStatus() == livekit.EgressStatus_EGRESS_ACTIVE &&
			evs[len(evs)-1].GetEgressInfo().GetRetryCount() == 1
	})
	written("the second file", room+"-*-part2.webm")
	// The server shuts down: the recording's end is told before it is gone.
	ts.Signaling.Close()

	evs := h.egresses(room)
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Event+" "+ev.GetEgressInfo().GetStatus().String())
	}
	want := []string{"egress_started EGRESS_STARTING", "egress_updated EGRESS_ACTIVE", "egress_updated EGRESS_STARTING",
		"egress_updated EGRESS_ACTIVE", "egress_updated EGRESS_ENDING", "egress_ended EGRESS_COMPLETE"}
	if !slices.Equal(got, want) {
		t.Fatalf("egress events %q, want %q", got, want)
	}
	sid := ""
	for _, ev := range h.got() {
		if ev.Event == lkwebhook.EventRoomStarted && ev.GetRoom().GetName() == room {
			sid = ev.GetRoom().GetSid()
		}
	}
	for _, ev := range evs {
		if info := ev.GetEgressInfo(); !strings.HasPrefix(info.GetEgressId(), "EG_") || info.GetEgressId() != evs[0].GetEgressInfo().GetEgressId() || info.GetRoomId() != sid || sid == "" {
			t.Errorf("%s: egress %q of room %q, want the first event's egress of room %q", ev.Event, info.GetEgressId(), info.GetRoomId(), sid)
		}
	}
	if info := evs[2].GetEgressInfo(); !strings.Contains(info.GetError(), "ffmpeg exited") || info.GetRetryCount() != 1 {
		t.Errorf("restarting: error %q, retry %d; want ffmpeg's failure and one retry", info.GetError(), info.GetRetryCount())
	}
	if info := evs[3].GetEgressInfo(); info.GetError() != "" {
		t.Errorf("active again with the error %q", info.GetError())
	}
	end := evs[len(evs)-1].GetEgressInfo()
	if end.GetError() != "" || end.GetStartedAt() == 0 || end.GetEndedAt() < end.GetStartedAt() {
		t.Errorf("ended: error %q, from %d to %d", end.GetError(), end.GetStartedAt(), end.GetEndedAt())
	}
	if len(end.GetFileResults()) != 2 {
		t.Fatalf("files %v, want two: before and after ffmpeg's failure", end.GetFileResults())
	}
	for i, f := range end.GetFileResults() {
		info, err := os.Stat(f.GetLocation())
		if err != nil {
			t.Fatal(err)
		}
		if f.GetSize() <= 0 || f.GetSize() != info.Size() || f.GetFilename() != filepath.Base(f.GetLocation()) || filepath.Dir(f.GetLocation()) != dir {
			t.Errorf("file %d: %s (%s), %d bytes; on disk %d bytes", i+1, f.GetFilename(), f.GetLocation(), f.GetSize(), info.Size())
		}
		// The duration is measured on the monotonic clock, the times are read on the wall clock.
		if d := time.Duration(f.GetEndedAt() - f.GetStartedAt() - f.GetDuration()); f.GetDuration() <= 0 || d.Abs() > time.Millisecond {
			t.Errorf("file %d: from %d to %d lasting %d ns", i+1, f.GetStartedAt(), f.GetEndedAt(), f.GetDuration())
		}
	}
}

// TestWebhooksRTMPKeyHidden: an RTMP push that a real ffmpeg cannot deliver (nothing listens)
// is told as an egress whose stream has failed, with ffmpeg's error and the retry; neither the
// URL told nor the error holds the stream key. When the room closes the push ends, finished.
func TestWebhooksRTMPKeyHidden(t *testing.T) {
	media.NeedFFmpeg(t)
	h := newHookReceiver(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	const key = "sk7Hq2secret"
	ts := startServer(t, h.option(), signalingtest.Programme(signaling.ProgrammeConfig{
		Broadcast: broadcast.Config{Delay: 200 * time.Millisecond},
		RTMP:      &broadcast.RTMPConfig{URL: fmt.Sprintf("rtmp://127.0.0.1:%d/live/{room}-%s", port, key)},
	}))
	const room = "push"
	alice := join(t, ts, room, "alice", nil)
	signalingtest.Eventually(t, "the push's first failure told", 30*time.Second, func() bool {
		for _, ev := range h.egresses(room) {
			if ev.GetEgressInfo().GetRetryCount() == 1 {
				return true
			}
		}
		return false
	})
	alice.Disconnect()
	signalingtest.Eventually(t, "egress_ended", 30*time.Second, func() bool {
		evs := h.egresses(room)
		return len(evs) > 0 && evs[len(evs)-1].Event == lkwebhook.EventEgressEnded
	})
	evs := h.egresses(room)
	wantURL := fmt.Sprintf("rtmp://127.0.0.1:%d/live/…", port)
	for _, ev := range evs {
		body, err := protojson.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(body), key) {
			t.Errorf("%s tells the stream key: %s", ev.Event, body)
		}
		if s := ev.GetEgressInfo().GetStreamResults(); len(s) != 1 || s[0].GetUrl() != wantURL {
			t.Errorf("%s: streams %v, want one to %s", ev.Event, s, wantURL)
		}
	}
	if first := evs[0]; first.Event != lkwebhook.EventEgressStarted || first.GetEgressInfo().GetStatus() != livekit.EgressStatus_EGRESS_STARTING {
		t.Errorf("first egress event %s %s, want egress_started EGRESS_STARTING", first.Event, first.GetEgressInfo().GetStatus())
	}
	for _, ev := range evs {
		if info := ev.GetEgressInfo(); info.GetRetryCount() == 1 {
			s := info.GetStreamResults()[0]
			if ev.Event != lkwebhook.EventEgressUpdated || info.GetStatus() != livekit.EgressStatus_EGRESS_STARTING || info.GetError() == "" ||
				s.GetStatus() != livekit.StreamInfo_FAILED || s.GetError() != info.GetError() || s.GetRetries() != 1 {
				t.Errorf("the first failure told as %s %s (error %q), stream %v", ev.Event, info.GetStatus(), info.GetError(), s)
			}
			break
		}
	}
	end := evs[len(evs)-1].GetEgressInfo()
	if end.GetStatus() != livekit.EgressStatus_EGRESS_COMPLETE || end.GetStreamResults()[0].GetStatus() != livekit.StreamInfo_FINISHED || end.GetEndedAt() == 0 {
		t.Errorf("ended %s, stream %v", end.GetStatus(), end.GetStreamResults())
	}
}

// getMinutes reads the room's Markdown minutes as token, with the digest the server gives.
func getMinutes(t *testing.T, ts *signalingtest.Server, room, token string) (text []byte, digest string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", ts.HTTP.URL+"/api/rooms/"+room+"/minutes", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, err = io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET minutes: %d %s %v", resp.StatusCode, text, err)
	}
	return text, resp.Header.Get("Minutes-Digest")
}

// TestWebhooksMinutesApproved: the clerk approves the closed sitting's minutes by the digest
// of the text read (the SHA-256 of the Markdown served, given in Minutes-Digest); the approval
// is journalled and told as minutes_approved with the sitting, the signer and the digest.
// Before the close, with a digest of another text, twice, or by a member, it is refused and
// nothing is told.
func TestWebhooksMinutesApproved(t *testing.T) {
	h := newHookReceiver(t, nil)
	ts, j := startCouncilServer(t, h.option())
	const room = "pv"
	chair, clerk := openSession(t, ts, room, "fr-epci-visio")
	approve := "/api/rooms/" + room + "/minutes/approve"
	text, digest := getMinutes(t, ts, room, clerk)
	if sum := sha256.Sum256(text); digest != hex.EncodeToString(sum[:]) {
		t.Fatalf("Minutes-Digest %q is not the SHA-256 of the text served", digest)
	}
	if status, out := call(t, ts, "POST", approve, clerk, map[string]string{"digest": digest}); status != 409 {
		t.Errorf("approval of an open sitting's minutes: %d %v, want 409", status, out)
	}
	must(t, ts, "POST", "/api/rooms/"+room+"/session/close", chair, nil)
	text, digest = getMinutes(t, ts, room, clerk) // the close is in them
	other := sha256.Sum256([]byte("un autre texte"))
	if status, out := call(t, ts, "POST", approve, clerk, map[string]string{"digest": hex.EncodeToString(other[:])}); status != 409 {
		t.Errorf("approval of another text: %d %v, want 409", status, out)
	}
	member := ts.Token(t, room, "bruno", auth.RoleMember, 3)
	if status, out := call(t, ts, "POST", approve, member, map[string]string{"digest": digest}); status != 403 {
		t.Errorf("approval by a member: %d %v, want 403", status, out)
	}
	out := must(t, ts, "POST", approve, clerk, map[string]string{"digest": digest})
	if out["digest"] != digest || out["lang"] != "fr" {
		t.Errorf("approval answered %v", out)
	}
	if status, out := call(t, ts, "POST", approve, clerk, map[string]string{"digest": digest}); status != 409 {
		t.Errorf("the same approval twice: %d %v, want 409", status, out)
	}
	if again, _ := getMinutes(t, ts, room, clerk); !bytes.Equal(again, text) {
		t.Error("the approval changed the minutes' text")
	}

	h.waitFor(t, room, []string{"sitting_opened", "sitting_closed", "minutes_approved"})
	var f signaling.SittingFacts
	if err := json.Unmarshal([]byte(h.got()[2].GetRoom().GetMetadata()), &f); err != nil {
		t.Fatal(err)
	}
	if a := f.Approval; a == nil || a.Digest != digest || a.Lang != "fr" || a.By.Identity != "greffe" || a.By.Role != council.RoleClerk || a.At.IsZero() {
		t.Errorf("minutes_approved tells the approval %+v", f.Approval)
	}
	if f.Sitting == nil || f.Sitting.Title != "Séance du 27 novembre" {
		t.Errorf("minutes_approved tells the sitting %+v", f.Sitting)
	}
	entries, err := j.Read(t.Context(), room, 1)
	if err != nil {
		t.Fatal(err)
	}
	if last := entries[len(entries)-1]; last.Type != "minutes.approved" || !strings.Contains(string(last.Data), digest) {
		t.Errorf("last journal entry %s %s, want the approval", last.Type, last.Data)
	}
}
