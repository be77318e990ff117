package bff

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"time"

	"github.com/gobff/bff/session"
)

// SessionInfo describes one of a user's sessions, as GET /bff/sessions
// lists them. ID is the session's public handle (see session.Key.Handle):
// it names the session for POST /bff/sessions/revoke and cannot be turned
// into the session's cookie.
type SessionInfo struct {
	ID      string    `json:"id"`
	Current bool      `json:"current"`
	Created time.Time `json:"created"`
	// LastSeen is when the session was last used, to within a minute
	// (the idle expiry is moved at most once a minute).
	LastSeen time.Time `json:"last_seen"`
	// Expires is when the session ends unless used again: the earlier of
	// its absolute and idle ends.
	Expires   time.Time `json:"expires"`
	UserAgent string    `json:"user_agent"`
	// SID is the OP's session id; it is not in the HTTP answer, which a
	// script on the page reads.
	SID string `json:"-"`
}

// maxRevokeBody bounds the JSON body of POST /bff/sessions/revoke.
const maxRevokeBody = 4 << 10

// UserSessions returns the live sessions of the user sub at the configured
// OP, newest use first: for the /bff/sessions endpoint and for operators
// (bff sessions list).
func (b *BFF) UserSessions(ctx context.Context, sub string) ([]SessionInfo, error) {
	ss, err := b.sessions.ListBySub(ctx, b.rp.Issuer(), sub)
	if err != nil {
		return nil, err
	}
	out := make([]SessionInfo, 0, len(ss))
	for _, s := range ss {
		out = append(out, b.sessionInfo(s))
	}
	slices.SortFunc(out, func(x, y SessionInfo) int {
		return cmp.Or(y.LastSeen.Compare(x.LastSeen), y.Created.Compare(x.Created))
	})
	return out, nil
}

func (b *BFF) sessionInfo(s *session.Session) SessionInfo {
	lastSeen := s.IdleExpiresAt.Add(-b.sessions.IdleTimeout())
	if lastSeen.Before(s.CreatedAt) {
		lastSeen = s.CreatedAt
	}
	return SessionInfo{
		ID:        s.Key.Handle(),
		Created:   s.CreatedAt.UTC(),
		LastSeen:  lastSeen.UTC(),
		Expires:   s.EndsAt().UTC(),
		UserAgent: s.UserAgent,
		SID:       s.SID,
	}
}

// EndUserSessions ends every session of the user sub at the configured OP
// and revokes their refresh tokens ("log out everywhere", bff sessions
// revoke --sub). It returns how many sessions ended.
func (b *BFF) EndUserSessions(ctx context.Context, sub string) (int, error) {
	ended, err := b.sessions.DeleteBySub(ctx, b.rp.Issuer(), sub)
	return b.ended(ctx, ended, err, "sub", sub)
}

// EndOPSession ends the sessions of the OP session sid and revokes their
// refresh tokens (bff sessions revoke --sid). It returns how many ended.
func (b *BFF) EndOPSession(ctx context.Context, sid string) (int, error) {
	ended, err := b.sessions.DeleteBySID(ctx, b.rp.Issuer(), sid)
	return b.ended(ctx, ended, err, "sid_present", sid != "")
}

// ended revokes the refresh tokens of sessions an operator ended (also
// those a failing store removed before it failed) and logs the outcome.
func (b *BFF) ended(ctx context.Context, ended []*session.Session, err error, attrs ...any) (int, error) {
	b.revokeRefreshTokens(ctx, refreshTokens(ended)...)
	if err != nil {
		return len(ended), err
	}
	b.log.InfoContext(ctx, "sessions ended", append(attrs, "sessions", len(ended))...)
	return len(ended), nil
}

