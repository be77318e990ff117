package frontend

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// Dir returns a handler serving the built SPA in the directory dir (e.g.
// Vite's dist/). The directory is opened as an os.Root, so neither ".." nor a
// symbolic link leads outside it; it stays open for the handler's lifetime.
// dir must contain index.html. The handler behaves as described for FS.
func Dir(dir string, opts Options) (http.Handler, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("frontend: %w", err)
	}
	h, err := newFiles(root.FS(), opts)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("frontend: %s: %w", dir, err)
	}
	return h, nil
}

// FS returns a handler serving the built SPA in fsys, e.g. an embed.FS (use
// fs.Sub to strip a leading "dist" directory). fsys must contain index.html.
//
// The handler answers GET and HEAD only (otherwise 405). A request for an
// existing file serves it with http.ServeContent (Content-Type from the
// extension, Range, conditional requests on Last-Modified or, for files
// without a modification time such as embedded ones, a content ETag). A
// directory serves its own index.html, never a listing. A missing path whose
// last segment has no extension is a client-side route and gets the root
// index.html; any other missing path is 404, and so is every path under a
// NoFallback prefix, every dotfile and everything under a dot-directory. A
// path with a ".." segment is 400.
//
// index.html is served with "Cache-Control: no-cache", hashed build assets
// (see the package's caching rule) with "public, max-age=31536000,
// immutable", and every other file with "no-cache". Every response carries
// "X-Content-Type-Options: nosniff".
func FS(fsys fs.FS, opts Options) (http.Handler, error) {
	h, err := newFiles(fsys, opts)
	if err != nil {
		return nil, fmt.Errorf("frontend: %w", err)
	}
	return h, nil
}

func newFiles(fsys fs.FS, opts Options) (*files, error) {
	c, err := opts.config()
	if err != nil {
		return nil, err
	}
	fi, err := fs.Stat(fsys, "index.html")
	if err != nil {
		return nil, fmt.Errorf("need index.html: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("index.html is not a regular file")
	}
	return &files{fsys: fsys, config: c}, nil
}

// files is the handler returned by FS.
type files struct {
	fsys fs.FS
	config
}

func (h *files) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if invalidPath(p) {
		http.Error(w, "400 invalid URL path", http.StatusBadRequest)
		return
	}
	p = path.Clean("/" + p)
	if h.reserved(p) || hasDotSegment(p) {
		http.NotFound(w, r)
		return
	}

	name := strings.TrimPrefix(p, "/")
	if name == "" {
		name = "."
	}
	if h.serve(w, r, name) {
		return
	}
	if path.Ext(path.Base(p)) != "" {
		http.NotFound(w, r)
		return
	}
	if !h.serve(w, r, "index.html") {
		h.log.Error("frontend: index.html is gone", "path", p)
		http.NotFound(w, r)
	}
}

// serve writes the file at name, or the index.html of the directory at
// name, and reports whether there was one to write.
func (h *files) serve(w http.ResponseWriter, r *http.Request, name string) bool {
	f, fi, ok := h.open(name)
	if ok && fi.IsDir() {
		f.Close()
		name = path.Join(name, "index.html")
		f, fi, ok = h.open(name)
	}
	if !ok {
		return false
	}
	defer f.Close()
	if !fi.Mode().IsRegular() {
		return false
	}

	content, ok := f.(io.ReadSeeker)
	if !ok {
		b, err := io.ReadAll(f)
		if err != nil {
			h.log.Error("frontend: read", "name", name, "err", err)
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
			return true
		}
		content = bytes.NewReader(b)
	}
	if fi.ModTime().IsZero() {
		// No Last-Modified to revalidate against: an ETag from the content.
		tag, err := etag(content)
		if err != nil {
			h.log.Error("frontend: read", "name", name, "err", err)
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
			return true
		}
		w.Header().Set("Etag", tag)
	}
	w.Header().Set("Cache-Control", cacheControl(name))
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), content)
	return true
}

// open opens name; a file that cannot be opened or stat'ed counts as missing.
func (h *files) open(name string) (fs.File, fs.FileInfo, bool) {
	f, err := h.fsys.Open(name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			h.log.Warn("frontend: open", "name", name, "err", err)
		}
		return nil, nil, false
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		h.log.Warn("frontend: stat", "name", name, "err", err)
		return nil, nil, false
	}
	return f, fi, true
}

// etag returns a strong ETag for the content and rewinds it.
func etag(content io.ReadSeeker) (string, error) {
	sum := sha256.New()
	if _, err := io.Copy(sum, content); err != nil {
		return "", err
	}
	if _, err := content.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return `"` + base64.RawURLEncoding.EncodeToString(sum.Sum(nil)[:16]) + `"`, nil
}

// invalidPath reports whether the decoded URL path has a ".." segment (with
// "/" or "\" as separator) or a NUL byte.
func invalidPath(p string) bool {
	if strings.ContainsRune(p, 0) {
		return true
	}
	for seg := range strings.FieldsFuncSeq(p, isSlash) {
		if seg == ".." {
			return true
		}
	}
	return false
}

// hasDotSegment reports whether a segment of the cleaned path p starts with
// a dot: a dotfile or something under a dot-directory.
func hasDotSegment(p string) bool {
	for seg := range strings.FieldsFuncSeq(p, isSlash) {
		if strings.HasPrefix(seg, ".") {
			return true
		}
	}
	return false
}

func isSlash(r rune) bool { return r == '/' || r == '\\' }
