package bff

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
)

// problem writes an RFC 9457 problem document. detail is shown to the
// client, so it never carries a token or an internal error.
func problem(w http.ResponseWriter, status int, detail string) {
	writeJSONAs(w, status, "application/problem+json", struct {
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail,omitempty"`
	}{http.StatusText(status), status, detail})
}

// writeJSON answers with v as JSON, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONAs(w, status, "application/json", v)
}

func writeJSONAs(w http.ResponseWriter, status int, contentType string, v any) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><meta charset="utf-8"><title>{{.Title}}</title>
<h1>{{.Title}}</h1>
<p>{{.Detail}}</p>
<p><a href="/">Back to the application</a></p>
</html>
`))

// fail answers a browser navigation (login, callback, logout) with a small
// HTML page, and anything else with a problem document.
func fail(w http.ResponseWriter, r *http.Request, status int, detail string) {
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		problem(w, status, detail)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = errorPage.Execute(w, struct{ Title, Detail string }{http.StatusText(status), detail})
}
