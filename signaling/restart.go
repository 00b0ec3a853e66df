package signaling

import (
	"net"
	"strings"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"
)

// ICE restarts after a resume, timed so that the path that still works is kept.
//
// A client whose network interface went down and came back (Wi-Fi, a phone's handover) resumes
// its session and restarts ICE on both connections at once. Its old ICE connections usually
// work again within a second; its candidates of the new generation come seconds later
// (Chromium waits for its list of networks to settle). pion drops the old credentials when it
// applies a restart, so applying it at once would leave the member without media until the new
// candidates have been checked: two to four seconds instead of under one.

// restartHoldMax bounds how long a publisher's ICE restart offer waits for its first candidate
// of the new generation (Chromium's come 1.5 to 3.5 s after the network is back).
const restartHoldMax = 5 * time.Second

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
	timer      *time.Timer
}

func (p *Participant) onPublisherOffer(sd *livekit.SessionDescription) error {
	p.restartMu.Lock()
	defer p.restartMu.Unlock()
	var carried []webrtc.ICECandidateInit
	if h := p.heldRestart; h != nil {
		// A newer offer replaces the held one; the candidates of its generation stay.
		h.timer.Stop()
		p.heldRestart = nil
		carried = h.candidates
	}
	ufrag, restarts := p.publisher.RestartsICE(sd.GetSdp())
	if !restarts || strings.Contains(sd.GetSdp(), "a=candidate:") {
		if err := p.answerPublisher(sd); err != nil {
			return err
		}
		return p.addPublisherCandidates(carried)
	}
	h := &heldRestart{offer: sd, ufrag: ufrag, loopback: p.publisher.PathOnLoopback(), since: time.Now()}
	for _, c := range carried {
		if candidateUfrag(c) == ufrag {
			h.candidates = append(h.candidates, c)
		}
	}
	h.timer = time.AfterFunc(restartHoldMax, func() {
		p.restartMu.Lock()
		defer p.restartMu.Unlock()
		if p.heldRestart == h {
			p.releaseRestartLocked("no candidate of the new generation")
		}
	})
	p.heldRestart = h
	p.log.Debug("publisher ICE restart held until the client's new candidates", "ufrag", ufrag)
	return nil
}

// onPublisherCandidate adds a candidate for the publisher connection, or keeps it with a held
// restart, which its first candidate of the new generation releases: the first that can reach
// the server as the old path did (Chromium, allowed loopback, offers its loopback address at
// once and its network's seconds later, and a loopback address only reaches a server on the
// same machine).
func (p *Participant) onPublisherCandidate(c webrtc.ICECandidateInit) error {
	p.restartMu.Lock()
	defer p.restartMu.Unlock()
	h := p.heldRestart
	if h == nil {
		return p.publisher.AddICECandidate(c)
	}
	h.candidates = append(h.candidates, c)
	if u := candidateUfrag(c); c.Candidate != "" && (u == "" || u == h.ufrag) && candidateOnLoopback(c) == h.loopback {
		return p.releaseRestartLocked("first candidate of the new generation")
	}
	return nil
}

// releaseRestartLocked answers the held restart and adds its candidates. Called with restartMu
// held.
func (p *Participant) releaseRestartLocked(why string) error {
	h := p.heldRestart
	p.heldRestart = nil
	h.timer.Stop()
	p.log.Debug("publisher ICE restart answered", "held", time.Since(h.since).Round(time.Millisecond), "reason", why)
	if err := p.answerPublisher(h.offer); err != nil {
		return err
	}
	return p.addPublisherCandidates(h.candidates)
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
// its old path has not come back by itself within subscriberRestartWait.
func (p *Participant) restartSubscriberUnlessBack() {
	if p.subscriber.Connected() {
		return
	}
	time.AfterFunc(subscriberRestartWait, func() {
		if p.subscriber.Connected() {
			p.log.Debug("subscriber path back without an ICE restart")
			return
		}
		p.negotiateSubscriber(true)
	})
}

// candidateUfrag is the ICE username fragment a trickled candidate belongs to: its
// usernameFragment, or the "ufrag" of the candidate line (Chromium writes both); "" if unknown.
func candidateUfrag(c webrtc.ICECandidateInit) string {
	if c.UsernameFragment != nil && *c.UsernameFragment != "" {
		return *c.UsernameFragment
	}
	f := strings.Fields(c.Candidate)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "ufrag" {
			return f[i+1]
		}
	}
	return ""
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
