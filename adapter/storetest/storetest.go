// Package storetest is the test suite that every linkbridge.Store
// implementation must pass, as river's riverdrivertest is for its drivers.
// An adapter's tests call Run with a function that opens an empty store:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) linkbridge.Store { return mustOpen(t) })
//	}
//
// A store that also implements linkbridge.CaseStore runs RunCaseStore too:
//
//	func TestCaseStore(t *testing.T) {
//		storetest.RunCaseStore(t, func(t *testing.T) storetest.CaseStore { return mustOpen(t) })
//	}
//
// A store that also implements linkbridge.OutboxStore runs RunOutboxStore:
//
//	func TestOutboxStore(t *testing.T) {
//		storetest.RunOutboxStore(t, func(t *testing.T) storetest.OutboxStore { return mustOpen(t) })
//	}
//
// The suites use only the linkbridge.Store, linkbridge.CaseStore and
// linkbridge.OutboxStore interfaces. Their times have microsecond precision,
// the finest that PostgreSQL keeps. Import the package only from tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/linkbridge/linkbridge"
)

// Run runs the suite. open must return a new, empty store and close it when
// the test ends (t.Cleanup). Subtests run in parallel, each on its own store.
func Run(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	t.Run("CreateReferral", func(t *testing.T) { t.Parallel(); testCreateReferral(t, open) })
	t.Run("UpdateReferral", func(t *testing.T) { t.Parallel(); testUpdateReferral(t, open) })
	t.Run("Find", func(t *testing.T) { t.Parallel(); testFind(t, open) })
	t.Run("ResourceHistory", func(t *testing.T) { t.Parallel(); testResourceHistory(t, open) })
	t.Run("SearchResources", func(t *testing.T) { t.Parallel(); testSearchResources(t, open) })
	t.Run("Concurrent", func(t *testing.T) { t.Parallel(); testConcurrent(t, open) })
	t.Run("MessageProcessed", func(t *testing.T) { t.Parallel(); testMessageProcessed(t, open) })
	t.Run("EpisodeFields", func(t *testing.T) { t.Parallel(); testEpisodeFields(t, open) })
}

// t0 is the suite's reference time.
var t0 = time.Date(2025, 3, 14, 9, 30, 0, 123456000, time.UTC)

// Comparison options: reads do not return search parameters, and nil and
// empty slices are the same.
var cmpOpts = []cmp.Option{
	cmpopts.EquateEmpty(),
	cmpopts.IgnoreFields(linkbridge.Resource{}, "Params"),
}

// referralSystem is the business identifier system of the suite's referrals.
const referralSystem = "https://fhir.example-gp.nhs.uk/Id/referral"

// nhsNumbers returns a generator of distinct valid NHS numbers: nine-digit
// stems from 900000000 with their Modulus 11 check digit, skipping stems
// whose check digit would be 10.
func nhsNumbers() func() string {
	stem := 900000000
	return func() string {
		for {
			s := strconv.Itoa(stem)
			stem++
			if check, ok := linkbridge.NHSCheckDigit(s); ok {
				return s + strconv.Itoa(check)
			}
		}
	}
}

// resource builds a resource with a small FHIR JSON body.
func resource(typ, id string, version int, at time.Time, extra string, params ...linkbridge.SearchParam) *linkbridge.Resource {
	body := fmt.Sprintf(`{"resourceType":%q,"id":%q,"meta":{"versionId":"%d","lastUpdated":%q}%s}`,
		typ, id, version, at.Format(time.RFC3339Nano), extra)
	return &linkbridge.Resource{Type: typ, ID: id, VersionID: version, LastUpdated: at, Body: []byte(body), Params: params}
}

// param is shorthand for a SearchParam.
func param(name, value string) linkbridge.SearchParam {
	return linkbridge.SearchParam{Name: name, Value: value}
}

