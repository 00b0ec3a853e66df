package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/proto"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/sfu"
)

// Participant is one connected person (or bot) in a room. Fields marked "room" are guarded by
// the room's mutex.
type Participant struct {
	room          *Room
	sid, identity string
	claims        *auth.Claims
	autoSubscribe bool
	joinedAt      time.Time
	log           *slog.Logger

	publisher, subscriber *sfu.Transport

	// room
	name             string
	metadata         string
	attributes       map[string]string
	permission       *livekit.ParticipantPermission
	state            livekit.ParticipantInfo_State
	disconnectReason livekit.DisconnectReason
	version          uint32
	tracks           map[string]*publishedTrack    // by track sid
	pending          map[string]*livekit.TrackInfo // AddTrack seen, media not yet: by client track id (cid)
	subs             map[string]*subscription      // by track sid
	conn             *signalConn
	resumeTimer      *time.Timer
	quality          *livekit.ConnectionQualityInfo       // the last rating (quality.go); nil until active
	qualityTold      map[string]livekit.ConnectionQuality // ratings sent to it, by participant sid

	// signalRTT is the round trip in milliseconds the client measured over the signalling
	// socket and reported in its last ping_req (0: never).
	signalRTT atomic.Int64

	negMu        sync.Mutex
	offerPending bool // an offer is out, waiting for the answer
	renegotiate  bool // senders changed while an offer was out
	iceRestart   bool
	offerID      uint32
	everOffered  bool
}

type publishedTrack struct {
	owner *Participant
	info  *livekit.TrackInfo // room
	media *sfu.PublishedTrack
}

type subscription struct {
	track  *publishedTrack
	down   *sfu.DownTrack
	pixels int // the size the client shows the video at (UpdateTrackSettings), for its priority
}

func newParticipant(r *Room, claims *auth.Claims, params joinParams) (*Participant, error) {
	p := &Participant{
		room:          r,
		sid:           newSID("PA_"),
		identity:      claims.ParticipantIdentity(),
		claims:        claims,
		autoSubscribe: params.autoSubscribe,
		joinedAt:      time.Now(),
		name:          claims.Name,
		metadata:      claims.Metadata,
		attributes:    participantAttributes(claims),
		permission:    permissionFromClaims(claims),
		state:         livekit.ParticipantInfo_JOINED,
		version:       1,
		tracks:        map[string]*publishedTrack{},
		pending:       map[string]*livekit.TrackInfo{},
		subs:          map[string]*subscription{},
	}
	p.log = r.log.With("identity", p.identity)
	var err error
	p.publisher, err = r.srv.cfg.Media.NewTransport(sfu.PublisherRole, sfu.TransportHandlers{
		OnICECandidate: func(c webrtc.ICECandidateInit) { p.sendCandidate(c, livekit.SignalTarget_PUBLISHER) },
		OnTrack:        p.onMediaTrack,
		OnData:         p.onData,
		OnStateChange:  p.onPublisherState,
		OnLayersWanted: p.onLayersWanted,
	})
	if err != nil {
		return nil, fmt.Errorf("create publisher connection: %w", err)
	}
	p.subscriber, err = r.srv.cfg.Media.NewTransport(sfu.SubscriberRole, sfu.TransportHandlers{
		OnICECandidate:      func(c webrtc.ICECandidateInit) { p.sendCandidate(c, livekit.SignalTarget_SUBSCRIBER) },
		OnNegotiationNeeded: func() { p.negotiateSubscriber(false) },
		OnFirstMedia:        p.firstMediaSent,
		OnStreamState:       p.onStreamState,
	})
	if err != nil {
		_ = p.publisher.Close()
		return nil, fmt.Errorf("create subscriber connection: %w", err)
	}
	return p, nil
}

// participantAttributes are the token's attributes plus the council role and seat, so that
// every client can show them.
func participantAttributes(c *auth.Claims) map[string]string {
	out := map[string]string{}
	for k, v := range c.Attributes {
		out[k] = v
	}
	if c.Council != nil {
		out["hemicycle.role"] = string(c.Council.Role)
		if c.Council.Seat > 0 {
			out["hemicycle.seat"] = strconv.Itoa(c.Council.Seat)
		}
		if c.Council.Body != "" {
			out["hemicycle.body"] = c.Council.Body
		}
	}
	return out
}

