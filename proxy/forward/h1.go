package forward

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
)

// h1Transport tuning, next to the shared constants in transport.go.
const (
	// maxResponseHeaderBytes bounds a response's head (and the 1xx heads
	// before it that no trace hook took), as net/http's default
	// MaxResponseHeaderBytes does.
	maxResponseHeaderBytes = 10 << 20
	// maxDrainOnClose is how much of an unread response body Close
	// consumes to keep the connection, if that much is already buffered.
	maxDrainOnClose = 4 << 10
	// maxWriteWaitBeforeReuse is how long the end of a response waits for
	// the request body's writer to finish before giving up the
	// connection, as net/http does.
	maxWriteWaitBeforeReuse = 50 * time.Millisecond
	h1BufferSize            = 4 << 10 // each connection's reader and writer
)

// h1Transport is an HTTP/1.1 client for one plain-HTTP upstream host that
// does the exchange on the calling goroutine: it writes the request head,
// then reads the response head, with no goroutine handoff. Only a request
// body is written by a goroutine of its own, because the upstream may
// answer before it has read the body.
//
// It keeps what net/http's Transport does that a proxy needs: kept-alive
// connections in a LIFO idle stack (most recently used first, up to
// maxIdleConnsPerHost, closed after idleConnTimeout idle), the read
// timeout as ResponseHeaderTimeout (the wait for the head once the request
// is written), Expect: 100-continue, 1xx relayed through the Interim hook
// of Pool.RoundTripRelaying (or httptrace.ClientTrace.Got1xxResponse), 101 upgrades returning a
// read-write body, request trailers, one transparent retry of a request
// that met a connection the upstream closed while idle (by net/http's
// rule), and cancellation by the request's context.
//
// It drops what a proxy does not use: proxies from the environment,
// compression, HTTP/2, a default User-Agent, Basic auth from URL userinfo,
// trace hooks other than Got1xxResponse, and sorted header output.
//
// net/http keeps a read pending on every idle connection to notice the
// upstream closing it or sending what nobody asked for. This transport
// keeps no goroutine per connection; instead every idle connection is
// checked with one non-blocking peek when it is taken for reuse
// (its peeker), whatever the method: bytes there (the excess of a body
// longer than its Content-Length, a body after a response to HEAD, an
// unsolicited 408) would be read as the next request's response, which
// may be another client's. A connection the upstream closes between the
// check and the write is retried on a fresh one when net/http's rule
// allows (replayableH1), and bytes past a response already buffered
// forbid its reuse (finish).
type h1Transport struct {
	host string // URL.Host served; a request for another is refused
	addr string // host:port dialled
	read time.Duration
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu      sync.Mutex
	idle    []*h1Conn   // oldest first: the top is the most recently used
	janitor *time.Timer // closes expired idle connections; nil until first needed
	armed   bool        // janitor is scheduled
}

func newH1Transport(k transportKey) *h1Transport {
	u := url.URL{Host: k.host}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return &h1Transport{
		host: k.host,
		addr: net.JoinHostPort(u.Hostname(), port),
		read: k.read,
		dial: dialFunc(k.connect),
	}
}

// h1Conn is one connection with its buffers, which live as long as it.
type h1Conn struct {
	t      *h1Transport
	conn   net.Conn
	br     *bufio.Reader
	head   h1.ResponseHead  // the response head being read; its Fields reused
	chunks h1.ChunkedReader // a chunked response body's decoder, reused
	bw     *bufio.Writer
	abort  func() // closes conn; made once, registered per exchange (watch)
	w      watch  // the exchange's registration of abort
	reused bool   // taken from the idle stack
	since  time.Time
	peeker *peeker // whether it is still clean when taken from idle
	// interim is the exchange's hook for interim responses, if its
	// caller gave one (roundTrip); nil: the context's trace's.
	interim Interim
}

