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
				br := bufio.NewReader(c)
				for {
					// A head ends with an empty line.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(response); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}
