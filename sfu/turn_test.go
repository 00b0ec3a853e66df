package sfu

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/sfu/sfutest"

	"github.com/pion/turn/v5"
)

const testAPISecret = "a-test-api-secret-of-at-least-32-characters"

// turnFixture is a TURN server on loopback with all three listeners, relaying to peers.
type turnFixture struct {
	srv           *TURNServer
	pool          *x509.CertPool
	udp, tcp, tls string // host:port of each listener
}

func newTURNFixture(t *testing.T, peers ...mediaPeer) *turnFixture {
	t.Helper()
	cert, pool := sfutest.LoopbackCertificate(t)
	srv, err := newTURNServer(TURNConfig{
		Secret: TURNSecret(testAPISecret), Host: "127.0.0.1",
		UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", TLSAddr: "127.0.0.1:0", Certificate: &cert,
		RelayIP: net.IPv4(127, 0, 0, 1), RelayBind: "127.0.0.1", RelayPortMin: 40000, RelayPortMax: 40999,
		CredentialTTL: time.Hour, Logger: discardLogger(),
	}, peers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	f := &turnFixture{srv: srv, pool: pool}
	for _, u := range srv.URLs() {
		hostport := u[strings.Index(u, ":")+1 : strings.Index(u, "?")]
		switch {
		case strings.HasPrefix(u, "turns:"):
			f.tls = hostport
		case strings.HasSuffix(u, "transport=tcp"):
			f.tcp = hostport
		default:
			f.udp = hostport
		}
	}
	if f.udp == "" || f.tcp == "" || f.tls == "" {
		t.Fatalf("URLs %v: want one each for UDP, TCP and TLS", srv.URLs())
	}
	return f
}

// client connects a pion TURN client over transport ("udp", "tcp" or "tls").
func (f *turnFixture) client(t *testing.T, transport, user, pass string) *turn.Client {
	t.Helper()
	var conn net.PacketConn
	var addr string
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn, addr = c, f.udp
	case "tcp":
		c, err := net.Dial("tcp4", f.tcp)
		if err != nil {
			t.Fatal(err)
		}
		conn, addr = turn.NewSTUNConn(c), f.tcp
	case "tls":
		c, err := tls.Dial("tcp4", f.tls, &tls.Config{RootCAs: f.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		conn, addr = turn.NewSTUNConn(c), f.tls
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn, Username: user, Password: pass,
		RTO: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); _ = conn.Close() })
	return c
}

// socketAt is a media socket that clients see at its own address.
func socketAt(a netip.AddrPort) mediaPeer { return newMediaPeer(a, a) }

func allocate(c *turn.Client) (net.PacketConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.AllocateWithContext(ctx)
}

