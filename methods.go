package gatehouse

import "strings"

// methods are the methods of RFC 9110 and RFC 5789 that gatehouse serves,
// in the order an Allow field lists them. CONNECT is recognised but served
// for no resource, by the admin API or by a reverse proxy, which is RFC
// 9110 §15.6.2's case for 501 too.
var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}

var implemented = func() map[string]bool {
	m := make(map[string]bool, len(methods))
	for _, x := range methods {
		m[x] = true
	}
	return m
}()

// Implemented reports whether gatehouse serves a request method at all.
// Any other is answered 501 Not Implemented, before anything else, on the
// admin API and the data plane alike; a route cannot name one.
func Implemented(m string) bool { return implemented[m] }

// ImplementedMethods lists the methods Implemented accepts as an Allow
// field does: what the server supports in general, the answer to
// "OPTIONS *".
var ImplementedMethods = strings.Join(methods, ", ")