// handleSessions answers GET /bff/sessions with the current user's sessions
// as a JSON array of SessionInfo, the current one marked. It needs the
// anti-forgery header and a session.
func (b *BFF) handleSessions(w http.ResponseWriter, r *http.Request) {
	if !b.requireAntiforgery(w, r, r.URL.Path) {
		return
	}
	cur, err := b.sessions.Load(r.Context(), r)
	if err != nil {
		b.noSession(w, r, err)
		return
	}
	list, err := b.UserSessions(r.Context(), cur.Subject)
	if err != nil {
		b.log.ErrorContext(r.Context(), "sessions cannot be listed", "error", err)
		problem(w, http.StatusServiceUnavailable, "the session store is unavailable")
		return
	}
	handle := cur.Key.Handle()
	for i := range list {
		list[i].Current = list[i].ID == handle
	}
	writeJSON(w, http.StatusOK, list)
}

// revokeRequest is the body of POST /bff/sessions/revoke: one session by
// its id, or every session but the current one.
type revokeRequest struct {
	ID     string `json:"id"`
	Others bool   `json:"others"`
}

// handleRevokeSessions serves POST /bff/sessions/revoke with a JSON body
// {"id": "..."} (end that session of the current user) or {"others": true}
// (end all of the user's other sessions). It answers {"ended": n}; an id
// that is not one of the current user's sessions is a 404, so no user can
// end another's session. Ending the current session clears its cookie.
// Refresh tokens of ended sessions are revoked.
func (b *BFF) handleRevokeSessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !b.requireAntiforgery(w, r, r.URL.Path) {
		return
	}
	cur, err := b.sessions.Load(ctx, r)
	if err != nil {
		b.noSession(w, r, err)
		return
	}
	req, err := readRevokeRequest(w, r)
	if err != nil {
		b.log.WarnContext(ctx, "session revocation refused", "session", cur.Key.String(), "error", err)
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	mine, err := b.sessions.ListBySub(ctx, cur.Issuer, cur.Subject)
	if err != nil {
		b.log.ErrorContext(ctx, "sessions cannot be listed", "error", err)
		problem(w, http.StatusServiceUnavailable, "the session store is unavailable")
		return
	}
	var targets []*session.Session
	for _, s := range mine {
		switch {
		case req.Others && s.Key != cur.Key, !req.Others && s.Key.Handle() == req.ID:
			targets = append(targets, s)
		}
	}
	if !req.Others && len(targets) == 0 {
		b.log.WarnContext(ctx, "session revocation refused", "session", cur.Key.String(), "rule", "not_own_session")
		problem(w, http.StatusNotFound, "no such session of yours")
		return
	}
	ended := targets[:0:0]
	for _, s := range targets {
		var cw http.ResponseWriter // clear the cookie only for the current session
		if s.Key == cur.Key {
			cw = w
		}
		// Read it once more: a refresh since the listing has rotated its
		// refresh token, and the new one is what must be revoked.
		if fresh, err := b.sessions.Get(ctx, s.Key); err == nil {
			s = fresh
		}
		if err := b.sessions.Delete(ctx, cw, s.Key); err != nil {
			b.log.ErrorContext(ctx, "session not ended", "session", s.Key.String(), "error", err)
			problem(w, http.StatusServiceUnavailable, "the session store is unavailable")
			return
		}
		ended = append(ended, s)
	}
	b.log.InfoContext(ctx, "sessions ended by their user", "session", cur.Key.String(), "sub", cur.Subject, "sessions", len(ended), "others", req.Others)
	b.revokeRefreshTokens(ctx, refreshTokens(ended)...)
	writeJSON(w, http.StatusOK, map[string]int{"ended": len(ended)})
}

func readRevokeRequest(w http.ResponseWriter, r *http.Request) (revokeRequest, error) {
	var req revokeRequest
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return req, errors.New("the body must be application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRevokeBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("the body is not a revocation request: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, errors.New("the body has data after the request")
	}
	if (req.ID == "") == !req.Others {
		return req, errors.New(`give either "id" or "others": true`)
	}
	return req, nil
}