// newIntake builds the intake of a new person's referral named name: the
// person "p-<name>", the referral (and ServiceRequest) "sr-<name>", the Task
// "task-<name>" and the identifier "REF-<name>", with Patient, ServiceRequest
// and Task resources at version 1.
func newIntake(name, nhsNumber string) *linkbridge.Intake {
	p := &linkbridge.Person{
		ID: "p-" + name, NHSNumber: nhsNumber, BirthDate: "1956-07-21", GPODS: "Y01234", CreatedAt: t0,
	}
	r := &linkbridge.Referral{
		ID: "sr-" + name, TaskID: "task-" + name, PersonID: p.ID, PatientID: p.ID,
		Identifier:    linkbridge.Identifier{System: referralSystem, Value: "REF-" + name},
		Status:        linkbridge.TaskRequested,
		RequestStatus: "active",
		Priority:      "routine",
		ReferrerODS:   "Y01234",
		ServiceODS:    "RAT01",
		Reasons: []linkbridge.Coding{
			{System: linkbridge.SNOMEDSystem, Code: linkbridge.SCTReferralToSocialPrescribing, Display: "Referral to social prescribing service"},
		},
		AuthoredOn: t0.Add(-time.Hour),
		ReceivedAt: t0,
		UpdatedAt:  t0,
		Version:    1,
	}
	return &linkbridge.Intake{
		Person:    p,
		NewPerson: true,
		Referral:  r,
		Resources: []*linkbridge.Resource{
			patientResource(p),
			resource("ServiceRequest", r.ID, 1, t0, `,"status":"active","intent":"order"`,
				param("identifier", r.Identifier.String()), param("patient", "Patient/"+p.ID), param("status", "active")),
			taskResource(r, 1, t0),
		},
		MessageID: "msg-" + name,
	}
}

// patientResource builds version 1 of a person's Patient resource.
func patientResource(p *linkbridge.Person) *linkbridge.Resource {
	return resource("Patient", p.ID, 1, t0, fmt.Sprintf(`,"birthDate":%q`, p.BirthDate),
		param("identifier", linkbridge.NHSNumberSystem+"|"+p.NHSNumber))
}

// taskResource builds a version of a referral's Task resource.
func taskResource(r *linkbridge.Referral, version int, at time.Time) *linkbridge.Resource {
	return resource("Task", r.TaskID, version, at, fmt.Sprintf(`,"status":%q,"intent":"order"`, r.Status),
		param("focus", "ServiceRequest/"+r.ID), param("patient", "Patient/"+r.Patient()),
		param("owner", "Organization/"+r.ServiceODS), param("status", string(r.Status)))
}

// nextVersion returns a copy of r at its next version, changed by fn.
func nextVersion(r *linkbridge.Referral, at time.Time, fn func(*linkbridge.Referral)) *linkbridge.Referral {
	c := *r
	c.Reasons = append([]linkbridge.Coding(nil), r.Reasons...)
	c.Version++
	c.UpdatedAt = at
	if fn != nil {
		fn(&c)
	}
	return &c
}

// mustCreate stores an intake. Fatal on error.
func mustCreate(t *testing.T, s linkbridge.Store, in *linkbridge.Intake) {
	t.Helper()
	if err := s.CreateReferral(context.Background(), in); err != nil {
		t.Fatalf("CreateReferral(%s) returned unexpected error: %v", in.Referral.ID, err)
	}
}

// mustUpdate applies a change. Fatal on error.
func mustUpdate(t *testing.T, s linkbridge.Store, ch *linkbridge.ReferralChange) {
	t.Helper()
	if err := s.UpdateReferral(context.Background(), ch); err != nil {
		t.Fatalf("UpdateReferral(%s v%d) returned unexpected error: %v", ch.Referral.ID, ch.Referral.Version, err)
	}
}

// checkError fails unless err is an application error with code and, when
// existing is not empty, Existing.
func checkError(t *testing.T, err error, code, existing string) {
	t.Helper()
	if got := linkbridge.ErrorCode(err); got != code {
		t.Fatalf("error code = %q, want %q (error: %v)", got, code, err)
	}
	if existing == "" {
		return
	}
	var e *linkbridge.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *linkbridge.Error", err)
	}
	if e.Existing != existing {
		t.Fatalf("Error.Existing = %q, want %q", e.Existing, existing)
	}
}

