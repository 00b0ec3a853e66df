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

// seal is the seal of a room's journal at entry seq, the last one its state folded.
func (d *deliberation) seal(ctx context.Context, room string, seq uint64) (*council.JournalSeal, error) {
	es, err := d.journal.Read(ctx, room, seq)
	if err != nil {
		return nil, fmt.Errorf("read the journal's last entry: %w", err)
	}
	if len(es) == 0 {
		return nil, fmt.Errorf("the journal of room %q has no entry %d", room, seq)
	}
	return store.Seal(es[0], d.srv.cfg.JournalKeys), nil
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
	seal, err := d.seal(r.Context(), dk.room, seq)
	if err != nil {
		httpapi.WriteError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, seal)
}
