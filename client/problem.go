package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Problem is an error answer of the admin API: its RFC 9457 problem
// document, or what the client could make of an answer without one.
type Problem struct {
	Status    int    `json:"status"`
	Type      string `json:"type"`
	Title     string `json:"title"`
	Detail    string `json:"detail"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Errors name each offending field: for the configuration endpoint a
	// JSON pointer into the submitted document.
	Errors []FieldError `json:"errors,omitempty"`
	// Allow is the Allow header of a 405: what the resource does take.
	Allow string `json:"-"`
}

// FieldError is one entry of a problem's errors.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is the problem on one line: the status, its title and the detail.
// Print shows the whole problem.
func (p *Problem) Error() string {
	s := fmt.Sprintf("%d %s", p.Status, p.Title)
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// Code is the last segment of the problem's type URI: the server's error
// kind ("precondition-failed"), or "" for an answer without a document.
func (p *Problem) Code() string {
	if p.Type == "" || p.Type == "about:blank" {
		return ""
	}
	return p.Type[strings.LastIndexByte(p.Type, '/')+1:]
}

// Print writes the problem as readable lines: the status and title, the
// detail, then one line per entry of errors, each as line makes it (by
// default "field: message"; the CLI adds the place in a file), and the
// request id that ties it to the server's log.
func (p *Problem) Print(w io.Writer, line func(FieldError) string) {
	fmt.Fprintf(w, "error: %d %s\n", p.Status, p.Title)
	if p.Detail != "" {
		fmt.Fprintf(w, "  %s\n", p.Detail)
	}
	if line == nil {
		line = FieldError.String
	}
	for _, e := range p.Errors {
		fmt.Fprintf(w, "  - %s\n", line(e))
	}
	if p.Allow != "" {
		fmt.Fprintf(w, "  allowed methods: %s\n", p.Allow)
	}
	if p.RequestID != "" {
		fmt.Fprintf(w, "  request id: %s\n", p.RequestID)
	}
}

// String is the entry as "field: message", or the message alone if it
// names no field.
func (e FieldError) String() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// decodeProblem makes the *Problem of an error answer. A body that is not
// a problem document is never shown as it is (it may be a page of HTML or
// some other JSON); only plain text lends its first line, shortened, as
// the detail.
func decodeProblem(status int, h http.Header, body []byte) *Problem {
	p := &Problem{}
	if isProblemJSON(h.Get("Content-Type")) && json.Unmarshal(body, p) == nil && p.Title != "" {
		if p.Status == 0 {
			p.Status = status
		}
	} else {
		p = &Problem{Status: status}
		if isPlainText(h.Get("Content-Type")) {
			p.Detail = firstLine(body)
		}
	}
	if p.Title == "" {
		p.Title = http.StatusText(status)
	}
	if p.RequestID == "" {
		p.RequestID = h.Get("X-Request-Id")
	}
	if status == http.StatusMethodNotAllowed {
		p.Allow = h.Get("Allow")
	}
	return p
}

// firstLine is the first non-empty line of a body that is text, at most
// 200 characters; "" for one that is not.
func firstLine(body []byte) string {
	if !utf8.Valid(body) {
		return ""
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.ContainsFunc(line, func(r rune) bool { return !unicode.IsPrint(r) }) {
			return ""
		}
		if r := []rune(line); len(r) > 200 {
			line = string(r[:200]) + "…"
		}
		return line
	}
	return ""
}
