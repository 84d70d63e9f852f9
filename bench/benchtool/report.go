package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

var nan = math.NaN()

// Result is one measurement: one proxy, one connection count, one round.
type Result struct {
	Round int
	Proxy string
	Conns int
	Wrk   Wrk
	// Window is the wall time over which the CPU figures below were taken:
	// the wrk run, plus the moments needed to start it and to see it end.
	WindowSeconds float64
	CPUSeconds    float64 // utime+stime of the proxy's process tree over the window
	// CPU0Seconds is all the time CPU 0 was busy over the window: the
	// proxy, the kernel's network work done there outside the proxy's
	// accounting, and whatever else the scheduler put on it.
	CPU0Seconds float64
}

// CPUMicrosPerRequest is the proxy's CPU time per completed request.
func (r Result) CPUMicrosPerRequest() float64 {
	return r.CPUSeconds * 1e6 / float64(r.Wrk.Requests)
}

// Busy is the share of its core the proxy used during the run (1 = saturated).
func (r Result) Busy() float64 { return r.CPUSeconds / r.window() }

// Other is the share of CPU 0 used by anything but the proxy: softirq work
// and, on a machine that is not quiet, other programs competing with it.
func (r Result) Other() float64 { return max(0, r.CPU0Seconds-r.CPUSeconds) / r.window() }

// window is WindowSeconds, or wrk's own duration where that is unknown.
func (r Result) window() float64 {
	if r.WindowSeconds > 0 {
		return r.WindowSeconds
	}
	return r.Wrk.Seconds
}

// tsvHeader names the columns of Result.TSV; the last three are derived and
// only there for people reading the file.
const tsvHeader = "round\tproxy\tconns\trequests\tseconds\trps\tp50_us\tp99_us\tnon2xx\tsocket_errors\twindow_s\tcpu_s\tcpu0_s\tcpu_us_per_req\tbusy\tcpu0_other"

// TSV is the row that `benchtool record` prints and `benchtool table` reads.
func (r Result) TSV() string {
	w := r.Wrk
	return strings.Join([]string{
		strconv.Itoa(r.Round), r.Proxy, strconv.Itoa(r.Conns),
		strconv.FormatInt(w.Requests, 10), ff(w.Seconds), ff(w.RPS), ff(w.P50us), ff(w.P99us),
		strconv.FormatInt(w.Non2xx, 10), strconv.FormatInt(w.SocketErrors, 10),
		ff(r.WindowSeconds), ff(r.CPUSeconds), ff(r.CPU0Seconds), ff(r.CPUMicrosPerRequest()), ff(r.Busy()), ff(r.Other()),
	}, "\t")
}

