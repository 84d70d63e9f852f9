package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestSpecMaxBytesBoundsSpecsNotOtherBodies: --spec-max-bytes is the
// limit of a spec's document, in place of --admin-max-body-bytes, which
// still bounds every other body.
func TestSpecMaxBytesBoundsSpecsNotOtherBodies(t *testing.T) {
	secret := strings.Repeat("s", 40)
	p := launch(t, t.TempDir(), []string{"--spec-max-bytes", "2048", "--admin-max-body-bytes", "256"}, "GATEHOUSE_ADMIN_TOKEN="+secret)
	doc := `{"openapi":"3.1.0","info":{"title":"T","version":"1"},"paths":{}}`
	padded := func(n int) string { return strings.Replace(doc, `"T"`, `"`+strings.Repeat("t", n)+`"`, 1) }
	wantStatus(t, "a 1 KiB spec", p.do("POST", "/admin/v1/specs", secret, padded(1024)), http.StatusCreated)
	wantStatus(t, "a 3 KiB spec", p.do("POST", "/admin/v1/specs", secret, padded(3072)), http.StatusRequestEntityTooLarge)
	wantStatus(t, "a 1 KiB service", p.do("POST", "/admin/v1/services", secret,
		`{"name":"s","url":"http://127.0.0.1:1/`+strings.Repeat("a", 1024)+`"}`), http.StatusRequestEntityTooLarge)
	if _, err := parseFlags([]string{"--spec-max-bytes", "0"}, &strings.Builder{}); err == nil {
		t.Error("--spec-max-bytes 0 was taken; want an error")
	}
}
