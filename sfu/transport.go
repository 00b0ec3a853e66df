package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// Role says which side of a transport makes the offers.
type Role int

const (
	// PublisherRole: the client offers its tracks; the SFU answers.
	PublisherRole Role = iota + 1
	// SubscriberRole: the SFU offers the tracks it forwards; the client answers.
	SubscriberRole
)

func (r Role) String() string {
	switch r {
	case PublisherRole:
		return "publisher"
	case SubscriberRole:
		return "subscriber"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ErrTransportClosed is returned by calls on a closed transport.
var ErrTransportClosed = errors.New("sfu: the transport is closed")

// Data channel labels used by LiveKit clients.
const (
	labelReliable = "_reliable"
	labelLossy    = "_lossy"
)

// TransportHandlers are called one at a time, in order, from a goroutine of the transport
// (never from pion's), so a handler may call any method of the transport, Close included. A
// handler that blocks holds back the events after it, not the media.
type TransportHandlers struct {
	// OnICECandidate trickles a local candidate towards the client. It is called only after
	// the Answer or Offer that produced it has returned.
	OnICECandidate func(webrtc.ICECandidateInit)
	// OnTrack reports a new published track (publisher role), once per track even with
	// simulcast; it already forwards to any DownTrack added.
	OnTrack func(*PublishedTrack)
	// OnData delivers a message received on a data channel labelled "_reliable" or "_lossy".
	OnData func(reliable bool, data []byte)
	// OnNegotiationNeeded (subscriber role) says the senders changed; call Offer.
	OnNegotiationNeeded func()
	// OnStateChange reports the peer connection state.
	OnStateChange func(webrtc.PeerConnectionState)
	// OnFirstMedia (subscriber role) is called once, when the first media packet has been
	// sent to the client: the end of a join as the user perceives it.
	OnFirstMedia func()
	// OnStreamState (subscriber role) says the allocator paused a video for lack of
	// bandwidth (active false) or resumed it: the client is told with a StreamStateUpdate.
	OnStreamState func(d *DownTrack, active bool)
	// OnLayersWanted (publisher role) gives, for a published video, the best quality some
	// subscriber receives now (QualityOff: none): the layers above it need not be encoded.
	OnLayersWanted func(p *PublishedTrack, best Quality)
}

// Transport is one peer connection with a client, in one role.
type Transport struct {
	engine *Engine
	role   Role
	h      TransportHandlers
	log    *slog.Logger
	pc     *webrtc.PeerConnection

	ctx    context.Context
	cancel context.CancelFunc
	events eventQueue
	wg     sync.WaitGroup // media goroutines: layer readers, RTCP readers
	done   chan struct{}

	// negMu orders SDP work: candidates are handed out after the description that produced
	// them, and Subscribe finishes configuring a sender before an offer can include it.
	negMu sync.Mutex
	alias *iceAlias // icekeep.go; guarded by negMu

	connected  atomic.Bool
	lostAt     atomic.Int64 // when the connection was last lost (Unix ns), 0 while it is up
	mediaFlows atomic.Bool  // a DownTrack sent its first packet
	link       *downlink    // subscriber role: estimate and allocation

	mu                sync.Mutex
	closed            bool
	remoteSet         bool
	pendingCandidates []webrtc.ICECandidateInit
	published         map[*webrtc.RTPReceiver]*PublishedTrack
	downTracks        map[*DownTrack]struct{}
	reliable, lossy   *webrtc.DataChannel
	reliableOpen      bool
	pendingReliable   [][]byte // reliable messages sent before the client's channel was open
}

// maxPendingReliable bounds what waits for a client's reliable channel to open (a client that
// never opens one must not make the server hoard messages).
const maxPendingReliable = 256

// NewTransport creates a peer connection in the given role. No STUN or TURN server is used:
// clients reach the SFU's own addresses.
func (e *Engine) NewTransport(role Role, h TransportHandlers) (*Transport, error) {
	var api *webrtc.API
	switch role {
	case PublisherRole:
		api = e.publisherAPI
	case SubscriberRole:
		api = e.subscriberAPI
	default:
		return nil, fmt.Errorf("sfu: new transport: unknown role %d", int(role))
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return nil, fmt.Errorf("sfu: new %s peer connection: %w", role, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		engine:     e,
		role:       role,
		h:          h,
		log:        e.log.With("role", role.String()),
		pc:         pc,
		ctx:        ctx,
		cancel:     cancel,
		events:     eventQueue{wake: make(chan struct{}, 1)},
		done:       make(chan struct{}),
		published:  map[*webrtc.RTPReceiver]*PublishedTrack{},
		downTracks: map[*DownTrack]struct{}{},
	}
	if err := e.register(t); err != nil {
		cancel()
		_ = pc.Close()
		return nil, err
	}
	if role == SubscriberRole {
		t.link = newDownlink(t, e.allocationOff)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.link.run(ctx)
		}()
	}

	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil || h.OnICECandidate == nil {
			return
		}
		init := c.ToJSON()
		t.events.push(func() {
			t.negMu.Lock() // wait for the Answer or Offer in progress to return
			t.negMu.Unlock()
			h.OnICECandidate(init)
		})
	})
	pc.OnConnectionStateChange(t.onStateChange)
	pc.OnTrack(t.onTrack)
	pc.OnDataChannel(t.onDataChannel)
	pc.OnNegotiationNeeded(func() {
		if h.OnNegotiationNeeded != nil {
			t.events.push(h.OnNegotiationNeeded)
		}
	})
	go t.dispatch()
	return t, nil
}

