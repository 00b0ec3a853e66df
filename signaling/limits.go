package signaling

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/httpapi"
)

// Limits bound what one client, one room or the whole node may take, so that a client that
// misbehaves (or a script gone wrong) is refused, told why, and nobody else suffers. A zero
// field is no limit, except FrameBytes (256 KiB when zero). The binary's defaults are
// DefaultLimits; docs/api.md lists what each refusal looks like.
type Limits struct {
	// FrameBytes is the largest signalling frame; a larger one closes that session.
	FrameBytes int `yaml:"frame_bytes"`
	// MessagesPerSecond and MessageBurst bound the frames one signalling connection sends; a
	// client beyond them is sent a Leave and its session closed.
	MessagesPerSecond float64 `yaml:"messages_per_second"`
	MessageBurst      int     `yaml:"message_burst"`
	// JoinsPerSecondPerAddress and JoinBurstPerAddress bound the /rtc connections one client
	// address opens; JoinsPerSecond and JoinBurst those of everyone together.
	JoinsPerSecondPerAddress float64 `yaml:"joins_per_second_per_address"`
	JoinBurstPerAddress      int     `yaml:"join_burst_per_address"`
	JoinsPerSecond           float64 `yaml:"joins_per_second"`
	JoinBurst                int     `yaml:"join_burst"`
	// ParticipantsPerRoom bounds who is in one room at once; viewers are set aside when the
	// programme's max_viewers caps them (and sends the rest to HLS).
	ParticipantsPerRoom int `yaml:"participants_per_room"`
	// RoomsPerNode bounds the rooms open on this node.
	RoomsPerNode int `yaml:"rooms_per_node"`
	// TracksPerParticipant bounds the tracks one participant publishes (or has announced).
	TracksPerParticipant int `yaml:"tracks_per_participant"`
	// APIRequestsPerSecondPerToken and APIBurstPerToken bound the /api requests made with one
	// token, on the routes whose token the route table checks.
	APIRequestsPerSecondPerToken float64 `yaml:"api_requests_per_second_per_token"`
	APIBurstPerToken             int     `yaml:"api_burst_per_token"`
}

// DefaultLimits are generous for a council and still protect a small shared server:
//   - 500 participants a room: the largest French council (Paris, 163 seats) with its staff,
//     agents and interpreters, and the 300-participant load of issue 18, fit with room to spare;
//   - 50 rooms a node: a town's council and all its committees sitting at once;
//   - 16 tracks a participant: a microphone, a camera, a shared screen and its sound are 4;
//   - 20 joins a second per address, bursts of 40: a whole chamber behind the town hall's one
//     address rejoining after a network cut gets back within the SDKs' retries; 200 a second
//     (bursts of 400) in all, far more than a sitting's start;
//   - 100 signalling messages a second per connection, bursts of 600: a client announces its
//     settings for every video of a full room at once when its layout changes;
//   - 20 /api requests a second per token, bursts of 40: a console polls a few a second, a
//     clerk clicks far fewer;
//   - frames of 256 KiB: an offer with simulcast is a few tens of kB.
func DefaultLimits() Limits {
	return Limits{
		FrameBytes:        maxFrameBytes,
		MessagesPerSecond: 100, MessageBurst: 600,
		JoinsPerSecondPerAddress: 20, JoinBurstPerAddress: 40,
		JoinsPerSecond: 200, JoinBurst: 400,
		ParticipantsPerRoom: 500, RoomsPerNode: 50, TracksPerParticipant: 16,
		APIRequestsPerSecondPerToken: 20, APIBurstPerToken: 40,
	}
}

// Validate refuses negative limits, and a rate without the burst it may take at once.
func (l Limits) Validate() error {
	var errs []error
	for _, c := range []struct {
		key  string
		n    float64
		rate bool
	}{
		{"frame_bytes", float64(l.FrameBytes), false},
		{"messages_per_second", l.MessagesPerSecond, true}, {"message_burst", float64(l.MessageBurst), false},
		{"joins_per_second_per_address", l.JoinsPerSecondPerAddress, true}, {"join_burst_per_address", float64(l.JoinBurstPerAddress), false},
		{"joins_per_second", l.JoinsPerSecond, true}, {"join_burst", float64(l.JoinBurst), false},
		{"participants_per_room", float64(l.ParticipantsPerRoom), false},
		{"rooms_per_node", float64(l.RoomsPerNode), false},
		{"tracks_per_participant", float64(l.TracksPerParticipant), false},
		{"api_requests_per_second_per_token", l.APIRequestsPerSecondPerToken, true}, {"api_burst_per_token", float64(l.APIBurstPerToken), false},
	} {
		if c.n < 0 || c.n != c.n { // NaN too
			errs = append(errs, fmt.Errorf("limits.%s %v: want 0 (no limit) or more", c.key, c.n))
		}
	}
	for _, r := range []struct {
		rate, burst string
		perSecond   float64
		n           int
	}{
		{"messages_per_second", "message_burst", l.MessagesPerSecond, l.MessageBurst},
		{"joins_per_second_per_address", "join_burst_per_address", l.JoinsPerSecondPerAddress, l.JoinBurstPerAddress},
		{"joins_per_second", "join_burst", l.JoinsPerSecond, l.JoinBurst},
		{"api_requests_per_second_per_token", "api_burst_per_token", l.APIRequestsPerSecondPerToken, l.APIBurstPerToken},
	} {
		if r.perSecond > 0 && r.n < 1 {
			errs = append(errs, fmt.Errorf("limits.%s is %v but limits.%s is %d: a burst of at least 1 is needed", r.rate, r.perSecond, r.burst, r.n))
		}
	}
	return errors.Join(errs...)
}

