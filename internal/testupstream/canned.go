package testupstream

import (
	"bufio"
	"net"
	"testing"
)

// Canned starts an upstream that answers every request head (no body is
// read: GETs) with the same raw response bytes, allocating nothing per
// request, so that a benchmark's allocations are the client's alone. It
// returns "http://host:port" and stops when the test ends.
func Canned(tb testing.TB, response []byte) string {
	tb.Helper()
	return "http://" + Raw(tb, func(c net.Conn) {
		br := bufio.NewReader(c)
		for skipHead(br) == nil {
			if _, err := c.Write(response); err != nil {
				return
			}
		}
	})
}

// CannedOnce starts an upstream that answers the first request head of
// each connection with the raw response bytes, then closes it: given a
// response shorter than it declares, one broken off. It returns
// "http://host:port" and stops when the test ends.
func CannedOnce(tb testing.TB, response []byte) string {
	tb.Helper()
	return "http://" + Raw(tb, func(c net.Conn) {
		if skipHead(bufio.NewReader(c)) == nil {
			c.Write(response)
		}
	})
}

// Raw starts a TCP server on a loopback port that hands each connection
// to serve, on a goroutine of its own, and closes it when serve returns.
// It returns "host:port" and stops accepting when the test ends.
func Raw(tb testing.TB, serve func(c net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// skipHead reads a request head, up to the empty line that ends it,
// without allocating.
func skipHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			return nil
		}
	}
}
