package config

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// creationOrder is the order in which kinds are created, each after those
// it may refer to; deletes run in the reverse order.
var creationOrder = []gatehouse.Kind{
	gatehouse.KindSpec, gatehouse.KindPolicy, gatehouse.KindService,
	gatehouse.KindRoute, gatehouse.KindConsumer, gatehouse.KindCredential,
}

// draftState is the store's draft as of one snapshot.
type draftState struct {
	tag     string
	records map[gatehouse.Kind]map[string]*gatehouse.Record
	// order lists each kind's ids in creation order.
	order map[gatehouse.Kind][]string
	// tokens are the admin tokens of the same snapshot: not part of the
	// draft, but a consumer-scoped one keeps its consumer from deletion.
	tokens []*gatehouse.Record
}

func readDraft(ctx context.Context, store gatehouse.Store) (*draftState, error) {
	snap, err := store.Snapshot(ctx, slices.Concat(gatehouse.DraftKinds, []gatehouse.Kind{gatehouse.KindToken})...)
	if err != nil {
		return nil, err
	}
	d := &draftState{records: map[gatehouse.Kind]map[string]*gatehouse.Record{}, order: map[gatehouse.Kind][]string{},
		tokens: snap[gatehouse.KindToken]}
	var stamps []gatehouse.Stamp
	for _, kind := range gatehouse.DraftKinds {
		d.records[kind] = map[string]*gatehouse.Record{}
		for _, rec := range snap[kind] {
			d.records[kind][rec.ID] = rec
			d.order[kind] = append(d.order[kind], rec.ID)
			stamps = append(stamps, gatehouse.Stamp{Kind: kind, ID: rec.ID, Version: rec.Version})
		}
	}
	d.tag = gatehouse.DraftTag(stamps)
	return d, nil
}

// resource decodes the record of kind and id, nil if there is none.
func (d *draftState) resource(kind gatehouse.Kind, id string) (gatehouse.Resource, error) {
	rec := d.records[kind][id]
	if rec == nil {
		return nil, nil
	}
	res := gatehouse.New(kind)
	if err := gatehouse.Decode(rec, res); err != nil {
		return nil, err
	}
	return res, nil
}

// shown is the resource as the admin API shows it: write-only members
// hidden (and kept aside for KeepHidden).
func (d *draftState) shown(kind gatehouse.Kind, id string) gatehouse.Resource {
	res, err := d.resource(kind, id)
	if err != nil || res == nil {
		return nil
	}
	if w, ok := res.(gatehouse.WriteOnly); ok {
		w.Hide()
	}
	return res
}

// plan is what applying a document to one draft takes: the store's
// changes, in an order in which each is valid when it runs, and the
// change set that reports them.
type plan struct {
	draft   *draftState
	changes []gatehouse.Change
	// pointers are, per change, the entry's place in the document ("" for
	// a delete).
	pointers []string
	set      ChangeSet
}

