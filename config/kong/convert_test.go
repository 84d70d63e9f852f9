package kong

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// render is a conversion as the golden files hold it: the document, then
// what was dropped, one line each.
func render(t *testing.T, doc *config.Document, dropped []Dropped) []byte {
	t.Helper()
	// A password hash has a random salt: the golden file says only that
	// one is there.
	var hashes []*config.Credential
	for _, c := range doc.Consumers {
		for _, cr := range c.Credentials {
			if cr.PasswordHash != "" {
				if !strings.HasPrefix(cr.PasswordHash, "pbkdf2-sha256$") {
					t.Fatalf("credential %q: password_hash %q is not PBKDF2's", cr.ID, cr.PasswordHash)
				}
				hashes = append(hashes, cr)
			}
		}
	}
	saved := make([]string, len(hashes))
	for i, cr := range hashes {
		saved[i], cr.PasswordHash = cr.PasswordHash, "pbkdf2-sha256$(random salt)"
	}
	defer func() {
		for i, cr := range hashes {
			cr.PasswordHash = saved[i]
		}
	}()
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.Write(b)
	out.WriteString("\n\n# dropped\n")
	for _, d := range dropped {
		fmt.Fprintln(&out, d)
	}
	return out.Bytes()
}

func convertFile(t *testing.T, name string) (*config.Document, []Dropped) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	doc, dropped, err := Convert(data, name)
	if err != nil {
		t.Fatalf("Convert(%s): %v", name, err)
	}
	return doc, dropped
}

// TestConvertFixturesAsGoldenAndValid converts each fixture, written as
// Kong's documentation writes declarative files (testdata/SOURCES), and
// checks that gatehouse accepts every converted resource, that
// converting twice gives the same bytes, and that the result is the
// golden one (go test -update rewrites it after a deliberate change).
func TestConvertFixturesAsGoldenAndValid(t *testing.T) {
	for _, name := range []string{"kong-1.1.yml", "kong-2.1.yml", "kong-3.0.yml", "kong-2.1.json"} {
		t.Run(name, func(t *testing.T) {
			doc, dropped := convertFile(t, name)
			checkValid(t, doc)
			got := render(t, doc, dropped)
			doc2, dropped2 := convertFile(t, name)
			if again := render(t, doc2, dropped2); !bytes.Equal(got, again) {
				t.Fatalf("converting twice gave different results:\n%s\n---\n%s", got, again)
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(name, filepath.Ext(name))+filepath.Ext(name)+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("conversion differs from %s (go test -update after checking the change):\n%s", golden, got)
			}
		})
	}
}

// checkValid fails t unless every resource of doc passes gatehouse's
// validation, ids and names are unique per kind, and every reference
// resolves within doc as the admin API would judge it.
func checkValid(t *testing.T, doc *config.Document) {
	t.Helper()
	if doc.FormatVersion != config.FormatVersion {
		t.Errorf("format_version = %q; want %q", doc.FormatVersion, config.FormatVersion)
	}
	byID := map[gatehouse.Ref]gatehouse.Resource{}
	names := map[string]bool{}
	var all []gatehouse.Resource
	add := func(res gatehouse.Resource, name string) {
		ref := gatehouse.Ref{Kind: res.Kind(), ID: res.Base().ID}
		if byID[ref] != nil {
			t.Errorf("%s %q: id used twice", ref.Kind, ref.ID)
		}
		byID[ref] = res
		if key := string(res.Kind()) + "/" + strings.ToLower(name); name != "" && names[key] {
			t.Errorf("%s: name %q used twice", res.Kind(), name)
		} else {
			names[key] = true
		}
		all = append(all, res)
	}
	for _, s := range doc.Services {
		add(s, s.Name)
	}
	for _, r := range doc.Routes {
		add(r, r.Name)
	}
	for _, p := range doc.Policies {
		add(p, p.Name)
	}
	for _, c := range doc.Consumers {
		add(&c.Consumer, c.Name)
		for _, cr := range c.Credentials {
			checkCredential(t, c, cr)
		}
	}
	keys := map[string]string{}
	for _, res := range all {
		inv, unp := gatehouse.NormalizeAndCheck(res)
		if len(inv)+len(unp) > 0 {
			t.Errorf("%s %q: gatehouse refuses it: %v %v", res.Kind(), res.Base().ID, inv, unp)
		}
		for _, fr := range gatehouse.FieldRefs(res) {
			if why := gatehouse.CheckRef(fr, byID[fr.Ref]); why != "" {
				t.Errorf("%s %q %s: %s", res.Kind(), res.Base().ID, fr.Field, why)
			}
		}
		if r, ok := res.(*gatehouse.Route); ok {
			for _, k := range r.MatchKeys() {
				if other, dup := keys[k]; dup {
					t.Errorf("routes %q and %q share the match %s", other, r.ID, k)
				}
				keys[k] = r.ID
			}
		}
	}
}

