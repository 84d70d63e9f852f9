package gatehouse_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestTrafficSplitPolicyCheck(t *testing.T) {
	split := func(cfg string) string { return `{"name":"p","type":"traffic-split","config":` + cfg + `}` }
	runChecks(t, gatehouse.KindPolicy, []checkCase{
		{desc: "a canary", body: split(`{"services":[{"service_id":"canary","percent":5}]}`)},
		{desc: "shares with two decimals summing to 100", body: split(`{"services":[{"service_id":"a","percent":33.33},{"service_id":"b","percent":66.67}]}`)},
		{desc: "the smallest share", body: split(`{"services":[{"service_id":"a","percent":0.01}]}`)},
		{desc: "pins by header and cookie, sticky per consumer", body: split(`{"services":[{"service_id":"canary","percent":5,"pin":"canary"},
			{"service_id":"stable","percent":1,"pin":"stable"}],"pin_header":"X-Gatehouse-Pin","pin_cookie":"gh_pin","sticky":"consumer"}`)},
		{desc: "sticky per client", body: split(`{"services":[{"service_id":"a","percent":50}],"sticky":"client"}`)},
		{desc: "no services", body: split(`{}`), invalid: []string{"config.services"}},
		{desc: "too many services", body: split(`{"services":` + jsonList(gatehouse.MaxSplitServices+1, `{"service_id":"s%d","percent":1}`) + `}`),
			invalid: []string{"config.services"}},
		{desc: "a share of zero", body: split(`{"services":[{"service_id":"a","percent":0}]}`), invalid: []string{"config.services[0].percent"}},
		{desc: "no share", body: split(`{"services":[{"service_id":"a"}]}`), invalid: []string{"config.services[0].percent"}},
		{desc: "a negative share and one over 100", body: split(`{"services":[{"service_id":"a","percent":-5},{"service_id":"b","percent":100.01}]}`),
			invalid: []string{"config.services[0].percent", "config.services[1].percent"}},
		{desc: "three decimals", body: split(`{"services":[{"service_id":"a","percent":5.125}]}`), invalid: []string{"config.services[0].percent"}},
		{desc: "a share as a string", body: split(`{"services":[{"service_id":"a","percent":"5"}]}`), invalid: []string{"config.services[0].percent"}},
		{desc: "shares over 100 together", body: split(`{"services":[{"service_id":"a","percent":60},{"service_id":"b","percent":40.01}]}`),
			unprocessable: []string{"config.services"}},
		{desc: "a service without an id and one with a bad id", body: split(`{"services":[{"percent":5},{"service_id":"no spaces","percent":5}]}`),
			invalid: []string{"config.services[0].service_id", "config.services[1].service_id"}},
		{desc: "a service twice", body: split(`{"services":[{"service_id":"a","percent":5},{"service_id":"a","percent":5}]}`),
			invalid: []string{"config.services[1].service_id"}},
		{desc: "a pin twice and a pin no cookie could carry", body: split(`{"services":[{"service_id":"a","percent":5,"pin":"x"},
			{"service_id":"b","percent":5,"pin":"x"},{"service_id":"c","percent":5,"pin":"a b"}],"pin_header":"X-Pin"}`),
			invalid: []string{"config.services[1].pin", "config.services[2].pin"}},
		{desc: "a pin with nothing to carry it", body: split(`{"services":[{"service_id":"a","percent":5,"pin":"canary"}]}`),
			unprocessable: []string{"config.pin_header"}},
		{desc: "pin header and cookie that are not names", body: split(`{"services":[{"service_id":"a","percent":5}],"pin_header":"X Pin","pin_cookie":"a;b"}`),
			invalid: []string{"config.pin_header", "config.pin_cookie"}},
		{desc: "an unknown sticky", body: split(`{"services":[{"service_id":"a","percent":5}],"sticky":"session"}`), invalid: []string{"config.sticky"}},
		{desc: "global", body: `{"name":"p","type":"traffic-split","global":true,"config":{"services":[{"service_id":"a","percent":5}]}}`,
			unprocessable: []string{"global"}},
	})
}