// checkReferral fails unless the store holds want, found by id, Task id and
// its referrer's identifier.
func checkReferral(t *testing.T, s linkbridge.Store, want *linkbridge.Referral) {
	t.Helper()
	ctx := context.Background()
	for _, find := range []struct {
		name string
		fn   func() (*linkbridge.Referral, error)
	}{
		{"FindReferral", func() (*linkbridge.Referral, error) { return s.FindReferral(ctx, want.ID) }},
		{"FindReferralByTaskID", func() (*linkbridge.Referral, error) { return s.FindReferralByTaskID(ctx, want.TaskID) }},
		{"FindReferralByIdentifier", func() (*linkbridge.Referral, error) {
			return s.FindReferralByIdentifier(ctx, want.ReferrerODS, want.Identifier)
		}},
	} {
		got, err := find.fn()
		if err != nil {
			t.Fatalf("%s(%s) returned unexpected error: %v", find.name, want.ID, err)
		}
		if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
			t.Fatalf("%s(%s) mismatch (-want +got):\n%s", find.name, want.ID, diff)
		}
	}
}

// checkPerson fails unless the store holds want, found by id and NHS number.
func checkPerson(t *testing.T, s linkbridge.Store, want *linkbridge.Person) {
	t.Helper()
	ctx := context.Background()
	got, err := s.FindPerson(ctx, want.ID)
	if err != nil {
		t.Fatalf("FindPerson(%s) returned unexpected error: %v", want.ID, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Fatalf("FindPerson(%s) mismatch (-want +got):\n%s", want.ID, diff)
	}
	got, err = s.FindPersonByNHSNumber(ctx, want.NHSNumber)
	if err != nil {
		t.Fatalf("FindPersonByNHSNumber(person %s) returned unexpected error: %v", want.ID, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Fatalf("FindPersonByNHSNumber(person %s) mismatch (-want +got):\n%s", want.ID, diff)
	}
}

// checkResource fails unless want is the current version of its resource
// and is readable as that version.
func checkResource(t *testing.T, s linkbridge.Store, want *linkbridge.Resource) {
	t.Helper()
	ctx := context.Background()
	got, err := s.ReadResource(ctx, want.Type, want.ID)
	if err != nil {
		t.Fatalf("ReadResource(%s) returned unexpected error: %v", want.Reference(), err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Fatalf("ReadResource(%s) mismatch (-want +got):\n%s", want.Reference(), diff)
	}
	got, err = s.ReadResourceVersion(ctx, want.Type, want.ID, want.VersionID)
	if err != nil {
		t.Fatalf("ReadResourceVersion(%s, %d) returned unexpected error: %v", want.Reference(), want.VersionID, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Fatalf("ReadResourceVersion(%s, %d) mismatch (-want +got):\n%s", want.Reference(), want.VersionID, diff)
	}
}

// checkIntakeAbsent fails if anything that in would create is stored: its
// new person, its referral or any of its resources. Resources named in keep
// ("Type/id") are skipped: they were stored before.
func checkIntakeAbsent(t *testing.T, s linkbridge.Store, in *linkbridge.Intake, keep ...string) {
	t.Helper()
	ctx := context.Background()
	if in.NewPerson {
		if _, err := s.FindPerson(ctx, in.Person.ID); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
			t.Fatalf("FindPerson(%s) after a failed intake: error %v, want ENOTFOUND", in.Person.ID, err)
		}
	}
	if _, err := s.FindReferral(ctx, in.Referral.ID); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
		t.Fatalf("FindReferral(%s) after a failed intake: error %v, want ENOTFOUND", in.Referral.ID, err)
	}
	if _, err := s.FindReferralByTaskID(ctx, in.Referral.TaskID); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
		t.Fatalf("FindReferralByTaskID(%s) after a failed intake: error %v, want ENOTFOUND", in.Referral.TaskID, err)
	}
next:
	for _, r := range in.Resources {
		for _, k := range keep {
			if r.Reference() == k {
				continue next
			}
		}
		if _, err := s.ReadResource(ctx, r.Type, r.ID); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
			t.Fatalf("ReadResource(%s) after a failed intake: error %v, want ENOTFOUND", r.Reference(), err)
		}
	}
}

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

