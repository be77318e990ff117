package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
)

// problem is a prepared RFC 9457 problem document. Details are fixed and
// generic: they never carry a token or an internal error.
type problem struct {
	status int
	length string
	body   []byte
}

func newProblem(status int, detail string) problem {
	b, err := json.Marshal(struct {
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{http.StatusText(status), status, detail})
	if err != nil {
		panic(err)
	}
	b = append(b, '\n')
	return problem{status, strconv.Itoa(len(b)), b}
}

var (
	probNotFound       = newProblem(http.StatusNotFound, "No API route matches this path.")
	probBadPath        = newProblem(http.StatusBadRequest, "The request path or query is not allowed.")
	probMethod         = newProblem(http.StatusMethodNotAllowed, "This method is not allowed on this API route.")
	probNotImplemented = newProblem(http.StatusNotImplemented, "This method is not proxied.")
	probOrigin         = newProblem(http.StatusForbidden, "WebSocket connections are accepted only from the application's origin.")
	probBadGateway     = newProblem(http.StatusBadGateway, "The upstream API could not be reached.")
	probTimeout        = newProblem(http.StatusGatewayTimeout, "The upstream API did not answer in time.")
)

func (p problem) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", p.length)
	w.WriteHeader(p.status)
	_, _ = w.Write(p.body)
}

// errorHandler is the ReverseProxy ErrorHandler: the upstream request
// failed before a response arrived. The client gets a generic problem
// document; the log gets the error (it holds no token: those travel in
// headers only).
func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	attrs := []any{"prefix", h.prefix, "method", r.Method, "upstream", h.host, "err", err}
	var ne net.Error
	switch {
	case errors.Is(err, errOutsideUpstream):
		h.log.Error("proxy: refused a request leaving the upstream base path", attrs...)
		probBadPath.write(w)
	case r.Context().Err() != nil:
		// The client went away (or the server is shutting down): whatever
		// err says, nobody is waiting for the answer.
		h.log.Debug("proxy: client canceled the request", attrs...)
		probBadGateway.write(w)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		h.log.Error("proxy: upstream timed out", attrs...)
		probTimeout.write(w)
	default:
		h.log.Error("proxy: upstream request failed", attrs...)
		probBadGateway.write(w)
	}
}
