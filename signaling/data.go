package signaling

import (
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"
)

// relayData delivers a data packet to the named identities, or to everyone but the sender when
// none is named. from is nil for packets sent by the server itself.
func (r *Room) relayData(from *Participant, pkt *livekit.DataPacket, reliable bool, destinations []string) {
	if reliable {
		pkt.Kind = livekit.DataPacket_RELIABLE
	} else {
		pkt.Kind = livekit.DataPacket_LOSSY
	}
	data, err := proto.Marshal(pkt)
	if err != nil {
		r.log.Warn("encode data packet", "err", err)
		return
	}
	want := map[string]bool{}
	for _, d := range destinations {
		want[d] = true
	}
	r.mu.Lock()
	targets := make([]*Participant, 0, len(r.participants))
	for id, p := range r.participants {
		if p == from || (len(want) > 0 && !want[id]) {
			continue
		}
		targets = append(targets, p)
	}
	r.mu.Unlock()
	for _, p := range targets {
		if err := p.publisher.SendData(reliable, data); err != nil {
			p.log.Debug("data packet not delivered", "err", err)
		}
	}
}

// SendData sends a server-originated data packet on a topic to the named identities (all when
// empty). The deliberation uses it to push state on topic "hemicycle.council".
func (r *Room) SendData(payload []byte, topic string, reliable bool, destinations []string) {
	user := &livekit.UserPacket{Payload: payload}
	if topic != "" {
		user.Topic = proto.String(topic)
	}
	r.relayData(nil, &livekit.DataPacket{Value: &livekit.DataPacket_User{User: user}}, reliable, destinations)
}
