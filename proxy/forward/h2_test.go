package forward

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// h2Upstream speaks HTTP/2 with prior knowledge frame by frame: answer
// is called with the framer and the stream id of each request once it
// has been received whole (so that no write of the client's races the
// answer).
func h2Upstream(t *testing.T, answer func(fr *http2.Framer, c net.Conn, stream uint32)) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				preface := make([]byte, len(http2.ClientPreface))
				if _, err := io.ReadFull(c, preface); err != nil {
					return
				}
				fr := http2.NewFramer(c, c)
				fr.WriteSettings()
				for {
					f, err := fr.ReadFrame()
					if err != nil {
						return
					}
					switch f := f.(type) {
					case *http2.SettingsFrame:
						if !f.IsAck() {
							fr.WriteSettingsAck()
						}
					case *http2.HeadersFrame:
						if f.StreamEnded() {
							answer(fr, c, f.StreamID)
						}
					case *http2.DataFrame:
						if f.StreamEnded() {
							answer(fr, c, f.StreamID)
						}
					}
				}
			}()
		}
	}()
	return mustURL(t, "http://"+ln.Addr().String())
}

// TestHTTP2FailuresAreClassified: each way an HTTP/2 upstream fails a
// request, over a real socket, is the 502 that names it.
func TestHTTP2FailuresAreClassified(t *testing.T) {
	tests := []struct {
		desc    string
		answer  func(fr *http2.Framer, c net.Conn, stream uint32)
		wantMsg string
	}{
		{desc: "RST_STREAM REFUSED_STREAM",
			answer:  func(fr *http2.Framer, _ net.Conn, id uint32) { fr.WriteRSTStream(id, http2.ErrCodeRefusedStream) },
			wantMsg: "The upstream refused the request's HTTP/2 stream."},
		{desc: "RST_STREAM INTERNAL_ERROR",
			answer:  func(fr *http2.Framer, _ net.Conn, id uint32) { fr.WriteRSTStream(id, http2.ErrCodeInternal) },
			wantMsg: "The upstream reset the request's HTTP/2 stream without answering."},
		{desc: "GOAWAY, then the connection closed",
			answer: func(fr *http2.Framer, c net.Conn, id uint32) {
				fr.WriteGoAway(id, http2.ErrCodeInternal, nil)
				c.Close()
			},
			wantMsg: "The upstream closed the HTTP/2 connection (GOAWAY) without answering."},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			p := newTestPool(t, Config{Targets: []Target{{URL: h2Upstream(t, tc.answer), Weight: 1}}, HTTP2: true})
			// A POST whose body cannot be replayed: neither the transport
			// nor the pool may retry it.
			r := do(t, p, request(t, context.Background(), "POST", "/", io.NopCloser(strings.NewReader("x"))))
			if r.status != 502 || r.message != tc.wantMsg {
				t.Fatalf("got %d %q (%v); want 502 %q", r.status, r.message, r.err, tc.wantMsg)
			}
		})
	}
}

// TestHTTP2ServiceNeedsAnUpstreamThatSelectsH2: an https upstream that
// speaks only HTTP/1.1 to an http2 service is a 502 that says so, and
// one that selects h2 is spoken to in HTTP/2.
func TestHTTP2ServiceNeedsAnUpstreamThatSelectsH2(t *testing.T) {
	const noH2 = "The upstream does not speak HTTP/2 over TLS (it did not select h2)."
	ca := testpki.NewCA(t, "test CA")
	tlsSettings, err := NewTLS(TLSSettings{CABundle: []byte(ca.PEM), CAOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc      string
		protos    []string
		want      int
		wantProto string
		wantMsg   string
	}{
		{desc: "h2 selected", protos: []string{"h2", "http/1.1"}, want: 200, wantProto: "HTTP/2.0"},
		{desc: "HTTP/1.1 only, refused by alert", protos: []string{"http/1.1"}, want: 502, wantMsg: noH2},
		{desc: "no ALPN at all", protos: nil, want: 502, wantMsg: noH2},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Upstream", r.Proto)
			}), ErrorLog: log.New(io.Discard, "", 0)} // the refused handshakes are the test's
			cfg := &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1").TLS}, NextProtos: tc.protos}
			srv.TLSConfig = cfg
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.protos) < 2 {
				// HTTP/1.1 over TLS, with cfg's protocols as they are.
				go srv.Serve(tls.NewListener(ln, cfg))
			} else {
				go srv.ServeTLS(ln, "", "")
			}
			t.Cleanup(func() { srv.Close() })
			p := newTestPool(t, Config{Targets: []Target{{URL: mustURL(t, "https://"+ln.Addr().String()), Weight: 1}}, HTTP2: true, TLS: tlsSettings})
			r := get(t, p)
			if r.status != tc.want || r.upstream != tc.wantProto || r.message != tc.wantMsg {
				t.Fatalf("got %d %q %q (%v); want %d %q %q", r.status, r.upstream, r.message, r.err, tc.want, tc.wantProto, tc.wantMsg)
			}
		})
	}
}

