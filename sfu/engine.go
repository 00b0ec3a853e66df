package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Config sets up the Engine's sockets and candidates.
type Config struct {
	// UDPAddr is the one UDP socket shared by every peer (pion's ICE UDP mux), for example
	// "0.0.0.0:7882", or "127.0.0.1:0" for a free port.
	UDPAddr string
	// TCPAddr is the ICE-TCP listener, for example "0.0.0.0:7881"; empty disables ICE over TCP.
	TCPAddr string
	// PublicIPs are announced as host candidates instead of the local addresses (NAT 1:1).
	PublicIPs []string
	// Loopback offers loopback candidates: development, and clients on the same host.
	Loopback bool
	// LoopbackOnly binds and gathers on the loopback interface only (tests).
	LoopbackOnly bool
	// BatchWrites sends the copies of each fan-out with one sendmmsg call instead of one
	// sendto each (Linux; elsewhere it falls back to single sends). On this project's
	// loopback benchmarks it shortened a fan-out's elapsed time in isolation but saved no CPU
	// in the whole server, where the kernel's per-datagram work dominates (BENCHMARKS.md):
	// measure it on the real network before turning it on.
	BatchWrites bool
	// DisableAllocation sends every subscriber all it subscribed to, whatever its link can
	// carry (the estimate is still made and exported): for comparison runs only.
	DisableAllocation bool
	Logger            *slog.Logger
}

// Engine owns the sockets and the pion configuration shared by all transports.
type Engine struct {
	log           *slog.Logger
	udpConns      []*net.UDPConn // one, or one per local address (see listenUDP); all on one port
	udpBatch      *batchGroup    // udpConns, sending each fan-out with one system call; nil unless BatchWrites
	udpMux        ice.UDPMux
	publicIPs     []string // announced instead of the local addresses; the TURN relay may reach them
	tcpListener   net.Listener
	tcpMux        *ice.TCPMuxDefault
	publisherAPI  *webrtc.API
	subscriberAPI *webrtc.API
	stats         *statsRegistry
	allocationOff bool

	stopReporter chan struct{} // closed by Close: ends reportSenders
	reporterDone chan struct{}

	mu         sync.Mutex
	closed     bool
	transports map[*Transport]struct{}
}

// tcpReadBuffer is how many packets ICE-TCP queues per connection; a video keyframe is a burst
// of tens of packets.
const tcpReadBuffer = 128

// NewEngine opens the sockets and prepares the publisher and subscriber configurations.
func NewEngine(cfg Config) (*Engine, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "sfu")
	if cfg.UDPAddr == "" {
		return nil, errors.New("sfu: Config.UDPAddr is empty: one UDP address is needed for all peers")
	}
	e := &Engine{log: log, transports: map[*Transport]struct{}{}, stats: newStatsRegistry(), publicIPs: cfg.PublicIPs, allocationOff: cfg.DisableAllocation}
	lf := pionLoggerFactory{log: log}

	udpAddr, err := net.ResolveUDPAddr("udp", cfg.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("sfu: UDP address %q: %w", cfg.UDPAddr, err)
	}
	if cfg.LoopbackOnly && (udpAddr.IP == nil || udpAddr.IP.IsUnspecified()) {
		udpAddr.IP = net.IPv4(127, 0, 0, 1)
	}
	if e.udpConns, err = listenUDP(udpAddr, cfg); err != nil {
		return nil, err
	}
	muxes := make([]ice.UDPMux, len(e.udpConns))
	if cfg.BatchWrites {
		e.udpBatch = &batchGroup{}
	}
	for i, c := range e.udpConns {
		var muxConn net.PacketConn = c
		if cfg.BatchWrites {
			b := newBatchConn(c)
			e.udpBatch.conns = append(e.udpBatch.conns, b)
			muxConn = b
		}
		muxes[i] = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: muxConn, Logger: lf.NewLogger("udpmux")})
	}
	if len(muxes) == 1 {
		e.udpMux = muxes[0]
	} else {
		e.udpMux = ice.NewMultiUDPMuxDefault(muxes...)
	}

	if cfg.TCPAddr != "" {
		tcpAddr, err := net.ResolveTCPAddr("tcp", cfg.TCPAddr)
		if err != nil {
			_ = e.Close()
			return nil, fmt.Errorf("sfu: TCP address %q: %w", cfg.TCPAddr, err)
		}
		if cfg.LoopbackOnly && (tcpAddr.IP == nil || tcpAddr.IP.IsUnspecified()) {
			tcpAddr.IP = net.IPv4(127, 0, 0, 1)
		}
		e.tcpListener, err = net.ListenTCP(family("tcp", tcpAddr.IP), tcpAddr)
		if err != nil {
			_ = e.Close()
			return nil, fmt.Errorf("sfu: listen on TCP %s: %w", tcpAddr, err)
		}
		e.tcpMux = ice.NewTCPMuxDefault(ice.TCPMuxParams{
			Listener:        e.tcpListener,
			Logger:          lf.NewLogger("tcpmux"),
			ReadBufferSize:  tcpReadBuffer,
			WriteBufferSize: 4 << 20, // pion's recommendation
		})
	}

	s, err := e.settingEngine(cfg, lf)
	if err != nil {
		_ = e.Close()
		return nil, err
	}
	if e.publisherAPI, err = newPublisherAPI(s, lf, log, e.stats); err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("sfu: %w", err)
	}
	if e.subscriberAPI, err = newSubscriberAPI(s); err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("sfu: %w", err)
	}
	e.stopReporter, e.reporterDone = make(chan struct{}), make(chan struct{})
	go e.reportSenders(e.stopReporter)
	return e, nil
}