func permissionFromClaims(c *auth.Claims) *livekit.ParticipantPermission {
	perm := &livekit.ParticipantPermission{
		CanSubscribe:   c.CanSubscribe(),
		CanPublish:     c.CanPublish(),
		CanPublishData: c.CanPublishData(),
	}
	if c.Video != nil {
		perm.Hidden = c.Video.Hidden
		perm.Recorder = c.Video.Recorder
		perm.CanUpdateMetadata = c.Video.AllowsOwnMetadataUpdate()
		for _, s := range c.Video.CanPublishSources {
			if src, ok := trackSources[s]; ok {
				perm.CanPublishSources = append(perm.CanPublishSources, src)
			}
		}
	}
	return perm
}

var trackSources = map[string]livekit.TrackSource{
	"camera":             livekit.TrackSource_CAMERA,
	"microphone":         livekit.TrackSource_MICROPHONE,
	"screen_share":       livekit.TrackSource_SCREEN_SHARE,
	"screen_share_audio": livekit.TrackSource_SCREEN_SHARE_AUDIO,
}

func (p *Participant) ref() ParticipantRef {
	return ParticipantRef{SID: p.sid, Identity: p.identity, Name: p.name, Claims: p.claims}
}

func (p *Participant) hidden() bool { return p.permission.Hidden }

func (p *Participant) canSubscribeLocked() bool { return p.permission.CanSubscribe }

func (p *Participant) canPublishSourceLocked(src livekit.TrackSource) bool {
	if len(p.permission.CanPublishSources) > 0 {
		for _, s := range p.permission.CanPublishSources {
			if s == src {
				return true
			}
		}
		return false
	}
	return p.permission.CanPublish
}

func (p *Participant) infoLocked() *livekit.ParticipantInfo {
	info := &livekit.ParticipantInfo{
		Sid:              p.sid,
		Identity:         p.identity,
		Name:             p.name,
		State:            p.state,
		Metadata:         p.metadata,
		JoinedAt:         p.joinedAt.Unix(),
		JoinedAtMs:       p.joinedAt.UnixMilli(),
		Version:          p.version,
		Permission:       p.permission,
		IsPublisher:      len(p.tracks) > 0,
		Kind:             livekit.ParticipantInfo_STANDARD,
		Attributes:       p.attributes,
		DisconnectReason: p.disconnectReason,
	}
	for _, t := range p.tracks {
		info.Tracks = append(info.Tracks, t.info)
	}
	return info
}

// send queues a response on the participant's current socket; while it is away, updates are
// dropped and the whole room is replayed when it resumes.
func (p *Participant) send(msg *livekit.SignalResponse) {
	p.room.mu.Lock()
	c := p.conn
	p.room.mu.Unlock()
	if c != nil {
		c.send(msg)
	}
}

func (p *Participant) swapConn(c *signalConn) *signalConn {
	old := p.conn
	p.conn = c
	return old
}

func (p *Participant) sendCandidate(c webrtc.ICECandidateInit, target livekit.SignalTarget) {
	js, err := json.Marshal(c)
	if err != nil {
		return
	}
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Trickle{Trickle: &livekit.TrickleRequest{
		CandidateInit: string(js), Target: target,
	}}})
}

func (p *Participant) closeMedia() {
	_ = p.publisher.Close()
	_ = p.subscriber.Close()
}

func (p *Participant) onPublisherState(s webrtc.PeerConnectionState) {
	if s != webrtc.PeerConnectionStateConnected {
		return
	}
	p.room.mu.Lock()
	changed := p.state == livekit.ParticipantInfo_JOINED
	if changed {
		p.state = livekit.ParticipantInfo_ACTIVE
		p.version++
	}
	p.room.mu.Unlock()
	if changed {
		p.publisherConnected()
		p.room.broadcastParticipant(p)
	}
}

