package signaling

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/signaling/httpapi"
)

// Captions travel in LiveKit's own transcription format (the Transcription data packet), so
// that livekit-client's TranscriptionReceived, @livekit/components-react and the Go SDK's
// OnTranscriptionReceived show them unchanged. A transcription names the participant whose
// speech it is and that participant's track; the server checks both against the room, since a
// client that shows captions trusts the attribution.

const (
	maxCaptionSegments = 16   // one packet: the line being typed and a few corrected ones
	maxCaptionText     = 2000 // bytes per segment: a long spoken sentence, not a document
)

// captionRefusal says why a transcription was not relayed, in both languages (the captioner's
// page shows it as it is written).
type captionRefusal struct {
	status int
	en, fr string
}

func (e *captionRefusal) Error() string { return e.en }

func refuseCaption(status int, en, fr string) *captionRefusal {
	return &captionRefusal{status: status, en: en, fr: fr}
}

// attributeTranscription checks a transcription that sender (with the token's role) wants
// relayed, and completes whose speech it is. A captioner types what others say: left unnamed,
// the speaker is the floor holder, or the seat presiding when nobody has the floor. Anyone else
// may only transcribe their own speech (a LiveKit agent captioning itself). The track is the
// speaker's microphone unless the sender names another of the speaker's tracks.
func (r *Room) attributeTranscription(sender string, role auth.Role, tr *livekit.Transcription) *captionRefusal {
	if err := checkSegments(tr.GetSegments()); err != nil {
		return err
	}
	speaker, seat := tr.GetTranscribedParticipantIdentity(), 0
	switch {
	case role == auth.RoleCaptioner && speaker == "":
		s := r.srv.delib.sittingOf(r.name)
		if seat = s.floorHolder; seat == 0 {
			seat = s.chair
		}
		if seat == 0 {
			return refuseCaption(http.StatusConflict,
				"nobody has the floor and no sitting presides: name the speaker of this caption",
				"personne n’a la parole et aucune séance n’est présidée : indiquez qui parle")
		}
	case role == auth.RoleCaptioner:
	case speaker == "":
		speaker = sender
	case speaker != sender:
		return refuseCaption(http.StatusForbidden,
			fmt.Sprintf("only a captioner may caption another participant's speech (%q); you may caption your own", speaker),
			fmt.Sprintf("seul le sous-titrage peut sous-titrer la parole d’un autre participant (%q) ; vous pouvez sous-titrer la vôtre", speaker))
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.participants[speaker]
	if seat != 0 {
		p = r.seatedLocked(seat)
	}
	if p == nil {
		who, qui := fmt.Sprintf("%q", speaker), fmt.Sprintf("%q", speaker)
		if seat != 0 {
			who, qui = fmt.Sprintf("seat %d", seat), fmt.Sprintf("le siège %d", seat)
		}
		return refuseCaption(http.StatusNotFound,
			fmt.Sprintf("the speaker of this caption, %s, is not connected to the room", who),
			fmt.Sprintf("la personne qui parle, %s, n’est pas connectée à la salle", qui))
	}
	tr.TranscribedParticipantIdentity = p.identity
	switch track := tr.GetTrackId(); {
	case track == "":
		if mic := p.microphoneLocked(); mic != nil {
			tr.TrackId = mic.info.GetSid()
		}
	case p.tracks[track] == nil:
		return refuseCaption(http.StatusNotFound,
			fmt.Sprintf("%q publishes no track %s", p.identity, track),
			fmt.Sprintf("%q ne publie pas de piste %s", p.identity, track))
	}
	return nil
}

func checkSegments(segs []*livekit.TranscriptionSegment) *captionRefusal {
	if len(segs) == 0 || len(segs) > maxCaptionSegments {
		return refuseCaption(http.StatusBadRequest,
			fmt.Sprintf("a caption has 1 to %d segments, this one %d", maxCaptionSegments, len(segs)),
			fmt.Sprintf("un sous-titre a de 1 à %d segments, celui-ci %d", maxCaptionSegments, len(segs)))
	}
	for i, s := range segs {
		if s.GetId() == "" {
			return refuseCaption(http.StatusBadRequest,
				fmt.Sprintf("segment %d has no id: interim and final versions of a line share one", i+1),
				fmt.Sprintf("le segment %d n’a pas d’identifiant : les versions provisoires et finale d’une ligne en partagent un", i+1))
		}
		if len(s.GetText()) > maxCaptionText {
			return refuseCaption(http.StatusBadRequest,
				fmt.Sprintf("segment %q is %d bytes long, at most %d", s.GetId(), len(s.GetText()), maxCaptionText),
				fmt.Sprintf("le segment %q fait %d octets, %d au plus", s.GetId(), len(s.GetText()), maxCaptionText))
		}
	}
	return nil
}

// seatedLocked is the connected participant sitting in seat (nil: none). r.mu is held.
func (r *Room) seatedLocked(seat int) *Participant {
	for _, p := range r.participants {
		if p.claims.Council != nil && p.claims.Council.Seat == seat {
			return p
		}
	}
	return nil
}

// microphoneLocked is the participant's microphone track (nil: none). r.mu is held.
func (p *Participant) microphoneLocked() *publishedTrack {
	for _, t := range p.tracks {
		if t.info.GetType() == livekit.TrackType_AUDIO && t.info.GetSource() == livekit.TrackSource_MICROPHONE {
			return t
		}
	}
	return nil
}

// Attribute keys and topic of LiveKit's transcription text streams, which
// @livekit/components-react's useTranscriptions and the SDKs' text stream handlers read.
const (
	transcriptionTopic    = "lk.transcription"
	attrSegmentID         = "lk.segment_id"
	attrTranscriptionDone = "lk.transcription_final"
	attrTranscribedTrack  = "lk.transcribed_track_id"
)

// relayTranscription sends an attributed transcription both ways LiveKit front ends read one:
// the Transcription packet, and one lk.transcription text stream per segment, sent in the
// speaker's name as LiveKit's agents do. The room has them at once; the public (viewers of the
// programme) with the programme, as their sound and picture.
func (r *Room) relayTranscription(from *Participant, pkt *livekit.DataPacket, dest []string) {
	packets := transcriptionPackets(pkt, dest)
	if r.programme == nil {
		for _, part := range packets {
			r.relayData(from, part, true, dest)
		}
		return
	}
	room, public := r.captionAudiences(from, dest)
	if len(room) > 0 {
		for _, part := range packets {
			r.relayData(from, part, true, room)
		}
	}
	// HLS and the recording are public too, whether or not a viewer is connected.
	if public || (len(dest) == 0 && r.programme.prog.TakesCaptions()) {
		r.holdForPublic(packets, dest)
	}
}

// transcriptionPackets are the Transcription packet and, for each segment, the header, chunk
// and trailer of its text stream.
func transcriptionPackets(pkt *livekit.DataPacket, dest []string) []*livekit.DataPacket {
	out := []*livekit.DataPacket{pkt}
	tr := pkt.GetTranscription()
	for _, s := range tr.GetSegments() {
		id := newSID("TS_")
		text := []byte(s.GetText())
		size := uint64(len(text))
		attrs := map[string]string{attrSegmentID: s.GetId(), attrTranscriptionDone: fmt.Sprint(s.GetFinal())}
		if tr.GetTrackId() != "" {
			attrs[attrTranscribedTrack] = tr.GetTrackId()
		}
		speaker := tr.GetTranscribedParticipantIdentity()
		for _, part := range []*livekit.DataPacket{
			{Value: &livekit.DataPacket_StreamHeader{StreamHeader: &livekit.DataStream_Header{
				StreamId: id, Timestamp: time.Now().UnixMilli(), Topic: transcriptionTopic, MimeType: "text/plain",
				TotalLength: &size, Attributes: attrs,
				ContentHeader: &livekit.DataStream_Header_TextHeader{TextHeader: &livekit.DataStream_TextHeader{
					OperationType: livekit.DataStream_CREATE}},
			}}},
			{Value: &livekit.DataPacket_StreamChunk{StreamChunk: &livekit.DataStream_Chunk{StreamId: id, Content: text}}},
			{Value: &livekit.DataPacket_StreamTrailer{StreamTrailer: &livekit.DataStream_Trailer{StreamId: id}}},
		} {
			part.ParticipantIdentity, part.DestinationIdentities = speaker, dest
			out = append(out, part)
		}
	}
	return out
}

// captionAudiences lists those in the room a caption is for (dest, or everyone but the sender)
// who are not viewers, and says whether any viewer is.
func (r *Room) captionAudiences(from *Participant, dest []string) (room []string, public bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, p := range r.participants {
		switch {
		case p == from || (len(dest) > 0 && !slices.Contains(dest, id)):
		case isViewer(p):
			public = true
		default:
			room = append(room, id)
		}
	}
	return room, public
}

// heldCaptions are the public's captions waiting for the programme's delay, oldest first.
type heldCaptions struct {
	mu    sync.Mutex
	lines []heldCaption
}

type heldCaption struct {
	at      time.Time // when the server had it
	packets []*livekit.DataPacket
	dest    []string // the identities named by the sender, none for everyone
}

// holdForPublic sends the caption to the viewers once the programme's delay has passed: what
// the public reads then matches what it hears. A caption that reaches the server during a
// closed-door sitting, or at a moment a bleep covers (by the time it would be released: the
// chair may bleep the last seconds after the fact), never reaches the public.
func (r *Room) holdForPublic(packets []*livekit.DataPacket, dest []string) {
	if v := r.srv.delib.sittingOf(r.name).view; v != nil && v.Session.ClosedDoor {
		return
	}
	h := &r.publicCaptions
	h.mu.Lock()
	h.lines = append(h.lines, heldCaption{at: time.Now(), packets: packets, dest: dest})
	h.mu.Unlock()
	time.AfterFunc(r.programme.prog.Delay(), r.releasePublicCaptions)
}

// releasePublicCaptions sends every held caption whose delay has passed, in order: one call
// sends them all, so that two timers firing together cannot swap two versions of a line.
func (r *Room) releasePublicCaptions() {
	h := &r.publicCaptions
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.ctx.Err() != nil {
		h.lines = nil
		return
	}
	prog := r.programme.prog
	due := time.Now().Add(-prog.Delay())
	n := 0
	for n < len(h.lines) && !h.lines[n].at.After(due) {
		n++
	}
	if n == 0 {
		return
	}
	bleeps := prog.Bleeps()
	viewers := r.viewerIdentities()
	for _, line := range h.lines[:n] {
		if slices.ContainsFunc(bleeps, func(b broadcast.Bleep) bool {
			return !line.at.Before(b.From) && (b.To.IsZero() || line.at.Before(b.To))
		}) {
			continue
		}
		to := viewers
		if len(line.dest) > 0 {
			to = slices.DeleteFunc(slices.Clone(viewers), func(id string) bool { return !slices.Contains(line.dest, id) })
		} else {
			r.captionProgramme(prog, line) // what everyone may read goes into HLS and the recording
		}
		if len(to) == 0 {
			continue
		}
		for _, part := range line.packets {
			r.relayData(nil, part, true, to)
		}
	}
	h.lines = slices.Delete(h.lines, 0, n)
}

// captionProgramme gives the programme's outputs the final segments of a released line, under
// the speaker's name (webvtt.go writes them as cues).
func (r *Room) captionProgramme(prog *broadcast.Programme, line heldCaption) {
	tr := line.packets[0].GetTranscription()
	speaker := tr.GetTranscribedParticipantIdentity()
	if p := r.participant(speaker); p != nil && p.name != "" {
		speaker = p.name
	}
	for _, seg := range tr.GetSegments() {
		if !seg.GetFinal() {
			continue
		}
		c := broadcast.Caption{ID: seg.GetId(), Speaker: speaker, Text: seg.GetText(), At: line.at}
		if seg.GetStartTime() > 0 && seg.GetEndTime() >= seg.GetStartTime() { // a speech engine's times, Unix ms
			c.Start, c.End = time.UnixMilli(int64(seg.GetStartTime())), time.UnixMilli(int64(seg.GetEndTime()))
		}
		prog.Caption(c)
	}
}

// viewerIdentities lists the viewers now in the room.
func (r *Room) viewerIdentities() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, v := range r.viewersLocked() {
		out = append(out, v.identity)
	}
	return out
}