// makePlan compares the document's entries with the draft. Problems are
// what the store's records make wrong with the entries.
func makePlan(d *draftState, entries []*entry, opts ApplyOptions) (*plan, []Problem, error) {
	p := &plan{draft: d, set: ChangeSet{Draft: d.tag, DryRun: opts.DryRun, Changes: []Change{}}}
	managed := func(kind gatehouse.Kind, id string) (bool, error) {
		res, err := d.resource(kind, id)
		if err != nil || res == nil {
			return false, err
		}
		return gatehouse.HasTags(res, opts.SelectTags), nil
	}
	inDoc := map[gatehouse.Kind]map[string]bool{}
	for _, kind := range creationOrder {
		inDoc[kind] = map[string]bool{}
	}
	docRes := map[gatehouse.Ref]gatehouse.Resource{}
	for _, e := range entries {
		inDoc[e.res.Kind()][e.res.Base().ID] = true
		docRes[gatehouse.Ref{Kind: e.res.Kind(), ID: e.res.Base().ID}] = e.res
	}
	var problems []Problem
	var creates, updates []int
	type pending struct {
		change  gatehouse.Change
		pointer string
		report  Change
	}
	var all []pending
	for _, e := range entries {
		kind, id := e.res.Kind(), e.res.Base().ID
		rec := d.records[kind][id]
		// References to what the document does not hold resolve against
		// the store, as the admin API resolves them; together, they are
		// judged with the document's own (Check judged those alone).
		refs := gatehouse.FieldRefs(e.res)
		targets := make([]gatehouse.Resource, len(refs))
		external := false
		for i, fr := range refs {
			if inDoc[fr.Ref.Kind][fr.Ref.ID] {
				targets[i] = docRes[fr.Ref]
				continue
			}
			target, err := d.resource(fr.Ref.Kind, fr.Ref.ID)
			if err != nil {
				return nil, nil, err
			}
			targets[i], external = target, true
			if msg := gatehouse.CheckRef(fr, target); msg != "" {
				problems = append(problems, Problem{Pointer: FieldPointer(e.pointer, fr.Field), Message: msg, Code: gatehouse.EUNPROCESSABLE})
			}
		}
		if external {
			for _, fe := range gatehouse.CheckRefsTogether(refs, targets) {
				problems = append(problems, Problem{Pointer: FieldPointer(e.pointer, fe.Field), Message: fe.Message, Code: gatehouse.EUNPROCESSABLE})
			}
		}
		if rec == nil {
			change, report, problem := createChange(e)
			if problem != nil {
				problems = append(problems, *problem)
				continue
			}
			creates = append(creates, len(all))
			all = append(all, pending{change, e.pointer, report})
			continue
		}
		ok, err := managed(kind, id)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			problems = append(problems, Problem{Pointer: e.pointer + "/id", Code: gatehouse.ECONFLICT,
				Message: fmt.Sprintf("is the id of a %s outside the selected tags (%s): it belongs to another part of the configuration", Singular(kind), strings.Join(opts.SelectTags, ", "))})
			continue
		}
		change, report, problem, err := updateChange(d, e, rec)
		if err != nil {
			return nil, nil, err
		}
		if problem != nil {
			problems = append(problems, *problem)
			continue
		}
		if change != nil {
			updates = append(updates, len(all))
			all = append(all, pending{*change, e.pointer, report})
		}
	}
	if len(problems) > 0 {
		return nil, problems, nil
	}
	var deletes []pending
	if opts.Prune {
		for _, kind := range slices.Backward(creationOrder) {
			for _, id := range d.order[kind] {
				if inDoc[kind][id] {
					continue
				}
				ok, err := managed(kind, id)
				if err != nil {
					return nil, nil, err
				}
				if !ok {
					continue
				}
				rec := d.records[kind][id]
				deletes = append(deletes, pending{
					change: gatehouse.Change{Op: gatehouse.OpDelete, Record: &gatehouse.Record{Kind: kind, ID: id}, IfVersion: rec.Version},
					report: Change{Action: gatehouse.OpDelete, Kind: kind, ID: id, Name: rec.Name},
				})
			}
		}
	}
	// What the store would refuse, found here so that every clash is
	// listed at once, not the first the store meets.
	var changes []gatehouse.Change
	for _, pd := range slices.Concat(all, deletes) {
		changes = append(changes, pd.change)
	}
	if problems := clashes(d, entries, changes, opts); len(problems) > 0 {
		return nil, problems, nil
	}
	// The order makes each change valid when it runs, whatever moved from
	// one entry to another: routes and credentials that go are deleted
	// first, freeing their match keys, key hashes and usernames for the
	// entries that take them over; then what routes and credentials refer
	// to is created and updated (creates in creation order of kinds, as
	// entries come); then routes and credentials are updated, freeing what
	// they no longer hold, and created; last goes what nothing refers to
	// any more.
	leaf := func(c gatehouse.Change) bool {
		return c.Record.Kind == gatehouse.KindRoute || c.Record.Kind == gatehouse.KindCredential
	}
	// Within that order, references decide: a policy may name services
	// (a traffic split), which may list policies, so no order of kinds
	// alone suits every document. Each create follows what it refers to,
	// each delete precedes it.
	creates = referencesFirst(creates, func(i int) *gatehouse.Record { return all[i].change.Record })
	slices.Reverse(deletes)
	order := referencesFirst(seq(len(deletes)), func(i int) *gatehouse.Record {
		return d.records[deletes[i].change.Record.Kind][deletes[i].change.Record.ID]
	})
	byRefs := make([]pending, 0, len(deletes))
	for _, i := range slices.Backward(order) {
		byRefs = append(byRefs, deletes[i])
	}
	deletes = byRefs
	for _, pd := range deletes {
		if leaf(pd.change) {
			p.add(pd.change, "", pd.report)
		}
	}
	for _, wantLeaf := range []bool{false, true} {
		steps := [][]int{creates, updates}
		if wantLeaf {
			steps = [][]int{updates, creates}
		}
		for _, step := range steps {
			for _, i := range step {
				if leaf(all[i].change) == wantLeaf {
					p.add(all[i].change, all[i].pointer, all[i].report)
				}
			}
		}
	}
	for _, pd := range deletes {
		if !leaf(pd.change) {
			p.add(pd.change, "", pd.report)
		}
	}
	return p, nil, nil
}

