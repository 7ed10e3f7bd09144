package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

func testCreateReferral(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nhs := nhsNumbers()
		in := newIntake("a", nhs())
		mustCreate(t, s, in)

		checkReferral(t, s, in.Referral)
		checkPerson(t, s, in.Person)
		for _, r := range in.Resources {
			checkResource(t, s, r)
		}
	})

	t.Run("OKNoReasons", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nhs := nhsNumbers()
		in := newIntake("a", nhs())
		in.Referral.Reasons = nil
		in.Referral.DoNotContact = true
		in.Referral.BusinessStatus = "triage"
		mustCreate(t, s, in)
		checkReferral(t, s, in.Referral)
	})

	t.Run("OKExistingPerson", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nhs := nhsNumbers()
		first := newIntake("a", nhs())
		mustCreate(t, s, first)

		second := newIntake("b", first.Person.NHSNumber)
		second.Person = first.Person
		second.NewPerson = false
		second.Referral.PersonID, second.Referral.PatientID = first.Person.ID, first.Person.ID
		second.Resources = second.Resources[1:] // no Patient
		second.Referral.ServiceODS = "RAT02"    // one open referral per person and service
		mustCreate(t, s, second)

		checkReferral(t, s, first.Referral)
		checkReferral(t, s, second.Referral)
		checkPerson(t, s, first.Person)
	})

	t.Run("OKWithoutMessageID", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nhs := nhsNumbers()
		// RESTful creates carry no message id; two of them are not replays.
		for _, name := range []string{"a", "b"} {
			in := newIntake(name, nhs())
			in.MessageID = ""
			mustCreate(t, s, in)
			checkReferral(t, s, in.Referral)
		}
	})

	t.Run("ErrDuplicateIdentifier", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nhs := nhsNumbers()
		first := newIntake("a", nhs())
		mustCreate(t, s, first)

		// The same referral sent again: new ids, new message, same identifier.
		again := newIntake("b", nhs())
		again.Referral.Identifier = first.Referral.Identifier
		err := s.CreateReferral(ctx, again)
		checkError(t, err, linkbridge.EDUPLICATE, "ServiceRequest/"+first.Referral.ID)
		checkIntakeAbsent(t, s, again)
		checkReferral(t, s, first.Referral)

		// Nothing of the failed intake was kept, not even its message id.
		again.Referral.Identifier.Value = "REF-b"
		mustCreate(t, s, again)
	})

	t.Run("OKSameIdentifierOtherOrganisation", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nhs := nhsNumbers()
		first := newIntake("a", nhs())
		mustCreate(t, s, first)

		// A referral identifier is its referrer's own: another
		// organisation may use the same one, and each finds its own.
		other := newIntake("b", nhs())
		other.Referral.Identifier = first.Referral.Identifier
		other.Referral.ReferrerODS = "B82002"
		mustCreate(t, s, other)
		checkReferral(t, s, first.Referral)
		checkReferral(t, s, other.Referral)

		// The same organisation twice is a duplicate, naming its own
		// referral, whichever organisation it is.
		for _, stored := range []*linkbridge.Referral{first.Referral, other.Referral} {
			again := newIntake("again-"+stored.ReferrerODS, nhs())
			again.Referral.Identifier, again.Referral.ReferrerODS = stored.Identifier, stored.ReferrerODS
			err := s.CreateReferral(ctx, again)
			checkError(t, err, linkbridge.EDUPLICATE, "ServiceRequest/"+stored.ID)
			checkIntakeAbsent(t, s, again)
		}
	})

	t.Run("ErrDuplicateNHSNumberOtherOrganisationsIdentifier", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nhs := nhsNumbers()
		first := newIntake("a", nhs())
		mustCreate(t, s, first)

		// A "new" person with a stored NHS number, from another
		// organisation using the same identifier: the person is the
		// duplicate, never the other organisation's referral.
		second := newIntake("b", first.Person.NHSNumber)
		second.Referral.Identifier = first.Referral.Identifier
		second.Referral.ReferrerODS = "B82002"
		err := s.CreateReferral(ctx, second)
		checkError(t, err, linkbridge.EDUPLICATE, "Patient/"+first.Person.ID)
		checkIntakeAbsent(t, s, second)
	})

	t.Run("ErrDuplicateMessageID", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nhs := nhsNumbers()
		first := newIntake("a", nhs())
		mustCreate(t, s, first)

		replay := newIntake("b", nhs())
		replay.MessageID = first.MessageID
		err := s.CreateReferral(ctx, replay)
		checkError(t, err, linkbridge.EDUPLICATE, "MessageHeader/"+first.MessageID)
		checkIntakeAbsent(t, s, replay)
	})

	t.Run("ErrDuplicateNHSNumber", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nhs := nhsNumbers()
		first := newIntake("a", nhs())
		mustCreate(t, s, first)

		// A second "new" person with a stored NHS number.
		second := newIntake("b", first.Person.NHSNumber)
		err := s.CreateReferral(ctx, second)
		checkError(t, err, linkbridge.EDUPLICATE, "Patient/"+first.Person.ID)
		checkIntakeAbsent(t, s, second)
		checkPerson(t, s, first.Person)
	})

	t.Run("ErrFailureInTheMiddleStoresNothing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nhs := nhsNumbers()
		first := newIntake("a", nhs())
		shared := resource("Observation", "obs-shared", 1, t0, `,"status":"final"`, param("code", "http://snomed.info/sct|1"))
		first.Resources = append(first.Resources, shared)
		mustCreate(t, s, first)

		// The person, referral and first resources are written before the
		// colliding Observation; all must be undone.
		second := newIntake("b", nhs())
		collide := resource("Observation", "obs-shared", 1, t0.Add(time.Minute), `,"status":"amended"`)
		second.Resources = []*linkbridge.Resource{second.Resources[0], second.Resources[1], collide, second.Resources[2]}
		if err := s.CreateReferral(ctx, second); err == nil {
			t.Fatal("CreateReferral with a resource id that is stored returned no error")
		}
		checkIntakeAbsent(t, s, second, "Observation/obs-shared")
		checkResource(t, s, shared)
		if _, err := s.FindPersonByNHSNumber(ctx, second.Person.NHSNumber); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
			t.Fatalf("FindPersonByNHSNumber after a failed intake: error %v, want ENOTFOUND", err)
		}

		// The message id was not kept either: the corrected intake succeeds.
		second.Resources = append(second.Resources[:2], second.Resources[3])
		mustCreate(t, s, second)
		checkPerson(t, s, second.Person)
	})
}

