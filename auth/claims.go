// Package auth is Hemicycle's identity layer: the claims carried by an access
// token, issuing tokens, and verifying them against a rotating set of API keys
// with revocation.
//
// Tokens are HS256 JWTs in LiveKit's claim layout (iss = API key, sub =
// identity, a "video" grant), so LiveKit SDKs and tools accept them, plus a
// "hemicycle" claim saying which council role the holder plays. A LiveKit
// client ignores the extra claim; Hemicycle enforces it.
package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Role is the part a participant plays in a meeting (the "role" of the
// hemicycle claim).
type Role string

// The roles of a council meeting; see DESIGN.md section 1.
const (
	RoleChair       Role = "chair"       // président de séance: runs the floor and the votes
	RoleClerk       Role = "clerk"       // secrétaire de séance: roll call, proxies, minutes
	RoleMember      Role = "member"      // elected member, holds a seat
	RoleAgent       Role = "agent"       // staff in telework meetings
	RoleCaptioner   Role = "captioner"   // sends live captions
	RoleInterpreter Role = "interpreter" // sign-language or voice interpreter, pinned in the programme
	RoleViewer      Role = "viewer"      // the public: watches, publishes nothing
)

var allRoles = []Role{RoleChair, RoleClerk, RoleMember, RoleAgent, RoleCaptioner, RoleInterpreter, RoleViewer}

// Roles lists every valid role, in a stable order (for help texts).
func Roles() []Role { return slices.Clone(allRoles) }

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return slices.Contains(allRoles, r) }

// ParseRole reads a role name as typed on a command line (case and
// surrounding spaces do not matter).
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if !r.Valid() {
		names := make([]string, len(allRoles))
		for i, v := range allRoles {
			names[i] = string(v)
		}
		return "", fmt.Errorf("unknown role %q: want one of %s", s, strings.Join(names, ", "))
	}
	return r, nil
}

// Track sources as named in VideoGrant.CanPublishSources (LiveKit's
// TrackSource enum in lower case).
const (
	SourceCamera           = "camera"
	SourceMicrophone       = "microphone"
	SourceScreenShare      = "screen_share"
	SourceScreenShareAudio = "screen_share_audio"
)

// VideoGrant is LiveKit's "video" claim, with LiveKit's JSON names. The
// permission pointers are tri-state because LiveKit reads an absent field as
// "allowed"; use the Allows* methods rather than reading them directly.
type VideoGrant struct {
	RoomCreate bool   `json:"roomCreate,omitempty"`
	RoomList   bool   `json:"roomList,omitempty"`
	RoomRecord bool   `json:"roomRecord,omitempty"`
	RoomAdmin  bool   `json:"roomAdmin,omitempty"`
	RoomJoin   bool   `json:"roomJoin,omitempty"`
	Room       string `json:"room,omitempty"`

	CanPublish   *bool `json:"canPublish,omitempty"`   // nil: allowed
	CanSubscribe *bool `json:"canSubscribe,omitempty"` // nil: allowed
	// CanPublishData nil follows the effective CanPublish.
	CanPublishData *bool `json:"canPublishData,omitempty"`
	// CanPublishSources, when non-empty, restricts publishing to the listed
	// sources (Source* constants).
	CanPublishSources    []string `json:"canPublishSources,omitempty"`
	CanUpdateOwnMetadata *bool    `json:"canUpdateOwnMetadata,omitempty"` // nil: denied

	Hidden   bool `json:"hidden,omitempty"`   // not shown to other participants
	Recorder bool `json:"recorder,omitempty"` // the participant records the room
}

// The Allows* methods read the tri-state permissions exactly as LiveKit's
// VideoGrant.GetCan* do (protocol v1.54.0), so that a token means the same to
// Hemicycle and to LiveKit's tools. A nil grant allows nothing.

// AllowsPublish reports whether media may be published at all.
func (g *VideoGrant) AllowsPublish() bool {
	return g != nil && (g.CanPublish == nil || *g.CanPublish)
}

