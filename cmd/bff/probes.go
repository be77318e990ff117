package main

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gobff/bff"
)

// probeTimeout bounds the readiness check, so a hung store makes the probe
// fail rather than hang.
const probeTimeout = 2 * time.Second

// withProbes serves the health probes of bff serve ahead of the BFF:
//
//	GET /healthz   200 while the process serves requests (liveness)
//	GET /readyz    200 when the session store answers, else 503 (readiness)
//
// A load balancer takes an instance whose store is out of reach out of
// rotation by /readyz; it comes back by itself when the store does.
func withProbes(b *bff.BFF) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			probeAnswer(w, r, http.StatusOK, "ok", "")
		case "/readyz":
			ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
			defer cancel()
			if err := b.Ready(ctx); err != nil {
				probeAnswer(w, r, http.StatusServiceUnavailable, "not ready", "the session store is unavailable")
				return
			}
			probeAnswer(w, r, http.StatusOK, "ready", "")
		default:
			b.ServeHTTP(w, r)
		}
	})
}

func probeAnswer(w http.ResponseWriter, r *http.Request, status int, state, detail string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Status string `json:"status"`
		Detail string `json:"detail,omitempty"`
	}{state, detail})
}
