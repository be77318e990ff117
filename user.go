package bff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"

	"github.com/gobff/bff/oidc"
	"github.com/gobff/bff/session"
)

// protocolClaims are claims about the token rather than the user; /bff/user
// leaves them out, as ASP.NET Core's OpenID Connect handler does.
var protocolClaims = map[string]bool{
	"iss": true, "aud": true, "exp": true, "iat": true, "nbf": true,
	"nonce": true, "at_hash": true, "c_hash": true, "azp": true, "jti": true,
}

// UserClaim is one element of the /bff/user response, in Duende.BFF's shape.
type UserClaim struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// handleUser answers GET /bff/user with the session's claims as a JSON
// array of {"type","value"}, plus bff:session_expires_in (seconds),
// bff:logout_url and, when the OP sent one, bff:session_state. It needs the
// anti-forgery header; without a session it answers 401. With
// ?slide=false the request does not extend the session's idle timeout, so a
// SPA can poll it.
func (b *BFF) handleUser(w http.ResponseWriter, r *http.Request) {
	if !b.requireAntiforgery(w, r, r.URL.Path) {
		return
	}
	var s *session.Session
	var err error
	if r.URL.Query().Get("slide") == "false" {
		s, err = b.sessions.Peek(r.Context(), r)
	} else {
		s, err = b.sessions.Load(r.Context(), r)
	}
	if err != nil {
		b.noSession(w, r, err)
		return
	}
	if b.endIfTokensDead(w, r, s) {
		return
	}
	claims, err := oidc.ParseClaims(s.Claims)
	if err != nil {
		b.log.ErrorContext(r.Context(), "session claims unreadable", "session", s.Key.String(), "error", err)
		problem(w, http.StatusInternalServerError, "session unreadable")
		return
	}
	out := make([]UserClaim, 0, len(claims)+3)
	for _, c := range claims {
		if protocolClaims[c.Name] {
			continue
		}
		out = appendClaim(out, c.Name, c.Value)
	}
	left := s.ExpiresIn(b.cfg.Now())
	if b.refresher.EndsWithToken(s) {
		left = min(left, s.Tokens.Expiry.Sub(b.cfg.Now()))
	}
	expiresIn := int64(math.Max(0, left.Seconds()))
	out = append(out,
		UserClaim{"bff:session_expires_in", json.RawMessage(jsonNumber(expiresIn))},
		UserClaim{"bff:logout_url", jsonString("/bff/logout?sid=" + url.QueryEscape(s.LogoutID))},
	)
	if v, ok := claims.Get("session_state"); ok {
		out = append(out, UserClaim{"bff:session_state", v})
	}
	writeJSON(w, http.StatusOK, out)
}

// tokensDead reports whether s ends with its token and that token has
// expired.
func (b *BFF) tokensDead(s *session.Session) bool {
	return b.refresher.EndsWithToken(s) && !b.cfg.Now().Before(s.Tokens.Expiry)
}

// endIfTokensDead ends a session whose tokens are dead and answers 401, as
// an API call through the refresher would: a SPA must not see a session
// that looks logged in but cannot call its APIs. It reports whether it
// answered.
func (b *BFF) endIfTokensDead(w http.ResponseWriter, r *http.Request, s *session.Session) bool {
	if !b.tokensDead(s) {
		return false
	}
	if err := b.endDeadSession(r.Context(), w, s); err != nil {
		b.noSession(w, r, err)
		return true
	}
	problem(w, http.StatusUnauthorized, "the session has ended; log in again")
	return true
}

func (b *BFF) endDeadSession(ctx context.Context, w http.ResponseWriter, s *session.Session) error {
	if err := b.sessions.Delete(ctx, w, s.Key); err != nil {
		return err
	}
	b.log.InfoContext(ctx, "session ended", "session", s.Key.String(), "sub", s.Subject, "reason", "the access token expired and there is no refresh token")
	return nil
}

// noSession answers 401 to an API-style request without a live session, and
// tells the browser to drop a cookie that names no session any more.
func (b *BFF) noSession(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, session.ErrNotFound) {
		b.log.ErrorContext(r.Context(), "session cannot be read", "error", err)
		problem(w, http.StatusServiceUnavailable, "the session store is unavailable")
		return
	}
	if b.sessions.HasCookie(r) {
		b.sessions.ClearCookie(w)
	}
	problem(w, http.StatusUnauthorized, "not logged in")
}

// appendClaim adds a claim; an array becomes one entry per element, as
// Duende.BFF (through .NET's ClaimsIdentity) returns roles and amr.
func appendClaim(out []UserClaim, name string, value json.RawMessage) []UserClaim {
	v := bytes.TrimSpace(value)
	if len(v) > 0 && v[0] == '[' {
		var items []json.RawMessage
		if json.Unmarshal(v, &items) == nil {
			for _, item := range items {
				out = append(out, UserClaim{name, item})
			}
			return out
		}
	}
	return append(out, UserClaim{name, v})
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

func jsonNumber(n int64) []byte {
	b, _ := json.Marshal(n)
	return b
}
