// Package console is gatehouse's web console: static files embedded in the
// binary, and the http.Handler that serves them under /console/ on the
// admin listener. The console is a client of the admin API and nothing
// more: it holds no state of its own, sets no cookie, and signs in with an
// admin token that it keeps in the browser's sessionStorage and sends as
// the API's Authorization header.
//
// The files are plain ES modules and hand-written CSS: no framework and no
// build step, so a fresh clone runs as is. Assets are served under a path
// that names a hash of their content (/console/s/<hash>/...), so that they
// can be cached as immutable and a new binary's console is never mixed with
// an old one's; only the index, which names that path, is revalidated.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/problem"
)

// Prefix is where the console is served.
const Prefix = "/console/"

//go:embed static
var static embed.FS

// CSP allows the console's own files and nothing else: no inline script
// or style, no frames, no form posts, no other origin.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// assetPlaceholder is how index.html names the assets' directory; the
// handler replaces it with the hashed path.
const assetPlaceholder = "./static/"

// Handler serves the console.
type Handler struct {
	index     []byte
	indexETag string
	assetDir  string // "s/<hash>/", relative to Prefix
	assets    fs.FS
}

// New returns the console's handler.
func New() *Handler {
	assets, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	sum := sha256.New()
	fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, p)
		sum.Write([]byte(p))
		sum.Write(b)
		return err
	})
	hash := hex.EncodeToString(sum.Sum(nil))[:16]
	index, err := fs.ReadFile(assets, "index.html")
	if err != nil {
		panic(err)
	}
	h := &Handler{assetDir: "s/" + hash + "/", assets: assets, indexETag: `"` + hash + `"`}
	h.index = bytes.ReplaceAll(index, []byte(assetPlaceholder), []byte("./"+h.assetDir))
	return h
}

// contentTypes are those of the files the console has; a file of another
// kind is not served (404), rather than sniffed.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".png":  "image/png",
	".svg":  "image/svg+xml",
}

// allow is what every path of the console supports: the console is read,
// and changes nothing itself; OPTIONS works wherever GET does.
const allow = "GET, HEAD, OPTIONS"

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", CSP)
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
	// The path first, then the method, as the contract orders 404 and
	// 405: the console routes in the fragment (#/routes), so a path that
	// names no file is simply not there.
	f, ok := h.file(r.URL.Path)
	if !ok {
		hdr.Set("Cache-Control", "no-store")
		problem.Write(w, r, gatehouse.Errorf(gatehouse.ENOTFOUND, "The console has no file at this path."))
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		hdr.Set("Allow", allow)
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		hdr.Set("Allow", allow)
		problem.Write(w, r, gatehouse.Errorf(gatehouse.EMETHOD, "The console is read with GET or HEAD; it changes nothing itself."))
		return
	}
	if f.body == nil {
		// Relative asset URLs resolve only under the trailing slash.
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	hdr.Set("Cache-Control", f.cache)
	if f.etag != "" {
		hdr.Set("ETag", f.etag)
	}
	hdr.Set("Content-Type", f.ctype)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

// file is what the console serves at one path.
type file struct {
	body               []byte // nil: the redirect to Prefix
	ctype, cache, etag string
}

// file finds the file at path p, if the console has one.
func (h *Handler) file(p string) (file, bool) {
	if p == strings.TrimSuffix(Prefix, "/") {
		return file{}, true
	}
	rest, _ := strings.CutPrefix(p, Prefix)
	switch {
	case rest == "" || rest == "index.html":
		// Revalidated on every load, so that a new binary's console is
		// picked up at once.
		return file{body: h.index, ctype: contentTypes[".html"], cache: "no-cache", etag: h.indexETag}, true
	case strings.HasPrefix(rest, h.assetDir):
		name := strings.TrimPrefix(rest, h.assetDir)
		ct := contentTypes[path.Ext(name)]
		if b, err := fs.ReadFile(h.assets, name); err == nil && ct != "" && name != "index.html" && fs.ValidPath(name) {
			// The path names the content's hash: it never changes.
			return file{body: b, ctype: ct, cache: "public, max-age=31536000, immutable"}, true
		}
	}
	return file{}, false
}