func testSearchResources(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	ctx := context.Background()
	s := open(t)
	in := newIntake("a", nhsNumbers()())

	const sct = "http://snomed.info/sct|"
	obs := func(id string, at time.Duration, code, status string) *linkbridge.Resource {
		return resource("Observation", id, 1, t0.Add(at), fmt.Sprintf(`,"status":%q`, status),
			param("code", sct+code), param("status", status), param("subject", "Patient/"+in.Person.ID))
	}
	// o3 and o4 share a lastUpdated: id breaks the tie. They are listed out
	// of order so that insertion order cannot pass for the sort order.
	o1 := obs("o1", 0, "A", "final")
	o2 := obs("o2", time.Second, "B", "final")
	o3 := obs("o3", 2*time.Second, "A", "preliminary")
	o4 := obs("o4", 2*time.Second, "C", "final")
	o5 := obs("o5", 3*time.Second, "B", "amended")
	in.Resources = append(in.Resources, o5, o4, o2, o3, o1)
	mustCreate(t, s, in)

	all := []*linkbridge.Resource{o1, o2, o3, o4, o5}
	ids := func(rs []*linkbridge.Resource) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	for _, tc := range []struct {
		name string
		q    linkbridge.ResourceQuery
		want []string
	}{
		{"All", linkbridge.ResourceQuery{}, ids(all)},
		{"Param", linkbridge.ResourceQuery{Params: []linkbridge.ParamFilter{{Name: "code", Values: []string{sct + "A"}}}}, []string{"o1", "o3"}},
		{"ParamAnyValue", linkbridge.ResourceQuery{Params: []linkbridge.ParamFilter{{Name: "code", Values: []string{sct + "A", sct + "C"}}}}, []string{"o1", "o3", "o4"}},
		{"ParamsAll", linkbridge.ResourceQuery{Params: []linkbridge.ParamFilter{
			{Name: "code", Values: []string{sct + "A", sct + "B"}},
			{Name: "status", Values: []string{"final"}},
		}}, []string{"o1", "o2"}},
		{"ParamsNoneMatch", linkbridge.ResourceQuery{Params: []linkbridge.ParamFilter{
			{Name: "code", Values: []string{sct + "C"}},
			{Name: "status", Values: []string{"amended"}},
		}}, nil},
		{"ParamValueOfOtherParam", linkbridge.ResourceQuery{Params: []linkbridge.ParamFilter{{Name: "status", Values: []string{sct + "A"}}}}, nil},
		{"ParamUnknownValue", linkbridge.ResourceQuery{Params: []linkbridge.ParamFilter{{Name: "code", Values: []string{sct + "Z"}}}}, nil},
		{"IDs", linkbridge.ResourceQuery{IDs: []string{"o5", "o2", "missing"}}, []string{"o2", "o5"}},
		{"IDsAndParam", linkbridge.ResourceQuery{IDs: []string{"o1", "o2", "o3"}, Params: []linkbridge.ParamFilter{{Name: "status", Values: []string{"final"}}}}, []string{"o1", "o2"}},
		{"LastUpdatedEq", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{{Prefix: "eq", Time: at(2 * time.Second)}}}, []string{"o3", "o4"}},
		{"LastUpdatedGt", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{{Prefix: "gt", Time: at(2 * time.Second)}}}, []string{"o5"}},
		{"LastUpdatedGe", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{{Prefix: "ge", Time: at(2 * time.Second)}}}, []string{"o3", "o4", "o5"}},
		{"LastUpdatedLt", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{{Prefix: "lt", Time: at(time.Second)}}}, []string{"o1"}},
		{"LastUpdatedLe", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{{Prefix: "le", Time: at(time.Second)}}}, []string{"o1", "o2"}},
		{"LastUpdatedRange", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{
			{Prefix: "ge", Time: at(time.Second)}, {Prefix: "lt", Time: at(3 * time.Second)},
		}}, []string{"o2", "o3", "o4"}},
		{"LastUpdatedOtherZone", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{
			{Prefix: "gt", Time: at(2 * time.Second).In(time.FixedZone("BST", 3600))},
		}}, []string{"o5"}},
		{"LastUpdatedAndParam", linkbridge.ResourceQuery{
			Params:      []linkbridge.ParamFilter{{Name: "status", Values: []string{"final"}}},
			LastUpdated: []linkbridge.DateFilter{{Prefix: "gt", Time: at(0)}},
		}, []string{"o2", "o4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Type, q.Count = "Observation", 100
			got, err := s.SearchResources(ctx, &q)
			if err != nil {
				t.Fatalf("SearchResources returned unexpected error: %v", err)
			}
			if diff := cmp.Diff(tc.want, ids(got.Resources), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("SearchResources ids mismatch (-want +got):\n%s", diff)
			}
			if got.Total != len(tc.want) {
				t.Fatalf("SearchResources Total = %d, want %d", got.Total, len(tc.want))
			}
		})
	}

	t.Run("OtherType", func(t *testing.T) {
		// Task has a status parameter too, but is not an Observation.
		got, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{
			Type: "Task", Count: 100, Params: []linkbridge.ParamFilter{{Name: "code", Values: []string{sct + "A"}}},
		})
		if err != nil {
			t.Fatalf("SearchResources returned unexpected error: %v", err)
		}
		if len(got.Resources) != 0 || got.Total != 0 {
			t.Fatalf("SearchResources(Task, code=A) = %v (total %d), want none", ids(got.Resources), got.Total)
		}
	})

	t.Run("Resources", func(t *testing.T) {
		got, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Observation", Count: 100})
		if err != nil {
			t.Fatalf("SearchResources returned unexpected error: %v", err)
		}
		want := &linkbridge.SearchResult{Resources: all, Total: len(all), TotalExact: true}
		if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
			t.Fatalf("SearchResources mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("Total", func(t *testing.T) {
		// Five matches. Without AccurateTotal the count stops at
		// CountLimit (one past the larger of the bound and the page's
		// end): a total at the limit is a lower bound.
		for _, tc := range []struct {
			name  string
			q     linkbridge.ResourceQuery
			want  []string
			total int
			exact bool
		}{
			{"UnderBound", linkbridge.ResourceQuery{Count: 2}, []string{"o1", "o2"}, 5, true},
			{"PastBound", linkbridge.ResourceQuery{Count: 1, TotalBound: 2}, []string{"o1"}, 3, false},
			{"AtBound", linkbridge.ResourceQuery{Count: 1, TotalBound: 4}, []string{"o1"}, 5, false},
			{"PastBoundAccurate", linkbridge.ResourceQuery{Count: 1, TotalBound: 2, AccurateTotal: true}, []string{"o1"}, 5, true},
			{"PageEndPastBound", linkbridge.ResourceQuery{Count: 2, Offset: 2, TotalBound: 1}, []string{"o3", "o4"}, 5, false},
			{"LastPage", linkbridge.ResourceQuery{Count: 2, Offset: 4, TotalBound: 1}, []string{"o5"}, 5, true},
			{"PastTheEnd", linkbridge.ResourceQuery{Count: 2, Offset: 10, TotalBound: 1}, nil, 5, true},
			{"NoMatch", linkbridge.ResourceQuery{Count: 1, TotalBound: 1, IDs: []string{"missing"}}, nil, 0, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				q := tc.q
				q.Type = "Observation"
				got, err := s.SearchResources(ctx, &q)
				if err != nil {
					t.Fatalf("SearchResources returned unexpected error: %v", err)
				}
				if diff := cmp.Diff(tc.want, ids(got.Resources), cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("SearchResources ids mismatch (-want +got):\n%s", diff)
				}
				if got.Total != tc.total || got.TotalExact != tc.exact {
					t.Fatalf("SearchResources Total = %d (exact %t), want %d (exact %t)", got.Total, got.TotalExact, tc.total, tc.exact)
				}
				matches := len(all)
				if len(q.IDs) > 0 {
					matches = 0
				}
				if more := q.Offset+q.Count < got.Total; more != (q.Offset+q.Count < matches) {
					t.Fatalf("Offset+Count < Total = %t, want %t (another page)", more, !more)
				}
			})
		}
	})

	t.Run("Paging", func(t *testing.T) {
		for _, tc := range []struct {
			offset int
			want   []string
		}{
			{0, []string{"o1", "o2"}},
			{2, []string{"o3", "o4"}},
			{4, []string{"o5"}},
			{6, nil},
		} {
			got, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Observation", Count: 2, Offset: tc.offset})
			if err != nil {
				t.Fatalf("SearchResources(offset %d) returned unexpected error: %v", tc.offset, err)
			}
			if diff := cmp.Diff(tc.want, ids(got.Resources), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("SearchResources(offset %d) ids mismatch (-want +got):\n%s", tc.offset, diff)
			}
			if got.Total != len(all) {
				t.Fatalf("SearchResources(offset %d) Total = %d, want %d", tc.offset, got.Total, len(all))
			}
		}
	})

	t.Run("CurrentVersionOnly", func(t *testing.T) {
		s := open(t)
		in := newIntake("b", nhsNumbers()())
		mustCreate(t, s, in)
		t1 := t0.Add(time.Hour)
		ref := nextVersion(in.Referral, t1, func(r *linkbridge.Referral) { r.Status = linkbridge.TaskAccepted })
		task := taskResource(ref, 2, t1)
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref, Resources: []*linkbridge.Resource{task}})

		search := func(status string) []*linkbridge.Resource {
			t.Helper()
			got, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{
				Type: "Task", Count: 10, Params: []linkbridge.ParamFilter{{Name: "status", Values: []string{status}}},
			})
			if err != nil {
				t.Fatalf("SearchResources(status=%s) returned unexpected error: %v", status, err)
			}
			return got.Resources
		}
		if got := search("requested"); len(got) != 0 {
			t.Fatalf("SearchResources(status=requested) found %v: the old version's params were kept", ids(got))
		}
		if diff := cmp.Diff([]*linkbridge.Resource{task}, search("accepted"), cmpOpts...); diff != "" {
			t.Fatalf("SearchResources(status=accepted) mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("ParamsOfEachVersion", func(t *testing.T) {
		// Each version's values replace the last's: kept, dropped (even one
		// listed twice), added, and dropped then added back.
		s := open(t)
		in := newIntake("c", nhsNumbers()())
		code := func(c string) linkbridge.SearchParam { return param("code", sct+c) }
		obs := func(v int, ps ...linkbridge.SearchParam) *linkbridge.Resource {
			return resource("Observation", "obs-c", v, t0.Add(time.Duration(v)*time.Hour), "", ps...)
		}
		in.Resources = append(in.Resources, obs(1, code("A"), code("B"), code("B"), param("status", "final")))
		mustCreate(t, s, in)

		ref := in.Referral
		for v, tc := range []struct {
			params     []linkbridge.SearchParam
			want, gone []linkbridge.SearchParam
		}{
			{[]linkbridge.SearchParam{code("A"), code("C"), param("status", "final")}, []linkbridge.SearchParam{code("A"), code("C"), param("status", "final")}, []linkbridge.SearchParam{code("B")}},
			{[]linkbridge.SearchParam{code("B"), code("B")}, []linkbridge.SearchParam{code("B")}, []linkbridge.SearchParam{code("A"), code("C"), param("status", "final")}},
			{nil, nil, []linkbridge.SearchParam{code("B")}},
			{[]linkbridge.SearchParam{code("A")}, []linkbridge.SearchParam{code("A")}, []linkbridge.SearchParam{code("B")}},
		} {
			ref = nextVersion(ref, t0.Add(time.Duration(v+2)*time.Hour), nil)
			o := obs(v+2, tc.params...)
			mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref, Resources: []*linkbridge.Resource{o}})
			for _, p := range append(tc.want, tc.gone...) {
				got, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{
					Type: "Observation", Count: 10, Params: []linkbridge.ParamFilter{{Name: p.Name, Values: []string{p.Value}}},
				})
				if err != nil {
					t.Fatalf("SearchResources(%s=%s) returned unexpected error: %v", p.Name, p.Value, err)
				}
				want := 0
				if slices.Contains(tc.want, p) {
					want = 1
				}
				if got.Total != want {
					t.Fatalf("version %d: SearchResources(%s=%s) Total = %d, want %d", v+2, p.Name, p.Value, got.Total, want)
				}
			}
		}
	})
}