// Role is the transport's role.
func (t *Transport) Role() Role { return t.role }

// Done is closed once the transport is closed and every goroutine it started has ended.
func (t *Transport) Done() <-chan struct{} { return t.done }

func (t *Transport) dispatch() {
	t.events.run(t.ctx)
	t.wg.Wait()
	close(t.done)
}

func (t *Transport) onStateChange(s webrtc.PeerConnectionState) {
	was := t.connected.Swap(s == webrtc.PeerConnectionStateConnected)
	switch s {
	case webrtc.PeerConnectionStateConnected:
		// Subscribers start (or restart, after an ICE restart) on a fresh keyframe.
		for _, d := range t.boundDownTracks() {
			d.resync()
		}
		if lost := t.lostAt.Swap(0); lost != 0 {
			// The publisher's layers ask for a keyframe themselves when they come back after
			// a silence (PublishedTrack.handle): this state change can come during the outage.
			t.log.Info("media path back", "after", time.Duration(time.Now().UnixNano()-lost).Round(time.Millisecond))
		}
	case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed:
		if was {
			t.lostAt.Store(time.Now().UnixNano())
			t.log.Info("media path lost", "state", s.String())
		}
	}
	if h := t.h.OnStateChange; h != nil {
		t.events.push(func() { h(s) })
	}
}

func (t *Transport) boundDownTracks() []*DownTrack {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.AppendSeq(make([]*DownTrack, 0, len(t.downTracks)), maps.Keys(t.downTracks))
}

// onTrack runs in a goroutine pion starts for each incoming stream (one per simulcast layer),
// and reads that stream until it ends.
func (t *Transport) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	if t.role != PublisherRole {
		// Subscribers publish on their own publisher transport; media sent here is ignored.
		t.log.Debug("ignoring media sent on a subscriber transport", "track", remote.ID())
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	p := t.published[receiver]
	first := p == nil
	if first {
		p = newPublishedTrack(remote.ID(), remote.StreamID(), remote.Codec(), remote.Kind(),
			receiver.GetParameters().HeaderExtensions, t.pc.WriteRTCP, t.log)
		p.fanout = t.engine.udpBatch // nil unless the Engine batches its writes
		if h := t.h.OnLayersWanted; h != nil {
			p.onWanted = func(layer int8) {
				q := QualityOff
				if layer >= 0 {
					q = Quality(layer)
				}
				t.events.push(func() { h(p, q) })
			}
		}
		t.published[receiver] = p
		t.engine.stats.addTrack(p)
	}
	l, ok := p.addLayer(remote.RID(), uint32(remote.SSRC()))
	if !ok {
		t.mu.Unlock()
		t.log.Warn("ignoring an incoming stream", "track", remote.ID(), "rid", remote.RID(), "ssrc", remote.SSRC())
		return
	}
	t.wg.Add(2)
	t.mu.Unlock()

	t.log.Debug("incoming stream", "track", p.id, "rid", l.rid, "codec", p.codec.MimeType, "ssrc", l.ssrc)
	if first && t.h.OnTrack != nil {
		t.events.push(func() { t.h.OnTrack(p) })
	}
	go func() {
		defer t.wg.Done()
		drainRTCP(receiver, remote.RID())
	}()
	defer t.wg.Done()
	p.readLayer(l, remote)

	t.mu.Lock()
	select {
	case <-p.done:
		if t.published[receiver] == p {
			delete(t.published, receiver)
		}
		t.engine.stats.endTrack(p) // its last reader has stopped: its counters are final
	default:
	}
	t.mu.Unlock()
}

