package auth

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultLeeway is the clock skew tolerated on exp and nbf, LiveKit's value.
const DefaultLeeway = time.Minute

// Verifier checks access tokens against the current key set. It is safe for
// concurrent use; keys can be swapped and tokens revoked while it serves.
type Verifier struct {
	keys   atomic.Pointer[KeySet]
	now    func() time.Time
	leeway time.Duration
	parser *jwt.Parser

	mu      sync.Mutex
	revoked map[string]time.Time // jti -> expiry of the revoked token
}

// VerifierOption adjusts a Verifier at construction.
type VerifierOption func(*Verifier)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) VerifierOption {
	return func(v *Verifier) { v.now = now }
}

// WithLeeway sets the clock skew tolerated on exp and nbf (default one
// minute); a negative value means none.
func WithLeeway(d time.Duration) VerifierOption {
	return func(v *Verifier) { v.leeway = max(d, 0) }
}

// NewVerifier returns a Verifier accepting tokens signed with any of keys.
func NewVerifier(keys KeySet, opts ...VerifierOption) *Verifier {
	v := &Verifier{now: time.Now, leeway: DefaultLeeway, revoked: map[string]time.Time{}}
	for _, o := range opts {
		o(v)
	}
	v.SetKeys(keys)
	// The algorithm is checked in keyFor rather than with WithValidMethods so
	// that a refused algorithm gets its own reason instead of "bad signature".
	v.parser = jwt.NewParser(
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	)
	return v
}

// SetKeys replaces the key set in one step: tokens signed with a key that is
// no longer in keys are refused from the next call on.
func (v *Verifier) SetKeys(keys KeySet) {
	own := maps.Clone(keys) // the caller may go on changing its map
	v.keys.Store(&own)
}

// Verify checks a token's signature (HS256 only, by a known key), expiry
// (required) and not-before, within the leeway, and that it is not revoked.
// Failures are *Error with the reason and HTTP status.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, unauthenticated(ReasonNoToken, "pass access_token in the query or an Authorization: Bearer header", nil)
	}
	claims := &Claims{}
	if _, err := v.parser.ParseWithClaims(token, claims, v.keyFor); err != nil {
		return nil, v.refusal(err, claims)
	}
	if err := claims.Council.check(); err != nil {
		return nil, unauthenticated(ReasonBadClaim, err.Error(), nil)
	}
	if until, ok := v.revokedUntil(claims.ID); ok {
		return nil, unauthenticated(ReasonRevoked,
			fmt.Sprintf("jti %q is revoked until %s", claims.ID, stamp(until)), nil)
	}
	return claims, nil
}

// VerifyJoin verifies a token for joining the room it names, the way LiveKit's
// /rtc takes the room from the token: roomJoin must be granted, a room named
// and an identity present.
func (v *Verifier) VerifyJoin(token string) (*Claims, error) {
	c, err := v.Verify(token)
	if err != nil {
		return nil, err
	}
	switch {
	case c.Video == nil:
		return nil, forbidden(ReasonMissingRoomJoin, "token has no video grant")
	case !c.Video.RoomJoin:
		return nil, forbidden(ReasonMissingRoomJoin, fmt.Sprintf("video grant for room %q does not allow joining", c.Video.Room))
	case c.Video.Room == "":
		// Fail closed: an empty room must not mean "any room".
		return nil, forbidden(ReasonWrongRoom, "token grants roomJoin but names no room")
	case c.ParticipantIdentity() == "":
		return nil, forbidden(ReasonNoIdentity, "token has no sub, identity or jti")
	}
	return c, nil
}

// VerifyForRoom is VerifyJoin for a caller that names the room itself (the
// /api routes): the token's room must be exactly room.
func (v *Verifier) VerifyForRoom(token, room string) (*Claims, error) {
	c, err := v.VerifyJoin(token)
	if err != nil {
		return nil, err
	}
	if c.Video.Room != room {
		return nil, forbidden(ReasonWrongRoom, fmt.Sprintf("asked for room %q, token grants room %q", room, c.Video.Room))
	}
	return c, nil
}

// Revoke refuses the token with this jti until until, which should be the
// token's expiry: after it, plus the leeway, the token is refused anyway and
// the entry is dropped.
// Tokens without a jti cannot be revoked; rotate their key instead.
func (v *Verifier) Revoke(jti string, until time.Time) {
	if jti == "" {
		return
	}
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	// Prune here rather than on a timer: revocations are rare and this keeps
	// the Verifier free of goroutines.
	for id, t := range v.revoked {
		if !v.stillAccepted(t, now) {
			delete(v.revoked, id)
		}
	}
	if v.stillAccepted(until, now) && until.After(v.revoked[jti]) {
		v.revoked[jti] = until
	}
}

func (v *Verifier) revokedUntil(jti string) (time.Time, bool) {
	if jti == "" {
		return time.Time{}, false
	}
	v.mu.Lock()
	until, ok := v.revoked[jti]
	v.mu.Unlock()
	return until, ok && v.stillAccepted(until, v.now())
}

// stillAccepted reports whether a token expiring at exp would pass the expiry
// check at now, leeway included.
func (v *Verifier) stillAccepted(exp, now time.Time) bool {
	return now.Before(exp.Add(v.leeway))
}

// keyFor is the jwt.Keyfunc: it runs after the token is decoded and before
// its signature is checked.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	if alg := t.Method.Alg(); alg != jwt.SigningMethodHS256.Alg() {
		return nil, unauthenticated(ReasonUnsupported, fmt.Sprintf("alg %q, only HS256 is accepted", alg), nil)
	}
	iss, err := t.Claims.GetIssuer()
	if err != nil || iss == "" {
		return nil, unauthenticated(ReasonUnknownKey, "token names no API key in iss", err)
	}
	secret, ok := (*v.keys.Load())[iss]
	if !ok {
		return nil, unauthenticated(ReasonUnknownKey, fmt.Sprintf("API key %q is not configured", iss), nil)
	}
	return []byte(secret), nil
}

// refusal turns a jwt parse error into an *Error; claims hold whatever was
// decoded, for the detail.
func (v *Verifier) refusal(err error, claims *Claims) *Error {
	if ae, ok := errors.AsType[*Error](err); ok {
		return ae
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthenticated(ReasonMalformed, "", err)
	case errors.Is(err, jwt.ErrTokenUnverifiable): // alg missing or unknown to the library
		return unauthenticated(ReasonUnsupported, "", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return unauthenticated(ReasonBadSignature, fmt.Sprintf("signature does not match API key %q", claims.Issuer), err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return unauthenticated(ReasonNoExpiry, "token has no exp claim", err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthenticated(ReasonExpired, fmt.Sprintf("expired at %s, now %s (leeway %s)",
			stamp(claims.ExpiresAt.Time), stamp(v.now()), v.leeway), err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return unauthenticated(ReasonNotYetValid, fmt.Sprintf("valid from %s, now %s (leeway %s)",
			stamp(claims.NotBefore.Time), stamp(v.now()), v.leeway), err)
	default:
		return unauthenticated(ReasonMalformed, "", err)
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