// concurrency is how many goroutines the concurrent tests run.
const concurrency = 32

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

func testMessageProcessed(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	ctx := context.Background()
	s := open(t)
	nhs := nhsNumbers()
	check := func(t *testing.T, id string, want bool) {
		t.Helper()
		got, err := s.MessageProcessed(ctx, id)
		if err != nil {
			t.Fatalf("MessageProcessed(%q) returned unexpected error: %v", id, err)
		}
		if got != want {
			t.Fatalf("MessageProcessed(%q) = %v, want %v", id, got, want)
		}
	}

	in := newIntake("a", nhs())
	check(t, in.MessageID, false)
	mustCreate(t, s, in)
	check(t, in.MessageID, true)

	t1 := t0.Add(time.Hour)
	ref := nextVersion(in.Referral, t1, func(r *linkbridge.Referral) { r.Status = linkbridge.TaskAccepted })
	ch := &linkbridge.ReferralChange{Referral: ref, Resources: []*linkbridge.Resource{taskResource(ref, 2, t1)}, MessageID: "msg-update"}
	check(t, ch.MessageID, false)
	mustUpdate(t, s, ch)
	check(t, ch.MessageID, true)

	t.Run("NotRecordedOnFailure", func(t *testing.T) {
		// A failed create and a failed update record nothing.
		dup := newIntake("b", nhs())
		dup.Referral.Identifier = in.Referral.Identifier
		dup.MessageID = "msg-failed-create"
		if err := s.CreateReferral(ctx, dup); err == nil {
			t.Fatal("CreateReferral with a stored identifier returned no error")
		}
		check(t, dup.MessageID, false)

		stale := *ch
		stale.MessageID = "msg-failed-update"
		if err := s.UpdateReferral(ctx, &stale); err == nil {
			t.Fatal("UpdateReferral at a stale version returned no error")
		}
		check(t, stale.MessageID, false)
	})

	t.Run("Unknown", func(t *testing.T) {
		check(t, "msg-never-sent", false)
		check(t, "", false)
	})
}

