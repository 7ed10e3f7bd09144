package sqlshared_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

func TestNewCaseRows(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	ch := &linkbridge.ReferralChange{
		Referral: &linkbridge.Referral{ID: "r1", Version: 3, UpdatedAt: at, Status: "in-progress"},
		Plan:     &linkbridge.Plan{WhatMatters: "walking"},
		Contacts: []*linkbridge.Contact{{ID: "c1", At: at, Mode: "phone", Minutes: 20, Attended: true, CreatedAt: at}},
		Measures: []*linkbridge.Measure{{ID: "m1", ReferralID: "r1", Items: []int{7, 8}, TakenAt: at, CreatedAt: at},
			{ID: "m2", TakenAt: at, CreatedAt: at}},
		Event: &linkbridge.ReferralEvent{Action: "contact", Actor: "lw1"},
	}
	rows, err := sqlshared.NewCaseRows(ch, textColumns)
	if err != nil {
		t.Fatalf("NewCaseRows returned unexpected error: %v", err)
	}
	ts := "2025-03-01T09:30:00Z"
	want := &sqlshared.CaseRows{
		ReferralID: "r1",
		Contacts:   [][]any{{"c1", "r1", ts, "phone", 20, 1, "", ts, nil, nil, ""}},
		Measures: [][]any{{"m1", "r1", "", "", "[7,8]", 0, 0.0, ts, ts, nil, nil, ""},
			{"m2", "r1", "", "", "[]", 0, 0.0, ts, ts, nil, nil, ""}},
		Event: []any{"r1", 3, ts, "contact", "lw1", "in-progress", nil},
	}
	if rows.Plan == nil {
		t.Fatal("Plan is nil, want the plan's JSON")
	}
	plan, err := sqlshared.DecodePlan([]byte(*rows.Plan))
	if err != nil || plan.WhatMatters != "walking" {
		t.Errorf("DecodePlan(Plan) = %+v, %v; want the plan back", plan, err)
	}
	rows.Plan = nil
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("NewCaseRows mismatch (-want +got):\n%s", diff)
	}
	for _, m := range rows.Measures {
		items, err := sqlshared.DecodeItems(m[4].(string))
		if err != nil {
			t.Fatalf("DecodeItems(%s) returned unexpected error: %v", m[4], err)
		}
		if m[0] == "m1" && !cmp.Equal(items, []int{7, 8}) || m[0] == "m2" && items != nil {
			t.Errorf("DecodeItems(%s) = %v", m[4], items)
		}
	}

	// Without a plan or an event, neither is written.
	rows, err = sqlshared.NewCaseRows(&linkbridge.ReferralChange{Referral: ch.Referral}, nativeColumns)
	if err != nil || rows.Plan != nil || rows.Event != nil || rows.Contacts != nil {
		t.Errorf("NewCaseRows of an empty change = %+v, %v; want no writes", rows, err)
	}
	if _, err := sqlshared.DecodeItems("{"); err == nil {
		t.Error("DecodeItems({) returned no error")
	}
	if _, err := sqlshared.DecodePlan([]byte("[")); err == nil {
		t.Error("DecodePlan([) returned no error")
	}
}

func TestZeroCounts(t *testing.T) {
	t.Parallel()
	if diff := cmp.Diff(map[string]int{"a": 0, "b": 0}, sqlshared.ZeroCounts([]string{"a", "b", "a"})); diff != "" {
		t.Errorf("ZeroCounts mismatch (-want +got):\n%s", diff)
	}
}

func TestNewChangeRows(t *testing.T) {
	t.Parallel()
	if _, err := sqlshared.NewChangeRows(&linkbridge.ReferralChange{}, time.Now(), textColumns); linkbridge.ErrorCode(err) != linkbridge.EINVALID {
		t.Fatalf("NewChangeRows of a change without a referral = %v, want EINVALID", err)
	}
	ch := &linkbridge.ReferralChange{
		Referral:  &linkbridge.Referral{ID: "r1", Version: 2},
		Resources: []*linkbridge.Resource{{Type: "Task", ID: "t1", VersionID: 2}},
		Event:     &linkbridge.ReferralEvent{Action: "accept"},
	}
	rows, err := sqlshared.NewChangeRows(ch, time.Now(), textColumns)
	if err != nil {
		t.Fatalf("NewChangeRows returned unexpected error: %v", err)
	}
	if rows.Referral == ch.Referral || rows.Referral.ID != "r1" {
		t.Errorf("Referral = %p %+v, want a copy of the change's", rows.Referral, rows.Referral)
	}
	if len(rows.ReferralArgs) != len(sqlshared.ReferralColumnList) || len(rows.Resources) != 1 ||
		rows.Case.Event == nil || rows.Outbox != nil || rows.Audit != nil {
		t.Errorf("NewChangeRows = %+v", rows)
	}
	ch.Audit = &linkbridge.AuditRecord{Recorded: time.Now(), Entities: []string{"Task/t1"}}
	if rows, err := sqlshared.NewChangeRows(ch, time.Now(), textColumns); err != nil || rows.Audit == nil || rows.Audit.ID != ch.Audit.ID {
		t.Errorf("NewChangeRows with an audit record = %+v, %v; want its row", rows, err)
	}
	ch.Audit = &linkbridge.AuditRecord{}
	if _, err := sqlshared.NewChangeRows(ch, time.Now(), textColumns); linkbridge.ErrorCode(err) != linkbridge.EINVALID {
		t.Errorf("NewChangeRows with an audit record without a time = %v, want EINVALID", err)
	}
}