// interimHook is what is told of an interim response in the exchange
// under way: its own hook, or its context's trace's Got1xxResponse.
func (pc *h1Conn) interimHook(ctx context.Context) Interim {
	if pc.interim != nil {
		return pc.interim
	}
	if trace := httptrace.ContextClientTrace(ctx); trace != nil {
		return trace.Got1xxResponse
	}
	return nil
}

var errHeaderTooLarge = errors.New("response head over " + strconv.Itoa(maxResponseHeaderBytes>>20) + " MiB")

// h1Error is a failed exchange: what was being done, and the cause, which
// classify reads.
type h1Error struct {
	op  string
	err error
}

func (e *h1Error) Error() string { return e.op + ": " + e.err.Error() }
func (e *h1Error) Unwrap() error { return e.err }

var (
	errIdle408          = errors.New("408 on an idle connection")
	errBodyNotSent      = errors.New("request body not sent: the upstream answered first")
	errReadOnClosedBody = errors.New("http: read on closed response body")
)

// RoundTrip sends out and returns the response; see h1Transport. Like
// every http.RoundTripper it closes out.Body, even on error (perhaps
// after it returns: a body still being written when the response comes is
// closed when the writing ends). It does not modify out.
func (t *h1Transport) RoundTrip(out *http.Request) (*http.Response, error) {
	return t.roundTrip(out, nil)
}

// roundTrip is RoundTrip with interim, if not nil, told of interim
// responses rather than the context's trace.
func (t *h1Transport) roundTrip(out *http.Request, interim Interim) (*http.Response, error) {
	ctx := out.Context()
	body := out.Body
	if body == http.NoBody {
		body = nil
	}
	if err := t.check(out, body); err != nil {
		closeBody(body)
		return nil, err
	}
	for fresh := false; ; fresh = true {
		if err := ctx.Err(); err != nil {
			closeBody(body)
			return nil, err
		}
		now := time.Now()
		pc, err := t.conn(ctx, now, fresh)
		if err != nil {
			closeBody(body)
			return nil, err
		}
		// Set for every exchange, never cleared after: pc may be another
		// request's as soon as the exchange gives it back.
		pc.interim = interim
		// The read timeout runs from when the request goes out, not from
		// before a dial that may have taken most of the connect timeout.
		resp, stale, err := pc.exchange(ctx, time.Now(), out, body)
		if err == nil {
			return resp, nil
		}
		if !stale || fresh || ctx.Err() != nil {
			return nil, err
		}
		// The upstream closed the connection while it was idle: the
		// request never reached it. Older idle connections have most
		// likely gone the same way.
		t.dropIdleSince(pc.since)
		if body != nil {
			if body, err = out.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

func closeBody(b io.ReadCloser) {
	if b != nil {
		b.Close()
	}
}

// check refuses what cannot be sent.
func (t *h1Transport) check(out *http.Request, body io.ReadCloser) error {
	switch {
	case out.URL == nil:
		return errors.New("http: nil Request.URL")
	case out.URL.Scheme != "http" || out.URL.Host != t.host:
		return errors.New("h1 transport for http://" + t.host + " got a request for " + out.URL.Scheme + "://" + out.URL.Host)
	case body == nil && out.ContentLength > 0:
		return errors.New("http: Request.ContentLength=" + strconv.FormatInt(out.ContentLength, 10) + " with nil Body")
	}
	return nil
}

// replayableH1 is net/http's Request.isReplayable: a request it retries
// after a connection failure once something was written. It differs from
// the pool's replayable: PUT and DELETE are not in it, but a request with
// an Idempotency-Key is.
func replayableH1(out *http.Request) bool {
	// A trailer is filled in as the body is read: not twice (Pool.RoundTrip).
	if out.Body != nil && out.Body != http.NoBody && out.GetBody == nil || out.Trailer != nil {
		return false
	}
	switch out.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return out.Header["Idempotency-Key"] != nil || out.Header["X-Idempotency-Key"] != nil
}
