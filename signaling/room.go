package signaling

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sort"
	"time"

	"sync"

	"github.com/livekit/protocol/livekit"
	lkwebhook "github.com/livekit/protocol/webhook"

	"github.com/ingeco/hemicycle/auth"
)

// speakerInterval is how often active speakers are recomputed; changes only are sent.
const speakerInterval = 400 * time.Millisecond

// Room is one meeting on this node. Its mutex guards the state of every participant in it;
// the media path never takes it.
type Room struct {
	srv          *Server
	name, sid    string
	created      time.Time
	emptyTimeout time.Duration
	log          *slog.Logger
	ctx          context.Context
	cancel       context.CancelFunc

	mu           sync.Mutex
	participants map[string]*Participant // by identity
	bySID        map[string]*Participant
	metadata     string
	closed       bool
	emptyTimer   *time.Timer
	speaking     map[string]float32 // participant sid -> level last announced

	programme      *roomProgramme // the public programme (programme.go); nil when off
	publicCaptions heldCaptions   // captions.go: the viewers', held for the programme's delay
	speech         *roomSpeech    // speech recognition (speech.go); nil without an engine
	rpc            rpcCalls       // RoomService.PerformRpc calls awaiting their answer (data.go)
	usage          *roomUsage     // report.go: what those who left and the tracks that ended counted
}

func newRoom(s *Server, name string, emptyTimeout time.Duration) *Room {
	ctx, cancel := context.WithCancel(s.ctx)
	r := &Room{
		srv:          s,
		name:         name,
		sid:          newSID("RM_"),
		created:      time.Now(),
		emptyTimeout: emptyTimeout,
		ctx:          ctx,
		cancel:       cancel,
		participants: map[string]*Participant{},
		bySID:        map[string]*Participant{},
		speaking:     map[string]float32{},
		usage:        newRoomUsage(),
	}
	r.log = s.log.With("room", name)
	r.roomStarted()                  // webhooks.go; before its outputs' egress_started
	r.programme = r.startProgramme() // programme.go
	r.speech = r.startSpeech()       // speech.go
	r.emptyTimer = time.AfterFunc(emptyTimeout, r.closeIfEmpty)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		r.speakerLoop()
	}()
	go func() {
		defer s.wg.Done()
		r.qualityLoop() // quality.go
	}()
	return r
}

// Name is the room's name.
func (r *Room) Name() string { return r.name }

func (r *Room) infoLocked() *livekit.Room {
	n := 0
	for _, p := range r.participants {
		if !p.hidden() {
			n++
		}
	}
	return &livekit.Room{
		Sid:             r.sid,
		Name:            r.name,
		EmptyTimeout:    uint32(r.emptyTimeout / time.Second),
		CreationTime:    r.created.Unix(),
		CreationTimeMs:  r.created.UnixMilli(),
		Metadata:        r.metadata,
		NumParticipants: uint32(n),
	}
}

// Info describes the room as LiveKit's API does.
func (r *Room) Info() *livekit.Room {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.infoLocked()
}

func (r *Room) serverInfo() *livekit.ServerInfo {
	return &livekit.ServerInfo{
		Edition:  livekit.ServerInfo_Standard,
		Version:  ServerVersion,
		Protocol: ProtocolVersion,
		NodeId:   r.srv.cfg.NodeID,
	}
}

