package httpapi

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestLimiterPerAddressAndGlobal(t *testing.T) {
	l := NewLimiter(6, 2, 1, "wait")
	now := time.Unix(1000, 0)
	for i := range 2 {
		if _, ok := l.Allow("10.0.0.1", now); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	wait, ok := l.Allow("10.0.0.1", now)
	if ok || wait <= 0 || wait > 10*time.Second {
		t.Errorf("third request at once: ok=%v wait %s, want a refusal with a wait of up to 10 s (6 a minute)", ok, wait)
	}
	// 10 s later the address has one token again.
	if _, ok := l.Allow("10.0.0.1", now.Add(10*time.Second)); !ok {
		t.Error("no token 10 s later at 6 a minute")
	}
	// The global allowance (1 a second, burst 2) is whole again; the request above took one,
	// another address takes the last, and a third must wait.
	if _, ok := l.Allow("10.0.0.2", now.Add(10*time.Second)); !ok {
		t.Error("the global allowance should hold a request 10 s later")
	}
	if _, ok := l.Allow("10.0.0.3", now.Add(10*time.Second)); ok {
		t.Error("a third address in the same instant passed the global limit")
	}
	// Refused globally, the address keeps its own allowance.
	if _, ok := l.Allow("10.0.0.3", now.Add(11*time.Second)); !ok {
		t.Error("the address was charged for a request the server refused")
	}
}

// Check without taking (a join's validation) answers as a request would and spends nothing;
// a refusal says which allowance refused.
func TestLimiterCheckSaysWhichAllowanceAndMayTakeNothing(t *testing.T) {
	l := NewRateLimiter(Rate{PerSecond: 1, Burst: 1}, Rate{PerSecond: 1, Burst: 2}, "")
	now := time.Unix(1000, 0)
	for range 3 {
		if _, _, ok := l.Check("a", now, false); !ok {
			t.Fatal("a check that takes nothing was refused")
		}
	}
	if _, ok := l.Allow("a", now); !ok {
		t.Fatal("the first request refused")
	}
	if wait, total, ok := l.Check("a", now, false); ok || total || wait <= 0 {
		t.Errorf("a's second request: ok=%v total=%v wait %s, want refused by its own allowance", ok, total, wait)
	}
	if _, ok := l.Allow("b", now); !ok {
		t.Fatal("b refused while the total had room")
	}
	if _, total, ok := l.Check("c", now, true); ok || !total {
		t.Errorf("c beyond the total: ok=%v total=%v, want refused by the total", ok, total)
	}
	if _, ok := l.Allow("c", now.Add(time.Second)); !ok {
		t.Error("c was charged for a request the total refused")
	}

	onlyTotal := NewRateLimiter(Rate{}, Rate{PerSecond: 1, Burst: 1}, "")
	if _, ok := onlyTotal.Allow("a", now); !ok {
		t.Fatal("without a limit per client, the first request refused")
	}
	if _, total, ok := onlyTotal.Check("b", now, true); ok || !total {
		t.Errorf("ok=%v total=%v, want refused by the total", ok, total)
	}
}

func TestClientAddressTrustsForwardingOnlyFromARelay(t *testing.T) {
	direct := httptest.NewRequest("POST", "/api/rooms/r/viewer-token", nil)
	direct.RemoteAddr = "192.0.2.7:51000"
	direct.Header.Set("X-Forwarded-For", "203.0.113.9")
	if got := ClientAddress(direct); got != "192.0.2.7" {
		t.Errorf("a direct request is counted against %q, want its own address", got)
	}
	relayed := direct.Clone(direct.Context())
	relayed.Header.Set(RelayHeader, "B")
	if got := ClientAddress(relayed); got != "relayed:203.0.113.9" {
		t.Errorf("a relayed request is counted against %q, want the client the entry node saw", got)
	}
}

func TestAccessSaysWhoInWords(t *testing.T) {
	for _, c := range []struct {
		a    Access
		want string
	}{
		{For(), "any token of the room"},
		{For("chair"), "the chair"},
		{For("chair", "clerk"), "the chair or the clerk"},
		{For("chair", "clerk").OrPresiding(), "the chair, the clerk or the seat presiding"},
		{Anyone("rate-limited"), "anyone (rate-limited)"},
	} {
		if got := c.a.String(); got != c.want {
			t.Errorf("%+v says %q, want %q", c.a, got, c.want)
		}
	}
}
