package testenv

import "os"

// Engine is the HTTP/1.1 engine the data-plane tests serve with, from
// GATEHOUSE_TEST_ENGINE: "std" (net/http, also when unset) or "fast"
// (internal/h1). Every test that starts a data-plane server passes it on
// (serve.Options.Engine, or the binary's GATEHOUSE_ENGINE), so that one
// suite runs on either engine: scripts/test.sh runs the data-plane
// packages on both.
func Engine() string {
	if e := os.Getenv("GATEHOUSE_TEST_ENGINE"); e != "" {
		return e
	}
	return "std"
}
