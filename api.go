package bff

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gobff/bff/oidc"
	"github.com/gobff/bff/proxy"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/token"
)

// TokenType says which token bff attaches to the requests of an API route,
// with Duende.BFF's names.
type TokenType string

// Token types.
const (
	// TokenUser attaches the user's access token; anonymous requests get
	// 401.
	TokenUser TokenType = "user"
	// TokenClient attaches bff's own client-credentials token.
	TokenClient TokenType = "client"
	// TokenUserOrClient attaches the user's token when there is a session,
	// else the client token.
	TokenUserOrClient TokenType = "user_or_client"
	// TokenUserOrNone attaches the user's token when there is a session,
	// else nothing.
	TokenUserOrNone TokenType = "user_or_none"
	// TokenNone attaches nothing.
	TokenNone TokenType = "none"
)

// APIConfig is one remote API route: requests under Path go to Upstream
// with the token Token names.
type APIConfig struct {
	// Path is the local path prefix, e.g. "/api/orders".
	Path string
	// Upstream is the base URL the rest of the path goes under, e.g.
	// "https://orders.internal/v1".
	Upstream string
	// Token is the token type; default TokenUser.
	Token TokenType
	// Scopes and Resource (RFC 8707) of the client-credentials token, for
	// TokenClient and TokenUserOrClient.
	Scopes   []string
	Resource string
	// Methods, when not empty, are the only methods let through (405
	// otherwise).
	Methods []string
	// PassSetCookie lets the upstream's Set-Cookie headers reach the
	// browser; by default they are dropped, since the upstream shares the
	// SPA's origin and could otherwise plant cookies on it.
	PassSetCookie bool
}

// apiRoute is a configured API route, ready to serve.
type apiRoute struct {
	prefix  string
	token   TokenType
	client  *token.Source
	handler *proxy.Handler
}

// matches reports whether the escaped path is the prefix or under it.
func (a *apiRoute) matches(escapedPath string) bool {
	return strings.HasPrefix(escapedPath, a.prefix) &&
		(len(escapedPath) == len(a.prefix) || escapedPath[len(a.prefix)] == '/')
}

func (b *BFF) buildAPIs() error {
	origin := b.publicURL
	// One transport for every route, so routes to the same upstream share
	// its idle connections.
	transport := b.cfg.APITransport
	if transport == nil && len(b.cfg.APIs) > 0 {
		transport = proxy.NewTransport()
	}
	for i, api := range b.cfg.APIs {
		field := fmt.Sprintf("apis[%d]", i)
		up, err := url.Parse(api.Upstream)
		if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" || up.User != nil || up.RawQuery != "" || up.Fragment != "" {
			return configErr(field+".upstream", "%q must be an absolute http(s) URL without user info, query or fragment", api.Upstream)
		}
		route := &apiRoute{prefix: strings.TrimSuffix(api.Path, "/"), token: api.Token}
		if route.token == "" {
			route.token = TokenUser
		}
		if route.token == TokenClient || route.token == TokenUserOrClient {
			route.client = b.clientTokens.Source(api.Scopes, api.Resource)
		}
		route.handler, err = proxy.New(proxy.Route{
			Prefix:         route.prefix,
			Upstream:       up,
			Methods:        api.Methods,
			AllowedOrigins: []string{origin},
			PublicOrigin:   origin,
			Authorize:      b.authorizeAPI(route),
			PassSetCookie:  api.PassSetCookie,
		}, proxy.Options{Transport: transport, Logger: b.log})
		if err != nil {
			return &ConfigError{Field: field, Err: err}
		}
		b.apis = append(b.apis, route)
	}
	// The longest prefix wins: /api/orders/archive before /api/orders.
	slices.SortStableFunc(b.apis, func(x, y *apiRoute) int { return len(y.prefix) - len(x.prefix) })
	return nil
}

