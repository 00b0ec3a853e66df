package signaling

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/httpapi"
	"github.com/ingeco/hemicycle/signaling/mail"
	"github.com/ingeco/hemicycle/store"
)

// Preparing sittings ahead (prepare*.go): a body and its roster, the members' contact
// details, the sittings with their agenda and convocation, and each member's invitation, all
// kept as store Records; every change that matters is also appended, with who and when, to
// the body's journal ("body/ID"), which nobody can rewrite.

// InvitationConfig is how invitations reach the members.
type InvitationConfig struct {
	// PublicURL is the address the members reach the server at; the links start with it.
	PublicURL string
	// Early is how long before the sitting an invitation admits its holder (30 min when zero).
	Early time.Duration
	// Key and Secret sign the join tokens minted from invitations and derive the links' codes.
	Key, Secret string
	// Mail, when set, sends the invitations through the town's SMTP relay.
	Mail *mail.Relay
}

// Record kinds.
const (
	kindBody           = "body"
	kindContact        = "contact"
	kindSitting        = "sitting"
	kindNote           = "note"
	kindInvitation     = "invitation"
	kindInvitationCode = "invitation-code"
)

// preparation serves the routes under /api/bodies and /api/invitations.
type preparation struct {
	srv      *Server
	records  store.Records
	journal  store.Journal
	profiles func(name string) (*council.Profile, error)
	inv      InvitationConfig
	now      func() time.Time
	log      *slog.Logger
}

func newPreparation(s *Server) *preparation {
	if s.cfg.Records == nil || s.cfg.Journal == nil || s.cfg.Profiles == nil {
		return nil
	}
	now := s.cfg.Clock
	if now == nil {
		now = time.Now
	}
	inv := s.cfg.Invitations
	if inv.Early == 0 {
		inv.Early = 30 * time.Minute
	}
	return &preparation{srv: s, records: s.cfg.Records, journal: s.cfg.Journal, profiles: s.cfg.Profiles,
		inv: inv, now: now, log: s.log.With("part", "prepare")}
}

// Who may call the preparation routes: the body's clerk prepares; its chair may read.
var (
	bodyClerk        = httpapi.ForBody(auth.RoleClerk)
	bodyClerkOrChair = httpapi.ForBody(auth.RoleClerk, auth.RoleChair)
)

const maxNoteBytes = 16 << 20 // an explanatory note is a PDF of a few pages

func (p *preparation) routes() []httpapi.Route {
	row := func(method, pattern string, who httpapi.Access, h http.HandlerFunc) httpapi.Route {
		return httpapi.Route{Method: method, Pattern: pattern, Access: who, Handler: p.available(h)}
	}
	links := httpapi.NewLimiter(30, 10, 50, "too many invitation requests from this address; wait a moment").Named(limitInvitationLink)
	byCode := httpapi.Anyone("the invitation's secret code in the path, valid until the sitting's end and revocable")
	const body, sitting = "/api/bodies/{body}", "/api/bodies/{body}/sittings/{sitting}"
	return []httpapi.Route{
		row("POST", body, bodyClerk, p.saveBody),
		row("GET", body, bodyClerkOrChair, p.getBody),
		row("POST", body+"/roster", bodyClerk, p.importRoster),
		row("POST", body+"/roster/edits", bodyClerk, p.editRoster),
		row("GET", body+"/journal", bodyClerkOrChair, p.getBodyJournal),
		row("GET", body+"/contacts", bodyClerk, p.getContacts),
		row("GET", body+"/sittings", bodyClerkOrChair, p.listSittings),
		row("POST", sitting, bodyClerk, p.prepareSitting),
		row("GET", sitting, bodyClerkOrChair, p.getSitting),
		row("POST", sitting+"/items", bodyClerk, p.addItem),
		row("POST", sitting+"/items/{item}/withdraw", bodyClerk, p.withdrawItem),
		row("POST", sitting+"/items/{item}/notes", bodyClerk, p.attachNote),
		row("GET", sitting+"/items/{item}/notes/{hash}", bodyClerkOrChair, p.getNote),
		row("POST", sitting+"/convocation", bodyClerk, p.sendConvocation),
		row("GET", sitting+"/invitations", bodyClerk, p.listInvitations),
		row("POST", sitting+"/invitations/{seat}/revoke", bodyClerk, p.revokeInvitation),
		row("GET", sitting+"/invitations/{seat}/qr", bodyClerk, p.invitationQR),
		{Method: "GET", Pattern: "/api/rooms/{room}/prepared", Access: httpapi.For(auth.RoleChair, auth.RoleClerk), Handler: p.available(p.preparedForRoom)},
		{Method: "GET", Pattern: "/api/invitations/{code}", Access: byCode, Limit: links, Handler: p.available(p.openInvitation)},
		{Method: "POST", Pattern: "/api/invitations/{code}/join", Access: byCode, Limit: links, Handler: p.available(p.useInvitation)},
	}
}

