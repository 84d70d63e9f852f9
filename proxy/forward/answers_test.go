package forward

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestStatusOutsideHTTPsRangeIsAnInvalidAnswerOnEveryTransport(t *testing.T) {
	for _, code := range []int{999, 600, 99} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if code < 100 {
					// net/http's server refuses to write it: hijack.
					c, bw, _ := w.(http.Hijacker).Hijack()
					defer c.Close()
					bw.WriteString("HTTP/1.1 0" + strconv.Itoa(code) + " Odd\r\nContent-Length: 0\r\n\r\n")
					bw.Flush()
					return
				}
				w.WriteHeader(code)
			})
			plain := httptest.NewServer(h)
			defer plain.Close()
			tlsSrv := httptest.NewTLSServer(h)
			defer tlsSrv.Close()
			for _, srv := range []*httptest.Server{plain, tlsSrv} {
				ts := NewTransports()
				ts.roots = x509.NewCertPool()
				ts.roots.AddCert(tlsSrv.Certificate())
				p := NewPool(context.Background(), Config{Targets: []Target{{URL: mustURL(t, srv.URL), Weight: 1}}}, ts)
				defer p.Close()
				r := do(t, p, request(t, context.Background(), "GET", "/", nil))
				if r.status != 502 || r.code == "" {
					t.Errorf("%s: got %d (%v); want a 502 for a status outside 100-599", srv.URL, r.status, r.err)
				}
				messageIsClientSafe(t, r.message)
			}
		})
	}
}
