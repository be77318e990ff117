package bff

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"mime"
	"net/http"
	"time"

	"github.com/gobff/bff/oidc"
	"github.com/gobff/bff/session"
)

// maxBackchannelBody bounds the form of a back-channel logout request: one
// signed JWT, a few kilobytes at most.
const maxBackchannelBody = 64 << 10

// jtiMargin is how much longer than the token could be accepted its jti is
// remembered, for clocks of instances that run a little apart.
const jtiMargin = time.Minute

// backchannelStoreTimeout bounds the deletion of the sessions a logout
// token names, which goes on when the OP stops waiting for the answer.
const backchannelStoreTimeout = 10 * time.Second

// handleBackchannel serves POST /bff/backchannel, OpenID Connect
// Back-Channel Logout 1.0: the OP posts a logout token (form field
// logout_token) when a user's session at the OP ends, and bff ends the
// sessions it names and revokes their refresh tokens.
//
// The token must pass every rule of section 2.6 (see
// oidc.RelyingParty.VerifyLogoutToken), and its jti must not have been seen
// before by any instance sharing the store. A token with a sid ends the
// sessions of that OP session (or, with BackchannelAllSessions, every
// session of that user); a token with only a sub ends every session of that
// user. The answer is 200 on success and 400 on any failure (section 2.8),
// always with Cache-Control: no-store. No anti-forgery header is needed:
// the caller is the OP, and only the OP can sign a logout token.
func (b *BFF) handleBackchannel(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		b.backchannelRefused(w, r, "method", "a logout token comes in a POST")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		b.backchannelRefused(w, r, "content_type", "a logout token comes as an application/x-www-form-urlencoded form")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBackchannelBody)
	if err := r.ParseForm(); err != nil {
		b.backchannelRefused(w, r, "form", "the form cannot be read")
		return
	}
	raw := r.PostForm["logout_token"]
	if len(raw) != 1 || raw[0] == "" {
		b.backchannelRefused(w, r, "logout_token", "exactly one logout_token is required")
		return
	}
	lt, err := b.rp.VerifyLogoutToken(ctx, raw[0], oidc.LogoutTokenOptions{StrictType: b.cfg.OIDC.BackchannelStrictTyp})
	if err != nil {
		var ve *oidc.ValidationError
		if errors.As(err, &ve) {
			b.log.WarnContext(ctx, "back-channel logout refused", "rule", ve.Rule, "error", err)
			backchannelError(w, "invalid_request", "the logout token is not valid")
			return
		}
		// Discovery or the JWKS could not be fetched: the token cannot be
		// checked now; the OP may send it again.
		b.log.ErrorContext(ctx, "back-channel logout cannot be checked", "error", err)
		backchannelError(w, "temporarily_unavailable", "the logout token cannot be checked now")
		return
	}

	// Section 2.6, step 6: a jti seen before is a replay. The check is one
	// atomic step in the store, shared by every instance, and remembers the
	// jti for as long as the token could pass the checks above.
	ttl := max(lt.ValidUntil.Sub(b.cfg.Now())+jtiMargin, jtiMargin)
	sum := sha256.Sum256([]byte(lt.Issuer + "\x00" + lt.JTI))
	jti := "logout-jti:" + hex.EncodeToString(sum[:])
	store := b.cfg.Session.Store
	seen, err := store.SeenJTI(ctx, jti, ttl)
	if err != nil {
		b.log.ErrorContext(ctx, "back-channel logout: the store is unavailable", "error", err)
		backchannelError(w, "temporarily_unavailable", "the session store is unavailable")
		return
	}
	if seen {
		b.log.WarnContext(ctx, "back-channel logout refused", "rule", "jti_replay", "sub", lt.Subject, "sid_present", lt.SID != "")
		backchannelError(w, "invalid_request", "the logout token was used before")
		return
	}

	// The deletion must not stop halfway because the OP gave up waiting:
	// the token has been spent.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backchannelStoreTimeout)
	defer cancel()
	ended, err := b.endForLogoutToken(dctx, lt)
	b.revokeRefreshTokens(ctx, refreshTokens(ended)...)
	if err != nil {
		// Unspend the jti, so that the OP's retry (which a 400 with
		// temporarily_unavailable invites) is not taken for a replay.
		if ferr := store.ForgetJTI(dctx, jti); ferr != nil {
			b.log.ErrorContext(ctx, "back-channel logout: the logout token's jti could not be forgotten; the OP's retry will be refused", "error", ferr)
		}
		b.log.ErrorContext(ctx, "back-channel logout: sessions not ended, the store is unavailable", "sub", lt.Subject, "ended", len(ended), "error", err)
		backchannelError(w, "temporarily_unavailable", "the session store is unavailable")
		return
	}
	b.log.InfoContext(ctx, "back-channel logout", "sub", lt.Subject, "sid_present", lt.SID != "", "sessions", len(ended))
	w.WriteHeader(http.StatusOK)
}

// endForLogoutToken deletes the sessions a logout token names (section
// 2.7): those of its sid; or, with only a sub or with
// BackchannelAllSessions, every session of the user.
func (b *BFF) endForLogoutToken(ctx context.Context, lt *oidc.LogoutToken) ([]*session.Session, error) {
	switch {
	case lt.SID != "" && !b.cfg.OIDC.BackchannelAllSessions:
		return b.sessions.DeleteBySID(ctx, lt.Issuer, lt.SID)
	case lt.Subject != "":
		return b.sessions.DeleteBySub(ctx, lt.Issuer, lt.Subject)
	}
	// All sessions of the user, who is named only through the sid.
	ended, err := b.sessions.DeleteBySID(ctx, lt.Issuer, lt.SID)
	if err != nil {
		return ended, err
	}
	done := map[string]bool{}
	for _, s := range ended {
		if done[s.Subject] {
			continue
		}
		done[s.Subject] = true
		more, err := b.sessions.DeleteBySub(ctx, lt.Issuer, s.Subject)
		ended = append(ended, more...)
		if err != nil {
			return ended, err
		}
	}
	return ended, nil
}

// backchannelRefused answers a request that is not a logout token post.
func (b *BFF) backchannelRefused(w http.ResponseWriter, r *http.Request, rule, detail string) {
	b.log.WarnContext(r.Context(), "back-channel logout refused", "rule", rule)
	backchannelError(w, "invalid_request", detail)
}

// backchannelError answers 400 with an OAuth 2.0 error document, as section
// 2.8 allows.
func backchannelError(w http.ResponseWriter, code, description string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": description})
}

func refreshTokens(ss []*session.Session) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s.Tokens.RefreshToken != "" {
			out = append(out, s.Tokens.RefreshToken)
		}
	}
	return out
}
