package signalingtest

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ingeco/hemicycle/signaling/mail"
)

// SMTPRelay is an SMTP server on loopback that keeps what it receives, for the tests of what
// the server e-mails; Relay is how the server is configured to send to it.
type SMTPRelay struct {
	Relay mail.Relay

	mu       sync.Mutex
	received []Mail
}

// Mail is one message the relay took.
type Mail struct {
	From string
	To   []string
	Data []byte
}

// StartSMTP starts a relay (emersion/go-smtp's server, without TLS), stopped when the test ends.
func StartSMTP(t testing.TB) *SMTPRelay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtp relay: %v", err)
	}
	r := &SMTPRelay{Relay: mail.Relay{Addr: l.Addr().String(), From: "Mairie de Test <greffe@mairie-test.example>", TLS: "none"}}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{relay: r}, nil }))
	srv.Domain = "relay.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 8 << 20
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("smtp relay: %v", err)
		}
	})
	return r
}

// Received returns the messages taken so far.
func (r *SMTPRelay) Received() []Mail {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Mail(nil), r.received...)
}

type smtpSession struct {
	relay *SMTPRelay
	msg   Mail
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error { s.msg.From = from; return nil }
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.To = append(s.msg.To, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.Data = data
	s.relay.mu.Lock()
	s.relay.received = append(s.relay.received, s.msg)
	s.relay.mu.Unlock()
	s.msg = Mail{}
	return nil
}
func (s *smtpSession) Reset()        { s.msg = Mail{} }
func (s *smtpSession) Logout() error { return nil }
