package sqlshared_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// TestBatchRowWrites: the changes of a referral to consecutive versions
// write its row once, the last, expecting the version before the first;
// a gap in the versions, an intake, a change to entered-in-error or
// another referral's changes do not join runs.
func TestBatchRowWrites(t *testing.T) {
	t.Parallel()
	ch := func(id string, v int, status linkbridge.TaskStatus) linkbridge.BatchOp {
		return linkbridge.BatchOp{Change: &linkbridge.ReferralChange{Referral: &linkbridge.Referral{ID: id, Version: v, Status: status}}}
	}
	in := func(id string) linkbridge.BatchOp {
		return linkbridge.BatchOp{Intake: &linkbridge.Intake{Referral: &linkbridge.Referral{ID: id, Version: 1}}}
	}
	type rw = sqlshared.RowWrite
	tests := []struct {
		name string
		ops  []linkbridge.BatchOp
		want []rw
	}{
		{"Alone", []linkbridge.BatchOp{ch("a", 4, "")}, []rw{{Expect: 3}}},
		{"IntakeThenChanges", []linkbridge.BatchOp{in("a"), ch("a", 2, ""), ch("a", 3, ""), ch("a", 4, "")},
			[]rw{{}, {Skip: true, Expect: 1}, {Skip: true, Expect: 1}, {Expect: 1}}},
		{"Interleaved", []linkbridge.BatchOp{ch("a", 2, ""), ch("b", 5, ""), ch("a", 3, ""), ch("b", 6, "")},
			[]rw{{Skip: true, Expect: 1}, {Skip: true, Expect: 4}, {Expect: 1}, {Expect: 4}}},
		// A gap: the second change fails on its own, as it would alone.
		{"Gap", []linkbridge.BatchOp{ch("a", 2, ""), ch("a", 4, "")}, []rw{{Expect: 1}, {Expect: 3}}},
		{"EnteredInError", []linkbridge.BatchOp{ch("a", 2, linkbridge.TaskEnteredInError), ch("a", 3, "")},
			[]rw{{Expect: 1}, {Expect: 2}}},
		{"AfterEnteredInError", []linkbridge.BatchOp{ch("a", 2, ""), ch("a", 3, linkbridge.TaskEnteredInError)},
			[]rw{{Skip: true, Expect: 1}, {Expect: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, sqlshared.BatchRowWrites(tt.ops)); diff != "" {
				t.Errorf("BatchRowWrites mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