// family keeps an IPv4 address (0.0.0.0 included) on IPv4: Go would otherwise open a
// dual-stack socket for 0.0.0.0, and pion would announce IPv6 candidates nobody asked for.
func family(network string, ip net.IP) string {
	if ip != nil && ip.To4() != nil {
		return network + "4"
	}
	return network
}

const (
	// iceKeepalive is how often the agent checks its selected pair and sends a STUN binding
	// request on it, media or not: the client's answer is what proves an idle path alive. One
	// request and one answer a second per connection (pion's default is every 2 s).
	iceKeepalive = time.Second
	// iceDisconnectedAfter of silence marks a connection disconnected. Media, RTCP or a
	// keepalive answer arrive well within it on a live path.
	iceDisconnectedAfter = 2 * time.Second
	// iceFailedAfter more of silence marks it failed, which ends the ICE session for good (only
	// an ICE restart brings it back). It stays long, as pion's default: a short blackout (a
	// tunnel, a 4G handover) must find the old path still there when it ends, since a client
	// that did not notice it will not restart ICE; by then the signalling socket's ping timeout
	// (15 s) has also given up and the client resumes with a restart.
	iceFailedAfter = 15 * time.Second
)

func (e *Engine) settingEngine(cfg Config, lf pionLoggerFactory) (webrtc.SettingEngine, error) {
	var s webrtc.SettingEngine
	s.LoggerFactory = lf
	s.SetICEUDPMux(e.udpMux)
	// Candidates only for the address families the sockets were opened for.
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	for _, c := range e.udpConns {
		if c.LocalAddr().(*net.UDPAddr).IP.To4() == nil {
			networks = append(networks, webrtc.NetworkTypeUDP6)
			break
		}
	}
	if e.tcpMux != nil {
		s.SetICETCPMux(e.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4)
		if ip := e.tcpListener.Addr().(*net.TCPAddr).IP; ip.To4() == nil {
			networks = append(networks, webrtc.NetworkTypeTCP6)
		}
	}
	s.SetNetworkTypes(networks)
	// The SFU only listens: it never dials clients over TCP, never resolves or announces mDNS
	// names (that would talk to the LAN), and has no STUN server.
	s.DisableActiveTCP(true)
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// Chromium hides its host addresses behind mDNS names, so its candidates reach us as
	// peer-reflexive; pion would wait a second before nominating them.
	s.SetPrflxAcceptanceMinWait(0)
	// A dead path is noticed within disconnectedAfter plus one keepalive (3 s), not pion's 5 to
	// 7 s, so that the quality shown to others and the logs say so while the member is still
	// expected back; see iceKeepalive for the cost.
	s.SetICETimeouts(iceDisconnectedAfter, iceFailedAfter, iceKeepalive)
	// AES-GCM costs a fraction of AES-CM with HMAC per packet; offer it first.
	s.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	s.SetIncludeLoopbackCandidate(cfg.Loopback || cfg.LoopbackOnly)
	if cfg.LoopbackOnly {
		s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	if len(cfg.PublicIPs) > 0 {
		for _, ip := range cfg.PublicIPs {
			if net.ParseIP(ip) == nil {
				return s, fmt.Errorf("sfu: public IP %q is not an IP address", ip)
			}
		}
		err := s.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		})
		if err != nil {
			return s, fmt.Errorf("sfu: announce public IPs %v: %w", cfg.PublicIPs, err)
		}
	}
	return s, nil
}

// UDPPort is the port of the shared UDP socket.
func (e *Engine) UDPPort() int { return e.udpConns[0].LocalAddr().(*net.UDPAddr).Port }

// TCPPort is the ICE-TCP port, 0 when ICE over TCP is disabled.
func (e *Engine) TCPPort() int {
	if e.tcpListener == nil {
		return 0
	}
	return e.tcpListener.Addr().(*net.TCPAddr).Port
}

// Close closes every transport, then the sockets.
func (e *Engine) Close() error {
	e.mu.Lock()
	alreadyClosed := e.closed
	e.closed = true
	open := make([]*Transport, 0, len(e.transports))
	for t := range e.transports {
		open = append(open, t)
	}
	e.mu.Unlock()
	if e.stopReporter != nil && !alreadyClosed {
		close(e.stopReporter)
		<-e.reporterDone
	}

	var errs []error
	for _, t := range open {
		if err := t.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	// The muxes close the sockets they were given.
	if e.tcpMux != nil {
		if err := e.tcpMux.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sfu: close ICE-TCP mux: %w", err))
		}
	} else if e.tcpListener != nil {
		_ = e.tcpListener.Close()
	}
	if e.udpMux != nil {
		if err := e.udpMux.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sfu: close UDP mux: %w", err))
		}
	} else {
		for _, c := range e.udpConns {
			_ = c.Close()
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) register(t *Transport) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("sfu: engine is closed")
	}
	e.transports[t] = struct{}{}
	return nil
}

func (e *Engine) forget(t *Transport) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.transports, t)
}
