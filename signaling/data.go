package signaling

import (
	"context"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/utils"
	"google.golang.org/protobuf/proto"
)

// relayData delivers a data packet to the named identities, or to everyone but the sender when
// none is named. from is nil for packets sent by the server itself.
func (r *Room) relayData(from *Participant, pkt *livekit.DataPacket, reliable bool, destinations []string) {
	if isRPC(pkt) && len(destinations) == 0 {
		// An RPC has one callee: sent to everyone, every participant with the method would run
		// it and answer.
		r.log.Debug("RPC packet without a destination dropped", "from", pkt.GetParticipantIdentity())
		return
	}
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
	if req := pkt.GetRpcRequest(); req != nil && from != nil && len(targets) == 0 {
		// Told at once rather than after the SDK's 7 s wait for an acknowledgement.
		from.answerRPC(destinations[0], req.GetId(), utils.DataChannelRpcErrorFromBuiltInCodes(utils.DataChannelRpcRecipientNotFound, ""))
		return
	}
	for _, p := range targets {
		if err := p.sendData(reliable, data); err != nil {
			p.log.Debug("data packet not delivered", "err", err)
		}
	}
}

// answerRPC sends the caller p an RPC error in the name of callee.
func (p *Participant) answerRPC(callee, requestID string, e *utils.DataChannelRpcError) {
	data, err := proto.Marshal(&livekit.DataPacket{
		Kind:                  livekit.DataPacket_RELIABLE,
		ParticipantIdentity:   callee,
		DestinationIdentities: []string{p.identity},
		Value: &livekit.DataPacket_RpcResponse{RpcResponse: &livekit.RpcResponse{RequestId: requestID,
			Value: &livekit.RpcResponse_Error{Error: &livekit.RpcError{Code: uint32(e.Code), Message: e.Message, Data: e.Data}}}},
	})
	if err == nil {
		err = p.sendData(true, data)
	}
	if err != nil {
		p.log.Debug("RPC error not delivered", "err", err)
	}
}

