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
	droppedAt        time.Time                            // when its socket ended without a leave; zero while connected
	quality          *livekit.ConnectionQualityInfo       // the last rating (quality.go); nil until active
	qualityTold      map[string]livekit.ConnectionQuality // ratings sent to it, by participant sid

	// data counts the data packets' bytes to and from the client, for the room's report.
	data dataCounters

	// signalRTT is the round trip in milliseconds the client measured over the signalling
	// socket and reported in its last ping_req (0: never).
	signalRTT atomic.Int64

	restartMu   sync.Mutex
	heldRestart *heldRestart // restart.go

	negMu        sync.Mutex
	offerPending bool // an offer is out, waiting for the answer
	renegotiate  bool // senders changed while an offer was out
	iceRestart   bool
	offerID      uint32
	everOffered  bool
}

type publishedTrack struct {
	owner   *Participant
	info    *livekit.TrackInfo // room
	media   *sfu.PublishedTrack
	counted bool // room: its bytes are in the room's report (report.go)
}

type subscription struct {
	track   *publishedTrack
	down    *sfu.DownTrack
	pixels  int  // the size the client shows the video at (UpdateTrackSettings), for its priority
	counted bool // room: its bytes are in the room's report (report.go)
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
	if c := p.currentConn(); c != nil {
		c.send(msg)
	}
}

// currentConn is the socket the participant's session uses now, nil while it is away.
func (p *Participant) currentConn() *signalConn {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.conn
}

func (p *Participant) swapConn(c *signalConn) *signalConn {
	old := p.conn
	p.conn = c
	return old
}

// sendCandidate trickles one of the server's candidates to the client, unless it is a loopback
// address and the client is elsewhere: it would check it in vain (against its own machine), and
// after an ICE restart the path that works waits behind those checks.
func (p *Participant) sendCandidate(c webrtc.ICECandidateInit, target livekit.SignalTarget) {
	conn := p.currentConn()
	if conn == nil || (conn.offMachine && candidateOnLoopback(c)) {
		return
	}
	js, err := json.Marshal(c)
	if err != nil {
		return
	}
	conn.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Trickle{Trickle: &livekit.TrickleRequest{
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
		reason := livekit.DisconnectReason_CLIENT_INITIATED
		limit := connLimitOf(err) // limits.go
		p.room.srv.limits.refused(limit)
		if limit == limitMessageRate {
			// Its frames were well formed: tell the client it is removed, before the close frame
			// that says why. Its departure counts as a lost connection, not as leaving.
			reason = livekit.DisconnectReason_PARTICIPANT_REMOVED
			conn.send(leaveMessage(livekit.LeaveRequest_DISCONNECT, reason))
		}
		conn.close(err)
		if p.room.removeIfCurrent(p, conn, reason) {
			p.log.Warn("session closed on a malformed frame or over a limit", "err", err, "limit", limit)
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
	p.data.up.Add(uint64(len(data)))
	pkt := &livekit.DataPacket{}
	if err := proto.Unmarshal(data, pkt); err != nil {
		p.log.Debug("malformed data packet dropped", "err", err)
		return
	}
	// An answer to the server's own RPC goes to the server, not to the others (data.go).
	if r.rpc.take(p, pkt) {
		return
	}
	r.mu.Lock()
	allowed := p.permission.CanPublishData
	r.mu.Unlock()
	if !allowed {
		p.log.Debug("data packet dropped: no canPublishData")
		return
	}
	pkt.ParticipantIdentity = p.identity
	pkt.ParticipantSid = p.sid
	if tr := pkt.GetTranscription(); tr != nil {
		if err := r.attributeTranscription(p.identity, p.claims.Role(), tr); err != nil {
			p.log.Info("transcription not relayed", "err", err)
			return
		}
		r.relayTranscription(p, pkt, pkt.GetDestinationIdentities())
		return
	}
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
