package config

import (
	"context"

	"github.com/gatehouse/gatehouse"
)

// Dump reads the draft, the part of it with every selected tag, as a
// Document, and the draft's tag (its ETag). The document holds what an
// operator writes, no more: ids and tags but not what the store or the
// server sets (version, times, a route's import marker, what a spec's
// document says of itself), credentials under their consumers without
// their secrets, policies without their write-only secrets. Applying it
// to the same draft changes nothing.
func Dump(ctx context.Context, store gatehouse.Store, selectTags []string) (*Document, string, error) {
	d, err := readDraft(ctx, store)
	if err != nil {
		return nil, "", err
	}
	doc := &Document{FormatVersion: FormatVersion}
	consumers := map[string]*Consumer{}
	for _, kind := range creationOrder {
		for _, id := range d.order[kind] {
			res, err := d.resource(kind, id)
			if err != nil {
				return nil, "", err
			}
			if !gatehouse.HasTags(res, selectTags) {
				continue
			}
			*res.Base() = gatehouse.Meta{ID: id}
			switch r := res.(type) {
			case *gatehouse.Spec:
				doc.Specs = append(doc.Specs, &Spec{Meta: r.Meta, Tagged: r.Tagged, Name: r.Name, MediaType: r.MediaType, Document: r.Document})
			case *gatehouse.Policy:
				r.Hide()
				doc.Policies = append(doc.Policies, r)
			case *gatehouse.Service:
				r.Hide()
				doc.Services = append(doc.Services, r)
			case *gatehouse.Route:
				gatehouse.KeepServerSet(r, nil)
				doc.Routes = append(doc.Routes, r)
			case *gatehouse.Consumer:
				c := &Consumer{Consumer: *r}
				consumers[id] = c
				doc.Consumers = append(doc.Consumers, c)
			case *gatehouse.Credential:
				// A credential is dumped under its consumer, and only if
				// the consumer is: nested, it cannot stand alone.
				c := consumers[r.ConsumerID]
				if c == nil {
					continue
				}
				r.ConsumerID = ""
				c.Credentials = append(c.Credentials, &Credential{Credential: *r})
			}
		}
	}
	return doc, d.tag, nil
}
