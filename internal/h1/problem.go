package h1

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/problem"
)

// WriteProblem writes err's problem document as a complete response
// straight to w, closing the exchange (Connection: close), for what is
// answered below any handler: a malformed or oversized head, a stall.
// It gives a stalled client one second to take it. Both engines write
// their connection-level problems with it.
func WriteProblem(w net.Conn, err error, requestID string) {
	doc := problem.New(err, "", requestID)
	body := doc.Marshal(problem.JSON)
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", doc.Status, http.StatusText(doc.Status))
	fmt.Fprintf(&b, "Content-Type: %s\r\nContent-Length: %d\r\nX-Request-Id: %s\r\nCache-Control: no-store\r\nConnection: close\r\nDate: %s\r\n\r\n",
		problem.JSON, len(body), doc.RequestID, httpDate())
	b.Write(body)
	w.SetWriteDeadline(time.Now().Add(time.Second))
	w.Write(b.Bytes())
}

// ErrCleartext is the problem of cleartext HTTP sent to a TLS listener,
// answered in cleartext as net/http's own TLS path answers it.
var ErrCleartext = gatehouse.Errorf(gatehouse.EINVALID, "This listener speaks HTTPS; the request was sent in cleartext.")

// CleartextConn returns the socket beneath a TLS read or handshake that
// failed because a method came instead of a TLS record, for the answer
// to ErrCleartext; nil for any other error. The caller writes the answer
// with its own once-only guard.
func CleartextConn(err error) net.Conn {
	var rhe tls.RecordHeaderError
	if !errors.As(err, &rhe) || rhe.RecordHeader[0] < 'A' || rhe.RecordHeader[0] > 'Z' {
		return nil
	}
	return rhe.Conn
}