// TestRequestDeadlineIsToldFromTheReadTimeoutAndTheClientGoingAway: a
// RequestDeadline that passes before the head is a 504 naming it, and
// no failure of the target's; the client going away is no answer at all;
// the read timeout, when it passes first, is named as itself.
func TestRequestDeadlineIsToldFromTheReadTimeoutAndTheClientGoingAway(t *testing.T) {
	u, _, _ := blockingUpstream(t)
	tests := []struct {
		desc     string
		deadline time.Duration
		read     time.Duration
		cancel   time.Duration // the client goes away after this; 0: never
		wantGone bool
		wantMsg  string
	}{
		{desc: "the request's deadline", deadline: 50 * time.Millisecond, read: time.Minute,
			wantMsg: "The upstream did not answer within the request's deadline of 50ms."},
		{desc: "the read timeout first", deadline: time.Minute, read: 50 * time.Millisecond,
			wantMsg: "The upstream did not answer within 50ms."},
		{desc: "the client gone first", deadline: time.Minute, read: time.Minute, cancel: 50 * time.Millisecond,
			wantGone: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			p := newTestPool(t, Config{Targets: []Target{{URL: u, Weight: 1}}, ReadTimeout: tc.read, MaxFails: 1})
			client, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel > 0 {
				time.AfterFunc(tc.cancel, cancel)
			}
			out := request(t, client, "GET", "/", nil)
			ctx, stop := RequestDeadline(out.Context(), tc.deadline)
			defer stop()
			resp, _, err := p.RoundTrip(out.WithContext(ctx))
			if err == nil {
				resp.Body.Close()
				t.Fatal("got an answer; want a failure")
			}
			gerr, gone := Classify(client, err)
			if gone != tc.wantGone {
				t.Fatalf("clientGone %t (%v); want %t", gone, err, tc.wantGone)
			}
			if !gone && (statusOf(gerr) != 504 || !strings.Contains(gerr.Error(), tc.wantMsg)) {
				t.Errorf("got %d %v; want 504 %q", statusOf(gerr), gerr, tc.wantMsg)
			}
			if n := p.targets[0].fails.Load(); tc.deadline < tc.read && n != 0 {
				t.Errorf("the target recorded %d failures for a client's deadline; want 0", n)
			}
		})
	}
}

// TestProtocolIsPartOfTheTransportKey: an http1 and an http2 service of
// one upstream address never share a transport, so each speaks its own
// protocol.
func TestProtocolIsPartOfTheTransportKey(t *testing.T) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", r.Proto)
	}), Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	u := mustURL(t, "http://"+ln.Addr().String())
	ts := NewTransports()
	for _, tc := range []struct {
		http2 bool
		want  string
	}{{false, "HTTP/1.1"}, {true, "HTTP/2.0"}, {false, "HTTP/1.1"}} {
		p := NewPool(context.Background(), Config{Targets: []Target{{URL: u, Weight: 1}}, HTTP2: tc.http2}, ts)
		t.Cleanup(p.Close)
		if r := get(t, p); r.upstream != tc.want {
			t.Errorf("HTTP2 %t: the upstream saw %q (%v); want %s", tc.http2, r.upstream, r.err, tc.want)
		}
	}
}
