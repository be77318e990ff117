package bff_test

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/gobff/bff"
	"github.com/gobff/bff/session"
	"github.com/gobff/bff/session/memstore"
)

// A Go app mounts bff next to its own routes: bff serves /bff/* and the
// OpenID Connect callbacks, and guards the app's API handlers so that they
// see only requests with a session and the anti-forgery header, and never
// a token-less browser's cookie as authority.
func Example() {
	key := make([]byte, session.KeySize)
	rand.Read(key) // in production: keys from configuration (bff keygen)

	b, err := bff.New(bff.Config{
		PublicURL: "https://app.example.com",
		OIDC: bff.OIDCConfig{
			Issuer:       "https://idp.example.com",
			ClientID:     "my-spa",
			ClientSecret: "from-a-secret-store",
		},
		Session: bff.SessionConfig{Store: memstore.New()}, // boltstore for one node
		Keys:    [][]byte{key},
	})
	if err != nil {
		panic(err)
	}

	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := bff.UserFrom(r.Context())
		fmt.Fprintf(w, "orders of %s\n", user.Subject)
	})

	mux := http.NewServeMux()
	mux.Handle("/", b)                              // /bff/login, /bff/user, /bff/logout, /signin-oidc, ...
	mux.Handle("/api/orders", b.ProtectAPI(orders)) // X-CSRF: 1 and a session, or 401
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

	// An anonymous call to the API gets 401, never a redirect to a login
	// page that a SPA's fetch could not follow.
	req := httptest.NewRequest(http.MethodGet, "https://app.example.com/api/orders", nil)
	req.Header.Set("X-CSRF", "1")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output: 401
}