// available answers 503 on a server without records.
func (p *preparation) available(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p == nil {
			httpapi.WriteError(w, http.StatusServiceUnavailable, "preparing sittings is not enabled on this server (no store configured)")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
		defer cancel()
		h(w, r.WithContext(ctx))
	}
}

// preparer is who made a change, as the body's journal records it.
type preparer struct {
	Identity string    `json:"identity"`
	Role     auth.Role `json:"role"`
}

func preparerOf(r *http.Request) preparer {
	c := httpapi.CallerOf(r)
	return preparer{Identity: c.Claims.ParticipantIdentity(), Role: c.Role}
}

func bodyJournal(body string) string { return "body/" + body }

// record reads a record of kind into v, with its version (0 when absent and missing is true).
func (p *preparation) record(ctx context.Context, kind, id string, v any, missingOK bool) (uint64, error) {
	rec, err := p.records.Get(ctx, kind, id)
	if errors.Is(err, store.ErrNotFound) {
		if missingOK {
			return 0, nil
		}
		return 0, &httpapi.Error{Status: 404, Msg: fmt.Sprintf("no %s %q", kind, id)}
	}
	if err != nil {
		return 0, fmt.Errorf("read %s %q: %w", kind, id, err)
	}
	if err := json.Unmarshal(rec.Data, v); err != nil {
		return 0, fmt.Errorf("%s %q is damaged: %w", kind, id, err)
	}
	return rec.Version, nil
}

// put stores v over version.
func (p *preparation) put(ctx context.Context, kind, id string, version uint64, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %q: %w", kind, id, err)
	}
	if _, err := p.records.Put(ctx, kind, id, version, data); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return &httpapi.Error{Status: 409, Msg: "changed by someone else at the same moment; reload and retry: " + err.Error()}
		}
		return fmt.Errorf("store %s %q: %w", kind, id, err)
	}
	return nil
}

// journalEntry is what the body's journal says of a change.
type journalEntry struct {
	By   preparer `json:"by"`
	What any      `json:"what"`
}

// commit stores v over version and journals the change as typ; when the journal refuses,
// the record is put back as it was, so that no change is kept without its entry.
func (p *preparation) commit(ctx context.Context, r *http.Request, body, kind, id string, version uint64, old, v any, typ string, what any) error {
	if err := p.put(ctx, kind, id, version, v); err != nil {
		return err
	}
	if err := p.note(ctx, r, body, typ, what); err != nil {
		var undo error
		if version == 0 {
			undo = p.records.Delete(ctx, kind, id)
		} else {
			undo = p.put(ctx, kind, id, version+1, old)
		}
		if undo != nil {
			p.log.Error("a change is stored without its journal entry", "kind", kind, "id", id, "err", undo)
		}
		return err
	}
	return nil
}

// note appends a change to the body's journal.
func (p *preparation) note(ctx context.Context, r *http.Request, body, typ string, what any) error {
	data, err := json.Marshal(journalEntry{By: preparerOf(r), What: what})
	if err != nil {
		return fmt.Errorf("encode %s: %w", typ, err)
	}
	if _, err := p.journal.Append(ctx, bodyJournal(body), 0, p.now(), typ, data); err != nil {
		return &httpapi.Error{Status: 503, Msg: fmt.Sprintf("the change could not be journalled, nothing was changed: %v", err)}
	}
	return nil
}

// fail answers err: an httpapi.Error as it says, anything else as 503 (the store).
func fail(w http.ResponseWriter, err error) {
	var ae *httpapi.Error
	if errors.As(err, &ae) {
		httpapi.Fail(w, ae)
		return
	}
	httpapi.WriteError(w, http.StatusServiceUnavailable, err.Error())
}

// decodeJSON reads a request body strictly into v.
func decodeJSON(r *http.Request, v any, shape string) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &httpapi.Error{Status: 400, Msg: fmt.Sprintf("body must be JSON %s: %v", shape, err)}
	}
	return nil
}

// labelsOf are the words of the caller's language (httpapi.Language).
func labelsOf(r *http.Request) council.Labels {
	l, _ := council.LabelsFor(httpapi.Language(r))
	return l
}

func decodeRecord(rec store.Record, v any) error { return json.Unmarshal(rec.Data, v) }

func writeJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// sortBySeat orders s by the seat number seat gives.
func sortBySeat[T any](s []T, seat func(T) int) {
	slices.SortFunc(s, func(a, b T) int { return cmp.Compare(seat(a), seat(b)) })
}