// referencesFirst orders items (indices) so that each comes after the
// items whose records its record refers to, keeping their order
// otherwise. A cycle, which no store could hold, keeps its given order.
func referencesFirst(items []int, record func(i int) *gatehouse.Record) []int {
	at := make(map[gatehouse.Ref]int, len(items))
	for j, i := range items {
		if r := record(i); r != nil {
			at[gatehouse.Ref{Kind: r.Kind, ID: r.ID}] = j
		}
	}
	out := make([]int, 0, len(items))
	seen := make([]bool, len(items))
	var visit func(j int)
	visit = func(j int) {
		if seen[j] {
			return
		}
		seen[j] = true
		if r := record(items[j]); r != nil {
			for _, ref := range r.Refs {
				if k, ok := at[ref]; ok {
					visit(k)
				}
			}
		}
		out = append(out, items[j])
	}
	for j := range items {
		visit(j)
	}
	return out
}

// seq returns 0, 1, ..., n-1.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func (p *plan) add(c gatehouse.Change, pointer string, report Change) {
	p.changes = append(p.changes, c)
	p.pointers = append(p.pointers, pointer)
	p.set.Changes = append(p.set.Changes, report)
	switch c.Op {
	case gatehouse.OpCreate:
		p.set.Summary.Create++
	case gatehouse.OpUpdate:
		p.set.Summary.Update++
	case gatehouse.OpDelete:
		p.set.Summary.Delete++
	}
}

// createChange is the store's create of a new entry, as POST would make it.
func createChange(e *entry) (gatehouse.Change, Change, *Problem) {
	report := Change{Action: gatehouse.OpCreate, Kind: e.res.Kind(), ID: e.res.Base().ID, Name: e.res.Index().Name, Pointer: e.pointer,
		Warnings: Risks(e.res)}
	var sec []byte
	if c, ok := e.res.(*gatehouse.Credential); ok {
		var problem *Problem
		if sec, problem = newSecret(e, c); problem != nil {
			return gatehouse.Change{}, report, problem
		}
	}
	rec, err := encode(e.res, sec)
	if err != nil {
		return gatehouse.Change{}, report, &Problem{Pointer: e.pointer, Message: "cannot be encoded", Code: gatehouse.EINVALID}
	}
	return gatehouse.Change{Op: gatehouse.OpCreate, Record: rec}, report, nil
}

