package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// testOpenReferral checks the rule of one open referral per person and
// service (linkbridge.Referral.OpenKey, docs/domain.md#one-open-referral):
// the store refuses a second in the transaction that would store it, naming
// the open one; a replay is still a replay; a linked referral stands beside
// it; another service, or a closed first referral, lets a new one in.
func testOpenReferral(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	ctx := context.Background()
	s := open(t)
	nhs := nhsNumbers()
	first := newIntake("first", nhs())
	mustCreate(t, s, first)

	// again is a new referral of first's person, to service.
	again := func(name, service string) *linkbridge.Intake {
		in := newIntake(name, first.Person.NHSNumber)
		in.Person, in.NewPerson = first.Person, false
		in.Referral.PersonID, in.Referral.PatientID = first.Person.ID, first.Person.ID
		in.Resources = in.Resources[1:] // no Patient
		in.Referral.ServiceODS = service
		return in
	}
	wantOpenConflict := func(t *testing.T, err error, open string) {
		t.Helper()
		checkError(t, err, linkbridge.ECONFLICT, "ServiceRequest/"+open)
		var e *linkbridge.Error
		if errors.As(err, &e); e.Rule != linkbridge.RuleOpenReferral {
			t.Fatalf("Error.Rule = %q, want %q", e.Rule, linkbridge.RuleOpenReferral)
		}
	}

	second := again("second", "RAT01")
	err := s.CreateReferral(ctx, second)
	wantOpenConflict(t, err, first.Referral.ID)
	checkIntakeAbsent(t, s, second)

	// A replay of the open referral is answered as a replay.
	replay := again("replay", "RAT01")
	replay.Referral.Identifier = first.Referral.Identifier
	replay.MessageID = ""
	checkError(t, s.CreateReferral(ctx, replay), linkbridge.EDUPLICATE, "ServiceRequest/"+first.Referral.ID)

	// Linked beside it, by the sender's word or as concurrent.
	for _, kind := range []linkbridge.LinkKind{linkbridge.LinkRelated, linkbridge.LinkConcurrent} {
		in := again(string(kind), "RAT01")
		in.Referral.Link = linkbridge.ReferralLink{ReferralID: first.Referral.ID, Kind: kind}
		mustCreate(t, s, in)
		checkReferral(t, s, in.Referral)
	}
	// To another service.
	mustCreate(t, s, again("other-service", "RAT02"))

	// The first one closed, a re-referral is open in its place; and it
	// holds the key as the first did.
	done := nextVersion(first.Referral, t0.Add(time.Hour), func(r *linkbridge.Referral) {
		r.Status, r.CompletedAt = linkbridge.TaskCompleted, t0.Add(time.Hour)
	})
	mustUpdate(t, s, &linkbridge.ReferralChange{Referral: done})
	rereferral := again("re-referral", "RAT01")
	rereferral.Referral.Link = linkbridge.ReferralLink{ReferralID: first.Referral.ID, Kind: linkbridge.LinkReReferral}
	mustCreate(t, s, rereferral)
	checkReferral(t, s, rereferral.Referral)
	wantOpenConflict(t, s.CreateReferral(ctx, again("third", "RAT01")), rereferral.Referral.ID)
}