// validateAPIs checks the API routes of cfg.
func (cfg Config) validateAPIs() error {
	seen := map[string]bool{}
	for i, api := range cfg.APIs {
		field := fmt.Sprintf("apis[%d]", i)
		p := strings.TrimSuffix(api.Path, "/")
		switch {
		case p == "" || !ValidReturnURL(p) || strings.ContainsAny(p, "?#%"):
			return configErr(field+".path", "%q must be a plain local path such as /api/orders", api.Path)
		case p == "/bff" || strings.HasPrefix(p, "/bff/"):
			return configErr(field+".path", "%q is bff's own", api.Path)
		case under(cfg.OIDC.CallbackPath, p) || under(cfg.OIDC.SignoutCallbackPath, p):
			return configErr(field+".path", "%q would take over a callback path", api.Path)
		case seen[p]:
			return configErr(field+".path", "%q appears twice", api.Path)
		}
		seen[p] = true
		switch api.Token {
		case "", TokenUser, TokenClient, TokenUserOrClient, TokenUserOrNone, TokenNone:
		default:
			return configErr(field+".token", "%q is not user, client, user_or_client, user_or_none or none", api.Token)
		}
		for j, m := range api.Methods {
			if m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " \t/") {
				return configErr(fmt.Sprintf("%s.methods[%d]", field, j), "%q is not an HTTP method in upper case", m)
			}
		}
	}
	return nil
}

// under reports whether path is prefix or below it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// authorizeAPI decides, after the proxy's path, method and origin checks,
// whether a request may go upstream and with which Authorization header.
func (b *BFF) authorizeAPI(route *apiRoute) func(http.ResponseWriter, *http.Request) (string, bool) {
	return func(w http.ResponseWriter, r *http.Request) (string, bool) {
		ctx := r.Context()
		// A WebSocket cannot carry the header; the proxy has checked its
		// Origin instead.
		if !proxy.IsWebSocketUpgrade(r) && !b.requireAntiforgery(w, r, route.prefix) {
			return "", false
		}
		switch route.token {
		case TokenNone:
			return "", true
		case TokenClient:
			return b.clientAuthorization(ctx, w, route)
		}
		s, err := b.sessions.Load(ctx, r)
		if err != nil {
			if !errors.Is(err, session.ErrNotFound) {
				b.noSession(w, r, err)
				return "", false
			}
			switch route.token {
			case TokenUserOrClient:
				return b.clientAuthorization(ctx, w, route)
			case TokenUserOrNone:
				return "", true
			default:
				b.noSession(w, r, err)
				return "", false
			}
		}
		_, s, err = b.refresher.UserToken(ctx, s)
		if errors.Is(err, token.ErrTokenExpired) {
			// Session.OutliveTokens: the session goes on without a token.
			switch route.token {
			case TokenUserOrNone:
				return "", true
			case TokenUserOrClient:
				return b.clientAuthorization(ctx, w, route)
			}
			problem(w, http.StatusUnauthorized, "the access token has expired; log in again")
			return "", false
		}
		if err != nil {
			b.tokenFailed(w, r, err)
			return "", false
		}
		return s.Authorization(), true
	}
}

func (b *BFF) clientAuthorization(ctx context.Context, w http.ResponseWriter, route *apiRoute) (string, bool) {
	tok, err := route.client.Token(ctx)
	if err != nil {
		if ctx.Err() == nil {
			b.log.ErrorContext(ctx, "client token unavailable", "path", route.prefix, "error", err)
			problem(w, http.StatusBadGateway, "the identity provider is unavailable")
		}
		return "", false
	}
	return "Bearer " + tok, true
}

// tokenFailed answers a request whose user token could not be had: 401 when
// the session has ended (the SPA logs in again), 502 when the OP is down.
func (b *BFF) tokenFailed(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	var ue *oidc.UnavailableError
	var pe *oidc.ProtocolError
	switch {
	case errors.Is(err, token.ErrSessionEnded):
		b.sessions.ClearCookie(w)
		problem(w, http.StatusUnauthorized, "the session has ended; log in again")
	case ctx.Err() != nil:
		// The browser went away; nobody reads an answer.
	case errors.As(err, &ue):
		b.log.ErrorContext(ctx, "token refresh failed", "error", err)
		problem(w, http.StatusBadGateway, "the identity provider is unavailable")
	case errors.As(err, &pe):
		b.log.ErrorContext(ctx, "token refresh refused", "error_code", pe.Code, "error", err)
		problem(w, http.StatusBadGateway, "the identity provider refused to refresh the access token")
	default:
		b.log.ErrorContext(ctx, "token refresh failed", "error", err)
		problem(w, http.StatusServiceUnavailable, "the session store is unavailable")
	}
}
