package weaklinks

import (
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
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/test/netlab"
)

// turnRoom is the room of the TURN test.
const turnRoom = "weak-links"

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
	keys := signalingtest.TestKeys
	srv, err := signalingtest.StartProcess(t, signalingtest.Command{
		Path: signalingtest.Binary(t), Args: []string{"serve", "--config", config},
		Env: []string{"HEMICYCLE_KEYS=" + keys.Key + ": " + keys.Secret, "HEMICYCLE_JOURNAL_KEYS=" + signalingtest.JournalKeys(t, dir)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := link.OnlyTCP(443); err != nil {
		t.Fatal(err)
	}

	chamberGot, cb := signalingtest.NewCounter()
	chamber := signalingtest.Connect(t, srv.WS(), keys.Token(t, turnRoom, "chamber", auth.RoleMember, 0), cb)
	signalingtest.Publish(t, chamber, signalingtest.Clips{Video: true})

	remote := netlab.Child(ctx, t, link, "turn-member", map[string]string{
		"HEMICYCLE_URL": srv.WS(), "HEMICYCLE_TOKEN": keys.Token(t, turnRoom, "remote", auth.RoleMember, 0), "SSL_CERT_FILE": caFile,
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
	for chamberGot.Audio() <= 50 || chamberGot.Video() <= 50 {
		select {
		case <-ctx.Done():
			t.Fatalf("the chamber received %d audio and %d video packets from the member behind the firewall, want more than 50 of each",
				chamberGot.Audio(), chamberGot.Video())
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
	got, cb := signalingtest.NewCounter()
	room := signalingtest.Connect(t, os.Getenv("HEMICYCLE_URL"), os.Getenv("HEMICYCLE_TOKEN"), cb)
	signalingtest.Publish(t, room, signalingtest.Clips{Video: true})
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		report(memberReport{
			Audio: got.Audio(), Video: got.Video(),
			Publisher:  selected(room.LocalParticipant.GetPublisherPeerConnection()),
			Subscriber: selected(room.LocalParticipant.GetSubscriberPeerConnection()),
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