// streamStateChanged is called by the allocator when it pauses or resumes a video.
func (t *Transport) streamStateChanged(d *DownTrack, active bool) {
	if h := t.h.OnStreamState; h != nil {
		t.events.push(func() { h(d, active) })
	}
}

// Bandwidth is the subscriber connection's estimate and what it rests on; ok is false on a
// publisher transport.
func (t *Transport) Bandwidth() (BWEState, bool) {
	if t.link == nil {
		return BWEState{}, false
	}
	st := t.link.bwe.state(time.Now().UnixNano())
	t.link.mu.Lock()
	st.PausedVideos = t.link.paused
	t.link.mu.Unlock()
	return st, true
}

// mediaSent is called by a DownTrack after its first packet went out.
func (t *Transport) mediaSent() {
	if t.mediaFlows.CompareAndSwap(false, true) && t.h.OnFirstMedia != nil {
		t.events.push(t.h.OnFirstMedia)
	}
}

func (t *Transport) onDataChannel(dc *webrtc.DataChannel) {
	var reliable bool
	switch dc.Label() {
	case labelReliable:
		reliable = true
	case labelLossy:
	default:
		return // "_data_track" and others are not relayed
	}
	t.mu.Lock()
	if reliable {
		t.reliable = dc
	} else {
		t.lossy = dc
	}
	t.mu.Unlock()
	if reliable {
		dc.OnOpen(func() { t.flushReliable(dc) })
		if dc.ReadyState() == webrtc.DataChannelStateOpen {
			t.flushReliable(dc)
		}
	}
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		if h := t.h.OnData; h != nil {
			t.events.push(func() { h(reliable, msg.Data) })
		}
	})
}

// Answer applies the client's offer (publisher role) and returns the SFU's answer, its codecs
// ordered as wishes says (codecwish.go).
func (t *Transport) Answer(offer webrtc.SessionDescription, wishes CodecWishes) (webrtc.SessionDescription, error) {
	if t.role != PublisherRole {
		return webrtc.SessionDescription{}, fmt.Errorf("sfu: Answer on a %s transport: only publishers answer", t.role)
	}
	t.negMu.Lock()
	defer t.negMu.Unlock()
	if t.isClosed() {
		return webrtc.SessionDescription{}, ErrTransportClosed
	}
	if err := checkOffer(offer.SDP); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("sfu: refuse the client's offer: %w", err)
	}
	offer.SDP = t.unaliasLocked(offer.SDP)
	if err := t.pc.SetRemoteDescription(offer); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("sfu: apply the client's offer: %w", err)
	}
	t.flushCandidates()
	t.orderAnswerCodecs(offer.SDP, wishes)
	answer, err := t.pc.CreateAnswer(nil)
	if err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("sfu: create answer: %w", err)
	}
	if err := t.pc.SetLocalDescription(answer); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("sfu: apply our answer: %w", err)
	}
	return answer, nil
}

// Connected says whether the connection has a working media path now (its peer connection is
// connected; it is not while ICE sees the path silent or checks a restart).
func (t *Transport) Connected() bool { return t.connected.Load() }

// PathOnLoopback says whether the client's end of the selected ICE pair is a loopback address
// (a client on the server's machine); false when no pair is selected.
func (t *Transport) PathOnLoopback() bool {
	pair, err := t.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Remote == nil {
		return false
	}
	ip := net.ParseIP(pair.Remote.Address)
	return ip != nil && ip.IsLoopback()
}

// RestartsICE says whether offer, from the client, restarts ICE on a connection already
// negotiated (its ICE username fragment is new), and returns the new fragment.
func (t *Transport) RestartsICE(offer string) (ufrag string, restarts bool) {
	current := t.pc.CurrentRemoteDescription()
	if current == nil {
		return "", false
	}
	ufrag = ICEUfrag(offer)
	t.negMu.Lock()
	declined := t.alias != nil && t.alias.ufrag == ufrag
	t.negMu.Unlock()
	return ufrag, ufrag != "" && !declined && ufrag != ICEUfrag(current.SDP)
}

// ICEUfrag is the first ICE username fragment in a session description ("" if none).
func ICEUfrag(sdp string) string { return sdpAttribute(sdp, "ice-ufrag") }

