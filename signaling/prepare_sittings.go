package signaling

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/httpapi"
)

// preparedSitting is a sitting as the clerk prepares it, days ahead.
type preparedSitting struct {
	Body      string    `json:"body"`
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Place     string    `json:"place,omitempty"`
	Room      string    `json:"room"` // where it is held on the day
	Chair     int       `json:"chair,omitempty"`
	Secretary int       `json:"secretary,omitempty"`
	// Emergency shortens the convocation's delay to the profile's emergency figure.
	Emergency   bool          `json:"emergency,omitempty"`
	Agenda      []agendaItem  `json:"agenda"`
	Convocation convocation   `json:"convocation"`
	Changes     []agendaAfter `json:"changesAfterSending,omitempty"`
}

// agendaItem is one item of a prepared agenda.
type agendaItem struct {
	ID           string `json:"id"`
	Title        string `json:"title"`
	Kind         string `json:"kind,omitempty"`
	Rapporteur   string `json:"rapporteur,omitempty"`
	Proposal     string `json:"proposal,omitempty"` // the text put to the vote
	InPersonOnly bool   `json:"inPersonOnly,omitempty"`
	Notes        []note `json:"notes,omitempty"`
	// AddedAfterSending and Withdrawn mark changes made once the convocation was sent.
	AddedAfterSending bool `json:"addedAfterSending,omitempty"`
	Withdrawn         bool `json:"withdrawn,omitempty"`
}

// note is an explanatory note attached to an item (note de synthèse), named by its hash.
type note struct {
	Name      string `json:"name"`
	MediaType string `json:"mediaType"`
	SHA256    string `json:"sha256"`
	Size      int    `json:"size"`
}

type convocation struct {
	Text   string    `json:"text,omitempty"`
	SentAt time.Time `json:"sentAt,omitzero"`
	SentBy string    `json:"sentBy,omitempty"`
}

func (c convocation) sent() bool { return !c.SentAt.IsZero() }

// agendaAfter is a change to the agenda after the convocation was sent.
type agendaAfter struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Change string    `json:"change"` // added, withdrawn, note-attached
	Item   string    `json:"item"`
	Reason string    `json:"reason,omitempty"`
}

// sittingView is a prepared sitting as answered: with the verdict on its convocation's date
// (when it was sent, or if it were sent now) and, when late, the warning in the caller's words.
type sittingView struct {
	preparedSitting
	Check   *council.ConvocationCheck `json:"convocationCheck,omitempty"`
	Warning string                    `json:"warning,omitempty"`
}

func sittingID(body, id string) string { return body + "/" + id }

func noteID(body, sitting, hash string) string { return body + "/" + sitting + "/" + hash }

// view checks the convocation's delay against the body's profile.
func (p *preparation) view(r *http.Request, b bodyRecord, s preparedSitting) sittingView {
	out := sittingView{preparedSitting: s}
	profile, err := p.profiles(b.Profile)
	if err != nil || profile.Convocation == nil {
		return out // a profile without a legal delay (generic) has nothing to check
	}
	sent := s.Convocation.SentAt
	if sent.IsZero() {
		sent = p.now()
	}
	loc := b.location()
	check := council.CheckConvocation(*profile.Convocation, b.Population, s.Emergency, sent, s.Start, loc)
	out.Check = &check
	if check.Late {
		l := labelsOf(r)
		out.Warning = fmt.Sprintf(l.ConvocationLateF, longDate(l, sent.In(loc)), check.Clear, check.Required, longDate(l, check.Deadline))
	}
	return out
}

// longDate writes a day in words: "jeudi 10 décembre 2026", "Thursday 10 December 2026".
func longDate(l council.Labels, t time.Time) string {
	return fmt.Sprintf("%s %d %s %d", l.Weekdays[t.Weekday()], t.Day(), l.Months[t.Month()-1], t.Year())
}

// prepareRequest is a sitting as the clerk writes it; items keep their ids.
type prepareRequest struct {
	Title       string       `json:"title"`
	Start       time.Time    `json:"start"`
	End         time.Time    `json:"end"`
	Place       string       `json:"place"`
	Room        string       `json:"room"`
	Chair       int          `json:"chair"`
	Secretary   int          `json:"secretary"`
	Emergency   bool         `json:"emergency"`
	Agenda      []agendaItem `json:"agenda"`
	Convocation string       `json:"convocation"`
}

