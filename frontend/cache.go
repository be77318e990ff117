package frontend

import (
	"path"
	"strings"
)

// Cache-Control values: hashed build assets never change under their name,
// everything else is revalidated on every use.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// cacheControl returns the Cache-Control value for the file at name.
func cacheControl(name string) string {
	if hashedAsset(name) {
		return cacheImmutable
	}
	return cacheRevalidate
}

// hashedAsset reports whether the file name carries a content hash the way
// bundlers write one: "assets/index-BxY12abc.js" (Vite, Rollup),
// "main.3f2a9c1b.css", "main.3f2a9c1b.chunk.js" (webpack), "chunk-5F3E2A1B.js"
// (esbuild). The hash is a segment of at least 8 characters of
// [A-Za-z0-9_-], at least one of them a digit, that follows a "-" or "." and
// comes before the extension. HTML files are entry points and never count as
// hashed.
//
// Rollup's base64url hashes may themselves contain "-", so within a
// dot-separated part the shortest "-"-suffix of at least 8 characters is the
// candidate: "index-B-xY12ab" yields "B-xY12ab".
func hashedAsset(name string) bool {
	base := path.Base(name)
	ext := path.Ext(base)
	if ext == "" || ext == ".html" || ext == ".htm" {
		return false
	}
	parts := strings.Split(strings.TrimSuffix(base, ext), ".")
	for i, part := range parts {
		if hashCandidate(part, i > 0) {
			return true
		}
	}
	return false
}

// hashCandidate checks one dot-separated part of a file's stem; whole says
// whether the part itself follows a "." and so may be the hash.
func hashCandidate(part string, whole bool) bool {
	for j := len(part) - 1; j > 0; j-- {
		if part[j] == '-' && len(part)-j-1 >= 8 {
			return isHash(part[j+1:])
		}
	}
	return whole && len(part) >= 8 && isHash(part)
}

func isHash(s string) bool {
	digit := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			digit = true
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_', c == '-':
		default:
			return false
		}
	}
	return digit
}
