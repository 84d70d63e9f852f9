package storetest

import (
	"fmt"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// Bench runs the benchmarks every Store shares, each on a fresh store from
// open, so that engines are measured on the same work.
func Bench(b *testing.B, open func(b *testing.B) gatehouse.Store) {
	b.Run("Create", func(b *testing.B) { benchCreate(b, open(b)) })
	b.Run("Update", func(b *testing.B) { benchUpdate(b, open(b)) })
	b.Run("Get", func(b *testing.B) { benchGet(b, open(b)) })
	b.Run("Snapshot", func(b *testing.B) { benchSnapshot(b, open(b)) })
	b.Run("Apply10000Routes", func(b *testing.B) { benchApplyRoutes(b, open(b), 10000) })
}

func benchCreate(b *testing.B, db gatehouse.Store) {
	ctx := b.Context()
	body := []byte(`{"name":"svc","url":"http://upstream:8080","timeout":"5s"}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("s%d", i)
		i++
		r := &gatehouse.Record{Kind: gatehouse.KindService, ID: id, Name: id, Unique: []string{"name:" + id}, Body: body}
		if err := db.Create(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

func benchUpdate(b *testing.B, db gatehouse.Store) {
	ctx := b.Context()
	r := &gatehouse.Record{Kind: gatehouse.KindService, ID: "s1", Unique: []string{"name:s1"}, Body: []byte(`{}`)}
	if err := db.Create(ctx, r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := db.Update(ctx, r, r.Version); err != nil {
			b.Fatal(err)
		}
	}
}

// benchGet reads from every core at once, as the admin API and the
// deployer do.
func benchGet(b *testing.B, db gatehouse.Store) {
	ctx := b.Context()
	const n = 100
	for i := range n {
		r := &gatehouse.Record{Kind: gatehouse.KindService, ID: fmt.Sprintf("s%d", i), Unique: []string{fmt.Sprintf("name:s%d", i)}, Body: []byte(`{}`)}
		if err := db.Create(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := db.Get(ctx, gatehouse.KindService, fmt.Sprintf("s%d", i%n)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// benchSnapshot reads a configuration of 200 services and 200 routes, as
// a deployment does.
func benchSnapshot(b *testing.B, db gatehouse.Store) {
	ctx := b.Context()
	for i := range 200 {
		s := &gatehouse.Record{Kind: gatehouse.KindService, ID: fmt.Sprintf("s%d", i), Body: []byte(`{}`)}
		if err := db.Create(ctx, s); err != nil {
			b.Fatal(err)
		}
		r := &gatehouse.Record{Kind: gatehouse.KindRoute, ID: fmt.Sprintf("r%d", i), Body: []byte(`{"path":"/x"}`),
			Refs: []gatehouse.Ref{{Kind: gatehouse.KindService, ID: s.ID}}, Unique: []string{fmt.Sprintf("match:/r%d", i)}}
		if err := db.Create(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		snap, err := db.Snapshot(ctx, gatehouse.Kinds...)
		if err != nil {
			b.Fatal(err)
		}
		if len(snap[gatehouse.KindRoute]) != 200 {
			b.Fatalf("got %d routes; want 200", len(snap[gatehouse.KindRoute]))
		}
	}
}

// benchApplyRoutes applies a service and n routes using it in one batch,
// as `gatehouse config apply` does with a large file. Each iteration
// writes new ids, so the store holds the routes of earlier iterations.
func benchApplyRoutes(b *testing.B, db gatehouse.Store, n int) {
	ctx := b.Context()
	b.ReportAllocs()
	iter := 0
	for b.Loop() {
		changes := make([]gatehouse.Change, 0, n+1)
		svc := fmt.Sprintf("i%d-svc", iter)
		changes = append(changes, gatehouse.Change{Op: gatehouse.OpCreate, Record: &gatehouse.Record{
			Kind: gatehouse.KindService, ID: svc, Name: svc, Unique: []string{"name:" + svc},
			Body: []byte(`{"name":"` + svc + `","url":"http://upstream:8080","timeout":"5s"}`)}})
		for i := range n {
			id := fmt.Sprintf("i%d-r%d", iter, i)
			changes = append(changes, gatehouse.Change{Op: gatehouse.OpCreate, Record: &gatehouse.Record{
				Kind: gatehouse.KindRoute, ID: id, Name: id,
				Refs:   []gatehouse.Ref{{Kind: gatehouse.KindService, ID: svc}},
				Unique: []string{"name:" + id, "match:GET * /" + id + " 0"},
				Body: []byte(`{"name":"` + id + `","service_id":"` + svc + `","hosts":[],"paths":["/` + id +
					`"],"methods":["GET"],"strip_path":false,"policies":[],"upgrades":["websocket"],"tags":["bench"]}`)}})
		}
		iter++
		if err := db.Apply(ctx, changes, ""); err != nil {
			b.Fatal(err)
		}
	}
}
