package egress

import (
	"io"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/tunnel"
	"github.com/gatehouse/gatehouse/problem"
)

// tunnel answers a CONNECT whose checks passed: it connects to d first,
// so that a failure is still a proper answer (502, 504, 403), then tells
// the client 200 and splices the two connections until both sides are
// done. The handler stays running for the tunnel's life: internal/serve
// counts the connection as busy, and does not take a quiet tunnel for a
// client stalling mid-request.
func (h *Handler) tunnel(w http.ResponseWriter, r *http.Request, d destination, exact bool, ex *exchange) {
	dst, err := h.dial(r.Context(), d, exact)
	if err != nil {
		gerr, gone := h.classify(r.Context(), d, err)
		if gone {
			panic(http.ErrAbortHandler)
		}
		ex.status = h.fail(w, r, gerr)
		return
	}
	defer dst.Close()
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		ex.status = h.fail(w, r, gatehouse.Internal(err))
		return
	}
	defer client.Close()
	// A tunnel lasts as long as its two ends want. net/http clears the
	// deadlines on hijack (Go 1.26); a tunnel must not inherit one
	// should that change.
	client.SetDeadline(time.Time{})
	if !h.tunnels.Add(client, dst) {
		return // Close has begun
	}
	defer h.tunnels.Remove(client, dst)

	ex.status = http.StatusOK
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\nX-Request-Id: "+
		problem.RequestID(r)+"\r\n\r\n"); err != nil {
		return
	}
	// brw.Reader first: bytes the client sent right behind its CONNECT
	// (a TLS ClientHello, typically).
	ex.up, ex.down = tunnel.Join(tunnel.End{R: brw.Reader, C: client}, tunnel.End{R: dst, C: dst})
}
