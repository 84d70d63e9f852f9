// Command testupstream serves the testupstream handler on a fixed address,
// for the benchmark harness and for trying gatehouse by hand:
//
//	testupstream -addr 127.0.0.1:9000
//
// See package internal/testupstream for the modes (/bytes/{n}, /echo, ...).
// Requests are not logged and not recorded.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	h2c := flag.Bool("h2c", false, "also serve HTTP/2 cleartext (prior knowledge)")
	useTLS := flag.Bool("tls", false, "serve HTTPS with a self-signed certificate")
	name := flag.String("name", "", "X-Upstream-Name response header")
	flag.Parse()

	u, err := testupstream.New(testupstream.Options{
		Addr:     *addr,
		H2C:      *h2c,
		TLS:      *useTLS,
		Name:     *name,
		NoRecord: true,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "testupstream:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "testupstream: listening on", u.URL)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	if err := u.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "testupstream:", err)
		os.Exit(1)
	}
}
