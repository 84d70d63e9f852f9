package gatehouse

// implemented are the methods of RFC 9110 and RFC 5789 that gatehouse
// serves. CONNECT is recognised but served for no resource, by the admin
// API or by a reverse proxy, which is RFC 9110 §15.6.2's case for 501
// too.
var implemented = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "OPTIONS": true, "TRACE": true,
}

// Implemented reports whether gatehouse serves a request method at all.
// Any other is answered 501 Not Implemented, before anything else, on the
// admin API and the data plane alike; a route cannot name one.
func Implemented(m string) bool { return implemented[m] }
