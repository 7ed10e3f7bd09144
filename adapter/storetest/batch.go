package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

// batchOps are two referrals' intakes and changes, in an order a batch may
// hold them: a's intake, b's intake, a's change (a contact, a plan, the
// Task's next version, an event, an audit record), b's change (declined),
// a's next change (closed, with the Task's next version), which a store
// may write a's row for once (sqlshared.BatchRowWrites); then a's change
// that amends the contact the batch added (it reads what the batch wrote:
// PostgreSQL writes the ops before it and then it on its own), and b's
// change that replaces a Task the batch wrote before that (PostgreSQL
// reads it back) and adds a contact.
func batchOps(nhs func() string) []linkbridge.BatchOp {
	a, b := newIntake("batch-a", nhs()), newIntake("batch-b", nhs())
	at := t0.Add(time.Hour)
	ra := nextVersion(a.Referral, at, func(r *linkbridge.Referral) {
		r.Status, r.AcceptedAt, r.LinkWorker = linkbridge.TaskInProgress, at, linkbridge.LinkWorker{ID: "lw-1", Name: "Sam"}
	})
	rb := nextVersion(b.Referral, at, func(r *linkbridge.Referral) { r.Status = linkbridge.TaskRejected })
	later := at.Add(time.Hour)
	ra3 := nextVersion(ra, later, func(r *linkbridge.Referral) { r.Status, r.BusinessStatus = linkbridge.TaskCompleted, "closed" })
	last := later.Add(time.Hour)
	ra4, rb3 := nextVersion(ra3, last, nil), nextVersion(rb, last, nil)
	amended := contact("c-batch-1", ra.ID, at, true)
	amended.Minutes, amended.Notes, amended.AmendedAt = 45, "amended", last
	return []linkbridge.BatchOp{
		{Intake: a},
		{Intake: b},
		{Change: &linkbridge.ReferralChange{Referral: ra, Resources: []*linkbridge.Resource{taskResource(ra, 2, at)},
			Contacts: []*linkbridge.Contact{contact("c-batch-1", ra.ID, at, true)}, Plan: plan("walking", 2),
			Event: event(ra, "contact", "lw-1"),
			Audit: &linkbridge.AuditRecord{Recorded: at, ClientID: "sp", Role: linkbridge.RoleService, ODS: ra.ServiceODS, Action: "U",
				Operation: "sp-change", Method: "POST", Route: "/sp/v1/referrals/{id}/contacts", Entities: []string{"Task/" + ra.TaskID}, Status: 200}}},
		{Change: &linkbridge.ReferralChange{Referral: rb, Resources: []*linkbridge.Resource{taskResource(rb, 2, at)}, Event: event(rb, "decline", "performer")}},
		{Change: &linkbridge.ReferralChange{Referral: ra3, Resources: []*linkbridge.Resource{taskResource(ra3, 3, later)}, Event: event(ra3, "close", "lw-1")}},
		{Change: &linkbridge.ReferralChange{Referral: ra4, ContactUpdates: []*linkbridge.Contact{amended}, Event: event(ra4, "contact-amended", "lw-1")}},
		{Change: &linkbridge.ReferralChange{Referral: rb3, Resources: []*linkbridge.Resource{taskResource(rb3, 3, last)},
			Contacts: []*linkbridge.Contact{contact("c-batch-2", rb.ID, last, false)}, Event: event(rb3, "contact", "performer")}},
	}
}

// openBatchStore opens a new store and returns it as a BatchStore too;
// the test is skipped for a store that is not one.
func openBatchStore(t *testing.T, open func(t *testing.T) CaseStore) (CaseStore, linkbridge.BatchStore) {
	t.Helper()
	s := open(t)
	bs, ok := s.(linkbridge.BatchStore)
	if !ok {
		t.Skip("not a linkbridge.BatchStore")
	}
	return s, bs
}

