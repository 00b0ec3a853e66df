// Package broadcast tests the public programme end to end: a signalling server with its media
// engine on loopback, members publishing the pre-encoded test clips with the LiveKit Go SDK, and
// viewers joining with a viewer token as the watch page does. The received audio is decoded
// with ffmpeg and its pitch measured, so a bleep is checked by ear, so to speak.
package broadcast

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/test/media"
)

func TestMain(m *testing.M) { signalingtest.Main(m) }

// needFFmpeg fails the test when ffmpeg is missing: scripts/test installs it, so a missing
// one is a broken machine, not a reason to pass.
func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (scripts/test installs Debian's ffmpeg): %v", tool, err)
		}
	}
}

// startServer starts a server with the public programme configured by pc.
func startServer(t *testing.T, pc signaling.ProgrammeConfig, opts ...signalingtest.Option) *signalingtest.Server {
	t.Helper()
	return signalingtest.Start(t, append([]signalingtest.Option{signalingtest.Programme(pc)}, opts...)...)
}

// withCouncil gives the server a file journal and the shipped legal profiles, so that
// sessions can be held.
func withCouncil(t *testing.T) signalingtest.Option { return signalingtest.Council(t, t.TempDir()) }

// post sends a JSON request and decodes the JSON answer; it returns the status.
func post(t *testing.T, s *signalingtest.Server, path, token string, body, into any) int {
	t.Helper()
	return request(t, s, http.MethodPost, path, token, body, into)
}

// request sends a JSON request and decodes the JSON answer; it returns the status.
func request(t *testing.T, s *signalingtest.Server, method, path, token string, body, into any) int {
	t.Helper()
	status, data := s.Call(t, method, path, token, body)
	if into != nil && status == 200 {
		if err := json.Unmarshal(data, into); err != nil {
			t.Fatalf("%s %s: answer %q: %v", method, path, data, err)
		}
	}
	return status
}

// must posts and fails the test unless the answer is 200.
func must(t *testing.T, s *signalingtest.Server, path, token string, body any) {
	t.Helper()
	if code := post(t, s, path, token, body, nil); code != 200 {
		t.Fatalf("POST %s: status %d", path, code)
	}
}

// publish loops the test clips (440 Hz tone, and the VP8 test pattern with video).
func publish(t *testing.T, r *lksdk.Room, video bool) *signalingtest.Publisher {
	t.Helper()
	return signalingtest.Publish(t, r, signalingtest.Clips{Video: video})
}

// watch gets a viewer token as the watch page does and joins with it; the receiver holds
// what it gets per programme track name.
func watch(t *testing.T, s *signalingtest.Server, room string) *signalingtest.Receiver {
	t.Helper()
	var tok struct {
		Token    string `json:"token"`
		Identity string `json:"identity"`
	}
	if code := post(t, s, "/api/rooms/"+room+"/viewer-token", "", nil, &tok); code != 200 {
		t.Fatalf("viewer token: status %d", code)
	}
	v, cb := signalingtest.NewReceiver()
	signalingtest.Connect(t, s.WS, tok.Token, cb)
	return v
}

// decodeOpus writes RTP Opus packets to an Ogg file and decodes it with ffmpeg to mono 48 kHz
// samples.
func decodeOpus(t *testing.T, pkts []signalingtest.Packet) []float64 {
	t.Helper()
	dir := t.TempDir()
	oggPath := filepath.Join(dir, "received.ogg")
	w, err := oggwriter.New(oggPath, 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range pkts {
		if err := w.WriteRTP(g.Packet); err != nil {
			t.Fatalf("ogg: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return media.PCM(t, oggPath)
}

// runs describes a classification as "440x12 1000x10 440x8".
func runs(cls []int) string {
	var b strings.Builder
	for i := 0; i < len(cls); {
		j := i
		for j < len(cls) && cls[j] == cls[i] {
			j++
		}
		fmt.Fprintf(&b, "%dx%d ", cls[i], j-i)
		i = j
	}
	return strings.TrimSpace(b.String())
}