// The limits as hemicycle_limit_refusals_total labels them.
const (
	limitFrameSize      = "frame_size"
	limitMessageRate    = "message_rate"
	limitJoinsAddress   = "joins_per_address"
	limitJoinsTotal     = "joins_total"
	limitParticipants   = "participants_per_room"
	limitRooms          = "rooms_per_node"
	limitTracks         = "tracks_per_participant"
	limitAPIToken       = "api_per_token"
	limitViewerTokens   = "viewer_tokens"    // signaling/programme
	limitInvitationLink = "invitation_links" // prepare.go
)

// limits is a server's enforcement of its Limits and the count of what they refused.
type limits struct {
	Limits
	joins    *httpapi.Limiter // per address and in all; nil without either
	api      *httpapi.Limiter // per token; nil without
	refusals *prometheus.CounterVec
}

func newLimits(l Limits) *limits {
	if l.FrameBytes == 0 {
		l.FrameBytes = maxFrameBytes
	}
	out := &limits{Limits: l, refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hemicycle_limit_refusals_total",
		Help: "Requests refused because a limit was reached, by limit: frame_size and message_rate (a signalling connection closed), " +
			"joins_per_address and joins_total (/rtc refused), participants_per_room and rooms_per_node (a join refused), " +
			"tracks_per_participant (a track refused), api_per_token, viewer_tokens and invitation_links (an HTTP request refused).",
	}, []string{"limit"})}
	for _, name := range []string{limitFrameSize, limitMessageRate, limitJoinsAddress, limitJoinsTotal, limitParticipants,
		limitRooms, limitTracks, limitAPIToken, limitViewerTokens, limitInvitationLink} {
		out.refusals.WithLabelValues(name) // every limit reads 0 before its first refusal
	}
	if l.JoinsPerSecondPerAddress > 0 || l.JoinsPerSecond > 0 {
		out.joins = httpapi.NewRateLimiter(httpapi.Rate{PerSecond: l.JoinsPerSecondPerAddress, Burst: l.JoinBurstPerAddress},
			httpapi.Rate{PerSecond: l.JoinsPerSecond, Burst: l.JoinBurst}, "")
	}
	if l.APIRequestsPerSecondPerToken > 0 {
		out.api = httpapi.NewRateLimiter(httpapi.Rate{PerSecond: l.APIRequestsPerSecondPerToken, Burst: l.APIBurstPerToken}, httpapi.Rate{}, "")
	}
	return out
}

// refused counts a refusal by limit ("" is none: a limiter without a name).
func (l *limits) refused(limit string) {
	if limit != "" {
		l.refusals.WithLabelValues(limit).Inc()
	}
}

// limitError is a join refused by a limit, with what the client is told.
type limitError struct {
	limit  string
	status int
	wait   time.Duration // Retry-After, when the client may try again in that time
	msg    string
}

func (e *limitError) Error() string { return e.msg }

// write answers the refusal of a join as the other /rtc refusals are, in plain text, which the
// SDKs read from /rtc/validate and show.
func (e *limitError) write(w http.ResponseWriter) {
	if e.wait > 0 {
		httpapi.RetryAfter(w, e.wait)
	}
	http.Error(w, e.msg, e.status)
}

// admitJoin takes one join of r's address from the join rates, or writes the refusal. A
// validation (attempt false) takes nothing and counts no refusal: the SDKs ask for one right
// after a refused /rtc, to learn why, and must hear the same answer.
func (l *limits) admitJoin(w http.ResponseWriter, r *http.Request, attempt bool) bool {
	if l.joins == nil {
		return true
	}
	wait, total, ok := l.joins.Check(httpapi.ClientAddress(r), time.Now(), attempt)
	if ok {
		return true
	}
	e := &limitError{limit: limitJoinsAddress, status: http.StatusTooManyRequests, wait: wait,
		msg: fmt.Sprintf("too many joins from your address: at most %g a second (bursts of %d); retry in a moment", l.JoinsPerSecondPerAddress, l.JoinBurstPerAddress)}
	if total {
		e.limit = limitJoinsTotal
		e.msg = fmt.Sprintf("the server is admitting as many joins as it may (%g a second in all); retry in a moment", l.JoinsPerSecond)
	}
	if attempt {
		l.refused(e.limit)
	}
	e.write(w)
	return false
}

