package council

import (
	"errors"
	"fmt"
)

// Kinds of refusal. Decide wraps them in a *RuleError whose message gives
// the figures, so callers can both test the kind (errors.Is) and show the
// message as it is.
var (
	ErrNoQuorum         = errors.New("quorum not reached")
	ErrProxyCap         = errors.New("proxy cap reached")
	ErrNotPresent       = errors.New("member not present")
	ErrInPersonOnly     = errors.New("item must be decided in person")
	ErrRemoteNotAllowed = errors.New("remote participation not allowed")
	ErrVoteMode         = errors.New("vote mode not allowed")
	ErrAlreadyVoted     = errors.New("ballot already cast")
	ErrNotVoted         = errors.New("members present have not voted")
	ErrNotEntitled      = errors.New("actor not entitled")
	ErrUnknown          = errors.New("unknown seat, item or vote")
	ErrState            = errors.New("not possible now")
	ErrInvalid          = errors.New("invalid command")
)

// RuleError is a refusal: Kind is one of the Err* values above, and the
// message says what was wrong in the body's own terms.
type RuleError struct {
	Kind error
	Msg  string
	// Fr is the same refusal in French, for the French console and the minutes' language;
	// refusals written before it are in English only.
	Fr string
}

func (e *RuleError) Error() string { return e.Msg }

// In gives the refusal in a language of LabelsFor (fr or en), in English when it has no
// words in that language.
func (e *RuleError) In(lang string) string {
	if lang == "fr" && e.Fr != "" {
		return e.Fr
	}
	return e.Msg
}
func (e *RuleError) Unwrap() error { return e.Kind }

func refuse(kind error, format string, args ...any) error {
	return &RuleError{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// refuseEnFr is refuse with the French words too; both formats take the same arguments.
func refuseEnFr(kind error, en, fr string, args ...any) error {
	return &RuleError{Kind: kind, Msg: fmt.Sprintf(en, args...), Fr: fmt.Sprintf(fr, args...)}
}

// QuorumError is returned when an item or a vote cannot open for want of a
// quorum; it carries the figures so a console can show them.
type QuorumError struct {
	Quorum Quorum
	// What was being opened, e.g. `item "3"` or `vote "3-1"`.
	Opening string
}

func (e *QuorumError) Error() string {
	return fmt.Sprintf("%s cannot open: %s", e.Opening, e.Quorum.String())
}

func (e *QuorumError) Unwrap() error { return ErrNoQuorum }