func ff(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// parseResults reads rows written by Result.TSV, skipping the header and
// blank lines.
func parseResults(data string) ([]Result, error) {
	var rs []Result
	for i, line := range strings.Split(data, "\n") {
		if strings.TrimSpace(line) == "" || line == tsvHeader || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 13 {
			return nil, fmt.Errorf("line %d: %d fields, want at least 13", i+1, len(f))
		}
		var r Result
		var errs []error
		atoi := func(s string) int {
			n, err := strconv.Atoi(s)
			errs = append(errs, err)
			return n
		}
		atoi64 := func(s string) int64 {
			n, err := strconv.ParseInt(s, 10, 64)
			errs = append(errs, err)
			return n
		}
		atof := func(s string) float64 {
			x, err := strconv.ParseFloat(s, 64)
			errs = append(errs, err)
			return x
		}
		r.Round, r.Proxy, r.Conns = atoi(f[0]), f[1], atoi(f[2])
		r.Wrk = Wrk{
			Requests: atoi64(f[3]), Seconds: atof(f[4]), RPS: atof(f[5]),
			P50us: atof(f[6]), P99us: atof(f[7]),
			Non2xx: atoi64(f[8]), SocketErrors: atoi64(f[9]),
		}
		r.WindowSeconds, r.CPUSeconds, r.CPU0Seconds = atof(f[10]), atof(f[11]), atof(f[12])
		for _, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", i+1, err)
			}
		}
		if r.Wrk.Requests <= 0 || r.Wrk.Seconds <= 0 {
			return nil, fmt.Errorf("line %d: no requests", i+1)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// Summary is the median over rounds of one (proxy, conns) pair.
type Summary struct {
	Proxy                string
	Conns                int
	Rounds               int
	RPS, P50us, P99us    float64
	CPUPerReq, Busy      float64
	Other                float64
	Non2xx, SocketErrors int64 // summed over rounds
}

type key struct {
	proxy string
	conns int
}

func summarize(rs []Result) map[key]Summary {
	groups := map[key][]Result{}
	for _, r := range rs {
		k := key{r.Proxy, r.Conns}
		groups[k] = append(groups[k], r)
	}
	out := map[key]Summary{}
	for k, g := range groups {
		s := Summary{Proxy: k.proxy, Conns: k.conns, Rounds: len(g)}
		s.RPS = median(g, func(r Result) float64 { return r.Wrk.RPS })
		s.P50us = median(g, func(r Result) float64 { return r.Wrk.P50us })
		s.P99us = median(g, func(r Result) float64 { return r.Wrk.P99us })
		s.CPUPerReq = median(g, Result.CPUMicrosPerRequest)
		s.Busy = median(g, Result.Busy)
		s.Other = median(g, Result.Other)
		for _, r := range g {
			s.Non2xx += r.Wrk.Non2xx
			s.SocketErrors += r.Wrk.SocketErrors
		}
		out[k] = s
	}
	return out
}

// median of f over rs; the mean of the middle two for an even count.
func median(rs []Result, f func(Result) float64) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	slices.Sort(xs)
	n := len(xs)
	if n == 0 {
		return nan
	}
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// renderTables prints one Markdown table per connection count, proxies in
// the given order (then any others, sorted), each figure followed by its
// ratio to the baseline proxy's figure at the same connection count.
func renderTables(sums map[key]Summary, order []string, baseline string) string {
	var conns []int
	proxies := slices.Clone(order)
	var extra []string
	for k := range sums {
		if !slices.Contains(conns, k.conns) {
			conns = append(conns, k.conns)
		}
		if !slices.Contains(proxies, k.proxy) && !slices.Contains(extra, k.proxy) {
			extra = append(extra, k.proxy)
		}
	}
	slices.Sort(conns)
	slices.Sort(extra)
	proxies = append(proxies, extra...)

	var b strings.Builder
	for _, c := range conns {
		base, haveBase := sums[key{baseline, c}]
		fmt.Fprintf(&b, "### %d connections\n\n", c)
		fmt.Fprintf(&b, "| proxy | req/s | ×%[1]s | p50 | ×%[1]s | p99 | ×%[1]s | CPU µs/req | ×%[1]s | proxy busy | CPU 0 other | rounds |\n", baseline)
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		var notes []string
		for _, p := range proxies {
			s, ok := sums[key{p, c}]
			if !ok {
				fmt.Fprintf(&b, "| %s | not measured | | | | | | | | | | |\n", p)
				continue
			}
			ratio := func(v, bv float64) string {
				if !haveBase || bv == 0 {
					return "–"
				}
				return fmt.Sprintf("%.2fx", v/bv)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %.1f | %s | %.0f%% | %.0f%% | %d |\n",
				p,
				thousands(s.RPS), ratio(s.RPS, base.RPS),
				latency(s.P50us), ratio(s.P50us, base.P50us),
				latency(s.P99us), ratio(s.P99us, base.P99us),
				s.CPUPerReq, ratio(s.CPUPerReq, base.CPUPerReq),
				s.Busy*100, s.Other*100, s.Rounds)
			if s.Non2xx > 0 || s.SocketErrors > 0 {
				notes = append(notes, fmt.Sprintf("**%s: %d non-2xx/3xx responses and %d socket errors** over its %d round(s); its figures are not comparable.",
					p, s.Non2xx, s.SocketErrors, s.Rounds))
			}
		}
		if noisy := noisyProxies(sums, proxies, c); len(noisy) > 0 {
			notes = append(notes, fmt.Sprintf("Other programs shared CPU 0 with %s (CPU 0 other above %.0f%%): redo on a quiet machine before trusting these rows.",
				strings.Join(noisy, ", "), noisyOther*100))
		}
		if !haveBase {
			notes = append(notes, fmt.Sprintf("%s was not measured at %d connections: no ratios.", baseline, c))
		}
		for _, n := range notes {
			fmt.Fprintf(&b, "\n%s\n", n)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// noisyOther is the share of CPU 0 used by others above which a row is
// flagged: softirq work alone stays well below it.
const noisyOther = 0.10

func noisyProxies(sums map[key]Summary, proxies []string, conns int) []string {
	var out []string
	for _, p := range proxies {
		if s, ok := sums[key{p, conns}]; ok && s.Other > noisyOther {
			out = append(out, p)
		}
	}
	return out
}

// latency formats microseconds as µs below 1 ms, else ms.
func latency(us float64) string {
	if us < 1000 {
		return fmt.Sprintf("%.0f µs", us)
	}
	return fmt.Sprintf("%.2f ms", us/1000)
}

// thousands formats a rate as an integer grouped by commas: 41,230.
func thousands(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "NaN"
	}
	s := strconv.FormatInt(int64(math.Round(x)), 10)
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}
