package httpx

import "testing"

func TestValidHost(t *testing.T) {
	for h, want := range map[string]bool{
		"":                        true,
		"example.com":             true,
		"Example.COM:8080":        true,
		"example.com.":            true,
		"example.com.:443":        true,
		"localhost":               true,
		"127.0.0.1:80":            true,
		"[::1]":                   true,
		"[2001:db8::1]:443":       true,
		"xn--bcher-kva.example":   true,
		"admin.example.com:80:80": false,
		"example.com:":            false,
		"example.com:0":           false,
		"example.com:65536":       false,
		"example.com:123456":      false,
		"example.com:8o":          false,
		"example.com:+80":         false,
		"a..example.com":          false,
		".example.com":            false,
		"example.com..":           false,
		"-a.example.com":          false,
		"a-.example.com":          false,
		"a_b.example.com":         false,
		"exa%6dple.com":           false,
		"user@example.com":        false,
		"example.com/x":           false,
		"[::1":                    false,
		"[::1]x":                  false,
		"[::1]:":                  false,
		"[127.0.0.1]":             false,
		"[fe80::1%25eth0]":        false,
		"::1":                     false,
		"*.example.com":           false,
	} {
		if got := ValidHost(h); got != want {
			t.Errorf("ValidHost(%q) = %v; want %v", h, got, want)
		}
	}
}
