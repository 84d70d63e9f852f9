package policy

import (
	"errors"
	"testing"
)

type stepFunc func(r *Request) error

func (f stepFunc) Check(r *Request) error { return f(r) }

func TestChainReleasesWhatEarlierStepsTookWhenALaterOneRefusesOrPanics(t *testing.T) {
	for _, tc := range []struct {
		desc string
		last Step
	}{
		{"refuses", stepFunc(func(*Request) error { return errors.New("no") })},
		{"panics", stepFunc(func(*Request) error { panic("bug") })},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			released := false
			take := stepFunc(func(r *Request) error {
				r.OnDone(func(o Outcome) { released = o.Status == 0 })
				return nil
			})
			chain := &Chain{steps: []Step{take, tc.last}}
			func() {
				defer func() { recover() }()
				chain.Run(NewRequest())
			}()
			if !released {
				t.Fatal("the first step's hold was not released")
			}
		})
	}
}
