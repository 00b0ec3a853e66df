// Package signalingtest is the one harness of Hemicycle's integration suites: an in-process
// signalling server with its media engine on loopback, the real hemicycle binary as a child
// process, tokens, LiveKit Go SDK clients that publish the committed test clips and count
// what they receive, a polling helper and a quiet logger. Media fixtures themselves (the
// clips, decoding, pitch) stay in test/media.
//
// A suite's TestMain calls Main, which quiets the SDK and removes the binary built for it.
package signalingtest

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/test/media"
)

// Main runs a suite's tests: the LiveKit SDK is quiet unless HEMICYCLE_TEST_LOG is set, and the
// hemicycle binary that Binary built, if any, is removed at the end.
func Main(m *testing.M) {
	if os.Getenv("HEMICYCLE_TEST_LOG") == "" {
		media.QuietSDK()
	}
	code := m.Run()
	removeBinary()
	os.Exit(code)
}

// Logger is the logger of in-process servers and clients: silent, or everything on standard
// error when HEMICYCLE_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("HEMICYCLE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Eventually polls cond until it holds, and fails the test when within has passed first.
// Deadlines are generous bounds for liveness, not performance assertions.
func Eventually(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ModuleRoot is the repository's root folder (where go.mod is).
func ModuleRoot() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "..")
}
