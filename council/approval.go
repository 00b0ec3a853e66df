package council

import (
	"encoding/hex"
	"slices"
	"time"
)

// Approving the minutes. Once the sitting is closed, the chair and the clerk approve its
// procès-verbal, each in turn, as the text they read: the approval records that text's
// SHA-256 (of the Markdown the server renders in Lang), so that anyone holding a text can
// later tell whether it is the one approved. The text is drawn again from the journal, never
// stored, and an approval does not change it.

// ApproveMinutes approves the minutes whose Markdown text in Lang has the SHA-256 Digest
// (hexadecimal). Current is the digest of the minutes as they stand, which the server renders
// as it decides: an approval of a text that has changed since it was read is refused.
type ApproveMinutes struct {
	Header
	Digest  string `json:"digest"`
	Lang    string `json:"lang"`
	Current string `json:"-"`
}

// MinutesApproved records that By approved the minutes whose text in Lang has the SHA-256
// Digest.
type MinutesApproved struct {
	Header
	Digest string `json:"digest"`
	Lang   string `json:"lang"`
}

func (MinutesApproved) Type() string { return "minutes.approved" }

// MinutesApproval is one approval of the minutes, as the state keeps it.
type MinutesApproval struct {
	By     Actor     `json:"by"`
	At     time.Time `json:"at"`
	Digest string    `json:"digest"`
	Lang   string    `json:"lang"`
}

func (c ApproveMinutes) decide(s *State) ([]Event, error) {
	if err := s.minutesApprovable(c.By, c.Digest, c.Lang); err != nil {
		return nil, err
	}
	if c.Digest != c.Current {
		return nil, refuse(ErrState, "the minutes have changed since they were read (their digest is now %s, not %s): read them again before approving them", c.Current, c.Digest)
	}
	return []Event{MinutesApproved{Header: c.Header, Digest: c.Digest, Lang: c.Lang}}, nil
}

func (s *State) minutesApprovable(by Actor, digest, lang string) error {
	if b, err := hex.DecodeString(digest); err != nil || len(b) != 32 {
		return refuse(ErrInvalid, "the digest %q is not a SHA-256 in 64 hexadecimal digits", digest)
	}
	switch {
	case s.session.ClosedAt.IsZero():
		return refuse(ErrState, "the minutes are approved once the sitting is closed")
	case by.Role != RoleChair && by.Role != RoleClerk:
		return refuse(ErrNotEntitled, "only the chair and the clerk approve the minutes")
	case lang == "":
		return refuse(ErrInvalid, "the approval names no language of the minutes")
	}
	for _, a := range s.approvals {
		if a.By.Identity == by.Identity && a.Digest == digest && a.Lang == lang {
			return refuse(ErrState, "%s already approved these minutes at %s", by.Identity, a.At.Format(time.RFC3339))
		}
	}
	return nil
}

func (e MinutesApproved) apply(s *State) error {
	if err := s.minutesApprovable(e.By, e.Digest, e.Lang); err != nil {
		return err
	}
	s.approvals = append(s.approvals, MinutesApproval{By: e.By, At: e.At, Digest: e.Digest, Lang: e.Lang})
	return nil
}

// MinutesApprovals lists the approvals of the minutes, oldest first.
func (s *State) MinutesApprovals() []MinutesApproval { return slices.Clone(s.approvals) }