// join admits a new participant and sends its JoinResponse as the first frame.
func (r *Room) join(claims *auth.Claims, params joinParams, conn *signalConn) (*Participant, error) {
	identity := claims.ParticipantIdentity()
	if identity == "" {
		return nil, errors.New("the token carries no identity")
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errors.New("room is closing")
	}
	var previous []*Participant
	if p := r.participants[identity]; p != nil {
		previous = append(previous, p)
	}
	if seat := memberSeat(ParticipantRef{Claims: claims}); seat != 0 {
		for _, o := range r.participants {
			if o.identity != identity && memberSeat(o.ref()) == seat {
				previous = append(previous, o)
			}
		}
	}
	r.mu.Unlock()
	// The same identity, or another connection for the same seat, replaces the earlier
	// session (a second tab, a client that lost its session): one person never counts twice.
	for _, o := range previous {
		r.remove(o, livekit.DisconnectReason_DUPLICATE_IDENTITY, true)
	}

	p, err := newParticipant(r, claims, params)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		p.closeMedia()
		return nil, errors.New("room is closing")
	}
	if err := r.fullForLocked(claims); err != nil { // limits.go
		r.mu.Unlock()
		p.closeMedia()
		return nil, err
	}
	p.conn = conn
	others := make([]*livekit.ParticipantInfo, 0, len(r.participants))
	for _, o := range r.participants {
		if !o.hidden() {
			others = append(others, o.infoLocked())
		}
	}
	if info := r.programmeInfoLocked(p); info != nil { // programme.go: viewers see the programme
		others = append(others, info)
	}
	r.participants[identity] = p
	r.bySID[p.sid] = p
	r.emptyTimer.Stop()
	conn.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Join{Join: &livekit.JoinResponse{
		Room:              r.infoLocked(),
		Participant:       p.infoLocked(),
		OtherParticipants: others,
		ServerVersion:     ServerVersion,
		ServerInfo:        r.serverInfo(),
		// The client offers the publisher connection at once (with its data channels); we
		// offer the subscriber connection only when there is media to send.
		SubscriberPrimary: false,
		PingTimeout:       int32(max(1, r.srv.cfg.PingTimeout/time.Second)),
		PingInterval:      int32(max(1, r.srv.cfg.PingTimeout/3/time.Second)),
		IceServers:        r.srv.iceServers(identity),
	}}})
	tracks := r.publishedTracksLocked(p)
	speakers := r.speakersLocked()
	r.participantEventLocked(lkwebhook.EventParticipantJoined, p, p.infoLocked()) // webhooks.go
	r.mu.Unlock()
	if len(speakers) > 0 {
		// Changes only are announced: one who joins while someone speaks learns it now.
		p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_SpeakersChanged{
			SpeakersChanged: &livekit.SpeakersChanged{Speakers: speakers},
		}})
	}

	r.log.Info("participant joined", "identity", identity, "sid", p.sid, "role", claims.Role(), "sdk", params.sdk)
	r.broadcastParticipant(p)
	if p.autoSubscribe {
		for _, t := range tracks {
			r.subscribe(p, t)
		}
	}
	r.srv.participantJoined(r.name, p.ref())
	return p, nil
}

// resume reattaches a dropped participant to a new socket, or returns nil if it is unknown.
func (r *Room) resume(sid, identity string, conn *signalConn) *Participant {
	r.mu.Lock()
	p := r.bySID[sid]
	if p == nil || p.identity != identity || r.closed {
		r.mu.Unlock()
		return nil
	}
	old := p.swapConn(conn)
	p.qualityTold = nil // it may have missed ratings while away: tell it all again
	if p.resumeTimer != nil {
		p.resumeTimer.Stop()
		p.resumeTimer = nil
	}
	p.droppedAt = time.Time{}
	conn.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Reconnect{Reconnect: &livekit.ReconnectResponse{
		ServerInfo: r.serverInfo(),
		IceServers: r.srv.iceServers(identity),
	}}})
	// Replay the room as it is now: the client may have missed updates while away.
	infos := make([]*livekit.ParticipantInfo, 0, len(r.participants))
	for _, o := range r.participants {
		if o == p || !o.hidden() {
			infos = append(infos, o.infoLocked())
		}
	}
	if info := r.programmeInfoLocked(p); info != nil { // programme.go
		infos = append(infos, info)
	}
	conn.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_Update{Update: &livekit.ParticipantUpdate{Participants: infos}}})
	r.mu.Unlock()
	if old != nil {
		old.close(errors.New("replaced by a resumed connection"))
	}
	r.log.Info("participant resumed", "identity", identity, "sid", sid)
	p.restartSubscriberUnlessBack() // restart.go
	return p
}

