package signaling_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/test/media"
)

// byteCounter is a client's own count of the RTP bytes (header and payload) it wrote and read,
// by SSRC: an interceptor on the SDK's peer connections, next to the wire.
type byteCounter struct {
	mu             sync.Mutex
	sent, received map[uint32]uint64
}

func newByteCounter() *byteCounter {
	return &byteCounter{sent: map[uint32]uint64{}, received: map[uint32]uint64{}}
}

func (c *byteCounter) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &countingInterceptor{c: c}, nil
}

func (c *byteCounter) add(m map[uint32]uint64, ssrc uint32, n int) {
	c.mu.Lock()
	m[ssrc] += uint64(n)
	c.mu.Unlock()
}

func (c *byteCounter) get(m map[uint32]uint64, ssrc uint32) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m[ssrc]
}

type countingInterceptor struct {
	interceptor.NoOp
	c *byteCounter
}

func (i *countingInterceptor) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		n, err := w.Write(h, payload, a)
		if err == nil && n > 0 {
			i.c.add(i.c.sent, info.SSRC, h.MarshalSize()+len(payload)+int(h.PaddingSize))
		}
		return n, err
	})
}

func (i *countingInterceptor) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err == nil {
			i.c.add(i.c.received, info.SSRC, n)
		}
		return n, a, err
	})
}

// reportClient is one SDK client of the report's sitting, with its own counters.
type reportClient struct {
	identity string
	room     *lksdk.Room
	counter  *byteCounter

	mu       sync.Mutex
	sentKind map[*lksdk.LocalTrack]string // audio, video, screenShare
	recvKind map[uint32]string            // by SSRC
}

// joinCounted joins with the byte counter on both peer connections and reads every track it
// is sent, noting each one's kind by its source.
func joinCounted(t *testing.T, ts *signalingtest.Server, room, identity string, role auth.Role, seat int) *reportClient {
	t.Helper()
	c := &reportClient{identity: identity, counter: newByteCounter(), sentKind: map[*lksdk.LocalTrack]string{}, recvKind: map[uint32]string{}}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		c.mu.Lock()
		c.recvKind[uint32(track.SSRC())] = kindOfSource(pub.Source(), track.Kind())
		c.mu.Unlock()
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := track.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	c.room = ts.Join(t, room, identity, role, seat, cb,
		lksdk.WithInterceptors([]interceptor.Factory{c.counter}), lksdk.WithIncludeDefaultInterceptors(true))
	return c
}

func kindOfSource(src livekit.TrackSource, kind webrtc.RTPCodecType) string {
	switch {
	case src == livekit.TrackSource_SCREEN_SHARE || src == livekit.TrackSource_SCREEN_SHARE_AUDIO:
		return "screenShare"
	case kind == webrtc.RTPCodecTypeAudio:
		return "audio"
	}
	return "video"
}

// noteSent records the kind of a track the client publishes (its SSRC is known once bound).
func (c *reportClient) noteSent(t *testing.T, pub *lksdk.LocalTrackPublication, kind string) {
	t.Helper()
	tr, ok := pub.TrackLocal().(*lksdk.LocalTrack)
	if !ok {
		t.Fatalf("%s: not an SDK local track", pub.Name())
	}
	c.mu.Lock()
	c.sentKind[tr] = kind
	c.mu.Unlock()
}

// counted is what the client counted, by direction and kind, its data channels' bytes included.
func (c *reportClient) counted() (up, down map[string]uint64) {
	up, down = map[string]uint64{}, map[string]uint64{}
	c.mu.Lock()
	for tr, k := range c.sentKind {
		up[k] += c.counter.get(c.counter.sent, uint32(tr.SSRC()))
	}
	for ssrc, k := range c.recvKind {
		down[k] += c.counter.get(c.counter.received, ssrc)
	}
	c.mu.Unlock()
	for _, pc := range []*webrtc.PeerConnection{c.room.LocalParticipant.GetPublisherPeerConnection(), c.room.LocalParticipant.GetSubscriberPeerConnection()} {
		if pc == nil {
			continue
		}
		for _, s := range pc.GetStats() {
			if dc, ok := s.(webrtc.DataChannelStats); ok {
				up["data"] += dc.BytesSent
				down["data"] += dc.BytesReceived
			}
		}
	}
	return up, down
}