// testEpisodeFields checks that every Referral field round-trips: the link
// worker, consent, decline and discharge reasons, summary and episode times,
// on create and on update, and that unsetting them is stored too.
func testEpisodeFields(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	t.Run("Create", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		in := newIntake("a", nhsNumbers()())
		r := in.Referral
		r.Status = linkbridge.TaskAccepted
		r.LinkWorker = linkbridge.LinkWorker{ID: "lw-1", Name: "Sam Linkworker"}
		r.Consent = linkbridge.ConsentCodesOnly
		r.AcceptedAt = t0.Add(time.Minute)
		mustCreate(t, s, in)
		checkReferral(t, s, r)
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		in := newIntake("a", nhsNumbers()())
		mustCreate(t, s, in)

		t1, t2, t3 := t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(3*time.Hour)
		accepted := nextVersion(in.Referral, t1, func(r *linkbridge.Referral) {
			r.Status = linkbridge.TaskAccepted
			r.LinkWorker = linkbridge.LinkWorker{ID: "lw-1", Name: "Sam Linkworker"}
			r.Consent = linkbridge.ConsentFull
			r.AcceptedAt = t1
		})
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: accepted})
		checkReferral(t, s, accepted)

		completed := nextVersion(accepted, t2, func(r *linkbridge.Referral) {
			r.Status = linkbridge.TaskCompleted
			r.DischargeReason = "goals-met"
			r.DischargeSummary = "Joined a walking group; feels less isolated."
			r.CompletedAt = t2
		})
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: completed})
		checkReferral(t, s, completed)

		// Fields can be cleared again (entered-in-error, say).
		cleared := nextVersion(completed, t3, func(r *linkbridge.Referral) {
			r.Status = linkbridge.TaskEnteredInError
			r.LinkWorker = linkbridge.LinkWorker{}
			r.Consent = ""
			r.DischargeReason, r.DischargeSummary = "", ""
			r.AcceptedAt, r.CompletedAt = time.Time{}, time.Time{}
		})
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: cleared})
		checkReferral(t, s, cleared)
	})

	t.Run("Decline", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		in := newIntake("a", nhsNumbers()())
		mustCreate(t, s, in)
		t1 := t0.Add(time.Hour)
		declined := nextVersion(in.Referral, t1, func(r *linkbridge.Referral) {
			r.Status = linkbridge.TaskRejected
			r.DeclineReason = "out-of-area"
			r.StatusReason = "out of area"
		})
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: declined})
		checkReferral(t, s, declined)
	})
}
