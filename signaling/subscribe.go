package signaling

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/sfu"
)

// Subscribing: the server's offers on the subscriber connection, trickle, the client's
// subscriptions and the size it shows each video at.

func (p *Participant) onSubscriberAnswer(sd *livekit.SessionDescription) error {
	if err := p.subscriber.SetAnswer(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sd.GetSdp()}); err != nil {
		return fmt.Errorf("apply subscriber answer: %w", err)
	}
	p.endRefusedSubscriptions()
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

// endRefusedSubscriptions ends the subscriptions whose codec the subscriber's answer could not
// carry, and tells it so (SE_CODEC_UNSUPPORTED) rather than leave it a track that stays black.
func (p *Participant) endRefusedSubscriptions() {
	r := p.room
	r.mu.Lock()
	var refused []string
	for sid, s := range p.subs {
		if s.down.CodecRefused() {
			refused = append(refused, sid)
		}
	}
	r.mu.Unlock()
	for _, sid := range refused {
		p.log.Info("subscription refused: the subscriber decodes no codec of the track", "track", sid)
		p.send(&livekit.SignalResponse{Message: &livekit.SignalResponse_SubscriptionResponse{SubscriptionResponse: &livekit.SubscriptionResponse{
			TrackSid: sid, Err: livekit.SubscriptionError_SE_CODEC_UNSUPPORTED,
		}}})
		r.unsubscribe(p, sid)
	}
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
	return p.onPublisherCandidate(c)
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
