// Package session keeps bff's server-side sessions: the [Session] type, the
// [Store] interface that persists them, the [KeyRing] that seals their tokens
// at rest, and the [Manager] that ties a session to the browser's cookie.
//
// The browser holds only an opaque 256-bit random identifier in a __Host-
// cookie. A store keys the session by the SHA-256 of that identifier, and
// keeps the user's claims and tokens sealed with AES-256-GCM, so neither a
// copy of the store nor a log line yields a usable cookie or token.
package session

import (
	"encoding/json"
	"log/slog"
	"strings"
	"time"
)

// Session is one logged-in browser: who the user is, and the tokens bff uses
// on the user's behalf.
//
// A Session returned by [Manager.Load] may be shared by concurrent requests
// and must be treated as read-only; use [Session.Clone] to change one and
// [Manager.Update] to save it.
type Session struct {
	Key     Key
	Version uint64

	Issuer  string
	Subject string
	SID     string // the OP's session id (sid claim), may be empty

	CreatedAt     time.Time
	ExpiresAt     time.Time // absolute end
	IdleExpiresAt time.Time // sliding end

	*Payload
}

// Payload is the part of a session that is sealed before it reaches a store.
type Payload struct {
	// LogoutID is the value that /bff/logout requires as its sid parameter.
	// It is random per session rather than the OP's sid, which every other
	// client of the same OP session also knows.
	LogoutID string `json:"lid"`
	// Claims is the JSON object of the user's claims: the ID token's,
	// completed from the userinfo endpoint.
	Claims json.RawMessage `json:"claims,omitempty"`
	// Tokens are the OAuth tokens bff holds for the user.
	Tokens Tokens `json:"tokens"`
	// UserAgent is a short summary of the browser that logged in, such as
	// "Firefox on Linux", for the user's list of sessions; never the full
	// header.
	UserAgent string `json:"ua,omitempty"`

	// authorization caches the Authorization header value of authFor, set
	// once before the payload is shared, so requests do not build it again.
	authorization, authFor string
}

// Authorization returns the value of an Authorization header that presents
// the access token: "Bearer <token>" (RFC 6750, section 2.1).
func (p *Payload) Authorization() string {
	if p.authorization != "" && p.authFor == p.Tokens.AccessToken {
		return p.authorization
	}
	return authorization(p.Tokens)
}

func authorization(t Tokens) string {
	typ := t.TokenType
	if typ == "" || strings.EqualFold(typ, "bearer") {
		typ = "Bearer"
	}
	return typ + " " + t.AccessToken
}

// prepare fills the payload's caches; call it before sharing the payload.
func (p *Payload) prepare() {
	if p.Tokens.AccessToken != "" {
		p.authorization, p.authFor = authorization(p.Tokens), p.Tokens.AccessToken
	}
}

// Tokens are the OAuth 2.0 and OpenID Connect tokens of a session.
type Tokens struct {
	AccessToken  string    `json:"at,omitempty"`
	TokenType    string    `json:"tt,omitempty"`
	Expiry       time.Time `json:"exp,omitzero"` // of the access token; zero if unknown
	Obtained     time.Time `json:"got,omitzero"` // when bff received the access token
	RefreshToken string    `json:"rt,omitempty"`
	IDToken      string    `json:"idt,omitempty"`
	Scope        string    `json:"scope,omitempty"`
}

// Clone returns a deep copy of s that the caller may modify.
func (s *Session) Clone() *Session {
	c := *s
	if s.Payload != nil {
		p := *s.Payload
		p.Claims = append(json.RawMessage(nil), s.Claims...)
		c.Payload = &p
	}
	return &c
}

// ExpiresIn returns how long the session has left at now: the earlier of its
// absolute and idle ends.
func (s *Session) ExpiresIn(now time.Time) time.Duration {
	return s.EndsAt().Sub(now)
}

// EndsAt returns when the session ends unless used again: the earlier of
// its absolute and idle ends.
func (s *Session) EndsAt() time.Time {
	if s.IdleExpiresAt.Before(s.ExpiresAt) {
		return s.IdleExpiresAt
	}
	return s.ExpiresAt
}

// LogValue keeps a session out of logs but for its short key prefix and
// subject: never its tokens or claims.
func (s *Session) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key", s.Key.String()), slog.String("sub", s.Subject))
}

// String, GoString and LogValue keep tokens out of anything that formats
// them by accident.
func (t Tokens) String() string { return "[tokens redacted]" }

// GoString implements fmt.GoStringer; see String.
func (t Tokens) GoString() string { return t.String() }

// LogValue implements slog.LogValuer; see String.
func (t Tokens) LogValue() slog.Value { return slog.StringValue(t.String()) }

func (s *Session) record(data []byte) *Record {
	return &Record{
		Key:           s.Key,
		Version:       s.Version,
		Issuer:        s.Issuer,
		Subject:       s.Subject,
		SID:           s.SID,
		CreatedAt:     s.CreatedAt,
		ExpiresAt:     s.ExpiresAt,
		IdleExpiresAt: s.IdleExpiresAt,
		Data:          data,
	}
}

func fromRecord(rec *Record, p *Payload) *Session {
	return &Session{
		Key:           rec.Key,
		Version:       rec.Version,
		Issuer:        rec.Issuer,
		Subject:       rec.Subject,
		SID:           rec.SID,
		CreatedAt:     rec.CreatedAt,
		ExpiresAt:     rec.ExpiresAt,
		IdleExpiresAt: rec.IdleExpiresAt,
		Payload:       p,
	}
}
