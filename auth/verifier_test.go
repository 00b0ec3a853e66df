package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testKey    = "APIhemicycle"
	testSecret = "a-secret-of-at-least-thirty-two-bytes!"
	otherKey   = "APIother"
	otherSec   = "another-secret-of-thirty-two-bytes-or-more"
)

// t0 is the verifier's "now" in every test that does not move the clock.
var t0 = time.Date(2026, 3, 2, 18, 30, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// mustIssue issues a member token for room "conseil" at now, for ttl.
func mustIssue(t testing.TB, mod func(*TokenOptions)) string {
	t.Helper()
	o := TokenOptions{
		Key: testKey, Secret: testSecret, Identity: "m-12", Name: "Claire Dupont",
		Room: "conseil", TTL: time.Hour, Now: t0,
		Video:   GrantsForRole(RoleMember, "conseil"),
		Council: &CouncilGrant{Role: RoleMember, Seat: 12, Body: "ville-a"},
	}
	if mod != nil {
		mod(&o)
	}
	tok, err := Issue(o)
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	return tok
}

// sign builds a token by hand, for the shapes Issue refuses to make.
func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return tok
}

func joinClaims(iss string, iat time.Time, ttl time.Duration) *Claims {
	return &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: iss, Subject: "m-12", ID: "jti-1",
			IssuedAt: jwt.NewNumericDate(iat), NotBefore: jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(iat.Add(ttl)),
		},
		Video: &VideoGrant{RoomJoin: true, Room: "conseil"},
	}
}

func TestVerify(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := mustIssue(t, nil)
	parts := strings.Split(good, ".")
	// Same signature over a payload naming another room: a forgery.
	otherRoom := strings.Split(mustIssue(t, func(o *TokenOptions) { o.Room, o.Video = "autre", GrantsForRole(RoleChair, "autre") }), ".")
	tampered := parts[0] + "." + otherRoom[1] + "." + parts[2]

	noExp := joinClaims(testKey, t0, time.Hour)
	noExp.ExpiresAt = nil
	noIss := joinClaims("", t0, time.Hour)
	badRole := joinClaims(testKey, t0, time.Hour)
	badRole.Council = &CouncilGrant{Role: "mayor"}
	negSeat := joinClaims(testKey, t0, time.Hour)
	negSeat.Council = &CouncilGrant{Role: RoleMember, Seat: -3}
	// A well-signed token whose hemicycle claim has the wrong JSON type.
	wrongType := sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{
		"iss": testKey, "sub": "x", "exp": t0.Add(time.Hour).Unix(), "hemicycle": "chair",
	})
	unknownAlg := fmt.Sprintf("%s.%s.%s",
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XX99","typ":"JWT"}`)), parts[1], parts[2])

	tests := []struct {
		name   string
		token  string
		reason Reason // "" means accepted
	}{
		{"valid", good, ""},
		{"forged signature (wrong secret)", mustIssue(t, func(o *TokenOptions) { o.Secret = "not-the-secret-not-the-secret-not!" }), ReasonBadSignature},
		{"payload swapped under a signature", tampered, ReasonBadSignature},
		{"unknown API key", mustIssue(t, func(o *TokenOptions) { o.Key = "APIstranger" }), ReasonUnknownKey},
		{"no iss", sign(t, jwt.SigningMethodHS256, []byte(testSecret), noIss), ReasonUnknownKey},
		{"expired beyond leeway", mustIssue(t, func(o *TokenOptions) { o.Now = t0.Add(-2 * time.Hour) }), ReasonExpired},
		{"expired exactly one leeway ago", mustIssue(t, func(o *TokenOptions) { o.Now = t0.Add(-time.Hour - time.Minute) }), ReasonExpired},
		{"expired within leeway", mustIssue(t, func(o *TokenOptions) { o.Now = t0.Add(-time.Hour - 30*time.Second) }), ""},
		{"nbf in the future", mustIssue(t, func(o *TokenOptions) { o.Now = t0.Add(5 * time.Minute) }), ReasonNotYetValid},
		{"nbf within leeway", mustIssue(t, func(o *TokenOptions) { o.Now = t0.Add(30 * time.Second) }), ""},
		{"no exp", sign(t, jwt.SigningMethodHS256, []byte(testSecret), noExp), ReasonNoExpiry},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, joinClaims(testKey, t0, time.Hour)), ReasonUnsupported},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, joinClaims(testKey, t0, time.Hour)), ReasonUnsupported},
		{"HS512 with the right secret", sign(t, jwt.SigningMethodHS512, []byte(testSecret), joinClaims(testKey, t0, time.Hour)), ReasonUnsupported},
		{"alg unknown to the library", unknownAlg, ReasonUnsupported},
		{"empty", "", ReasonNoToken},
		{"not a JWT", "hello", ReasonMalformed},
		{"bad base64", "a.b.c", ReasonMalformed},
		{"hemicycle claim of the wrong type", wrongType, ReasonMalformed},
		{"unknown role", sign(t, jwt.SigningMethodHS256, []byte(testSecret), badRole), ReasonBadClaim},
		{"negative seat", sign(t, jwt.SigningMethodHS256, []byte(testSecret), negSeat), ReasonBadClaim},
	}
	v := NewVerifier(KeySet{testKey: testSecret, otherKey: otherSec}, WithClock(fixedClock(t0)))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(tc.token)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.ParticipantIdentity() != "m-12" || c.Issuer != testKey {
					t.Fatalf("claims = sub %q iss %q", c.ParticipantIdentity(), c.Issuer)
				}
				return
			}
			if c != nil {
				t.Fatalf("claims returned with an error")
			}
			assertRefused(t, err, tc.reason, http.StatusUnauthorized)
		})
	}
}

