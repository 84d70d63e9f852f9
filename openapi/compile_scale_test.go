package openapi

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// manyOperations is a document of n operations, each with a parameter,
// a body and a response of their own schemas and one shared by $ref.
func manyOperations(n int) []byte {
	var b strings.Builder
	b.WriteString(minimal30 + "components: {schemas: {Shared: {type: object, properties: {id: {type: integer}}}}}\npaths:\n")
	for i := range n {
		fmt.Fprintf(&b, `  /r%d/{id}:
    post:
      parameters: [{name: id, in: path, required: true, schema: {type: integer, minimum: %d}}]
      requestBody: {content: {application/json: {schema: {type: object, properties: {n: {type: string, maxLength: %d}, s: {$ref: '#/components/schemas/Shared'}}}}}}
      responses: {200: {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/Shared'}}}}}
`, i, i, i+1)
	}
	return []byte(b.String())
}

// The compiler once copied what it knew of the document for every
// schema it compiled: 2,000 operations took 7.5 s, 9,900 ten minutes.
// The bytes allocated, unlike time, do not depend on the machine's load:
// four times the operations must allocate about four times as much, not
// sixteen.
func TestCompileWorkGrowsLinearlyWithTheOperations(t *testing.T) {
	allocated := func(n int) float64 {
		d := mustParse(t, manyOperations(n))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, probs := Compile(d, ""); probs != nil {
			t.Fatal(probs)
		}
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc - before.TotalAlloc)
	}
	small, large := allocated(250), allocated(1000)
	if ratio := large / small; ratio > 6 {
		t.Fatalf("compiling 1000 operations allocates %.1f times what 250 do; want about 4", ratio)
	}
}

func BenchmarkCompile2000Operations(b *testing.B) {
	d := mustParse(b, manyOperations(2000))
	b.ReportAllocs()
	for b.Loop() {
		if _, probs := Compile(d, ""); probs != nil {
			b.Fatal(probs)
		}
	}
}
