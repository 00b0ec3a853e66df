package signaling

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/httpapi"
)

// roomService implements LiveKit's RoomService (Twirp) so that LiveKit's server SDKs and tools
// can administer Hemicycle. Every call is authorised from the verified token in the request.
type roomService struct{ s *Server }

type claimsKey struct{}

type claimsResult struct {
	claims *auth.Claims
	err    error
	// token and relayed let ListRooms ask the other nodes (relay.go).
	token   string
	relayed bool
}

func newRoomService(s *Server) *tokenCarrier {
	srv := livekit.NewRoomServiceServer(&roomService{s: s})
	return &tokenCarrier{next: srv, s: s}
}

// tokenCarrier verifies the bearer token and hands the result to the Twirp methods, which
// decide what each call requires.
type tokenCarrier struct {
	next livekit.TwirpServer
	s    *Server
}

func (t *tokenCarrier) PathPrefix() string { return t.next.PathPrefix() }

func (t *tokenCarrier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var res claimsResult
	if tok := httpapi.Bearer(r); tok == "" {
		res.err = &auth.Error{Reason: auth.ReasonNoToken, Status: http.StatusUnauthorized, Detail: "send Authorization: Bearer <token>"}
	} else {
		res.claims, res.err = t.s.cfg.Verifier.Verify(tok)
		res.token, res.relayed = tok, httpapi.IsRelayed(r)
	}
	// relay.go: a call about a room on another node is served there, once the token holds.
	if res.err == nil && t.s.relayer.twirp(w, r) {
		return
	}
	t.next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, res)))
}

// grant names one permission of the video grant.
type grant int

const (
	grantAdmin grant = iota
	grantCreate
	grantList
)

func (g grant) String() string {
	return [...]string{"roomAdmin", "roomCreate", "roomList"}[g]
}

// require checks that the caller's token holds grant g (for room, when g is roomAdmin).
func require(ctx context.Context, g grant, room string) (*auth.Claims, error) {
	res, _ := ctx.Value(claimsKey{}).(claimsResult)
	if res.err != nil {
		return nil, twirp.NewError(twirp.Unauthenticated, res.err.Error())
	}
	if res.claims == nil {
		return nil, twirp.NewError(twirp.Unauthenticated, "no verified token")
	}
	v := res.claims.Video
	ok := false
	if v != nil {
		switch g {
		case grantAdmin:
			ok = res.claims.CanAdminRoom(room)
		case grantCreate:
			ok = v.RoomCreate
		case grantList:
			ok = v.RoomList
		}
	}
	if !ok {
		msg := "missing grant: " + g.String()
		if g == grantAdmin && v != nil && v.RoomAdmin {
			msg = fmt.Sprintf("wrong room: the token administers %q, not %q", v.Room, room)
		}
		return nil, twirp.NewError(twirp.PermissionDenied, msg)
	}
	return res.claims, nil
}

func (rs *roomService) room(name string) (*Room, error) {
	if name == "" {
		return nil, twirp.RequiredArgumentError("room")
	}
	r, ok := rs.s.Room(name)
	if !ok {
		return nil, twirp.NewError(twirp.NotFound, fmt.Sprintf("room %q does not exist", name))
	}
	return r, nil
}

// adminRoom checks that the caller administers the room, then finds it.
func (rs *roomService) adminRoom(ctx context.Context, name string) (*Room, error) {
	if _, err := require(ctx, grantAdmin, name); err != nil {
		return nil, err
	}
	return rs.room(name)
}

// adminParticipant checks that the caller administers the room, then finds the participant.
func (rs *roomService) adminParticipant(ctx context.Context, room, identity string) (*Room, *Participant, error) {
	r, err := rs.adminRoom(ctx, room)
	if err != nil {
		return nil, nil, err
	}
	p := r.participant(identity)
	if p == nil {
		return nil, nil, twirp.NewError(twirp.NotFound, fmt.Sprintf("participant %q is not in room %q", identity, room))
	}
	return r, p, nil
}

func (rs *roomService) CreateRoom(ctx context.Context, req *livekit.CreateRoomRequest) (*livekit.Room, error) {
	if _, err := require(ctx, grantCreate, req.GetName()); err != nil {
		return nil, err
	}
	if req.GetName() == "" {
		return nil, twirp.RequiredArgumentError("name")
	}
	r, err := rs.s.openRoom(req.GetName(), time.Duration(req.GetEmptyTimeout())*time.Second)
	if err != nil {
		if full := (*limitError)(nil); errors.As(err, &full) { // limits.go: rooms_per_node
			rs.s.limits.refused(full.limit)
		}
		return nil, twirp.NewError(twirp.Unavailable, err.Error())
	}
	if req.GetMetadata() != "" {
		r.mu.Lock()
		r.metadata = req.GetMetadata()
		r.mu.Unlock()
	}
	return r.Info(), nil
}

