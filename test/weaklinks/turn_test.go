package weaklinks

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/test/media"
	"github.com/ingeco/hemicycle/test/netlab"
)

const (
	apiKey    = "weaklinks"
	apiSecret = "a-weak-links-test-secret-of-32-bytes-or-more"
)

// TestJoinThroughTURNOverTLSOnly443: a member whose network lets out nothing but TCP to port
// 443 (no UDP, no other port) joins, and audio and video flow both ways between them and a
// member in the chamber, through the embedded TURN server over TLS on 443. As in a deployment
// where a reverse proxy holds 443 for HTTPS, signalling has 443 on one address and TURN over
// TLS 443 on another; the member's client is the LiveKit Go SDK, trusting the test's CA.
func TestJoinThroughTURNOverTLSOnly443(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	link := netlab.New(t)
	signalIP := secondAddress(t, link)
	dir := t.TempDir()
	caFile, certFile, keyFile := writeCertificates(t, dir, link.HostIP)
	config := filepath.Join(dir, "hemicycle.yaml")
	writeFile(t, config, fmt.Sprintf(`bind: %s
port: 443
rtc: {udp_port: 0, tcp_port: 0}
logging: {level: info, format: text}
data_dir: %s
broadcast: {enabled: false}
turn:
  enabled: true
  domain: %s
  bind: %s
  port: 0
  tls_port: 443
  cert_file: %s
  key_file: %s
`, signalIP, filepath.Join(dir, "data"), link.HostIP, link.HostIP, certFile, keyFile))
	url := startHemicycle(t, buildHemicycle(t), config)
	if err := link.OnlyTCP(443); err != nil {
		t.Fatal(err)
	}

	chamber := join(t, url, token(t, "chamber"))
	defer chamber.room.Disconnect()
	published := make(chan struct{})
	go func() {
		defer close(published)
		publishClips(ctx, t, chamber.room)
	}()
	defer func() { cancel(); <-published }()

	remote := netlab.Child(ctx, t, link, "turn-member", map[string]string{
		"HEMICYCLE_URL": url, "HEMICYCLE_TOKEN": token(t, "remote"), "SSL_CERT_FILE": caFile,
	})
	var got memberReport
	for {
		if err := remote.Next(ctx, &got); err != nil {
			t.Fatalf("the member behind the firewall never received audio and video (last report %+v): %v", got, err)
		}
		if got.Audio > 50 && got.Video > 50 {
			break
		}
	}
	t.Logf("behind the firewall: %+v", got)
	for _, pc := range []candidate{got.Publisher, got.Subscriber} {
		if pc.Type != "relay" || pc.RelayProtocol != "tls" {
			t.Errorf("the member's connections went through %+v and %+v, want relayed over TLS", got.Publisher, got.Subscriber)
			break
		}
	}
	for chamber.audio.Load() <= 50 || chamber.video.Load() <= 50 {
		select {
		case <-ctx.Done():
			t.Fatalf("the chamber received %d audio and %d video packets from the member behind the firewall, want more than 50 of each",
				chamber.audio.Load(), chamber.video.Load())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// memberReport is what the member behind the firewall reports each second.
type memberReport struct {
	Audio, Video          int64 // packets received from the chamber
	Publisher, Subscriber candidate
}

// candidate is the local end of a peer connection's selected pair.
type candidate struct {
	Type          string // host, srflx, prflx or relay
	RelayProtocol string // udp, tcp or tls for a relay
}

// turnMember joins HEMICYCLE_URL with HEMICYCLE_TOKEN, publishes audio and video, and reports
// what it receives and which path its connections took, until the parent stops it.
func turnMember(ctx context.Context, t testing.TB, report func(any)) {
	m := join(t, os.Getenv("HEMICYCLE_URL"), os.Getenv("HEMICYCLE_TOKEN"))
	defer m.room.Disconnect()
	published := make(chan struct{})
	go func() {
		defer close(published)
		publishClips(ctx, t, m.room)
	}()
	defer func() { <-published }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		report(memberReport{
			Audio: m.audio.Load(), Video: m.video.Load(),
			Publisher:  selected(m.room.LocalParticipant.GetPublisherPeerConnection()),
			Subscriber: selected(m.room.LocalParticipant.GetSubscriberPeerConnection()),
		})
	}
}

// selected is the local candidate of pc's nominated pair, empty until there is one.
func selected(pc *webrtc.PeerConnection) candidate {
	if pc == nil {
		return candidate{}
	}
	stats := pc.GetStats()
	for _, s := range stats {
		pair, ok := s.(webrtc.ICECandidatePairStats)
		if !ok || !pair.Nominated || pair.State != webrtc.StatsICECandidatePairStateSucceeded {
			continue
		}
		if local, ok := stats[pair.LocalCandidateID].(webrtc.ICECandidateStats); ok {
			return candidate{Type: local.CandidateType.String(), RelayProtocol: local.RelayProtocol}
		}
	}
	return candidate{}
}

// member is a joined SDK client counting the RTP packets it receives, per kind.
type member struct {
	room         *lksdk.Room
	audio, video atomic.Int64
}

func join(t testing.TB, url, tok string) *member {
	m := &member{}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		go func() {
			for {
				if _, _, err := track.ReadRTP(); err != nil {
					return
				}
				if track.Kind() == webrtc.RTPCodecTypeAudio {
					m.audio.Add(1)
				} else {
					m.video.Add(1)
				}
			}
		}()
	}
	room, err := lksdk.ConnectToRoomWithToken(url, tok, cb)
	if err != nil {
		t.Fatalf("join %s: %v", url, err)
	}
	m.room = room
	return m
}

// publishClips publishes the test clips (Opus and VP8) at their real pace until ctx ends.
func publishClips(ctx context.Context, t testing.TB, room *lksdk.Room) {
	opus, err := media.Opus()
	if err != nil {
		t.Error(err)
		return
	}
	vp8, err := media.VP8()
	if err != nil {
		t.Error(err)
		return
	}
	audio, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		t.Error(err)
		return
	}
	video, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := room.LocalParticipant.PublishTrack(audio, &lksdk.TrackPublicationOptions{Name: "mic", Source: livekit.TrackSource_MICROPHONE}); err != nil {
		t.Errorf("publish audio: %v", err)
		return
	}
	if _, err := room.LocalParticipant.PublishTrack(video, &lksdk.TrackPublicationOptions{Name: "camera", Source: livekit.TrackSource_CAMERA, VideoWidth: 320, VideoHeight: 240}); err != nil {
		t.Errorf("publish video: %v", err)
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		playFrames(ctx, vp8, video)
	}()
	playFrames(ctx, opus, audio)
	<-done
}

