package signaling_test

import (
	"fmt"
	"maps"
	"slices"
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
)

// transcription is a LiveKit Transcription data packet as a client sends it through the SDK.
type transcription struct{ *livekit.Transcription }

func (tr transcription) ToProto() *livekit.DataPacket {
	return &livekit.DataPacket{Value: &livekit.DataPacket_Transcription{Transcription: tr.Transcription}}
}

// line is one segment sent alone, attributed to speaker ("" leaves it to the server).
func line(speaker, id, text string, final bool) transcription {
	return transcription{&livekit.Transcription{
		TranscribedParticipantIdentity: speaker,
		Segments:                       []*livekit.TranscriptionSegment{{Id: id, Text: text, Final: final, Language: "fr"}},
	}}
}

func sendCaption(t *testing.T, from *lksdk.Room, tr transcription) {
	t.Helper()
	if err := from.LocalParticipant.PublishDataPacket(tr, lksdk.WithDataPublishReliable(true)); err != nil {
		t.Fatalf("send transcription: %v", err)
	}
}

// caption is what the Go SDK's OnTranscriptionReceived handed a listener.
type caption struct {
	speaker, track string // identity of the participant, sid of the publication ("" for none)
	id, text       string
	final          bool
}

// captionsHeard collects the transcriptions a real Go SDK client receives.
func captionsHeard() (func() []caption, *lksdk.RoomCallback) {
	var mu sync.Mutex
	var got []caption
	cb := lksdk.NewRoomCallback()
	cb.OnTranscriptionReceived = func(segs []*lksdk.TranscriptionSegment, p lksdk.Participant, pub lksdk.TrackPublication) {
		track := ""
		if rp, ok := pub.(*lksdk.RemoteTrackPublication); ok && rp != nil {
			track = rp.SID()
		}
		mu.Lock()
		defer mu.Unlock()
		for _, s := range segs {
			got = append(got, caption{speaker: p.Identity(), track: track, id: s.ID, text: s.Text, final: s.Final})
		}
	}
	return func() []caption {
		mu.Lock()
		defer mu.Unlock()
		return append([]caption(nil), got...)
	}, cb
}

// sendUntilHeard sends tr again every 200 ms until its first segment arrives, and returns all
// the captions heard then: the SDK drops what is sent before its data channel is open.
func sendUntilHeard(t *testing.T, from *lksdk.Room, heard func() []caption, tr transcription) []caption {
	t.Helper()
	id := tr.Segments[0].Id
	arrived := func() bool { return slices.ContainsFunc(heard(), func(c caption) bool { return c.id == id }) }
	signalingtest.Eventually(t, "caption "+id+" arrives", 10*time.Second, func() bool {
		if !arrived() {
			sendCaption(t, from, tr)
			time.Sleep(200 * time.Millisecond)
		}
		return arrived()
	})
	return heard()
}

// without leaves out the captions whose id starts with prefix.
func without(prefix string, cs []caption) []caption {
	return slices.DeleteFunc(cs, func(c caption) bool { return strings.HasPrefix(c.id, prefix) })
}

// waitCaptions waits until n captions have arrived after the first from, leaving out those
// whose id starts with skip (resent ones may arrive late), and returns them.
func waitCaptions(t *testing.T, heard func() []caption, from int, skip string, n int) []caption {
	t.Helper()
	fresh := func() []caption { return without(skip, heard()[from:]) }
	signalingtest.Eventually(t, fmt.Sprintf("%d captions arrive", n), 10*time.Second, func() bool { return len(fresh()) >= n })
	return fresh()
}