// captionRoute lets a captioner send captions over HTTP: livekit-client offers browsers no way to
// publish a Transcription packet, and an answer can say who a line was attributed to, or why it
// was refused, which a data packet cannot. The line goes out exactly as a Transcription packet
// from the captioner would.
func (s *Server) captionRoute() httpapi.Route {
	return httpapi.Route{Method: "POST", Pattern: "/api/rooms/{room}/captions", Access: httpapi.For(auth.RoleCaptioner),
		Relay: httpapi.ToRoom, Handler: s.postCaption}
}

// captionBody is a caption as the captioner's page sends it: the speaker's identity (empty: the
// floor holder), optionally one of their tracks, and the segments, each with the id its interim
// and final versions (and a later correction) share.
type captionBody struct {
	Speaker  string `json:"speaker"`
	Track    string `json:"track"`
	Segments []struct {
		ID       string `json:"id"`
		Text     string `json:"text"`
		Final    bool   `json:"final"`
		Language string `json:"language"`
	} `json:"segments"`
}

func (s *Server) postCaption(w http.ResponseWriter, r *http.Request) {
	var body captionBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 2*maxCaptionSegments*maxCaptionText)).Decode(&body); err != nil {
		httpapi.Refuse(w, r, http.StatusBadRequest,
			fmt.Sprintf(`body must be JSON {"speaker", "segments": [{"id", "text", "final"}]}: %v`, err),
			fmt.Sprintf(`le corps doit être du JSON {"speaker", "segments": [{"id", "text", "final"}]} : %v`, err))
		return
	}
	room, ok := s.Room(r.PathValue("room"))
	if !ok {
		httpapi.Refuse(w, r, http.StatusNotFound, "nobody is connected to this room", "personne n’est connecté à cette salle")
		return
	}
	c := httpapi.CallerOf(r)
	tr := &livekit.Transcription{TranscribedParticipantIdentity: body.Speaker, TrackId: body.Track}
	for _, seg := range body.Segments {
		tr.Segments = append(tr.Segments, &livekit.TranscriptionSegment{Id: seg.ID, Text: seg.Text, Final: seg.Final, Language: seg.Language})
	}
	sender := c.Claims.ParticipantIdentity()
	if refused := room.attributeTranscription(sender, c.Role, tr); refused != nil {
		httpapi.Refuse(w, r, refused.status, refused.en, refused.fr)
		return
	}
	pkt := &livekit.DataPacket{ParticipantIdentity: sender, Value: &livekit.DataPacket_Transcription{Transcription: tr}}
	from := room.participant(sender) // the captioner's own page, when connected, has the line already
	if from != nil {
		pkt.ParticipantSid = from.sid
	}
	room.relayTranscription(from, pkt, nil)
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"speaker": tr.GetTranscribedParticipantIdentity(), "track": tr.GetTrackId()})
}
