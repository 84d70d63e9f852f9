package problem

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestNonconformingIsA502NamingTheRuleAndTheUpstreamsStatus(t *testing.T) {
	err := &Nonconforming{Rule: "allow-missing", UpstreamStatus: 405, Detail: "a 405 response has no Allow"}
	for _, accept := range []string{"application/json", "application/xml"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/pets/1", nil)
		r.Header.Set("Accept", accept)
		WriteNegotiated(w, r, err)
		body := w.Body.String()
		if w.Code != http.StatusBadGateway || StatusOf(err) != http.StatusBadGateway {
			t.Fatalf("%s: got %d (StatusOf %d); want 502", accept, w.Code, StatusOf(err))
		}
		for _, want := range []string{TypeNonconforming, "allow-missing", "405"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: body %s lacks %q", accept, body, want)
			}
		}
	}
}

func TestUpstreamErrorKeepsItsStatusAndInventsNoField(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("Cache-Control", "max-age=60")
	w.Header().Set("Location", "/elsewhere")
	w.Header().Set("Content-Encoding", "gzip")
	err := &Upstream{Status: 418, Message: "short and stout"}
	WriteNegotiated(w, httptest.NewRequest("GET", "/tea", nil), err)
	var doc Document
	if e := json.Unmarshal(w.Body.Bytes(), &doc); e != nil {
		t.Fatal(e)
	}
	if w.Code != 418 || StatusOf(err) != 418 || doc.Status != 418 || doc.Type != TypeUpstream || doc.Detail != "short and stout" || doc.Title != "I'm a teapot" {
		t.Fatalf("got %d %+v; want 418 restated with its message", w.Code, doc)
	}
	h := w.Header()
	if h.Get("Cache-Control") != "max-age=60" || h.Get("Location") != "/elsewhere" || h.Get("Content-Encoding") != "" {
		t.Fatalf("header %v: want the upstream's Cache-Control and Location kept, its Content-Encoding gone", h)
	}
}
