// Package netlab gives tests a weak network link of their own: a network namespace joined to
// the host by a veth pair, whose two directions can be shaped (tc tbf), made lossy (nftables
// random drops), cut, or restricted to one TCP port. The kernel here has tbf and nftables but
// no netem, so delay and jitter come only from the queue tbf builds.
//
// Needs root, iproute2 and nftables. Everything a Link creates is named after the PID of the
// test process and removed at t.Cleanup; what killed runs left behind is removed by the next
// New. Code that must run inside the namespace runs in a child process (Command, Child): a
// setns in-process would not do, since pion opens sockets from any OS thread.
package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Direction names one way across the link.
type Direction int

const (
	// ToPeer is what reaches the namespace: a client's downlink. Shaped on the host end's egress.
	ToPeer Direction = iota
	// FromPeer is what leaves the namespace: a client's uplink. Shaped on the namespace end's egress.
	FromPeer
)

func (d Direction) String() string {
	if d == ToPeer {
		return "to-peer"
	}
	return "from-peer"
}

// Link is a namespace and the veth pair that joins it to the host, on a /30 of 10.214.0.0/16.
type Link struct {
	t       testing.TB
	NS      string     // the namespace's name, for `ip netns exec`
	HostDev string     // the host's end of the pair
	PeerDev string     // the namespace's end
	HostIP  netip.Addr // address on HostDev; the server listens here
	PeerIP  netip.Addr // address on PeerDev; the client's address
}

const prefix = "hcnl" // Hemicycle network lab

// links counts the links this process made, so that one test process can have several.
var links atomic.Int32

var (
	nsName   = regexp.MustCompile(`^` + prefix + `-(\d+)-(\d+)$`)
	linkName = regexp.MustCompile(`^\d+: (hl(\d+)n(\d+)h)[@:]`)
)

func names(pid, n int) (ns, host, peer string) {
	// "hl" + 7 digits of PID + "n" + 2 digits + "h" stays within the kernel's 15 characters.
	return fmt.Sprintf("%s-%d-%d", prefix, pid, n), fmt.Sprintf("hl%dn%dh", pid, n), fmt.Sprintf("hl%dn%dp", pid, n)
}

// New makes a link, after sweeping what killed runs left, and removes it when the test ends.
func New(t testing.TB) *Link {
	t.Helper()
	Sweep(t)
	n := int(links.Add(1))
	pid := os.Getpid()
	ns, host, peer := names(pid, n)
	l := &Link{t: t, NS: ns, HostDev: host, PeerDev: peer}
	taken, err := run("ip", "-4", "-o", "addr", "show")
	if err != nil {
		t.Fatalf("netlab needs root and iproute2: %v", err)
	}
	// The /30 follows the PID and the link's number, moved on when the machine already has it
	// (another run's link, or a network this machine is on).
	for try := 0; try < 16384 && !l.HostIP.IsValid(); try++ {
		block := (pid*16 + n + try) % 16384
		base := netip.AddrFrom4([4]byte{10, 214, byte(block >> 6), byte((block & 63) << 2)})
		if free(taken, base) {
			l.HostIP = base.Next()
			l.PeerIP = l.HostIP.Next()
		}
	}
	if !l.HostIP.IsValid() {
		t.Fatal("netlab: no free /30 in 10.214.0.0/16")
	}
	t.Cleanup(l.remove)
	steps := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns},
		{"ip", "addr", "add", l.HostIP.String() + "/30", "dev", host},
		{"ip", "link", "set", host, "up"},
		{"ip", "-n", ns, "addr", "add", l.PeerIP.String() + "/30", "dev", peer},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "link", "set", peer, "up"},
	}
	for _, s := range steps {
		if _, err := run(s[0], s[1:]...); err != nil {
			t.Fatalf("netlab needs root and iproute2: %v", err)
		}
	}
	// One nftables table inside the namespace holds the loss and OnlyTCP rules of both
	// directions; it goes with the namespace.
	if err := l.nft(tableRules); err != nil {
		t.Fatalf("netlab needs nftables: %v", err)
	}
	return l
}

// The chains are hooked on the namespace's end: from_peer on what it sends out of PeerDev,
// to_peer on what arrives through it (after the host end's tbf, as loss after a bottleneck).
const tableRules = `table inet netlab {
	chain from_peer { type filter hook postrouting priority 0; policy accept; }
	chain to_peer { type filter hook prerouting priority 0; policy accept; }
	chain only_tcp { type filter hook output priority 0; policy accept; }
}
`

func free(taken string, base netip.Addr) bool {
	for _, m := range regexp.MustCompile(`inet (\d+\.\d+\.\d+\.\d+)/(\d+)`).FindAllStringSubmatch(taken, -1) {
		addr, err := netip.ParseAddr(m[1])
		if err != nil {
			continue
		}
		bits, _ := strconv.Atoi(m[2])
		bits = min(bits, 30)
		theirs, _ := addr.Prefix(bits)
		if theirs.Contains(base) {
			return false
		}
	}
	return true
}

