package signaling

import (
	"fmt"
	"strings"
	"time"

	"github.com/livekit/protocol/livekit"
	lkwebhook "github.com/livekit/protocol/webhook"
	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/sfu"
)

// Publishing: a participant's offers, its tracks announced and then received, mutes.

// answerPublisher applies the client's offer on its publisher connection and sends the answer;
// keepPath declines the ICE restart the offer asks for (restart.go).
func (p *Participant) answerPublisher(sd *livekit.SessionDescription, keepPath bool) error {
	wishes := p.codecWishes()
	answer := p.publisher.Answer
	if keepPath {
		answer = p.publisher.AnswerKeepingPath
	}
	desc, err := answer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sd.GetSdp()},
		func(trackID string) []string { return wishes[trackID] })
	if err != nil {
		return fmt.Errorf("answer publisher offer: %w", err)
	}
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Answer{Answer: &livekit.SessionDescription{
		Type: "answer", Sdp: desc.SDP, Id: sd.GetId(),
	}}})
	return nil
}

// codecWishes reads from the AddTrack requests, by the track id the offer names each track
// with, the codecs asked for: the codec announced under that id first, then the track's other
// codecs (a backup codec is a fallback). A microphone published with disable_red asks for Opus.
func (p *Participant) codecWishes() map[string][]string {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	wishes := map[string][]string{}
	add := func(cid string, info *livekit.TrackInfo) {
		ids := []string{cid}
		for _, c := range info.Codecs {
			if c.Cid != "" && c.Cid != cid {
				ids = append(ids, c.Cid)
			}
		}
		for _, id := range ids {
			var first, rest []string
			for _, c := range info.Codecs {
				if c.Cid == id || (c.Cid == "" && id == cid) {
					first = append(first, c.MimeType)
				} else {
					rest = append(rest, c.MimeType)
				}
			}
			wish := append(first, rest...)
			if len(wish) == 0 && info.Type == livekit.TrackType_AUDIO && info.DisableRed {
				wish = []string{webrtc.MimeTypeOpus}
			}
			if len(wish) > 0 {
				wishes[id] = wish
			}
		}
	}
	for cid, info := range p.pending {
		add(cid, info)
	}
	for _, t := range p.tracks {
		add(t.media.ID(), t.info)
	}
	return wishes
}

func (p *Participant) onAddTrack(req *livekit.AddTrackRequest) error {
	r := p.room
	r.mu.Lock()
	source := trackSource(req.GetSource(), req.GetType())
	if !p.canPublishSourceLocked(source) {
		r.mu.Unlock()
		p.send(addTrackRefusal(req, livekit.RequestResponse_NOT_ALLOWED,
			fmt.Sprintf("publishing %s is not allowed by your token", strings.ToLower(source.String()))))
		return fmt.Errorf("add track %q: source %s not allowed", req.GetCid(), source)
	}
	if _, dup := p.pending[req.GetCid()]; dup {
		r.mu.Unlock()
		return fmt.Errorf("add track: cid %q already pending", req.GetCid())
	}
	if refusal := p.trackRefusalLocked(req); refusal != nil { // limits.go
		r.mu.Unlock()
		p.send(refusal)
		return fmt.Errorf("add track %q: %s", req.GetCid(), refusal.GetRequestResponse().GetMessage())
	}
	info := &livekit.TrackInfo{
		Sid:        newSID("TR_"),
		Type:       req.GetType(),
		Name:       req.GetName(),
		Muted:      req.GetMuted(),
		Width:      req.GetWidth(),
		Height:     req.GetHeight(),
		Source:     source,
		Layers:     req.GetLayers(),
		Simulcast:  len(req.GetLayers()) > 1,
		DisableRed: req.GetDisableRed(),
		Stream:     req.GetStream(),
		Encryption: req.GetEncryption(),
	}
	for _, c := range req.GetSimulcastCodecs() {
		mime := c.GetCodec()
		if mime != "" && !strings.Contains(mime, "/") {
			if req.GetType() == livekit.TrackType_AUDIO {
				mime = "audio/" + mime
			} else {
				mime = "video/" + mime
			}
		}
		info.Codecs = append(info.Codecs, &livekit.SimulcastCodecInfo{MimeType: mime, Cid: c.GetCid(), Layers: c.GetLayers()})
	}
	p.pending[req.GetCid()] = info
	// A copy: the message is marshalled later, while the arriving media updates info.
	published := proto.CloneOf(info)
	r.mu.Unlock()
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_TrackPublished{TrackPublished: &livekit.TrackPublishedResponse{
		Cid: req.GetCid(), Track: published,
	}}})
	return nil
}

