package bff

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gobff/bff/internal/cookie"
	"github.com/gobff/bff/oidc"
)

// loginCookiePrefix names the cookies that carry open login transactions,
// one per login, so logins in several tabs do not overwrite each other.
const loginCookiePrefix = "__Host-bff-login-"

// maxOpenLogins bounds how many login cookies a browser carries; starting
// one more drops the oldest.
const maxOpenLogins = 4

// loginTx is what bff remembers of a login between /bff/login and the
// callback: the secrets of the authorization request and where to go after.
// It travels sealed (AES-256-GCM, bound to the state) in a cookie, so it is
// bound to the browser that started the login and needs no server storage
// until the callback, where its state is spent in the store.
type loginTx struct {
	Nonce     string `json:"n"`
	Verifier  string `json:"v"`
	ReturnURL string `json:"r"`
	Issuer    string `json:"i"`
	Silent    bool   `json:"s,omitempty"`
	Created   int64  `json:"t"`
	// Previous is the key of the session this browser had when the login
	// started, ended when the login succeeds. The SameSite=Strict session
	// cookie is sent here, at /bff/login, but not with the OP's redirect to
	// the callback, which is a cross-site navigation.
	Previous []byte `json:"p,omitempty"`
}

// handleLogin starts the authorization code flow: GET
// /bff/login?returnUrl=/path&prompt=login.
func (b *BFF) handleLogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	returnURL, err := returnURLParam(q, "/")
	if err != nil {
		b.log.WarnContext(r.Context(), "login refused", "reason", "returnUrl is not a local path")
		fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	prompt := q.Get("prompt")
	if prompt != "" && !slices.Contains(oidc.Prompts, prompt) {
		fail(w, r, http.StatusBadRequest, "unknown prompt")
		return
	}
	// prompt=none is a silent login, as /bff/silent-login is: the callback
	// answers with the page that tells the SPA the outcome.
	b.startLogin(w, r, returnURL, prompt, prompt == "none")
}

// handleSilentLogin starts a prompt=none login meant for a hidden iframe;
// its callback answers with a page that tells the SPA the outcome.
func (b *BFF) handleSilentLogin(w http.ResponseWriter, r *http.Request) {
	b.startLogin(w, r, "/", "none", true)
}

func (b *BFF) startLogin(w http.ResponseWriter, r *http.Request, returnURL, prompt string, silent bool) {
	ctx := r.Context()
	req := oidc.NewAuthRequest()
	authURL, err := b.rp.AuthCodeURL(ctx, req, oidc.AuthOptions{Prompt: prompt})
	if err != nil {
		b.log.ErrorContext(ctx, "login cannot start", "error", err)
		fail(w, r, http.StatusBadGateway, "the identity provider is unavailable")
		return
	}
	tx := loginTx{
		Nonce:     req.Nonce,
		Verifier:  req.CodeVerifier,
		ReturnURL: returnURL,
		Issuer:    b.rp.Issuer(),
		Silent:    silent,
		Created:   b.cfg.Now().Unix(),
	}
	if prev, err := b.sessions.Peek(ctx, r); err == nil {
		tx.Previous = prev.Key[:]
	}
	b.dropOldLogins(w, r)
	plain, err := json.Marshal(tx)
	if err != nil {
		fail(w, r, http.StatusInternalServerError, "login cannot start")
		return
	}
	sealed := b.loginRing.Seal(plain, loginAD(req.State))
	// SameSite=Lax: the callback is a top-level navigation from the OP's
	// site, on which a Strict cookie would not be sent.
	// The creation time also goes in the clear, ahead of the sealed value,
	// for dropOldLogins, which cannot open cookies without their state.
	value := strconv.FormatInt(tx.Created, 10) + "." + base64.RawURLEncoding.EncodeToString(sealed)
	cookie.Set(w, loginCookieName(req.State), value, b.cfg.OIDC.LoginTimeout, http.SameSiteLaxMode)
	b.log.InfoContext(ctx, "login started", "prompt", prompt, "silent", silent)
	redirect(w, authURL)
}

// dropOldLogins clears the oldest login cookies when the browser already has
// maxOpenLogins, so abandoned logins cannot pile up past the browser's
// cookie limits.
func (b *BFF) dropOldLogins(w http.ResponseWriter, r *http.Request) {
	open := cookie.WithPrefix(r, loginCookiePrefix)
	if len(open) < maxOpenLogins {
		return
	}
	type aged struct {
		name    string
		created int64
	}
	var all []aged
	for _, c := range open {
		// The clear creation time is unauthenticated: at worst a forged
		// cookie gets itself, or an older login, dropped.
		created, _, _ := strings.Cut(c.Value, ".")
		n, _ := strconv.ParseInt(created, 10, 64)
		all = append(all, aged{c.Name, n})
	}
	slices.SortStableFunc(all, func(a, b aged) int { return cmp.Compare(a.created, b.created) })
	for _, c := range all[:len(all)-maxOpenLogins+1] {
		cookie.Clear(w, c.name, http.SameSiteLaxMode)
	}
}

// errLoginState is returned by takeLogin when the state names no open login
// of this browser.
var errLoginState = errors.New("the response does not match a login started in this browser, or the login has expired or was already completed")

// takeLogin finds, opens and spends the login transaction of state: it
// clears the cookie and records the state in the store as used, so a
// replayed callback (even with a copy of the cookie) fails.
func (b *BFF) takeLogin(w http.ResponseWriter, r *http.Request, state string) (*loginTx, error) {
	if state == "" || len(state) > 512 {
		return nil, errLoginState
	}
	name := loginCookieName(state)
	value, ok := cookie.Get(r, name)
	if !ok {
		return nil, errLoginState
	}
	cookie.Clear(w, name, http.SameSiteLaxMode)
	_, encoded, _ := strings.Cut(value, ".")
	sealed, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil {
		return nil, errLoginState
	}
	plain, err := b.loginRing.Open(sealed, loginAD(state))
	if err != nil {
		return nil, errLoginState
	}
	var tx loginTx
	if err := json.Unmarshal(plain, &tx); err != nil {
		return nil, errLoginState
	}
	age := b.cfg.Now().Sub(time.Unix(tx.Created, 0))
	if age > b.cfg.OIDC.LoginTimeout || age < -time.Minute {
		return nil, errLoginState
	}
	if tx.Issuer != b.rp.Issuer() {
		return nil, errLoginState
	}
	sum := sha256.Sum256([]byte(state))
	seen, err := b.cfg.Session.Store.SeenJTI(r.Context(), "login-state:"+hex.EncodeToString(sum[:]), b.cfg.OIDC.LoginTimeout+time.Minute)
	if err != nil {
		return nil, err
	}
	if seen {
		return nil, errLoginState
	}
	return &tx, nil
}

// loginCookieName derives a cookie name from the state: a truncated hash,
// so the name is short and made of cookie-safe characters only.
func loginCookieName(state string) string {
	sum := sha256.Sum256([]byte(state))
	return loginCookiePrefix + base64.RawURLEncoding.EncodeToString(sum[:9])
}

// loginAD binds a sealed login transaction to its state.
func loginAD(state string) []byte {
	return append([]byte("login\x00"), state...)
}