// AllowsSubscribe reports whether others' tracks may be received.
func (g *VideoGrant) AllowsSubscribe() bool {
	return g != nil && (g.CanSubscribe == nil || *g.CanSubscribe)
}

// AllowsPublishData reports whether data packets may be sent.
func (g *VideoGrant) AllowsPublishData() bool {
	if g == nil {
		return false
	}
	if g.CanPublishData == nil {
		return g.AllowsPublish()
	}
	return *g.CanPublishData
}

// AllowsSource reports whether a track from source may be published. As in
// LiveKit, canPublish=false forbids every source even when the list names it.
func (g *VideoGrant) AllowsSource(source string) bool {
	if !g.AllowsPublish() {
		return false
	}
	return len(g.CanPublishSources) == 0 || slices.Contains(g.CanPublishSources, source)
}

// AllowsOwnMetadataUpdate reports whether the participant may change its own
// name, metadata and attributes.
func (g *VideoGrant) AllowsOwnMetadataUpdate() bool {
	return g != nil && g.CanUpdateOwnMetadata != nil && *g.CanUpdateOwnMetadata
}

// CouncilGrant is the "hemicycle" claim: who the holder is in the council.
type CouncilGrant struct {
	Role Role   `json:"role"`
	Seat int    `json:"seat,omitempty"` // the member's seat in the body's roster; 0 = none
	Body string `json:"body,omitempty"` // the deliberating body, e.g. a council's id
}

// check refuses a claim that no issuer of ours would sign.
func (g *CouncilGrant) check() error {
	if g == nil {
		return nil
	}
	if !g.Role.Valid() {
		return fmt.Errorf("role %q is not a Hemicycle role", g.Role)
	}
	if g.Seat < 0 {
		return fmt.Errorf("seat %d is negative", g.Seat)
	}
	return nil
}

// Claims is the payload of an access token.
type Claims struct {
	jwt.RegisteredClaims // iss = API key, sub = identity, exp, nbf, iat, jti

	// Identity duplicates sub (LiveKit protocol >= 1.54 writes both).
	Identity   string            `json:"identity,omitempty"`
	Name       string            `json:"name,omitempty"`
	Metadata   string            `json:"metadata,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Video      *VideoGrant       `json:"video,omitempty"`
	Council    *CouncilGrant     `json:"hemicycle,omitempty"`
}

// ParticipantIdentity is the identity the participant joins under: sub, else
// the identity claim, else jti (LiveKit's own fallback).
func (c *Claims) ParticipantIdentity() string {
	switch {
	case c.Subject != "":
		return c.Subject
	case c.Identity != "":
		return c.Identity
	default:
		return c.ID
	}
}

// Room is the room the video grant names, "" when there is none.
func (c *Claims) Room() string {
	if c.Video == nil {
		return ""
	}
	return c.Video.Room
}

// CanPublish reports whether the holder may publish media.
func (c *Claims) CanPublish() bool { return c.Video.AllowsPublish() }

// CanSubscribe reports whether the holder may receive others' media.
func (c *Claims) CanSubscribe() bool { return c.Video.AllowsSubscribe() }

// CanPublishData reports whether the holder may send data packets.
func (c *Claims) CanPublishData() bool { return c.Video.AllowsPublishData() }

// CanPublishSource reports whether the holder may publish a track from source.
func (c *Claims) CanPublishSource(source string) bool { return c.Video.AllowsSource(source) }

// CanAdminRoom reports whether the holder administers room (LiveKit's
// roomAdmin, which is scoped to the grant's room).
func (c *Claims) CanAdminRoom(room string) bool {
	return c.Video != nil && c.Video.RoomAdmin && room != "" && c.Video.Room == room
}

// Role is the council role, or "" for a token without a hemicycle claim (a
// plain LiveKit token).
func (c *Claims) Role() Role {
	if c.Council == nil {
		return ""
	}
	return c.Council.Role
}

// GetBody is the body the claim names, "" for none (or no claim).
func (g *CouncilGrant) GetBody() string {
	if g == nil {
		return ""
	}
	return g.Body
}
