// Command benchtool is the small helper of bench/run.sh: it parses wrk's
// output into one result row, turns the rows of a run into the Markdown
// report, picks free loopback ports and reads a field of a JSON answer.
// Everything that starts or measures processes stays in run.sh.
//
//	benchtool record -round R -proxy P -conns C -cpu-ticks T -cpu0-ticks T0 -window S -clk-tck HZ WRK_OUTPUT
//	    parse one wrk --latency output and print one TSV row
//	benchtool record -header
//	    print the header line of those rows
//	benchtool table -order "nginx haproxy ..." -baseline nginx RESULTS_TSV
//	    print one Markdown table per connection count, medians over rounds
//	benchtool freeports N
//	    print N currently free TCP ports on 127.0.0.1, one a line
//	benchtool jsonfield NAME
//	    print the top-level field NAME of the JSON object on stdin
//	benchtool idle -n N -addr HOST:PORT -pid PID
//	    open N idle keep-alive connections and print the server's RSS growth
//	benchtool load -n N -c C -addr HOST:PORT [-path P]
//	    send exactly N GETs over C kept-alive connections, each answered 200
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: benchtool record|table|freeports|jsonfield|otlpsink|idle|load [arguments]")
	}
	switch args[0] {
	case "record":
		return cmdRecord(args[1:], stdout, stderr)
	case "table":
		return cmdTable(args[1:], stdout, stderr)
	case "freeports":
		return cmdFreePorts(args[1:], stdout)
	case "jsonfield":
		return cmdJSONField(args[1:], stdin, stdout)
	case "otlpsink":
		return cmdOTLPSink(args[1:], stderr)
	case "idle":
		return cmdIdle(args[1:], stdout, stderr)
	case "load":
		return cmdLoad(args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func cmdRecord(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("record", flag.ContinueOnError)
	fs.SetOutput(stderr)
	round := fs.Int("round", 0, "round number")
	proxy := fs.String("proxy", "", "proxy name")
	conns := fs.Int("conns", 0, "wrk connections")
	ticks := fs.Int64("cpu-ticks", -1, "utime+stime clock ticks the proxy used during the wrk run")
	cpu0 := fs.Int64("cpu0-ticks", 0, "busy clock ticks of CPU 0 (from /proc/stat) during the wrk run")
	window := fs.Float64("window", 0, "wall seconds over which the ticks were counted (0: wrk's duration)")
	hz := fs.Int64("clk-tck", 100, "clock ticks per second (getconf CLK_TCK)")
	header := fs.Bool("header", false, "print the TSV header line and nothing else")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *header {
		fmt.Fprintln(stdout, tsvHeader)
		return nil
	}
	if fs.NArg() != 1 || *proxy == "" || *conns <= 0 || *ticks < 0 || *hz <= 0 {
		return errors.New("record: need -proxy, -conns, -cpu-ticks >= 0, -clk-tck > 0 and one wrk output file")
	}
	out, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	w, err := parseWrk(string(out))
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	r := Result{
		Round: *round, Proxy: *proxy, Conns: *conns, Wrk: w,
		WindowSeconds: *window,
		CPUSeconds:    float64(*ticks) / float64(*hz),
		CPU0Seconds:   float64(*cpu0) / float64(*hz),
	}
	fmt.Fprintln(stdout, r.TSV())
	return nil
}

func cmdTable(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	fs.SetOutput(stderr)
	order := fs.String("order", "", "space-separated proxies, in table order")
	baseline := fs.String("baseline", "nginx", "proxy the ratios are relative to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("table: need one results file")
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	rows, err := parseResults(string(data))
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	_, err = io.WriteString(stdout, renderTables(summarize(rows), strings.Fields(*order), *baseline))
	return err
}

func cmdFreePorts(args []string, stdout io.Writer) error {
	n := 1
	if len(args) > 0 {
		var err error
		if n, err = strconv.Atoi(args[0]); err != nil || n < 1 || n > 100 {
			return fmt.Errorf("freeports: bad count %q", args[0])
		}
	}
	// Hold every listener until all are chosen, so the N ports differ.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Fprintln(stdout, l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

func cmdJSONField(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("jsonfield: need one field name")
	}
	var obj map[string]any
	if err := json.NewDecoder(stdin).Decode(&obj); err != nil {
		return fmt.Errorf("jsonfield: not a JSON object: %w", err)
	}
	v, ok := obj[args[0]]
	switch {
	case !ok || v == nil:
		return nil // absent: print nothing
	case isString(v):
		fmt.Fprintln(stdout, v)
	default:
		b, _ := json.Marshal(v)
		fmt.Fprintln(stdout, string(b))
	}
	return nil
}

func isString(v any) bool { _, ok := v.(string); return ok }
