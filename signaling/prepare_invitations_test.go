package signaling_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// mailed is a message the test relay received, read back as a mail client would.
type mailed struct {
	to, subject, text string
	calendar          *ics.Calendar
}

func readMail(t *testing.T, m signalingtest.Mail) mailed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("message to %v: %v", m.To, err)
	}
	var out mailed
	if out.subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatal(err)
	}
	to, err := msg.Header.AddressList("To")
	if err != nil || len(to) != 1 || len(m.To) != 1 || to[0].Address != m.To[0] {
		t.Fatalf("To %q (%v), envelope %v", msg.Header.Get("To"), err, m.To)
	}
	out.to = to[0].Address
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/mixed" {
		t.Fatalf("content type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	parts := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := parts.NextPart() // decodes quoted-printable itself
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		switch ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); ct {
		case "text/plain":
			out.text = string(body)
		case "text/calendar":
			if part.FileName() != "seance.ics" || part.Header.Get("Content-Transfer-Encoding") != "base64" {
				t.Errorf("calendar part %v", part.Header)
			}
			data, err := io.ReadAll(base64Lines(body))
			if err != nil {
				t.Fatal(err)
			}
			if out.calendar, err = ics.ParseCalendar(bytes.NewReader(data)); err != nil {
				t.Fatalf("ICS: %v\n%s", err, data)
			}
		default:
			t.Errorf("unexpected part %s", ct)
		}
	}
	return out
}

