package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RelayHeader marks a request relayed by an entry node (its value is that node's id). A node
// never relays such a request again.
const RelayHeader = "Hemicycle-Relayed-By"

// IsRelayed reports whether an entry node relayed r here.
func IsRelayed(r *http.Request) bool { return r.Header.Get(RelayHeader) != "" }

// ClientAddress is whom a request is counted against: the client, or for a request relayed
// by an entry node, the client that node saw (the relay sets X-Forwarded-For to it alone).
// Forwarded headers are not trusted otherwise: anyone could write them. A client forging the
// relay header only picks its own bucket, as one with many addresses could; a limit for the
// whole server holds either way.
func ClientAddress(r *http.Request) string {
	if IsRelayed(r) {
		if fwd := r.Header.Values("X-Forwarded-For"); len(fwd) > 0 {
			hops := strings.Split(fwd[len(fwd)-1], ",")
			return "relayed:" + strings.TrimSpace(hops[len(hops)-1])
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Rate is an allowance: PerSecond requests a second, in bursts of Burst. A zero PerSecond
// is no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

// limiter is the token bucket of r, nil when r sets no limit.
func (r Rate) limiter() *rate.Limiter {
	if r.PerSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(r.PerSecond), max(1, r.Burst))
}

// Limiter admits requests at a rate per client (an address, a token) and at a rate for the
// whole server. Its Name labels its refusals in the server's metrics.
type Limiter struct {
	perClient Rate
	refusal   string
	name      string

	mu       sync.Mutex
	total    *rate.Limiter // nil: no limit for the whole server
	byClient map[string]*rate.Limiter
}

// maxTrackedAddresses bounds the limiter's memory; beyond it, clients whose allowance is
// whole again are forgotten.
const maxTrackedAddresses = 10000

// NewLimiter admits perMinute requests a minute per address (bursts of burst) and perSecond a
// second in all (bursts of twice that); refusal is the text of a 429.
func NewLimiter(perMinute float64, burst int, perSecond float64, refusal string) *Limiter {
	return NewRateLimiter(Rate{perMinute / 60, burst}, Rate{perSecond, int(2 * perSecond)}, refusal)
}

// NewRateLimiter admits perClient for each client and total for the whole server; refusal
// is the text of Admit's 429.
func NewRateLimiter(perClient, total Rate, refusal string) *Limiter {
	return &Limiter{perClient: perClient, refusal: refusal, total: total.limiter(), byClient: map[string]*rate.Limiter{}}
}

// Named sets the name the server's metrics count this limiter's refusals under.
func (l *Limiter) Named(name string) *Limiter {
	l.name = name
	return l
}

// Name is the limiter's name in the metrics.
func (l *Limiter) Name() string { return l.name }

// Allow takes one request of client at now, or says how long until it would be admitted.
func (l *Limiter) Allow(client string, now time.Time) (time.Duration, bool) {
	wait, _, ok := l.Check(client, now, true)
	return wait, ok
}

// Check says whether client may make a request at now, and takes it from both allowances
// when take is set (a refused request takes nothing); when it may not, how long until it
// may and whether the limit for the whole server is the one that refused.
func (l *Limiter) Check(client string, now time.Time, take bool) (wait time.Duration, total bool, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.byClient[client]
	if lim == nil && l.perClient.PerSecond > 0 {
		if len(l.byClient) >= maxTrackedAddresses {
			for a, o := range l.byClient {
				if o.TokensAt(now) >= float64(o.Burst()) {
					delete(l.byClient, a)
				}
			}
		}
		lim = l.perClient.limiter()
		l.byClient[client] = lim
	}
	var mine, all *rate.Reservation
	defer func() {
		// Not served, or only asked about: neither allowance is spent.
		if !ok || !take {
			if all != nil {
				all.CancelAt(now)
			}
			if mine != nil {
				mine.CancelAt(now)
			}
		}
	}()
	if lim != nil {
		mine = lim.ReserveN(now, 1)
		if wait := mine.DelayFrom(now); !mine.OK() || wait > 0 {
			return wait, false, false
		}
	}
	if l.total != nil {
		all = l.total.ReserveN(now, 1)
		if wait := all.DelayFrom(now); !all.OK() || wait > 0 {
			return wait, true, false
		}
	}
	return 0, false, true
}

// Admit takes one request of r's client, or answers 429 with Retry-After.
func (l *Limiter) Admit(w http.ResponseWriter, r *http.Request) bool {
	wait, ok := l.Allow(ClientAddress(r), time.Now())
	if !ok {
		RetryAfter(w, wait)
		WriteError(w, http.StatusTooManyRequests, l.refusal)
	}
	return ok
}

// RetryAfter sets the Retry-After header of a refusal: wait, in whole seconds rounded up.
func RetryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", fmt.Sprint(int(wait/time.Second)+1))
}