// TestTURNCredentials: the credential handed to a participant opens a relay over UDP, TCP and
// TLS; an expired one, one signed with another secret (the raw API secret included) and one
// whose expiry was pushed back are refused.
func TestTURNCredentials(t *testing.T) {
	f := newTURNFixture(t, socketAt(netip.MustParseAddrPort("127.0.0.1:9")))
	good, err := f.srv.ICEServer("alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(good.Username, ":alice") {
		t.Fatalf("username %q: want expiry:identity", good.Username)
	}
	if want := []string{"turn:" + f.udp + "?transport=udp", "turn:" + f.tcp + "?transport=tcp", "turns:" + f.tls + "?transport=tcp"}; !slices.Equal(good.URLs, want) {
		t.Fatalf("URLs %v, want %v", good.URLs, want)
	}
	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run("valid/"+transport, func(t *testing.T) {
			relay, err := allocate(f.client(t, transport, good.Username, good.Credential))
			if err != nil {
				t.Fatalf("allocation with a fresh credential: %v", err)
			}
			defer relay.Close()
			if a := relay.LocalAddr().(*net.UDPAddr); a.Port < 40000 || a.Port > 40999 {
				t.Errorf("relay port %d outside the configured 40000-40999", a.Port)
			}
		})
	}

	expiredUser, expiredPass, err := turn.GenerateLongTermTURNRESTCredentials(TURNSecret(testAPISecret), "alice", -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rawUser, rawPass, err := turn.GenerateLongTermTURNRESTCredentials(testAPISecret, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expiry, identity, _ := strings.Cut(good.Username, ":")
	n, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	refused := map[string][2]string{
		"expired":                    {expiredUser, expiredPass},
		"signed with the API secret": {rawUser, rawPass},
		"wrong password":             {good.Username, "bm90IHRoZSBwYXNzd29yZA=="},
		"expiry pushed back":         {strconv.FormatInt(n+86400, 10) + ":" + identity, good.Credential},
		"another identity":           {expiry + ":mallory", good.Credential},
		"not expiry:identity":        {"alice", good.Credential},
	}
	for name, cred := range refused {
		t.Run("refused/"+name, func(t *testing.T) {
			relay, err := allocate(f.client(t, "udp", cred[0], cred[1]))
			if err == nil {
				relay.Close()
				t.Fatalf("user %q got a relay", cred[0])
			}
		})
	}
}

// TestTURNIsNotAnOpenRelay: an allocation reaches the media socket it is for, and nothing
// else: not another port on the same address, not another address (no permission is granted
// there), and no datagram sent to the relay from elsewhere comes back to the client. TCP relays
// (RFC 6062) are refused, and so is a relay port outside the range.
func TestTURNIsNotAnOpenRelay(t *testing.T) {
	listen := func(addr string) net.PacketConn {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	media := listen("127.0.0.1:0")    // stands for the SFU's UDP socket
	samePort := listen("127.0.0.1:0") // another service on the same address
	otherHost := listen("127.0.0.2:0")
	f := newTURNFixture(t, socketAt(media.LocalAddr().(*net.UDPAddr).AddrPort()))
	cred, err := f.srv.ICEServer("alice")
	if err != nil {
		t.Fatal(err)
	}
	client := f.client(t, "udp", cred.Username, cred.Credential)
	relay, err := allocate(client)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	if err := client.CreatePermission(otherHost.LocalAddr()); err == nil {
		t.Error("the server granted a permission towards 127.0.0.2, which is not a media address")
	}
	// The packets to the outsiders leave first; once the media socket has its own (sent last,
	// on the same loopback path), the others would have arrived too.
	for _, to := range []net.PacketConn{samePort, otherHost, media} {
		if _, err := relay.WriteTo([]byte("through the relay"), to.LocalAddr()); err != nil && to == media {
			t.Fatalf("send to the media socket: %v", err)
		}
	}
	buf := make([]byte, 1500)
	_ = media.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := media.ReadFrom(buf)
	if err != nil {
		t.Fatalf("the media socket received nothing through the relay: %v", err)
	}
	if string(buf[:n]) != "through the relay" || from.String() != relay.LocalAddr().String() {
		t.Fatalf("media socket got %q from %v, want the datagram from the relay %v", buf[:n], from, relay.LocalAddr())
	}
	for name, c := range map[string]net.PacketConn{"another port on 127.0.0.1": samePort, "127.0.0.2": otherHost} {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, from, err := c.ReadFrom(buf); err == nil {
			t.Errorf("%s received %q from %v through the relay", name, buf[:n], from)
		}
	}

	// Back through the relay: the media socket's answer arrives, an outsider's does not. The
	// outsider writes first, as above.
	if _, err := samePort.WriteTo([]byte("from an outsider"), from); err != nil {
		t.Fatal(err)
	}
	if _, err := media.WriteTo([]byte("from the media socket"), from); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, src, err := relay.ReadFrom(buf)
	if err != nil {
		t.Fatalf("the client received nothing from the media socket: %v", err)
	}
	if string(buf[:n]) != "from the media socket" {
		t.Fatalf("the client got %q from %v first, want only the media socket's answer", buf[:n], src)
	}

	tcpClient := f.client(t, "tcp", cred.Username, cred.Credential)
	if alloc, err := tcpClient.AllocateTCP(); err == nil {
		_ = alloc.Close()
		t.Error("the server opened a TCP relay (RFC 6062)")
	}
}

// TestTURNQuotaPerIdentity: one participant cannot take more than its share of the relay ports;
// another still gets a relay.
func TestTURNQuotaPerIdentity(t *testing.T) {
	f := newTURNFixture(t, socketAt(netip.MustParseAddrPort("127.0.0.1:9")))
	alice, err := f.srv.ICEServer("alice")
	if err != nil {
		t.Fatal(err)
	}
	var relays []net.PacketConn
	for i := range allocationsPerIdentity {
		relay, err := allocate(f.client(t, "udp", alice.Username, alice.Credential))
		if err != nil {
			t.Fatalf("allocation %d of alice: %v", i+1, err)
		}
		relays = append(relays, relay)
	}
	if relay, err := allocate(f.client(t, "udp", alice.Username, alice.Credential)); err == nil {
		relay.Close()
		t.Fatalf("alice got allocation %d, beyond her %d", allocationsPerIdentity+1, allocationsPerIdentity)
	}
	bob, err := f.srv.ICEServer("bob")
	if err != nil {
		t.Fatal(err)
	}
	relay, err := allocate(f.client(t, "udp", bob.Username, bob.Credential))
	if err != nil {
		t.Fatalf("bob was refused a relay because of alice's: %v", err)
	}
	relay.Close()
	// Once she closes hers, alice may open relays again.
	for _, r := range relays {
		_ = r.Close()
	}
	eventually(t, "alice's closed relays to be given back", func() bool {
		relay, err := allocate(f.client(t, "udp", alice.Username, alice.Credential))
		if err == nil {
			relay.Close()
		}
		return err == nil
	})
}

// TestTURNReachesMediaBehindPublicIP: behind NAT 1:1 the SFU announces a public IP that this
// machine may be unable to reach itself (few NATs hairpin). A client relaying to the public
// address reaches the media socket directly, and the socket's answers come back to it as from
// that public address.
func TestTURNReachesMediaBehindPublicIP(t *testing.T) {
	media, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer media.Close()
	local := media.LocalAddr().(*net.UDPAddr).AddrPort()
	public := netip.AddrPortFrom(netip.MustParseAddr("203.0.113.10"), local.Port()) // TEST-NET-3: reaches nothing
	f := newTURNFixture(t, newMediaPeer(public, local))
	cred, err := f.srv.ICEServer("alice")
	if err != nil {
		t.Fatal(err)
	}
	relay, err := allocate(f.client(t, "udp", cred.Username, cred.Credential))
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if _, err := relay.WriteTo([]byte("to the public address"), net.UDPAddrFromAddrPort(public)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = media.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := media.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "to the public address" {
		t.Fatalf("the media socket got %q, %v: want the datagram sent to its public address", buf[:n], err)
	}
	if _, err := media.WriteTo([]byte("answer"), from); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, src, err := relay.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "answer" {
		t.Fatalf("the client got %q, %v: want the media socket's answer", buf[:n], err)
	}
	if src.String() != public.String() {
		t.Errorf("the answer came from %v, want the public address %v the client talks to", src, public)
	}
}

// TestTURNPeersOfEngine: the relay may reach the Engine's UDP socket, and with public IPs the
// socket behind them.
func TestTURNPeersOfEngine(t *testing.T) {
	e := newTestEngine(t, false)
	defer e.Close()
	peers, err := e.mediaPeers()
	if err != nil {
		t.Fatal(err)
	}
	own := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(e.UDPPort()))
	if len(peers) != 1 || peers[0].announced != own || peers[0].local != own {
		t.Errorf("peers %v, want only the Engine's socket %v", peers, own)
	}
	nat, err := NewEngine(Config{UDPAddr: "0.0.0.0:0", PublicIPs: []string{"203.0.113.10"}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer nat.Close()
	if peers, err = nat.mediaPeers(); err != nil {
		t.Fatal(err)
	}
	public := netip.AddrPortFrom(netip.MustParseAddr("203.0.113.10"), uint16(nat.UDPPort()))
	loopback := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(nat.UDPPort()))
	if !slices.ContainsFunc(peers, func(p mediaPeer) bool { return p.announced == public && p.local == loopback }) {
		t.Errorf("peers %v: want %v reached at %v", peers, public, loopback)
	}
}