// TestReportCountsWhatTheClientsCounted holds a sitting with real SDK clients — the chair
// publishing the tone, the test pattern and data packets, a member the tone, an agent the
// pattern as a screen share, a public viewer — and checks that the room's report counts, for
// each participant and each kind, the bytes each client counted itself within 5 %; that its
// CSV has the same figures; that a member may not read it, a room admin may; and that it is
// kept, and served the same, once the room has closed.
func TestReportCountsWhatTheClientsCounted(t *testing.T) {
	quick := func(c *signaling.Config) { c.EmptyTimeout, c.ResumeWindow = time.Second, time.Second }
	ts, _ := startCouncilServer(t, quick)
	const room = "rapport"
	_, clerk := openSession(t, ts, room, "fr-epci-visio")
	path := "/api/rooms/" + room + "/report"

	chair := joinCounted(t, ts, room, "anne", auth.RoleChair, 1)
	member := joinCounted(t, ts, room, "m2", auth.RoleMember, 2)
	agent := joinCounted(t, ts, room, "regie", auth.RoleAgent, 0)
	viewer := joinCounted(t, ts, room, "public-1", auth.RoleViewer, 0)
	clients := []*reportClient{chair, member, agent}

	chairPub := signalingtest.Publish(t, chair.room, signalingtest.Clips{Video: true})
	chair.noteSent(t, chairPub.AudioPub, "audio")
	chair.noteSent(t, chairPub.VideoPub, "video")
	memberPub := signalingtest.Publish(t, member.room, signalingtest.Clips{})
	member.noteSent(t, memberPub.AudioPub, "audio")
	stopScreen := publishScreen(t, agent)

	// The chair sends 100 data packets of 1000 bytes to everyone, over 5 s.
	for i := range 100 {
		payload := bytes.Repeat([]byte{byte(i)}, 1000)
		if err := chair.room.LocalParticipant.PublishDataPacket(lksdk.UserData(payload), lksdk.WithDataPublishReliable(true)); err != nil {
			t.Fatalf("data packet %d: %v", i, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)

	// While the room is open: counted up to now; a member is refused, a room admin is not.
	if status, raw := ts.Call(t, "GET", path, ts.Token(t, room, "m2", auth.RoleMember, 2), nil); status != 403 {
		t.Errorf("a member's token: %d %s, want 403", status, raw)
	}
	admin := ts.Mint(t, auth.TokenOptions{Identity: "ops", Video: auth.VideoGrant{RoomJoin: true, RoomAdmin: true, Room: room}})
	live := getReport(t, ts, path, admin)
	if !live.Open || len(live.Participants) != 3 || live.Viewers.Participants != 1 {
		t.Errorf("live report: open %v, %d participants, %d viewers; want open, 3 and 1", live.Open, len(live.Participants), live.Viewers.Participants)
	}

	// Everything stops; then each client's counters are final.
	chairPub.Stop()
	memberPub.Stop()
	stopScreen()
	time.Sleep(time.Second)
	type counts struct{ up, down map[string]uint64 }
	want := map[string]counts{}
	for _, c := range clients {
		up, down := c.counted()
		want[c.identity] = counts{up, down}
	}
	_, viewerDown := viewer.counted()
	// The member leaves last: its departure changes the sitting's state, which everyone still
	// there would receive after the counters were read.
	for _, c := range []*reportClient{viewer, agent, chair, member} {
		c.room.Disconnect()
	}
	signalingtest.Eventually(t, "the room closes", 15*time.Second, func() bool {
		_, open := ts.Signaling.Room(room)
		return !open
	})

	rep := getReport(t, ts, path, clerk)
	if rep.Open {
		t.Error("the kept report says the room is open")
	}
	t.Logf("the kept report: %s", mustJSON(t, rep))
	got := map[string]signaling.ParticipantReport{}
	for _, p := range rep.Participants {
		got[p.Identity] = p
	}
	kinds := func(b signaling.Bytes) map[string]uint64 {
		return map[string]uint64{"audio": b.Audio, "video": b.Video, "screenShare": b.Screen, "data": b.Data}
	}
	for _, c := range clients {
		p, ok := got[c.identity]
		if !ok {
			t.Errorf("the report has no participant %s", c.identity)
			continue
		}
		for dir, pair := range map[string][2]map[string]uint64{"up": {want[c.identity].up, kinds(p.Up)}, "down": {want[c.identity].down, kinds(p.Down)}} {
			for k, server := range pair[1] {
				client := pair[0][k]
				t.Logf("%s %s %s: the report %d bytes, the client %d", c.identity, dir, k, server, client)
				if !near(server, client) {
					t.Errorf("%s %s %s: the report counts %d bytes, the client %d", c.identity, dir, k, server, client)
				}
			}
		}
	}
	var sumUp, sumDown uint64
	for _, p := range rep.Participants {
		sumUp, sumDown = sumUp+p.Up.Total, sumDown+p.Down.Total
	}
	// The figures the test is about are large enough to mean something.
	for who, k := range map[string]string{"anne": "video", "m2": "audio", "regie": "screenShare"} {
		if n := want[who].up[k]; n < 20_000 {
			t.Errorf("%s sent only %d bytes of %s: the test measured nothing", who, n, k)
		}
	}
	if n := want["m2"].down["data"]; n < 100_000 {
		t.Errorf("the member received %d bytes of data, want at least the chair's 100 000", n)
	}
	if p := got["m2"]; p.Place != "remote" || p.Role != "member" || p.Seat != 2 {
		t.Errorf("the member: place %q, role %q, seat %d; want remote, member, 2", p.Place, p.Role, p.Seat)
	}
	if r := rep.ByRole["chair"]; r == nil || r.Participants != 1 || r.Seconds < 5 {
		t.Errorf("by role, chair: %+v, want 1 participant for at least 5 s", r)
	}
	if pl := rep.ByPlace["remote"]; pl == nil || pl.Seats != 1 {
		t.Errorf("by place, remote: %+v, want the member's seat", pl)
	}
	if rep.Viewers.Participants != 1 || !near(rep.Viewers.Down.Total, viewerDown["data"]) {
		t.Errorf("viewers: %+v; the viewer counted %d bytes of data", rep.Viewers, viewerDown["data"])
	}
	if rep.Totals.Up.Total != sumUp || rep.Totals.Down.Total != sumDown+rep.Viewers.Down.Total || rep.Totals.Bytes != sumUp+sumDown+rep.Viewers.Down.Total {
		t.Errorf("totals up %d down %d; the participants add up to %d and %d (+%d for the viewers)",
			rep.Totals.Up.Total, rep.Totals.Down.Total, sumUp, sumDown, rep.Viewers.Down.Total)
	}
	if rep.Server.CPUSeconds <= 0 || rep.Estimate.KWh <= 0 || rep.Estimate.GCO2e <= 0 || len(rep.Estimate.Factors) != 3 {
		t.Errorf("server %+v, estimate %+v: want CPU time and an estimate from three factors", rep.Server, rep.Estimate)
	}

	// The CSV of the kept report: it parses, and its rows add up to the same totals.
	status, raw := ts.Call(t, "GET", path+"?format=csv", clerk, nil)
	if status != 200 {
		t.Fatalf("CSV: %d %s", status, raw)
	}
	rd := csv.NewReader(bytes.NewReader(raw))
	rd.FieldsPerRecord = -1 // two tables: the participants, then the room's figures
	rows, err := rd.ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, raw)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	var csvUp, csvDown uint64
	var totalRow []string
	for _, r := range rows[1:] {
		switch r[0] {
		case "participant", "viewers":
			csvUp += atou(t, r[col["up_total"]])
			csvDown += atou(t, r[col["down_total"]])
		case "total":
			totalRow = r
		}
	}
	if totalRow == nil || atou(t, totalRow[col["up_total"]]) != rep.Totals.Up.Total || atou(t, totalRow[col["down_total"]]) != rep.Totals.Down.Total ||
		csvUp != rep.Totals.Up.Total || csvDown != rep.Totals.Down.Total {
		t.Errorf("CSV: rows add up to %d up, %d down, its total row %v; the JSON says %d and %d",
			csvUp, csvDown, totalRow, rep.Totals.Up.Total, rep.Totals.Down.Total)
	}
}

// publishScreen publishes the test pattern as the agent's screen share until stopped.
func publishScreen(t *testing.T, c *reportClient) (stop func()) {
	t.Helper()
	frames, err := media.VP8()
	if err != nil {
		t.Fatal(err)
	}
	track, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{
		Name: "screen", Source: livekit.TrackSource_SCREEN_SHARE, VideoWidth: 320, VideoHeight: 240})
	if err != nil {
		t.Fatalf("publish the screen share: %v", err)
	}
	c.noteSent(t, pub, "screenShare")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		signalingtest.Loop(ctx, frames, func(f media.Frame) error {
			return track.WriteSample(pionmedia.Sample{Data: f.Data, Duration: f.Duration}, nil)
		})
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// near says whether the report's count is within 5 % of the client's, or, for the few
// kilobytes of the sitting's state pushed to everyone, within 2 kB besides.
func near(server, client uint64) bool {
	diff := math.Abs(float64(server) - float64(client))
	return diff <= 0.05*float64(client) || (client < 40_000 && diff <= 0.05*float64(client)+2_000)
}

func getReport(t *testing.T, ts *signalingtest.Server, path, token string) *signaling.Report {
	t.Helper()
	status, raw := ts.Call(t, "GET", path, token, nil)
	if status != 200 {
		t.Fatalf("GET %s: %d %s", path, status, raw)
	}
	rep := &signaling.Report{}
	if err := json.Unmarshal(raw, rep); err != nil {
		t.Fatalf("the report is not its JSON: %v\n%s", err, raw)
	}
	return rep
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func atou(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(fmt.Errorf("CSV figure %q: %w", s, err))
	}
	return n
}

// TestReportAddsUpTheRoomsOpenings closes a room twice, the same member joining each time: the
// kept report counts both sessions, and the room's life, once each; a server without records
// says it keeps no report.
func TestReportAddsUpTheRoomsOpenings(t *testing.T) {
	quick := func(c *signaling.Config) { c.EmptyTimeout, c.ResumeWindow = time.Second, time.Second }
	ts, _ := startCouncilServer(t, quick)
	const room = "deux-fois"
	clerk := ts.Token(t, room, "greffe", auth.RoleClerk, 0)
	for range 2 {
		c := ts.Join(t, room, "m3", auth.RoleMember, 3, nil)
		time.Sleep(500 * time.Millisecond)
		c.Disconnect()
		signalingtest.Eventually(t, "the room closes", 15*time.Second, func() bool {
			_, open := ts.Signaling.Room(room)
			return !open
		})
	}
	rep := getReport(t, ts, "/api/rooms/"+room+"/report", clerk)
	if len(rep.Participants) != 1 || rep.Participants[0].Sessions != 2 || rep.Participants[0].Seconds < 1 {
		t.Fatalf("participants %+v: want m3 with 2 sessions of at least 0.5 s", rep.Participants)
	}
	if rep.Seconds < rep.Participants[0].Seconds || rep.Open {
		t.Errorf("the room open %.1f s (open %v), its member %.1f s", rep.Seconds, rep.Open, rep.Participants[0].Seconds)
	}

	bare := startServer(t)
	status, raw := bare.Call(t, "GET", "/api/rooms/"+room+"/report", bare.Token(t, room, "greffe", auth.RoleClerk, 0), nil)
	if msg, _ := signalingtest.Object(raw)["error"].(string); status != 404 || !strings.Contains(msg, "no records store") {
		t.Errorf("a server without records: %d %s, want 404 saying it keeps no reports", status, raw)
	}
}
