// Package testenv holds what the test run decides for every test: the one
// rule for tests that need a server from a Debian package (PostgreSQL,
// Redis): without it they are skipped, loudly, except in CI (CI=true),
// where they fail, since CI must install it; and the HTTP/1.1 engine the
// data plane is tested on (Engine).
package testenv

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing applies the rule to t, whose server (named what) could not be
// found (err): it fails t in CI, else skips it with skipMessage, said on
// stderr too so that a plain `go test` run shows it.
func Missing(t testing.TB, what, debianPackage, skipMessage string, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s tests FAILED: %v; CI must install the %s package (see .ci/run)", what, err, debianPackage)
	}
	fmt.Fprintf(os.Stderr, "\n!!! %s: %s (%v)\n\n", t.Name(), skipMessage, err)
	t.Skip(skipMessage)
}

// QuietLogs discards what the default logger is given unless the tests
// run with -v: the logs of deliberately failing requests would bury a
// failure. Call it from TestMain.
func QuietLogs() {
	flag.Parse()
	if !testing.Verbose() {
		slog.SetDefault(slog.New(slog.DiscardHandler))
	}
}