// prepareSitting creates or rewrites a sitting until its convocation is sent; after that
// only the agenda changes, item by item, each recorded as made after sending.
func (p *preparation) prepareSitting(w http.ResponseWriter, r *http.Request) {
	bodyID, id := r.PathValue("body"), r.PathValue("sitting")
	var req prepareRequest
	if err := decodeJSON(r, &req, "{title, start, end, place, room, chair, secretary, emergency, agenda: [{id, title, kind, rapporteur, proposal, inPersonOnly}], convocation}"); err != nil {
		fail(w, err)
		return
	}
	b, _, err := p.body(r.Context(), bodyID)
	if err != nil {
		fail(w, err)
		return
	}
	var s preparedSitting
	version, err := p.record(r.Context(), kindSitting, sittingID(bodyID, id), &s, true)
	if err != nil {
		fail(w, err)
		return
	}
	if s.Convocation.sent() {
		httpapi.WriteError(w, 409, fmt.Sprintf("the convocation was sent on %s: add or withdraw items one by one (…/items, …/items/{item}/withdraw), which is recorded", s.Convocation.SentAt.Format(time.RFC3339)))
		return
	}
	if req.End.IsZero() && !req.Start.IsZero() {
		req.End = req.Start.Add(4 * time.Hour)
	}
	switch {
	case strings.TrimSpace(req.Title) == "":
		err = fmt.Errorf("title is required")
	case req.Start.IsZero() || !req.End.After(req.Start):
		err = fmt.Errorf("start is required (RFC 3339, e.g. 2026-12-10T18:30:00+01:00) and end, when given, comes after it")
	case req.Room == "":
		err = fmt.Errorf("room is required: the room the sitting is held in on the day")
	default:
		err = checkSeats(b.Roster, map[string]int{"chair": req.Chair, "secretary": req.Secretary})
	}
	if err == nil {
		err = checkAgenda(req.Agenda)
	}
	if err != nil {
		httpapi.WriteError(w, 400, err.Error())
		return
	}
	old := s
	notes := map[string][]note{}
	for _, it := range s.Agenda {
		notes[it.ID] = it.Notes
	}
	s = preparedSitting{Body: bodyID, ID: id, Title: req.Title, Start: req.Start, End: req.End, Place: req.Place, Room: req.Room,
		Chair: req.Chair, Secretary: req.Secretary, Emergency: req.Emergency, Agenda: req.Agenda, Convocation: convocation{Text: req.Convocation}}
	for i := range s.Agenda {
		// Notes are attached by upload and stay with their item.
		s.Agenda[i].Notes, s.Agenda[i].AddedAfterSending, s.Agenda[i].Withdrawn = notes[s.Agenda[i].ID], false, false
	}
	if err := p.commit(r.Context(), r, bodyID, kindSitting, sittingID(bodyID, id), version, old, s, "sitting.prepared", s); err != nil {
		fail(w, err)
		return
	}
	httpapi.WriteJSON(w, 200, p.view(r, b, s))
}

func checkSeats(roster council.Roster, seats map[string]int) error {
	for what, n := range seats {
		if n == 0 {
			continue
		}
		if s, ok := roster.Seat(n); !ok || !s.InOffice() {
			return fmt.Errorf("%s: seat %d has no member in office in the body's roster", what, n)
		}
	}
	return nil
}

func checkAgenda(items []agendaItem) error {
	seen := map[string]bool{}
	for i, it := range items {
		if err := checkItem(it); err != nil {
			return fmt.Errorf("agenda item %d: %w", i+1, err)
		}
		if seen[it.ID] {
			return fmt.Errorf("agenda item %d: id %q appears twice", i+1, it.ID)
		}
		seen[it.ID] = true
	}
	return nil
}

func checkItem(it agendaItem) error {
	if it.ID == "" || strings.ContainsAny(it.ID, "/ ") || strings.TrimSpace(it.Title) == "" {
		return fmt.Errorf("an item has an id (without spaces or slashes) and a title")
	}
	return nil
}

func (p *preparation) sitting(ctx context.Context, body, id string) (preparedSitting, uint64, error) {
	var s preparedSitting
	v, err := p.record(ctx, kindSitting, sittingID(body, id), &s, false)
	return s, v, err
}

func (p *preparation) getSitting(w http.ResponseWriter, r *http.Request) {
	b, _, err := p.body(r.Context(), r.PathValue("body"))
	if err != nil {
		fail(w, err)
		return
	}
	s, _, err := p.sitting(r.Context(), b.ID, r.PathValue("sitting"))
	if err != nil {
		fail(w, err)
		return
	}
	httpapi.WriteJSON(w, 200, p.view(r, b, s))
}

