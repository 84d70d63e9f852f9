// The request head on the wire, and the validators that keep a field
// from smuggling another.

package forward

import (
	"bufio"
	"errors"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// writeHead writes the request line and header fields. cl > 0 frames the
// body by Content-Length, -1 as chunked; 0 is no body. Host, framing and
// Connection are written from out's fields, never from out.Header.
func writeHead(bw *bufio.Writer, out *http.Request, cl int64) error {
	method := out.Method
	if method == "" {
		method = http.MethodGet
	}
	if !httpx.IsToken(method) {
		return errors.New("invalid method " + strconv.Quote(method))
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	u := out.URL
	if u.Opaque != "" {
		uri := u.RequestURI()
		if !validTarget(uri) {
			return errors.New("invalid request target")
		}
		bw.WriteString(uri)
	} else {
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		bw.WriteString(p)
		if u.RawQuery != "" || u.ForceQuery {
			if !validTarget(u.RawQuery) {
				return errors.New("invalid query")
			}
			bw.WriteByte('?')
			bw.WriteString(u.RawQuery)
		}
	}
	host := out.Host
	if host == "" {
		host = u.Host
	}
	if !validTarget(host) {
		return errors.New("invalid Host " + strconv.Quote(host))
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")

	for k, vs := range out.Header {
		if framingField(k) {
			continue
		}
		if !validHeaderName(k) {
			return errors.New("invalid header field name " + strconv.Quote(k))
		}
		for _, v := range vs {
			v = textproto.TrimString(v)
			if !validHeaderValue(v) {
				return errors.New("invalid header field value for " + k)
			}
			writeField(bw, k, v)
		}
	}

	switch {
	case cl > 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), cl, 10))
		bw.WriteString("\r\n")
	case cl < 0:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		if len(out.Trailer) > 0 {
			bw.WriteString("Trailer: ")
			first := true
			for k := range out.Trailer {
				if !validHeaderName(k) {
					continue
				}
				if !first {
					bw.WriteString(", ")
				}
				bw.WriteString(k)
				first = false
			}
			bw.WriteString("\r\n")
		}
	case method != http.MethodGet && method != http.MethodHead:
		// Many servers want a length for a method that may carry a body
		// (nginx answers a POST without one 411): net/http sends 0.
		bw.WriteString("Content-Length: 0\r\n")
	}
	switch {
	case out.Close:
		bw.WriteString("Connection: close\r\n")
	case httpx.HasToken(out.Header["Connection"], "upgrade"):
		bw.WriteString("Connection: Upgrade\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// framingField reports the fields writeHead writes itself.
func framingField(k string) bool {
	switch len(k) {
	case 4:
		return strings.EqualFold(k, "Host")
	case 7:
		return strings.EqualFold(k, "Trailer")
	case 10:
		return strings.EqualFold(k, "Connection")
	case 14:
		return strings.EqualFold(k, "Content-Length")
	case 17:
		return strings.EqualFold(k, "Transfer-Encoding")
	}
	return false
}

func validHeaderName(s string) bool { return httpx.IsToken(s) }

// validHeaderValue rejects control characters but tab, as net/http does:
// a CR or LF would end the field early and smuggle another.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validTarget rejects spaces and control characters in the request line
// and Host.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
