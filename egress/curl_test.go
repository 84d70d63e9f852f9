package egress

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// curlBin returns curl's path. Without curl the test is skipped, loudly,
// except in CI, where the check must run.
func curlBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("curl is not installed, and CI=true requires the curl -x checks: %v", err)
		}
		t.Skipf("SKIPPED: curl is not installed, so the curl -x checks did not run: %v", err)
	}
	return p
}

// curlResult is what curl reports: the final status, the proxy's answer
// to CONNECT (000 for none), and the body.
type curlResult struct {
	status, connect string
	body            []byte
}

func runCurl(t *testing.T, bin string, args ...string) curlResult {
	t.Helper()
	out := filepath.Join(t.TempDir(), "body")
	cmd := exec.Command(bin, append([]string{"-sS", "--max-time", "10", "-o", out, "-w", "%{http_code} %{http_connect}"}, args...)...)
	// Proxy settings of the environment must not decide where curl goes.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasSuffix(strings.ToLower(k), "_proxy") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	w, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("curl: %v", err)
	}
	status, connect, _ := strings.Cut(strings.TrimSpace(string(w)), " ")
	body, _ := os.ReadFile(out)
	return curlResult{status: status, connect: connect, body: body}
}

func TestCurlThroughProxy(t *testing.T) {
	t.Parallel()
	bin := curlBin(t)
	up := testupstream.Start(t)
	tlsUp := testupstream.Start(t, testupstream.WithTLS())
	e := newEgress(t, Options{})
	e.deploy(allow(up.Addr, ""), allow(tlsUp.Addr, ""))
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsUp.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	withCreds := (&url.URL{Scheme: "http", Host: e.addr, User: url.UserPassword("alice", alicePassword)}).String()
	without := "http://" + e.addr

	for _, tc := range []struct {
		desc                string
		args                []string
		status, connect     string
		wantEcho, wantTLSOn bool
	}{
		{desc: "http with credentials", args: []string{"-x", withCreds, up.URL + "/echo"}, status: "200", connect: "000", wantEcho: true},
		{desc: "https through CONNECT with credentials", args: []string{"-x", withCreds, "--cacert", ca, tlsUp.URL + "/echo"},
			status: "200", connect: "200", wantEcho: true, wantTLSOn: true},
		{desc: "http without credentials", args: []string{"-x", without, up.URL + "/echo"}, status: "407", connect: "000"},
		{desc: "CONNECT without credentials", args: []string{"-x", without, "--cacert", ca, tlsUp.URL + "/echo"}, status: "000", connect: "407"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := runCurl(t, bin, tc.args...)
			if r.status != tc.status || r.connect != tc.connect {
				t.Fatalf("curl got status %s, CONNECT %s; want %s, %s; body %s", r.status, r.connect, tc.status, tc.connect, r.body)
			}
			if !tc.wantEcho {
				return
			}
			var echo testupstream.Echo
			if err := json.Unmarshal(r.body, &echo); err != nil {
				t.Fatalf("not an echo: %s", r.body)
			}
			if echo.TLS != tc.wantTLSOn {
				t.Fatalf("destination saw TLS %v; want %v", echo.TLS, tc.wantTLSOn)
			}
			if _, ok := echo.Headers["Proxy-Authorization"]; ok {
				t.Fatal("the destination saw Proxy-Authorization")
			}
		})
	}
}