func isRPC(pkt *livekit.DataPacket) bool {
	switch pkt.GetValue().(type) {
	case *livekit.DataPacket_RpcRequest, *livekit.DataPacket_RpcAck, *livekit.DataPacket_RpcResponse:
		return true
	}
	return false
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

// rpcCalls are the RPCs the server made to participants of a room (RoomService.PerformRpc)
// that await their answer. The zero value is ready.
type rpcCalls struct {
	mu      sync.Mutex
	pending map[string]*rpcCall // by request id
}

type rpcCall struct {
	callee *Participant
	acked  chan struct{}             // closed by the callee's rpc_ack
	answer chan *livekit.RpcResponse // the callee's rpc_response; buffered, one
	once   sync.Once
}

// take hands an rpc_ack or rpc_response from p to the server call it answers, and says
// whether it did. Only the callee may answer: anything else is relayed as participants' RPC.
func (c *rpcCalls) take(p *Participant, pkt *livekit.DataPacket) bool {
	var id string
	switch v := pkt.GetValue().(type) {
	case *livekit.DataPacket_RpcAck:
		id = v.RpcAck.GetRequestId()
	case *livekit.DataPacket_RpcResponse:
		id = v.RpcResponse.GetRequestId()
	default:
		return false
	}
	c.mu.Lock()
	call := c.pending[id]
	c.mu.Unlock()
	if call == nil || call.callee != p {
		return false
	}
	if ack := pkt.GetRpcAck(); ack != nil {
		call.once.Do(func() { close(call.acked) })
		return true
	}
	select {
	case call.answer <- pkt.GetRpcResponse():
	default: // a second answer to one request: the first counts
	}
	return true
}

// performRPC asks callee to run method with payload over its data channel, as LiveKit's
// RoomService does: the request goes out as an rpc_request whose caller identity is the
// request id (so the callee's answer names the call), the callee acknowledges within
// LiveKit's 7 s round trip and answers within timeout (LiveKit's 15 s when zero). The error
// is the callee's RpcError, or one of LiveKit's built-in ones when the answer never comes.
func (r *Room) performRPC(ctx context.Context, callee *Participant, method, payload string, timeout time.Duration) (string, *utils.DataChannelRpcError) {
	if len(payload) > utils.DataChannelRpcMaxPayloadBytes {
		return "", utils.DataChannelRpcErrorFromBuiltInCodes(utils.DataChannelRpcRequestPayloadTooLarge, "")
	}
	if timeout <= 0 {
		timeout = utils.DataChannelRpcDefaultResponseTimeout
	}
	id := newSID("RPC_")
	call := &rpcCall{callee: callee, acked: make(chan struct{}), answer: make(chan *livekit.RpcResponse, 1)}
	r.rpc.mu.Lock()
	if r.rpc.pending == nil {
		r.rpc.pending = map[string]*rpcCall{}
	}
	r.rpc.pending[id] = call
	r.rpc.mu.Unlock()
	defer func() {
		r.rpc.mu.Lock()
		delete(r.rpc.pending, id)
		r.rpc.mu.Unlock()
	}()

	// The callee's handler gets what is left once the answer has travelled back.
	handlerTimeout := timeout - time.Duration(callee.signalRTT.Load())*time.Millisecond
	data, err := proto.Marshal(&livekit.DataPacket{
		Kind:                  livekit.DataPacket_RELIABLE,
		ParticipantIdentity:   id,
		DestinationIdentities: []string{callee.identity},
		Value: &livekit.DataPacket_RpcRequest{RpcRequest: &livekit.RpcRequest{
			Id: id, Method: method, Payload: payload,
			ResponseTimeoutMs: uint32(max(handlerTimeout, 0).Milliseconds()), Version: 1,
		}},
	})
	if err != nil {
		return "", utils.DataChannelRpcErrorFromBuiltInCodes(utils.DataChannelRpcSendFailed, err.Error())
	}
	if err := callee.sendData(true, data); err != nil {
		return "", utils.DataChannelRpcErrorFromBuiltInCodes(utils.DataChannelRpcSendFailed, err.Error())
	}

	ackTimer := time.NewTimer(utils.DataChannelRpcMaxRoundTripLatency)
	defer ackTimer.Stop()
	answerTimer := time.NewTimer(timeout)
	defer answerTimer.Stop()
	acked := call.acked
	for {
		select {
		case <-acked:
			acked = nil
			ackTimer.Stop()
		case res := <-call.answer:
			if e := res.GetError(); e != nil {
				return "", &utils.DataChannelRpcError{Code: utils.DataChannelRpcErrorCode(e.GetCode()), Message: e.GetMessage(), Data: e.GetData()}
			}
			if res.GetCompressedPayload() != nil {
				return "", utils.DataChannelRpcErrorFromBuiltInCodes(utils.DataChannelRpcApplicationError, "compressed payloads are not supported")
			}
			return res.GetPayload(), nil
		case <-ackTimer.C:
			return "", utils.DataChannelRpcErrorFromBuiltInCodes(utils.DataChannelRpcConnectionTimeout, "")
		case <-answerTimer.C:
			return "", utils.DataChannelRpcErrorFromBuiltInCodes(utils.DataChannelRpcResponseTimeout, "")
		case <-callee.publisher.Done():
			return "", utils.DataChannelRpcErrorFromBuiltInCodes(utils.DataChannelRpcRecipientDisconnected, "")
		case <-r.ctx.Done():
			return "", utils.DataChannelRpcErrorFromBuiltInCodes(utils.DataChannelRpcRecipientDisconnected, "the room closed")
		case <-ctx.Done():
			return "", utils.DataChannelRpcErrorFromBuiltInCodes(utils.DataChannelRpcSendFailed, "the caller gave up: "+ctx.Err().Error())
		}
	}
}
