package proxy

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// An h2c upgrade tunnelled after the upstream's 101 would carry HTTP/2
// requests for any path past every policy: gatehouse never forwards one,
// whatever a route says, and serves the request as an ordinary one.
func TestH2CUpgradeIsNeverForwarded(t *testing.T) {
	up := testupstream.Start(t)
	for _, tc := range []struct {
		desc     string
		upgrades string // the route's field, "" for the default
	}{
		{"default upgrades", ""},
		{"a route allowing websocket", `,"upgrades":["websocket"]`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			g := newGateway(t)
			g.route(up.URL, "", tc.upgrades)
			c := g.dial()
			c.send("GET /echo HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\n" +
				"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
			r := c.read("GET")
			if r.status != http.StatusOK {
				t.Fatalf("got %d; want the request served as an ordinary one", r.status)
			}
			e := r.echo(t)
			for _, k := range []string{"Upgrade", "Http2-Settings"} {
				if v, ok := e.Headers[k]; ok {
					t.Errorf("the upstream received %s %q", k, v)
				}
			}
			if v := strings.Join(e.Headers["Connection"], ","); strings.Contains(strings.ToLower(v), "upgrade") {
				t.Errorf("the upstream received Connection %q", v)
			}
		})
	}
}

func TestRouteUpgradesDecideWhichUpgradesAreForwarded(t *testing.T) {
	up := testupstream.Start(t)
	for _, tc := range []struct {
		desc     string
		upgrades string
		asked    string
		want     string // the Upgrade the upstream sees, "" for none
	}{
		{"websocket by default", ``, "websocket", "websocket"},
		{"names compare without case", `,"upgrades":["WebSocket"]`, "websocket", "websocket"},
		{"an empty list allows none", `,"upgrades":[]`, "websocket", ""},
		{"another protocol than the route's", `,"upgrades":["websocket"]`, "foo/2", ""},
		{"a protocol the route names, with a version", `,"upgrades":["foo"]`, "foo/2", "foo/2"},
		{"of several offered, those the route allows", `,"upgrades":["websocket"]`, "h2c, websocket, foo", "websocket"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			g := newGateway(t)
			g.route(up.URL, "", tc.upgrades)
			// /echo answers 200 whatever is asked: what matters is what
			// reached it.
			e := g.get("/echo", "Connection", "Upgrade", "Upgrade", tc.asked).echo(t)
			if got := strings.Join(e.Headers["Upgrade"], ","); got != tc.want {
				t.Fatalf("the upstream received Upgrade %q; want %q", got, tc.want)
			}
			if tc.want == "" {
				if v, ok := e.Headers["Connection"]; ok {
					t.Fatalf("the upstream received Connection %q with no upgrade to ask for", v)
				}
			}
		})
	}
}

// A 101 the client did not ask for, or to another protocol than asked,
// is not valid HTTP (RFC 9110 §7.8): 502, never a tunnel.
func TestUnrequestedSwitchingProtocolsIsA502(t *testing.T) {
	switchesToH2C := testupstream.Canned(t, []byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"))
	switchesToNothing := testupstream.Canned(t, []byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n"))
	for _, tc := range []struct {
		desc     string
		upstream string
		headers  []string
	}{
		{"no upgrade asked for", switchesToH2C, nil},
		{"another protocol than asked", switchesToH2C, []string{"Connection", "Upgrade", "Upgrade", "websocket"}},
		{"an upgrade the route does not forward", switchesToH2C, []string{"Connection", "Upgrade", "Upgrade", "h2c"}},
		{"no protocol named", switchesToNothing, []string{"Connection", "Upgrade", "Upgrade", "websocket"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			g := newGateway(t)
			g.route(tc.upstream, "", "")
			c := g.dial()
			req := "GET /x HTTP/1.1\r\nHost: gw\r\n"
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req += tc.headers[i] + ": " + tc.headers[i+1] + "\r\n"
			}
			c.send(req + "\r\n")
			r := c.read("GET")
			doc := assertProblem(t, r, http.StatusBadGateway)
			if b, _ := json.Marshal(doc); strings.Contains(string(b), "h2c") {
				t.Fatalf("the problem names what the upstream said: %s", b)
			}
			// The connection is still HTTP: a second request is answered.
			c.send("GET /x HTTP/1.1\r\nHost: gw\r\n\r\n")
			assertProblem(t, c.read("GET"), http.StatusBadGateway)
		})
	}
}

// A WebSocket tunnel is a hijacked connection: http.Server's Shutdown
// neither waits for nor closes it. Closing the data plane ends it.
func TestClosingTheDataPlaneEndsItsWebSocketTunnels(t *testing.T) {
	g := newGateway(t)
	up := testupstream.Start(t)
	g.route(up.URL, "", "")
	ws, _, err := testupstream.DialWebSocket("ws://"+g.addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteText("hello"); err != nil {
		t.Fatal(err)
	}
	if got, err := ws.ReadText(); err != nil || got != "hello" {
		t.Fatalf("echo %q, %v", got, err)
	}
	g.handler.Close()
	// A bound on the test, not a timing assertion: without the fix the
	// read never returns.
	ws.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := ws.ReadText(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after Close: read %q, %v; want the tunnel ended", got, err)
	}
}

// A tunnel passes a half-close on: the client's CloseWrite reaches a
// plain-HTTP upstream as EOF, and the upstream can still answer through
// the tunnel.
func TestWebSocketTunnelPassesAClientsHalfCloseToTheUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	upstreamRead := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			upstreamRead <- "request: " + err.Error()
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		b, err := io.ReadAll(br) // to the half-close, which the tunnel must pass on
		if err != nil {
			upstreamRead <- "tunnel: " + err.Error()
			return
		}
		upstreamRead <- string(b)
		io.WriteString(c, "answer after EOF")
	}()
	g := newGateway(t)
	g.route("http://"+ln.Addr().String(), "", "")
	c := g.dial()
	c.send("GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if r := c.read("GET"); r.status != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %d %s; want 101", r.status, r.body)
	}
	c.send("client's last bytes")
	c.CloseWrite()
	if got := <-upstreamRead; got != "client's last bytes" {
		t.Fatalf("upstream read %q; want the client's bytes, then EOF", got)
	}
	if b, err := io.ReadAll(c.R); err != nil || string(b) != "answer after EOF" {
		t.Fatalf("client read %q, %v; want the upstream's answer after the half-close", b, err)
	}
}
