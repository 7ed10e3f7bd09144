package sqlshared_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

func TestAuditRow(t *testing.T) {
	t.Parallel()
	if _, err := sqlshared.NewAuditRow(&linkbridge.AuditRecord{}, textColumns); linkbridge.ErrorCode(err) != linkbridge.EINVALID {
		t.Errorf("NewAuditRow without a time = %v, want EINVALID", err)
	}
	rec := &linkbridge.AuditRecord{Recorded: time.Now(), Role: "link-worker",
		Entities: []string{"Task/t1", "Patient/p1", "Task/t1"}}
	row, err := sqlshared.NewAuditRow(rec, textColumns)
	if err != nil {
		t.Fatalf("NewAuditRow returned unexpected error: %v", err)
	}
	if len(rec.ID) != 32 {
		t.Errorf("assigned ID = %q, want 32 hex digits", rec.ID)
	}
	entities := `["Task/t1","Patient/p1","Task/t1"]`
	want := &sqlshared.AuditRow{ID: rec.ID, Entities: entities, Query: `[]`, Index: []string{"Task/t1", "Patient/p1"},
		Args: []any{rec.ID, textColumns.Time(rec.Recorded), "", "link-worker", "", "", "", "", "", entities, `[]`, 0, 0, "", ""}}
	if diff := cmp.Diff(want, row); diff != "" {
		t.Errorf("NewAuditRow mismatch (-want +got):\n%s", diff)
	}
	if len(row.Args) != len(sqlshared.AuditColumnList) {
		t.Errorf("NewAuditRow: %d values for %d columns", len(row.Args), len(sqlshared.AuditColumnList))
	}
	if row, err := sqlshared.WriteAuditRow(nil, textColumns); row != nil || err != nil {
		t.Errorf("WriteAuditRow(nil) = %+v, %v; want nil, nil", row, err)
	}
	if _, err := sqlshared.WriteAuditRow(&linkbridge.AuditRecord{}, textColumns); linkbridge.ErrorCode(err) != linkbridge.EINVALID {
		t.Errorf("WriteAuditRow without a time = %v, want EINVALID", err)
	}
	given := &linkbridge.AuditRecord{ID: "a1", Recorded: time.Now()}
	if row, err := sqlshared.NewAuditRow(given, textColumns); err != nil || given.ID != "a1" || row.Entities != "[]" || row.Index != nil {
		t.Errorf("NewAuditRow with an ID = %+v, %v (ID %q)", row, err, given.ID)
	}

	var back linkbridge.AuditRecord
	if err := sqlshared.DecodeAudit(&back, "link-worker", row.Entities, `["_count=1"]`); err != nil {
		t.Fatalf("DecodeAudit returned unexpected error: %v", err)
	}
	if back.Role != "link-worker" || !cmp.Equal(back.Entities, rec.Entities) || !cmp.Equal(back.Query, []string{"_count=1"}) {
		t.Errorf("DecodeAudit = %+v", back)
	}
	for _, bad := range [][2]string{{"{", "[]"}, {"[]", "{"}} {
		if err := sqlshared.DecodeAudit(&back, "", bad[0], bad[1]); err == nil {
			t.Errorf("DecodeAudit(%q, %q) returned no error", bad[0], bad[1])
		}
	}
}

func TestDateOp(t *testing.T) {
	t.Parallel()
	for prefix, want := range map[string]string{"": "=", "eq": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="} {
		if got, err := sqlshared.DateOp(prefix); err != nil || got != want {
			t.Errorf("DateOp(%q) = %q, %v; want %q", prefix, got, err, want)
		}
	}
	for _, prefix := range []string{"ne", "sa", "eb", "ap", "GT"} {
		if _, err := sqlshared.DateOp(prefix); linkbridge.ErrorCode(err) != linkbridge.EINVALID {
			t.Errorf("DateOp(%q) = %v, want EINVALID", prefix, err)
		}
	}
	for _, tt := range []struct {
		q  *linkbridge.ResourceQuery
		ok bool
	}{
		{nil, false},
		{&linkbridge.ResourceQuery{Count: 1}, false},
		{&linkbridge.ResourceQuery{Type: "Task"}, false},
		{&linkbridge.ResourceQuery{Type: "Task", Count: 1, Offset: -1}, false},
		{&linkbridge.ResourceQuery{Type: "Task", Count: 1}, true},
	} {
		if err := sqlshared.CheckResourceQuery(tt.q); tt.ok != (err == nil) {
			t.Errorf("CheckResourceQuery(%+v) = %v", tt.q, err)
		}
	}
}
