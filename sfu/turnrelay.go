package sfu

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"

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
	peers []mediaPeer
}

// mediaPeer is an address clients see a media socket at, in the SFU's candidates, and where the
// relay really sends to reach it. They differ for an announced public IP (NAT 1:1): the relay
// goes straight to the socket behind it, since a NAT seldom lets a host reach its own public
// address (hairpinning), and answers from the socket are presented as coming from the public
// address the client asked for.
type mediaPeer struct {
	announced, local       netip.AddrPort
	announcedUDP, localUDP *net.UDPAddr // the same, made once: the relay path does not allocate
}

func newMediaPeer(announced, local netip.AddrPort) mediaPeer {
	return mediaPeer{announced: announced, local: local,
		announcedUDP: net.UDPAddrFromAddrPort(announced), localUDP: net.UDPAddrFromAddrPort(local)}
}

func (p mediaPeer) String() string {
	if p.announced == p.local {
		return p.local.String()
	}
	return p.announced.String() + " (at " + p.local.String() + ")"
}

var errTCPRelay = errors.New("sfu: TURN: TCP relays (RFC 6062) are not offered: media is relayed over UDP")

func newMediaRelay(cfg TURNConfig, peers []mediaPeer) *mediaRelay {
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
	return slices.ContainsFunc(r.peers, func(p mediaPeer) bool { return p.announced.Addr() == ip })
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
	peers []mediaPeer
	last  atomic.Int32 // index+1 of the peer last written to: whom answers from its socket come as
}

func udpAddrPort(addr net.Addr) (netip.AddrPort, bool) {
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := u.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

func (c *mediaOnlyConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ap, ok := udpAddrPort(addr)
	i := slices.IndexFunc(c.peers, func(m mediaPeer) bool { return m.announced == ap })
	if !ok || i < 0 {
		return len(p), nil
	}
	c.last.Store(int32(i + 1))
	return c.PacketConn.WriteTo(p, c.peers[i].localUDP)
}

func (c *mediaOnlyConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if from := c.sender(addr); from != nil {
			return n, from, nil
		}
	}
}

// sender is the announced address of the media socket a datagram came from, nil when it came
// from anywhere else.
func (c *mediaOnlyConn) sender(addr net.Addr) net.Addr {
	ap, ok := udpAddrPort(addr)
	if !ok {
		return nil
	}
	if last := c.last.Load(); last > 0 && c.peers[last-1].local == ap {
		return c.peers[last-1].announcedUDP
	}
	if i := slices.IndexFunc(c.peers, func(m mediaPeer) bool { return m.local == ap }); i >= 0 {
		return c.peers[i].announcedUDP
	}
	return nil
}

// mediaPeers are the UDP media sockets as clients see them: each socket at its own address,
// or at every local address for a wildcard socket, and at each announced public IP.
func (e *Engine) mediaPeers() ([]mediaPeer, error) {
	var out []mediaPeer
	add := func(announced, local netip.AddrPort) {
		if !slices.ContainsFunc(out, func(p mediaPeer) bool { return p.announced == announced }) {
			out = append(out, newMediaPeer(announced, local))
		}
	}
	for _, c := range e.udpConns {
		la, _ := udpAddrPort(c.LocalAddr())
		if !la.Addr().IsUnspecified() {
			add(la, la)
			continue
		}
		ips, err := localIPs(la.Addr().Is6(), true)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			if a, ok := netip.AddrFromSlice(ip); ok {
				add(netip.AddrPortFrom(a.Unmap(), la.Port()), netip.AddrPortFrom(a.Unmap(), la.Port()))
			}
		}
	}
	if len(e.publicIPs) > 0 {
		// With public IPs the Engine has one socket; a wildcard one is reached on loopback.
		local, _ := udpAddrPort(e.udpConns[0].LocalAddr())
		if local.Addr().IsUnspecified() {
			local = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), local.Port())
		}
		for _, s := range e.publicIPs {
			if a, err := netip.ParseAddr(s); err == nil {
				add(netip.AddrPortFrom(a.Unmap(), local.Port()), local)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no media address to relay to")
	}
	return out, nil
}
