package signaling

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/httpapi"
	"github.com/ingeco/hemicycle/store"
)

// bodyRecord is a body as kept: what the clerk says of it and its roster (seats and holders;
// their contact details are kept apart, as contactRecord).
type bodyRecord struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Kind       string         `json:"kind,omitempty"`
	Profile    string         `json:"profile"`
	TimeZone   string         `json:"timeZone"`
	Population int            `json:"population,omitempty"`
	Roster     council.Roster `json:"roster"`
}

// bodyView is a body as answered: with its count of members in office.
type bodyView struct {
	bodyRecord
	Seats           int `json:"seats"`
	MembersInOffice int `json:"membersInOffice"`
}

func (b bodyRecord) view() bodyView {
	return bodyView{bodyRecord: b, Seats: len(b.Roster.Seats), MembersInOffice: b.Roster.InOffice()}
}

func (b bodyRecord) location() *time.Location {
	loc, err := time.LoadLocation(b.TimeZone)
	if err != nil {
		return time.UTC // checked when saved
	}
	return loc
}

// contactRecord is how to reach the holder of a seat; it is deleted when they leave it.
type contactRecord struct {
	Seat  int    `json:"seat"`
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

func contactID(body string, seat int) string { return fmt.Sprintf("%s/%d", body, seat) }

// saveBodyRequest creates a body or changes what is said of it (not its roster).
type saveBodyRequest struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Profile    string `json:"profile"`
	TimeZone   string `json:"timeZone"`
	Population int    `json:"population"`
}

func (p *preparation) saveBody(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("body")
	var req saveBodyRequest
	if err := decodeJSON(r, &req, "{name, kind, profile, timeZone, population}"); err != nil {
		fail(w, err)
		return
	}
	if strings.TrimSpace(req.Name) == "" {
		httpapi.WriteError(w, 400, "name is required (e.g. Conseil municipal de Test)")
		return
	}
	if _, err := p.profiles(req.Profile); err != nil {
		httpapi.WriteError(w, 400, fmt.Sprintf("profile %q: %v", req.Profile, err))
		return
	}
	if req.TimeZone == "" {
		req.TimeZone = "Europe/Paris"
	}
	if _, err := time.LoadLocation(req.TimeZone); err != nil || req.TimeZone == "Local" {
		httpapi.WriteError(w, 400, fmt.Sprintf("timeZone %q is not an IANA zone such as Europe/Paris or America/Cayenne", req.TimeZone))
		return
	}
	if req.Population < 0 {
		httpapi.WriteError(w, 400, "population cannot be negative")
		return
	}
	var b bodyRecord
	version, err := p.record(r.Context(), kindBody, id, &b, true)
	if err != nil {
		fail(w, err)
		return
	}
	old := b
	b.ID, b.Name, b.Kind, b.Profile, b.TimeZone, b.Population = id, req.Name, req.Kind, req.Profile, req.TimeZone, req.Population
	typ := "body.changed"
	if version == 0 {
		typ = "body.created"
	}
	if err := p.commit(r.Context(), r, id, kindBody, id, version, old, b, typ, req); err != nil {
		fail(w, err)
		return
	}
	httpapi.WriteJSON(w, 200, b.view())
}

func (p *preparation) body(ctx context.Context, id string) (bodyRecord, uint64, error) {
	var b bodyRecord
	v, err := p.record(ctx, kindBody, id, &b, false)
	if err != nil {
		var ae *httpapi.Error
		if errors.As(err, &ae) && ae.Status == 404 {
			ae.Msg = fmt.Sprintf("body %q does not exist: create it first with POST /api/bodies/%s", id, id)
		}
	}
	return b, v, err
}

func (p *preparation) getBody(w http.ResponseWriter, r *http.Request) {
	b, _, err := p.body(r.Context(), r.PathValue("body"))
	if err != nil {
		fail(w, err)
		return
	}
	httpapi.WriteJSON(w, 200, b.view())
}