func TestInvitationsMailedOpenedUsedAndRevoked(t *testing.T) {
	relay := signalingtest.StartSMTP(t)
	var clk clock
	clk.set(-24 * time.Hour) // the day before
	ts, _ := startCouncilServer(t, signalingtest.NoMedia, clk.option(), invitations(relay))
	clerk := ts.BodyToken(t, "test", "greffe", auth.RoleClerk)
	createBody(t, ts, "test", clerk, 1200)
	start := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	sendOK(t, ts, "POST", "/api/bodies/test/sittings/s1", clerk, map[string]any{
		"title": "Séance ordinaire", "start": start, "end": start.Add(2 * time.Hour), "place": "Salle du conseil",
		"room": "salle-s1", "chair": 1, "agenda": twoItems, "convocation": "La séance est publique.",
	})

	// Sending invites the five members; the two whose e-mail the body keeps are mailed.
	sent := sendOK(t, ts, "POST", "/api/bodies/test/sittings/s1/convocation", clerk, nil)
	var received []float64
	for _, e := range sent["invitations"].([]any) {
		if e := e.(map[string]any); e["received"] == true {
			received = append(received, e["seat"].(float64))
		}
	}
	if !slices.Equal(received, []float64{2, 3}) {
		t.Fatalf("mailed seats %v, want 2 and 3: %v", received, sent)
	}
	got := relay.Received()
	if len(got) != 2 {
		t.Fatalf("the relay received %d messages", len(got))
	}
	slices.SortFunc(got, func(a, b signalingtest.Mail) int { return strings.Compare(a.To[0], b.To[0]) })
	bruno := readMail(t, got[0])
	if bruno.to != "bruno@example.org" || got[0].From != "greffe@mairie-test.example" ||
		!strings.HasPrefix(bruno.subject, "Convocation : Conseil municipal de Test, séance du ") {
		t.Errorf("message: to %s from %s, subject %q", bruno.to, got[0].From, bruno.subject)
	}
	for _, want := range []string{"Madame, Monsieur Bruno Adjoint", "Ordre du jour :", "1. Budget primitif 2027 (rapporteur : Bruno Adjoint)",
		"2. Tarifs de la cantine (rapporteur : Chloé Conseil)", "La séance est publique.", "https://visio.mairie-test.example/?invitation="} {
		if !strings.Contains(bruno.text, want) {
			t.Errorf("the message's text lacks %q:\n%s", want, bruno.text)
		}
	}
	_, link, _ := strings.Cut(bruno.text, "https://visio.mairie-test.example/?invitation=")
	code, _, _ := strings.Cut(link, "\n")
	code = strings.TrimSpace(code)
	events := bruno.calendar.Events()
	if len(events) != 1 {
		t.Fatalf("ICS events: %d", len(events))
	}
	ev := events[0]
	evStart, err := ev.GetStartAt()
	evEnd, err2 := ev.GetEndAt()
	if err != nil || err2 != nil || !evStart.Equal(start) || !evEnd.Equal(start.Add(2*time.Hour)) ||
		ev.GetProperty(ics.ComponentPropertyUrl).Value != "https://visio.mairie-test.example/?invitation="+code ||
		!strings.Contains(ev.GetProperty(ics.ComponentPropertySummary).Value, "Séance ordinaire") {
		t.Errorf("ICS event: %v %v (%v %v) %s", evStart, evEnd, err, err2, bruno.calendar.Serialize())
	}

	listing := func() map[string]any {
		return sendOK(t, ts, "GET", "/api/bodies/test/sittings/s1/invitations", clerk, nil)
	}
	entry := func(l map[string]any, seat int) map[string]any {
		for _, e := range l["invitations"].([]any) {
			if e := e.(map[string]any); e["seat"] == float64(seat) {
				return e
			}
		}
		t.Fatalf("no invitation for seat %d", seat)
		return nil
	}
	if l := entry(listing(), 2); l["link"] != "https://visio.mairie-test.example/?invitation="+code || l["opened"] != false {
		t.Fatalf("the clerk's listing for seat 2: %v (mailed code %q)", l, code)
	}

	// Following the link the day before shows the sitting, and is recorded as opened; the
	// token is not given yet.
	status, shown := send(t, ts, "GET", "/api/invitations/"+code, "", "", nil)
	if status != 200 || shown["seat"] != 2.0 || shown["name"] != "Bruno Adjoint" || itemIDs(shown["agenda"].([]any)) != "1,2" {
		t.Fatalf("invitation shown: %d %v", status, shown)
	}
	status, early := send(t, ts, "POST", "/api/invitations/"+code+"/join", "", "", nil)
	if status != 403 || !strings.HasPrefix(fmt.Sprint(early["error"]), "Ce lien vous donnera accès à la séance à partir du ") {
		t.Errorf("joining the day before: %d %v", status, early)
	}

	// Ten minutes before the sitting the link gives the member's token for its room.
	clk.set(0)
	joined := sendOK(t, ts, "POST", "/api/invitations/"+code+"/join", "", nil)
	tok, _ := joined["token"].(string)
	claims, err := auth.NewVerifier(signalingtest.TestKeys.KeySet()).VerifyForRoom(tok, "salle-s1")
	if err != nil || claims.Role() != auth.RoleMember || claims.Council.Seat != 2 || claims.Council.Body != "test" ||
		claims.Name != "Bruno Adjoint" || claims.ExpiresAt.Time.Before(start.Add(2*time.Hour-time.Minute)) || claims.ExpiresAt.Time.After(start.Add(2*time.Hour+time.Minute)) {
		t.Fatalf("join token: %v %+v", err, claims)
	}
	sendOK(t, ts, "POST", "/api/rooms/salle-s1/session", ts.Token(t, "salle-s1", "greffe", auth.RoleClerk, 0), map[string]any{"prepared": "test/s1"})
	if status, out := send(t, ts, "GET", "/api/rooms/salle-s1/state", tok, "", nil); status != 200 {
		t.Errorf("the member's token on the room's state: %d %v", status, out)
	}
	l := listing()
	if e := entry(l, 2); e["received"] != true || e["opened"] != true || e["used"] != true {
		t.Errorf("seat 2 in the listing: %v", e)
	}
	if c := l["counts"].(map[string]any); c["invited"] != 5.0 || c["received"] != 2.0 || c["opened"] != 1.0 || c["used"] != 1.0 {
		t.Errorf("counts: %v", c)
	}

	// The QR code for printing is the link.
	link3 := entry(l, 3)["link"].(string)
	status, raw := ts.Call(t, "GET", "/api/bodies/test/sittings/s1/invitations/3/qr", clerk, nil)
	if status != 200 {
		t.Fatalf("QR: %d %s", status, raw)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil || decoded.GetText() != link3 {
		t.Errorf("QR code reads %q (%v), want %q", decoded, err, link3)
	}

	// A revoked link is refused with the reason, in French; a token already minted from it too.
	code3 := strings.TrimPrefix(link3, "https://visio.mairie-test.example/?invitation=")
	sendOK(t, ts, "POST", "/api/bodies/test/sittings/s1/invitations/3/revoke", clerk, map[string]any{"reason": "le lien a été transmis par erreur"})
	for _, call := range []struct{ method, path string }{{"GET", "/api/invitations/" + code3}, {"POST", "/api/invitations/" + code3 + "/join"}} {
		status, out := send(t, ts, call.method, call.path, "", "", nil)
		if msg := fmt.Sprint(out["error"]); status != 410 || !strings.HasPrefix(msg, "Cette invitation a été révoquée le ") ||
			!strings.HasSuffix(msg, "pour le motif suivant : le lien a été transmis par erreur") {
			t.Errorf("%s %s revoked: %d %v", call.method, call.path, status, out)
		}
	}
	if e := entry(listing(), 3); e["revoked"] != true || e["reason"] != "le lien a été transmis par erreur" || e["revokedBy"] != "greffe" {
		t.Errorf("seat 3 revoked in the listing: %v", e)
	}
	sendOK(t, ts, "POST", "/api/bodies/test/sittings/s1/invitations/2/revoke", clerk, map[string]any{"reason": "siège devenu vacant"})
	if status, out := send(t, ts, "GET", "/api/rooms/salle-s1/state", tok, "", nil); status != 401 || !strings.Contains(fmt.Sprint(out["error"]), "revoked") {
		t.Errorf("the token of a revoked invitation: %d %v", status, out)
	}

	if status, out := send(t, ts, "GET", "/api/invitations/inconnu", "", "", nil); status != 404 || !strings.HasPrefix(fmt.Sprint(out["error"]), "Ce lien d'invitation n'est pas reconnu") {
		t.Errorf("an unknown code: %d %v", status, out)
	}
	// A member who left the seat is refused too.
	code5 := strings.TrimPrefix(entry(listing(), 5)["link"].(string), "https://visio.mairie-test.example/?invitation=")
	sendOK(t, ts, "POST", "/api/bodies/test/roster/edits", clerk, map[string]any{"change": "resignation", "seat": 5})
	if status, out := send(t, ts, "POST", "/api/invitations/"+code5+"/join", "", "", nil); status != 410 ||
		fmt.Sprint(out["error"]) != "Le siège 5 n'est plus occupé par Emma Vote : cette invitation n'est plus valable." {
		t.Errorf("the link of a member who resigned: %d %v", status, out)
	}
	// After the sitting's end, the links of the others no longer admit anyone.
	code4 := strings.TrimPrefix(entry(listing(), 4)["link"].(string), "https://visio.mairie-test.example/?invitation=")
	clk.set(3 * time.Hour)
	if status, out := send(t, ts, "POST", "/api/invitations/"+code4+"/join", "", "", nil); status != 410 || !strings.Contains(fmt.Sprint(out["error"]), "est terminée") {
		t.Errorf("after the end: %d %v", status, out)
	}
}

// base64Lines decodes a base64 body written in lines.
func base64Lines(b []byte) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, bytes.NewReader(bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), nil)))
}
