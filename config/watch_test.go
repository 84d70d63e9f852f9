package config_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/sqlite"
)

// served records the routes of each revision the data plane is given.
type served struct {
	mu     sync.Mutex
	routes [][]string
}

func (s *served) Apply(ctx context.Context, rev *gatehouse.Revision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	if rev != nil {
		for _, r := range rev.Routes {
			ids = append(ids, r.ID)
		}
	}
	s.routes = append(s.routes, ids)
	return nil
}

func (s *served) last() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.routes) == 0 {
		return nil
	}
	return s.routes[len(s.routes)-1]
}

func (s *served) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.routes)
}

const filesService = `format_version: "1"
services:
  - id: orders
    name: orders
    url: http://orders.internal:8080
`

func filesRoutes(paths ...string) string {
	var b strings.Builder
	b.WriteString("format_version: \"1\"\nroutes:\n")
	for i, p := range paths {
		b.WriteString("  - id: r" + string(rune('0'+i)) + "\n    paths: [" + p + "]\n    service_id: orders\n")
	}
	return b.String()
}

// filesNode runs a node whose draft is the files in dir, as serve --config
// does, and returns what it serves and its store.
func filesNode(t *testing.T, dir string) (*config.Files, *served, gatehouse.Store) {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "g.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	plane := &served{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	node := deploy.NewNode(db, plane, log, deploy.NodeOptions{Name: "n", Heartbeat: 50 * time.Millisecond})
	if _, err := node.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { node.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &config.Files{Paths: []string{dir}, Store: db, Deployer: node.Deployer, Log: log}, plane, db
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	// Written beside and renamed into place, as editors and Kubernetes
	// swap files whole: a node polling the files every few milliseconds
	// could otherwise catch one truncated, twice in a row on a loaded
	// machine, and rightly refuse it.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond for up to five seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func deployments(t *testing.T, store gatehouse.Store) []*gatehouse.Deployment {
	t.Helper()
	page, err := store.List(context.Background(), gatehouse.KindDeployment, gatehouse.ListOptions{Limit: gatehouse.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var out []*gatehouse.Deployment
	for _, rec := range page.Records {
		d := gatehouse.NewDeployment()
		if err := gatehouse.Decode(rec, d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func TestFilesServeEachValidChangeAndNothingForAnUnchangedOne(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "services.yaml"), filesService)
	writeFile(t, filepath.Join(dir, "routes.yaml"), filesRoutes("/orders"))
	files, plane, _ := filesNode(t, dir)

	if changed, err := files.Sync(context.Background()); !changed || err != nil {
		t.Fatalf("first Sync: changed %v, %v; want a deployment", changed, err)
	}
	eventually(t, "revision 1 serves route r0", func() bool { return strings.Join(plane.last(), ",") == "r0" })

	if changed, err := files.Sync(context.Background()); changed || err != nil {
		t.Fatalf("Sync of the same files: changed %v, %v; want nothing to do", changed, err)
	}
	writeFile(t, filepath.Join(dir, "routes.yaml"), filesRoutes("/orders", "/invoices"))
	if changed, err := files.Sync(context.Background()); !changed || err != nil {
		t.Fatalf("Sync after a route was added: changed %v, %v", changed, err)
	}
	eventually(t, "the new revision serves r0 and r1", func() bool { return strings.Join(plane.last(), ",") == "r0,r1" })

	// A route removed from the files is removed from the draft (sync).
	writeFile(t, filepath.Join(dir, "routes.yaml"), filesRoutes("/invoices"))
	if changed, err := files.Sync(context.Background()); !changed || err != nil {
		t.Fatalf("Sync after a route was removed: changed %v, %v", changed, err)
	}
	eventually(t, "the route left out is no longer served", func() bool { return strings.Join(plane.last(), ",") == "r0" })
}

func TestFilesRefuseAnInvalidChangeByPlaceAndKeepServingTheLastGoodRevision(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "services.yaml"), filesService)
	routes := filepath.Join(dir, "routes.yaml")
	writeFile(t, routes, filesRoutes("/orders"))
	files, plane, store := filesNode(t, dir)
	if _, err := files.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "revision 1 serves", func() bool { return plane.count() == 1 })

	// A path without its leading slash, on line 4, column 13.
	writeFile(t, routes, filesRoutes("orders"))
	_, err := files.Sync(context.Background())
	var fe *config.FilesError
	if !errors.As(err, &fe) {
		t.Fatalf("Sync of an invalid file: %v; want a FilesError", err)
	}
	if want := routes + ":4:13: /routes/0/paths/0:"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not place the problem at %q", err, want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	files2, _, _ := files, plane, store
	done := make(chan struct{})
	go func() { files2.Run(ctx, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	// Run sees the files as Sync last did, so it refuses nothing new until
	// they change: a different mistake is refused and recorded once.
	writeFile(t, routes, filesRoutes("/orders")+"    nonsense: 1\n")
	eventually(t, "a failed deployment records the refusal", func() bool {
		for _, d := range deployments(t, store) {
			if d.State == gatehouse.StateFailed {
				return true
			}
		}
		return false
	})
	time.Sleep(100 * time.Millisecond) // several polls of the same content
	var failed []*gatehouse.Deployment
	for _, d := range deployments(t, store) {
		if d.State == gatehouse.StateFailed {
			failed = append(failed, d)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Reason, routes+":") || !strings.Contains(failed[0].Reason, "nonsense") {
		t.Fatalf("failed deployments %+v; want one, naming the file and the unknown member", failed)
	}
	if plane.count() != 1 || strings.Join(plane.last(), ",") != "r0" {
		t.Fatalf("served %v after the refusal; want revision 1 alone, still serving", plane.routes)
	}
}
