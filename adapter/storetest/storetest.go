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
// and one that implements linkbridge.EndpointIdentityStore runs
// RunEndpointIdentityStore.
//
// The suites use only the linkbridge.Store, linkbridge.CaseStore,
// linkbridge.OutboxStore, linkbridge.AuditStore and
// linkbridge.EndpointIdentityStore interfaces. Their times have
// microsecond precision, the finest that PostgreSQL keeps. Import the package only from tests.
//
// One file an area, as riverdrivertest's: this file holds Run and the
// fixtures; referral_write.go (intake, changes), referral_read.go (finds,
// history), resource_search.go, concurrency.go, message.go (message ids,
// episode fields), access.go, casestore.go, and the outbox suite in
// outbox.go (RunOutboxStore and its fixtures), outbox_enqueue.go,
// outbox_claim.go, outbox_settle.go (supersede, dead-letter, rescue,
// claims lost, requeue), outbox_read.go and outbox_clean.go, and
// endpoint_identity.go (RunEndpointIdentityStore).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
	t.Run("SearchEscapes", func(t *testing.T) { t.Parallel(); testSearchEscapes(t, open) })
	t.Run("Concurrent", func(t *testing.T) { t.Parallel(); testConcurrent(t, open) })
	t.Run("MessageProcessed", func(t *testing.T) { t.Parallel(); testMessageProcessed(t, open) })
	t.Run("EpisodeFields", func(t *testing.T) { t.Parallel(); testEpisodeFields(t, open) })
	t.Run("OpenReferral", func(t *testing.T) { t.Parallel(); testOpenReferral(t, open) })
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
