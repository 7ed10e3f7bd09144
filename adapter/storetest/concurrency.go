package storetest

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

func testConcurrent(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	ctx := context.Background()

	t.Run("OKDistinctIdentifiers", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nhs := nhsNumbers()
		intakes := make([]*linkbridge.Intake, concurrency)
		for i := range intakes {
			intakes[i] = newIntake(strconv.Itoa(i), nhs())
		}
		errs := make([]error, concurrency)
		var wg sync.WaitGroup
		for i, in := range intakes {
			wg.Go(func() { errs[i] = s.CreateReferral(ctx, in) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("CreateReferral(%s) returned unexpected error: %v", intakes[i].Referral.ID, err)
			}
		}
		for _, in := range intakes {
			checkReferral(t, s, in.Referral)
			checkPerson(t, s, in.Person)
		}
		got, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Task", Count: 1})
		if err != nil {
			t.Fatalf("SearchResources returned unexpected error: %v", err)
		}
		if got.Total != concurrency {
			t.Fatalf("SearchResources(Task) Total = %d, want %d", got.Total, concurrency)
		}
	})

	t.Run("OneWinsSameIdentifier", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nhs := nhsNumbers()
		intakes := make([]*linkbridge.Intake, concurrency)
		for i := range intakes {
			intakes[i] = newIntake(strconv.Itoa(i), nhs())
			intakes[i].Referral.Identifier.Value = "REF-same"
		}
		errs := make([]error, concurrency)
		var wg sync.WaitGroup
		for i, in := range intakes {
			wg.Go(func() { errs[i] = s.CreateReferral(ctx, in) })
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			if err == nil {
				if winner >= 0 {
					t.Fatalf("CreateReferral succeeded for both %s and %s with the same identifier",
						intakes[winner].Referral.ID, intakes[i].Referral.ID)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("CreateReferral failed for every intake; first error: %v", errs[0])
		}
		for i, err := range errs {
			if i == winner {
				continue
			}
			checkError(t, err, linkbridge.EDUPLICATE, "ServiceRequest/"+intakes[winner].Referral.ID)
			checkIntakeAbsent(t, s, intakes[i])
		}
		checkReferral(t, s, intakes[winner].Referral)
	})

	t.Run("OneWinsSameVersion", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		in := newIntake("a", nhsNumbers()())
		mustCreate(t, s, in)
		changes := make([]*linkbridge.ReferralChange, concurrency)
		for i := range changes {
			at := t0.Add(time.Duration(i+1) * time.Minute)
			ref := nextVersion(in.Referral, at, func(r *linkbridge.Referral) { r.BusinessStatus = "step-" + strconv.Itoa(i) })
			changes[i] = &linkbridge.ReferralChange{Referral: ref, Resources: []*linkbridge.Resource{taskResource(ref, 2, at)}}
		}
		errs := make([]error, concurrency)
		var wg sync.WaitGroup
		for i, ch := range changes {
			wg.Go(func() { errs[i] = s.UpdateReferral(ctx, ch) })
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("UpdateReferral to version 2 succeeded twice (changes %d and %d)", winner, i)
			case err == nil:
				winner = i
			default:
				checkError(t, err, linkbridge.EPRECONDITION, "")
			}
		}
		if winner < 0 {
			t.Fatal("UpdateReferral to version 2 failed for every change")
		}
		checkReferral(t, s, changes[winner].Referral)
		checkResource(t, s, changes[winner].Resources[0])
	})
}
