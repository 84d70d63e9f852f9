package gatehouse

import "fmt"

// FieldRef is a reference a resource makes, with the field that makes it,
// so that a reference that cannot be followed is reported where it is
// written.
type FieldRef struct {
	Field string
	Ref   Ref
	// paths are the path patterns of the route making the reference, for
	// a transform's path template (checkTransformRef).
	paths []string
}

// FieldRefs returns the references res makes to other resources, each
// with its field: a route's service and policies, a service's policies, an
// openapi policy's spec, the services a traffic-split or mirror policy
// names, a consumer-scoped token's consumer. A nested
// resource's parent is not among them.
func FieldRefs(res Resource) []FieldRef {
	switch r := res.(type) {
	case *Route:
		refs := policyFieldRefs(r.Policies)
		for i := range refs {
			refs[i].paths = r.Paths
		}
		return append([]FieldRef{{Field: "service_id", Ref: Ref{KindService, r.ServiceID}}}, refs...)
	case *Service:
		return policyFieldRefs(r.Policies)
	case *Policy:
		refs := r.serviceFieldRefs()
		if id := r.SpecID(); id != "" {
			refs = append(refs, FieldRef{Field: "config.spec_id", Ref: Ref{KindSpec, id}})
		}
		return refs
	case *Token:
		if r.ConsumerID != "" {
			return []FieldRef{{Field: "consumer_id", Ref: Ref{KindConsumer, r.ConsumerID}}}
		}
	}
	return nil
}

func policyFieldRefs(ids []string) []FieldRef {
	refs := make([]FieldRef, len(ids))
	for i, id := range ids {
		refs[i] = FieldRef{Field: fmt.Sprintf("policies[%d]", i), Ref: Ref{KindPolicy, id}}
	}
	return refs
}

// CheckRef judges one reference against its target, nil if the target
// does not exist, and returns what is wrong with it (422), or "". The
// admin API finds targets in the store, a configuration file among its
// own entries: both judge them here.
func CheckRef(fr FieldRef, target Resource) string {
	if target == nil {
		return fmt.Sprintf("refers to %s %q, which does not exist", fr.Ref.Kind, fr.Ref.ID)
	}
	// Egress policies govern the egress listener; listing one on a route
	// or service would mean nothing.
	if p, ok := target.(*Policy); ok && p.GlobalOnly() {
		return fmt.Sprintf("refers to policy %q of type %s, which applies only globally", fr.Ref.ID, p.Type)
	}
	if p, ok := target.(*Policy); ok && p.Type == PolicyTransform {
		return checkTransformRef(fr, p)
	}
	return ""
}

// CheckRefsTogether judges what a resource's references say together
// once each was found (targets[i] is refs[i]'s, nil if it does not
// exist): a route or service listing two traffic-split policies, which
// one answer cannot follow (422 at the second). A service's split and a
// route's own are two levels, the route's winning, and are not judged
// here; a policy changed into a split after it was listed is judged when
// the revision deploys.
func CheckRefsTogether(refs []FieldRef, targets []Resource) []FieldError {
	var first string
	var out []FieldError
	for i, fr := range refs {
		if p, ok := targets[i].(*Policy); ok && p.Type == PolicyTrafficSplit {
			if first == "" {
				first = fr.Ref.ID
				continue
			}
			out = append(out, FieldError{Field: fr.Field,
				Message: fmt.Sprintf("refers to traffic-split policy %q beside %q: one level may hold one traffic split, as one answer has one upstream", fr.Ref.ID, first)})
		}
	}
	return out
}

// New returns an empty resource of an operator-managed kind (the draft
// kinds and tokens), or nil for another kind.
func New(kind Kind) Resource {
	switch kind {
	case KindService:
		return NewService()
	case KindRoute:
		return NewRoute()
	case KindConsumer:
		return NewConsumer()
	case KindCredential:
		return NewCredential()
	case KindPolicy:
		return NewPolicy()
	case KindSpec:
		return NewSpec()
	case KindToken:
		return NewToken()
	}
	return nil
}