func (rs *roomService) ListRooms(ctx context.Context, req *livekit.ListRoomsRequest) (*livekit.ListRoomsResponse, error) {
	if _, err := require(ctx, grantList, ""); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range req.GetNames() {
		want[n] = true
	}
	out := &livekit.ListRoomsResponse{}
	for _, r := range rs.s.Rooms() {
		if len(want) == 0 || want[r.name] {
			out.Rooms = append(out.Rooms, r.Info())
		}
	}
	// relay.go: with several nodes, the others' rooms too (unless another node asks).
	if res, _ := ctx.Value(claimsKey{}).(claimsResult); !res.relayed {
		out.Rooms = append(out.Rooms, rs.s.relayer.roomsElsewhere(ctx, res.token, want)...)
	}
	return out, nil
}

func (rs *roomService) DeleteRoom(ctx context.Context, req *livekit.DeleteRoomRequest) (*livekit.DeleteRoomResponse, error) {
	if _, err := require(ctx, grantCreate, req.GetRoom()); err != nil {
		return nil, err
	}
	r, err := rs.room(req.GetRoom())
	if err != nil {
		return nil, err
	}
	r.close(livekit.DisconnectReason_ROOM_DELETED)
	return &livekit.DeleteRoomResponse{}, nil
}

func (rs *roomService) ListParticipants(ctx context.Context, req *livekit.ListParticipantsRequest) (*livekit.ListParticipantsResponse, error) {
	r, err := rs.adminRoom(ctx, req.GetRoom())
	if err != nil {
		return nil, err
	}
	return &livekit.ListParticipantsResponse{Participants: r.Participants()}, nil
}

func (rs *roomService) GetParticipant(ctx context.Context, req *livekit.RoomParticipantIdentity) (*livekit.ParticipantInfo, error) {
	r, p, err := rs.adminParticipant(ctx, req.GetRoom(), req.GetIdentity())
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return p.infoLocked(), nil
}

func (rs *roomService) RemoveParticipant(ctx context.Context, req *livekit.RoomParticipantIdentity) (*livekit.RemoveParticipantResponse, error) {
	r, p, err := rs.adminParticipant(ctx, req.GetRoom(), req.GetIdentity())
	if err != nil {
		return nil, err
	}
	r.remove(p, livekit.DisconnectReason_PARTICIPANT_REMOVED, true)
	return &livekit.RemoveParticipantResponse{}, nil
}

func (rs *roomService) MutePublishedTrack(ctx context.Context, req *livekit.MuteRoomTrackRequest) (*livekit.MuteRoomTrackResponse, error) {
	_, p, err := rs.adminParticipant(ctx, req.GetRoom(), req.GetIdentity())
	if err != nil {
		return nil, err
	}
	info, err := p.MuteTrack(req.GetTrackSid(), req.GetMuted())
	if err != nil {
		return nil, twirp.NewError(twirp.NotFound, err.Error())
	}
	return &livekit.MuteRoomTrackResponse{Track: info}, nil
}

func (rs *roomService) UpdateParticipant(ctx context.Context, req *livekit.UpdateParticipantRequest) (*livekit.ParticipantInfo, error) {
	r, p, err := rs.adminParticipant(ctx, req.GetRoom(), req.GetIdentity())
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	p.applyMetadataLocked(req.GetName(), req.GetMetadata(), req.GetAttributes())
	var withdrawn []*publishedTrack
	var resubscribe []*publishedTrack
	unsubscribed := false
	if perm := req.GetPermission(); perm != nil {
		could := p.permission.CanSubscribe
		p.permission = perm
		// A participant who may no longer subscribe stops receiving everything; one who may
		// again gets what its automatic subscription would have given it.
		switch {
		case could && !perm.CanSubscribe:
			for sid := range p.subs {
				unsubscribed = r.dropSubscriptionLocked(p, sid) || unsubscribed
			}
		case !could && perm.CanSubscribe && p.autoSubscribe:
			resubscribe = r.publishedTracksLocked(p)
		}
		// As LiveKit does: what the participant may no longer publish is unpublished (the
		// others see it go, the publisher's SDK is told and stops sending it), and announced
		// tracks not yet flowing are forgotten; a new AddTrackRequest for it is refused.
		for _, t := range p.tracks {
			if !p.canPublishSourceLocked(sourceOf(t.info)) {
				withdrawn = append(withdrawn, t)
			}
		}
		for cid, info := range p.pending {
			if !p.canPublishSourceLocked(sourceOf(info)) {
				delete(p.pending, cid)
			}
		}
	}
	info := p.infoLocked()
	r.mu.Unlock()
	for _, t := range withdrawn {
		r.log.Info("track unpublished: its source is no longer allowed", "identity", p.identity, "track", t.info.Sid, "source", sourceOf(t.info).String())
		p.unpublish(t)
	}
	if unsubscribed {
		r.log.Info("subscriptions stopped: the participant may no longer subscribe", "identity", p.identity)
		p.negotiateSubscriber(false)
	}
	for _, t := range resubscribe {
		r.subscribe(p, t)
	}
	r.broadcastParticipant(p)
	return info, nil
}

