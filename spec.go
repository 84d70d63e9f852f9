package gatehouse

// KindSpec is the collection of OpenAPI documents.
const KindSpec Kind = "specs"

// Spec is an OpenAPI description (3.0 or 3.1) of an API behind the
// gateway, kept as the client wrote it: Document is its text, JSON or
// YAML as MediaType says. Routes are imported from it, and openapi
// policies validate requests and judge responses against it.
type Spec struct {
	Meta
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	Document  string `json:"document"`
}

func NewSpec() *Spec { return &Spec{} }

func (s *Spec) Kind() Kind  { return KindSpec }
func (s *Spec) Base() *Meta { return &s.Meta }

func (s *Spec) Index() Index {
	return Index{Name: s.Name, Unique: []string{"name:" + s.Name}}
}

func (s *Spec) Check() (invalid, unprocessable []FieldError) {
	var bad fields
	checkMeta(&s.Meta, &bad)
	checkName(s.Name, true, &bad)
	return bad, nil
}
