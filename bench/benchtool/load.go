package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// cmdLoad sends exactly n GET requests to addr over c kept-alive
// connections, reads every answer whole, and fails unless each was 200:
// a fixed amount of work, so that what a server did meanwhile (its system
// calls, say) can be divided by n. wrk runs for a time, not a count.
//
//	benchtool load -n 20000 -c 16 -addr 127.0.0.1:8080 [-path /bytes/1024] [-header "X-API-Key: k"]
func cmdLoad(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 10000, "requests to send")
	conns := fs.Int("c", 16, "connections, each sending its requests one after the other")
	addr := fs.String("addr", "", "the server's host:port")
	path := fs.String("path", "/", "request path")
	host := fs.String("host", "bench", "the Host of the requests")
	header := fs.String("header", "", "one more header line for every request (\"Name: value\")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 || *conns <= 0 || *addr == "" {
		return errors.New("load: need -n > 0, -c > 0 and -addr")
	}
	req := "GET " + *path + " HTTP/1.1\r\nHost: " + *host + "\r\n"
	if *header != "" {
		req += *header + "\r\n"
	}
	req += "\r\n"
	var left atomic.Int64
	left.Store(int64(*n))
	errs := make([]error, *conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = loadConn(*addr, []byte(req), &left)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := firstErr(errs); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	fmt.Fprintf(stdout, "%d requests in %v over %d connections, all 200\n", *n, elapsed.Round(time.Millisecond), *conns)
	return nil
}

// loadConn sends requests on one connection while left says some remain.
func loadConn(addr string, req []byte, left *atomic.Int64) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for left.Add(-1) >= 0 {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(req); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("got %s; want 200", resp.Status)
		}
		if resp.Close {
			return errors.New("the server closed the connection")
		}
	}
	return nil
}
