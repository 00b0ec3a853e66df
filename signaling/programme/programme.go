// Package programme holds the public programme's HTTP routes: viewer tokens for the watch page,
// the programme's delay, the chair's bleep, the delayed state as Server-Sent Events, and the
// HLS files; and Viewers, the configuration of how the public is let in.
//
// Routes declares the rows; the signaling server adds them to its one route table, whose guard
// applies each row's rate limit, token and role check, and relay to the node where the room is
// open. The routes see the server only through Host and Room, so that this package needs
// nothing of signaling (which imports it).
package programme

import (
	"context"
	"log/slog"
	"time"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/broadcast"
)

// Viewers is how the public is let in to watch a room's programme.
type Viewers struct {
	// Key and Secret sign the viewer tokens handed to the public.
	Key, Secret string
	// ViewerTokenTTL is the lifetime of a viewer token (default 15 minutes); the watch page
	// asks for a new one when it must reconnect.
	ViewerTokenTTL time.Duration
	// ViewerTokensPerMinute and ViewerTokenBurst limit the tokens minted per client address
	// (defaults 30 and 10); ViewerTokensPerSecond limits them for the whole server (default 50,
	// with a burst of twice that).
	ViewerTokensPerMinute float64
	ViewerTokenBurst      int
	ViewerTokensPerSecond float64
	// MaxViewers caps the WebRTC viewers of one room (0: no cap); beyond it the page is told
	// to use HLS.
	MaxViewers int
}

func (v Viewers) withDefaults() Viewers {
	broadcast.SetDefault(&v.ViewerTokenTTL, 15*time.Minute)
	broadcast.SetDefault(&v.ViewerTokensPerMinute, 30)
	broadcast.SetDefault(&v.ViewerTokenBurst, 10)
	broadcast.SetDefault(&v.ViewerTokensPerSecond, 50)
	return v
}

// Host is the server as the routes see it.
type Host interface {
	// Room is the programme of the room open on this node under that name; false when the
	// room is not open here or broadcasts no programme.
	Room(name string) (Room, bool)
}

// Room is the programme of one open room.
type Room interface {
	Name() string
	// Programme is the delayed, bleeped programme itself.
	Programme() *broadcast.Programme
	// HLS serves the programme's HLS files; nil without HLS.
	HLS() *broadcast.HLS
	// Viewers counts the room's WebRTC viewers now.
	Viewers() int
	// BleepStarted notes the chair who started the running bleep, and BleepEnded forgets
	// them: a bleep still running when the room closes ends there, recorded in their name.
	BleepStarted(by *auth.Claims)
	BleepEnded() *auth.Claims
	// RecordBleep appends a finished bleep, with the chair who asked for it, to the room's
	// journal, whence the minutes name it; false without an error when the room has no
	// session to record it in.
	RecordBleep(ctx context.Context, by *auth.Claims, b broadcast.Bleep) (bool, error)
	// Log is the logger of the room's programme.
	Log() *slog.Logger
}
