package gatehouse_test

import (
	"io"
	"os"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// The admin API, the content policy and the data plane answer a failing
// body through these two: one decision for each cause.
func TestFailingBodyIs408WhenStalled400WhenBroken413WhenOverTheLimit(t *testing.T) {
	for _, tc := range []struct {
		desc string
		err  *gatehouse.Error
		want gatehouse.Code
	}{
		{"a read past its deadline", gatehouse.BodyUnreadable(os.ErrDeadlineExceeded), gatehouse.ETIMEOUT},
		{"a body cut short", gatehouse.BodyUnreadable(io.ErrUnexpectedEOF), gatehouse.EINVALID},
		{"over the limit", gatehouse.BodyTooLarge(10), gatehouse.ETOOLARGE},
	} {
		if tc.err.Code != tc.want || tc.err.Message == "" {
			t.Errorf("%s: got %s %q; want %s", tc.desc, tc.err.Code, tc.err.Message, tc.want)
		}
	}
	if got := gatehouse.BodyTooLarge(10).Message; got != "The body exceeds the limit of 10 bytes." {
		t.Errorf("413 detail %q; want the limit named", got)
	}
}
