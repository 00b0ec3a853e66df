package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lkauth "github.com/livekit/protocol/auth"
)

// FuzzVerifyJoin verifies a token of any shape, as /rtc and /api receive them. A refusal is an
// *Error with a reason and a 401 or 403; a token admitted is signed with HS256 by the one key
// the verifier holds, is not expired, and names a room and an identity.
func FuzzVerifyJoin(f *testing.F) {
	f.Add(mustIssue(f, nil))
	f.Add(mustIssue(f, func(o *TokenOptions) { o.Video = GrantsForRole(RoleChair, "conseil"); o.Council.Role = RoleChair }))
	f.Add(mustIssue(f, func(o *TokenOptions) { o.Now = t0.Add(-2 * time.Hour) })) // expired
	f.Add(mustIssue(f, func(o *TokenOptions) { o.Secret = otherSec }))            // forged
	f.Add(sign(f, jwt.SigningMethodHS512, []byte(testSecret), joinClaims(testKey, t0, time.Hour)))
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, joinClaims(testKey, t0, time.Hour)))
	lg := &lkauth.VideoGrant{RoomJoin: true, Room: "conseil"}
	lk, err := lkauth.NewAccessToken(testKey, testSecret).SetVideoGrant(lg).SetIdentity("alice").SetValidFor(10 * time.Minute).ToJWT()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(lk)
	f.Add("")
	f.Add("a.b.c")

	v := NewVerifier(KeySet{testKey: testSecret}, WithClock(fixedClock(t0)))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.VerifyJoin(token)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" || (e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden) {
				t.Fatalf("refusal %T %v is not an *Error with a reason and a 401 or 403", err, err)
			}
			return
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("admitted a token of %d parts", len(parts))
		}
		mac := hmac.New(sha256.New, []byte(testSecret))
		mac.Write([]byte(parts[0] + "." + parts[1]))
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("admitted a token not signed with HS256 by the key: %q", token)
		}
		if c.Issuer != testKey {
			t.Fatalf("admitted a token issued by %q", c.Issuer)
		}
		if c.ExpiresAt == nil || !c.ExpiresAt.Add(DefaultLeeway).After(t0) {
			t.Fatalf("admitted a token expired at %v", c.ExpiresAt)
		}
		if c.Video == nil || c.Video.Room == "" || !c.Video.RoomJoin || c.ParticipantIdentity() == "" {
			t.Fatalf("admitted a token without a room or identity: %+v", c)
		}
	})
}