// dropped is called when a participant's socket ends without a leave: it may come back with a
// resume within the window; after that it is removed.
func (r *Room) dropped(p *Participant, conn *signalConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.conn != conn || r.participants[p.identity] != p {
		return
	}
	p.conn = nil
	p.droppedAt = time.Now()
	p.resumeTimer = time.AfterFunc(r.srv.cfg.ResumeWindow, func() {
		r.mu.Lock()
		gone := p.conn == nil && r.participants[p.identity] == p
		r.mu.Unlock()
		if gone {
			r.log.Info("participant did not come back", "identity", p.identity)
			r.remove(p, livekit.DisconnectReason_SIGNAL_CLOSE, false)
		}
	})
}

// removeIfCurrent removes p if conn is still its socket, and says whether it did.
func (r *Room) removeIfCurrent(p *Participant, conn *signalConn, reason livekit.DisconnectReason) bool {
	r.mu.Lock()
	current := p.conn == conn && r.participants[p.identity] == p
	r.mu.Unlock()
	if current {
		r.remove(p, reason, false)
	}
	return current
}

// remove takes a participant out of the room, tells it why when notify is set, tells the others,
// and stops its media.
func (r *Room) remove(p *Participant, reason livekit.DisconnectReason, notify bool) {
	r.mu.Lock()
	if r.participants[p.identity] != p {
		r.mu.Unlock()
		return
	}
	delete(r.participants, p.identity)
	delete(r.bySID, p.sid)
	delete(r.speaking, p.sid)
	r.foldParticipantLocked(p) // report.go
	if p.resumeTimer != nil {
		p.resumeTimer.Stop()
	}
	p.state = livekit.ParticipantInfo_DISCONNECTED
	p.disconnectReason = reason
	gone := departure{voluntary: reason == livekit.DisconnectReason_CLIENT_INITIATED, lostAt: p.droppedAt}
	if gone.lostAt.IsZero() && !gone.voluntary {
		gone.lostAt = time.Now()
	}
	p.version++
	info := p.infoLocked()
	info.Tracks = nil
	// Others stop receiving this participant's tracks.
	for _, t := range p.tracks {
		for _, o := range r.participants {
			r.dropSubscriptionLocked(o, t.info.Sid)
		}
		r.trackEventLocked(lkwebhook.EventTrackUnpublished, p, t) // webhooks.go
	}
	r.participantEventLocked(lkwebhook.EventParticipantLeft, p, info) // webhooks.go
	empty := len(r.participants) == 0
	if empty && !r.closed {
		r.emptyTimer.Reset(r.emptyTimeout)
	}
	conn := p.conn
	p.conn = nil
	r.mu.Unlock()

	if conn != nil {
		if notify {
			conn.send(leaveMessage(livekit.LeaveRequest_DISCONNECT, reason))
		}
		conn.close(nil)
	}
	p.closeMedia()
	if !p.hidden() {
		r.sendToAll(&livekit.SignalResponse{Message: &livekit.SignalResponse_Update{Update: &livekit.ParticipantUpdate{
			Participants: []*livekit.ParticipantInfo{info},
		}}}, nil)
	}
	r.log.Info("participant left", "identity", p.identity, "sid", p.sid, "reason", reason.String())
	r.srv.participantLeft(r.name, p.ref(), gone)
	r.renegotiateAll()
}

// close removes everyone and forgets the room.
func (r *Room) close(reason livekit.DisconnectReason) {
	ps, ok := r.shut()
	if !ok {
		return
	}
	for _, p := range ps {
		r.remove(p, reason, true)
	}
	r.cancel()
	r.srv.forgetRoom(r)
	r.keepReport()   // report.go
	r.roomFinished() // webhooks.go
	r.log.Info("room closed", "reason", reason.String())
}