// readLoop handles this participant's requests until the socket ends.
func (p *Participant) readLoop(conn *signalConn) {
	for {
		req, err := conn.read()
		if err != nil {
			p.connEnded(conn, err)
			return
		}
		if err := p.handle(req); err != nil {
			if errors.Is(err, errLeft) {
				return
			}
			p.log.Warn("signal request failed", "err", err)
		}
	}
}

// connEnded acts on the end of one of the participant's sockets, whoever closed it first. The
// read error alone decides: a protocol violation removes the participant now; any other end
// leaves it the resume window. The room ignores a socket that is no longer the participant's
// (replaced by a resume) and a participant already gone (left, removed), so a socket that we
// closed ourselves needs no special case. Deciding from "was the socket already closed?"
// instead lost the race with the write side, which fails as soon as gorilla has answered an
// oversized frame with its own close frame: the offender was then neither removed nor
// marked as dropped.
func (p *Participant) connEnded(conn *signalConn, err error) {
	if isMalformed(err) {
		// A client speaking garbage loses its own session, nobody else's.
		conn.close(err)
		if p.room.removeIfCurrent(p, conn, livekit.DisconnectReason_CLIENT_INITIATED) {
			p.log.Warn("session closed on a malformed frame", "err", err)
		}
		return
	}
	conn.close(nil)
	p.room.dropped(p, conn)
}

var errLeft = errors.New("participant left")

func (p *Participant) handle(req *livekit.SignalRequest) error {
	switch m := req.Message.(type) {
	case *livekit.SignalRequest_Offer:
		return p.onPublisherOffer(m.Offer)
	case *livekit.SignalRequest_Answer:
		return p.onSubscriberAnswer(m.Answer)
	case *livekit.SignalRequest_Trickle:
		return p.onTrickle(m.Trickle)
	case *livekit.SignalRequest_AddTrack:
		return p.onAddTrack(m.AddTrack)
	case *livekit.SignalRequest_Mute:
		return p.onMute(m.Mute)
	case *livekit.SignalRequest_Subscription:
		return p.onSubscription(m.Subscription)
	case *livekit.SignalRequest_TrackSetting:
		return p.onTrackSettings(m.TrackSetting)
	case *livekit.SignalRequest_Leave:
		p.room.remove(p, livekit.DisconnectReason_CLIENT_INITIATED, false)
		return errLeft
	case *livekit.SignalRequest_Ping:
		p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Pong{Pong: m.Ping}})
	case *livekit.SignalRequest_PingReq:
		if rtt := m.PingReq.GetRtt(); rtt > 0 {
			p.signalRTT.Store(rtt)
		}
		p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_PongResp{PongResp: &livekit.Pong{
			LastPingTimestamp: m.PingReq.GetTimestamp(), Timestamp: time.Now().UnixMilli(),
		}}})
	case *livekit.SignalRequest_UpdateMetadata:
		return p.onUpdateMetadata(m.UpdateMetadata)
	case *livekit.SignalRequest_SyncState, *livekit.SignalRequest_UpdateLayers, *livekit.SignalRequest_SubscriptionPermission,
		*livekit.SignalRequest_Simulate, *livekit.SignalRequest_UpdateAudioTrack, *livekit.SignalRequest_UpdateVideoTrack:
		// Accepted and ignored: the state they carry is already the server's, or the feature
		// is not offered. They need no reply.
	case nil:
		return errors.New("empty signal request")
	default:
		p.log.Debug("unsupported signal request", "type", fmt.Sprintf("%T", m))
	}
	return nil
}

func (p *Participant) onPublisherOffer(sd *livekit.SessionDescription) error {
	answer, err := p.publisher.Answer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sd.GetSdp()})
	if err != nil {
		return fmt.Errorf("answer publisher offer: %w", err)
	}
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Answer{Answer: &livekit.SessionDescription{
		Type: "answer", Sdp: answer.SDP, Id: sd.GetId(),
	}}})
	return nil
}

func (p *Participant) onSubscriberAnswer(sd *livekit.SessionDescription) error {
	if err := p.subscriber.SetAnswer(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sd.GetSdp()}); err != nil {
		return fmt.Errorf("apply subscriber answer: %w", err)
	}
	p.negMu.Lock()
	p.offerPending = false
	again := p.renegotiate
	restart := p.iceRestart
	p.renegotiate, p.iceRestart = false, false
	p.negMu.Unlock()
	if again {
		p.negotiateSubscriber(restart)
	}
	return nil
}

