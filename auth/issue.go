package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultTTL is the lifetime of a token issued without one: long enough to
// join and reconnect during a sitting, short enough that a leaked link dies.
const DefaultTTL = time.Hour

// TokenOptions describe a token to issue.
type TokenOptions struct {
	Key, Secret string // API key (iss) and its secret
	Identity    string // sub and identity; required for a join token
	Name        string
	Room        string // sets Video.Room; must agree with it if both are set
	Metadata    string
	TTL         time.Duration // 0 means DefaultTTL
	Video       VideoGrant    // e.g. GrantsForRole(role, room)
	Council     *CouncilGrant
	Attributes  map[string]string
	Now         time.Time // issue time; zero means time.Now()
}

// Issue signs a token (HS256) with iss, sub, identity, iat, nbf, exp and a
// random jti, so that every token can be revoked on its own.
func Issue(o TokenOptions) (string, error) {
	if o.Key == "" || o.Secret == "" {
		return "", errors.New("issue token: API key and secret are required")
	}
	if o.TTL < 0 {
		return "", fmt.Errorf("issue token: negative TTL %s", o.TTL)
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}

	video := o.Video
	if o.Room != "" {
		if video.Room != "" && video.Room != o.Room {
			return "", fmt.Errorf("issue token: room %q disagrees with the video grant's room %q", o.Room, video.Room)
		}
		video.Room = o.Room
	}
	// Refuse now what VerifyJoin would refuse at the door.
	if video.RoomJoin && video.Room == "" {
		return "", errors.New("issue token: roomJoin granted without a room")
	}
	if video.RoomJoin && o.Identity == "" {
		return "", errors.New("issue token: a join token needs an identity")
	}
	if err := o.Council.check(); err != nil {
		return "", fmt.Errorf("issue token: hemicycle claim: %w", err)
	}

	claims := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    o.Key,
			Subject:   o.Identity,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        rand.Text(),
		},
		Identity:   o.Identity,
		Name:       o.Name,
		Metadata:   o.Metadata,
		Attributes: o.Attributes,
		Council:    o.Council,
	}
	if !reflect.ValueOf(video).IsZero() { // an admin-only token may carry no video grant
		claims.Video = &video
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(o.Secret))
	if err != nil {
		return "", fmt.Errorf("issue token for %q: sign: %w", o.Identity, err)
	}
	return signed, nil
}

// GrantsForRole is the default video grant for a role in room. Every role may
// join and subscribe; chair and clerk administer the room; viewers are hidden
// and publish nothing, not even data. An invalid role gets a grant that allows
// nothing (fail closed).
func GrantsForRole(r Role, room string) VideoGrant {
	switch r {
	case RoleChair, RoleClerk:
		return VideoGrant{RoomJoin: true, Room: room, RoomAdmin: true,
			CanPublish: new(true), CanSubscribe: new(true), CanPublishData: new(true)}
	case RoleMember, RoleAgent, RoleCaptioner, RoleInterpreter:
		return VideoGrant{RoomJoin: true, Room: room,
			CanPublish: new(true), CanSubscribe: new(true), CanPublishData: new(true)}
	case RoleViewer:
		return VideoGrant{RoomJoin: true, Room: room, Hidden: true,
			CanPublish: new(false), CanSubscribe: new(true), CanPublishData: new(false)}
	default:
		return VideoGrant{Room: room, CanPublish: new(false), CanSubscribe: new(false), CanPublishData: new(false)}
	}
}