func (p *preparation) listSittings(w http.ResponseWriter, r *http.Request) {
	body := r.PathValue("body")
	recs, err := p.records.List(r.Context(), kindSitting)
	if err != nil {
		fail(w, fmt.Errorf("list sittings: %w", err))
		return
	}
	out := []preparedSitting{}
	for _, rec := range recs {
		var s preparedSitting
		if strings.HasPrefix(rec.ID, body+"/") && decodeRecord(rec, &s) == nil && s.Body == body {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b preparedSitting) int { return a.Start.Compare(b.Start) })
	httpapi.WriteJSON(w, 200, map[string]any{"sittings": out})
}

// changeAgenda applies change to a sitting's agenda and records it: in the sitting (when
// the convocation was sent) and in the body's journal.
func (p *preparation) changeAgenda(w http.ResponseWriter, r *http.Request, typ string, change func(s *preparedSitting, after *agendaAfter) error) {
	bodyID, id := r.PathValue("body"), r.PathValue("sitting")
	b, _, err := p.body(r.Context(), bodyID)
	if err != nil {
		fail(w, err)
		return
	}
	s, version, err := p.sitting(r.Context(), bodyID, id)
	if err != nil {
		fail(w, err)
		return
	}
	old := s
	s.Agenda = slices.Clone(s.Agenda)
	after := agendaAfter{At: p.now(), By: preparerOf(r).Identity}
	if err := change(&s, &after); err != nil {
		fail(w, err)
		return
	}
	if s.Convocation.sent() {
		s.Changes = append(slices.Clone(s.Changes), after)
	}
	what := map[string]any{"sitting": id, "item": after.Item, "reason": after.Reason, "afterSending": s.Convocation.sent()}
	if err := p.commit(r.Context(), r, bodyID, kindSitting, sittingID(bodyID, id), version, old, s, typ, what); err != nil {
		fail(w, err)
		return
	}
	httpapi.WriteJSON(w, 200, p.view(r, b, s))
}

func itemIndex(s *preparedSitting, id string) (int, error) {
	for i, it := range s.Agenda {
		if it.ID == id {
			return i, nil
		}
	}
	return -1, &httpapi.Error{Status: 404, Msg: fmt.Sprintf("sitting %q has no item %q", s.ID, id)}
}

func (p *preparation) addItem(w http.ResponseWriter, r *http.Request) {
	var it agendaItem
	if err := decodeJSON(r, &it, "{id, title, kind, rapporteur, proposal, inPersonOnly}"); err != nil {
		fail(w, err)
		return
	}
	p.changeAgenda(w, r, "item.added", func(s *preparedSitting, after *agendaAfter) error {
		if err := checkItem(it); err != nil {
			return &httpapi.Error{Status: 400, Msg: err.Error()}
		}
		if _, err := itemIndex(s, it.ID); err == nil {
			return &httpapi.Error{Status: 409, Msg: fmt.Sprintf("item %q is already on the agenda", it.ID)}
		}
		it.Notes, it.Withdrawn, it.AddedAfterSending = nil, false, s.Convocation.sent()
		s.Agenda = append(s.Agenda, it)
		after.Change, after.Item = "added", it.ID
		return nil
	})
}

func (p *preparation) withdrawItem(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req, "{reason}"); err != nil {
			fail(w, err)
			return
		}
	}
	p.changeAgenda(w, r, "item.withdrawn", func(s *preparedSitting, after *agendaAfter) error {
		i, err := itemIndex(s, r.PathValue("item"))
		if err != nil {
			return err
		}
		after.Change, after.Item, after.Reason = "withdrawn", s.Agenda[i].ID, req.Reason
		if !s.Convocation.sent() {
			s.Agenda = slices.Delete(s.Agenda, i, i+1) // nobody was told of it yet
			return nil
		}
		if s.Agenda[i].Withdrawn {
			return &httpapi.Error{Status: 409, Msg: fmt.Sprintf("item %q was already withdrawn", s.Agenda[i].ID)}
		}
		s.Agenda[i].Withdrawn = true
		return nil
	})
}