// negotiateSubscriber sends the subscriber connection an offer, one at a time: changes that
// arrive while an offer is out are folded into the next one.
func (p *Participant) negotiateSubscriber(iceRestart bool) {
	p.negMu.Lock()
	if p.offerPending {
		p.renegotiate = true
		p.iceRestart = p.iceRestart || iceRestart
		p.negMu.Unlock()
		return
	}
	if iceRestart && !p.everOffered {
		// Nothing was ever negotiated: there is nothing to restart.
		p.negMu.Unlock()
		return
	}
	p.room.mu.Lock()
	hasSubs := len(p.subs) > 0
	p.room.mu.Unlock()
	if !hasSubs && !p.everOffered {
		p.negMu.Unlock()
		return
	}
	offer, err := p.subscriber.Offer(iceRestart)
	if err != nil {
		p.negMu.Unlock()
		if errors.Is(err, sfu.ErrTransportClosed) {
			// The participant is leaving; when a whole room leaves at once, every departure
			// would log this for every remaining subscriber.
			p.log.Debug("subscriber offer skipped: the connection is closed")
			return
		}
		p.log.Warn("subscriber offer failed", "err", err)
		return
	}
	p.offerPending = true
	p.everOffered = true
	p.offerID++
	id := p.offerID
	p.negMu.Unlock()
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Offer{Offer: &livekit.SessionDescription{
		Type: "offer", Sdp: offer.SDP, Id: id,
	}}})
}

func (p *Participant) onTrickle(t *livekit.TrickleRequest) error {
	var c webrtc.ICECandidateInit
	if err := json.Unmarshal([]byte(t.GetCandidateInit()), &c); err != nil {
		return fmt.Errorf("trickle: candidate is not ICECandidateInit JSON: %w", err)
	}
	if t.GetTarget() == livekit.SignalTarget_SUBSCRIBER {
		return p.subscriber.AddICECandidate(c)
	}
	return p.publisher.AddICECandidate(c)
}

func (p *Participant) onAddTrack(req *livekit.AddTrackRequest) error {
	r := p.room
	r.mu.Lock()
	source := req.GetSource()
	if source == livekit.TrackSource_UNKNOWN {
		if req.GetType() == livekit.TrackType_AUDIO {
			source = livekit.TrackSource_MICROPHONE
		} else {
			source = livekit.TrackSource_CAMERA
		}
	}
	if !p.canPublishSourceLocked(source) {
		r.mu.Unlock()
		p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_RequestResponse{RequestResponse: &livekit.RequestResponse{
			Reason:  livekit.RequestResponse_NOT_ALLOWED,
			Message: fmt.Sprintf("publishing %s is not allowed by your token", strings.ToLower(source.String())),
		}}})
		return fmt.Errorf("add track %q: source %s not allowed", req.GetCid(), source)
	}
	if _, dup := p.pending[req.GetCid()]; dup {
		r.mu.Unlock()
		return fmt.Errorf("add track: cid %q already pending", req.GetCid())
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
	r.mu.Unlock()
	p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_TrackPublished{TrackPublished: &livekit.TrackPublishedResponse{
		Cid: req.GetCid(), Track: info,
	}}})
	return nil
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
			t = &publishedTrack{owner: p, info: info, media: mt}
			p.tracks[info.Sid] = t
			p.version++
			mt.SetMuted(info.Muted)
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
	p.version++
	for _, o := range r.participants {
		r.dropSubscriptionLocked(o, t.info.Sid)
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

func (p *Participant) onSubscription(u *livekit.UpdateSubscription) error {
	r := p.room
	sids := append([]string(nil), u.GetTrackSids()...)
	for _, pt := range u.GetParticipantTracks() {
		sids = append(sids, pt.GetTrackSids()...)
	}
	for _, sid := range sids {
		if !u.GetSubscribe() {
			r.unsubscribe(p, sid)
			continue
		}
		r.mu.Lock()
		t := r.trackBySIDLocked(sid)
		r.mu.Unlock()
		if t == nil {
			p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_SubscriptionResponse{SubscriptionResponse: &livekit.SubscriptionResponse{
				TrackSid: sid, Err: livekit.SubscriptionError_SE_TRACK_NOTFOUND,
			}}})
			continue
		}
		r.subscribe(p, t)
	}
	return nil
}