// addTrackRefusal refuses an AddTrack as LiveKit does: a RequestResponse naming the request,
// with the reason in words.
func addTrackRefusal(req *livekit.AddTrackRequest, reason livekit.RequestResponse_Reason, msg string) *livekit.SignalResponse {
	return &livekit.SignalResponse{Message: &livekit.SignalResponse_RequestResponse{RequestResponse: &livekit.RequestResponse{
		Reason: reason, Message: msg, Request: &livekit.RequestResponse_AddTrack{AddTrack: req},
	}}}
}

// matchPendingLocked finds the AddTrack that announced a media track: by its id (the client's
// cid, or a simulcast codec's cid), else the only pending track of that kind.
func (p *Participant) matchPendingLocked(mt *sfu.PublishedTrack) (string, *livekit.TrackInfo) {
	id := mt.ID()
	if info, ok := p.pending[id]; ok {
		return id, info
	}
	for cid, info := range p.pending {
		for _, c := range info.Codecs {
			if c.Cid == id {
				return cid, info
			}
		}
	}
	want := livekit.TrackType_VIDEO
	if mt.Kind() == webrtc.RTPCodecTypeAudio {
		want = livekit.TrackType_AUDIO
	}
	var foundCID string
	var found *livekit.TrackInfo
	for cid, info := range p.pending {
		if info.Type == want {
			if found != nil {
				return "", nil
			}
			foundCID, found = cid, info
		}
	}
	return foundCID, found
}

// recordChosenCodec makes the TrackInfo's codecs say what the answer chose, which is not what
// was asked for when the offer could not carry it: the entry announced under the media's id
// (or the only one) takes the codec its media arrived with.
func recordChosenCodec(info *livekit.TrackInfo, mt *sfu.PublishedTrack) {
	for _, c := range info.Codecs {
		if c.Cid == mt.ID() {
			c.MimeType = mt.MimeType()
			return
		}
	}
	switch len(info.Codecs) {
	case 0:
		info.Codecs = []*livekit.SimulcastCodecInfo{{MimeType: mt.MimeType(), Cid: mt.ID(), Layers: info.Layers}}
	case 1:
		info.Codecs[0].MimeType = mt.MimeType()
	}
}

// onMediaTrack is called by the media plane when a published track's media arrives.
func (p *Participant) onMediaTrack(mt *sfu.PublishedTrack) {
	r := p.room
	var t *publishedTrack
	for attempt := 0; t == nil; attempt++ {
		r.mu.Lock()
		cid, info := p.matchPendingLocked(mt)
		if info != nil {
			delete(p.pending, cid)
			info.MimeType = mt.MimeType()
			recordChosenCodec(info, mt)
			t = &publishedTrack{owner: p, info: info, media: mt}
			p.tracks[info.Sid] = t
			p.version++
			mt.SetMuted(info.Muted)
			r.trackEventLocked(lkwebhook.EventTrackPublished, p, t) // webhooks.go
		}
		r.mu.Unlock()
		if t != nil {
			break
		}
		// Media can overtake its AddTrack on a busy socket: wait briefly.
		if attempt >= 50 {
			p.log.Warn("media track without an AddTrack request, ignored", "track", mt.ID())
			return
		}
		select {
		case <-mt.Done():
			return
		case <-r.ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	p.log.Info("track published", "track", t.info.Sid, "mime", t.info.MimeType, "source", t.info.Source.String())
	if isMicrophone(t) && !t.info.Muted {
		if err := r.srv.allowUnmute(r.name, p.ref()); err != nil {
			p.refuseUnmute(t, err)
		}
	}
	r.broadcastParticipant(p)
	r.mu.Lock()
	var subscribers []*Participant
	for _, o := range r.participants {
		if o != p && o.autoSubscribe {
			subscribers = append(subscribers, o)
		}
	}
	r.mu.Unlock()
	for _, o := range subscribers {
		r.subscribe(o, t)
	}
	r.srv.wg.Add(1)
	go func() {
		defer r.srv.wg.Done()
		select {
		case <-mt.Done():
			p.unpublish(t)
		case <-r.ctx.Done():
		}
	}()
}

// unpublish removes a track whose media ended.
func (p *Participant) unpublish(t *publishedTrack) {
	r := p.room
	r.mu.Lock()
	if p.tracks[t.info.Sid] != t {
		r.mu.Unlock()
		return
	}
	delete(p.tracks, t.info.Sid)
	r.foldTrackLocked(t) // report.go
	p.version++
	for _, o := range r.participants {
		r.dropSubscriptionLocked(o, t.info.Sid)
	}
	if p.state != livekit.ParticipantInfo_DISCONNECTED { // remove told it already
		r.trackEventLocked(lkwebhook.EventTrackUnpublished, p, t) // webhooks.go
	}
	r.mu.Unlock()
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_TrackUnpublished{TrackUnpublished: &livekit.TrackUnpublishedResponse{TrackSid: t.info.Sid}}})
	r.broadcastParticipant(p)
	r.renegotiateAll()
}