// Offer (subscriber role) creates and applies an offer for the current senders; iceRestart
// gathers new ICE credentials, after the client lost connectivity.
func (t *Transport) Offer(iceRestart bool) (webrtc.SessionDescription, error) {
	if t.role != SubscriberRole {
		return webrtc.SessionDescription{}, fmt.Errorf("sfu: Offer on a %s transport: only subscribers are offered", t.role)
	}
	t.negMu.Lock()
	defer t.negMu.Unlock()
	if t.isClosed() {
		return webrtc.SessionDescription{}, ErrTransportClosed
	}
	offer, err := t.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: iceRestart})
	if err != nil {
		if t.isClosed() { // closed while the offer was made: the participant is leaving
			return webrtc.SessionDescription{}, ErrTransportClosed
		}
		return webrtc.SessionDescription{}, fmt.Errorf("sfu: create offer: %w", err)
	}
	if err := t.pc.SetLocalDescription(offer); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("sfu: apply our offer: %w", err)
	}
	return offer, nil
}

// SetAnswer applies the client's answer to the last Offer (subscriber role).
func (t *Transport) SetAnswer(answer webrtc.SessionDescription) error {
	if t.role != SubscriberRole {
		return fmt.Errorf("sfu: SetAnswer on a %s transport: only subscribers are offered", t.role)
	}
	t.negMu.Lock()
	defer t.negMu.Unlock()
	if t.isClosed() {
		return ErrTransportClosed
	}
	if err := t.pc.SetRemoteDescription(answer); err != nil {
		return fmt.Errorf("sfu: apply the client's answer: %w", err)
	}
	t.flushCandidates()
	return nil
}

// AddICECandidate adds a candidate trickled by the client. Candidates that arrive before the
// client's first description are kept until it is applied.
func (t *Transport) AddICECandidate(c webrtc.ICECandidateInit) error {
	if c.Candidate == "" || t.declinedGeneration(c) {
		return nil // end of candidates, or of a generation the server declined: nothing for pion
	}
	t.mu.Lock()
	if !t.remoteSet {
		t.pendingCandidates = append(t.pendingCandidates, c)
		t.mu.Unlock()
		return nil
	}
	t.mu.Unlock()
	if err := t.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("sfu: add client candidate %q: %w", c.Candidate, err)
	}
	return nil
}

func (t *Transport) flushCandidates() {
	t.mu.Lock()
	t.remoteSet = true
	pending := t.pendingCandidates
	t.pendingCandidates = nil
	t.mu.Unlock()
	for _, c := range pending {
		if err := t.pc.AddICECandidate(c); err != nil {
			t.log.Warn("dropping a client candidate", "candidate", c.Candidate, "err", err)
		}
	}
}

// flushReliable sends, in order, what was queued before the reliable channel opened; sends
// that come later wait for the flag, so the order is kept.
func (t *Transport) flushReliable(dc *webrtc.DataChannel) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reliableOpen || t.reliable != dc {
		return
	}
	for _, msg := range t.pendingReliable {
		if err := dc.Send(msg); err != nil {
			t.log.Debug("queued reliable message not delivered", "err", err)
		}
	}
	t.pendingReliable = nil
	t.reliableOpen = true
}

// SendData sends on the client-created "_reliable" or "_lossy" data channel of this transport.
// Reliable messages sent before the client's channel is open wait for it (up to a bound);
// lossy ones are dropped, as their channel allows.
func (t *Transport) SendData(reliable bool, data []byte) error {
	t.mu.Lock()
	dc, label := t.lossy, labelLossy
	if reliable {
		dc, label = t.reliable, labelReliable
		if !t.reliableOpen && t.role == PublisherRole { // clients open their channels on the publisher connection
			defer t.mu.Unlock()
			if t.closed {
				return ErrTransportClosed
			}
			if len(t.pendingReliable) >= maxPendingReliable {
				return fmt.Errorf("sfu: send data: %d reliable messages already wait for the client's %s channel", maxPendingReliable, label)
			}
			t.pendingReliable = append(t.pendingReliable, slices.Clone(data))
			return nil
		}
	}
	t.mu.Unlock()
	if dc == nil {
		return fmt.Errorf("sfu: send data: the client opened no %s data channel on this %s transport", label, t.role)
	}
	if err := dc.Send(data); err != nil {
		return fmt.Errorf("sfu: send on %s: %w", label, err)
	}
	return nil
}

