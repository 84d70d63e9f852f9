package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// cmdIdle measures what idle keep-alive connections cost a server: it
// opens n connections to addr, sends one request on each and reads its
// answer (so each is a kept-alive connection the server waits on, not a
// half-sent head), waits for the server to settle, and prints the growth
// of the server's resident memory (VmRSS of /proc/PID/status) over the
// connections, in all and per connection. It raises its own limit on open
// files first, as n may be far above the usual 1024.
//
//	benchtool idle -n 10000 -addr 127.0.0.1:8080 -pid PID [-path /] [-settle 2s] [-hold 0]
func cmdIdle(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 100, "connections to open")
	addr := fs.String("addr", "", "the server's host:port")
	pid := fs.Int("pid", 0, "the server's process id (its VmRSS is measured)")
	path := fs.String("path", "/", "the request sent on each connection (any answer will do, if it keeps the connection)")
	host := fs.String("host", "bench", "the Host of the request")
	settle := fs.Duration("settle", 2*time.Second, "wait after the last connection before measuring")
	hold := fs.Duration("hold", 0, "keep the connections open this long after measuring")
	parallel := fs.Int("parallel", 64, "connections opened at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 || *addr == "" || *pid <= 0 || *parallel <= 0 {
		return errors.New("idle: need -n > 0, -addr and -pid")
	}
	if err := raiseNoFile(uint64(*n) + 64); err != nil {
		return err
	}
	before, err := vmRSS(*pid)
	if err != nil {
		return err
	}
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *host + "\r\n\r\n")
	conns := make([]net.Conn, *n)
	errs := make([]error, *n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, *parallel)
	start := time.Now()
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			conns[i], errs[i] = openIdle(*addr, req)
		}()
	}
	wg.Wait()
	opened := time.Since(start)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err := firstErr(errs); err != nil {
		failed := 0
		for _, err := range errs {
			if err != nil {
				failed++
			}
		}
		return fmt.Errorf("idle: %d of %d connections failed, the first: %w", failed, *n, err)
	}
	time.Sleep(*settle)
	after, err := vmRSS(*pid)
	if err != nil {
		return err
	}
	// A connection the server closed meanwhile (an idle timeout shorter
	// than the settling) holds nothing: count only the open ones.
	open := 0
	for _, c := range conns {
		if stillOpen(c) {
			open++
		}
	}
	growth := after - before
	fmt.Fprintf(stdout, "idle connections: %d opened in %v, %d still open; server VmRSS %d KiB before, %d KiB after: %+d KiB, %.1f KiB per connection\n",
		*n, opened.Round(time.Millisecond), open, before, after, growth, float64(growth)/float64(max(open, 1)))
	if open != *n {
		return fmt.Errorf("idle: the server closed %d of the %d connections before the measurement", *n-open, *n)
	}
	time.Sleep(*hold)
	return nil
}

// openIdle connects, sends req and reads the whole answer, leaving the
// connection kept alive.
func openIdle(addr string, req []byte) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err == nil && resp.Close {
		err = fmt.Errorf("the answer (%s) closes the connection", resp.Status)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// stillOpen reports whether the peer has not closed c: a read that times
// out at once found nothing to read and no end.
func stillOpen(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	c.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// raiseNoFile raises the soft limit on open files to at least want, and
// the hard limit too if it must (which takes privilege).
func raiseNoFile(want uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= want {
		return nil
	}
	l.Cur = max(l.Max, want)
	l.Max = max(l.Max, want)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("idle: raising the open-files limit to %d: %w (run as root, or ulimit -Hn first)", want, err)
	}
	return nil
}

// vmRSS reads the resident set size of process pid, in KiB.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v)
			if len(f) != 2 || string(f[1]) != "kB" {
				break
			}
			return strconv.ParseInt(string(f[0]), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