func (p *Participant) onMute(m *livekit.MuteTrackRequest) error {
	r := p.room
	r.mu.Lock()
	t := p.tracks[m.GetSid()]
	if t == nil {
		// A track announced but whose media has not arrived yet.
		for _, info := range p.pending {
			if info.Sid == m.GetSid() {
				info.Muted = m.GetMuted()
				r.mu.Unlock()
				return nil
			}
		}
		r.mu.Unlock()
		return fmt.Errorf("mute: no track %q published by %s", m.GetSid(), p.identity)
	}
	isMic := isMicrophone(t)
	r.mu.Unlock()
	if !m.GetMuted() && isMic {
		if err := r.srv.allowUnmute(r.name, p.ref()); err != nil {
			p.refuseUnmute(t, err)
			return nil
		}
	}
	p.setMuted(t, m.GetMuted())
	return nil
}

// refuseUnmute keeps a microphone closed on the server and tells the publisher why.
func (p *Participant) refuseUnmute(t *publishedTrack, why error) {
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Mute{Mute: &livekit.MuteTrackRequest{Sid: t.info.Sid, Muted: true}}})
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_RequestResponse{RequestResponse: &livekit.RequestResponse{
		Reason: livekit.RequestResponse_NOT_ALLOWED, Message: why.Error(),
	}}})
	p.setMuted(t, true)
}

// isMicrophone tells the tracks that the floor rule governs.
func isMicrophone(t *publishedTrack) bool {
	return t.info.Type == livekit.TrackType_AUDIO && t.info.Source != livekit.TrackSource_SCREEN_SHARE_AUDIO
}

// setMuted records a track's mute state, stops or resumes its forwarding and tells the room.
func (p *Participant) setMuted(t *publishedTrack, muted bool) {
	r := p.room
	r.mu.Lock()
	if t.info.Muted == muted {
		r.mu.Unlock()
		return
	}
	t.info.Muted = muted
	t.media.SetMuted(muted)
	p.version++
	r.mu.Unlock()
	r.broadcastParticipant(p)
}

// MuteTrack mutes (or unmutes) a published track from the server side: the publisher is asked
// to follow, and the server stops forwarding at once, whatever the client does.
func (p *Participant) MuteTrack(trackSID string, muted bool) (*livekit.TrackInfo, error) {
	r := p.room
	r.mu.Lock()
	t := p.tracks[trackSID]
	r.mu.Unlock()
	if t == nil {
		return nil, fmt.Errorf("participant %s has no published track %q", p.identity, trackSID)
	}
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Mute{Mute: &livekit.MuteTrackRequest{Sid: trackSID, Muted: muted}}})
	p.setMuted(t, muted)
	r.mu.Lock()
	defer r.mu.Unlock()
	return t.info, nil
}

// trackSource is what a track publishes: its source, or for a client that names none, the
// microphone for audio and the camera for video.
func trackSource(src livekit.TrackSource, typ livekit.TrackType) livekit.TrackSource {
	if src != livekit.TrackSource_UNKNOWN {
		return src
	}
	if typ == livekit.TrackType_AUDIO {
		return livekit.TrackSource_MICROPHONE
	}
	return livekit.TrackSource_CAMERA
}

// sourceOf is trackSource for a published or announced track.
func sourceOf(info *livekit.TrackInfo) livekit.TrackSource {
	return trackSource(info.GetSource(), info.GetType())
}
