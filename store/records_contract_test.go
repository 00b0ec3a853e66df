package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/store/redistest"
)

func TestFileRecords(t *testing.T) { runRecordsContract(t, fileBackend()) }

func TestRedisRecords(t *testing.T) {
	runRecordsContract(t, redisBackend(redistest.StartRedis(t)))
}

func asRecords(t *testing.T, j Journal) Records {
	t.Helper()
	r, ok := j.(Records)
	if !ok {
		t.Fatalf("%T does not keep records", j)
	}
	return r
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// preparedSitting is the shape a prepared sitting is stored in, enough to check that a
// nested document comes back as it went in.
type preparedSitting struct {
	Body  string   `json:"body"`
	Date  string   `json:"date"`
	Items []string `json:"items"`
}

// runRecordsContract is what every Records implementation must do, on the documents the
// preparation of a sitting keeps: a body, its roster, a prepared sitting, contact details.
func runRecordsContract(t *testing.T, b backend) {
	ctx := context.Background()
	body := council.Body{Name: "Conseil municipal de Saint-Lô", Kind: "commune", Profile: "fr-commune"}
	roster := council.Roster{Seats: []council.Seat{{Number: 1, Name: "Ana Lévy", Role: "maire"}, {Number: 2}}}

	t.Run("PutGetVersions", func(t *testing.T) {
		j := b.open(t)
		r := asRecords(t, j)
		rec, err := r.Put(ctx, "bodies", "saint-lo", 0, mustJSON(t, body))
		if err != nil || rec.Version != 1 {
			t.Fatalf("create: %+v, %v", rec, err)
		}
		if _, err := r.Put(ctx, "bodies", "saint-lo", 0, mustJSON(t, body)); !errors.Is(err, ErrConflict) {
			t.Fatalf("second create: %v, want ErrConflict", err)
		}
		body2 := body
		body2.Profile = "fr-epci-visio"
		if rec, err = r.Put(ctx, "bodies", "saint-lo", 1, mustJSON(t, body2)); err != nil || rec.Version != 2 {
			t.Fatalf("update: %+v, %v", rec, err)
		}
		if _, err := r.Put(ctx, "bodies", "saint-lo", 1, mustJSON(t, body)); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "stored version 2") {
			t.Fatalf("stale update: %v, want ErrConflict naming version 2", err)
		}
		got, err := r.Get(ctx, "bodies", "saint-lo")
		if err != nil {
			t.Fatal(err)
		}
		var back council.Body
		if err := json.Unmarshal(got.Data, &back); err != nil || back != body2 || got.Version != 2 {
			t.Fatalf("got %+v (%s), want %+v at version 2", got, got.Data, body2)
		}
		if _, err := r.Get(ctx, "bodies", "nowhere"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("absent record: %v, want ErrNotFound", err)
		}
		if _, err := r.Get(ctx, "rosters", "saint-lo"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a body is not a roster: %v", err)
		}
	})

	t.Run("ListSortedPerKind", func(t *testing.T) {
		j := b.open(t)
		r := asRecords(t, j)
		for _, id := range []string{"séance 2027-01", "2026-12-15", "Avranches/2026-12"} {
			if _, err := r.Put(ctx, "sittings", id, 0, mustJSON(t, preparedSitting{Body: "saint-lo", Date: id, Items: []string{"budget", "voirie"}})); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := r.Put(ctx, "rosters", "saint-lo", 0, mustJSON(t, roster)); err != nil {
			t.Fatal(err)
		}
		list, err := r.List(ctx, "sittings")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, rec := range list {
			var s preparedSitting
			if err := json.Unmarshal(rec.Data, &s); err != nil || s.Date != rec.ID || len(s.Items) != 2 {
				t.Fatalf("record %q holds %s", rec.ID, rec.Data)
			}
			ids = append(ids, rec.ID)
		}
		if fmt.Sprint(ids) != "[2026-12-15 Avranches/2026-12 séance 2027-01]" {
			t.Fatalf("listed %q, want the three sittings sorted", ids)
		}
		if none, err := r.List(ctx, "invitations"); err != nil || len(none) != 0 {
			t.Fatalf("empty kind: %v, %v", none, err)
		}
	})

	t.Run("SurvivesRestart", func(t *testing.T) {
		j := b.open(t)
		if _, err := asRecords(t, j).Put(ctx, "rosters", "saint-lo", 0, mustJSON(t, roster)); err != nil {
			t.Fatal(err)
		}
		j = b.reopen(t, j)
		t.Cleanup(func() { _ = j.Close() })
		got, err := asRecords(t, j).Get(ctx, "rosters", "saint-lo")
		if err != nil {
			t.Fatal(err)
		}
		var back council.Roster
		if err := json.Unmarshal(got.Data, &back); err != nil || len(back.Seats) != 2 || back.Seats[0].Name != "Ana Lévy" || back.Seats[1].InOffice() {
			t.Fatalf("after restart: %s", got.Data)
		}
		if js, err := j.Journals(ctx); err != nil || len(js) != 0 {
			t.Fatalf("records are not journals: %v, %v", js, err)
		}
	})

	t.Run("DeleteForgets", func(t *testing.T) {
		j := b.open(t)
		r := asRecords(t, j)
		contact := map[string]string{"email": "ana@example.org", "phone": "+33 6 12 34 56 78"}
		if _, err := r.Put(ctx, "contacts", "saint-lo.1", 0, mustJSON(t, contact)); err != nil {
			t.Fatal(err)
		}
		if err := r.Delete(ctx, "contacts", "saint-lo.1"); err != nil {
			t.Fatal(err)
		}
		if err := r.Delete(ctx, "contacts", "saint-lo.1"); err != nil {
			t.Fatalf("deleting again: %v", err)
		}
		j = b.reopen(t, j)
		t.Cleanup(func() { _ = j.Close() })
		r = asRecords(t, j)
		if _, err := r.Get(ctx, "contacts", "saint-lo.1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("purged contact: %v, want ErrNotFound", err)
		}
		if list, err := r.List(ctx, "contacts"); err != nil || len(list) != 0 {
			t.Fatalf("purged contact still listed: %+v, %v", list, err)
		}
		// A deleted record may be created again from version 0.
		if rec, err := r.Put(ctx, "contacts", "saint-lo.1", 0, mustJSON(t, contact)); err != nil || rec.Version != 1 {
			t.Fatalf("recreate: %+v, %v", rec, err)
		}
	})

	t.Run("ConcurrentWritersLoseNothing", func(t *testing.T) {
		j := b.open(t)
		r := asRecords(t, j)
		const writers, each = 4, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				for i := 0; i < each; {
					rec, err := r.Get(ctx, "sittings", "s")
					var s preparedSitting
					if errors.Is(err, ErrNotFound) {
						rec = Record{}
					} else if err != nil {
						errs <- err
						return
					} else if err := json.Unmarshal(rec.Data, &s); err != nil {
						errs <- err
						return
					}
					s.Items = append(s.Items, fmt.Sprintf("%d-%d", w, i))
					if _, err := r.Put(ctx, "sittings", "s", rec.Version, mustJSON(t, s)); errors.Is(err, ErrConflict) {
						continue // someone came first: read again
					} else if err != nil {
						errs <- err
						return
					}
					i++
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		rec, err := r.Get(ctx, "sittings", "s")
		if err != nil {
			t.Fatal(err)
		}
		var s preparedSitting
		if err := json.Unmarshal(rec.Data, &s); err != nil || len(s.Items) != writers*each || rec.Version != writers*each {
			t.Fatalf("%d items at version %d, want %d: %v", len(s.Items), rec.Version, writers*each, err)
		}
	})

	t.Run("RefusesBadNames", func(t *testing.T) {
		r := asRecords(t, b.open(t))
		if _, err := r.Put(ctx, "Bodies", "x", 0, json.RawMessage(`{}`)); err == nil {
			t.Fatal("kind with a capital accepted")
		}
		if _, err := r.Put(ctx, "bodies", "", 0, json.RawMessage(`{}`)); err == nil {
			t.Fatal("empty id accepted")
		}
		if _, err := r.Put(ctx, "bodies", "x", 0, json.RawMessage(`{`)); err == nil {
			t.Fatal("broken JSON accepted")
		}
	})
}
