package signaling

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/httpapi"
	"github.com/ingeco/hemicycle/signaling/mail"
)

// An invitation lets one member into one sitting. Its link carries a code derived from the
// server's secret and a nonce kept in the invitation (so that the clerk can print it again as
// a QR code); the store keeps only the code's hash, which finds the invitation. The code
// admits its holder from InvitationConfig.Early before the start to the sitting's end, unless
// the clerk revoked it.

type invitation struct {
	Body    string `json:"body"`
	Sitting string `json:"sitting"`
	Seat    int    `json:"seat"`
	Name    string `json:"name"`
	Nonce   string `json:"nonce,omitempty"` // never answered (entry clears it)
	// Email is where it was sent (kept with the invitation until the sitting ends).
	Email     string    `json:"email,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// SentAt: the relay took the message; SendError: why it did not.
	SentAt    time.Time `json:"sentAt,omitzero"`
	SendError string    `json:"sendError,omitempty"`
	OpenedAt  time.Time `json:"openedAt,omitzero"`
	UsedAt    time.Time `json:"usedAt,omitzero"`
	// TokenID is the jti of the last join token minted from it, revoked with it.
	TokenID   string    `json:"tokenId,omitempty"`
	TokenEnd  time.Time `json:"tokenEnd,omitzero"`
	RevokedAt time.Time `json:"revokedAt,omitzero"`
	RevokedBy string    `json:"revokedBy,omitempty"`
	Reason    string    `json:"reason,omitempty"`
}

func invitationID(body, sitting string, seat int) string {
	return fmt.Sprintf("%s/%s/%d", body, sitting, seat)
}

// code is the secret of the invitation's link.
func (p *preparation) code(inv invitation) string {
	m := hmac.New(sha256.New, []byte(p.inv.Secret))
	fmt.Fprintf(m, "hemicycle-invitation\x00%s\x00%s", invitationID(inv.Body, inv.Sitting, inv.Seat), inv.Nonce)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(m.Sum(nil)[:20]))
}

func codeID(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// link is the address a member follows: the web client, which reads the code.
func (p *preparation) link(inv invitation) string {
	return strings.TrimSuffix(p.inv.PublicURL, "/") + "/?invitation=" + url.QueryEscape(p.code(inv))
}

// invitationEntry is an invitation as the clerk's listing shows it.
type invitationEntry struct {
	invitation
	Link     string `json:"link"`
	Received bool   `json:"received"`
	Opened   bool   `json:"opened"`
	Used     bool   `json:"used"`
	Revoked  bool   `json:"revoked"`
}

func (p *preparation) entry(inv invitation) invitationEntry {
	link := p.link(inv)
	inv.Nonce = ""
	e := invitationEntry{invitation: inv, Link: link, Received: !inv.SentAt.IsZero(), Opened: !inv.OpenedAt.IsZero(),
		Used: !inv.UsedAt.IsZero(), Revoked: !inv.RevokedAt.IsZero()}
	return e
}

// sendConvocation records the convocation as sent now, issues each member in office an
// invitation, and e-mails it to those whose address the body keeps. A late convocation is
// still sent (the clerk decides), with the warning in the answer and in the journal.
func (p *preparation) sendConvocation(w http.ResponseWriter, r *http.Request) {
	bodyID, id := r.PathValue("body"), r.PathValue("sitting")
	ctx := r.Context()
	b, _, err := p.body(ctx, bodyID)
	if err != nil {
		fail(w, err)
		return
	}
	s, version, err := p.sitting(ctx, bodyID, id)
	if err != nil {
		fail(w, err)
		return
	}
	if s.Convocation.sent() {
		httpapi.WriteError(w, 409, fmt.Sprintf("the convocation was already sent, on %s", s.Convocation.SentAt.Format(time.RFC3339)))
		return
	}
	if p.inv.Secret == "" || p.inv.PublicURL == "" {
		httpapi.WriteError(w, 503, "invitations are not configured on this server (invitations.public_url and a key)")
		return
	}
	old := s
	s.Convocation.SentAt, s.Convocation.SentBy = p.now(), preparerOf(r).Identity
	view := p.view(r, b, s)
	what := map[string]any{"sitting": id, "check": view.Check, "warning": view.Warning}
	if err := p.commit(ctx, r, bodyID, kindSitting, sittingID(bodyID, id), version, old, s, "convocation.sent", what); err != nil {
		fail(w, err)
		return
	}
	contacts, err := p.contacts(ctx, bodyID)
	if err != nil {
		fail(w, err)
		return
	}
	var out []invitationEntry
	for _, seat := range b.Roster.Seats {
		if !seat.InOffice() {
			continue
		}
		inv := invitation{Body: bodyID, Sitting: id, Seat: seat.Number, Name: seat.Name, Nonce: rand.Text(),
			Email: contacts[seat.Number].Email, CreatedAt: p.now()}
		if err := p.issue(ctx, inv); err != nil {
			fail(w, err)
			return
		}
		if inv.Email != "" && p.inv.Mail != nil {
			if err := p.inv.Mail.Send(ctx, p.invitationMail(b, s, inv)); err != nil {
				inv.SendError = err.Error()
				p.log.Warn("invitation not sent", "body", bodyID, "sitting", id, "seat", seat.Number, "err", err)
			} else {
				inv.SentAt = p.now()
			}
			if err := p.update(ctx, inv, func(stored *invitation) error {
				stored.SentAt, stored.SendError = inv.SentAt, inv.SendError
				return nil
			}); err != nil {
				fail(w, err)
				return
			}
		}
		out = append(out, p.entry(inv))
	}
	httpapi.WriteJSON(w, 200, map[string]any{"sitting": view, "invitations": out})
}

// issue stores a new invitation and the index of its code.
func (p *preparation) issue(ctx context.Context, inv invitation) error {
	id := invitationID(inv.Body, inv.Sitting, inv.Seat)
	if err := p.put(ctx, kindInvitationCode, codeID(p.code(inv)), 0, map[string]string{"invitation": id}); err != nil {
		return err
	}
	var old invitation
	version, err := p.record(ctx, kindInvitation, id, &old, true)
	if err != nil {
		return err
	}
	if version > 0 { // a new invitation replaces the old one, whose code no longer leads here
		if err := p.records.Delete(ctx, kindInvitationCode, codeID(p.code(old))); err != nil {
			return fmt.Errorf("forget the previous invitation's code: %w", err)
		}
	}
	return p.put(ctx, kindInvitation, id, version, inv)
}

// update changes a stored invitation under its version.
func (p *preparation) update(ctx context.Context, inv invitation, change func(*invitation) error) error {
	id := invitationID(inv.Body, inv.Sitting, inv.Seat)
	var stored invitation
	version, err := p.record(ctx, kindInvitation, id, &stored, false)
	if err != nil {
		return err
	}
	if err := change(&stored); err != nil {
		return err
	}
	return p.put(ctx, kindInvitation, id, version, stored)
}

func (p *preparation) invitations(ctx context.Context, body, sitting string) ([]invitation, error) {
	recs, err := p.records.List(ctx, kindInvitation)
	if err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	var out []invitation
	for _, rec := range recs {
		var inv invitation
		if strings.HasPrefix(rec.ID, body+"/"+sitting+"/") && decodeRecord(rec, &inv) == nil && inv.Body == body && inv.Sitting == sitting {
			out = append(out, inv)
		}
	}
	sortBySeat(out, func(i invitation) int { return i.Seat })
	return out, nil
}

// listInvitations is the clerk's page: who received, opened and used their link.
func (p *preparation) listInvitations(w http.ResponseWriter, r *http.Request) {
	invs, err := p.invitations(r.Context(), r.PathValue("body"), r.PathValue("sitting"))
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]invitationEntry, 0, len(invs))
	counts := map[string]int{}
	for _, inv := range invs {
		e := p.entry(inv)
		for what, yes := range map[string]bool{"received": e.Received, "opened": e.Opened, "used": e.Used, "revoked": e.Revoked} {
			if yes {
				counts[what]++
			}
		}
		out = append(out, e)
	}
	counts["invited"] = len(out)
	httpapi.WriteJSON(w, 200, map[string]any{"invitations": out, "counts": counts})
}

func (p *preparation) seatInvitation(r *http.Request) (invitation, error) {
	seat, err := strconv.Atoi(r.PathValue("seat"))
	if err != nil {
		return invitation{}, &httpapi.Error{Status: 400, Msg: fmt.Sprintf("seat %q is not a number", r.PathValue("seat"))}
	}
	var inv invitation
	_, err = p.record(r.Context(), kindInvitation, invitationID(r.PathValue("body"), r.PathValue("sitting"), seat), &inv, false)
	return inv, err
}

// revokeInvitation refuses the link from now on, and any join token minted from it.
func (p *preparation) revokeInvitation(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(r, &req, "{reason}"); err != nil || strings.TrimSpace(req.Reason) == "" {
		httpapi.WriteError(w, 400, "body must be JSON {reason}: the reason is shown to whoever follows the link")
		return
	}
	inv, err := p.seatInvitation(r)
	if err != nil {
		fail(w, err)
		return
	}
	by := preparerOf(r).Identity
	err = p.update(r.Context(), inv, func(s *invitation) error {
		if !s.RevokedAt.IsZero() {
			return &httpapi.Error{Status: 409, Msg: "this invitation was already revoked"}
		}
		s.RevokedAt, s.RevokedBy, s.Reason = p.now(), by, req.Reason
		inv = *s
		return nil
	})
	if err == nil {
		err = p.note(r.Context(), r, inv.Body, "invitation.revoked", map[string]any{"sitting": inv.Sitting, "seat": inv.Seat, "reason": req.Reason})
	}
	if err != nil {
		fail(w, err)
		return
	}
	if inv.TokenID != "" {
		p.srv.cfg.Verifier.Revoke(inv.TokenID, inv.TokenEnd)
	}
	httpapi.WriteJSON(w, 200, p.entry(inv))
}

// invitationQR is the link as a QR code (PNG), for a letter or a printed convocation.
func (p *preparation) invitationQR(w http.ResponseWriter, r *http.Request) {
	inv, err := p.seatInvitation(r)
	if err != nil {
		fail(w, err)
		return
	}
	code, err := qr.Encode(p.link(inv), qr.M, qr.Auto)
	if err == nil {
		code, err = barcode.Scale(code, 384, 384)
	}
	var buf bytes.Buffer
	if err == nil {
		err = png.Encode(&buf, code)
	}
	if err != nil {
		fail(w, fmt.Errorf("draw the QR code: %w", err))
		return
	}
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(buf.Bytes())
}

// byCode finds the invitation of the code in the path, or says why the link is refused, in
// French: it is the member, not the clerk, who reads it.
func (p *preparation) byCode(ctx context.Context, code string, join bool) (invitation, bodyRecord, preparedSitting, error) {
	var index struct {
		Invitation string `json:"invitation"`
	}
	var inv invitation
	if _, err := p.record(ctx, kindInvitationCode, codeID(code), &index, false); err != nil {
		return inv, bodyRecord{}, preparedSitting{}, frenchRefusal(err, http.StatusNotFound, "Ce lien d'invitation n'est pas reconnu : vérifiez qu'il est complet, ou demandez-en un nouveau au secrétariat.")
	}
	if _, err := p.record(ctx, kindInvitation, index.Invitation, &inv, false); err != nil || !hmac.Equal([]byte(p.code(inv)), []byte(code)) {
		return inv, bodyRecord{}, preparedSitting{}, frenchRefusal(err, http.StatusNotFound, "Ce lien d'invitation a été remplacé : utilisez le plus récent que vous avez reçu.")
	}
	b, _, err := p.body(ctx, inv.Body)
	if err != nil {
		return inv, b, preparedSitting{}, frenchRefusal(err, http.StatusNotFound, "L'assemblée de cette invitation n'existe plus.")
	}
	s, _, err := p.sitting(ctx, inv.Body, inv.Sitting)
	if err != nil {
		return inv, b, s, frenchRefusal(err, http.StatusNotFound, "La séance de cette invitation n'existe plus.")
	}
	l := council.FrenchLabels()
	now := p.now()
	seat, _ := b.Roster.Seat(inv.Seat)
	switch {
	case !inv.RevokedAt.IsZero():
		return inv, b, s, &httpapi.Error{Status: http.StatusGone, Msg: fmt.Sprintf("Cette invitation a été révoquée le %s par le secrétariat, pour le motif suivant : %s",
			frenchMoment(l, inv.RevokedAt.In(s.Start.Location())), inv.Reason)}
	case seat.Name != inv.Name:
		return inv, b, s, &httpapi.Error{Status: http.StatusGone, Msg: fmt.Sprintf("Le siège %d n'est plus occupé par %s : cette invitation n'est plus valable.", inv.Seat, inv.Name)}
	case !now.Before(s.End):
		return inv, b, s, &httpapi.Error{Status: http.StatusGone, Msg: fmt.Sprintf("La séance du %s est terminée : ce lien n'est plus valable.", frenchMoment(l, s.Start))}
	case join && now.Before(s.Start.Add(-p.inv.Early)):
		return inv, b, s, &httpapi.Error{Status: http.StatusForbidden, Msg: fmt.Sprintf("Ce lien vous donnera accès à la séance à partir du %s, %d minutes avant son ouverture.",
			frenchMoment(l, s.Start.Add(-p.inv.Early)), int(p.inv.Early/time.Minute))}
	}
	return inv, b, s, nil
}

// frenchRefusal is msg when err says the record is missing, err itself otherwise (the store).
func frenchRefusal(err error, status int, msg string) error {
	var ae *httpapi.Error
	if err == nil || errors.As(err, &ae) && ae.Status == 404 {
		return &httpapi.Error{Status: status, Msg: msg}
	}
	return err
}

// frenchMoment writes "jeudi 10 décembre 2026 à 18 h 30".
func frenchMoment(l council.Labels, t time.Time) string {
	return fmt.Sprintf("%s à %d h %02d", longDate(l, t), t.Hour(), t.Minute())
}

// publicSitting is what the holder of an invitation sees of the sitting.
type publicSitting struct {
	Body    string       `json:"body"`
	Title   string       `json:"title"`
	Start   time.Time    `json:"start"`
	End     time.Time    `json:"end"`
	Place   string       `json:"place,omitempty"`
	Agenda  []agendaItem `json:"agenda"`
	Seat    int          `json:"seat"`
	Name    string       `json:"name"`
	OpensAt time.Time    `json:"opensAt"`
}

// openInvitation shows the invitation's sitting to whoever follows the link (any time before
// the sitting ends), and records that it was opened.
func (p *preparation) openInvitation(w http.ResponseWriter, r *http.Request) {
	inv, b, s, err := p.byCode(r.Context(), r.PathValue("code"), false)
	if err != nil {
		fail(w, err)
		return
	}
	if inv.OpenedAt.IsZero() {
		if err := p.update(r.Context(), inv, func(st *invitation) error { st.OpenedAt = p.now(); return nil }); err != nil {
			fail(w, err)
			return
		}
	}
	httpapi.WriteJSON(w, 200, publicSitting{Body: b.Name, Title: s.Title, Start: s.Start, End: s.End, Place: s.Place,
		Agenda: s.Agenda, Seat: inv.Seat, Name: inv.Name, OpensAt: s.Start.Add(-p.inv.Early)})
}

// useInvitation mints the member's join token for the sitting's room, valid until its end,
// and records that the link was used.
func (p *preparation) useInvitation(w http.ResponseWriter, r *http.Request) {
	inv, _, s, err := p.byCode(r.Context(), r.PathValue("code"), true)
	if err != nil {
		fail(w, err)
		return
	}
	now := p.now()
	role := auth.RoleMember
	tok, err := auth.Issue(auth.TokenOptions{Key: p.inv.Key, Secret: p.inv.Secret, Now: now, TTL: s.End.Sub(now),
		Identity: fmt.Sprintf("%s-seat-%d", inv.Body, inv.Seat), Name: inv.Name, Room: s.Room,
		Video: auth.GrantsForRole(role, s.Room), Council: &auth.CouncilGrant{Role: role, Seat: inv.Seat, Body: inv.Body}})
	if err != nil {
		fail(w, fmt.Errorf("mint the join token: %w", err))
		return
	}
	claims, err := p.srv.cfg.Verifier.Verify(tok)
	if err != nil {
		fail(w, fmt.Errorf("verify the minted token: %w", err))
		return
	}
	if err := p.update(r.Context(), inv, func(st *invitation) error {
		if st.OpenedAt.IsZero() {
			st.OpenedAt = now
		}
		st.UsedAt, st.TokenID, st.TokenEnd = now, claims.ID, s.End
		return nil
	}); err != nil {
		fail(w, err)
		return
	}
	httpapi.WriteJSON(w, 200, map[string]any{"token": tok, "room": s.Room, "identity": claims.ParticipantIdentity(), "expires": s.End})
}

// invitationMail is the message that carries an invitation: in French, the agenda, the link,
// and the sitting as an ICS file for the member's calendar.
func (p *preparation) invitationMail(b bodyRecord, s preparedSitting, inv invitation) mail.Message {
	l := council.FrenchLabels()
	loc := b.location()
	start := s.Start.In(loc)
	link := p.link(inv)
	var t strings.Builder
	fmt.Fprintf(&t, "Madame, Monsieur %s,\n\n", inv.Name)
	fmt.Fprintf(&t, "Vous êtes convoqué(e) à la séance « %s » (%s), le %s", s.Title, b.Name, frenchMoment(l, start))
	if s.Place != "" {
		fmt.Fprintf(&t, ", %s", s.Place)
	}
	t.WriteString(".\n\nOrdre du jour :\n")
	agenda := agendaText(s.Agenda)
	t.WriteString(agenda)
	if s.Convocation.Text != "" {
		t.WriteString("\n" + strings.TrimSpace(s.Convocation.Text) + "\n")
	}
	fmt.Fprintf(&t, "\nPour siéger à distance, suivez votre lien personnel ; il vous donne accès à la séance à partir du %s et jusqu'à sa fin :\n%s\n",
		frenchMoment(l, start.Add(-p.inv.Early)), link)
	t.WriteString("\nCe lien vous est propre : ne le transmettez pas. La séance est jointe pour votre agenda (seance.ics).\n")

	cal := ics.NewCalendar()
	cal.SetMethod(ics.MethodPublish)
	cal.SetProductId("-//Hemicycle//Convocation//FR")
	ev := cal.AddEvent(invitationID(inv.Body, inv.Sitting, inv.Seat) + "@hemicycle")
	ev.SetDtStampTime(p.now())
	ev.SetStartAt(s.Start)
	ev.SetEndAt(s.End)
	ev.SetSummary(fmt.Sprintf("%s — %s", b.Name, s.Title))
	if s.Place != "" {
		ev.SetLocation(s.Place)
	}
	ev.SetDescription("Ordre du jour :\n" + agenda + "\nLien personnel : " + link)
	ev.SetURL(link)
	return mail.Message{
		To:      fmt.Sprintf("%s <%s>", inv.Name, inv.Email),
		Subject: fmt.Sprintf("Convocation : %s, séance du %s", b.Name, longDate(l, start)),
		Text:    t.String(),
		Attachments: []mail.Attachment{{Name: "seance.ics", ContentType: "text/calendar; charset=utf-8; method=PUBLISH",
			Data: []byte(cal.Serialize())}},
	}
}

func agendaText(items []agendaItem) string {
	var t strings.Builder
	n := 0
	for _, it := range items {
		if it.Withdrawn {
			continue
		}
		n++
		fmt.Fprintf(&t, "%d. %s", n, it.Title)
		if it.Rapporteur != "" {
			fmt.Fprintf(&t, " (rapporteur : %s)", it.Rapporteur)
		}
		t.WriteString("\n")
		for _, nt := range it.Notes {
			fmt.Fprintf(&t, "   Note : %s (SHA-256 %s)\n", nt.Name, nt.SHA256)
		}
	}
	return t.String()
}
