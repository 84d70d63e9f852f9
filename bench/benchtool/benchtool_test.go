package main

import (
	"bytes"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// A real `wrk -t1 -c64 -d2s --latency` output (wrk 4.1, Debian 12).
const wrkOK = `Running 2s test @ http://127.0.0.1:19999/bytes/1024
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   261.99us  137.79us   3.68ms   94.80%
    Req/Sec   181.57k     7.80k  188.01k    80.00%
  Latency Distribution
     50%  253.00us
     75%  267.00us
     90%  280.00us
     99%    1.27ms
  361670 requests in 2.00s, 52.43MB read
Requests/sec: 180710.40
Transfer/sec:     26.19MB
`

const wrkErrors = `Running 1m test @ http://127.0.0.1:19999/bytes/1024
  1 threads and 256 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.01s   137.79ms   2.00s    94.80%
    Req/Sec    10.57k     7.80k   18.01k    80.00%
  Latency Distribution
     50%    1.00s 
     75%  267.00ms
     90%  280.00ms
     99%    1.50s 
  600000 requests in 1.00m, 52.43MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 17
Requests/sec:  10000.00
Transfer/sec:     26.19MB
`

func TestParseWrkReadsTotalsAndPercentiles(t *testing.T) {
	w, err := parseWrk(wrkOK)
	if err != nil {
		t.Fatal(err)
	}
	want := Wrk{Requests: 361670, Seconds: 2, RPS: 180710.40, P50us: 253, P99us: 1270}
	if w != want {
		t.Errorf("got %+v; want %+v", w, want)
	}
}

func TestParseWrkReadsErrorsAndLongUnits(t *testing.T) {
	w, err := parseWrk(wrkErrors)
	if err != nil {
		t.Fatal(err)
	}
	want := Wrk{Requests: 600000, Seconds: 60, RPS: 10000, P50us: 1e6, P99us: 1.5e6, Non2xx: 17, SocketErrors: 10}
	if w != want {
		t.Errorf("got %+v; want %+v", w, want)
	}
}

func TestParseWrkRefusesIncompleteOutput(t *testing.T) {
	for desc, out := range map[string]string{
		"empty":           "",
		"no --latency":    strings.Replace(wrkOK, "  Latency Distribution\n", "", 1),
		"connect refused": "unable to connect to 127.0.0.1:1 Connection refused\n",
		"zero requests":   strings.Replace(wrkOK, "361670 requests", "0 requests", 1),
	} {
		if _, err := parseWrk(out); err == nil {
			t.Errorf("%s: got no error", desc)
		}
	}
}

func TestRecordThenTableGivesMediansAndRatios(t *testing.T) {
	dir := t.TempDir()
	wrkFile := filepath.Join(dir, "wrk.txt")
	var rows bytes.Buffer
	record := func(proxy string, round, conns int, rps string, ticks string, cpu0 string) {
		t.Helper()
		out := strings.Replace(wrkOK, "180710.40", rps, 1)
		if err := os.WriteFile(wrkFile, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"record", "-round", itoa(round), "-proxy", proxy, "-conns", itoa(conns),
			"-cpu-ticks", ticks, "-cpu0-ticks", cpu0, "-clk-tck", "100", wrkFile}
		if err := run(args, nil, &rows, os.Stderr); err != nil {
			t.Fatal(err)
		}
	}
	if err := run([]string{"record", "-header"}, nil, &rows, os.Stderr); err != nil {
		t.Fatal(err)
	}
	// nginx: rps 100, 300, 200 (median 200); cpu 1.0, 2.0, 1.5 s for
	// 361670 requests each.
	// CPU 0 busy: 20% more than nginx's own ticks over 2 s; for caddy
	// less than its own (ticks of other CPUs), which must not go negative.
	record("nginx", 1, 64, "100", "100", "140")
	record("nginx", 2, 64, "300", "200", "240")
	record("nginx", 3, 64, "200", "150", "190")
	record("caddy", 1, 64, "100", "300", "200")
	record("caddy", 2, 64, "100", "300", "200")
	record("caddy", 3, 64, "100", "300", "200")
	record("caddy", 1, 256, "50", "300", "300")
	results := filepath.Join(dir, "results.tsv")
	if err := os.WriteFile(results, rows.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"table", "-order", "nginx haproxy caddy", "-baseline", "nginx", results}, nil, &out, os.Stderr); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	cpuNginx := 1.5e6 / 361670
	for _, want := range []string{
		"### 64 connections",
		"| nginx | 200 | 1.00x | 253 µs | 1.00x | 1.27 ms | 1.00x | " + f1(cpuNginx) + " | 1.00x | 75% | 20% | 3 |",
		"| haproxy | not measured |",
		"| caddy | 100 | 0.50x | 253 µs | 1.00x | 1.27 ms | 1.00x | " + f1(3e6/361670) + " | 2.00x | 150% | 0% | 3 |",
		"### 256 connections",
		"| caddy | 50 | – |",
		"nginx was not measured at 256 connections",
		"Other programs shared CPU 0 with nginx (CPU 0 other above 10%)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q; got:\n%s", want, got)
		}
	}
	if strings.Index(got, "### 64") > strings.Index(got, "### 256") {
		t.Errorf("tables not in connection order:\n%s", got)
	}
}