func TestMirrorPolicyCheck(t *testing.T) {
	mirror := func(cfg string) string { return `{"name":"p","type":"mirror","config":` + cfg + `}` }
	runChecks(t, gatehouse.KindPolicy, []checkCase{
		{desc: "every request", body: mirror(`{"service_id":"shadow"}`)},
		{desc: "everything set", body: mirror(`{"service_id":"shadow","percent":12.5,"max_body_bytes":0,"max_concurrent":1024}`)},
		{desc: "global", body: `{"name":"p","type":"mirror","global":true,"config":{"service_id":"recorder"}}`},
		{desc: "no service", body: mirror(`{}`), invalid: []string{"config.service_id"}},
		{desc: "a share of zero", body: mirror(`{"service_id":"s","percent":0}`), invalid: []string{"config.percent"}},
		{desc: "three decimals", body: mirror(`{"service_id":"s","percent":0.001}`), invalid: []string{"config.percent"}},
		{desc: "body limit out of range", body: mirror(`{"service_id":"s","max_body_bytes":16777217}`), invalid: []string{"config.max_body_bytes"}},
		{desc: "no concurrency", body: mirror(`{"service_id":"s","max_concurrent":0}`), invalid: []string{"config.max_concurrent"}},
	})
}

func TestMirrorPolicyIsReadBackWithItsDefaults(t *testing.T) {
	p := policyOf(t, `{"name":"p","type":"mirror","config":{"service_id":"shadow"}}`)
	cfg, err := p.DecodeConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := &gatehouse.MirrorConfig{ServiceID: "shadow", Percent: 100, MaxBodyBytes: 65536, MaxConcurrent: 32}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("read back %s; want %+v", p.Config, want)
	}
}

func TestSplitSharesAreBasisPoints(t *testing.T) {
	for _, tc := range []struct {
		percent float64
		want    int
	}{{5, 500}, {0.01, 1}, {33.33, 3333}, {66.67, 6667}, {100, 10000}, {0.29, 29}, {1.15, 115}} {
		if got := (gatehouse.SplitService{Percent: tc.percent}).BasisPoints(); got != tc.want {
			t.Errorf("%v%%: got %d basis points; want %d", tc.percent, got, tc.want)
		}
	}
}

// The services a split or a mirror names are references: the store keeps
// them from being deleted (409), and a write naming a missing one is 422,
// reported at the field that names it.
func TestSplitAndMirrorPoliciesReferTheirServices(t *testing.T) {
	for _, tc := range []struct {
		desc, body string
		want       []string // field → service
	}{
		{"split", `{"name":"p","type":"traffic-split","config":{"services":[{"service_id":"canary","percent":5},{"service_id":"stable","percent":1}]}}`,
			[]string{"config.services[0].service_id=canary", "config.services[1].service_id=stable"}},
		{"mirror", `{"name":"p","type":"mirror","config":{"service_id":"shadow"}}`, []string{"config.service_id=shadow"}},
		{"another type", `{"name":"p","type":"maintenance","config":{}}`, nil},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			p := policyOf(t, tc.body)
			var got, index []string
			for _, fr := range gatehouse.FieldRefs(p) {
				if fr.Ref.Kind != gatehouse.KindService {
					t.Errorf("%s refers to a %s", fr.Field, fr.Ref.Kind)
				}
				got = append(got, fr.Field+"="+fr.Ref.ID)
				if msg := gatehouse.CheckRef(fr, nil); msg == "" {
					t.Errorf("%s: a missing service is not refused", fr.Field)
				}
			}
			for _, r := range p.Index().Refs {
				index = append(index, r.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("field refs %q; want %q", got, tc.want)
			}
			var wantIndex []string
			for _, w := range tc.want {
				_, id, _ := strings.Cut(w, "=")
				wantIndex = append(wantIndex, id)
			}
			if !slices.Equal(index, wantIndex) {
				t.Errorf("index refs %q; want %q", index, wantIndex)
			}
		})
	}
}

func policyOf(t *testing.T, body string) *gatehouse.Policy {
	t.Helper()
	p := gatehouse.NewPolicy()
	if err := json.Unmarshal([]byte(body), p); err != nil {
		t.Fatal(err)
	}
	if bad, semantic := gatehouse.NormalizeAndCheck(p); len(bad)+len(semantic) > 0 {
		t.Fatalf("check: %v %v", bad, semantic)
	}
	return p
}