// remove deletes the pair (both ends go with the host's, whatever still runs in the namespace)
// and the namespace's name.
func (l *Link) remove() {
	quietly("ip", "link", "del", l.HostDev)
	quietly("ip", "netns", "del", l.NS)
	if out, _ := run("ip", "netns", "list"); strings.Contains(out, l.NS+" ") || strings.Contains(out, l.NS+"\n") {
		l.t.Errorf("netlab: namespace %s outlived the test", l.NS)
	}
}

// Sweep removes the namespaces and links of test processes that are gone (killed with SIGKILL,
// which leaves no chance to clean up). New calls it.
func Sweep(t testing.TB) {
	t.Helper()
	dead := func(pid int) bool {
		return pid != os.Getpid() && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	}
	nsList, err := run("ip", "netns", "list")
	if err != nil {
		t.Fatalf("netlab needs root and iproute2: %v", err)
	}
	for _, line := range strings.Split(nsList, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if m := nsName.FindStringSubmatch(f[0]); m != nil {
			if pid, _ := strconv.Atoi(m[1]); dead(pid) {
				quietly("ip", "netns", "del", f[0])
			}
		}
	}
	linkList, _ := run("ip", "-o", "link", "show")
	for _, line := range strings.Split(linkList, "\n") {
		if m := linkName.FindStringSubmatch(line); m != nil {
			if pid, _ := strconv.Atoi(m[2]); dead(pid) {
				quietly("ip", "link", "del", m[1])
			}
		}
	}
}

// Shape limits one direction to kbit kilobits per second with a token bucket: a burst of 16 kB
// and at most 100 ms of queue, as a home line's modem would hold, beyond which packets drop.
// Shaping again replaces the limit.
func (l *Link) Shape(dir Direction, kbit int) error {
	_, err := run("tc", append(l.qdisc(dir, "replace"), "root", "tbf",
		"rate", fmt.Sprintf("%dkbit", kbit), "burst", "16kb", "latency", "100ms")...)
	return err
}

// Unshape lifts the limit of one direction.
func (l *Link) Unshape(dir Direction) error {
	_, err := run("tc", append(l.qdisc(dir, "del"), "root")...)
	return err
}

// qdisc starts the tc command for the qdisc on the egress of the end that dir leaves from: the
// host's end for ToPeer, the namespace's for FromPeer.
func (l *Link) qdisc(dir Direction, verb string) []string {
	if dir == ToPeer {
		return []string{"qdisc", verb, "dev", l.HostDev}
	}
	return []string{"-n", l.NS, "qdisc", verb, "dev", l.PeerDev}
}

// Loss drops percent of the packets of one direction at random (nftables numgen). Setting it
// again replaces the rate.
func (l *Link) Loss(dir Direction, percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("netlab: loss of %d %% is not a percentage", percent)
	}
	chain, match := l.lossChain(dir)
	return l.nft(fmt.Sprintf("flush chain inet netlab %s\nadd rule inet netlab %s %s numgen random mod 100 < %d drop\n",
		chain, chain, match, percent))
}

// NoLoss stops the random drops of one direction.
func (l *Link) NoLoss(dir Direction) error {
	chain, _ := l.lossChain(dir)
	return l.nft(fmt.Sprintf("flush chain inet netlab %s\n", chain))
}

func (l *Link) lossChain(dir Direction) (chain, match string) {
	if dir == ToPeer {
		return "to_peer", fmt.Sprintf("iifname %q", l.PeerDev)
	}
	return "from_peer", fmt.Sprintf("oifname %q", l.PeerDev)
}

// OnlyTCP lets out of the namespace only TCP to port (and loopback): a network that blocks UDP
// and every port but one, as some town halls' do. Calling it again changes the port.
func (l *Link) OnlyTCP(port int) error {
	return l.nft(fmt.Sprintf("flush chain inet netlab only_tcp\n"+
		"add rule inet netlab only_tcp oifname \"lo\" accept\n"+
		"add rule inet netlab only_tcp tcp dport %d accept\n"+
		"add rule inet netlab only_tcp drop\n", port))
}

// AllTraffic lifts OnlyTCP.
func (l *Link) AllTraffic() error {
	return l.nft("flush chain inet netlab only_tcp\n")
}

// Down takes the namespace's end of the link down: everything it sends or expects is lost, as
// when a Wi-Fi drops; the host end, where the server listens, stays as it is.
func (l *Link) Down() error {
	_, err := run("ip", "-n", l.NS, "link", "set", l.PeerDev, "down")
	return err
}

// Up brings the namespace's end back.
func (l *Link) Up() error {
	_, err := run("ip", "-n", l.NS, "link", "set", l.PeerDev, "up")
	return err
}

// Command is a command that runs inside the namespace; it is killed when ctx ends.
func (l *Link) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.NS, name}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func (l *Link) nft(rules string) error {
	cmd := exec.Command("ip", "netns", "exec", l.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("netlab: ip netns exec %s nft -f - with %q: %w: %s", l.NS, rules, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// run runs a command and says which one failed, and how.
func run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("netlab: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func quietly(name string, args ...string) {
	cmd := exec.Command(name, args...)
	_ = cmd.Run() // already removed, or never created
}