// importRoster replaces the roster with the clerk's CSV file (the request's body). A line
// that cannot be read is refused with its number, in the caller's language, and nothing is
// changed. Contact details come with the file; those of a seat whose holder changed are
// forgotten.
func (p *preparation) importRoster(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("body")
	b, version, err := p.body(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	members, err := council.ParseMembers(io.LimitReader(r.Body, maxBodyBytes))
	if le, ok := errors.AsType[*council.RosterLineError](err); ok {
		refuseRoster(w, r, "", le)
		return
	} else if err != nil {
		httpapi.WriteError(w, 400, err.Error())
		return
	}
	seats := make([]council.Seat, len(members))
	for i, m := range members {
		seats[i] = m.Seat
	}
	roster, err := council.NewRoster(seats)
	if err != nil {
		httpapi.WriteError(w, 400, err.Error())
		return
	}
	old := b
	b.Roster = roster
	summary := map[string]int{"seats": len(roster.Seats), "membersInOffice": roster.InOffice()}
	if err := p.commit(r.Context(), r, id, kindBody, id, version, old, b, "roster.imported", summary); err != nil {
		fail(w, err)
		return
	}
	// Contacts after the roster: a failure here leaves details to forget, never a roster
	// that points at someone else's.
	kept := map[int]bool{}
	for _, m := range members {
		if m.InOffice() && (m.Email != "" || m.Phone != "") {
			kept[m.Number] = true
			if err := p.putContact(r.Context(), id, contactRecord{Seat: m.Number, Name: m.Name, Email: m.Email, Phone: m.Phone}); err != nil {
				fail(w, err)
				return
			}
		}
	}
	if err := p.forgetContacts(r.Context(), id, func(c contactRecord) bool { return !kept[c.Seat] }); err != nil {
		fail(w, err)
		return
	}
	httpapi.WriteJSON(w, 200, b.view())
}

func (p *preparation) putContact(ctx context.Context, body string, c contactRecord) error {
	var old contactRecord
	version, err := p.record(ctx, kindContact, contactID(body, c.Seat), &old, true)
	if err != nil {
		return err
	}
	return p.put(ctx, kindContact, contactID(body, c.Seat), version, c)
}

// contacts returns the body's contact records by seat.
func (p *preparation) contacts(ctx context.Context, body string) (map[int]contactRecord, error) {
	recs, err := p.records.List(ctx, kindContact)
	if err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	out := map[int]contactRecord{}
	for _, rec := range recs {
		var c contactRecord
		if !strings.HasPrefix(rec.ID, body+"/") || decodeRecord(rec, &c) != nil {
			continue
		}
		if rec.ID == contactID(body, c.Seat) {
			out[c.Seat] = c
		}
	}
	return out, nil
}

// forgetContacts deletes the body's contacts that drop says are no longer needed.
func (p *preparation) forgetContacts(ctx context.Context, body string, drop func(contactRecord) bool) error {
	all, err := p.contacts(ctx, body)
	if err != nil {
		return err
	}
	for _, c := range all {
		if drop(c) {
			if err := p.records.Delete(ctx, kindContact, contactID(body, c.Seat)); err != nil {
				return fmt.Errorf("forget the contact of seat %d: %w", c.Seat, err)
			}
		}
	}
	return nil
}

func (p *preparation) getContacts(w http.ResponseWriter, r *http.Request) {
	all, err := p.contacts(r.Context(), r.PathValue("body"))
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]contactRecord, 0, len(all))
	for _, c := range all {
		out = append(out, c)
	}
	sortBySeat(out, func(c contactRecord) int { return c.Seat })
	httpapi.WriteJSON(w, 200, map[string]any{"contacts": out})
}

// rosterEditRequest is a roster edit with, for a replacement, the new member's contact.
type rosterEditRequest struct {
	council.RosterEdit
	Email string `json:"email"`
	Phone string `json:"phone"`
}

// rosterEdited is the journal's entry for an edit: the seat before and after.
type rosterEdited struct {
	Change council.RosterChange `json:"change"`
	Seat   int                  `json:"seat"`
	Before council.Seat         `json:"before"`
	After  council.Seat         `json:"after"`
}

// editRoster records a resignation, a vacancy or a replacement; whoever leaves the seat has
// their contact details forgotten.
func (p *preparation) editRoster(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("body")
	var req rosterEditRequest
	if err := decodeJSON(r, &req, "{change: resignation|vacancy|replacement, seat, name, group, role, email, phone}"); err != nil {
		fail(w, err)
		return
	}
	b, version, err := p.body(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	roster, before, err := b.Roster.Edit(req.RosterEdit)
	if err != nil {
		httpapi.WriteError(w, 400, err.Error())
		return
	}
	after, _ := roster.Seat(req.Seat)
	old := b
	b.Roster = roster
	what := rosterEdited{Change: req.Change, Seat: req.Seat, Before: before, After: after}
	if err := p.commit(r.Context(), r, id, kindBody, id, version, old, b, "roster.edited", what); err != nil {
		fail(w, err)
		return
	}
	if err := p.records.Delete(r.Context(), kindContact, contactID(id, req.Seat)); err != nil {
		fail(w, fmt.Errorf("forget the contact of seat %d: %w", req.Seat, err))
		return
	}
	if after.InOffice() && (req.Email != "" || req.Phone != "") {
		if err := p.putContact(r.Context(), id, contactRecord{Seat: req.Seat, Name: after.Name, Email: req.Email, Phone: req.Phone}); err != nil {
			fail(w, err)
			return
		}
	}
	httpapi.WriteJSON(w, 200, b.view())
}

// getBodyJournal answers the body's journal: every change to it, its roster and its
// sittings, with who and when, as NDJSON like a room's.
func (p *preparation) getBodyJournal(w http.ResponseWriter, r *http.Request) {
	entries, err := p.journal.Read(r.Context(), bodyJournal(r.PathValue("body")), 1)
	if err != nil {
		fail(w, fmt.Errorf("read the body's journal: %w", err))
		return
	}
	writeNDJSON(w, entries)
}

func writeNDJSON(w http.ResponseWriter, entries []store.Entry) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	for _, e := range entries {
		if err := writeJSONLine(w, e); err != nil {
			return
		}
	}
}
