package deploy

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse"
)

// KindLease holds the lease that makes one control node the one that
// drives deployments; internal, not served by the admin API.
const KindLease gatehouse.Kind = "leases"

const leaseID = "deployer"

// lease is who drives deployments, until when. Another control node takes
// it over only once it has expired, so two never drive the same
// deployment at once (they would undo each other's decisions).
type lease struct {
	gatehouse.Meta
	Owner     string    `json:"owner"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (l *lease) Kind() gatehouse.Kind                                   { return KindLease }
func (l *lease) Base() *gatehouse.Meta                                  { return &l.Meta }
func (l *lease) Index() gatehouse.Index                                 { return gatehouse.Index{} }
func (l *lease) Check() (invalid, unprocessable []gatehouse.FieldError) { return nil, nil }

// holdLease takes or renews the lease for this Deployer and reports
// whether it holds it. Every write is version-checked, so of several
// control nodes racing for an expired lease exactly one wins.
func (d *Deployer) holdLease(ctx context.Context) (bool, error) {
	now := d.now().UTC()
	mine := &lease{Meta: gatehouse.Meta{ID: leaseID}, Owner: d.cluster.Owner, ExpiresAt: now.Add(d.cluster.Lease)}
	rec, err := gatehouse.Encode(mine, nil)
	if err != nil {
		return false, gatehouse.Internal(err)
	}
	cur, err := d.store.Get(ctx, KindLease, leaseID)
	switch {
	case gatehouse.Absent(err):
		err = d.store.Create(ctx, rec)
	case err != nil:
		return false, err
	default:
		var held lease
		if err := gatehouse.Decode(cur, &held); err != nil {
			return false, err
		}
		if held.Owner != d.cluster.Owner && now.Before(held.ExpiresAt) {
			return false, nil
		}
		if held.Owner == d.cluster.Owner && now.Before(held.ExpiresAt.Add(-d.cluster.Lease/2)) {
			return true, nil // held, and fresh enough not to write yet
		}
		err = d.store.Update(ctx, rec, cur.Version)
	}
	switch gatehouse.ErrorCode(err) {
	case gatehouse.ECONFLICT, gatehouse.EPRECONDITION:
		return false, nil // another node got there first
	}
	return err == nil, err
}