func (rs *roomService) UpdateSubscriptions(ctx context.Context, req *livekit.UpdateSubscriptionsRequest) (*livekit.UpdateSubscriptionsResponse, error) {
	_, p, err := rs.adminParticipant(ctx, req.GetRoom(), req.GetIdentity())
	if err != nil {
		return nil, err
	}
	if err := p.onSubscription(&livekit.UpdateSubscription{
		TrackSids: req.GetTrackSids(), Subscribe: req.GetSubscribe(), ParticipantTracks: req.GetParticipantTracks(),
	}); err != nil {
		return nil, twirp.NewError(twirp.InvalidArgument, err.Error())
	}
	return &livekit.UpdateSubscriptionsResponse{}, nil
}

func (rs *roomService) SendData(ctx context.Context, req *livekit.SendDataRequest) (*livekit.SendDataResponse, error) {
	r, err := rs.adminRoom(ctx, req.GetRoom())
	if err != nil {
		return nil, err
	}
	dest := req.GetDestinationIdentities()
	if len(req.GetDestinationSids()) > 0 {
		r.mu.Lock()
		for _, sid := range req.GetDestinationSids() {
			if p := r.bySID[sid]; p != nil {
				dest = append(dest, p.identity)
			}
		}
		r.mu.Unlock()
	}
	r.SendData(req.GetData(), req.GetTopic(), req.GetKind() != livekit.DataPacket_LOSSY, dest)
	return &livekit.SendDataResponse{}, nil
}

func (rs *roomService) UpdateRoomMetadata(ctx context.Context, req *livekit.UpdateRoomMetadataRequest) (*livekit.Room, error) {
	r, err := rs.adminRoom(ctx, req.GetRoom())
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.metadata = req.GetMetadata()
	info := r.infoLocked()
	r.mu.Unlock()
	r.sendToAll(&livekit.SignalResponse{Message: &livekit.SignalResponse_RoomUpdate{RoomUpdate: &livekit.RoomUpdate{Room: info}}}, nil)
	return info, nil
}

func (rs *roomService) ForwardParticipant(context.Context, *livekit.ForwardParticipantRequest) (*livekit.ForwardParticipantResponse, error) {
	return nil, twirp.NewError(twirp.Unimplemented, "forwarding participants between rooms is not offered")
}

func (rs *roomService) MoveParticipant(context.Context, *livekit.MoveParticipantRequest) (*livekit.MoveParticipantResponse, error) {
	return nil, twirp.NewError(twirp.Unimplemented, "moving participants between rooms is not offered")
}

// PerformRpc calls a method the participant registered (data.go), and answers its payload or
// its error as LiveKit does: a Twirp error whose code follows the RpcError's and whose message
// is "RpcError <code>: <message>[: <data>]".
func (rs *roomService) PerformRpc(ctx context.Context, req *livekit.PerformRpcRequest) (*livekit.PerformRpcResponse, error) {
	r, p, err := rs.adminParticipant(ctx, req.GetRoom(), req.GetDestinationIdentity())
	if err != nil {
		return nil, err
	}
	if req.GetMethod() == "" {
		return nil, twirp.RequiredArgumentError("method")
	}
	payload, rpcErr := r.performRPC(ctx, p, req.GetMethod(), req.GetPayload(), time.Duration(req.GetResponseTimeoutMs())*time.Millisecond)
	if rpcErr != nil {
		var te twirp.Error
		if !errors.As(rpcErr.PsrpcError(), &te) {
			te = twirp.InternalError(rpcErr.Error())
		}
		return nil, te
	}
	return &livekit.PerformRpcResponse{Payload: payload}, nil
}
