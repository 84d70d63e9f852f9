package gatehouse

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// Policy is a named, reusable policy definition. The schema of Config
// depends on Type; see PolicyTypes.
type Policy struct {
	Meta
	Name   string          `json:"name"`
	Type   string          `json:"type"`
	Config json.RawMessage `json:"config"`
}

// RateLimitConfig allows Requests per Per ("second", "minute" or "hour").
type RateLimitConfig struct {
	Requests int    `json:"requests"`
	Per      string `json:"per"`
}

// ACLConfig allows or denies consumers by group. Exactly one list is set.
type ACLConfig struct {
	Allow []string `json:"allow"`
	Deny  []string `json:"deny"`
}

// SizeLimitConfig caps request bodies at MaxBytes.
type SizeLimitConfig struct {
	MaxBytes int64 `json:"max_bytes"`
}

// policyType decodes and checks one type's config. It is the registry's
// single place per type: the data plane will add its constructor beside it.
type policyType struct {
	newConfig func() any
	check     func(cfg any, f *fields)
}

// PolicyTypes maps each policy type to its config schema.
var PolicyTypes = map[string]policyType{
	"rate-limit": {
		newConfig: func() any { return &RateLimitConfig{} },
		check: func(cfg any, f *fields) {
			c := cfg.(*RateLimitConfig)
			checkRange("config.requests", c.Requests, 1, 1_000_000_000, f)
			if !slices.Contains([]string{"second", "minute", "hour"}, c.Per) {
				f.add("config.per", "must be second, minute or hour")
			}
		},
	},
	"acl": {
		newConfig: func() any { return &ACLConfig{} },
		check: func(cfg any, f *fields) {
			c := cfg.(*ACLConfig)
			if (len(c.Allow) == 0) == (len(c.Deny) == 0) {
				f.add("config", "must set exactly one of allow and deny")
			}
			checkGroups("config.allow", c.Allow, f)
			checkGroups("config.deny", c.Deny, f)
		},
	},
	"size-limit": {
		newConfig: func() any { return &SizeLimitConfig{} },
		check: func(cfg any, f *fields) {
			c := cfg.(*SizeLimitConfig)
			if c.MaxBytes < 1 || c.MaxBytes > 1<<40 {
				f.add("config.max_bytes", "must be between 1 and %d", int64(1)<<40)
			}
		},
	},
}

func policyTypeNames() string {
	names := make([]string, 0, len(PolicyTypes))
	for n := range PolicyTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func NewPolicy() *Policy { return &Policy{} }

func (p *Policy) Kind() Kind  { return KindPolicy }
func (p *Policy) Base() *Meta { return &p.Meta }

func (p *Policy) Index() Index {
	return Index{Name: p.Name, Unique: []string{"name:" + p.Name}}
}

func (p *Policy) Check() (invalid, unprocessable []FieldError) {
	var bad fields
	checkMeta(&p.Meta, &bad)
	checkName(p.Name, true, &bad)
	pt, known := PolicyTypes[p.Type]
	switch {
	case p.Type == "":
		bad.add("type", "is required: one of %s", policyTypeNames())
	case !known:
		bad.add("type", "must be one of %s", policyTypeNames())
	case len(p.Config) == 0 || string(p.Config) == "null":
		bad.add("config", "is required for type %s", p.Type)
	default:
		cfg := pt.newConfig()
		tree, err := strictjson.Parse(p.Config)
		if err != nil {
			bad.add("config", "is not valid JSON")
			break
		}
		if errs := strictjson.Assign(tree, cfg); len(errs) > 0 {
			for _, e := range errs {
				field := "config"
				if e.Field != "body" {
					field = "config." + e.Field
				}
				bad.add(field, "%s", e.Message)
			}
			break
		}
		pt.check(cfg, &bad)
	}
	return bad, nil
}

// DecodeConfig returns the policy's typed config (*RateLimitConfig, ...).
func (p *Policy) DecodeConfig() (any, error) {
	pt, ok := PolicyTypes[p.Type]
	if !ok {
		return nil, fmt.Errorf("unknown policy type %q", p.Type)
	}
	cfg := pt.newConfig()
	return cfg, json.Unmarshal(p.Config, cfg)
}
