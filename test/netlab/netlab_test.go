package netlab_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ingeco/hemicycle/test/netlab"
)

func TestNetlabChild(t *testing.T) { netlab.Serve(t, roles) }

// The roles are the namespace's side of each check; the test is the host's side.
var roles = map[string]netlab.Role{
	// tcp-send writes to ADDR for SECONDS, as fast as the link takes it.
	"tcp-send": func(ctx context.Context, t testing.TB, report func(any)) {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", os.Getenv("ADDR"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		secs, _ := strconv.Atoi(os.Getenv("SECONDS"))
		_ = conn.SetWriteDeadline(time.Now().Add(time.Duration(secs) * time.Second))
		buf := make([]byte, 32*1024)
		for {
			if _, err := conn.Write(buf); err != nil {
				break
			}
		}
		report("sent")
	},
	// tcp-recv accepts one connection on ADDR and reports the bytes it reads between its first
	// second and its SECONDS-th.
	"tcp-recv": func(ctx context.Context, t testing.TB, report func(any)) {
		ln, err := net.Listen("tcp", os.Getenv("ADDR"))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		report("listening")
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		secs, _ := strconv.Atoi(os.Getenv("SECONDS"))
		report(measure(conn, time.Duration(secs)*time.Second))
	},
	// udp-send sends COUNT datagrams of 1000 bytes to ADDR, one every millisecond.
	"udp-send": func(ctx context.Context, t testing.TB, report func(any)) {
		conn, err := net.Dial("udp", os.Getenv("ADDR"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		n, _ := strconv.Atoi(os.Getenv("COUNT"))
		for range n {
			_, _ = conn.Write(make([]byte, 1000)) // a link that is down refuses: that is the point
			time.Sleep(time.Millisecond)
		}
		report("sent")
	},
	// udp-recv counts the datagrams that reach ADDR until none has come for a second.
	"udp-recv": func(ctx context.Context, t testing.TB, report func(any)) {
		conn, err := net.ListenPacket("udp", os.Getenv("ADDR"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		report("listening")
		report(countDatagrams(conn, 10*time.Second))
	},
	// tcp-dial reports whether a TCP connection to ADDR opens within two seconds.
	"tcp-dial": func(ctx context.Context, t testing.TB, report func(any)) {
		conn, err := net.DialTimeout("tcp", os.Getenv("ADDR"), 2*time.Second)
		if err == nil {
			conn.Close()
		}
		report(err == nil)
	},
}

// measure reads conn and returns the bytes read from its first second to the end of window.
func measure(conn net.Conn, window time.Duration) int64 {
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(time.Second))
	_, _ = io.Copy(io.Discard, conn)
	_ = conn.SetReadDeadline(start.Add(window))
	n, _ := io.Copy(io.Discard, conn)
	return n
}

// countDatagrams counts what arrives until nothing has for a second (or first for wait).
func countDatagrams(conn net.PacketConn, wait time.Duration) int {
	buf := make([]byte, 2048)
	n := 0
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	for {
		if _, _, err := conn.ReadFrom(buf); err != nil {
			return n
		}
		n++
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	}
}

func addr(ip netip.Addr, port int) string { return netip.AddrPortFrom(ip, uint16(port)).String() }

// freePort is a TCP and UDP port free on ip now.
func freePort(t *testing.T, ip netip.Addr) int {
	ln, err := net.Listen("tcp", addr(ip, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func kbits(bytes int64, d time.Duration) float64 { return float64(bytes) * 8 / 1000 / d.Seconds() }

// Both directions shaped to 1 Mbit/s carry a TCP transfer at about that rate, and once the
// limit is lifted far more.
func TestShapeLimitsEachDirection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	link := netlab.New(t)
	const window = 4 * time.Second // measured after the first second, which fills the queue

	uplink := func() float64 {
		ln, err := net.Listen("tcp", addr(link.HostIP, 0))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		p := netlab.Child(ctx, t, link, "tcp-send", map[string]string{"ADDR": ln.Addr().String(), "SECONDS": "6"})
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		n := measure(conn, time.Second+window)
		_ = p.Wait()
		return kbits(n, window)
	}
	downlink := func() float64 {
		a := addr(link.PeerIP, freePort(t, link.HostIP))
		p := netlab.Child(ctx, t, link, "tcp-recv", map[string]string{"ADDR": a, "SECONDS": "5"})
		var ready string
		if err := p.Next(ctx, &ready); err != nil {
			t.Fatal(err)
		}
		conn, err := net.Dial("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		go func() {
			buf := make([]byte, 32*1024)
			for ctx.Err() == nil {
				if _, err := conn.Write(buf); err != nil {
					return
				}
			}
		}()
		var n int64
		if err := p.Next(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return kbits(n, window)
	}

	if err := link.Shape(netlab.FromPeer, 1000); err != nil {
		t.Fatal(err)
	}
	if err := link.Shape(netlab.ToPeer, 1000); err != nil {
		t.Fatal(err)
	}
	up, down := uplink(), downlink()
	t.Logf("shaped to 1000 kbit/s: uplink %.0f kbit/s, downlink %.0f kbit/s", up, down)
	for name, rate := range map[string]float64{"uplink": up, "downlink": down} {
		if rate < 800 || rate > 1100 {
			t.Errorf("%s carried %.0f kbit/s through a 1000 kbit/s shape", name, rate)
		}
	}

	if err := link.Unshape(netlab.FromPeer); err != nil {
		t.Fatal(err)
	}
	if err := link.Unshape(netlab.ToPeer); err != nil {
		t.Fatal(err)
	}
	up, down = uplink(), downlink()
	t.Logf("unshaped: uplink %.0f kbit/s, downlink %.0f kbit/s", up, down)
	if up < 5000 || down < 5000 {
		t.Errorf("the unshaped link carried only %.0f kbit/s up and %.0f down", up, down)
	}
}

// Loss drops about the share asked of each direction's datagrams, and NoLoss none.
func TestLossDropsItsShare(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	link := netlab.New(t)
	const count = 2000

	fromPeer := func() int {
		conn, err := net.ListenPacket("udp", addr(link.HostIP, 0))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		netlab.Child(ctx, t, link, "udp-send", map[string]string{"ADDR": conn.LocalAddr().String(), "COUNT": strconv.Itoa(count)})
		return countDatagrams(conn, 10*time.Second)
	}
	toPeer := func() int {
		a := addr(link.PeerIP, freePort(t, link.HostIP))
		p := netlab.Child(ctx, t, link, "udp-recv", map[string]string{"ADDR": a})
		var ready string
		if err := p.Next(ctx, &ready); err != nil {
			t.Fatal(err)
		}
		conn, err := net.Dial("udp", a)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for range count {
			_, _ = conn.Write(make([]byte, 1000))
			time.Sleep(time.Millisecond)
		}
		var n int
		if err := p.Next(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if err := link.Loss(netlab.FromPeer, 30); err != nil {
		t.Fatal(err)
	}
	if err := link.Loss(netlab.ToPeer, 10); err != nil {
		t.Fatal(err)
	}
	up, down := fromPeer(), toPeer()
	t.Logf("of %d datagrams, %d arrived from the peer at 30 %% loss and %d reached it at 10 %%", count, up, down)
	if lost := 100 * float64(count-up) / count; lost < 25 || lost > 35 {
		t.Errorf("30 %% loss from the peer dropped %.1f %%", lost)
	}
	if lost := 100 * float64(count-down) / count; lost < 7 || lost > 13 {
		t.Errorf("10 %% loss to the peer dropped %.1f %%", lost)
	}
	if err := link.NoLoss(netlab.FromPeer); err != nil {
		t.Fatal(err)
	}
	if err := link.NoLoss(netlab.ToPeer); err != nil {
		t.Fatal(err)
	}
	if up, down := fromPeer(), toPeer(); up != count || down != count {
		t.Errorf("without loss %d and %d of %d datagrams arrived", up, down, count)
	}
}

// OnlyTCP lets a connection to the one port through and drops UDP and other ports; Down cuts
// everything and Up brings it back.
func TestOnlyTCPAndDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	link := netlab.New(t)
	tcp443, err := net.Listen("tcp", addr(link.HostIP, 443))
	if err != nil {
		t.Fatal(err)
	}
	defer tcp443.Close()
	other, err := net.Listen("tcp", addr(link.HostIP, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	udp, err := net.ListenPacket("udp", addr(link.HostIP, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()

	dials := func(a string) bool {
		var ok bool
		if err := netlab.Child(ctx, t, link, "tcp-dial", map[string]string{"ADDR": a}).Next(ctx, &ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	datagrams := func() int {
		netlab.Child(ctx, t, link, "udp-send", map[string]string{"ADDR": udp.LocalAddr().String(), "COUNT": "20"})
		return countDatagrams(udp, 3*time.Second)
	}

	if !dials(tcp443.Addr().String()) || !dials(other.Addr().String()) || datagrams() != 20 {
		t.Fatal("the link does not carry TCP and UDP before any restriction")
	}
	if err := link.OnlyTCP(443); err != nil {
		t.Fatal(err)
	}
	if !dials(tcp443.Addr().String()) {
		t.Error("OnlyTCP(443) blocked TCP to 443")
	}
	if dials(other.Addr().String()) {
		t.Errorf("OnlyTCP(443) let TCP to %s through", other.Addr())
	}
	if n := datagrams(); n != 0 {
		t.Errorf("OnlyTCP(443) let %d UDP datagrams through", n)
	}
	if err := link.AllTraffic(); err != nil {
		t.Fatal(err)
	}
	if err := link.Down(); err != nil {
		t.Fatal(err)
	}
	if n := datagrams(); n != 0 {
		t.Errorf("%d datagrams crossed a link that is down", n)
	}
	if err := link.Up(); err != nil {
		t.Fatal(err)
	}
	if n := datagrams(); n != 20 {
		t.Errorf("%d of 20 datagrams crossed the link brought back up", n)
	}
}

// A child's failure reaches the parent with what the child said.
func TestChildFailureIsReported(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	link := netlab.New(t)
	err := netlab.Child(ctx, t, link, "tcp-send", map[string]string{"ADDR": "not an address"}).Wait()
	if err == nil || !strings.Contains(err.Error(), "not an address") {
		t.Fatalf("a child that failed to dial reported %v", err)
	}
}