func TestTableFlagsErrors(t *testing.T) {
	w, _ := parseWrk(wrkErrors)
	r := Result{Round: 1, Proxy: "gatehouse", Conns: 256, Wrk: w, CPUSeconds: 1}
	rs, err := parseResults(tsvHeader + "\n" + r.TSV() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	got := renderTables(summarize(rs), []string{"nginx", "gatehouse"}, "nginx")
	if !strings.Contains(got, "gatehouse: 17 non-2xx/3xx responses and 10 socket errors") {
		t.Errorf("no error note in:\n%s", got)
	}
}

func TestBusyAndOtherUseTheMeasuredWindow(t *testing.T) {
	w, _ := parseWrk(wrkOK) // 2 s
	r := Result{Wrk: w, WindowSeconds: 2.5, CPUSeconds: 1, CPU0Seconds: 2}
	if got := r.Busy(); got != 0.4 {
		t.Errorf("Busy: got %v; want 0.4", got)
	}
	if got := r.Other(); got != 0.4 {
		t.Errorf("Other: got %v; want 0.4", got)
	}
	r.WindowSeconds = 0 // unknown: wrk's duration
	if got := r.Busy(); got != 0.5 {
		t.Errorf("Busy without a window: got %v; want 0.5", got)
	}
	rs, err := parseResults(r.TSV())
	if err != nil || len(rs) != 1 || rs[0] != r {
		t.Errorf("TSV round trip: got %+v, %v; want %+v", rs, err, r)
	}
}

func TestMedianOfEvenCountIsMeanOfMiddle(t *testing.T) {
	rs := []Result{{CPUSeconds: 4}, {CPUSeconds: 1}, {CPUSeconds: 2}, {CPUSeconds: 3}}
	if got := median(rs, func(r Result) float64 { return r.CPUSeconds }); got != 2.5 {
		t.Errorf("got %v; want 2.5", got)
	}
	if got := median(nil, func(r Result) float64 { return 0 }); !math.IsNaN(got) {
		t.Errorf("median of nothing: got %v; want NaN", got)
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999.4: "999", 1000: "1,000", 41230.6: "41,231", 1234567: "1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v): got %q; want %q", in, got, want)
		}
	}
}

func TestJSONField(t *testing.T) {
	for _, tc := range []struct{ in, field, want string }{
		{`{"state":"succeeded","id":"d1"}`, "state", "succeeded\n"},
		{`{"state":"failed","reason":"upstream: bad url"}`, "reason", "upstream: bad url\n"},
		{`{"n":3}`, "n", "3\n"},
		{`{"id":"d1"}`, "state", ""},
	} {
		var out bytes.Buffer
		if err := run([]string{"jsonfield", tc.field}, strings.NewReader(tc.in), &out, os.Stderr); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("%s of %s: got %q; want %q", tc.field, tc.in, out.String(), tc.want)
		}
	}
	if err := run([]string{"jsonfield", "state"}, strings.NewReader("<html>"), &bytes.Buffer{}, os.Stderr); err == nil {
		t.Error("non-JSON input: got no error")
	}
}

func TestFreePortsAreDistinct(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"freeports", "5"}, nil, &out, os.Stderr); err != nil {
		t.Fatal(err)
	}
	ports := strings.Fields(out.String())
	seen := map[string]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %s twice in %v", p, ports)
		}
		seen[p] = true
	}
	if len(ports) != 5 {
		t.Errorf("got %d ports; want 5", len(ports))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func f1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

// TestIdleHoldsNKeptAliveConnectionsAndMeasuresTheServersRSS: against a
// server in this process (so its RSS is ours), idle opens the connections,
// each kept alive after one answer, and reports them all still open.
func TestIdleHoldsNKeptAliveConnectionsAndMeasuresTheServersRSS(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	var out, errOut bytes.Buffer
	err := run([]string{"idle", "-n", "50", "-addr", srv.Listener.Addr().String(), "-pid", strconv.Itoa(os.Getpid()), "-settle", "10ms"},
		nil, &out, &errOut)
	if err != nil {
		t.Fatalf("idle: %v (%s)", err, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "idle connections: 50 opened in ") || !strings.Contains(out.String(), ", 50 still open; server VmRSS ") {
		t.Fatalf("got %q", out.String())
	}
	if n := conns.Load(); n != 50 {
		t.Fatalf("the server saw %d connections; want 50", n)
	}
	// A server that closes each connection after its answer is no
	// measurement of idle connections.
	closing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
	}))
	defer closing.Close()
	err = run([]string{"idle", "-n", "5", "-addr", closing.Listener.Addr().String(), "-pid", strconv.Itoa(os.Getpid()), "-settle", "0"},
		nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "closes the connection") {
		t.Fatalf("against a closing server: got %v; want an error saying it closes the connection", err)
	}
}

// TestLoadSendsExactlyNRequestsAndRefusesAnyOtherThan200: the count is
// exact however the requests are shared among the connections, and a
// single answer other than 200 fails the run.
func TestLoadSendsExactlyNRequestsAndRefusesAnyOtherThan200(t *testing.T) {
	var served atomic.Int64
	failAt := int64(-1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1) == atomic.LoadInt64(&failAt) {
			w.WriteHeader(http.StatusBadGateway)
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	var out, errOut bytes.Buffer
	if err := run([]string{"load", "-n", "1001", "-c", "7", "-addr", addr}, nil, &out, &errOut); err != nil {
		t.Fatalf("load: %v (%s)", err, errOut.String())
	}
	if n := served.Load(); n != 1001 {
		t.Fatalf("the server got %d requests; want 1001", n)
	}
	if !strings.HasPrefix(out.String(), "1001 requests in ") {
		t.Fatalf("got %q", out.String())
	}
	served.Store(0)
	atomic.StoreInt64(&failAt, 50)
	err := run([]string{"load", "-n", "100", "-c", "3", "-addr", addr}, nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("with one 502: got %v; want an error naming it", err)
	}
}
