package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sqlite"
)

// deployCounter counts the deployments it is asked for.
type deployCounter struct{ created, refused int }

func (d *deployCounter) Create(context.Context, *gatehouse.Deployment) error { d.created++; return nil }
func (d *deployCounter) Refuse(context.Context, string) (*gatehouse.Deployment, error) {
	d.refused++
	return &gatehouse.Deployment{}, nil
}

func TestAPollHandlesOnlyContentThatReadsTheSameTwice(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "g.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deployer := &deployCounter{}
	f := &Files{Paths: []string{dir}, Store: db, Deployer: deployer}
	file := filepath.Join(dir, "gatehouse.yaml")
	full := "format_version: \"1\"\nservices:\n  - id: a\n    name: a\n    url: http://a.internal\n  - id: b\n    name: b\n    url: http://b.internal\n"
	// The file caught half-written: valid, and missing service b.
	half := full[:strings.Index(full, "  - id: b")]
	ctx := context.Background()
	for i, step := range []struct {
		write    string
		deployed int
	}{
		{half, 0}, // read once: not yet
		{full, 0}, // different: read once again
		{"", 1},   // the same twice: deployed
		{"", 1},   // unchanged: nothing more
	} {
		if step.write != "" {
			if err := os.WriteFile(file, []byte(step.write), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.poll(ctx); err != nil {
			t.Fatalf("poll %d: %v", i, err)
		}
		if deployer.created != step.deployed {
			t.Fatalf("after poll %d: %d deployments; want %d", i, deployer.created, step.deployed)
		}
	}
	if n, _ := db.Count(ctx, gatehouse.KindService); n != 2 {
		t.Fatalf("%d services in the draft; want both of the settled file, never the half-written one alone", n)
	}
}

// flakyDeployer fails its first failures Creates, then counts the rest.
type flakyDeployer struct {
	deployCounter
	failures int
}

func (d *flakyDeployer) Create(ctx context.Context, dep *gatehouse.Deployment) error {
	if d.failures > 0 {
		d.failures--
		return gatehouse.Unavailable(errors.New("the cluster is unreachable"))
	}
	return d.deployCounter.Create(ctx, dep)
}

// Content applied to the draft whose deployment failed is deployed at the
// next Sync, though applying it again finds nothing to change.
func TestSyncDeploysContentWhoseDeploymentFailedAfterItWasApplied(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "g.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deployer := &flakyDeployer{failures: 1}
	f := &Files{Paths: []string{dir}, Store: db, Deployer: deployer}
	if err := os.WriteFile(filepath.Join(dir, "gatehouse.yaml"),
		[]byte("format_version: \"1\"\nservices:\n  - id: a\n    name: a\n    url: http://a.internal\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, step := range []struct {
		changed  bool
		failed   bool
		deployed int
	}{
		{false, true, 0}, // applied, the deployment failed
		{true, false, 1}, // nothing more to apply: deployed now
		{false, false, 1},
	} {
		changed, err := f.Sync(ctx)
		if changed != step.changed || (err != nil) != step.failed || deployer.created != step.deployed {
			t.Fatalf("Sync %d: got changed %v, error %v, %d deployments; want changed %v, failed %v, %d deployments",
				i, changed, err, deployer.created, step.changed, step.failed, step.deployed)
		}
	}
}