// newSecret is the hash a credential's secret is stored as; a new
// credential must give its secret: one the server generated would be
// shown to no one.
func newSecret(e *entry, c *gatehouse.Credential) ([]byte, *Problem) {
	if p := missingSecret(e); p != nil {
		return nil, p
	}
	s := e.secret
	switch c.Type {
	case gatehouse.CredentialKeyAuth:
		return []byte(s.hashedKey()), nil
	case gatehouse.CredentialBasicAuth:
		if s.password != "" {
			return gatehouse.HashPassword(s.password), nil
		}
		return []byte(s.passwordHash), nil
	}
	return nil, nil
}

// encode is gatehouse.Encode, with a key-auth credential's unique key made
// from its stored hash (the credential's Index knows only a key it sealed).
func encode(res gatehouse.Resource, sec []byte) (*gatehouse.Record, error) {
	rec, err := gatehouse.Encode(res, sec)
	if err != nil {
		return nil, err
	}
	if c, ok := res.(*gatehouse.Credential); ok && c.Type == gatehouse.CredentialKeyAuth {
		rec.Unique = []string{gatehouse.KeyAuthLookup(string(sec))}
	}
	return rec, nil
}

// updateChange compares an entry with the store's record: nil if nothing
// changes, else the update and its fields.
func updateChange(d *draftState, e *entry, rec *gatehouse.Record) (*gatehouse.Change, Change, *Problem, error) {
	kind := e.res.Kind()
	report := Change{Action: gatehouse.OpUpdate, Kind: kind, ID: rec.ID, Name: e.res.Index().Name, Pointer: e.pointer,
		Warnings: Risks(e.res)}
	current, err := d.resource(kind, rec.ID)
	if err != nil {
		return nil, report, nil, err
	}
	sec := rec.StoredSecret()
	if c, ok := e.res.(*gatehouse.Credential); ok {
		cur := current.(*gatehouse.Credential)
		if cur.ConsumerID != c.ConsumerID {
			return nil, report, &Problem{Pointer: e.pointer + "/id", Code: gatehouse.EUNPROCESSABLE,
				Message: fmt.Sprintf("is the id of a credential of consumer %q: a credential cannot move to another consumer", cur.ConsumerID)}, nil
		}
		if cur.Type != c.Type {
			return nil, report, &Problem{Pointer: e.pointer + "/type", Code: gatehouse.EUNPROCESSABLE,
				Message: fmt.Sprintf("cannot change (the credential is %s): create a credential with another id instead", cur.Type)}, nil
		}
		var field string
		sec, field = credentialSecret(e.secret, c.Type, sec)
		if field != "" {
			// A secret's value is never shown, not even its hash.
			report.Fields = append(report.Fields, FieldChange{Field: field, From: secretShown, To: secretShown})
		}
	}
	report.Fields = append(report.Fields, diff(current, e.res)...)
	sortFieldChanges(report.Fields)
	if len(report.Fields) == 0 {
		return nil, report, nil, nil
	}
	next, err := encode(e.res, sec)
	if err != nil {
		return nil, report, nil, err
	}
	next.Version = 0
	return &gatehouse.Change{Op: gatehouse.OpUpdate, Record: next, IfVersion: rec.Version}, report, nil, nil
}

// credentialSecret is the secret a credential is stored with after an
// update, and the field that changes it ("" if it stays): what the
// document gives, compared with the stored hash as the data plane would
// compare it; nothing given keeps the stored one.
func credentialSecret(s secret, typ string, stored []byte) ([]byte, string) {
	switch typ {
	case gatehouse.CredentialKeyAuth:
		switch {
		case s.key != "" && !gatehouse.TokenMatches(s.key, stored):
			return []byte(gatehouse.HashToken(s.key)), "/key"
		case s.keyHash != "" && s.keyHash != string(stored):
			return []byte(s.keyHash), "/key_hash"
		}
	case gatehouse.CredentialBasicAuth:
		switch {
		case s.password != "" && !gatehouse.PasswordMatches(s.password, stored):
			return gatehouse.HashPassword(s.password), "/password"
		case s.passwordHash != "" && s.passwordHash != string(stored):
			return []byte(s.passwordHash), "/password_hash"
		}
	}
	return stored, ""
}
