package forward

import (
	"errors"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"testing"
)

// lateTransport is a net/http-like transport whose read goroutine tells
// of a 1xx only after RoundTrip returned (a header timeout fired first).
type lateTransport struct{ late chan func() }

func (lt lateTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	trace := httptrace.ContextClientTrace(r.Context())
	lt.late <- func() { trace.Got1xxResponse(103, textproto.MIMEHeader{"Link": {"</a>"}}) }
	return nil, errors.New("timeout awaiting response headers")
}

func (lateTransport) CloseIdleConnections() {}

// TestAnInterimResponseToldAfterTheRoundTripReturnedIsNotRelayed: by
// then the caller answers the client itself (or tries another target),
// so a 1xx net/http's transport reports late must not reach the hook.
func TestAnInterimResponseToldAfterTheRoundTripReturnedIsNotRelayed(t *testing.T) {
	lt := lateTransport{late: make(chan func(), 1)}
	called := false
	req, _ := http.NewRequest("GET", "https://upstream.example/x", nil)
	if _, err := send(lt, req, func(int, textproto.MIMEHeader) error { called = true; return nil }); err == nil {
		t.Fatal("send succeeded; want the transport's error")
	}
	(<-lt.late)()
	if called {
		t.Fatal("the hook heard of a 1xx after RoundTrip returned")
	}
}
