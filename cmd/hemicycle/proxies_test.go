package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/signaling/httpapi"
)

// Behind the town's reverse proxy, each request is counted against the client the proxy names
// (the right-most address of X-Forwarded-For that is not a trusted proxy), not against the proxy;
// a client that is not a trusted proxy cannot choose its address by writing the header.
func TestClientAddressBehindTrustedProxies(t *testing.T) {
	trusted, err := parseTrustedProxies([]string{"127.0.0.1", "10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	h := behindProxies(trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, httpapi.ClientAddress(r))
	}))
	for _, c := range []struct {
		name, remote string
		forwarded    []string
		want         string
	}{
		{"a client of the proxy", "127.0.0.1:41000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"through two proxies of ours", "127.0.0.1:41000", []string{"203.0.113.9, 10.1.2.3"}, "203.0.113.9"},
		{"a forged hop left of the real client", "127.0.0.1:41000", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"headers on several lines", "127.0.0.1:41000", []string{"198.51.100.1", "203.0.113.9"}, "203.0.113.9"},
		{"a client writing the header itself", "198.51.100.7:5000", []string{"203.0.113.9"}, "198.51.100.7"},
		{"the proxy with no header", "127.0.0.1:41000", nil, "127.0.0.1"},
		{"a hop that is no address", "127.0.0.1:41000", []string{"203.0.113.9, unknown"}, "127.0.0.1"},
		{"IPv6 client", "127.0.0.1:41000", []string{"2001:db8::7"}, "2001:db8::7"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/api/rooms/r/state", nil)
		r.RemoteAddr = c.remote
		for _, f := range c.forwarded {
			r.Header.Add("X-Forwarded-For", f)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := w.Body.String(); got != c.want {
			t.Errorf("%s: counted against %q, want %q", c.name, got, c.want)
		}
	}
	if _, err := parseTrustedProxies([]string{"proxy.example"}); err == nil || !strings.Contains(err.Error(), "trusted_proxies") {
		t.Errorf("a host name as a trusted proxy: %v, want a refusal naming the setting", err)
	}
}
