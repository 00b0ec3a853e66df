package signaling

import "github.com/livekit/protocol/livekit"

// iceServers is the TURN relay a client may fall back on, with a credential of its own
// (JoinResponse and ReconnectResponse ice_servers); none when the server runs no relay. A
// resuming client gets a fresh credential, so a sitting can outlast one.
func (s *Server) iceServers(identity string) []*livekit.ICEServer {
	if s.cfg.TURN == nil {
		return nil
	}
	c, err := s.cfg.TURN.ICEServer(identity)
	if err != nil {
		s.log.Warn("no TURN credential: the client can join only where UDP passes", "identity", identity, "err", err)
		return nil
	}
	return []*livekit.ICEServer{{Urls: c.URLs, Username: c.Username, Credential: c.Credential}}
}
