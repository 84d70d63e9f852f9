// Package client is a small typed client of gatehouse's admin API, for the
// command-line tool: requests with JSON or YAML bodies, ETags and
// If-Match, and every error answer decoded into a *Problem that prints as
// readable lines.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Prefix is the path of the admin API's resources.
const Prefix = "/admin/v1"

// Media types the client sends and asks for.
const (
	JSON = "application/json"
	YAML = "application/yaml"
)

// maxBody bounds what the client reads of a response: a dump of a large
// configuration, not an endless stream.
const maxBody = 256 << 20

// Client talks to one admin API.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	// UserAgent is sent with every request; "" sends Go's default.
	UserAgent string
}

// New returns a client of the admin API at baseURL (scheme, host and port,
// e.g. http://127.0.0.1:9080; a path is kept as a prefix). token is sent
// as a bearer token unless empty. timeout bounds each request, its body
// read included; zero means none.
func New(baseURL, token string, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("admin URL %q: %v", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("admin URL %q: want http:// or https:// and a host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("admin URL %q: want no query, fragment or user", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	hc := &http.Client{
		Timeout: timeout,
		// A redirect is never followed: Go keeps Authorization when only
		// the port or scheme changes, which would send the admin token
		// wherever the answer points. Do turns it into an error.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Client{base: u, token: token, http: hc}, nil
}

// Request is one call of the admin API.
type Request struct {
	Method string
	// Path is below the base URL, e.g. Prefix+"/config".
	Path  string
	Query url.Values
	// Body is sent as is with ContentType; nil sends no body.
	Body        []byte
	ContentType string
	// Accept is the media type asked for; "" asks for JSON.
	Accept string
	// IfMatch is an ETag the resource must have ("" sends none); a tag
	// without quotes is quoted.
	IfMatch string
}

// Response is a successful answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// ETag is the response's entity tag, quotes included, as If-Match takes it.
func (r *Response) ETag() string { return r.Header.Get("ETag") }

// Do sends req and reads the answer. A 2xx or 304 answer is returned; a
// 4xx or 5xx is a *Problem, from the problem document the server sent or,
// for an answer without one (a proxy in front, say), from its status. A
// redirect is not followed but is an error saying where it pointed. A
// failure to reach the server is an error naming the URL.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	u := *c.base
	u.Path += req.Path
	u.RawQuery = req.Query.Encode()
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if req.Body != nil {
		hr.Header.Set("Content-Type", req.ContentType)
	}
	accept := req.Accept
	if accept == "" {
		accept = JSON
	}
	// Problems come as application/problem+json whatever was asked for.
	hr.Header.Set("Accept", accept+", application/problem+json")
	if req.IfMatch != "" {
		hr.Header.Set("If-Match", quoteETag(req.IfMatch))
	}
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.UserAgent != "" {
		hr.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, u.Redacted(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err == nil && len(b) > maxBody {
		err = fmt.Errorf("answer larger than %d bytes", maxBody)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", req.Method, u.Redacted(), unwrapURLError(err))
	}
	if resp.StatusCode >= 400 {
		return nil, decodeProblem(resp.StatusCode, resp.Header, b)
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
		return nil, redirectError(req.Method, u.Redacted(), resp)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// DoJSON sends in (if not nil) as JSON and decodes a JSON answer into out
// (if not nil).
func (c *Client) DoJSON(ctx context.Context, req Request, in, out any) (*Response, error) {
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		req.Body, req.ContentType = b, JSON
	}
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return nil, fmt.Errorf("%s %s: the answer is not the JSON expected: %v", req.Method, req.Path, err)
		}
	}
	return resp, nil
}

// redirectError says where a redirect pointed, and that it was not
// followed: the admin URL is to name the admin API itself.
func redirectError(method, at string, resp *http.Response) error {
	where := "nowhere (no Location)"
	if loc, err := resp.Location(); err == nil {
		where = loc.Redacted()
	}
	return fmt.Errorf("%s %s: the server answered %s, redirecting to %s; gatehouse follows no redirect and did not send the admin token there: give --admin-url the address of the admin API itself",
		method, at, resp.Status, where)
}

// quoteETag quotes a bare entity tag; a quoted or weak one, or "*", is
// sent as it is.
func quoteETag(tag string) string {
	if tag == "*" || strings.HasPrefix(tag, `"`) || strings.HasPrefix(tag, `W/"`) {
		return tag
	}
	return `"` + tag + `"`
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the
// method and URL the caller already names.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("timed out: %w", ue.Err)
		}
		return ue.Err
	}
	return err
}

// isProblemJSON reports whether a Content-Type is a problem document or
// plain JSON (which some problem writers use).
func isProblemJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/problem+json" || mt == JSON)
}

// isPlainText reports whether a Content-Type is text/plain.
func isPlainText(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "text/plain"
}
