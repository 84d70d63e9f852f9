package config

// This file stands in for the loader's Read and Decode (branch h-load)
// until they are merged: a document from JSON or YAML, each entry decoded
// as the admin API decodes a body. It goes when they come.

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/strictjson"
	"go.yaml.in/yaml/v4"
)

// ReadInterim reads a document from JSON or YAML.
func ReadInterim(data []byte) (*Document, []Problem) {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] != '{' {
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			return nil, []Problem{{Message: "is not well-formed YAML: " + err.Error(), Code: gatehouse.EINVALID}}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, []Problem{{Message: "is not a document", Code: gatehouse.EINVALID}}
		}
		data = b
	}
	var top struct {
		FormatVersion string            `json:"format_version"`
		Services      []json.RawMessage `json:"services"`
		Routes        []json.RawMessage `json:"routes"`
		Consumers     []json.RawMessage `json:"consumers"`
		Policies      []json.RawMessage `json:"policies"`
		Specs         []json.RawMessage `json:"specs"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, []Problem{{Message: "is not a document: " + err.Error(), Code: gatehouse.EINVALID}}
	}
	doc := &Document{FormatVersion: top.FormatVersion}
	var problems []Problem
	each := func(name string, raws []json.RawMessage, make func() any, keep func(any)) {
		for i, raw := range raws {
			v := make()
			for _, e := range strictjson.Decode(raw, v) {
				problems = append(problems, Problem{Pointer: FieldPointer(fmt.Sprintf("/%s/%d", name, i), e.Field), Message: e.Message, Code: gatehouse.EINVALID})
			}
			keep(v)
		}
	}
	each("services", top.Services, func() any { return gatehouse.NewService() }, func(v any) { doc.Services = append(doc.Services, v.(*gatehouse.Service)) })
	each("routes", top.Routes, func() any { return gatehouse.NewRoute() }, func(v any) { doc.Routes = append(doc.Routes, v.(*gatehouse.Route)) })
	each("policies", top.Policies, func() any { return gatehouse.NewPolicy() }, func(v any) { doc.Policies = append(doc.Policies, v.(*gatehouse.Policy)) })
	each("specs", top.Specs, func() any { return &Spec{} }, func(v any) { doc.Specs = append(doc.Specs, v.(*Spec)) })
	each("consumers", top.Consumers, func() any { return &Consumer{Consumer: *gatehouse.NewConsumer()} }, func(v any) { doc.Consumers = append(doc.Consumers, v.(*Consumer)) })
	return doc, problems
}
