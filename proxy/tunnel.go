package proxy

import (
	"fmt"
	"io"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/tunnel"
	"github.com/gatehouse/gatehouse/problem"
)

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
