package sfu

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/pion/turn/v5"
)

// mediaRelay opens the TURN relay sockets and keeps them pointed at this server's media
// sockets only. An open relay would let anyone holding a credential (every participant gets
// one) send from this machine to any host and port; here a relay's datagrams reach only the
// SFU's UDP port on its own addresses, and only datagrams from there come back.
//
// pion/turn's PermissionHandler sees the peer's IP alone, so it refuses other hosts; the port
// is checked on every datagram by the relay socket's wrapper (mediaOnlyConn).
type mediaRelay struct {
	ports *turn.RelayAddressGeneratorPortRange
	peers []netip.AddrPort // the SFU's UDP sockets, as clients see them in its candidates
}

var errTCPRelay = errors.New("sfu: TURN: TCP relays (RFC 6062) are not offered: media is relayed over UDP")

func newMediaRelay(cfg TURNConfig, peers []netip.AddrPort) *mediaRelay {
	return &mediaRelay{
		ports: &turn.RelayAddressGeneratorPortRange{
			RelayAddress: cfg.RelayIP,
			Address:      cfg.RelayBind,
			MinPort:      cfg.RelayPortMin,
			MaxPort:      cfg.RelayPortMax,
		},
		peers: peers,
	}
}

// permit lets a client create permissions and channels towards the SFU's addresses only.
func (r *mediaRelay) permit(_ net.Addr, peerIP net.IP) bool {
	ip, ok := netip.AddrFromSlice(peerIP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	return slices.ContainsFunc(r.peers, func(p netip.AddrPort) bool { return p.Addr() == ip })
}

func (r *mediaRelay) Validate() error {
	if r.ports.RelayAddress == nil || r.ports.RelayAddress.To4() == nil {
		return fmt.Errorf("sfu: TURN: relay address %v: want an IPv4 address", r.ports.RelayAddress)
	}
	return r.ports.Validate()
}

// AllocatePacketConn opens a relay socket in the configured range; a client may ask for a port
// (RFC 8656 EVEN-PORT, or a requested port), but only inside the range.
func (r *mediaRelay) AllocatePacketConn(c turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	if c.RequestedPort != 0 && (c.RequestedPort < int(r.ports.MinPort) || c.RequestedPort > int(r.ports.MaxPort)) {
		return nil, nil, fmt.Errorf("sfu: TURN: port %d is outside the relay range %d-%d", c.RequestedPort, r.ports.MinPort, r.ports.MaxPort)
	}
	conn, addr, err := r.ports.AllocatePacketConn(c)
	if err != nil {
		return nil, nil, err
	}
	return &mediaOnlyConn{PacketConn: conn, peers: r.peers}, addr, nil
}

func (r *mediaRelay) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errTCPRelay
}

func (r *mediaRelay) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPRelay
}

// mediaOnlyConn is a relay socket that exchanges datagrams with the SFU's media sockets alone.
// A datagram to anywhere else is dropped as if sent (as a missing permission drops it), so a
// client probing other ports learns nothing and floods no log.
type mediaOnlyConn struct {
	net.PacketConn
	peers []netip.AddrPort
}

func (c *mediaOnlyConn) allowed(addr net.Addr) bool {
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return false
	}
	ap := u.AddrPort()
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return slices.Contains(c.peers, ap)
}

func (c *mediaOnlyConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.allowed(addr) {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c *mediaOnlyConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.allowed(addr) {
			return n, addr, err
		}
	}
}

// mediaAddrs are the addresses of the UDP media sockets as clients see them: each socket's own
// address, every local address for a wildcard socket, and the announced public IPs.
func (e *Engine) mediaAddrs() ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	add := func(ip net.IP, port int) {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return
		}
		ap := netip.AddrPortFrom(a.Unmap(), uint16(port))
		if !slices.Contains(out, ap) {
			out = append(out, ap)
		}
	}
	for _, c := range e.udpConns {
		la := c.LocalAddr().(*net.UDPAddr)
		if !la.IP.IsUnspecified() {
			add(la.IP, la.Port)
			continue
		}
		ips, err := localIPs(la.IP.To4() == nil, true)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			add(ip, la.Port)
		}
	}
	for _, s := range e.publicIPs {
		add(net.ParseIP(s), e.UDPPort())
	}
	if len(out) == 0 {
		return nil, errors.New("no media address to relay to")
	}
	return out, nil
}