func assertRefused(t *testing.T, err error, reason Reason, status int) *Error {
	t.Helper()
	ae, ok := errors.AsType[*Error](err)
	if !ok {
		t.Fatalf("err = %v (%T), want *Error %q", err, err, reason)
	}
	if ae.Reason != reason || ae.Status != status || HTTPStatus(err) != status {
		t.Fatalf("got %q/%d (HTTPStatus %d), want %q/%d: %v", ae.Reason, ae.Status, HTTPStatus(err), reason, status, err)
	}
	if !strings.Contains(err.Error(), string(reason)) {
		t.Fatalf("message %q does not say %q", err.Error(), reason)
	}
	return ae
}

func TestVerifyReturnsClaims(t *testing.T) {
	v := NewVerifier(KeySet{testKey: testSecret}, WithClock(fixedClock(t0)))
	tok := mustIssue(t, func(o *TokenOptions) {
		o.Metadata = `{"party":"indépendant"}`
		o.Attributes = map[string]string{"commune": "A"}
	})
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "Claire Dupont" || c.Metadata != `{"party":"indépendant"}` || c.Attributes["commune"] != "A" {
		t.Errorf("name/metadata/attributes = %q %q %v", c.Name, c.Metadata, c.Attributes)
	}
	if c.Role() != RoleMember || c.Council.Seat != 12 || c.Council.Body != "ville-a" {
		t.Errorf("council = %+v", c.Council)
	}
	if !c.CanPublish() || !c.CanSubscribe() || !c.CanPublishData() || c.CanAdminRoom("conseil") {
		t.Errorf("member permissions wrong: %+v", c.Video)
	}
	if !c.ExpiresAt.Equal(t0.Add(time.Hour)) || !c.NotBefore.Equal(t0) || !c.IssuedAt.Equal(t0) {
		t.Errorf("times: iat %v nbf %v exp %v", c.IssuedAt, c.NotBefore, c.ExpiresAt)
	}
}

func TestErrorDetailsAndUnwrap(t *testing.T) {
	v := NewVerifier(KeySet{testKey: testSecret}, WithClock(fixedClock(t0)))
	_, err := v.Verify(mustIssue(t, func(o *TokenOptions) { o.Now = t0.Add(-3 * time.Hour) }))
	ae := assertRefused(t, err, ReasonExpired, http.StatusUnauthorized)
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("the jwt cause is not reachable through Unwrap: %v", err)
	}
	if !strings.Contains(ae.Detail, "2026-03-02T16:30:00Z") {
		t.Errorf("detail %q does not give the expiry", ae.Detail)
	}

	_, err = v.Verify(mustIssue(t, func(o *TokenOptions) { o.Key = "APIgone" }))
	if ae := assertRefused(t, err, ReasonUnknownKey, http.StatusUnauthorized); !strings.Contains(ae.Detail, "APIgone") {
		t.Errorf("detail %q does not name the key", ae.Detail)
	}

	wrapped := fmt.Errorf("join: %w", err)
	if HTTPStatus(wrapped) != http.StatusUnauthorized {
		t.Errorf("HTTPStatus does not see through wrapping")
	}
	if HTTPStatus(nil) != http.StatusOK || HTTPStatus(errors.New("disk full")) != http.StatusInternalServerError {
		t.Errorf("HTTPStatus(nil)=%d, HTTPStatus(other)=%d", HTTPStatus(nil), HTTPStatus(errors.New("x")))
	}
}

