package gatehouse_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestNamesFromTitlesAndOperationIDsFollowTheNameRule(t *testing.T) {
	for _, c := range []struct{ in, title, name string }{
		{"Swagger Petstore", "swagger-petstore", "Swagger-Petstore"},
		{"listPets", "listpets", "listPets"},
		{"  USPTO  Data Set API!! ", "uspto-data-set-api", "USPTO-Data-Set-API"},
		{"find pet by id", "find-pet-by-id", "find-pet-by-id"},
		{"__v1.0__", "v1.0", "v1.0"},
		{"Café ☕ API", "caf-api", "Caf-API"},
		{"!!!", "", ""},
		{"", "", ""},
	} {
		if got := gatehouse.NameFrom(c.in); got != c.title {
			t.Errorf("NameFrom(%q) = %q; want %q", c.in, got, c.title)
		}
		if got := gatehouse.SanitizeName(c.in); got != c.name {
			t.Errorf("SanitizeName(%q) = %q; want %q", c.in, got, c.name)
		}
	}
	if long := gatehouse.SanitizeName(strings.Repeat("b", 200) + "-"); len(long) != 128 {
		t.Errorf("a 201-character name: got %d characters; want 128", len(long))
	}
}
