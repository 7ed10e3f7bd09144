package sqlite

import (
	"testing"
	"time"
)

// checkParseTime fails unless parseTime reads s exactly as time.Parse
// reads it in timeLayout: the same instant in UTC, or an error for both.
func checkParseTime(t *testing.T, s string) {
	t.Helper()
	want, wantErr := time.Parse(timeLayout, s)
	got, err := parseTime(s)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("parseTime(%q) error %v, time.Parse's %v", s, err, wantErr)
	}
	if err == nil && (got != want || got.Location() != time.UTC) {
		t.Fatalf("parseTime(%q) = %v (%v), time.Parse's %v", s, got, got.Location(), want)
	}
}

// TestParseTime: the stored-time fast path agrees with time.Parse on
// stored times (formatTime's), on the edges of the calendar and on what
// time.Parse refuses.
func TestParseTime(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2025, 6, 1, 1, 2, 3, 4, time.FixedZone("BST", 3600)),
	} {
		s := formatTime(at)
		checkParseTime(t, s)
		if got, _ := parseTime(s); !got.Equal(at) {
			t.Errorf("parseTime(formatTime(%v)) = %v", at, got)
		}
		if _, ok := parseStoredTime(s); !ok {
			t.Errorf("%q did not take the fast path", s)
		}
	}
	for _, s := range []string{
		"", "2026-11-30T12:00:00Z", "2026-11-30T12:00:00.000000000+01:00",
		"2025-02-29T10:00:00.000000000Z", "2024-04-31T10:00:00.000000000Z", "2024-13-01T10:00:00.000000000Z",
		"2024-00-01T10:00:00.000000000Z", "2024-01-00T10:00:00.000000000Z", "2024-01-01T24:00:00.000000000Z",
		"2024-01-01T10:60:00.000000000Z", "2024-01-01T10:00:60.000000000Z", "2024-01-01T10:00:00.00000000xZ",
		"+024-01-01T10:00:00.000000000Z", "2024-01-01 10:00:00.000000000Z",
	} {
		checkParseTime(t, s)
	}
}

// FuzzParseTime: on any text, parseTime agrees with time.Parse.
func FuzzParseTime(f *testing.F) {
	f.Add("2026-11-30T12:00:00.000000000Z")
	f.Add("2024-02-29T23:59:59.999999999Z")
	f.Add("2025-02-29T10:00:00.000000000Z")
	f.Fuzz(func(t *testing.T, s string) { checkParseTime(t, s) })
}