// admitToRoom writes the refusal of a join that the room or the node has no place for. It is
// asked before the WebSocket is upgraded, so that the client hears why; room.join and
// openRoom decide again under their locks.
func (s *Server) admitToRoom(w http.ResponseWriter, claims *auth.Claims, attempt bool) bool {
	var err *limitError
	if room, open := s.Room(claims.Video.Room); open {
		room.mu.Lock()
		err = room.fullForLocked(claims)
		room.mu.Unlock()
	} else {
		s.mu.Lock()
		err = s.fullLocked()
		s.mu.Unlock()
	}
	if err == nil {
		return true
	}
	if attempt {
		s.limits.refused(err.limit)
	}
	err.write(w)
	return false
}

// fullLocked refuses a new room on a node that holds as many as it may.
func (s *Server) fullLocked() *limitError {
	if most := s.limits.RoomsPerNode; most > 0 && len(s.rooms) >= most {
		return &limitError{limit: limitRooms, status: http.StatusServiceUnavailable,
			msg: fmt.Sprintf("this server already holds %d rooms, the most it may open at once; retry when a sitting has ended", most)}
	}
	return nil
}

// fullForLocked refuses the join of claims to a room whose participants fill it; one that
// replaces its own earlier session, or its seat's, takes no new place. Viewers are set aside
// when the programme caps them (max_viewers, beyond which the watch page turns to HLS): a
// crowd of citizens then never keeps a member out.
func (r *Room) fullForLocked(claims *auth.Claims) *limitError {
	most := r.srv.limits.ParticipantsPerRoom
	viewersApart := r.srv.cfg.Programme != nil && r.srv.cfg.Programme.MaxViewers > 0
	if most <= 0 || (viewersApart && claims.Role() == auth.RoleViewer) {
		return nil
	}
	identity, seat := claims.ParticipantIdentity(), memberSeat(ParticipantRef{Claims: claims})
	n := 0
	for _, o := range r.participants {
		if (viewersApart && isViewer(o)) || o.identity == identity || (seat != 0 && memberSeat(o.ref()) == seat) {
			continue
		}
		n++
	}
	if n < most {
		return nil
	}
	apart := ""
	if viewersApart {
		apart = " (viewers aside)"
	}
	return &limitError{limit: limitParticipants, status: http.StatusServiceUnavailable,
		msg: fmt.Sprintf("room %q is full: it admits %d participants at once%s; retry when someone has left", r.name, most, apart)}
}

// trackRefusalLocked is the refusal of an AddTrack beyond the tracks a participant may
// publish (pending ones included), nil when it is within.
func (p *Participant) trackRefusalLocked(req *livekit.AddTrackRequest) *livekit.SignalResponse {
	most := p.room.srv.limits.TracksPerParticipant
	if most <= 0 || len(p.tracks)+len(p.pending) < most {
		return nil
	}
	p.room.srv.limits.refused(limitTracks)
	return addTrackRefusal(req, livekit.RequestResponse_LIMIT_EXCEEDED,
		fmt.Sprintf("track %q refused: a participant may publish at most %d tracks; unpublish one first", req.GetName(), most))
}

// connLimits are what a signalling connection enforces itself.
type connLimits struct {
	frameBytes int64
	messages   *rate.Limiter // nil: no limit
	perSecond  float64
	burst      int
}

func (l *limits) forConn() connLimits {
	c := connLimits{frameBytes: int64(l.FrameBytes), perSecond: l.MessagesPerSecond, burst: l.MessageBurst}
	if l.MessagesPerSecond > 0 {
		c.messages = rate.NewLimiter(rate.Limit(l.MessagesPerSecond), max(1, l.MessageBurst))
	}
	return c
}

// connLimitOf names the limit a connection's end reached, "" when it reached none.
func connLimitOf(err error) string {
	switch {
	case errors.Is(err, errMessageFlood):
		return limitMessageRate
	case isOversized(err):
		return limitFrameSize
	}
	return ""
}

// admitAPI takes one request of the token from its allowance, or answers 429 with Retry-After
// in both languages. Tokens are told apart by their signature: two tokens never share one.
func (l *limits) admitAPI(w http.ResponseWriter, r *http.Request, token string) bool {
	if l.api == nil {
		return true
	}
	key := token[strings.LastIndexByte(token, '.')+1:]
	wait, _, ok := l.api.Check(key, time.Now(), true)
	if ok {
		return true
	}
	l.refused(limitAPIToken)
	httpapi.RetryAfter(w, wait)
	secs := int(wait/time.Second) + 1
	httpapi.Refuse(w, r, http.StatusTooManyRequests,
		fmt.Sprintf("too many requests with this token: at most %g a second (bursts of %d); retry in %d s", l.APIRequestsPerSecondPerToken, l.APIBurstPerToken, secs),
		fmt.Sprintf("trop de requêtes avec ce jeton : au plus %g par seconde (%d d’affilée) ; réessayez dans %d s", l.APIRequestsPerSecondPerToken, l.APIBurstPerToken, secs))
	return false
}
