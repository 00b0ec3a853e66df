package signalingtest

import (
	"testing"
	"time"

	"github.com/ingeco/hemicycle/auth"
)

// Keys is an API key pair that servers verify tokens with and tests sign them with.
type Keys struct{ Key, Secret string }

var (
	// TestKeys are the keys of the servers the suites start, in process or as processes.
	TestKeys = Keys{Key: "testkey", Secret: "a-test-secret-long-enough-for-hs256-keys"}
	// DevKeys are those of `hemicycle --dev` (LiveKit's development convention).
	DevKeys = Keys{Key: "devkey", Secret: "secret"}
)

// KeySet is what a verifier of these keys is built from.
func (k Keys) KeySet() auth.KeySet { return auth.KeySet{k.Key: k.Secret} }

// Token mints an hour's token for identity in room with a council role and seat (0 for none),
// named after its identity.
func (k Keys) Token(t testing.TB, room, identity string, role auth.Role, seat int) string {
	t.Helper()
	return k.Mint(t, auth.TokenOptions{
		Identity: identity, Name: identity, Room: room,
		Video: auth.GrantsForRole(role, room), Council: &auth.CouncilGrant{Role: role, Seat: seat},
	})
}

// BodyToken is an hour's token for identity in a body's office (no room): a clerk preparing
// its sittings, a chair reading them.
func (k Keys) BodyToken(t testing.TB, body, identity string, role auth.Role) string {
	t.Helper()
	return k.Mint(t, auth.TokenOptions{Identity: identity, Name: identity, Council: &auth.CouncilGrant{Role: role, Body: body}})
}

// AdminToken may create and list rooms, and administer room when it is not empty.
func (k Keys) AdminToken(t testing.TB, room string) string {
	t.Helper()
	return k.Mint(t, auth.TokenOptions{
		Identity: "admin", Video: auth.VideoGrant{RoomCreate: true, RoomList: true, RoomAdmin: room != "", Room: room},
	})
}

// Mint signs a token of any shape (expired, without a join grant, for another key): the key,
// secret and validity (an hour) it leaves empty are k's.
func (k Keys) Mint(t testing.TB, opts auth.TokenOptions) string {
	t.Helper()
	if opts.Key == "" {
		opts.Key = k.Key
	}
	if opts.Secret == "" {
		opts.Secret = k.Secret
	}
	if opts.TTL == 0 {
		opts.TTL = time.Hour
	}
	tok, err := auth.Issue(opts)
	if err != nil {
		t.Fatalf("mint a token for %q: %v", opts.Identity, err)
	}
	return tok
}