// testWriteBatch: a batch stores what the same intakes and changes made
// one by one store (the case records and resources read back the same),
// and a batch with a failing op stores nothing of it.
func testWriteBatch(t *testing.T, open func(t *testing.T) CaseStore) {
	ctx := context.Background()
	t.Run("SameAsOneByOne", func(t *testing.T) {
		one := open(t)
		batched, bs := openBatchStore(t, open)
		for _, op := range batchOps(nhsNumbers()) {
			if op.Intake != nil {
				mustCreate(t, one, op.Intake)
			} else {
				mustUpdate(t, one, op.Change)
			}
		}
		ops := batchOps(nhsNumbers())
		if err := bs.WriteBatch(ctx, ops); err != nil {
			t.Fatalf("WriteBatch: %v", err)
		}
		// A store that can write a batch again op by op when its own way
		// fails (PostgreSQL's fold; its tests count those) must not have
		// needed to.
		if f, ok := bs.(interface{ BatchFallbacks() int64 }); ok && f.BatchFallbacks() != 0 {
			t.Errorf("the batch was written again op by op %d times; want its own way to succeed", f.BatchFallbacks())
		}
		for _, id := range []string{"sr-batch-a", "sr-batch-b"} {
			want, got := mustCaseRecord(t, one, id), mustCaseRecord(t, batched, id)
			if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
				t.Errorf("case record %s from a batch (-one by one +batch):\n%s", id, diff)
			}
			if want := map[string]int{"sr-batch-a": 4, "sr-batch-b": 3}[id]; got.Referral.Version != want || len(got.Events) != want {
				t.Errorf("case record %s: version %d, %d events; want the changes applied (%d, %d)", id, got.Referral.Version, len(got.Events), want, want)
			}
		}
		for _, ref := range [][2]string{{"Task", "task-batch-a"}, {"Task", "task-batch-b"}, {"Patient", "p-batch-a"}, {"ServiceRequest", "sr-batch-b"}} {
			want, err := one.ReadResource(ctx, ref[0], ref[1])
			if err != nil {
				t.Fatal(err)
			}
			got, err := batched.ReadResource(ctx, ref[0], ref[1])
			if err != nil {
				t.Fatalf("ReadResource(%s/%s) after the batch: %v", ref[0], ref[1], err)
			}
			if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
				t.Errorf("%s/%s from a batch (-one by one +batch):\n%s", ref[0], ref[1], diff)
			}
		}
		// Each organisation sees the same resources (the access rows a
		// later change of the batch grants again are written once).
		var keys []string
		for _, op := range ops {
			if op.Intake != nil {
				keys = append(keys, linkbridge.ReferralAccessKeys(op.Intake.Referral)...)
			}
		}
		for _, key := range keys {
			for _, typ := range []string{"Task", "ServiceRequest", "Patient"} {
				q := &linkbridge.ResourceQuery{Type: typ, Count: 50, Access: &linkbridge.Access{Keys: []string{key}}}
				want, err := one.SearchResources(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				got, err := batched.SearchResources(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if w, g := ids(want), ids(got); len(w) == 0 || !slices.Equal(w, g) {
					t.Errorf("%s seen with key %s: one by one %q, from a batch %q; want the same, not none", typ, key, w, g)
				}
			}
		}
	})
	t.Run("AllOrNothing", func(t *testing.T) {
		s, bs := openBatchStore(t, open)
		ops := batchOps(nhsNumbers())
		stale := *ops[3].Change
		stale.Referral = nextVersion(stale.Referral, t0.Add(2*time.Hour), nil) // version 3 of a referral at 1
		stale.Event = nil
		ops[3].Change = &stale
		err := bs.WriteBatch(ctx, ops)
		checkError(t, err, linkbridge.EPRECONDITION, "")
		for _, in := range []*linkbridge.Intake{ops[0].Intake, ops[1].Intake} {
			checkIntakeAbsent(t, s, in)
		}
		checkError(t, bs.WriteBatch(ctx, []linkbridge.BatchOp{{}}), linkbridge.EINVALID, "")
	})
	// Two consecutive changes of a referral that is a version behind
	// them: the batch fails as the first change would alone, naming its
	// version, and stores nothing.
	t.Run("StaleRun", func(t *testing.T) {
		s, bs := openBatchStore(t, open)
		ops := batchOps(nhsNumbers())
		mustCreate(t, s, ops[0].Intake)
		v3, v4 := *ops[4].Change, *ops[4].Change
		v4.Referral = nextVersion(v3.Referral, t0.Add(3*time.Hour), nil)
		v3.Resources, v4.Resources, v3.Event, v4.Event = nil, nil, nil, nil
		err := bs.WriteBatch(ctx, []linkbridge.BatchOp{{Change: &v3}, {Change: &v4}})
		checkError(t, err, linkbridge.EPRECONDITION, "")
		if !strings.Contains(err.Error(), "not 3") {
			t.Errorf("error %q does not name the first change's version 3", err)
		}
		if got := mustCaseRecord(t, s, ops[0].Intake.Referral.ID); got.Referral.Version != 1 {
			t.Errorf("after a failed batch, the referral is at version %d, want 1", got.Referral.Version)
		}
	})
}