func (p *Participant) onTrackSettings(s *livekit.UpdateTrackSettings) error {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sid := range s.GetTrackSids() {
		sub := p.subs[sid]
		if sub == nil {
			continue
		}
		sub.down.SetPaused(s.GetDisabled())
		sub.down.SetMaxQuality(qualityFor(sub.track.info, s))
		sub.pixels = int(s.GetWidth()) * int(s.GetHeight())
	}
	return nil
}

// qualityFor turns a subscriber's wish (a quality, or the size it displays the video at, from
// adaptive stream) into the simulcast layer to forward.
func qualityFor(info *livekit.TrackInfo, s *livekit.UpdateTrackSettings) sfu.Quality {
	q := s.GetQuality()
	if w, h := s.GetWidth(), s.GetHeight(); (w > 0 || h > 0) && len(info.Layers) > 0 {
		q = livekit.VideoQuality_LOW
		for _, l := range info.Layers {
			// The smallest layer at least as large as the display, else the largest.
			if l.GetWidth() >= w && l.GetHeight() >= h {
				q = l.GetQuality()
				break
			}
			q = l.GetQuality()
		}
	}
	switch q {
	case livekit.VideoQuality_LOW:
		return sfu.QualityLow
	case livekit.VideoQuality_MEDIUM:
		return sfu.QualityMedium
	default:
		return sfu.QualityHigh
	}
}

func (p *Participant) onUpdateMetadata(u *livekit.UpdateParticipantMetadata) error {
	r := p.room
	r.mu.Lock()
	if !p.permission.CanUpdateMetadata {
		r.mu.Unlock()
		p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_RequestResponse{RequestResponse: &livekit.RequestResponse{
			RequestId: u.GetRequestId(), Reason: livekit.RequestResponse_NOT_ALLOWED,
			Message: "your token does not allow updating your own metadata",
		}}})
		return nil
	}
	p.applyMetadataLocked(u.GetName(), u.GetMetadata(), u.GetAttributes())
	r.mu.Unlock()
	r.broadcastParticipant(p)
	return nil
}

// applyMetadataLocked changes name/metadata/attributes; empty values leave a field as it is.
// Attributes set by the council (hemicycle.*) cannot be overwritten by the participant.
func (p *Participant) applyMetadataLocked(name, metadata string, attrs map[string]string) {
	if name != "" {
		p.name = name
	}
	if metadata != "" {
		p.metadata = metadata
	}
	if len(attrs) > 0 {
		next := make(map[string]string, len(p.attributes)+len(attrs))
		for k, v := range p.attributes {
			next[k] = v
		}
		for k, v := range attrs {
			if strings.HasPrefix(k, "hemicycle.") {
				continue
			}
			if v == "" {
				delete(next, k)
			} else {
				next[k] = v
			}
		}
		p.attributes = next
	}
	p.version++
}

// onData relays a data packet from this participant to the others, stamping the sender: the
// identity in a packet is never taken from the client.
func (p *Participant) onData(reliable bool, data []byte) {
	r := p.room
	r.mu.Lock()
	allowed := p.permission.CanPublishData
	r.mu.Unlock()
	if !allowed {
		p.log.Debug("data packet dropped: no canPublishData")
		return
	}
	pkt := &livekit.DataPacket{}
	if err := proto.Unmarshal(data, pkt); err != nil {
		p.log.Debug("malformed data packet dropped", "err", err)
		return
	}
	pkt.ParticipantIdentity = p.identity
	pkt.ParticipantSid = p.sid
	dest := pkt.GetDestinationIdentities()
	if u := pkt.GetUser(); u != nil {
		u.ParticipantIdentity = p.identity
		u.ParticipantSid = p.sid
		if len(dest) == 0 {
			dest = u.GetDestinationIdentities()
		}
	}
	r.relayData(p, pkt, reliable, dest)
}
