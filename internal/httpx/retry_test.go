package httpx

import (
	"testing"
	"time"
)

func TestRetrySecondsRoundsUpToAtLeastOne(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		ceil int64
		want int64
	}{
		{-time.Second, 0, 1},
		{0, 0, 1},
		{time.Nanosecond, 1, 1},
		{time.Second, 1, 1},
		{time.Second + time.Nanosecond, 2, 2},
		{1500 * time.Millisecond, 2, 2},
		{time.Hour, 3600, 3600},
	} {
		if got := CeilSeconds(tc.d); got != tc.ceil {
			t.Errorf("CeilSeconds(%v) = %d; want %d", tc.d, got, tc.ceil)
		}
		if got := RetrySeconds(tc.d); got != tc.want {
			t.Errorf("RetrySeconds(%v) = %d; want %d", tc.d, got, tc.want)
		}
	}
}