// attachNote stores the request's body as an explanatory note of the item, named by its
// SHA-256 so that a member can check that the note they read is the one the clerk sent.
func (p *preparation) attachNote(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxNoteBytes+1))
	if err != nil || len(data) == 0 || len(data) > maxNoteBytes {
		httpapi.WriteError(w, 400, fmt.Sprintf("send the note as the request's body (1 byte to %d MiB): %v", maxNoteBytes>>20, err))
		return
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		mediaType = "application/octet-stream"
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		httpapi.WriteError(w, 400, "name the note: ?name=note-de-synthese.pdf")
		return
	}
	sum := sha256.Sum256(data)
	n := note{Name: name, MediaType: mediaType, SHA256: hex.EncodeToString(sum[:]), Size: len(data)}
	p.changeAgenda(w, r, "note.attached", func(s *preparedSitting, after *agendaAfter) error {
		i, err := itemIndex(s, r.PathValue("item"))
		if err != nil {
			return err
		}
		// The content first: a note listed is always readable.
		stored := storedNote{note: n, Data: data}
		if err := p.put(r.Context(), kindNote, noteID(s.Body, s.ID, n.SHA256), 0, stored); err != nil && !isConflict(err) {
			return err
		}
		s.Agenda[i].Notes = append(slices.Clone(s.Agenda[i].Notes), n)
		after.Change, after.Item, after.Reason = "note-attached", s.Agenda[i].ID, n.Name+" sha256:"+n.SHA256
		return nil
	})
}

// storedNote is a note with its content (base64 in the record's JSON).
type storedNote struct {
	note
	Data []byte `json:"data"`
}

func isConflict(err error) bool {
	var ae *httpapi.Error
	return errors.As(err, &ae) && ae.Status == 409 // the same content already stored
}

func (p *preparation) getNote(w http.ResponseWriter, r *http.Request) {
	var n storedNote
	if _, err := p.record(r.Context(), kindNote, noteID(r.PathValue("body"), r.PathValue("sitting"), r.PathValue("hash")), &n, false); err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", n.MediaType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": n.Name}))
	_, _ = w.Write(n.Data)
}

// openingOf is what opening the room's sitting takes from its preparation, named
// "body/sitting": the sitting, the roster, and the agenda's items not withdrawn.
func (p *preparation) openingOf(ctx context.Context, room, ref string) (council.Sitting, council.Roster, []council.AddItem, error) {
	bodyID, id, ok := strings.Cut(ref, "/")
	if !ok {
		return council.Sitting{}, council.Roster{}, nil, &httpapi.Error{Status: 400, Msg: fmt.Sprintf("prepared %q: name it body/sitting", ref)}
	}
	b, _, err := p.body(ctx, bodyID)
	if err != nil {
		return council.Sitting{}, council.Roster{}, nil, err
	}
	s, _, err := p.sitting(ctx, bodyID, id)
	if err != nil {
		return council.Sitting{}, council.Roster{}, nil, err
	}
	if s.Room != room {
		return council.Sitting{}, council.Roster{}, nil, &httpapi.Error{Status: 409, Msg: fmt.Sprintf("sitting %q is prepared for room %q, not %q", ref, s.Room, room)}
	}
	sitting := council.Sitting{Body: council.Body{Name: b.Name, Kind: b.Kind, Profile: b.Profile},
		Title: s.Title, Location: s.Place, Chair: s.Chair, Secretary: s.Secretary}
	var items []council.AddItem
	for _, it := range s.Agenda {
		if !it.Withdrawn {
			items = append(items, council.AddItem{ID: it.ID, Title: it.Title, Kind: it.Kind, InPersonOnly: it.InPersonOnly})
		}
	}
	return sitting, b.Roster, items, nil
}

// sessionOf reads what an opening request brings: with Prepared, the prepared sitting
// (which fills req's sitting), its roster and agenda; otherwise the roster of req's CSV.
func (p *preparation) sessionOf(ctx context.Context, room string, req *openSessionRequest) (council.Roster, []council.AddItem, error) {
	if req.Prepared == "" {
		if req.Body.Profile == "" {
			return council.Roster{}, nil, &httpapi.Error{Status: 400, Msg: "body.profile is required (fr-commune, fr-epci-visio, fr-2020-emergency or generic), or prepared: body/sitting"}
		}
		roster, err := council.ParseRoster(strings.NewReader(req.RosterCSV))
		if err != nil {
			return council.Roster{}, nil, fmt.Errorf("rosterCsv: %w", err) // worded by the caller, in the clerk's language
		}
		return roster, nil, nil
	}
	if p == nil {
		return council.Roster{}, nil, &httpapi.Error{Status: 503, Msg: "no sitting is prepared on this server (no store configured)"}
	}
	if req.RosterCSV != "" || req.Body != (council.Body{}) {
		return council.Roster{}, nil, &httpapi.Error{Status: 400, Msg: "a prepared sitting brings its body and roster: send prepared alone (with title or chair only to change them)"}
	}
	sitting, roster, agenda, err := p.openingOf(ctx, room, req.Prepared)
	if err != nil {
		return council.Roster{}, nil, err
	}
	if req.Title != "" {
		sitting.Title = req.Title
	}
	if req.Chair != 0 {
		sitting.Chair = req.Chair
	}
	req.Sitting = sitting
	return roster, agenda, nil
}
