package serve

import "github.com/gatehouse/gatehouse"

// framing follows the HTTP/1 requests a client sends on one connection,
// head and body, as the bytes reach net/http, to find the requests whose
// framing net/http accepts but a handler can no longer see:
//
//   - Content-Length together with Transfer-Encoding: net/http drops the
//     length and reads chunks, and keeps the connection; RFC 9112 §6.1
//     allows that only if the connection is closed after the response,
//     because a peer that framed it by the length disagrees about where
//     the next request starts (request smuggling).
//   - Transfer-Encoding on an HTTP/1.0 request: net/http ignores it, reads
//     no body, and parses the body as the next request.
//
// net/http deletes both fields before a handler runs, so only the bytes
// tell. Such a request is refused with 400 and the connection closed, as
// nginx does, before net/http reads any of it as a complete request.
//
// It reads no more than it must to stay in step with net/http: the version
// from the request line, Content-Length and Transfer-Encoding from the
// header fields, and body lengths and chunk sizes to skip bodies. What
// net/http itself refuses (malformed lengths, unknown codings, bad chunks)
// ends the connection anyway; framing then stops looking (lost).
type framing struct {
	state uint8
	// tail holds the last 8 bytes of the request line: its version.
	tail   uint64
	http10 bool
	// name is the lower-cased start of the current field name.
	name  [len("transfer-encoding")]byte
	nameN int // len(name)+1 when longer than any name looked for
	field uint8
	// What the head declared.
	hasCL, clBad, clEnded, clDigits bool
	cl, clField                     int64
	teFields                        int
	te                              [len("chunked") + 1]byte
	teN                             int
	teTrailingSpace                 bool
	// remain is what is left of the body, or of the current chunk.
	remain    int64
	sizeDigit bool
}

const (
	fStart        = iota // before a request line, skipping CR and LF
	fRequestLine         // in the request line
	fLineStart           // at the start of a header line
	fName                // in a field name
	fValue               // in a field value
	fBody                // in a body of known length
	fChunkSize           // in a chunk-size line
	fChunkExt            // in a chunk extension, up to the line's end
	fChunkData           // in chunk data
	fChunkCR             // after chunk data, expecting CR
	fChunkLF             // expecting LF
	fTrailerStart        // at the start of a trailer line
	fTrailer             // in a trailer line
	fLost                // no longer following the connection
)

const (
	fieldOther = iota
	fieldCL
	fieldTE
)

// http10Tail is "HTTP/1.0" as the last 8 bytes of tail.
const http10Tail = uint64('H')<<56 | uint64('T')<<48 | uint64('T')<<40 | uint64('P')<<32 |
	uint64('/')<<24 | uint64('1')<<16 | uint64('.')<<8 | uint64('0')

// feed follows p, the next bytes the client sent. It returns how many
// complete request heads p ends, and, when a head's framing is refused,
// the offset of the head's last byte, which must not reach net/http, and
// the problem.
func (f *framing) feed(p []byte) (heads, cut int, refused error) {
	for i := 0; i < len(p); i++ {
		b := p[i]
		switch f.state {
		case fStart:
			if b == '\r' || b == '\n' {
				continue // net/http skips blank lines before a request
			}
			*f = framing{state: fRequestLine}
			f.tail = uint64(b)
		case fRequestLine:
			switch b {
			case '\n':
				f.http10 = f.tail == http10Tail
				f.state = fLineStart
			case '\r':
			default:
				f.tail = f.tail<<8 | uint64(b)
			}
		case fLineStart:
			switch b {
			case '\r':
			case '\n':
				if err := f.endHead(); err != nil {
					return heads, i, err
				}
				heads++
			case ' ', '\t':
				// An obsolete line folding continues the field before.
				switch f.field {
				case fieldCL:
					f.clBad = true
				case fieldTE:
					f.teN = len(f.te)
				}
				f.state = fValue
			default:
				f.nameN, f.field = 0, fieldOther
				f.addName(b)
				f.state = fName
			}
		case fName:
			switch b {
			case ':':
				f.startValue()
				f.state = fValue
			case '\n':
				f.state = fLost // net/http refuses a line without a colon
			default:
				f.addName(b)
			}
		case fValue:
			if b == '\n' {
				f.endValue()
				f.state = fLineStart
				continue
			}
			f.addValue(b)
		case fBody:
			i = f.skip(p, i, fStart)
		case fChunkSize:
			switch {
			case unhex(b) >= 0:
				if f.remain > 1<<59 {
					f.state = fLost // net/http refuses sizes over 63 bits
					continue
				}
				f.remain = f.remain<<4 | int64(unhex(b))
				f.sizeDigit = true
			case b == ';' || b == ' ' || b == '\t':
				f.state = fChunkExt
			case b == '\r':
			case b == '\n':
				f.endChunkSize()
			default:
				f.state = fLost
			}
		case fChunkExt:
			if b == '\n' {
				f.endChunkSize()
			}
		case fChunkData:
			i = f.skip(p, i, fChunkCR)
		case fChunkCR:
			f.state = fChunkLF
			if b != '\r' {
				f.state = fLost
			}
		case fChunkLF:
			f.state, f.remain, f.sizeDigit = fChunkSize, 0, false
			if b != '\n' {
				f.state = fLost
			}
		case fTrailerStart:
			switch b {
			case '\r':
			case '\n':
				f.state = fStart
			default:
				f.state = fTrailer
			}
		case fTrailer:
			if b == '\n' {
				f.state = fTrailerStart
			}
		case fLost:
			return heads, 0, nil
		}
	}
	return heads, 0, nil
}

