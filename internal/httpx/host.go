package httpx

import (
	"net/netip"
	"strings"
)

// ValidHost reports whether h is a Host field value (or :authority) that
// names a host gatehouse could serve: empty (HTTP/1.0, or a target without
// an authority), or a host name (gatehouse.ValidHostname, with one trailing dot
// allowed), an IPv4 address or a bracketed IPv6 address without a zone,
// then optionally ":" and a port from 1 to 65535 (RFC 9110 §7.2). Values
// that net/http lets through but no route could be meant for, such as
// "a.example.com:80:80", "a..example.com" or "a.example.com:", are not.
func ValidHost(h string) bool {
	if h == "" {
		return true
	}
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return false
		}
		host, port = h[1:end], h[end+1:]
		if port != "" && port[0] != ':' {
			return false
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return false
		}
	} else {
		if i := strings.IndexByte(h, ':'); i >= 0 {
			host, port = h[:i], h[i:]
		}
		if !ValidHostname(strings.TrimSuffix(host, ".")) {
			return false
		}
	}
	if port == "" {
		return true
	}
	port = port[1:]
	if port == "" || len(port) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
		n = n*10 + int(port[i]-'0')
	}
	return n >= 1 && n <= 65535
}

// ValidHostname reports whether h is a host name: dot-separated labels of
// letters, digits and hyphens, none empty, longer than 63 bytes, starting or
// ending with a hyphen, at most 253 bytes in all (RFC 1123 §2.1). It lives
// here, below the domain, so that packages the domain imports can use it;
// gatehouse.ValidHostname is this.
func ValidHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