// handOver stops serving the room because another node now holds it: each participant is told
// to reconnect in full, which brings it, through its entry node, to the room's node.
func (r *Room) handOver() {
	ps, ok := r.shut()
	if !ok {
		return
	}
	// Forgotten before anyone is told, so that a client coming straight back finds no
	// closing room here.
	r.srv.forgetRoom(r)
	for _, p := range ps {
		p.send(leaveMessage(livekit.LeaveRequest_RECONNECT, livekit.DisconnectReason_MIGRATION))
		r.remove(p, livekit.DisconnectReason_MIGRATION, false)
	}
	r.cancel()
	r.keepReport() // report.go: the next node adds its own to it
	r.log.Info("room handed over to another node")
}

// shut marks the room closed and returns who was in it; false if it already was.
func (r *Room) shut() ([]*Participant, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false
	}
	r.closed = true
	r.emptyTimer.Stop()
	ps := make([]*Participant, 0, len(r.participants))
	for _, p := range r.participants {
		ps = append(ps, p)
	}
	return ps, true
}

func (r *Room) closeIfEmpty() {
	r.mu.Lock()
	empty := len(r.participants) == 0
	r.mu.Unlock()
	if empty {
		r.close(livekit.DisconnectReason_ROOM_CLOSED)
	}
}

// Participants returns a snapshot of the participants' descriptions.
func (r *Room) Participants() []*livekit.ParticipantInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*livekit.ParticipantInfo, 0, len(r.participants))
	for _, p := range r.participants {
		out = append(out, p.infoLocked())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JoinedAtMs < out[j].JoinedAtMs })
	return out
}

func (r *Room) participant(identity string) *Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.participants[identity]
}

// publishedTracksLocked lists the tracks of everyone but p; a viewer gets the programme's.
func (r *Room) publishedTracksLocked(except *Participant) []*publishedTrack {
	if isViewer(except) {
		return r.programmeTracksLocked(except) // programme.go
	}
	var out []*publishedTrack
	for _, o := range r.participants {
		if o == except {
			continue
		}
		for _, t := range o.tracks {
			out = append(out, t)
		}
	}
	return out
}

// broadcastParticipant sends p's current description to everyone who may see it.
func (r *Room) broadcastParticipant(p *Participant) {
	r.mu.Lock()
	if r.participants[p.identity] != p {
		r.mu.Unlock()
		return
	}
	info := p.infoLocked()
	r.mu.Unlock()
	msg := &livekit.SignalResponse{Message: &livekit.SignalResponse_Update{Update: &livekit.ParticipantUpdate{
		Participants: []*livekit.ParticipantInfo{info},
	}}}
	if p.hidden() {
		p.send(msg)
		return
	}
	r.sendToAll(msg, nil)
}

// sendToAll sends a response to every participant except skip.
func (r *Room) sendToAll(msg *livekit.SignalResponse, skip *Participant) {
	r.mu.Lock()
	targets := make([]*Participant, 0, len(r.participants))
	for _, p := range r.participants {
		if p != skip {
			targets = append(targets, p)
		}
	}
	r.mu.Unlock()
	for _, p := range targets {
		p.send(msg)
	}
}

// subscribe sends track t to participant sub, if it may receive it.
func (r *Room) subscribe(sub *Participant, t *publishedTrack) {
	r.mu.Lock()
	if t.owner == sub || !sub.canSubscribeLocked() || sub.subs[t.info.Sid] != nil ||
		r.participants[sub.identity] != sub || t.owner.tracks[t.info.Sid] != t ||
		!r.mayReceiveLocked(sub, t) { // programme.go: the programme for viewers only
		r.mu.Unlock()
		return
	}
	dt, err := sub.subscriber.Subscribe(t.media, t.info.Sid, t.owner.sid+"|"+t.info.Sid)
	if err != nil {
		r.mu.Unlock()
		r.log.Warn("subscribe failed", "subscriber", sub.identity, "track", t.info.Sid, "err", err)
		sub.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_SubscriptionResponse{SubscriptionResponse: &livekit.SubscriptionResponse{
			TrackSid: t.info.Sid, Err: livekit.SubscriptionError_SE_CODEC_UNSUPPORTED,
		}}})
		return
	}
	sub.subs[t.info.Sid] = &subscription{track: t, down: dt}
	r.mu.Unlock()
	t.owner.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_TrackSubscribed{TrackSubscribed: &livekit.TrackSubscribed{TrackSid: t.info.Sid}}})
	sub.negotiateSubscriber(false)
}

