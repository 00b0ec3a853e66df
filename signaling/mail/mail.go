// Package mail sends the server's messages (a sitting's invitations) through the town's SMTP
// relay: a text part and attachments, composed as MIME with the standard library and handed
// over with emersion/go-smtp's client (STARTTLS when the relay offers it, PLAIN when a user is
// configured).
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Relay is the SMTP server that takes the messages for delivery.
type Relay struct {
	// Addr is host:port (587 for submission with STARTTLS, 25 for a relay on the local network).
	Addr string `yaml:"addr"`
	// From is the sender's address, e.g. "Mairie de Test <greffe@mairie-test.fr>".
	From string `yaml:"from"`
	// Username and Password authenticate with PLAIN, only over TLS (or on loopback).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS is "starttls" (the default: required before anything is sent), "tls" (implicit TLS,
	// port 465) or "none" (a relay on the local network that offers no TLS).
	TLS string `yaml:"tls"`
	// TLSConfig, when set, replaces the system roots (a relay with a private CA; tests).
	TLSConfig *tls.Config `yaml:"-"`
}

// Check says what is wrong with the relay's settings.
func (r Relay) Check() error {
	if _, _, err := net.SplitHostPort(r.Addr); err != nil {
		return fmt.Errorf("smtp.addr %q: want host:port: %w", r.Addr, err)
	}
	if _, err := parseAddress(r.From); err != nil {
		return fmt.Errorf("smtp.from %q: %w", r.From, err)
	}
	switch r.TLS {
	case "", "starttls", "tls", "none":
	default:
		return fmt.Errorf("smtp.tls %q: use starttls, tls or none", r.TLS)
	}
	if r.Username != "" && r.TLS == "none" {
		return errors.New("smtp: a password is never sent without TLS (set smtp.tls to starttls)")
	}
	return nil
}

// Attachment is a file sent with a message.
type Attachment struct {
	Name        string
	ContentType string // e.g. "text/calendar; method=REQUEST"
	Data        []byte
}

// Message is one e-mail to one recipient.
type Message struct {
	To          string
	Subject     string
	Text        string // plain text, UTF-8
	Attachments []Attachment
}

// Send hands m to the relay; ctx bounds the whole exchange.
func (r Relay) Send(ctx context.Context, m Message) error {
	data, err := r.Compose(m, time.Now())
	if err != nil {
		return err
	}
	from, _ := parseAddress(r.From)
	to, err := parseAddress(m.To)
	if err != nil {
		return fmt.Errorf("recipient %q: %w", m.To, err)
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", r.Addr)
	if err != nil {
		return fmt.Errorf("smtp relay %s: %w", r.Addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	c, err := r.client(conn)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("smtp relay %s: %w", r.Addr, err)
	}
	defer c.Close()
	if err := r.exchange(c, from, to, data); err != nil {
		return fmt.Errorf("smtp relay %s, message to %s: %w", r.Addr, to, err)
	}
	return nil
}

// client opens the SMTP session on conn with the configured TLS.
func (r Relay) client(conn net.Conn) (*smtp.Client, error) {
	cfg := r.TLSConfig
	if cfg == nil {
		host, _, _ := net.SplitHostPort(r.Addr)
		cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	switch r.TLS {
	case "none":
		return smtp.NewClient(conn), nil
	case "tls":
		return smtp.NewClient(tls.Client(conn, cfg)), nil
	}
	c, err := smtp.NewClientStartTLS(conn, cfg)
	if err != nil {
		return nil, fmt.Errorf("starttls: %w", err)
	}
	return c, nil
}

func (r Relay) exchange(c *smtp.Client, from, to string, data []byte) error {
	if err := c.Hello(hostOf(from)); err != nil {
		return err
	}
	if r.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", r.Username, r.Password)); err != nil {
			return fmt.Errorf("authenticate as %s: %w", r.Username, err)
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// Compose writes m as a MIME message dated at: its text quoted-printable, each attachment in
// base64, the headers encoded for non-ASCII words.
func (r Relay) Compose(m Message, at time.Time) ([]byte, error) {
	from, err := netmail.ParseAddress(r.From)
	if err != nil {
		return nil, fmt.Errorf("smtp.from %q: %w", r.From, err)
	}
	to, err := netmail.ParseAddress(m.To)
	if err != nil {
		return nil, fmt.Errorf("recipient %q: %w", m.To, err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, errors.New("the subject spans lines")
	}
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from.String()) // encodes a name that is not ASCII
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", at.Format(time.RFC1123Z))
	header("Message-ID", "<"+rand.Text()+"@"+hostOf(from.Address)+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	b.WriteString("\r\n")

	part, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {"quoted-printable"},
	})
	if err != nil {
		return nil, err
	}
	qp := quotedprintable.NewWriter(part)
	if _, err := qp.Write([]byte(strings.ReplaceAll(m.Text, "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	for _, a := range m.Attachments {
		part, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {a.ContentType},
			"Content-Transfer-Encoding": {"base64"},
			"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": a.Name})},
		})
		if err != nil {
			return nil, err
		}
		if err := writeBase64Lines(part, a.Data); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
