package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/ingeco/hemicycle/sfu"
)

// startTURN starts the embedded relay when the configuration enables it (nil otherwise). Its
// credentials are signed with a secret derived from the first API key's secret, the key that
// also signs the server's own tokens.
func startTURN(cfg Config, media *sfu.Engine, log *slog.Logger) (*sfu.TURNServer, error) {
	t := cfg.TURN
	if !t.Enabled {
		return nil, nil
	}
	bind := cfg.turnBind()
	_, apiSecret := firstKey(cfg.Keys)
	sc := sfu.TURNConfig{
		Secret:        sfu.TURNSecret(apiSecret),
		Host:          cfg.turnHost(),
		UDPAddr:       net.JoinHostPort(bind, strconv.Itoa(t.Port)),
		TCPAddr:       net.JoinHostPort(bind, strconv.Itoa(t.Port)),
		RelayIP:       cfg.turnRelayIP(),
		RelayBind:     bind,
		RelayPortMin:  uint16(t.RelayPortMin),
		RelayPortMax:  uint16(t.RelayPortMax),
		CredentialTTL: t.CredentialTTL,
		Logger:        log.With("part", "turn"),
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("turn: certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
		}
		sc.Certificate = &cert
		sc.TLSAddr = net.JoinHostPort(bind, strconv.Itoa(t.TLSPort))
	} else if !cfg.dev {
		log.Warn("TURN over TLS is off (no turn.cert_file): members behind firewalls that pass only HTTPS cannot join")
	}
	relay, err := sfu.NewTURNServer(sc, media)
	if err != nil {
		return nil, fmt.Errorf("start TURN: %w", err)
	}
	return relay, nil
}
