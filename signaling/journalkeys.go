package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/httpapi"
	"github.com/ingeco/hemicycle/store"
)

// JournalKeysPath is where a server publishes the public keys its journals are signed with,
// a JWK Set that `hemicycle journal verify --keys` reads.
const JournalKeysPath = "/.well-known/hemicycle-journal-keys"

// journalKeysRoute publishes the keys for anyone: they are what lets a citizen holding a copy
// of a journal check that nobody without the key rewrote it. Every node holds the same keys.
func (s *Server) journalKeysRoute() httpapi.Route {
	return httpapi.Route{Method: "GET", Pattern: JournalKeysPath, Access: httpapi.Anyone("public keys, to check a journal's signatures"),
		Handler: func(w http.ResponseWriter, _ *http.Request) {
			if s.cfg.JournalKeys == nil {
				httpapi.WriteError(w, http.StatusNotFound, "this server does not sign journals")
				return
			}
			w.Header().Set("Content-Type", "application/jwk-set+json")
			_ = json.NewEncoder(w).Encode(s.cfg.JournalKeys)
		}}
}

// draftMinutes is the room's minutes as its state stands, sealed with its journal.
func (d *deliberation) draftMinutes(ctx context.Context, dk *desk) (*council.Minutes, error) {
	es, err := d.journal.Read(ctx, dk.room, 1)
	if err != nil {
		return nil, fmt.Errorf("read the journal to seal the minutes: %w", err)
	}
	// Only the entries the state folded: another writer may have appended since.
	es = es[:min(uint64(len(es)), dk.seq)]
	if len(es) == 0 {
		return nil, fmt.Errorf("the journal of room %q has no entry", dk.room)
	}
	m := council.DraftMinutes(dk.state, d.srv.cfg.Location)
	m.Seal = MinutesSeal(es, d.srv.cfg.JournalKeys)
	return m, nil
}

// MinutesSeal is the seal the minutes print for a sitting's journal: its entry that closed
// the sitting once there is one, since the minutes describe the sitting as closed and must
// not change when their approval is journalled after it; before that, its last entry.
func MinutesSeal(entries []store.Entry, keys store.PublicKeys) *council.JournalSeal {
	sealed := entries[len(entries)-1]
	closed := council.SessionClosed{}.Type()
	for _, e := range entries {
		if e.Type == closed {
			sealed = e
			break
		}
	}
	return store.Seal(sealed, keys)
}

// getJournalSeal answers the seal of the room's journal as it stands: its last hash and
// signature, and the public key to check them with.
func (d *deliberation) getJournalSeal(w http.ResponseWriter, r *http.Request) {
	dk, ok := d.deskOf(r.Context(), w, r)
	if !ok {
		return
	}
	dk.mu.Lock()
	seq := dk.seq
	dk.mu.Unlock()
	if seq == 0 {
		httpapi.WriteError(w, http.StatusNotFound, errNoSession.Error())
		return
	}
	es, err := d.journal.Read(r.Context(), dk.room, seq)
	if err == nil && len(es) == 0 {
		err = fmt.Errorf("the journal of room %q has no entry %d", dk.room, seq)
	}
	if err != nil {
		httpapi.WriteError(w, http.StatusServiceUnavailable, "read the journal's last entry: "+err.Error())
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, store.Seal(es[0], d.srv.cfg.JournalKeys))
}