func testUpdateReferral(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	ctx := context.Background()
	t1 := t0.Add(time.Hour)

	// setup stores one intake and returns it with a valid next change: the
	// referral and Task at version 2 (accepted) and a new Observation.
	setup := func(t *testing.T) (linkbridge.Store, *linkbridge.Intake, *linkbridge.ReferralChange) {
		t.Helper()
		s := open(t)
		in := newIntake("a", nhsNumbers()())
		mustCreate(t, s, in)
		ref := nextVersion(in.Referral, t1, func(r *linkbridge.Referral) {
			r.Status = linkbridge.TaskAccepted
			r.BusinessStatus = "contacting"
		})
		ch := &linkbridge.ReferralChange{
			Referral: ref,
			Resources: []*linkbridge.Resource{
				taskResource(ref, 2, t1),
				resource("Observation", "obs-1", 1, t1, `,"status":"final"`, param("subject", "Patient/"+ref.PersonID)),
			},
			MessageID: "msg-update-1",
		}
		return s, in, ch
	}

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		s, in, ch := setup(t)
		mustUpdate(t, s, ch)

		checkReferral(t, s, ch.Referral)
		for _, r := range ch.Resources {
			checkResource(t, s, r)
		}
		// Version 1 is still readable.
		checkResourceVersion(t, s, in.Resources[2])

		// A further change, without a message id.
		t2 := t1.Add(time.Hour)
		ref3 := nextVersion(ch.Referral, t2, func(r *linkbridge.Referral) { r.Status = linkbridge.TaskInProgress })
		mustUpdate(t, s, &linkbridge.ReferralChange{
			Referral:  ref3,
			Resources: []*linkbridge.Resource{taskResource(ref3, 3, t2)},
		})
		checkReferral(t, s, ref3)
		checkResource(t, s, taskResource(ref3, 3, t2))
	})

	t.Run("OKReferralOnly", func(t *testing.T) {
		t.Parallel()
		s, _, ch := setup(t)
		ch.Resources = nil
		mustUpdate(t, s, ch)
		checkReferral(t, s, ch.Referral)
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		s, _, ch := setup(t)
		ch.Referral.ID = "sr-missing"
		err := s.UpdateReferral(ctx, ch)
		checkError(t, err, linkbridge.ENOTFOUND, "")
	})

	for _, tc := range []struct {
		name   string
		change func(ch *linkbridge.ReferralChange)
	}{
		{"ErrStaleReferralVersion", func(ch *linkbridge.ReferralChange) { ch.Referral.Version = 1 }},
		{"ErrSkippedReferralVersion", func(ch *linkbridge.ReferralChange) { ch.Referral.Version = 3 }},
		{"ErrStaleResourceVersion", func(ch *linkbridge.ReferralChange) { ch.Resources[0].VersionID = 1 }},
		{"ErrSkippedResourceVersion", func(ch *linkbridge.ReferralChange) { ch.Resources[0].VersionID = 3 }},
		{"ErrNewResourceExists", func(ch *linkbridge.ReferralChange) {
			ch.Resources = append(ch.Resources, resource("Patient", ch.Referral.PersonID, 1, t1, ""))
		}},
		{"ErrResourceMissing", func(ch *linkbridge.ReferralChange) {
			ch.Resources = append(ch.Resources, resource("Observation", "obs-missing", 2, t1, ""))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, in, ch := setup(t)
			valid := *ch
			valid.Resources = append([]*linkbridge.Resource(nil), ch.Resources...)
			validRef := *ch.Referral

			bad := *ch
			badRef := *ch.Referral
			bad.Referral = &badRef
			bad.Resources = nil
			for _, r := range ch.Resources {
				c := *r
				bad.Resources = append(bad.Resources, &c)
			}
			tc.change(&bad)
			err := s.UpdateReferral(ctx, &bad)
			checkError(t, err, linkbridge.EPRECONDITION, "")

			// Nothing changed: referral, Task and the new resource.
			checkReferral(t, s, in.Referral)
			checkResource(t, s, in.Resources[2])
			if _, err := s.ReadResource(ctx, "Observation", "obs-1"); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
				t.Fatalf("ReadResource(Observation/obs-1) after a failed change: error %v, want ENOTFOUND", err)
			}

			// The message id was not kept: the valid change succeeds.
			valid.Referral = &validRef
			mustUpdate(t, s, &valid)
			checkReferral(t, s, &validRef)
		})
	}

	t.Run("ErrDuplicateMessageID", func(t *testing.T) {
		t.Parallel()
		s, in, ch := setup(t)
		ch.MessageID = in.MessageID
		err := s.UpdateReferral(ctx, ch)
		checkError(t, err, linkbridge.EDUPLICATE, "MessageHeader/"+in.MessageID)
		checkReferral(t, s, in.Referral)
	})

	t.Run("ErrReplayedChange", func(t *testing.T) {
		t.Parallel()
		s, _, ch := setup(t)
		mustUpdate(t, s, ch)
		err := s.UpdateReferral(ctx, ch)
		checkError(t, err, linkbridge.EDUPLICATE, "MessageHeader/"+ch.MessageID)
		checkReferral(t, s, ch.Referral)
	})
}

// checkResourceVersion fails unless want is readable as its version.
func checkResourceVersion(t *testing.T, s linkbridge.Store, want *linkbridge.Resource) {
	t.Helper()
	got, err := s.ReadResourceVersion(context.Background(), want.Type, want.ID, want.VersionID)
	if err != nil {
		t.Fatalf("ReadResourceVersion(%s, %d) returned unexpected error: %v", want.Reference(), want.VersionID, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Fatalf("ReadResourceVersion(%s, %d) mismatch (-want +got):\n%s", want.Reference(), want.VersionID, diff)
	}
}
