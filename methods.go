package gatehouse

// knownMethods are the methods of RFC 9110 and RFC 5789.
var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "OPTIONS": true, "TRACE": true, "CONNECT": true,
}

// KnownMethod reports whether gatehouse recognises a request method. Any
// other is answered 501 Not Implemented, on the admin API and the data
// plane alike.
func KnownMethod(m string) bool { return knownMethods[m] }
