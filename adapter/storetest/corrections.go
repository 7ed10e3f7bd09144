package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

// testCorrections checks that ContactUpdates and MeasureUpdates replace
// stored entries by id (docs/domain.md#corrections): amended and withdrawn
// entries read back as written, with their first CreatedAt; CountContacts
// and ReportReferrals leave withdrawn entries out; an update of an entry
// the referral does not hold is ENOTFOUND and stores nothing.
func testCorrections(t *testing.T, open func(t *testing.T) CaseStore) {
	ctx := context.Background()
	s := open(t)
	nhs := nhsNumbers()
	in := createOne(t, s, nhs, "a")
	other := createOne(t, s, nhs, "b")
	id := in.Referral.ID
	t1, t2, t3 := t0.Add(24*time.Hour), t0.Add(48*time.Hour), t0.Add(72*time.Hour)

	c1 := contact("c1", id, t0.Add(time.Hour), true)
	c2 := contact("c2", id, t0.Add(2*time.Hour), true)
	base := measure(t, "m-base", id, linkbridge.TimepointBaseline, t0.Add(time.Hour), 2, 2, 3, 2, 3, 2, 2)
	review := measure(t, "m-review", id, linkbridge.TimepointReview, t0.Add(3*time.Hour), 4, 4, 4, 3, 4, 4, 4)
	ref2 := nextVersion(in.Referral, t1, func(r *linkbridge.Referral) { r.Status = linkbridge.TaskInProgress })
	mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref2,
		Contacts: []*linkbridge.Contact{c1, c2}, Measures: []*linkbridge.Measure{base, review}})
	otherContact := contact("c-other", other.Referral.ID, t0.Add(time.Hour), true)
	mustUpdate(t, s, &linkbridge.ReferralChange{Referral: nextVersion(other.Referral, t1, nil), Contacts: []*linkbridge.Contact{otherContact}})

	// c1 amended (now a missed phone call, later), c2 withdrawn; the
	// baseline withdrawn, the review amended.
	a1 := *c1
	a1.At, a1.Attended, a1.Minutes, a1.Notes, a1.AmendedAt = t0.Add(4*time.Hour), false, 0, "", t2
	w2 := *c2
	w2.WithdrawnAt, w2.WithdrawnReason = t2, "Recorded on the wrong person's record."
	wBase := *base
	wBase.WithdrawnAt, wBase.WithdrawnReason = t2, "Entered twice."
	aReview := *review
	aReview.Items, aReview.Timepoint, aReview.AmendedAt = []int{5, 5, 5, 4, 5, 5, 5}, linkbridge.TimepointFinal, t2
	if err := aReview.Score(); err != nil {
		t.Fatalf("Score: %v", err)
	}
	ref3 := nextVersion(ref2, t2, nil)
	mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref3,
		ContactUpdates: []*linkbridge.Contact{&a1, &w2}, MeasureUpdates: []*linkbridge.Measure{&wBase, &aReview},
		Event: event(ref3, "contact-amended", "lw-1")})

	rec := mustCaseRecord(t, s, id)
	if diff := cmp.Diff([]*linkbridge.Contact{&w2, &a1}, rec.Contacts, cmpOpts...); diff != "" {
		t.Fatalf("Contacts after the corrections mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*linkbridge.Measure{&wBase, &aReview}, rec.Measures, cmpOpts...); diff != "" {
		t.Fatalf("Measures after the corrections mismatch (-want +got):\n%s", diff)
	}
	if rec.Contacts[0].CreatedAt != c2.CreatedAt {
		t.Fatalf("withdrawn contact's CreatedAt = %v, want it as first stored (%v)", rec.Contacts[0].CreatedAt, c2.CreatedAt)
	}

	// Neither an attended count nor a report reads a withdrawn entry (c1
	// is missed now, c2 withdrawn: no attended contact is left).
	counts, err := s.CountContacts(ctx, []string{id})
	if err != nil {
		t.Fatalf("CountContacts returned unexpected error: %v", err)
	}
	if counts[id] != 0 {
		t.Fatalf("CountContacts[%s] = %d, want 0 (one missed, one withdrawn)", id, counts[id])
	}
	var got *linkbridge.ReportReferral
	err = s.ReportReferrals(ctx, linkbridge.ReportQuery{}, func(page []*linkbridge.ReportReferral) error {
		if i := slices.IndexFunc(page, func(r *linkbridge.ReportReferral) bool { return r.Referral.ID == id }); i >= 0 {
			got = page[i]
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ReportReferrals returned unexpected error: %v", err)
	}
	if got == nil {
		t.Fatalf("ReportReferrals did not stream %s", id)
	}
	if len(got.Contacts) != 1 || got.Contacts[0].ID != "c1" || len(got.Measures) != 1 || got.Measures[0].ID != "m-review" {
		t.Fatalf("ReportReferrals streamed contacts %v and measures %v, want only c1 and m-review", got.Contacts, got.Measures)
	}

	// An entry the referral does not hold (another referral's, or none) is
	// ENOTFOUND, and the change stores nothing.
	for name, ch := range map[string]*linkbridge.ReferralChange{
		"OtherReferralsContact": {ContactUpdates: []*linkbridge.Contact{{ID: otherContact.ID, At: t3, Mode: linkbridge.ContactPhone}}},
		"MissingMeasure":        {MeasureUpdates: []*linkbridge.Measure{{ID: "m-missing", Instrument: linkbridge.SWEMWBS, TakenAt: t3}}},
	} {
		ch.Referral = nextVersion(ref3, t3, nil)
		ch.Plan = plan("not stored", 1)
		err := s.UpdateReferral(ctx, ch)
		if linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
			t.Fatalf("%s: UpdateReferral error = %v, want ENOTFOUND", name, err)
		}
		if rec := mustCaseRecord(t, s, id); rec.Referral.Version != ref3.Version || len(rec.Plan.Goals) != 0 {
			t.Fatalf("%s: a failed correction stored version %d and %d goals, want version %d and none", name, rec.Referral.Version, len(rec.Plan.Goals), ref3.Version)
		}
	}
	if rec := mustCaseRecord(t, s, other.Referral.ID); rec.Contacts[0].At != otherContact.At {
		t.Fatalf("another referral's contact changed: %v", rec.Contacts[0])
	}
}
