package gatehouse

import (
	"errors"
	"net"
)

// BodyTooLarge is the answer to a request body over limit bytes (413),
// the same from the admin API, the content policy and the data plane.
func BodyTooLarge(limit int64) *Error {
	return Errorf(ETOOLARGE, "The body exceeds the limit of %d bytes.", limit)
}

// BodyUnreadable is the answer to a request body that could not be read
// in full, err being the read's failure: 408 when the client stalled past
// the server's read deadline, 400 when it broke off or its chunk framing
// is bad. The admin API, the content policy and the data plane decide it
// here, once.
func BodyUnreadable(err error) *Error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{Code: ETIMEOUT, Message: "The request body was not received in time.", Err: err}
	}
	return &Error{Code: EINVALID, Message: "The request body is malformed or incomplete.", Err: err}
}
