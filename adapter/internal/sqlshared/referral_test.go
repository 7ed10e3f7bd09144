package sqlshared_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// textColumns stores times as RFC 3339 text and booleans as 0/1, like a
// database without those types; nativeColumns sends them as they are and
// keeps microseconds.
var (
	textColumns = sqlshared.Columns{
		Time: func(t time.Time) any { return t.UTC().Format(time.RFC3339Nano) },
		Bool: func(b bool) any {
			if b {
				return 1
			}
			return 0
		},
	}
	nativeColumns = sqlshared.Columns{
		Time:      func(t time.Time) any { return t },
		Bool:      func(b bool) any { return b },
		Precision: time.Microsecond,
	}
)

func TestReferralArgs(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	r := &linkbridge.Referral{ID: "r1", TaskID: "t1", PersonID: "p1", Status: "ready", DoNotContact: true,
		Reasons:    []linkbridge.Coding{{System: "http://snomed.info/sct", Code: "1"}},
		AuthoredOn: at, ReceivedAt: at, UpdatedAt: at, CompletedAt: at, Version: 3}
	col := func(args []any, name string) any {
		for i, c := range sqlshared.ReferralColumnList {
			if c == name {
				return args[i]
			}
		}
		t.Fatalf("no column %s", name)
		return nil
	}
	tests := []struct {
		name string
		c    sqlshared.Columns
		want map[string]any
	}{
		{"Text", textColumns, map[string]any{"do_not_contact": 1, "received_at": "2025-03-01T09:30:00Z",
			"accepted_at": nil, "completed_at": "2025-03-01T09:30:00Z", "status": "ready", "version": 3}},
		{"Native", nativeColumns, map[string]any{"do_not_contact": true, "received_at": at,
			"accepted_at": nil, "completed_at": at, "status": "ready", "version": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args, err := sqlshared.ReferralArgs(r, tt.c)
			if err != nil {
				t.Fatalf("ReferralArgs returned unexpected error: %v", err)
			}
			if len(args) != len(sqlshared.ReferralColumnList) {
				t.Fatalf("ReferralArgs returned %d values for %d columns", len(args), len(sqlshared.ReferralColumnList))
			}
			for name, want := range tt.want {
				if got := col(args, name); got != want {
					t.Errorf("%s = %#v, want %#v", name, got, want)
				}
			}
			reasons, err := sqlshared.DecodeReasons([]byte(col(args, "reasons").(string)))
			if err != nil {
				t.Fatalf("DecodeReasons returned unexpected error: %v", err)
			}
			if diff := cmp.Diff(r.Reasons, reasons); diff != "" {
				t.Errorf("reasons round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
	args, err := sqlshared.ReferralArgs(&linkbridge.Referral{ID: "r2"}, textColumns)
	if err != nil || col(args, "reasons") != "[]" {
		t.Errorf("reasons of a referral without reasons = %v, %v; want []", col(args, "reasons"), err)
	}
	if got, err := sqlshared.DecodeReasons([]byte("[]")); err != nil || got != nil {
		t.Errorf("DecodeReasons([]) = %v, %v; want nil, nil", got, err)
	}
	if _, err := sqlshared.DecodeReasons([]byte("{")); err == nil {
		t.Error("DecodeReasons({) returned no error")
	}
}

func TestResourceRows(t *testing.T) {
	t.Parallel()
	rows, err := sqlshared.ResourceRows([]*linkbridge.Resource{
		{Type: "Task", ID: "t1", VersionID: 2, Params: []linkbridge.SearchParam{{Name: "status", Value: "ready"}}},
		{Type: "Patient", ID: "p1", VersionID: 1, Body: []byte(`{}`)},
	})
	if err != nil {
		t.Fatalf("ResourceRows returned unexpected error: %v", err)
	}
	if rows[0].Body == nil || len(rows[0].Body) != 0 {
		t.Errorf("a nil body is %#v, want empty, not nil (the column is NOT NULL)", rows[0].Body)
	}
	if rows[0].ParamsJSON != `[["status","ready"]]` || rows[1].ParamsJSON != `[]` {
		t.Errorf("ParamsJSON = %q, %q", rows[0].ParamsJSON, rows[1].ParamsJSON)
	}
	ref := &linkbridge.Referral{ReferrerODS: "A1", ServiceODS: "B2"}
	keys := linkbridge.ReferralAccessKeys(ref)
	want := [][3]string{{"Task", keys[0], "t1"}, {"Patient", keys[0], "p1"}, {"Patient", keys[0], "p9"},
		{"Task", keys[1], "t1"}, {"Patient", keys[1], "p1"}, {"Patient", keys[1], "p9"}}
	if diff := cmp.Diff(want, sqlshared.AccessRows(ref, rows, "p9")); diff != "" {
		t.Errorf("AccessRows mismatch (-want +got):\n%s", diff)
	}
	if got := sqlshared.AccessRows(ref, nil, ""); len(got) != 0 {
		t.Errorf("AccessRows of nothing = %v, want none", got)
	}
}
