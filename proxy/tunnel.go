package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/tunnel"
	"github.com/gatehouse/gatehouse/problem"
	"github.com/gatehouse/gatehouse/proxy/core"
)

// upgradeType returns the protocol a message switches (or asks to
// switch) to, if its Connection field says upgrade.
func upgradeType(h http.Header) string {
	if !httpx.HasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// upgradeOffer returns the protocols of the request's Upgrade that the
// route tunnels, as one field value; "" when it asks for no upgrade or
// for none of those. A request asking only for others is forwarded as an
// ordinary request, as nginx and HAProxy do when not configured for it:
// a server may always ignore Upgrade (RFC 9110 §7.8), so a client must
// cope, and clients offer upgrades on the off chance (curl --http2 on an
// http URL offers h2c).
func upgradeOffer(h http.Header, rt *core.Route) string {
	if !httpx.HasToken(h["Connection"], "upgrade") {
		return ""
	}
	vs := h["Upgrade"]
	if len(vs) == 1 && strings.IndexByte(vs[0], ',') < 0 {
		// The common case, one protocol, without allocating.
		if p := textproto.TrimString(vs[0]); rt.Upgradable(p) {
			return p
		}
		return ""
	}
	var kept []string
	for _, v := range vs {
		for v != "" {
			var p string
			p, v, _ = strings.Cut(v, ",")
			if p = textproto.TrimString(p); p != "" && rt.Upgradable(p) {
				kept = append(kept, p)
			}
		}
	}
	return strings.Join(kept, ", ")
}

// switchProtocols completes an upgrade the upstream accepted, if it is the
// one asked for (upgrade): RFC 9110 §7.8 lets a server switch only to a
// protocol the request offered. Anything else is not valid HTTP, and
// tunnelling it would take the connection past every policy: 502,
// counted against service, the one that answered (answering).
func (h *Handler) switchProtocols(w http.ResponseWriter, r *http.Request, service string, resp *http.Response, upgrade string) int {
	if switched := resp.Header.Get("Upgrade"); upgrade == "" || switched == "" || !httpx.HasToken([]string{upgrade}, switched) {
		resp.Body.Close()
		return h.failUpstreamOf(w, r, service, fmt.Errorf("upstream switched protocols to %q; the request offered %q", switched, upgrade))
	}
	h.tunnel(w, r, resp)
	return http.StatusSwitchingProtocols
}

// tunnel completes a protocol upgrade (WebSocket): the upstream said 101,
// so the client is told the same and the two connections are joined until
// both sides are done, or the Handler closes.
func (h *Handler) tunnel(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	upstream, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	defer upstream.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 cannot upgrade; net/http refuses the hijack.
		h.opts.Logger.Warn("upgrade on a connection that cannot be hijacked", "request_id", problem.RequestID(r), "error", err)
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	if !h.tunnels.Add(conn, upstream) {
		return // Close has begun
	}
	defer h.tunnels.Remove(conn, upstream)

	hdr := make(http.Header, len(resp.Header)+2)
	copyEndToEnd(hdr, resp.Header)
	upgrade := upgradeType(resp.Header)
	hdr["Connection"] = upgradeHdr
	hdr["Upgrade"] = []string{upgrade}
	httpx.AddVia(hdr, resp.ProtoMajor, resp.ProtoMinor)
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\n")
	hdr.Write(brw)
	brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		return
	}

	// brw.Reader first: bytes the client sent right after its request.
	tunnel.Join(tunnel.End{R: brw.Reader, C: conn}, tunnel.End{R: upstream, C: upstream})
}
