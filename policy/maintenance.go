package policy

import (
	"strconv"

	"github.com/gatehouse/gatehouse"
)

func init() { register(gatehouse.PolicyMaintenance, buildMaintenance) }

// maintenance answers every request 503 with the configured message.
type maintenance struct {
	err        *gatehouse.Error
	retryAfter []string
}

func buildMaintenance(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.MaintenanceConfig](pols)
	if err != nil {
		return nil, err
	}
	// Several at one level: the first one listed speaks.
	c := cfgs[0]
	return &maintenance{err: gatehouse.Errorf(gatehouse.EUNAVAILABLE, "%s", c.Message),
		retryAfter: []string{strconv.Itoa(c.RetryAfterSeconds)}}, nil
}

func (m *maintenance) Check(r *Request) error {
	r.W.Header()["Retry-After"] = m.retryAfter
	return m.err
}
