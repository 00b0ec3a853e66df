package signaling

import (
	"net"
	"strings"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/sfu"
	"github.com/pion/webrtc/v4"
)

// ICE restarts after a resume, timed so that the path that still works is kept.
//
// A client whose network interface went down and came back (Wi-Fi, a phone's handover) resumes
// its session and restarts ICE on both connections at once. Its old ICE connections usually
// work again within a second; its candidates of the new generation come seconds later
// (Chromium waits for its list of networks to settle). pion drops its path when it applies a
// restart, so applying it at once would leave the member without media until the new
// candidates have been checked: two to four seconds instead of under one. So the publisher's
// restart offer is held: if the old path carries the client's packets again, the restart is
// declined (answered with the credentials in use, sfu.AnswerKeepingPath) and the member never
// loses the path they hear the debate on; if a candidate of the new generation comes first, or
// nothing within restartHoldMax, the restart is applied.

// restartHoldMax bounds how long a publisher's ICE restart offer is held (Chromium's candidates
// of the new generation come 1.5 to 3.5 s after the network is back); well under the SDKs'
// negotiation timeout (15 s).
const restartHoldMax = 5 * time.Second

// oldPathPoll is how often a held restart looks whether the old path carries packets again.
const oldPathPoll = 50 * time.Millisecond

// subscriberRestartWait is how long a resumed participant's subscriber connection is given to
// come back on its old path before the server restarts its ICE.
const subscriberRestartWait = 1200 * time.Millisecond

// heldRestart is a publisher ICE restart offer kept unanswered, with the candidates trickled
// for it meanwhile.
type heldRestart struct {
	offer      *livekit.SessionDescription
	ufrag      string
	loopback   bool // the old path's client end is a loopback address
	since      time.Time
	candidates []webrtc.ICECandidateInit
	released   chan struct{} // closed when answered
}

func (p *Participant) onPublisherOffer(sd *livekit.SessionDescription) error {
	p.restartMu.Lock()
	defer p.restartMu.Unlock()
	var carried []webrtc.ICECandidateInit
	if h := p.heldRestart; h != nil {
		// A newer offer replaces the held one; the candidates of its generation stay.
		close(h.released)
		p.heldRestart = nil
		carried = h.candidates
	}
	ufrag, restarts := p.publisher.RestartsICE(sd.GetSdp())
	if !restarts || strings.Contains(sd.GetSdp(), "a=candidate:") {
		if err := p.answerPublisher(sd, false); err != nil {
			return err
		}
		return p.addPublisherCandidates(carried)
	}
	h := &heldRestart{offer: sd, ufrag: ufrag, loopback: p.publisher.PathOnLoopback(), since: time.Now(), released: make(chan struct{})}
	for _, c := range carried {
		if sfu.CandidateUfrag(c) == ufrag {
			h.candidates = append(h.candidates, c)
		}
	}
	p.heldRestart = h
	go p.watchHeldRestart(h)
	p.log.Debug("publisher ICE restart held until the old path carries packets or the client's new candidates come", "ufrag", ufrag)
	return nil
}

// watchHeldRestart declines the held restart as soon as the old path carries the client's
// packets again, and applies it after restartHoldMax if nothing decided it before.
func (p *Participant) watchHeldRestart(h *heldRestart) {
	poll := time.NewTicker(oldPathPoll)
	defer poll.Stop()
	deadline := time.NewTimer(restartHoldMax)
	defer deadline.Stop()
	for {
		var why string
		select {
		case <-h.released:
			return
		case <-p.publisher.Done():
			return
		case <-deadline.C:
			why = "no candidate of the new generation"
		case <-poll.C:
			if !p.publisher.PathReceivingSince(h.since) {
				continue
			}
			why = "old path carries packets again"
		}
		p.restartMu.Lock()
		if p.heldRestart == h {
			if err := p.releaseRestartLocked(why); err != nil {
				p.log.Warn("answer a held ICE restart", "err", err)
			}
		}
		p.restartMu.Unlock()
		return
	}
}

// onPublisherCandidate adds a candidate for the publisher connection, or keeps it with a held
// restart, which its first candidate of the new generation releases if the old path is still
// silent: the first that can reach the server as the old path did (Chromium, allowed loopback,
// offers its loopback address at once and its network's seconds later, and a loopback address
// only reaches a server on the same machine).
func (p *Participant) onPublisherCandidate(c webrtc.ICECandidateInit) error {
	p.restartMu.Lock()
	defer p.restartMu.Unlock()
	h := p.heldRestart
	if h == nil {
		return p.publisher.AddICECandidate(c)
	}
	h.candidates = append(h.candidates, c)
	if u := sfu.CandidateUfrag(c); c.Candidate != "" && (u == "" || u == h.ufrag) && candidateOnLoopback(c) == h.loopback {
		return p.releaseRestartLocked("first candidate of the new generation")
	}
	return nil
}

// releaseRestartLocked answers the held restart: declined if the old path carries the client's
// packets again, applied with its candidates otherwise. Called with restartMu held.
func (p *Participant) releaseRestartLocked(why string) error {
	h := p.heldRestart
	p.heldRestart = nil
	close(h.released)
	keep := p.publisher.PathReceivingSince(h.since)
	p.log.Debug("publisher ICE restart answered", "held", time.Since(h.since).Round(time.Millisecond),
		"reason", why, "old path kept", keep)
	if err := p.answerPublisher(h.offer, keep); err != nil {
		return err
	}
	return p.addPublisherCandidates(h.candidates) // a declined generation's are dropped (sfu)
}

func (p *Participant) addPublisherCandidates(cs []webrtc.ICECandidateInit) error {
	for _, c := range cs {
		if err := p.publisher.AddICECandidate(c); err != nil {
			return err
		}
	}
	return nil
}

// restartSubscriberUnlessBack restarts ICE on a resumed participant's subscriber connection if
// its old path has not come back by itself within subscriberRestartWait: neither connected
// again in pion's eyes nor carrying the client's packets (its reports and feedback), which
// pion's own checks may take longer to notice. A restart then would drop a path that works.
func (p *Participant) restartSubscriberUnlessBack() {
	if p.subscriber.Connected() {
		return
	}
	since := time.Now()
	time.AfterFunc(subscriberRestartWait, func() {
		if p.subscriber.Connected() || p.subscriber.PathReceivingSince(since) {
			p.log.Debug("subscriber path back without an ICE restart")
			return
		}
		p.negotiateSubscriber(true)
	})
}

// candidateOnLoopback says whether a trickled candidate's address is a loopback address.
func candidateOnLoopback(c webrtc.ICECandidateInit) bool {
	f := strings.Fields(c.Candidate) // candidate:foundation component transport priority address port typ …
	if len(f) < 5 {
		return false
	}
	ip := net.ParseIP(f[4])
	return ip != nil && ip.IsLoopback()
}
