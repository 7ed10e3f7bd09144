package sqlshared_test

import (
	"testing"

	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

func TestDriver(t *testing.T) {
	for _, tc := range []struct {
		counts []int
		want   int
	}{
		{nil, -1},
		{[]int{sqlshared.DriveLimit}, -1},
		{[]int{sqlshared.DriveLimit, sqlshared.DriveLimit}, -1},
		{[]int{sqlshared.DriveLimit - 1}, 0},
		{[]int{sqlshared.DriveLimit, 5, 2, 7}, 2},
		{[]int{0, 0}, 0},
	} {
		if got := sqlshared.Driver(tc.counts); got != tc.want {
			t.Errorf("sqlshared.Driver(%v) = %d, want %d", tc.counts, got, tc.want)
		}
	}
}