// loop writes frames at their real pace, over and over, until ctx ends.
// playFrames plays the clip's frames on track with weaklinks_test.go's loop.
func playFrames(ctx context.Context, frames []media.Frame, track *lksdk.LocalTrack) {
	samples := make([]pionmedia.Sample, len(frames))
	for i, f := range frames {
		samples[i] = pionmedia.Sample{Data: f.Data, Duration: f.Duration}
	}
	loop(ctx, samples, func(s pionmedia.Sample) { _ = track.WriteSample(s, nil) }) // fails until bound
}

func token(t testing.TB, identity string) string {
	tok, err := auth.Issue(auth.TokenOptions{
		Key: apiKey, Secret: apiSecret, Identity: identity, Name: identity, Room: "weak-links", TTL: time.Hour,
		Video: auth.GrantsForRole(auth.RoleMember, "weak-links"), Council: &auth.CouncilGrant{Role: auth.RoleMember},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// secondAddress gives the host a second address that the namespace reaches through the link:
// 10.215.x.y beside the link's 10.214.x.y, so that it is as unique as the link. It goes with
// the link's devices.
func secondAddress(t *testing.T, l *netlab.Link) netip.Addr {
	t.Helper()
	b := l.HostIP.As4()
	b[1]++
	ip := netip.AddrFrom4(b)
	for _, args := range [][]string{
		{"addr", "add", ip.String() + "/32", "dev", l.HostDev},
		{"-n", l.NS, "route", "add", ip.String() + "/32", "via", l.HostIP.String()},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return ip
}

// writeCertificates writes a test CA and a certificate it signed for ip, as PEM files.
func writeCertificates(t *testing.T, dir string, ip netip.Addr) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Hemicycle weak-links test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip.String()},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{ip.AsSlice()}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "turn.pem"), filepath.Join(dir, "turn.key")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	return caFile, certFile, keyFile
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// buildHemicycle compiles cmd/hemicycle into the test's temporary folder.
func buildHemicycle(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hemicycle")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/hemicycle")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build hemicycle: %v\n%s", err, out)
	}
	return bin
}

// startHemicycle runs `hemicycle serve --config config` and returns its WebSocket URL once it
// listens; the server is stopped when the test ends, and its log shown if the test failed.
func startHemicycle(t *testing.T, bin, config string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", config)
	cmd.Env = append(os.Environ(), "HEMICYCLE_KEYS="+apiKey+": "+apiSecret)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "server.log")
	logs, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logs.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("server log:\n%s", b)
		}
	})
	listening := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(out)
		for lines.Scan() {
			if rest, ok := strings.CutPrefix(lines.Text(), "hemicycle listening on http://"); ok {
				listening <- "ws://" + strings.Fields(rest)[0]
			}
		}
	}()
	select {
	case url := <-listening:
		return url
	case <-exited:
		b, _ := os.ReadFile(logFile)
		t.Fatalf("hemicycle exited before listening:\n%s", b)
	case <-time.After(30 * time.Second):
		t.Fatal("hemicycle did not listen within 30 s")
	}
	return ""
}
