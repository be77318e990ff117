package frontend

import "testing"

func TestHashedAsset(t *testing.T) {
	for name, want := range map[string]bool{
		"assets/index-BxY12abc.js":             true, // Vite / Rollup
		"assets/index-B-xY12ab.js":             true, // base64url hash with a "-"
		"assets/_plugin-vue_export-4a_b3Cd.js": true,
		"main.3f2a9c1b.css":                    true, // webpack
		"static/js/main.3f2a9c1b.chunk.js":     true,
		"chunk-5f3e2a1b9c.js":                  true, // esbuild
		"chunk-5F3E2A1B.js":                    true,
		"assets/logo-a1b2c3d4.svg":             true,

		"index.html":                 false,
		"page-3f2a9c1b.html":         false, // entry points are never immutable
		"app.css":                    false,
		"favicon.ico":                false,
		"robots.txt":                 false,
		"app.min.js":                 false,
		"jquery-3.7.1.min.js":        false,
		"background-image.png":       false, // long enough, no digit
		"user-profile-avatar.png":    false,
		"assets/index-BxY12ab.js":    false, // 7 characters
		"assets/index-BxYzabcd.js":   false, // no digit
		"12345678.js":                false, // no separator before the hash
		"assets/3f2a9c1b":            false, // no extension
		"main.3f2a9c1b+x.css":        false, // "+" is not a hash character
		"assets/index-BxY12abc.js/x": false,
	} {
		if got := hashedAsset(name); got != want {
			t.Errorf("hashedAsset(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCacheControl(t *testing.T) {
	if got := cacheControl("assets/index-BxY12abc.js"); got != "public, max-age=31536000, immutable" {
		t.Errorf("hashed asset: Cache-Control %q", got)
	}
	for _, name := range []string{"index.html", "docs/index.html", "app.css", "favicon.ico"} {
		if got := cacheControl(name); got != "no-cache" {
			t.Errorf("%s: Cache-Control %q, want no-cache", name, got)
		}
	}
}
