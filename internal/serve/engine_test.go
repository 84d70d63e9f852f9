package serve_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testpki"
	"github.com/gatehouse/gatehouse/internal/wiretest"
)

// protoHandler answers with the protocol the request came by and
// whether it came over TLS.
var protoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	tlsOn := "cleartext"
	if r.TLS != nil {
		tlsOn = "tls"
	}
	io.WriteString(w, r.Proto+" "+tlsOn)
})

func tlsFiles(t *testing.T) (cert, key string, pool *tls.Config) {
	ca := testpki.NewCA(t, "test CA")
	leaf := ca.Server(t, "127.0.0.1")
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, []byte(leaf.CertPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte(leaf.KeyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key, &tls.Config{RootCAs: ca.Pool()}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestTheFastEngineHandsHTTP2ToNetHTTPAndServesHTTP11ItselfOverTLS(t *testing.T) {
	cert, key, cfg := tlsFiles(t)
	_, addr := wiretest.Serve(t, protoHandler, serve.Options{Engine: serve.EngineFast, TLSCert: cert, TLSKey: key, Logger: quiet()})
	for _, tc := range []struct {
		alpn []string
		want string
	}{
		{[]string{"h2", "http/1.1"}, "HTTP/2.0 tls"},
		{[]string{"http/1.1"}, "HTTP/1.1 tls"},
		{nil, "HTTP/1.1 tls"},
	} {
		c := cfg.Clone()
		c.NextProtos = tc.alpn
		tr := &http.Transport{TLSClientConfig: c}
		if len(tc.alpn) > 0 && tc.alpn[0] == "h2" {
			tr.Protocols = new(http.Protocols)
			tr.Protocols.SetHTTP2(true)
		}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if string(b) != tc.want {
			t.Fatalf("ALPN %v: got %q; want %q", tc.alpn, b, tc.want)
		}
	}
}

func TestTheFastEngineHandsH2CWithPriorKnowledgeToNetHTTP(t *testing.T) {
	_, addr := wiretest.Serve(t, protoHandler, serve.Options{Engine: serve.EngineFast, H2C: true, Logger: quiet()})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "HTTP/2.0 cleartext" {
		t.Fatalf("got %q", b)
	}
	// HTTP/1.1 beside it on the same listener.
	c := wiretest.Dial(t, addr)
	c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.Read("GET"); string(r.Body) != "HTTP/1.1 cleartext" {
		t.Fatalf("got %q", r.Body)
	}
}

// TestOverTLSTheFastEngineAnswersMalformedAndStalledHeadsWithProblems is
// the std engine's known limit closed: net/http answers a malformed head
// over TLS in plain text and a stall not at all.
func TestOverTLSTheFastEngineAnswersMalformedAndStalledHeadsWithProblems(t *testing.T) {
	cert, key, cfg := tlsFiles(t)
	_, addr := wiretest.Serve(t, protoHandler, serve.Options{Engine: serve.EngineFast, TLSCert: cert, TLSKey: key,
		ReadHeaderTimeout: 300 * time.Millisecond, Logger: quiet()})
	for _, tc := range []struct {
		desc, send string
		want       int
	}{
		{"malformed", "GET / HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n", http.StatusBadRequest},
		{"stalled", "GET / HTTP/1.1\r\nHost: x\r\n", http.StatusRequestTimeout},
		{"too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + string(make([]byte, 0)) + bigValue + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tc.send)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			wiretest.Problem(t, resp.StatusCode, resp.Header, b, tc.want)
		})
	}
	t.Run("cleartext to the TLS port", func(t *testing.T) {
		c := wiretest.Dial(t, addr)
		c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		r := c.Read("GET")
		wiretest.Problem(t, r.Status, r.Header, r.Body, http.StatusBadRequest)
	})
}

var bigValue = string(func() []byte {
	b := make([]byte, 40<<10)
	for i := range b {
		b[i] = 'b'
	}
	return b
}())

func TestMaxConnectionsHoldsNewConnectionsUntilOneCloses(t *testing.T) {
	for _, engine := range []string{serve.EngineStd, serve.EngineFast} {
		t.Run(engine, func(t *testing.T) {
			_, addr := wiretest.Serve(t, protoHandler, serve.Options{Engine: engine, MaxConnections: 1, Logger: quiet()})
			first := wiretest.Dial(t, addr)
			first.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			first.Read("GET")
			second, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer second.Close()
			io.WriteString(second, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			second.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, _ := second.Read(make([]byte, 1)); n != 0 {
				t.Fatal("a connection over the cap was served")
			}
			first.Send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			first.Read("GET")
			second.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(second), nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("once the first closed: %v %v; want 200", resp, err)
			}
		})
	}
}

func TestTheFastEngineDrainsAsTheStdOne(t *testing.T) {
	release := make(chan struct{})
	srv, addr := wiretest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, r.URL.Path)
	}), serve.Options{Engine: serve.EngineFast, Logger: quiet()})
	busy, idle := wiretest.Dial(t, addr), wiretest.Dial(t, addr)
	idle.Send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	idle.Read("GET")
	busy.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	for srv.InFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	for !srv.Draining() {
		time.Sleep(time.Millisecond)
	}
	idle.Send("GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
	r := idle.Read("GET")
	wiretest.Problem(t, r.Status, r.Header, r.Body, http.StatusServiceUnavailable)
	close(release)
	if r := busy.Read("GET"); string(r.Body) != "/slow" {
		t.Fatalf("the request in flight: got %d %q", r.Status, r.Body)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestBothEnginesBoundTheFieldLinesOfARequest: a head of more than
// h1.MaxFields small fields, far under the byte limit, is 431 on either
// engine (net/http bounds bytes only: serve counts for it); one at the
// bound is served.
func TestBothEnginesBoundTheFieldLinesOfARequest(t *testing.T) {
	for _, engine := range []string{serve.EngineStd, serve.EngineFast} {
		_, addr := wiretest.Serve(t, protoHandler, serve.Options{Engine: engine, Logger: quiet()})
		for _, tc := range []struct {
			fields int    // besides Host and last
			last   string // a last line and what follows the head
			want   int
		}{
			{h1.MaxFields - 1, "\r\n", http.StatusOK},
			{h1.MaxFields, "\r\n", http.StatusRequestHeaderFieldsTooLarge},
			{200, "\r\n", http.StatusRequestHeaderFieldsTooLarge},
			// net/http takes Transfer-Encoding out of the header: still a line.
			{h1.MaxFields - 2, "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", http.StatusOK},
			{h1.MaxFields - 1, "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		} {
			t.Run(fmt.Sprintf("%s/%d+%d", engine, tc.fields, strings.Count(tc.last, ":")), func(t *testing.T) {
				c := wiretest.Dial(t, addr)
				c.Send("GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-N: 1\r\n", tc.fields) + tc.last)
				r := c.Read("GET")
				if tc.want == http.StatusOK {
					if r.Status != http.StatusOK {
						t.Fatalf("got %d; want 200", r.Status)
					}
					return
				}
				wiretest.Problem(t, r.Status, r.Header, r.Body, tc.want)
			})
		}
	}
}
