package sfu

import (
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// Keeping a working ICE path through a client's ICE restart.
//
// A client that resumes its session restarts ICE on its publisher connection at once, whether
// its old path works again or not. Browsers keep using the old path until one of the new
// generation is checked; pion, on applying a restart, drops its selected pair and all remote
// candidates, so the member's media stops until the client's new candidates have been checked
// and nominated: a gap of a few hundred milliseconds, seconds after the member heard the debate
// again. When the old path demonstrably carries the client's packets again, the server answers
// the restart with the credentials in use instead: the client keeps its old path, and its new
// generation's checks, which the server does not know, fail quietly.

// iceAlias maps the ICE credentials of a restart the server declined (the client's new ones) to
// the credentials in use, for every later offer from that client. Guarded by negMu.
type iceAlias struct {
	ufrag, pwd           string // what the client's offers carry
	inUseUfrag, inUsePwd string // what the server's ICE agent knows
}

// AnswerKeepingPath answers an offer that restarts ICE (RestartsICE) without restarting it: the
// offer's new credentials are replaced by those of the path in use, and kept as an alias so the
// client's later offers, which carry them again, are read the same way. For a client whose old
// path carries its packets again (PathReceivingSince).
func (t *Transport) AnswerKeepingPath(offer webrtc.SessionDescription, wishes CodecWishes) (webrtc.SessionDescription, error) {
	current := t.pc.CurrentRemoteDescription()
	if current == nil {
		return t.Answer(offer, wishes)
	}
	alias := iceAlias{
		ufrag: ICEUfrag(offer.SDP), pwd: sdpAttribute(offer.SDP, "ice-pwd"),
		inUseUfrag: ICEUfrag(current.SDP), inUsePwd: sdpAttribute(current.SDP, "ice-pwd"),
	}
	t.negMu.Lock()
	t.alias = &alias
	t.negMu.Unlock()
	return t.Answer(offer, wishes)
}

// unalias rewrites an offer that carries the aliased credentials to the ones in use, and
// forgets the alias when the client has restarted ICE again with credentials of its own.
// Called with negMu held.
func (t *Transport) unaliasLocked(sdp string) string {
	a := t.alias
	if a == nil {
		return sdp
	}
	if ICEUfrag(sdp) != a.ufrag {
		t.alias = nil
		return sdp
	}
	sdp = strings.ReplaceAll(sdp, "a=ice-ufrag:"+a.ufrag+"\r\n", "a=ice-ufrag:"+a.inUseUfrag+"\r\n")
	return strings.ReplaceAll(sdp, "a=ice-pwd:"+a.pwd+"\r\n", "a=ice-pwd:"+a.inUsePwd+"\r\n")
}

// declinedGeneration says whether a trickled candidate belongs to the ICE generation the server
// declined (its checks could never succeed: the server's agent does not know its credentials).
func (t *Transport) declinedGeneration(c webrtc.ICECandidateInit) bool {
	t.negMu.Lock()
	defer t.negMu.Unlock()
	return t.alias != nil && CandidateUfrag(c) == t.alias.ufrag
}

// PathReceivingSince says whether a packet from the client arrived on the selected ICE pair
// after since.
func (t *Transport) PathReceivingSince(since time.Time) bool {
	stats, ok := t.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePairStats()
	return ok && stats.LastPacketReceivedTimestamp.Time().After(since)
}

// CandidateUfrag is the ICE username fragment a trickled candidate belongs to: its
// usernameFragment, or the "ufrag" of the candidate line (Chromium writes both); "" if unknown.
func CandidateUfrag(c webrtc.ICECandidateInit) string {
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

// sdpAttribute is the value of the first a=name: line of a session description ("" if none).
func sdpAttribute(sdp, name string) string {
	attr := "a=" + name + ":"
	i := strings.Index(sdp, attr)
	if i < 0 {
		return ""
	}
	rest := sdp[i+len(attr):]
	if end := strings.IndexAny(rest, "\r\n"); end >= 0 {
		rest = rest[:end]
	}
	return strings.TrimSpace(rest)
}
