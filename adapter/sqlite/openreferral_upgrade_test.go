package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/linkbridge/linkbridge"
)

// TestUpgradeOpenReferral opens a database that migrations 001–014 built
// and that holds two open referrals of one person to one service (r1
// received first, r2 later), a closed one (r3) and one to another service
// (r4): migration 015 gives r1 the open key and links r2 to it as
// concurrent, leaving r3 and r4 alone (docs/domain.md#one-open-referral);
// a new open referral of the person to the service is then refused naming
// r1.
func TestUpgradeOpenReferral(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "linkbridge.db")
	const t0, t1 = "2025-03-14T09:30:00.000000000Z", "2025-03-15T09:30:00.000000000Z"
	old := oldDatabase(t, path, "015",
		`INSERT INTO person (id, nhs_number, birth_date, gp_ods, created_at) VALUES ('P', '9434765919', '1956-07-21', 'A81001', '`+t0+`')`,
		`INSERT INTO referral (id, task_id, person_id, identifier_system, identifier_value, status, request_status,
			referrer_ods, service_ods, authored_on, received_at, updated_at, version) VALUES
			('r2', 't2', 'P', 'urn:b', '2', 'accepted', 'active', 'B82002', 'Y02662', '`+t1+`', '`+t1+`', '`+t1+`', 2),
			('r1', 't1', 'P', 'urn:a', '1', 'requested', 'active', 'A81001', 'Y02662', '`+t0+`', '`+t0+`', '`+t0+`', 1),
			('r3', 't3', 'P', 'urn:a', '3', 'completed', 'active', 'A81001', 'Y02662', '`+t0+`', '`+t0+`', '`+t0+`', 3),
			('r4', 't4', 'P', 'urn:a', '4', 'requested', 'active', 'A81001', 'Y09999', '`+t1+`', '`+t1+`', '`+t1+`', 1)`)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := mustOpenPath(t, path)
	for id, want := range map[string]linkbridge.ReferralLink{
		"r1": {}, "r2": {ReferralID: "r1", Kind: linkbridge.LinkConcurrent}, "r3": {}, "r4": {},
	} {
		r, err := db.FindReferral(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Link != want {
			t.Errorf("after upgrade, %s.Link = %+v, want %+v", id, r.Link, want)
		}
	}
	r1, err := db.FindReferral(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	in := &linkbridge.Intake{Person: &linkbridge.Person{ID: "P", NHSNumber: "9434765919"}, Referral: func() *linkbridge.Referral {
		r := *r1
		r.ID, r.TaskID, r.Identifier = "r5", "t5", linkbridge.Identifier{System: "urn:a", Value: "5"}
		return &r
	}()}
	err = db.CreateReferral(ctx, in)
	var e *linkbridge.Error
	if !errors.As(err, &e) || e.Rule != linkbridge.RuleOpenReferral || e.Existing != "ServiceRequest/r1" {
		t.Errorf("a new open referral after the upgrade: %v, want the open-referral conflict naming ServiceRequest/r1", err)
	}
}