func TestVerifyForRoom(t *testing.T) {
	noVideo := joinClaims(testKey, t0, time.Hour)
	noVideo.Video = nil
	noJoin := joinClaims(testKey, t0, time.Hour)
	noJoin.Video.RoomJoin = false
	noRoom := joinClaims(testKey, t0, time.Hour)
	noRoom.Video.Room = ""
	anonymous := joinClaims(testKey, t0, time.Hour)
	anonymous.Subject, anonymous.ID = "", ""
	byJTI := joinClaims(testKey, t0, time.Hour)
	byJTI.Subject = ""

	hs := func(c *Claims) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), c) }
	tests := []struct {
		name   string
		token  string
		room   string
		reason Reason
		status int
	}{
		{"granted room", mustIssue(t, nil), "conseil", "", 0},
		{"identity from jti", hs(byJTI), "conseil", "", 0},
		{"wrong room", mustIssue(t, nil), "commission", ReasonWrongRoom, http.StatusForbidden},
		{"empty room asked", mustIssue(t, nil), "", ReasonWrongRoom, http.StatusForbidden},
		{"no video grant", hs(noVideo), "conseil", ReasonMissingRoomJoin, http.StatusForbidden},
		{"roomJoin false", hs(noJoin), "conseil", ReasonMissingRoomJoin, http.StatusForbidden},
		{"grant names no room", hs(noRoom), "", ReasonWrongRoom, http.StatusForbidden},
		{"no identity at all", hs(anonymous), "conseil", ReasonNoIdentity, http.StatusForbidden},
		{"authentication still comes first", mustIssue(t, func(o *TokenOptions) { o.Now = t0.Add(-5 * time.Hour) }), "commission", ReasonExpired, http.StatusUnauthorized},
	}
	v := NewVerifier(KeySet{testKey: testSecret}, WithClock(fixedClock(t0)))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.VerifyForRoom(tc.token, tc.room)
			if tc.reason == "" {
				if err != nil || c.Room() != tc.room {
					t.Fatalf("refused or wrong room: %v", err)
				}
				return
			}
			assertRefused(t, err, tc.reason, tc.status)
		})
	}

	_, err := v.VerifyForRoom(mustIssue(t, nil), "commission")
	if ae := assertRefused(t, err, ReasonWrongRoom, http.StatusForbidden); !strings.Contains(ae.Detail, `"commission"`) || !strings.Contains(ae.Detail, `"conseil"`) {
		t.Errorf("detail %q should name the room asked and the room granted", ae.Detail)
	}
}

func TestVerifyJoinTakesRoomFromToken(t *testing.T) {
	v := NewVerifier(KeySet{testKey: testSecret}, WithClock(fixedClock(t0)))
	c, err := v.VerifyJoin(mustIssue(t, func(o *TokenOptions) { o.Room, o.Video = "bureau", GrantsForRole(RoleViewer, "bureau") }))
	if err != nil {
		t.Fatal(err)
	}
	if c.Room() != "bureau" || c.CanPublish() || !c.Video.Hidden {
		t.Errorf("viewer claims = %+v", c.Video)
	}
}

func TestRevoke(t *testing.T) {
	now := t0
	v := NewVerifier(KeySet{testKey: testSecret}, WithClock(func() time.Time { return now }))
	tok := mustIssue(t, nil)
	other := mustIssue(t, nil)
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	v.Revoke(c.ID, c.ExpiresAt.Time)

	_, err = v.Verify(tok)
	if ae := assertRefused(t, err, ReasonRevoked, http.StatusUnauthorized); !strings.Contains(ae.Detail, c.ID) {
		t.Errorf("detail %q does not name the jti", ae.Detail)
	}
	if _, err := v.Verify(other); err != nil {
		t.Errorf("a sibling token (other jti) was refused: %v", err)
	}
	_, err = v.VerifyForRoom(tok, "conseil")
	assertRefused(t, err, ReasonRevoked, http.StatusUnauthorized)

	// Within the leeway after exp the token would still pass, so must the revocation.
	now = c.ExpiresAt.Add(30 * time.Second)
	_, err = v.Verify(tok)
	assertRefused(t, err, ReasonRevoked, http.StatusUnauthorized)

	// Once the token is dead anyway, the entry is pruned on the next Revoke.
	now = c.ExpiresAt.Add(2 * time.Minute)
	_, err = v.Verify(tok)
	assertRefused(t, err, ReasonExpired, http.StatusUnauthorized)
	v.Revoke("another", now.Add(time.Hour))
	v.Revoke("already-dead", now.Add(-time.Hour))
	v.Revoke("", now.Add(time.Hour))
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.revoked[c.ID]; ok || len(v.revoked) != 1 {
		t.Errorf("revocation list = %v, want only \"another\"", v.revoked)
	}
}

