package auth

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestRoles(t *testing.T) {
	for _, r := range Roles() {
		if !r.Valid() {
			t.Errorf("%q listed but not valid", r)
		}
		got, err := ParseRole(" " + strings.ToUpper(string(r)) + " ")
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	if len(Roles()) != 7 {
		t.Errorf("Roles() = %v, want the seven roles of DESIGN.md", Roles())
	}
	for _, bad := range []string{"", "mayor", "chairs", "vi ewer"} {
		if Role(bad).Valid() {
			t.Errorf("%q is valid", bad)
		}
		if _, err := ParseRole(bad); err == nil || !strings.Contains(err.Error(), "chair, clerk") {
			t.Errorf("ParseRole(%q) err = %v, want the list of roles", bad, err)
		}
	}
}

func TestParticipantIdentity(t *testing.T) {
	tests := []struct {
		sub, identity, jti, want string
	}{
		{"alice", "alice", "j1", "alice"},
		{"alice", "other", "j1", "alice"},
		{"", "bob", "j1", "bob"},
		{"", "", "j1", "j1"},
		{"", "", "", ""},
	}
	for _, tc := range tests {
		c := Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: tc.sub, ID: tc.jti}, Identity: tc.identity}
		if got := c.ParticipantIdentity(); got != tc.want {
			t.Errorf("sub %q identity %q jti %q: got %q, want %q", tc.sub, tc.identity, tc.jti, got, tc.want)
		}
	}
}

func TestTriStatePermissions(t *testing.T) {
	type want struct{ pub, sub, data, camera, screen, meta bool }
	tests := []struct {
		name  string
		video *VideoGrant
		want  want
	}{
		{"no video grant allows nothing", nil, want{}},
		{"all absent: allowed, metadata denied", &VideoGrant{}, want{true, true, true, true, true, false}},
		{"canSubscribe false", &VideoGrant{CanSubscribe: new(false)}, want{true, false, true, true, true, false}},
		{"canPublish false, data follows", &VideoGrant{CanPublish: new(false)}, want{false, true, false, false, false, false}},
		{"canPublish false, data kept", &VideoGrant{CanPublish: new(false), CanPublishData: new(true)}, want{false, true, true, false, false, false}},
		{"data refused alone", &VideoGrant{CanPublishData: new(false)}, want{true, true, false, true, true, false}},
		{"sources restrict", &VideoGrant{CanPublishSources: []string{SourceCamera, SourceMicrophone}}, want{true, true, true, true, false, false}},
		{"canPublish false beats sources", &VideoGrant{CanPublish: new(false), CanPublishSources: []string{SourceCamera}}, want{false, true, false, false, false, false}},
		{"metadata granted", &VideoGrant{CanUpdateOwnMetadata: new(true)}, want{true, true, true, true, true, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Claims{Video: tc.video}
			got := want{c.CanPublish(), c.CanSubscribe(), c.CanPublishData(),
				c.CanPublishSource(SourceCamera), c.CanPublishSource(SourceScreenShare), c.Video.AllowsOwnMetadataUpdate()}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestClaimsRoleAndAdmin(t *testing.T) {
	plain := Claims{Video: &VideoGrant{RoomJoin: true, Room: "r"}}
	if plain.Role() != "" {
		t.Errorf("plain LiveKit token has role %q", plain.Role())
	}
	chair := Claims{Video: &VideoGrant{RoomAdmin: true, Room: "r"}, Council: &CouncilGrant{Role: RoleChair}}
	if chair.Role() != RoleChair || !chair.CanAdminRoom("r") || chair.CanAdminRoom("s") || chair.CanAdminRoom("") {
		t.Errorf("chair: role %q admin(r)=%v admin(s)=%v", chair.Role(), chair.CanAdminRoom("r"), chair.CanAdminRoom("s"))
	}
	roomless := Claims{Video: &VideoGrant{RoomAdmin: true}}
	if roomless.CanAdminRoom("") || roomless.Room() != "" || (&Claims{}).Room() != "" {
		t.Errorf("a roomAdmin grant without a room administers nothing")
	}
}

// TestJSONNames pins the wire names: LiveKit's for the video grant, ours for
// the hemicycle claim.
func TestJSONNames(t *testing.T) {
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: "k", Subject: "s", ID: "j"},
		Identity:         "s", Name: "n", Metadata: "m", Attributes: map[string]string{"a": "b"},
		Video: &VideoGrant{RoomCreate: true, RoomList: true, RoomRecord: true, RoomAdmin: true, RoomJoin: true, Room: "r",
			CanPublish: new(true), CanSubscribe: new(true), CanPublishData: new(true), CanPublishSources: []string{SourceCamera},
			CanUpdateOwnMetadata: new(true), Hidden: true, Recorder: true},
		Council: &CouncilGrant{Role: RoleMember, Seat: 3, Body: "b"},
	}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	wantTop := []string{"attributes", "hemicycle", "identity", "iss", "jti", "metadata", "name", "sub", "video"}
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, wantTop) {
		t.Errorf("top-level claims %v, want %v", keys, wantTop)
	}
	var video, council map[string]any
	if err := json.Unmarshal(got["video"], &video); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"roomCreate", "roomList", "roomRecord", "roomAdmin", "roomJoin", "room", "canPublish", "canSubscribe",
		"canPublishData", "canPublishSources", "canUpdateOwnMetadata", "hidden", "recorder"} {
		if _, ok := video[k]; !ok {
			t.Errorf("video grant lacks %q: %s", k, got["video"])
		}
	}
	if len(video) != 13 {
		t.Errorf("video grant has %d fields, want 13: %s", len(video), got["video"])
	}
	if err := json.Unmarshal(got["hemicycle"], &council); err != nil {
		t.Fatal(err)
	}
	if council["role"] != "member" || council["seat"] != 3.0 || council["body"] != "b" {
		t.Errorf("hemicycle claim = %s", got["hemicycle"])
	}
}
