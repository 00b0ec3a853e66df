package mail_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/ingeco/hemicycle/sfu/sfutest"
	"github.com/ingeco/hemicycle/signaling/mail"
)

// relay is an SMTP server on loopback that offers STARTTLS (when tls is set) and PLAIN for one
// user, and records each message with whether it came over TLS and authenticated.
type relay struct {
	mu       sync.Mutex
	messages []received
}

type received struct {
	data          []byte
	overTLS, auth bool
}

type session struct {
	r    *relay
	conn *smtp.Conn
	auth bool
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "greffe" || pass != "le bon mot de passe" {
			return errors.New("bad credentials")
		}
		s.auth = true
		return nil
	}), nil
}
func (s *session) Mail(string, *smtp.MailOptions) error { return nil }
func (s *session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, overTLS := s.conn.TLSConnectionState()
	s.r.mu.Lock()
	s.r.messages = append(s.r.messages, received{data: data, overTLS: overTLS, auth: s.auth})
	s.r.mu.Unlock()
	return nil
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func startRelay(t *testing.T, cfg *tls.Config) (*relay, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{r: r, conn: c}, nil }))
	srv.Domain, srv.TLSConfig = "relay.test", cfg
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	done := make(chan struct{})
	go func() { _ = srv.Serve(l); close(done) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return r, l.Addr().String()
}

var message = mail.Message{To: "Chloé Conseil <chloe@example.org>", Subject: "Convocation : séance du 10 décembre", Text: "Ordre du jour :\n1. Budget\n"}

// TestSendOverSTARTTLSWithPassword is the default setting: the message and the password go
// only after STARTTLS, to a relay whose certificate is checked.
func TestSendOverSTARTTLSWithPassword(t *testing.T) {
	cert, pool := sfutest.LoopbackCertificate(t)
	r, addr := startRelay(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	relayCfg := mail.Relay{Addr: addr, From: "Mairie <greffe@mairie-test.example>", Username: "greffe", Password: "le bon mot de passe",
		TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}
	if err := relayCfg.Check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := relayCfg.Send(ctx, message); err != nil {
		t.Fatalf("send: %v", err)
	}
	r.mu.Lock()
	got := r.messages
	r.mu.Unlock()
	if len(got) != 1 || !got[0].overTLS || !got[0].auth || !strings.Contains(string(got[0].data), "Subject: =?utf-8?q?Convocation_:_s=C3=A9ance_du_10_d=C3=A9cembre?=") {
		t.Fatalf("received %+v", got)
	}

	// A wrong password is refused by the relay, and said so.
	relayCfg.Password = "un autre"
	if err := relayCfg.Send(ctx, message); err == nil || !strings.Contains(err.Error(), "authenticate as greffe") {
		t.Errorf("wrong password: %v", err)
	}
	// A certificate nobody vouches for is refused before anything is sent.
	relayCfg.Password, relayCfg.TLSConfig = "le bon mot de passe", &tls.Config{ServerName: "127.0.0.1"}
	if err := relayCfg.Send(ctx, message); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.messages) != 1 {
		t.Errorf("%d messages delivered, want only the first", len(r.messages))
	}
}

// TestSTARTTLSRequired: a relay that offers no TLS gets nothing unless tls is none.
func TestSTARTTLSRequired(t *testing.T) {
	r, addr := startRelay(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	relayCfg := mail.Relay{Addr: addr, From: "greffe@mairie-test.example"}
	if err := relayCfg.Send(ctx, message); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("sent without TLS: %v", err)
	}
	relayCfg.TLS = "none"
	if err := relayCfg.Send(ctx, message); err != nil {
		t.Errorf("tls none: %v", err)
	}
	if relayCfg.Username = "greffe"; relayCfg.Check() == nil {
		t.Error("a password without TLS passes the check")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.messages) != 1 || r.messages[0].overTLS {
		t.Errorf("received %+v", r.messages)
	}
}
