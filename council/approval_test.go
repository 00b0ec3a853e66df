package council_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/ingeco/hemicycle/council"
)

// TestMinutesApprovedOnceClosed: the chair and the clerk approve the closed sitting's minutes
// as the text they read, each once; an approval before the close, by a member, of a text that
// has changed since, or of a malformed digest is refused; the approvals survive the journal
// being read again.
func TestMinutesApprovedOnceClosed(t *testing.T) {
	digest := func(text string) string { sum := sha256.Sum256([]byte(text)); return hex.EncodeToString(sum[:]) }
	read, changed := digest("procès-verbal"), digest("procès-verbal, corrigé")
	s := newSitting(t, "fr-commune", 5)
	s.refused(council.ApproveMinutes{Header: s.clerk(), Digest: read, Lang: "fr", Current: read}, council.ErrState)
	s.do(council.CloseSession{Header: s.chair()})

	s.refused(council.ApproveMinutes{Header: s.member(3), Digest: read, Lang: "fr", Current: read}, council.ErrNotEntitled)
	s.refused(council.ApproveMinutes{Header: s.clerk(), Digest: read, Lang: "fr", Current: changed}, council.ErrState)
	s.refused(council.ApproveMinutes{Header: s.clerk(), Digest: "abc", Lang: "fr", Current: "abc"}, council.ErrInvalid)
	s.refused(council.ApproveMinutes{Header: s.clerk(), Digest: read, Current: read}, council.ErrInvalid)

	events := s.do(council.ApproveMinutes{Header: s.clerk(), Digest: read, Lang: "fr", Current: read})
	if len(events) != 1 {
		t.Fatalf("events %v, want one approval", events)
	}
	if e, ok := events[0].(council.MinutesApproved); !ok || e.Digest != read || e.Lang != "fr" || e.By.Identity != "clerk" {
		t.Fatalf("event %#v, want the clerk's approval of the text read", events[0])
	}
	s.refused(council.ApproveMinutes{Header: s.clerk(), Digest: read, Lang: "fr", Current: read}, council.ErrState)
	s.do(council.ApproveMinutes{Header: s.chair(), Digest: read, Lang: "fr", Current: read})

	// The journal read again gives the same approvals.
	again, err := council.NewState(s.p, s.roster)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range s.journal {
		typ, data, err := council.EncodeEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := council.DecodeEvent(typ, data)
		if err != nil {
			t.Fatal(err)
		}
		if err := again.Apply(decoded); err != nil {
			t.Fatal(err)
		}
	}
	got := again.MinutesApprovals()
	if len(got) != 2 || got[0].By.Identity != "clerk" || got[1].By.Identity != "chair" || got[1].Digest != read || got[1].At.IsZero() {
		t.Errorf("approvals after reading the journal again: %+v", got)
	}
}
