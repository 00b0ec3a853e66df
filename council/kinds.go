package council

import (
	"fmt"
	"slices"
	"strings"
)

// ItemKind is one kind of agenda item in the profile's closed list, with the rules that go
// with it: how it is decided, whether it is secret, whether it is taken in person only and
// whether the chair must withdraw.
type ItemKind struct {
	Name string
	Vote KindVote
	// Secret: on-request (the ordinary vote, secret when enough members ask), default (secret
	// unless the body unanimously decides otherwise) or required (always secret).
	Secret KindSecret
	// InPerson: the item can neither be opened nor voted while remote members take part.
	InPerson bool
	// ChairWithdraws: the member who opened the sitting as chair may not preside over the item
	// and must have withdrawn when its vote opens (the mayor's own accounts).
	ChairWithdraws bool
}

// KindVote is how an item of a kind is decided.
type KindVote string

const (
	VoteMotion       KindVote = "motion"        // for, against, abstain
	VoteElection     KindVote = "election"      // candidates, rounds, one place
	VoteListElection KindVote = "list-election" // lists, seats shared proportionally
	VoteNone         KindVote = "none"          // nothing is voted (information)
)

// KindSecret is a kind's rule on the secret ballot.
type KindSecret string

const (
	SecretOnRequest KindSecret = "on-request"
	SecretByDefault KindSecret = "default"
	SecretRequired  KindSecret = "required"
)

// DefaultKind is the kind of an item added without one.
const DefaultKind = "deliberation"

// Kinds lists the profile's item kinds, in the profile's order.
func (p *Profile) Kinds() []ItemKind { return slices.Clone(p.Items) }

// Kind returns the rules of an item kind, "" meaning DefaultKind.
func (p *Profile) Kind(name string) (ItemKind, bool) {
	if name == "" {
		name = DefaultKind
	}
	i := slices.IndexFunc(p.Items, func(k ItemKind) bool { return k.Name == name })
	if i < 0 {
		return ItemKind{}, false
	}
	return p.Items[i], true
}

// kindNames lists the valid kinds for a refusal.
func (p *Profile) kindNames() string {
	names := make([]string, len(p.Items))
	for i, k := range p.Items {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}

// kindOf returns the rules of an item's kind. A journal written before kinds were a closed
// list may hold a kind the profile does not know: it then has no special rule.
func (s *State) kindOf(it *Item) ItemKind {
	k, ok := s.profile.Kind(it.Kind)
	if !ok {
		return ItemKind{Name: it.Kind, Vote: VoteMotion, Secret: SecretOnRequest}
	}
	return k
}

// itemKindFile is one entry of the profile's items list.
type itemKindFile struct {
	Kind           *string `yaml:"kind"`
	Vote           *string `yaml:"vote"`
	Secret         *string `yaml:"secret"`
	InPerson       *bool   `yaml:"in_person"`
	ChairWithdraws *bool   `yaml:"chair_withdraws"`
}

func parseKinds(c *profileCheck, list *[]itemKindFile) []ItemKind {
	if list == nil {
		c.missing("items")
		return nil
	}
	var out []ItemKind
	for i, f := range *list {
		field := fmt.Sprintf("items[%d]", i)
		k := ItemKind{
			Name:           str(c, field+".kind", f.Kind),
			Vote:           oneOf(c, field+".vote", f.Vote, VoteMotion, VoteElection, VoteListElection, VoteNone),
			Secret:         oneOf(c, field+".secret", f.Secret, SecretOnRequest, SecretByDefault, SecretRequired),
			InPerson:       boolean(c, field+".in_person", f.InPerson),
			ChairWithdraws: boolean(c, field+".chair_withdraws", f.ChairWithdraws),
		}
		if slices.ContainsFunc(out, func(o ItemKind) bool { return o.Name == k.Name }) {
			c.bad(field+".kind", "%q listed twice", k.Name)
		}
		if k.Vote == VoteNone && k.Secret != SecretOnRequest {
			c.bad(field+".secret", "an item with nothing to vote cannot be secret")
		}
		out = append(out, k)
	}
	if !slices.ContainsFunc(out, func(k ItemKind) bool { return k.Name == DefaultKind }) {
		c.bad("items", "the list must hold %q, the kind of an item added without one", DefaultKind)
	}
	return out
}
