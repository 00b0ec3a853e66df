package auth

import (
	"errors"
	"net/http"
)

// Reason says in a few words why a token was refused; it is stable and may be
// shown to the client.
type Reason string

// Authentication failures (401): the token does not prove who is calling.
const (
	ReasonNoToken      Reason = "no access token"
	ReasonMalformed    Reason = "malformed token"
	ReasonUnsupported  Reason = "unsupported signing algorithm"
	ReasonUnknownKey   Reason = "unknown API key"
	ReasonBadSignature Reason = "bad signature"
	ReasonExpired      Reason = "token expired"
	ReasonNotYetValid  Reason = "token not yet valid"
	ReasonRevoked      Reason = "token revoked"
	ReasonNoExpiry     Reason = "no expiry"
	ReasonBadClaim     Reason = "invalid hemicycle claim"
)

// Authorisation failures (403): the token is genuine but does not allow this.
const (
	ReasonWrongRoom       Reason = "wrong room"
	ReasonMissingRoomJoin Reason = "missing grant: roomJoin"
	ReasonNoIdentity      Reason = "missing identity"
)

// Error is a refused token: the reason, the HTTP status to answer with, and
// what exactly was wrong.
type Error struct {
	Reason Reason
	Status int    // http.StatusUnauthorized or http.StatusForbidden
	Detail string // e.g. the room asked and the room granted
	Err    error  // the underlying parser error, if any
}

func (e *Error) Error() string {
	msg := "auth: " + string(e.Reason)
	switch {
	case e.Detail != "":
		msg += ": " + e.Detail
	case e.Err != nil:
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

func unauthenticated(r Reason, detail string, err error) *Error {
	return &Error{Reason: r, Status: http.StatusUnauthorized, Detail: detail, Err: err}
}

func forbidden(r Reason, detail string) *Error {
	return &Error{Reason: r, Status: http.StatusForbidden, Detail: detail}
}

// HTTPStatus is the status to answer a request that failed with err: the
// *Error's own status, 200 for nil, 500 for anything else.
func HTTPStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	if ae, ok := errors.AsType[*Error](err); ok {
		return ae.Status
	}
	return http.StatusInternalServerError
}