func TestRotation(t *testing.T) {
	keys := KeySet{testKey: testSecret, otherKey: otherSec}
	v := NewVerifier(keys, WithClock(fixedClock(t0)))
	oldTok := mustIssue(t, nil)
	newTok := mustIssue(t, func(o *TokenOptions) { o.Key, o.Secret = otherKey, otherSec })
	for _, tok := range []string{oldTok, newTok} {
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("before rotation: %v", err)
		}
	}

	// The verifier keeps its own copy: editing the caller's map changes nothing.
	delete(keys, otherKey)
	if _, err := v.Verify(newTok); err != nil {
		t.Fatalf("verifier saw a change to the caller's map: %v", err)
	}

	v.SetKeys(KeySet{otherKey: otherSec})
	_, err := v.Verify(oldTok)
	assertRefused(t, err, ReasonUnknownKey, http.StatusUnauthorized)
	if _, err := v.Verify(newTok); err != nil {
		t.Fatalf("new key refused after rotation: %v", err)
	}

	// Same key name, new secret: tokens signed with the old secret are forgeries now.
	v.SetKeys(KeySet{otherKey: "a-fresh-secret-for-the-same-api-key!!"})
	_, err = v.Verify(newTok)
	assertRefused(t, err, ReasonBadSignature, http.StatusUnauthorized)
}

func TestLeewayOption(t *testing.T) {
	tok := mustIssue(t, func(o *TokenOptions) { o.Now = t0.Add(-time.Hour - 30*time.Second) }) // expired 30 s ago
	strict := NewVerifier(KeySet{testKey: testSecret}, WithClock(fixedClock(t0)), WithLeeway(-time.Second))
	_, err := strict.Verify(tok)
	assertRefused(t, err, ReasonExpired, http.StatusUnauthorized)
	lax := NewVerifier(KeySet{testKey: testSecret}, WithClock(fixedClock(t0)), WithLeeway(5*time.Minute))
	if _, err := lax.Verify(mustIssue(t, func(o *TokenOptions) { o.Now = t0.Add(-time.Hour - 4*time.Minute) })); err != nil {
		t.Errorf("5-minute leeway refused a token expired 4 minutes ago: %v", err)
	}
}

// TestConcurrentUse runs verification, rotation and revocation together; the
// race detector is the judge, plus each outcome must be one the state allows.
func TestConcurrentUse(t *testing.T) {
	v := NewVerifier(KeySet{testKey: testSecret, otherKey: otherSec}, WithClock(fixedClock(t0)))
	stable := mustIssue(t, func(o *TokenOptions) { o.Key, o.Secret = otherKey, otherSec })
	rotating := mustIssue(t, nil)

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if _, err := v.Verify(stable); err != nil {
					errs <- fmt.Errorf("stable token refused: %w", err)
					return
				}
				_, err := v.Verify(rotating)
				if r := reasonOf(err); err != nil && r != ReasonUnknownKey && r != ReasonRevoked {
					errs <- fmt.Errorf("rotating token: unexpected %w", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			if i%2 == 0 {
				v.SetKeys(KeySet{otherKey: otherSec})
			} else {
				v.SetKeys(KeySet{testKey: testSecret, otherKey: otherSec})
			}
			v.Revoke(fmt.Sprintf("jti-%d", i), t0.Add(time.Hour))
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func reasonOf(err error) Reason {
	if ae, ok := errors.AsType[*Error](err); ok {
		return ae.Reason
	}
	return ""
}

func BenchmarkVerify(b *testing.B) {
	v := NewVerifier(KeySet{testKey: testSecret}, WithClock(fixedClock(t0)))
	tok := mustIssue(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	v := NewVerifier(KeySet{testKey: testSecret}, WithClock(fixedClock(t0)))
	v.Revoke("someone-else", t0.Add(time.Hour))
	tok := mustIssue(b, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkIssue(b *testing.B) {
	o := TokenOptions{Key: testKey, Secret: testSecret, Identity: "m-12", Room: "conseil",
		Video: GrantsForRole(RoleMember, "conseil"), Council: &CouncilGrant{Role: RoleMember, Seat: 12}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Issue(o); err != nil {
			b.Fatal(err)
		}
	}
}