// A captioner types without naming anyone: the line goes out as a LiveKit transcription of the
// seat presiding, then, once the chair gives the floor, of the floor holder's microphone, with
// its interim and final versions.
func TestCaptionsGoOutAsTranscriptionsOfWhoeverSpeaks(t *testing.T) {
	ts, _ := startCouncilServer(t)
	room := "captions"
	chair, clerk := openSession(t, ts, room, "fr-epci-visio")
	ts.Join(t, room, "anne", auth.RoleChair, 1, nil)
	david := ts.Join(t, room, "david", auth.RoleMember, 4, nil)
	mic := publish(t, david, false)
	heard, cb := captionsHeard()
	listener := ts.Join(t, room, "chloe", auth.RoleMember, 3, cb)
	var mu sync.Mutex
	var streams []caption // the lk.transcription text streams, read whole
	err := listener.RegisterTextStreamHandler("lk.transcription", func(rd *lksdk.TextStreamReader, sender string) {
		text, a := rd.ReadAll(), rd.Info.Attributes
		mu.Lock()
		defer mu.Unlock()
		streams = append(streams, caption{speaker: sender, track: a["lk.transcribed_track_id"], id: a["lk.segment_id"], text: text, final: a["lk.transcription_final"] == "true"})
	})
	if err != nil {
		t.Fatal(err)
	}
	captioner := ts.Join(t, room, "velo", auth.RoleCaptioner, 0, nil)
	signalingtest.Eventually(t, "the listener sees david's microphone", 10*time.Second, func() bool {
		p := listener.GetParticipantByIdentity("david")
		return p != nil && p.GetTrackPublication(livekit.TrackSource_MICROPHONE) != nil
	})

	got := sendUntilHeard(t, captioner, heard, line("", "l1", "La séance est ouverte", true))
	for _, c := range got {
		if want := (caption{speaker: "anne", id: "l1", text: "La séance est ouverte", final: true}); c != want {
			t.Fatalf("with nobody on the floor: got %+v, want %+v (the seat presiding, who publishes no microphone)", c, want)
		}
	}
	first := len(got)

	must(t, ts, "POST", "/api/rooms/"+room+"/attendance/verify", clerk, map[string]any{"seat": 4})
	must(t, ts, "POST", "/api/rooms/"+room+"/floor/grant", chair, map[string]any{"seat": 4})
	sendCaption(t, captioner, line("", "l2", "Merci monsieur", false))
	sendCaption(t, captioner, line("", "l2", "Merci monsieur le président", true))
	got = waitCaptions(t, heard, first, "l1", 2)
	track := mic.AudioPub.SID()
	want := []caption{
		{speaker: "david", track: track, id: "l2", text: "Merci monsieur"},
		{speaker: "david", track: track, id: "l2", text: "Merci monsieur le président", final: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("with seat 4 on the floor: got %+v, want %+v", got, want)
	}
	// The same lines as text streams, for front ends that read those (components-react).
	signalingtest.Eventually(t, "both versions of l2 arrive as text streams", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(without("l1", slices.Clone(streams))) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	got = without("l1", streams)
	// Each stream is read in its own goroutine: the interim one may be read last.
	slices.SortFunc(got, func(a, b caption) int { return strings.Compare(a.text, b.text) })
	if !slices.Equal(got, want) {
		t.Errorf("text streams: got %+v, want %+v", got, want)
	}
}

// Only a captioner may caption someone else, only someone in the room, only on a track they
// publish, and only in well-formed segments. Each refused packet is sent before an accepted
// one on the same reliable channel, so that it would have arrived first.
func TestTranscriptionsAreRelayedOnlyWhenTheSenderMayCaptionThatSpeaker(t *testing.T) {
	ts := startServer(t)
	room := "r"
	david := ts.Join(t, room, "david", auth.RoleMember, 4, nil)
	mic := publish(t, david, false)
	chloe := ts.Join(t, room, "chloe", auth.RoleMember, 3, nil)
	captioner := ts.Join(t, room, "velo", auth.RoleCaptioner, 0, nil)
	heard, cb := captionsHeard()
	listener := ts.Join(t, room, "ecoute", auth.RoleViewer, 0, cb)
	signalingtest.Eventually(t, "the listener sees david's microphone", 10*time.Second, func() bool {
		p := listener.GetParticipantByIdentity("david")
		return p != nil && p.GetTrackPublication(livekit.TrackSource_MICROPHONE) != nil
	})

	// Both senders' data channels open first.
	sendUntilHeard(t, chloe, heard, line("", "warm-chloe", "chloe is here", true))
	before := len(sendUntilHeard(t, captioner, heard, line("david", "warm-velo", "the captioner is here", true)))

	sendCaption(t, chloe, line("david", "forged", "a member puts words in david's mouth", true))
	sendCaption(t, captioner, line("nobody", "absent", "a speaker who is not in the room", true))
	wrongTrack := line("david", "wrong-track", "on a track david does not publish", true)
	wrongTrack.TrackId = "TR_notdavids"
	sendCaption(t, captioner, wrongTrack)
	sendCaption(t, captioner, line("david", "", "a segment without an id", true))
	sendCaption(t, captioner, transcription{&livekit.Transcription{TranscribedParticipantIdentity: "david"}})
	sendCaption(t, captioner, line("", "no-sitting", "no floor holder and no sitting, and no speaker named", true))
	sendCaption(t, chloe, line("", "own", "chloe captions herself", true))
	sendCaption(t, captioner, line("david", "named", "the captioner names david", true))

	// The two senders' channels are not ordered with each other.
	got := waitCaptions(t, heard, before, "warm-", 2)
	want := []caption{
		{speaker: "chloe", id: "own", text: "chloe captions herself", final: true},
		{speaker: "david", track: mic.AudioPub.SID(), id: "named", text: "the captioner names david", final: true},
	}
	if len(got) != len(want) || !slices.Contains(got, want[0]) || !slices.Contains(got, want[1]) {
		t.Fatalf("relayed %+v, want only %+v", got, want)
	}
}

// A captioner's page sends its lines over HTTP (browsers cannot publish a Transcription packet):
// the answer names whom the line was attributed to, or why it was refused, in both languages,
// and the listeners receive the same LiveKit transcription as from a data packet.
func TestCaptionerPostsCaptionsThatArriveAsTranscriptions(t *testing.T) {
	ts := startServer(t)
	room := "r"
	david := ts.Join(t, room, "david", auth.RoleMember, 4, nil)
	mic := publish(t, david, false)
	heard, cb := captionsHeard()
	listener := ts.Join(t, room, "ecoute", auth.RoleViewer, 0, cb)
	signalingtest.Eventually(t, "the listener sees david's microphone", 10*time.Second, func() bool {
		p := listener.GetParticipantByIdentity("david")
		return p != nil && p.GetTrackPublication(livekit.TrackSource_MICROPHONE) != nil
	})
	velo := ts.Token(t, room, "velo", auth.RoleCaptioner, 0)
	path := "/api/rooms/" + room + "/captions"
	post := func(speaker, id, text string, final bool) (int, map[string]any) {
		return call(t, ts, "POST", path, velo, map[string]any{"speaker": speaker, "segments": []map[string]any{{"id": id, "text": text, "final": final}}})
	}

	// The listener's data channel opens some time after it joined.
	signalingtest.Eventually(t, "a first caption arrives", 10*time.Second, func() bool {
		if status, out := post("david", "warm", "warming up", true); status != 200 || out["speaker"] != "david" || out["track"] != mic.AudioPub.SID() {
			t.Fatalf("naming david: %d %v, want 200 with david and his microphone", status, out)
		}
		time.Sleep(100 * time.Millisecond)
		return len(heard()) > 0
	})
	before := len(heard())
	for _, c := range []struct {
		speaker, id string
		status      int
		reason      string
	}{
		{"", "no-sitting", 409, "nobody has the floor"},
		{"nobody", "absent", 404, "not connected"},
		{"david", "", 400, "has no id"},
	} {
		status, out := post(c.speaker, c.id, "refused", true)
		reasons, _ := out["reasons"].(map[string]any)
		if status != c.status || !strings.Contains(fmt.Sprint(reasons["en"]), c.reason) || reasons["fr"] == "" || reasons["fr"] == nil {
			t.Errorf("speaker %q, segment %q: %d %v, want %d %q in English and a French reason", c.speaker, c.id, status, out, c.status, c.reason)
		}
	}
	post("david", "l1", "Je propose", false)
	post("david", "l1", "Je propose un amendement", true)
	post("david", "l1", "Je propose deux amendements", true) // the captioner corrects the line
	got := waitCaptions(t, heard, before, "warm", 3)
	track := mic.AudioPub.SID()
	want := []caption{
		{speaker: "david", track: track, id: "l1", text: "Je propose"},
		{speaker: "david", track: track, id: "l1", text: "Je propose un amendement", final: true},
		{speaker: "david", track: track, id: "l1", text: "Je propose deux amendements", final: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("heard %+v, want %+v (nothing refused, in order)", got, want)
	}
	if status, _ := call(t, ts, "POST", path, velo, "not an object"); status != 400 {
		t.Errorf("a body that is not a caption: %d, want 400", status)
	}
}

// streamsHeard collects the final lk.transcription text streams a Go SDK client reads, with the
// time each arrived (a viewer of the programme sees no speaker, so no Transcription event).
func streamsHeard(t *testing.T, r *lksdk.Room) func() map[string]time.Time {
	var mu sync.Mutex
	got := map[string]time.Time{}
	err := r.RegisterTextStreamHandler("lk.transcription", func(rd *lksdk.TextStreamReader, _ string) {
		text := rd.ReadAll()
		at := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if _, seen := got[text]; !seen && rd.Info.Attributes["lk.transcription_final"] == "true" {
			got[text] = at
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() map[string]time.Time {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(got)
	}
}

// The public reads the captions with the programme: no sooner than its delay, and nothing the
// chair bleeps. The room reads them at once.
func TestThePublicReadsCaptionsWithTheProgrammeAndNotWhatIsBleeped(t *testing.T) {
	const delay = time.Second
	ts := startServer(t, signalingtest.Programme(signaling.ProgrammeConfig{Broadcast: broadcast.Config{Delay: delay}}))
	room := "r"
	david := ts.Join(t, room, "david", auth.RoleMember, 4, nil)
	publish(t, david, false)
	inRoom := streamsHeard(t, ts.Join(t, room, "chloe", auth.RoleMember, 3, nil))
	public := streamsHeard(t, ts.Join(t, room, "public", auth.RoleViewer, 0, nil))
	velo := ts.Token(t, room, "velo", auth.RoleCaptioner, 0)
	chair := ts.Token(t, room, "anne", auth.RoleChair, 1)
	post := func(text string) time.Time {
		t.Helper()
		sent := time.Now()
		status, out := call(t, ts, "POST", "/api/rooms/"+room+"/captions", velo, map[string]any{"speaker": "david", "segments": []map[string]any{{"id": text, "text": text, "final": true}}})
		if status != 200 {
			t.Fatalf("caption %q: %d %v", text, status, out)
		}
		return sent
	}
	// Both listeners' data channels open some time after they joined.
	signalingtest.Eventually(t, "a first caption reaches the room and the public", 15*time.Second, func() bool {
		post(fmt.Sprintf("warm %d", time.Now().UnixNano()))
		time.Sleep(delay + 200*time.Millisecond)
		return len(inRoom()) > 0 && len(public()) > 0
	})

	sent := post("La séance est publique")
	signalingtest.Eventually(t, "the public reads the line", 10*time.Second, func() bool { return !public()["La séance est publique"].IsZero() })
	roomAt, publicAt := inRoom()["La séance est publique"], public()["La séance est publique"]
	if roomAt.IsZero() || publicAt.Sub(sent) < delay || !roomAt.Before(publicAt) {
		t.Errorf("sent at %v: the room read it at %v, the public at %v; want the room first and the public no sooner than %v after",
			sent.Format(time.StampMilli), roomAt.Format(time.StampMilli), publicAt.Format(time.StampMilli), delay)
	}

	must(t, ts, "POST", "/api/rooms/"+room+"/bleep", chair, map[string]bool{"on": true})
	post("Un nom qui ne doit pas sortir")
	must(t, ts, "POST", "/api/rooms/"+room+"/bleep", chair, map[string]bool{"on": false})
	post("La séance reprend")
	// The public gets the held lines in order: once the last is there, the bleeped one is past.
	signalingtest.Eventually(t, "the public reads the line after the bleep", 10*time.Second, func() bool { return !public()["La séance reprend"].IsZero() })
	if _, leaked := public()["Un nom qui ne doit pas sortir"]; leaked {
		t.Error("the public read a caption sent while the chair bleeped")
	}
	if _, ok := inRoom()["Un nom qui ne doit pas sortir"]; !ok {
		t.Error("the room did not read the caption sent during the bleep; only the public's is bleeped")
	}
}
