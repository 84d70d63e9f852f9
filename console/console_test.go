package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// get sends a request to the console over a real socket and reads the
// whole answer.
func get(t *testing.T, srv *httptest.Server, method, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// assetPath is the hashed directory the index names.
func assetPath(t *testing.T, index string) string {
	t.Helper()
	m := regexp.MustCompile(`src="\./(s/[0-9a-f]{16}/)js/app\.js"`).FindStringSubmatch(index)
	if m == nil {
		t.Fatalf("index names no hashed app.js: %s", index)
	}
	return Prefix + m[1]
}

// TestEveryConsoleResponseCarriesTheSecurityHeaders: the index, an asset,
// a 404, a 405, an OPTIONS (204 with Allow, wherever GET works) and the
// redirect all carry the strict CSP and its
// companions; the index is revalidated, a hashed asset cached as
// immutable, and each file has its exact type.
func TestEveryConsoleResponseCarriesTheSecurityHeaders(t *testing.T) {
	srv := httptest.NewServer(New())
	defer srv.Close()
	_, index := get(t, srv, "GET", Prefix)
	assets := assetPath(t, index)
	for _, tc := range []struct {
		desc, method, path string
		status             int
		cache, ctype       string
	}{
		{desc: "index", method: "GET", path: Prefix, status: 200, cache: "no-cache", ctype: "text/html; charset=utf-8"},
		{desc: "index by name", method: "GET", path: Prefix + "index.html", status: 200, cache: "no-cache", ctype: "text/html; charset=utf-8"},
		{desc: "HEAD of the index", method: "HEAD", path: Prefix, status: 200, cache: "no-cache", ctype: "text/html; charset=utf-8"},
		{desc: "script", method: "GET", path: assets + "js/app.js", status: 200, cache: "public, max-age=31536000, immutable", ctype: "text/javascript; charset=utf-8"},
		{desc: "style sheet", method: "GET", path: assets + "app.css", status: 200, cache: "public, max-age=31536000, immutable", ctype: "text/css; charset=utf-8"},
		{desc: "asset under another hash", method: "GET", path: Prefix + "s/0000000000000000/js/app.js", status: 404, cache: "no-store", ctype: "application/problem+json"},
		{desc: "asset path without a hash", method: "GET", path: Prefix + "js/app.js", status: 404, cache: "no-store", ctype: "application/problem+json"},
		{desc: "client-side route as a path", method: "GET", path: Prefix + "routes", status: 404, cache: "no-store", ctype: "application/problem+json"},
		{desc: "escape from the asset tree", method: "GET", path: assets + "..%2f..%2fconsole.go", status: 404, cache: "no-store", ctype: "application/problem+json"},
		{desc: "a write", method: "POST", path: Prefix, status: 405, ctype: "application/problem+json"},
		{desc: "a write where there is no file", method: "POST", path: Prefix + "routes", status: 404, ctype: "application/problem+json"},
		{desc: "OPTIONS of the index", method: "OPTIONS", path: Prefix, status: 204},
		{desc: "OPTIONS of a script", method: "OPTIONS", path: assets + "js/app.js", status: 204},
		{desc: "OPTIONS without the trailing slash", method: "OPTIONS", path: "/console", status: 204},
		{desc: "OPTIONS where there is no file", method: "OPTIONS", path: Prefix + "routes", status: 404, ctype: "application/problem+json"},
		{desc: "without the trailing slash", method: "GET", path: "/console", status: 301},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			resp, _ := get(t, srv, tc.method, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s: got %d; want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			}
			for k, want := range map[string]string{
				"Content-Security-Policy": CSP,
				"X-Frame-Options":         "DENY",
				"Referrer-Policy":         "no-referrer",
				"X-Content-Type-Options":  "nosniff",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: got %q; want %q", k, got, want)
				}
			}
			if tc.cache != "" && resp.Header.Get("Cache-Control") != tc.cache {
				t.Errorf("Cache-Control: got %q; want %q", resp.Header.Get("Cache-Control"), tc.cache)
			}
			if tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type: got %q; want %q", resp.Header.Get("Content-Type"), tc.ctype)
			}
			if resp.Header.Get("Set-Cookie") != "" {
				t.Errorf("Set-Cookie: got %q; want none", resp.Header.Get("Set-Cookie"))
			}
			switch tc.status {
			case 204, 405:
				if resp.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
					t.Errorf("Allow: got %q; want GET, HEAD, OPTIONS", resp.Header.Get("Allow"))
				}
			case 301:
				if resp.Header.Get("Location") != Prefix {
					t.Errorf("Location: got %q; want %s", resp.Header.Get("Location"), Prefix)
				}
			}
		})
	}
}

// TestIndexIsRevalidatedWithItsETag: a browser holding the index gets 304
// until the console's files change.
func TestIndexIsRevalidatedWithItsETag(t *testing.T) {
	srv := httptest.NewServer(New())
	defer srv.Close()
	resp, _ := get(t, srv, "GET", Prefix)
	tag := resp.Header.Get("ETag")
	if tag == "" {
		t.Fatal("index without an ETag")
	}
	if resp, _ := get(t, srv, "GET", Prefix, "If-None-Match", tag); resp.StatusCode != 304 {
		t.Errorf("GET with If-None-Match %s: got %d; want 304", tag, resp.StatusCode)
	}
}

// TestConsoleFilesHoldNoInlineScriptOrStyle: the CSP would block them, so
// one that slipped in would break the console silently.
func TestConsoleFilesHoldNoInlineScriptOrStyle(t *testing.T) {
	srv := httptest.NewServer(New())
	defer srv.Close()
	_, index := get(t, srv, "GET", Prefix)
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
	} {
		if loc := bad.FindStringIndex(index); loc != nil {
			t.Errorf("index.html holds %q, which the CSP blocks", index[loc[0]:min(loc[1]+20, len(index))])
		}
	}
	if !strings.Contains(index, `type="module"`) {
		t.Errorf("index.html loads no module script")
	}
}
