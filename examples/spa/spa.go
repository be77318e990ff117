// Package spa is bff's sample single-page application: one static page that
// asks bff who the user is, logs in and out, and calls an API through bff.
// It is plain JavaScript with no build step, so that `bff dev` can embed it,
// and it shows the calls a SPA behind bff makes:
//
//	fetch("/bff/user", {headers: {"X-CSRF": "1"}})   // who am I? 401 = anonymous
//	<iframe src="/bff/silent-login">                  // logged in at the OP? (postMessage)
//	location.href = "/bff/login?returnUrl=/"          // log in
//	location.href = claims["bff:logout_url"]          // log out
//	fetch("/bff/sessions", ...)                       // my sessions, and ending them
package spa

import "embed"

// Files holds index.html, app.js and app.css.
//
//go:embed index.html app.js app.css
var Files embed.FS
