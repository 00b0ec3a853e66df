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

// Limiter admits requests at a rate per client address and at a rate for the whole server.
type Limiter struct {
	perAddr      rate.Limit
	perAddrBurst int
	refusal      string

	mu     sync.Mutex
	global *rate.Limiter
	byAddr map[string]*rate.Limiter
}

// maxTrackedAddresses bounds the limiter's memory; beyond it, addresses whose allowance is
// whole again are forgotten.
const maxTrackedAddresses = 10000

// NewLimiter admits perMinute requests a minute per address (bursts of burst) and perSecond a
// second in all (bursts of twice that); refusal is the text of a 429.
func NewLimiter(perMinute float64, burst int, perSecond float64, refusal string) *Limiter {
	return &Limiter{
		perAddr: rate.Limit(perMinute / 60), perAddrBurst: burst, refusal: refusal,
		global: rate.NewLimiter(rate.Limit(perSecond), int(2*perSecond)),
		byAddr: map[string]*rate.Limiter{},
	}
}

// Allow takes one request of addr at now, or says how long until it would be admitted.
func (l *Limiter) Allow(addr string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.byAddr[addr]
	if lim == nil {
		if len(l.byAddr) >= maxTrackedAddresses {
			for a, o := range l.byAddr {
				if o.TokensAt(now) >= float64(l.perAddrBurst) {
					delete(l.byAddr, a)
				}
			}
		}
		lim = rate.NewLimiter(l.perAddr, l.perAddrBurst)
		l.byAddr[addr] = lim
	}
	mine := lim.ReserveN(now, 1)
	if wait := mine.DelayFrom(now); !mine.OK() || wait > 0 {
		mine.CancelAt(now)
		return wait, false
	}
	all := l.global.ReserveN(now, 1)
	if wait := all.DelayFrom(now); !all.OK() || wait > 0 {
		// Not served: neither allowance is spent.
		all.CancelAt(now)
		mine.CancelAt(now)
		return wait, false
	}
	return 0, true
}

// Admit takes one request of r's client, or answers 429 with Retry-After.
func (l *Limiter) Admit(w http.ResponseWriter, r *http.Request) bool {
	wait, ok := l.Allow(ClientAddress(r), time.Now())
	if !ok {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait/time.Second)+1))
		WriteError(w, http.StatusTooManyRequests, l.refusal)
	}
	return ok
}
