package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/deploy"
)

// publish stores node's findings as its Agent would.
func (a *testAPI) publish(node string, s audit.Snapshot) {
	a.t.Helper()
	body, err := json.Marshal(s)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.store.Create(context.Background(), &gatehouse.Record{Kind: gatehouse.KindFindings, ID: node, Body: body}); err != nil {
		a.t.Fatal(err)
	}
}

// TestConformanceReportMergesTheFindingsOtherNodesPublished: the report
// of a node is its own recorder's findings plus those every other node
// published, one entry per route, operation, status and rule, never
// counting its own published snapshot a second time.
func TestConformanceReportMergesTheFindingsOtherNodesPublished(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	rec := audit.NewRecorder(audit.RecorderOptions{MaxEntries: 2})
	for _, f := range []audit.Finding{
		{Rule: audit.AllowMissing, RouteID: "pets", Status: 405, RequestID: "own-1", At: at},
		{Rule: audit.AllowMissing, RouteID: "pets", Status: 405, RequestID: "own-2", At: at.Add(time.Minute)},
		{Rule: audit.LocationMissing, RouteID: "pets", Status: 201, RequestID: "own-3", At: at},
		{Rule: audit.ErrorNotProblem, RouteID: "pets", Status: 500, At: at}, // over the cap: dropped
	} {
		rec.Record(&f)
	}
	api := newTestAPI(t, func(c *apiConfig) { c.admin.Conformance, c.admin.NodeName = rec, "self" })
	allow := audit.Key{RouteID: "pets", Status: 405, Rule: audit.AllowMissing}
	api.publish("self", audit.Snapshot{Dropped: 1000, Entries: []audit.Entry{
		{Key: allow, Severity: audit.Error, Count: 1000, FirstSeen: at, LastSeen: at, Sample: audit.Sample{RequestID: "stale"}}}})
	api.publish("edge-1", audit.Snapshot{Dropped: 4, Entries: []audit.Entry{
		{Key: allow, Severity: audit.Error, Count: 3, FirstSeen: at.Add(-time.Hour), LastSeen: at.Add(2 * time.Minute), Sample: audit.Sample{RequestID: "edge-1", Status: 405}}}})
	api.publish("edge-2", audit.Snapshot{Dropped: 5, Entries: []audit.Entry{
		{Key: audit.Key{RouteID: "users", Status: 405, Rule: audit.AllowMissing}, Severity: audit.Error, Count: 1, FirstSeen: at, LastSeen: at, Sample: audit.Sample{RequestID: "edge-2"}}}})

	rep := api.report(Prefix + "/conformance")
	if rep.Dropped != 1+4+5 {
		t.Fatalf("dropped %d; want 10: this node's 1 and the other nodes' 4 and 5", rep.Dropped)
	}
	var got []string
	for _, f := range rep.Data {
		got = append(got, f.RouteID+" "+f.Rule)
	}
	if want := []string{"pets location-missing", "pets allow-missing", "users allow-missing"}; !slices.Equal(got, want) {
		t.Fatalf("report lists %v; want %v", got, want)
	}
	merged := rep.Data[1]
	if merged.Count != 2+3 || !merged.FirstSeen.Equal(at.Add(-time.Hour)) || !merged.LastSeen.Equal(at.Add(2*time.Minute)) || merged.Sample.RequestID != "edge-1" {
		t.Fatalf("pets allow-missing: got %+v; want count 5 (2 here, 3 on edge-1), the earliest first seen, the latest last seen and its sample", merged)
	}
	if users := api.report(Prefix + "/conformance?route=users").Data; len(users) != 1 || users[0].Sample.RequestID != "edge-2" {
		t.Fatalf("route=users: got %+v; want edge-2's finding", users)
	}
	var paged []string
	path := Prefix + "/conformance?limit=1"
	for page := api.report(path); ; page = api.report(path + "&cursor=" + page.NextCursor) {
		for _, f := range page.Data {
			paged = append(paged, f.RouteID+" "+f.Rule)
		}
		if page.NextCursor == "" || len(paged) > len(got) {
			break
		}
	}
	if !slices.Equal(paged, got) {
		t.Fatalf("pages of one listed %v; want %v", paged, got)
	}
}

// TestConformanceReportOfAControlNodeListsTheDataNodesFindings: a node
// without a data plane reports what the others published.
func TestConformanceReportOfAControlNodeListsTheDataNodesFindings(t *testing.T) {
	api := newTestAPI(t, func(c *apiConfig) { c.admin.NodeName = "ctl" })
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	api.publish("edge-1", audit.Snapshot{Dropped: 2, Entries: []audit.Entry{
		{Key: audit.Key{RouteID: "pets", Status: 405, Rule: audit.AllowMissing}, Severity: audit.Error, Count: 3, FirstSeen: at, LastSeen: at}}})
	if rep := api.report(Prefix + "/conformance"); len(rep.Data) != 1 || rep.Data[0].Count != 3 || rep.Dropped != 2 {
		t.Fatalf("got %+v; want edge-1's finding and dropped count", rep)
	}
}

// TestAnUnreadableFindingsSnapshotCostsOnlyThatNodesFindings: as with
// the figures of /stats, a node's published findings that do not decode
// leave that node out of the report, named, not everyone's answer.
func TestAnUnreadableFindingsSnapshotCostsOnlyThatNodesFindings(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ desc, body string }{
		{"a field of the wrong type", `{"entries":7}`},
		{"cut short", `{"entries":[{"route_id":"pets"`},
		{"not JSON", `findings`},
		{"empty", ``},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			api := newTestAPI(t, func(c *apiConfig) { c.admin.NodeName = "ctl" })
			if err := api.store.Create(context.Background(), &gatehouse.Record{Kind: gatehouse.KindFindings, ID: "edge-1", Body: []byte(tc.body)}); err != nil {
				t.Fatal(err)
			}
			api.publish("edge-2", audit.Snapshot{Dropped: 2, Entries: []audit.Entry{
				{Key: audit.Key{RouteID: "pets", Status: 405, Rule: audit.AllowMissing}, Severity: audit.Error, Count: 3, FirstSeen: at, LastSeen: at}}})
			rep := api.report(Prefix + "/conformance")
			if len(rep.Data) != 1 || rep.Data[0].Count != 3 || rep.Dropped != 2 {
				t.Errorf("got %+v; want edge-2's finding and dropped count", rep)
			}
			if !slices.Equal(rep.UnreadableNodes, []string{"edge-1"}) {
				t.Errorf("unreadable_nodes %v; want [edge-1]", rep.UnreadableNodes)
			}
		})
	}
}

// TestConformanceDocumentStatesTheBoundsOfPublishedFindings: the numbers
// the admin API's document gives are the code's.
func TestConformanceDocumentStatesTheBoundsOfPublishedFindings(t *testing.T) {
	var doc struct {
		Paths map[string]struct {
			Get struct {
				Description string `json:"description"`
			} `json:"get"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	desc := doc.Paths[Prefix+"/conformance"].Get.Description
	for _, want := range []string{
		fmt.Sprintf("every %d seconds", int(deploy.DefaultFindingsInterval/time.Second)),
		fmt.Sprintf("at most %d entries", audit.SnapshotMaxEntries),
		fmt.Sprintf("cut to %d bytes", audit.SnapshotMaxSampleBytes),
		fmt.Sprintf("(%d)", audit.DefaultMaxEntries),
	} {
		if !strings.Contains(desc, want) {
			t.Errorf("GET /conformance's description lacks %q", want)
		}
	}
}
