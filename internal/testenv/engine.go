package testenv

import "os"

// Engine is the HTTP/1.1 engine the data-plane tests serve with, from
// GATEHOUSE_TEST_ENGINE: "fast" (internal/h1, the binary's default, also
// when unset) or "std" (net/http). Every test that starts a data-plane
// server passes it on (serve.Options.Engine, or the binary's
// GATEHOUSE_ENGINE), so that one suite runs on either engine:
// scripts/test.sh runs the data-plane packages on both. The admin and
// egress listeners are on std whatever it says, as in production.
func Engine() string {
	if e := os.Getenv("GATEHOUSE_TEST_ENGINE"); e != "" {
		return e
	}
	return "fast"
}
