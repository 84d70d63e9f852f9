package proxy

import (
	"errors"
	"io"
	"net/http"

	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/problem"
	"github.com/gatehouse/gatehouse/proxy/core"
)

// respond shows the upstream's head to the route's ResponseSteps before
// any of it is written. If they replace the response, it answers that
// (the upstream's body is discarded when forward closes it: drained if
// buffered, else the connection is closed) and reports done. Otherwise
// resp.Body becomes a reader that sends first what a step held, and
// counts (and keeps what a step asked to keep of) the rest as it streams.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, d *core.Decision, resp *http.Response, pr *policy.Request, chain *policy.Chain) (outcome, bool) {
	p := &pr.Resp
	p.Method, p.Status, p.Header, p.ContentLength = r.Method, resp.StatusCode, resp.Header, resp.ContentLength
	p.Chunked = len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked"
	p.Body = audit.BodyOf(r.Method, resp.StatusCode, resp.ContentLength, resp.Header, p.Chunked)
	chain.RespondHead(pr)
	var held []byte
	if p.Replace == nil && p.Held() > 0 {
		var err error
		if held, err = holdBody(resp.Body, p); err != nil {
			// Nothing is sent yet: the upstream's failure is answered as
			// any other (502, or 504 for a stall).
			return outcome{status: h.failUpstreamOf(w, r, answering(d, pr), err)}, true
		}
		chain.RespondHeld(pr)
	}
	if p.Replace != nil {
		return outcome{status: h.replace(w, r, resp, p.Replace)}, true
	}
	resp.Body = &observedBody{ReadCloser: resp.Body, held: held, p: p}
	return outcome{}, false
}

// holdBody reads up to p.Held() bytes of body, and one more to know whether
// there is more. It returns all it read, to be sent first if the
// response goes on; p.Prefix is the held part.
func holdBody(body io.Reader, p *policy.Response) ([]byte, error) {
	n := p.Held()
	b, err := io.ReadAll(io.LimitReader(body, n+1))
	if err != nil {
		return nil, err
	}
	p.Bytes = int64(len(b))
	p.Prefix, p.Over, p.Complete = b, int64(len(b)) > n, int64(len(b)) <= n
	if p.Over {
		p.Prefix = b[:n]
	}
	return b, nil
}

// replace answers err instead of the upstream's response, through the one
// problem writer. An upstream error restated keeps the upstream's
// end-to-end fields (its challenge, Retry-After, Allow...), as a
// forwarded response would; a response replaced for breaking a rule is
// gatehouse's own 502 and keeps none.
func (h *Handler) replace(w http.ResponseWriter, r *http.Request, resp *http.Response, err error) int {
	var up *problem.Upstream
	if errors.As(err, &up) {
		hdr := w.Header()
		copyEndToEnd(hdr, resp.Header)
		httpx.AddVia(hdr, resp.ProtoMajor, resp.ProtoMinor)
	}
	return h.fail(w, r, err)
}

// observedBody is a response body as the route's ResponseSteps see it
// stream: what was held goes first, then the rest, counted, its start
// kept as far as a step asked.
type observedBody struct {
	io.ReadCloser
	held []byte
	p    *policy.Response
}

func (b *observedBody) Read(buf []byte) (int, error) {
	if len(b.held) > 0 {
		n := copy(buf, b.held)
		b.held = b.held[n:]
		return n, nil
	}
	n, err := b.ReadCloser.Read(buf)
	p := b.p
	p.Bytes += int64(n)
	if room := p.Kept() - int64(len(p.Prefix)); room > 0 && n > 0 && !p.Over {
		p.Prefix = append(p.Prefix, buf[:min(int64(n), room)]...)
	}
	if err == io.EOF {
		p.Complete = true
	}
	return n, err
}
