package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// cmdOTLPSink is the traced row's trace receiver: an OTLP/HTTP endpoint
// (POST /v1/traces, protobuf) that decodes each export, counts its spans
// and keeps nothing; GET /spans says how many came, so that run.sh can
// check that the traces did leave gatehouse.
func cmdOTLPSink(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("otlpsink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4318", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var spans atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var export collectorpb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(b, &export)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range export.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				spans.Add(int64(len(ss.Spans)))
			}
		}
		out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	})
	mux.HandleFunc("GET /spans", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, spans.Load()) })
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {}) // for wait_http
	return http.ListenAndServe(*addr, mux)
}
