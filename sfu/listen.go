package sfu

import (
	"errors"
	"fmt"
	"net"
)

// listenUDP opens the media sockets. A specific address gets one socket. A wildcard address
// (0.0.0.0, [::]) gets one socket per local address, all on the same port, because one
// wildcard socket answers from whichever source address the kernel picks for the destination:
// a client that checked the candidate 192.0.2.2 may get its answer from 127.0.0.1, discard it
// as asymmetric (RFC 8445, 7.2.5.2.1) and nominate a pair only at its next check round
// (measured with the bench's join storm against --dev: 234 ms to connect against 36 ms).
// With public IPs configured every candidate is rewritten to them, so one socket is kept.
//
// Addresses added to the machine after the start are not listened on.
func listenUDP(addr *net.UDPAddr, cfg Config) ([]*net.UDPConn, error) {
	if addr.IP != nil && !addr.IP.IsUnspecified() || len(cfg.PublicIPs) > 0 {
		c, err := net.ListenUDP(family("udp", addr.IP), addr)
		if err != nil {
			return nil, fmt.Errorf("sfu: listen on UDP %s: %w", addr, err)
		}
		return []*net.UDPConn{c}, nil
	}
	ips, err := localIPs(addr.IP == nil || addr.IP.To4() == nil, cfg.Loopback)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("sfu: listen on UDP %s: no local address is up", addr)
	}
	conns := make([]*net.UDPConn, 0, len(ips))
	port := addr.Port
	for _, ip := range ips {
		c, err := net.ListenUDP(family("udp", ip), &net.UDPAddr{IP: ip, Port: port})
		if err != nil {
			for _, o := range conns {
				_ = o.Close()
			}
			return nil, fmt.Errorf("sfu: listen on UDP %s port %d: %w", ip, port, err)
		}
		port = c.LocalAddr().(*net.UDPAddr).Port // a free port chosen by the first socket
		conns = append(conns, c)
	}
	return conns, nil
}

// localIPs lists the addresses of the interfaces that are up: IPv4, and IPv6 too when withIPv6;
// loopback only when asked. IPv6 link-local addresses are left out (they need a zone and
// reach only the local link).
func localIPs(withIPv6, loopback bool) ([]net.IP, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("sfu: list network interfaces: %w", err)
	}
	var ips []net.IP
	var errs []error
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || (iface.Flags&net.FlagLoopback != 0 && !loopback) {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			errs = append(errs, fmt.Errorf("sfu: addresses of %s: %w", iface.Name, err))
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip := n.IP
			switch {
			case ip.IsLoopback() && !loopback, ip.IsLinkLocalUnicast(), ip.IsMulticast():
				continue
			case ip.To4() == nil && !withIPv6:
				continue
			}
			ips = append(ips, ip)
		}
	}
	if len(ips) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ips, nil
}
