package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

func testFind(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	ctx := context.Background()
	s := open(t)
	nhs := nhsNumbers()
	in := newIntake("a", nhs())
	mustCreate(t, s, in)

	for _, tc := range []struct {
		name string
		fn   func() error
	}{
		{"ErrReferralNotFound", func() error { _, err := s.FindReferral(ctx, "sr-missing"); return err }},
		{"ErrReferralByTaskIDNotFound", func() error { _, err := s.FindReferralByTaskID(ctx, "task-missing"); return err }},
		{"ErrReferralByIdentifierNotFound", func() error {
			_, err := s.FindReferralByIdentifier(ctx, in.Referral.ReferrerODS, linkbridge.Identifier{System: referralSystem, Value: "REF-missing"})
			return err
		}},
		{"ErrReferralByIdentifierOtherSystem", func() error {
			_, err := s.FindReferralByIdentifier(ctx, in.Referral.ReferrerODS, linkbridge.Identifier{System: "https://other.example/Id", Value: in.Referral.Identifier.Value})
			return err
		}},
		{"ErrReferralByIdentifierOtherOrganisation", func() error {
			_, err := s.FindReferralByIdentifier(ctx, "B82002", in.Referral.Identifier)
			return err
		}},
		{"ErrPersonNotFound", func() error { _, err := s.FindPerson(ctx, "p-missing"); return err }},
		{"ErrPersonByNHSNumberNotFound", func() error { _, err := s.FindPersonByNHSNumber(ctx, nhs()); return err }},
		{"ErrResourceNotFound", func() error { _, err := s.ReadResource(ctx, "Task", "task-missing"); return err }},
		{"ErrResourceOtherType", func() error { _, err := s.ReadResource(ctx, "Patient", in.Referral.TaskID); return err }},
		{"ErrResourceVersionNotFound", func() error { _, err := s.ReadResourceVersion(ctx, "Task", in.Referral.TaskID, 2); return err }},
		{"ErrHistoryNotFound", func() error { _, err := s.ResourceHistory(ctx, "Task", "task-missing"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, tc.fn(), linkbridge.ENOTFOUND, "")
		})
	}
}

func testResourceHistory(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	ctx := context.Background()
	s := open(t)
	in := newIntake("a", nhsNumbers()())
	mustCreate(t, s, in)

	want := []*linkbridge.Resource{in.Resources[2]}
	ref := in.Referral
	for v, status := range []linkbridge.TaskStatus{linkbridge.TaskAccepted, linkbridge.TaskInProgress, linkbridge.TaskCompleted} {
		at := t0.Add(time.Duration(v+1) * time.Hour)
		ref = nextVersion(ref, at, func(r *linkbridge.Referral) { r.Status = status })
		task := taskResource(ref, v+2, at)
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref, Resources: []*linkbridge.Resource{task}})
		want = append([]*linkbridge.Resource{task}, want...)
	}

	t.Run("NewestFirst", func(t *testing.T) {
		got, err := s.ResourceHistory(ctx, "Task", ref.TaskID)
		if err != nil {
			t.Fatalf("ResourceHistory returned unexpected error: %v", err)
		}
		if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
			t.Fatalf("ResourceHistory mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("VRead", func(t *testing.T) {
		for _, w := range want {
			checkResourceVersion(t, s, w)
		}
		checkResource(t, s, want[0])
	})

	t.Run("SingleVersion", func(t *testing.T) {
		got, err := s.ResourceHistory(ctx, "Patient", in.Person.ID)
		if err != nil {
			t.Fatalf("ResourceHistory returned unexpected error: %v", err)
		}
		if diff := cmp.Diff([]*linkbridge.Resource{in.Resources[0]}, got, cmpOpts...); diff != "" {
			t.Fatalf("ResourceHistory mismatch (-want +got):\n%s", diff)
		}
	})
}
