package auth

import (
	"strings"
	"testing"
	"time"
)

func TestIssueSetsRegisteredClaims(t *testing.T) {
	v := NewVerifier(KeySet{testKey: testSecret}, WithClock(fixedClock(t0)))
	a, err := v.Verify(mustIssue(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.Verify(mustIssue(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if a.Issuer != testKey || a.Subject != "m-12" || a.Identity != "m-12" {
		t.Errorf("iss %q sub %q identity %q", a.Issuer, a.Subject, a.Identity)
	}
	if len(a.ID) < 20 || a.ID == b.ID {
		t.Errorf("jti %q and %q: want long random ids, different per token", a.ID, b.ID)
	}

	// TTL 0 means DefaultTTL; Now zero means the real clock.
	tok, err := Issue(TokenOptions{Key: testKey, Secret: testSecret, Identity: "x"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewVerifier(KeySet{testKey: testSecret}).Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ExpiresAt.Sub(c.IssuedAt.Time); got != DefaultTTL {
		t.Errorf("default lifetime %s, want %s", got, DefaultTTL)
	}
	if c.Video != nil || c.Council != nil {
		t.Errorf("an empty grant was written: video %+v council %+v", c.Video, c.Council)
	}
}

func TestIssueRoomFillsGrant(t *testing.T) {
	v := NewVerifier(KeySet{testKey: testSecret}, WithClock(fixedClock(t0)))
	tok := mustIssue(t, func(o *TokenOptions) { o.Video = VideoGrant{RoomJoin: true} })
	if _, err := v.VerifyForRoom(tok, "conseil"); err != nil {
		t.Fatalf("Room did not reach the video grant: %v", err)
	}
}

func TestIssueRefuses(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*TokenOptions)
		mention string
	}{
		{"no key", func(o *TokenOptions) { o.Key = "" }, "key and secret are required"},
		{"no secret", func(o *TokenOptions) { o.Secret = "" }, "key and secret are required"},
		{"negative TTL", func(o *TokenOptions) { o.TTL = -time.Minute }, "negative TTL"},
		{"rooms disagree", func(o *TokenOptions) { o.Room = "commission" }, `room "commission" disagrees with the video grant's room "conseil"`},
		{"join without room", func(o *TokenOptions) { o.Room, o.Video.Room = "", "" }, "roomJoin granted without a room"},
		{"join without identity", func(o *TokenOptions) { o.Identity = "" }, "needs an identity"},
		{"unknown role", func(o *TokenOptions) { o.Council.Role = "mayor" }, `role "mayor"`},
		{"negative seat", func(o *TokenOptions) { o.Council.Seat = -1 }, "seat -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := TokenOptions{Key: testKey, Secret: testSecret, Identity: "m-12", Room: "conseil",
				Video: GrantsForRole(RoleMember, "conseil"), Council: &CouncilGrant{Role: RoleMember, Seat: 12}}
			tc.mod(&o)
			tok, err := Issue(o)
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("Issue = %q, %v; want an error saying %q", tok, err, tc.mention)
			}
		})
	}
}

func TestGrantsForRole(t *testing.T) {
	type perms struct{ join, admin, hidden, pub, sub, data bool }
	tests := []struct {
		role Role
		want perms
	}{
		{RoleChair, perms{join: true, admin: true, pub: true, sub: true, data: true}},
		{RoleClerk, perms{join: true, admin: true, pub: true, sub: true, data: true}},
		{RoleMember, perms{join: true, pub: true, sub: true, data: true}},
		{RoleAgent, perms{join: true, pub: true, sub: true, data: true}},
		{RoleCaptioner, perms{join: true, pub: true, sub: true, data: true}},
		{RoleInterpreter, perms{join: true, pub: true, sub: true, data: true}},
		{RoleViewer, perms{join: true, hidden: true, sub: true}},
		{"", perms{}},
		{"mayor", perms{}},
	}
	for _, tc := range tests {
		g := GrantsForRole(tc.role, "conseil")
		got := perms{g.RoomJoin, g.RoomAdmin, g.Hidden, g.AllowsPublish(), g.AllowsSubscribe(), g.AllowsPublishData()}
		if got != tc.want || g.Room != "conseil" {
			t.Errorf("%q: got %+v in room %q, want %+v", tc.role, got, g.Room, tc.want)
		}
		c := Claims{Video: &g}
		if tc.role.Valid() && c.CanAdminRoom("conseil") != tc.want.admin {
			t.Errorf("%q: CanAdminRoom = %v", tc.role, c.CanAdminRoom("conseil"))
		}
	}
	// Each call owns its pointers: changing one grant must not change another.
	a, b := GrantsForRole(RoleMember, "r"), GrantsForRole(RoleMember, "r")
	*a.CanPublish = false
	if !b.AllowsPublish() {
		t.Error("grants share permission pointers")
	}
}
