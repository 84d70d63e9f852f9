// The request body pump: written on its own goroutine while the response
// is read.

package forward

import (
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// bodyExchange writes a request body on its own goroutine while the
// caller reads the response.
type bodyExchange struct {
	pc      *h1Conn
	body    io.ReadCloser
	cl      int64 // > 0: that many bytes; -1: chunked
	trailer http.Header
	cont    chan bool // with Expect: 100-continue: true sends, false skips
	done    chan struct{}
	err     error // the write's outcome, set before done closes
	srcErr  atomic.Pointer[error]

	// The read timeout runs from the end of the body (net/http's
	// ResponseHeaderTimeout does), unless the head came first.
	mu       sync.Mutex
	headSeen bool
}

// run writes the body (after a 100, or the wait for one), then arms the
// read deadline. A body that cannot be read aborts the exchange: the
// upstream would wait for the rest forever.
func (ex *bodyExchange) run() {
	defer close(ex.done)
	defer ex.body.Close()
	if ex.cont != nil {
		t := time.NewTimer(expectContinueTimeout)
		select {
		case ok := <-ex.cont:
			t.Stop()
			if !ok {
				ex.err = errBodyNotSent
				return
			}
		case <-t.C:
		}
	}
	err, src := ex.write()
	ex.err = err
	if src {
		ex.srcErr.Store(&err)
		ex.pc.close()
		return
	}
	ex.mu.Lock()
	if !ex.headSeen {
		ex.pc.conn.SetReadDeadline(time.Now().Add(ex.pc.t.read))
	}
	ex.mu.Unlock()
}

// write copies the body, flushing after every read, as net/http does for
// chunked request bodies; src reports that reading the body failed.
func (ex *bodyExchange) write() (err error, src bool) {
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	buf := *bufp
	bw := ex.pc.bw
	remaining := ex.cl
	for {
		p := buf
		if ex.cl > 0 && int64(len(p)) > remaining {
			p = p[:remaining]
		}
		n, rerr := ex.body.Read(p)
		if n > 0 {
			if ex.cl < 0 {
				bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(n), 16))
				bw.WriteString("\r\n")
				bw.Write(p[:n])
				bw.WriteString("\r\n")
			} else {
				bw.Write(p[:n])
				remaining -= int64(n)
			}
			if err := bw.Flush(); err != nil {
				return err, false
			}
		}
		if ex.cl > 0 && remaining == 0 {
			return nil, false
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr, true
		}
	}
	if ex.cl > 0 {
		return errors.New("http: ContentLength=" + strconv.FormatInt(ex.cl, 10) + " with Body length " + strconv.FormatInt(ex.cl-remaining, 10)), true
	}
	bw.WriteString("0\r\n")
	for k, vs := range ex.trailer {
		if !validHeaderName(k) {
			continue
		}
		for _, v := range vs {
			if v = textproto.TrimString(v); validHeaderValue(v) {
				writeField(bw, k, v)
			}
		}
	}
	bw.WriteString("\r\n")
	return bw.Flush(), false
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// signal tells a writer waiting for 100 Continue whether to send.
func (ex *bodyExchange) signal(send bool) {
	if ex.cont == nil {
		return
	}
	select {
	case ex.cont <- send:
	default: // already told
	}
}

// headDone clears the read deadline once the head is read, and keeps
// the writer from arming it again.
func (ex *bodyExchange) headDone() {
	ex.mu.Lock()
	ex.headSeen = true
	ex.pc.conn.SetReadDeadline(time.Time{})
	ex.mu.Unlock()
}

// abandon ends a failed exchange: a writer waiting for a 100 gives up.
func (ex *bodyExchange) abandon() { ex.signal(false) }

// wrote reports whether the body was written in full, waiting a little
// for a writer that is almost done.
func (ex *bodyExchange) wrote() bool {
	select {
	case <-ex.done:
		return ex.err == nil
	default:
	}
	t := time.NewTimer(maxWriteWaitBeforeReuse)
	defer t.Stop()
	select {
	case <-ex.done:
		return ex.err == nil
	case <-t.C:
		return false
	}
}