// checkCredential checks a converted credential: valid as the admin API
// takes it, with its secret as a hash only.
func checkCredential(t *testing.T, c *config.Consumer, cr *config.Credential) {
	t.Helper()
	probe := cr.Credential
	switch cr.Type {
	case gatehouse.CredentialKeyAuth:
		if cr.Key != "" || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(cr.KeyHash) {
			t.Errorf("credential %q: key %q, key_hash %q; want only a SHA-256 hash", cr.ID, cr.Key, cr.KeyHash)
		}
	case gatehouse.CredentialBasicAuth:
		if cr.Password != "" || !strings.HasPrefix(cr.PasswordHash, "pbkdf2-sha256$") {
			t.Errorf("credential %q: password %q, password_hash %q; want only a hash", cr.ID, cr.Password, cr.PasswordHash)
		}
		// The hash stands for the password, which Check would ask for.
		probe.Password = "placeholder-password"
	default:
		t.Errorf("credential %q: type %q", cr.ID, cr.Type)
	}
	if inv, unp := probe.Check(); len(inv)+len(unp) > 0 {
		t.Errorf("consumer %q credential %q: gatehouse refuses it: %v %v", c.ID, cr.ID, inv, unp)
	}
}

func TestConvertRefusesWhatIsNotAKongFile(t *testing.T) {
	for _, tc := range []struct{ desc, in, want string }{
		{"empty", "", "empty"},
		{"not YAML", "services: [\n", "not a Kong declarative configuration"},
		{"a list", "- name: x\n", "not a mapping"},
		{"a scalar", "hello\n", "not a mapping"},
		{"no format version", "services: []\n", "_format_version is missing"},
		{"unknown format version", "_format_version: \"4.0\"\n", `"4.0" is not one`},
		{"an OpenAPI document", "openapi: 3.1.0\ninfo: {title: x, version: \"1\"}\npaths: {}\n", "_format_version is missing"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			doc, dropped, err := Convert([]byte(tc.in), "in.yml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want one containing %q", err, tc.want)
			}
			if doc != nil || dropped != nil {
				t.Errorf("got a document or drops with an error")
			}
		})
	}
}

func TestConvertAcceptsEveryFormatVersion(t *testing.T) {
	for _, v := range []string{"1.1", "2.1", "3.0"} {
		in := fmt.Sprintf("_format_version: %q\nservices:\n- name: s\n  url: http://s.internal\n  routes:\n  - paths: [/a]\n", v)
		doc, dropped, err := Convert([]byte(in), "in.yml")
		if err != nil || len(dropped) > 0 {
			t.Fatalf("%s: err %v, dropped %v", v, err, dropped)
		}
		if len(doc.Routes) != 1 || doc.Routes[0].Paths[0] != "/a*" {
			t.Errorf("%s: routes %+v; want one on /a*", v, doc.Routes)
		}
		checkValid(t, doc)
	}
}
