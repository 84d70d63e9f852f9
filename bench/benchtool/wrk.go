package main

import (
	"bufio"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Wrk is what one `wrk --latency` run reports.
type Wrk struct {
	Requests     int64   // completed requests ("N requests in Xs")
	Seconds      float64 // wall time of the run, as wrk measured it
	RPS          float64 // "Requests/sec"
	P50us, P99us float64 // latency percentiles, microseconds
	Non2xx       int64   // "Non-2xx or 3xx responses"
	SocketErrors int64   // connect+read+write+timeout errors
}

var (
	reTotal   = regexp.MustCompile(`^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),`)
	reRPS     = regexp.MustCompile(`^Requests/sec:\s+([\d.]+)\s*$`)
	rePct     = regexp.MustCompile(`^\s*(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$`)
	reSockErr = regexp.MustCompile(`^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)\s*$`)
	reNon2xx  = regexp.MustCompile(`^\s*Non-2xx or 3xx responses: (\d+)\s*$`)
)

// wrk prints times with these units (src/units.c).
var timeUnitMicros = map[string]float64{"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}

// parseWrk reads the output of `wrk --latency`. It fails unless the total,
// Requests/sec and the 50% and 99% latency percentiles are all there, so a
// crashed or misconfigured run never becomes a row of zeros.
func parseWrk(out string) (Wrk, error) {
	var w Wrk
	var haveTotal, haveRPS, have50, have99, inDist bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "Latency Distribution" {
			inDist = true
			continue
		}
		if m := reTotal.FindStringSubmatch(line); m != nil {
			w.Requests, _ = strconv.ParseInt(m[1], 10, 64)
			w.Seconds = mustFloat(m[2]) * timeUnitMicros[m[3]] / 1e6
			haveTotal, inDist = true, false
			continue
		}
		if m := reRPS.FindStringSubmatch(line); m != nil {
			w.RPS, haveRPS = mustFloat(m[1]), true
			continue
		}
		if m := reSockErr.FindStringSubmatch(line); m != nil {
			for _, s := range m[1:] {
				n, _ := strconv.ParseInt(s, 10, 64)
				w.SocketErrors += n
			}
			continue
		}
		if m := reNon2xx.FindStringSubmatch(line); m != nil {
			w.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
			continue
		}
		if m := rePct.FindStringSubmatch(line); inDist && m != nil {
			us := mustFloat(m[2]) * timeUnitMicros[m[3]]
			switch mustFloat(m[1]) {
			case 50:
				w.P50us, have50 = us, true
			case 99:
				w.P99us, have99 = us, true
			}
		}
	}
	var missing []string
	for _, f := range []struct {
		ok   bool
		name string
	}{{haveTotal, `"N requests in T"`}, {haveRPS, "Requests/sec"}, {have50, "latency 50%"}, {have99, "latency 99%"}} {
		if !f.ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return w, fmt.Errorf("not a complete wrk --latency output: no %s", strings.Join(missing, ", "))
	}
	if w.Requests == 0 || w.Seconds <= 0 {
		return w, errors.New("wrk completed no requests")
	}
	return w, nil
}

// mustFloat parses what a regexp above already matched as [\d.]+; a string
// like "1.2.3" would slip through that class and reads as NaN, which the
// report then shows instead of hiding.
func mustFloat(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nan
	}
	return f
}
