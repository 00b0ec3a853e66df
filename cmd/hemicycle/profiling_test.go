package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

func TestProfilerListensOnLoopbackOnly(t *testing.T) {
	err := run(context.Background(), []string{"serve", "--dev", "--port", "0", "--pprof", "0.0.0.0:6060"}, &bytes.Buffer{}, &bytes.Buffer{}, noEnv)
	if err == nil || !strings.Contains(err.Error(), "loopback only") {
		t.Fatalf("--pprof on every interface: got %v, want a refusal saying loopback only", err)
	}
	for _, addr := range []string{"6060", "192.168.1.2:6060", "example.org:6060"} {
		if err := checkProfilerAddr(addr); err == nil {
			t.Errorf("checkProfilerAddr(%q) accepted it", addr)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := startProfiler(ctx, "127.0.0.1:0", signalingtest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The goroutine dump names this very test: it is the server's own profile, not a page.
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "TestProfilerListensOnLoopbackOnly") {
		t.Fatalf("goroutine profile: status %d, body %.200q", resp.StatusCode, body)
	}
}