// Subscribe adds a sender forwarding p to this subscriber, announced with the given track and
// stream ids; OnNegotiationNeeded follows. The DownTrack starts at the highest quality.
func (t *Transport) Subscribe(p *PublishedTrack, trackID, streamID string) (*DownTrack, error) {
	if t.role != SubscriberRole {
		return nil, fmt.Errorf("sfu: Subscribe on a %s transport: tracks go to subscriber transports", t.role)
	}
	select {
	case <-p.done:
		return nil, fmt.Errorf("sfu: subscribe to track %s: the track has ended", p.id)
	default:
	}
	d := newDownTrack(p, t, trackID, streamID)
	t.negMu.Lock()
	defer t.negMu.Unlock()
	if t.isClosed() {
		return nil, fmt.Errorf("sfu: subscribe: %w", ErrTransportClosed)
	}
	sender, err := t.pc.AddTrack(d)
	if err != nil {
		return nil, fmt.Errorf("sfu: subscribe to track %s: %w", p.id, err)
	}
	d.sender = sender
	if err := t.preferCodecs(sender, p); err != nil {
		_ = t.pc.RemoveTrack(sender)
		return nil, fmt.Errorf("sfu: subscribe to track %s: %w", p.id, err)
	}

	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = sender.Stop()
		return nil, fmt.Errorf("sfu: subscribe: %w", ErrTransportClosed)
	}
	t.downTracks[d] = struct{}{}
	p.addDownTrack(d)
	t.engine.stats.addDownTrack(d)
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		d.readRTCP()
	}()
	return d, nil
}

// preferCodecs puts the published codec first in the sender's m-line, keeping the other codecs
// this connection can still carry.
func (t *Transport) preferCodecs(sender *webrtc.RTPSender, p *PublishedTrack) error {
	var tr *webrtc.RTPTransceiver
	for _, c := range t.pc.GetTransceivers() {
		if c.Sender() == sender {
			tr = c
			break
		}
	}
	if tr == nil {
		return errors.New("no transceiver holds the new sender")
	}
	prefs := codecPreferences(p.codec, p.kind)
	if err := tr.SetCodecPreferences(prefs); err == nil {
		return nil
	}
	// Some codecs were refused by the client in an earlier answer; pion cannot offer them again.
	var kept []webrtc.RTPCodecParameters
	for _, c := range prefs {
		if tr.SetCodecPreferences([]webrtc.RTPCodecParameters{c}) == nil {
			kept = append(kept, c)
		}
	}
	if _, _, _, err := selectCodec(p.codec, kept); err != nil {
		return err
	}
	if err := tr.SetCodecPreferences(kept); err != nil {
		return fmt.Errorf("set codec preferences: %w", err)
	}
	return nil
}

// Unsubscribe removes a DownTrack's sender; OnNegotiationNeeded follows.
func (t *Transport) Unsubscribe(d *DownTrack) error {
	if d == nil || d.transport != t {
		return errors.New("sfu: unsubscribe: the DownTrack does not belong to this transport")
	}
	t.negMu.Lock()
	defer t.negMu.Unlock()
	t.mu.Lock()
	_, ok := t.downTracks[d]
	delete(t.downTracks, d)
	t.mu.Unlock()
	if !ok {
		return nil
	}
	d.track.removeDownTrack(d)
	err := t.pc.RemoveTrack(d.sender)
	if err != nil {
		_ = d.sender.Stop() // the connection is closing; the RTCP reader must still end
	}
	<-d.rtcpDone
	// Unbound from its sender, the DownTrack sends nothing more: its counters are final.
	t.engine.stats.endDownTrack(d)
	if err != nil && !t.isClosed() {
		return fmt.Errorf("sfu: unsubscribe from track %s: %w", d.track.id, err)
	}
	return nil
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Close ends the peer connection and waits for the media goroutines; Done is closed when the
// handler goroutine has ended too (it may be the caller).
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	downTracks := make([]*DownTrack, 0, len(t.downTracks))
	for d := range t.downTracks {
		downTracks = append(downTracks, d)
	}
	published := make([]*PublishedTrack, 0, len(t.published))
	for _, p := range t.published {
		published = append(published, p)
	}
	t.mu.Unlock()

	t.cancel()
	for _, d := range downTracks {
		d.track.removeDownTrack(d)
	}
	err := t.pc.GracefulClose()
	t.wg.Wait()
	for _, d := range downTracks {
		t.engine.stats.endDownTrack(d)
	}
	for _, p := range published {
		p.end()
		t.engine.stats.endTrack(p)
	}
	t.engine.forget(t)
	if err != nil {
		return fmt.Errorf("sfu: close %s transport: %w", t.role, err)
	}
	return nil
}

// eventQueue hands events from pion's goroutines to the transport's handler goroutine without
// ever blocking the producer.
type eventQueue struct {
	mu    sync.Mutex
	items []func()
	wake  chan struct{}
}

func (q *eventQueue) push(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		for ctx.Err() == nil {
			q.mu.Lock()
			if len(q.items) == 0 {
				q.mu.Unlock()
				break
			}
			f := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			f()
		}
	}
}