// unsubscribe stops sending track sid to sub.
func (r *Room) unsubscribe(sub *Participant, sid string) {
	r.mu.Lock()
	changed := r.dropSubscriptionLocked(sub, sid)
	r.mu.Unlock()
	if changed {
		sub.negotiateSubscriber(false)
	}
}

func (r *Room) dropSubscriptionLocked(sub *Participant, sid string) bool {
	s := sub.subs[sid]
	if s == nil {
		return false
	}
	delete(sub.subs, sid)
	r.foldSubscriptionLocked(sub, s) // report.go
	if err := sub.subscriber.Unsubscribe(s.down); err != nil {
		r.log.Debug("unsubscribe", "subscriber", sub.identity, "track", sid, "err", err)
	}
	return true
}

// renegotiateAll offers again to every subscriber whose senders changed.
func (r *Room) renegotiateAll() {
	r.mu.Lock()
	ps := make([]*Participant, 0, len(r.participants))
	for _, p := range r.participants {
		ps = append(ps, p)
	}
	r.mu.Unlock()
	for _, p := range ps {
		p.negotiateSubscriber(false)
	}
}

// trackBySID finds a published track in the room.
func (r *Room) trackBySIDLocked(sid string) *publishedTrack {
	for _, p := range r.participants {
		if t := p.tracks[sid]; t != nil {
			return t
		}
	}
	return r.programmeTrackLocked(sid) // programme.go
}

// speakerLoop announces who starts and stops speaking, from the audio level the publishers send.
func (r *Room) speakerLoop() {
	tick := time.NewTicker(speakerInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		r.mu.Lock()
		var changes []*livekit.SpeakerInfo
		now := map[string]float32{}
		for _, p := range r.participants {
			var best float32
			for _, t := range p.tracks {
				if t.info.Type != livekit.TrackType_AUDIO || t.info.Muted {
					continue
				}
				if dBov, active := t.media.AudioLevel(); active {
					// dBov (0 loudest, -127 silence) to a linear 0..1 level.
					if l := float32(math.Pow(10, dBov/20)); l > best {
						best = l
					}
				}
			}
			if best > 0 {
				now[p.sid] = best
				if _, was := r.speaking[p.sid]; !was {
					changes = append(changes, &livekit.SpeakerInfo{Sid: p.sid, Level: best, Active: true})
				}
			}
		}
		for sid := range r.speaking {
			if _, still := now[sid]; !still {
				changes = append(changes, &livekit.SpeakerInfo{Sid: sid, Level: 0, Active: false})
			}
		}
		r.speaking = now
		r.mu.Unlock()
		r.updatePriorities() // downlink.go
		if len(changes) > 0 {
			r.sendToAll(&livekit.SignalResponse{Message: &livekit.SignalResponse_SpeakersChanged{
				SpeakersChanged: &livekit.SpeakersChanged{Speakers: changes},
			}}, nil)
		}
	}
}

// speakersLocked describes who speaks now, as SpeakersChanged does.
func (r *Room) speakersLocked() []*livekit.SpeakerInfo {
	out := make([]*livekit.SpeakerInfo, 0, len(r.speaking))
	for sid, level := range r.speaking {
		out = append(out, &livekit.SpeakerInfo{Sid: sid, Level: level, Active: true})
	}
	return out
}

// ActiveSpeakers returns the sids of participants speaking now, loudest first.
func (r *Room) ActiveSpeakers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.speaking))
	for sid := range r.speaking {
		out = append(out, sid)
	}
	sort.Slice(out, func(i, j int) bool { return r.speaking[out[i]] > r.speaking[out[j]] })
	return out
}
