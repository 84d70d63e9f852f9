package config_test

import (
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
)

func TestSingularNamesOneResourceOfEachKind(t *testing.T) {
	for kind, want := range map[gatehouse.Kind]string{
		gatehouse.KindService: "service", gatehouse.KindRoute: "route", gatehouse.KindConsumer: "consumer",
		gatehouse.KindCredential: "credential", gatehouse.KindPolicy: "policy", gatehouse.KindSpec: "spec",
	} {
		if got := config.Singular(kind); got != want {
			t.Errorf("Singular(%s): got %q; want %q", kind, got, want)
		}
	}
}