// skip passes over the body bytes from p[i] on, at most f.remain, moving to
// state next at their end, and returns the index of the last one.
func (f *framing) skip(p []byte, i int, next uint8) int {
	n := min(int64(len(p)-i), f.remain)
	f.remain -= n
	if f.remain == 0 {
		f.state = next
	}
	return i + int(n) - 1
}

func (f *framing) addName(b byte) {
	if f.nameN < len(f.name) {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		f.name[f.nameN] = b
	}
	f.nameN = min(f.nameN+1, len(f.name)+1)
}

func (f *framing) startValue() {
	f.field = fieldOther
	switch string(f.name[:min(f.nameN, len(f.name))]) {
	case "content-length":
		if f.nameN == len("content-length") {
			f.field = fieldCL
			f.clField, f.clDigits, f.clEnded = 0, false, false
		}
	case "transfer-encoding":
		if f.nameN == len("transfer-encoding") {
			f.field = fieldTE
			f.teFields++
			f.teN, f.teTrailingSpace = 0, false
		}
	}
}

func (f *framing) addValue(b byte) {
	switch f.field {
	case fieldCL:
		switch {
		case b == ' ' || b == '\t' || b == '\r':
			f.clEnded = f.clDigits
		case '0' <= b && b <= '9' && !f.clEnded && f.clField < 1<<59:
			f.clField = f.clField*10 + int64(b-'0')
			f.clDigits = true
		default:
			f.clBad = true
		}
	case fieldTE:
		switch {
		case b == ' ' || b == '\t' || b == '\r':
			f.teTrailingSpace = f.teN > 0
		case f.teTrailingSpace || f.teN >= len(f.te):
			f.teN = len(f.te) // not "chunked"
		default:
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			f.te[f.teN] = b
			f.teN++
		}
	}
}

func (f *framing) endValue() {
	if f.field != fieldCL {
		return
	}
	if !f.clDigits || f.hasCL && f.cl != f.clField {
		f.clBad = true
	}
	f.hasCL, f.cl = true, f.clField
}

// endHead decides the body that follows a complete head, or refuses it.
func (f *framing) endHead() error {
	switch {
	case f.teFields > 0 && f.hasCL:
		return gatehouse.Errorf(gatehouse.EINVALID,
			"The request has both Content-Length and Transfer-Encoding, which frame its body differently (RFC 9112 §6.1).")
	case f.teFields > 0 && f.http10:
		return gatehouse.Errorf(gatehouse.EINVALID,
			"Transfer-Encoding is not defined for HTTP/1.0, so the request's body cannot be framed (RFC 9112 §6.1).")
	case f.teFields > 0:
		f.state = fLost // net/http answers 501 to anything but one "chunked"
		if f.teFields == 1 && string(f.te[:f.teN]) == "chunked" {
			f.state, f.remain, f.sizeDigit = fChunkSize, 0, false
		}
	case f.hasCL && f.clBad:
		f.state = fLost // net/http refuses it
	case f.hasCL && f.cl > 0:
		f.state, f.remain = fBody, f.cl
	default:
		f.state = fStart
	}
	return nil
}

func (f *framing) endChunkSize() {
	switch {
	case !f.sizeDigit:
		f.state = fLost
	case f.remain == 0:
		f.state = fTrailerStart
	default:
		f.state = fChunkData
	}
}

func unhex(b byte) int {
	switch {
	case '0' <= b && b <= '9':
		return int(b - '0')
	case 'a' <= b && b <= 'f':
		return int(b-'a') + 10
	case 'A' <= b && b <= 'F':
		return int(b-'A') + 10
	}
	return -1
}
