package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// AuditStore is a store with an audit trail.
type AuditStore interface {
	linkbridge.Store
	linkbridge.AuditStore
}

// RunAccess checks per-organisation access (ResourceQuery.Access): the
// keys CreateReferral and UpdateReferral attach, and that a scoped search's
// total and paging count only in-scope resources. Part of the Store
// contract: every store passes it.
func RunAccess(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	t.Run("Scope", func(t *testing.T) { t.Parallel(); testAccessScope(t, open) })
}

// RunAuditStore checks the AuditStore contract.
func RunAuditStore(t *testing.T, open func(t *testing.T) AuditStore) {
	t.Run("RecordAndSearch", func(t *testing.T) { t.Parallel(); testAudit(t, open) })
	t.Run("WithWrites", func(t *testing.T) { t.Parallel(); testAuditWithWrites(t, open) })
}

// ids returns the ids of a search result, in order.
func ids(res *linkbridge.SearchResult) []string {
	var out []string
	for _, r := range res.Resources {
		out = append(out, r.ID)
	}
	return out
}

func testAccessScope(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	ctx := context.Background()
	s := open(t)
	nhs := nhsNumbers()
	// Two practices refer to one service; a and b share a person, but b
	// carries its own Patient (what practice B sent, "pt-b"); c is another
	// practice's to another service.
	a := newIntake("a", nhs())
	a.Referral.ReferrerODS, a.Referral.ServiceODS = "A81001", "Y02662"
	mustCreate(t, s, a)
	b := newIntake("b", "")
	b.Person, b.NewPerson = a.Person, false
	b.Referral.PersonID, b.Referral.PatientID = a.Person.ID, "pt-b"
	b.Referral.ReferrerODS, b.Referral.ServiceODS = "B82002", "Y02662"
	// Practice B cannot see a: its referral stands beside a (intake's choice).
	b.Referral.Link = linkbridge.ReferralLink{ReferralID: a.Referral.ID, Kind: linkbridge.LinkConcurrent}
	b.Resources[0] = resource("Patient", "pt-b", 1, t0.Add(time.Second), "", param("identifier", linkbridge.NHSNumberSystem+"|"+a.Person.NHSNumber))
	b.Resources[1] = resource("ServiceRequest", b.Referral.ID, 1, t0.Add(time.Second), "", param("patient", "Patient/pt-b"))
	b.Resources[2] = taskResource(b.Referral, 1, t0.Add(time.Second))
	mustCreate(t, s, b)
	c := newIntake("c", nhs())
	c.Referral.ReferrerODS, c.Referral.ServiceODS = "C83003", "Y09999"
	mustCreate(t, s, c)
	// A change adds a resource (a CarePlan) to referral a.
	mustUpdate(t, s, &linkbridge.ReferralChange{
		Referral:  nextVersion(a.Referral, t0.Add(time.Minute), nil),
		Resources: []*linkbridge.Resource{resource("CarePlan", "cp-a", 1, t0.Add(time.Minute), "", param("patient", "Patient/"+a.Person.ID))},
	})

	scope := func(keys ...string) *linkbridge.Access { return &linkbridge.Access{Keys: keys} }
	tests := []struct {
		name   string
		typ    string
		access *linkbridge.Access
		want   []string
	}{
		{"UnscopedSeesAll", "Task", nil, []string{"task-a", "task-b", "task-c"}},
		{"ReferrerSeesOwn", "Task", scope(linkbridge.ReferrerAccessKey("A81001")), []string{"task-a"}},
		{"ServiceSeesAddressed", "Task", scope(linkbridge.ServiceAccessKey("Y02662")), []string{"task-a", "task-b"}},
		{"ServiceKeyIsNotReferrerKey", "Task", scope(linkbridge.ReferrerAccessKey("Y02662")), nil},
		{"SeveralPractices", "ServiceRequest", scope(linkbridge.ReferrerAccessKey("A81001"), linkbridge.ReferrerAccessKey("C83003")), []string{"sr-a", "sr-c"}},
		// One person, two referrals: each referrer sees the Patient it
		// sent, never the other's; the service both are addressed to sees
		// both.
		{"OwnPatientOnly", "Patient", scope(linkbridge.ReferrerAccessKey("B82002")), []string{"pt-b"}},
		{"OtherPatientHidden", "Patient", scope(linkbridge.ReferrerAccessKey("A81001")), []string{"p-a"}},
		{"ServiceSeesEachReferralsPatient", "Patient", scope(linkbridge.ServiceAccessKey("Y02662")), []string{"p-a", "pt-b"}},
		{"ChangeGrantsKeys", "CarePlan", scope(linkbridge.ServiceAccessKey("Y02662")), []string{"cp-a"}},
		{"ChangeKeysAreTheReferrals", "CarePlan", scope(linkbridge.ReferrerAccessKey("B82002")), nil},
		{"NoKeysNothing", "Task", scope(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: tt.typ, Count: 10, Access: tt.access})
			if err != nil {
				t.Fatal(err)
			}
			got := ids(res)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ids = %v, want %v", got, tt.want)
			}
			if res.Total != len(tt.want) {
				t.Errorf("Total = %d, want %d", res.Total, len(tt.want))
			}
		})
	}
	t.Run("PagingCountsOnlyInScope", func(t *testing.T) {
		q := &linkbridge.ResourceQuery{Type: "Task", Count: 1, Offset: 1, Access: scope(linkbridge.ServiceAccessKey("Y02662"))}
		res, err := s.SearchResources(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(res); res.Total != 2 || !slices.Equal(got, []string{"task-b"}) {
			t.Errorf("page 2 = %v total %d, want [task-b] total 2", got, res.Total)
		}
	})
	t.Run("ScopedByID", func(t *testing.T) {
		for _, tc := range []struct {
			key  string
			want int
		}{{linkbridge.ReferrerAccessKey("A81001"), 1}, {linkbridge.ReferrerAccessKey("C83003"), 0}} {
			res, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Task", IDs: []string{"task-a"}, Count: 1, Access: scope(tc.key)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != tc.want {
				t.Errorf("Task/task-a with %s: total %d, want %d", tc.key, res.Total, tc.want)
			}
		}
	})
	t.Run("EnteredInErrorEndsAccess", func(t *testing.T) {
		// Referral c is withdrawn as entered in error: its parties lose
		// the access it gave them (its ServiceRequest, Task and Patient),
		// nobody else's changes.
		c2 := nextVersion(c.Referral, t0.Add(3*time.Minute), func(r *linkbridge.Referral) {
			r.Status, r.RequestStatus = linkbridge.TaskEnteredInError, "entered-in-error"
		})
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: c2, Resources: []*linkbridge.Resource{taskResource(c2, 2, t0.Add(3*time.Minute))}})
		for _, typ := range []string{"ServiceRequest", "Task", "Patient"} {
			for _, key := range []string{linkbridge.ReferrerAccessKey("C83003"), linkbridge.ServiceAccessKey("Y09999")} {
				res, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: typ, Count: 10, Access: scope(key)})
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(res); len(got) != 0 {
					t.Errorf("%s with %s after entered-in-error: %v, want none", typ, key, got)
				}
			}
		}
		res, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Task", Count: 10, Access: scope(linkbridge.ServiceAccessKey("Y02662"))})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(res); len(got) != 2 {
			t.Errorf("another service's Tasks after c's withdrawal: %v, want task-a and task-b", got)
		}
	})
	t.Run("EnteredInErrorSelfReferral", func(t *testing.T) {
		// A self-referral carries the service's key alone: entered in
		// error, it loses it (the store panicked looking for a second key).
		d := newIntake("d", nhs())
		d.Referral.ReferrerODS, d.Referral.ServiceODS, d.Referral.Source = "", "Y07777", linkbridge.SourceSelf
		mustCreate(t, s, d)
		d2 := nextVersion(d.Referral, t0.Add(3*time.Minute), func(r *linkbridge.Referral) {
			r.Status, r.RequestStatus = linkbridge.TaskEnteredInError, "entered-in-error"
		})
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: d2, Resources: []*linkbridge.Resource{taskResource(d2, 2, t0.Add(3*time.Minute))}})
		for _, typ := range []string{"ServiceRequest", "Task", "Patient"} {
			res, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: typ, Count: 10, Access: scope(linkbridge.ServiceAccessKey("Y07777"))})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(res); len(got) != 0 {
				t.Errorf("%s of the self-referral after entered-in-error: %v, want none", typ, got)
			}
		}
	})
	t.Run("NewVersionKeepsKeys", func(t *testing.T) {
		a2 := nextVersion(a.Referral, t0.Add(2*time.Minute), nil)
		a2.Version = 3
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: a2, Resources: []*linkbridge.Resource{taskResource(a2, 2, t0.Add(2*time.Minute))}})
		res, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Task", IDs: []string{"task-a"}, Count: 1, Access: scope(linkbridge.ReferrerAccessKey("A81001"))})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != 1 || res.Resources[0].VersionID != 2 {
			t.Errorf("after a new version: total %d, want the version 2 Task", res.Total)
		}
	})
}

func testAudit(t *testing.T, open func(t *testing.T) AuditStore) {
	ctx := context.Background()
	s := open(t)
	recs := []*linkbridge.AuditRecord{
		{Recorded: t0, ClientID: "gp-1", Role: linkbridge.RoleGP, ODS: "A81001", Action: "R", Operation: "read", Method: "GET",
			Route: "/fhir/{type}/{id}", Entities: []string{"Patient/p1"}, Status: 200, RequestID: "r1", Source: "127.0.0.1"},
		{Recorded: t0.Add(time.Second), ClientID: "sp-1", Role: linkbridge.RoleService, ODS: "Y02662", Action: "E", Operation: "search",
			Method: "GET", Route: "/fhir/{type}", Entities: []string{"Task/t1", "Task/t2"}, Query: []string{"patient.identifier"}, Status: 200},
		{Recorded: t0.Add(2 * time.Second), Action: "R", Operation: "read", Method: "GET", Route: "/fhir/{type}/{id}", Status: 401, Outcome: 4},
	}
	for _, r := range recs {
		if err := s.RecordAudit(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.ID == "" {
			t.Fatal("RecordAudit did not assign an ID")
		}
	}
	four := 4
	tests := []struct {
		name string
		f    linkbridge.AuditFilter
		want []*linkbridge.AuditRecord
	}{
		{"AllNewestFirst", linkbridge.AuditFilter{Limit: 10}, []*linkbridge.AuditRecord{recs[2], recs[1], recs[0]}},
		{"ByClient", linkbridge.AuditFilter{ClientID: "sp-1", Limit: 10}, []*linkbridge.AuditRecord{recs[1]}},
		{"ByODS", linkbridge.AuditFilter{ODS: "A81001", Limit: 10}, []*linkbridge.AuditRecord{recs[0]}},
		{"ByEntity", linkbridge.AuditFilter{Entity: "Task/t2", Limit: 10}, []*linkbridge.AuditRecord{recs[1]}},
		{"ByTime", linkbridge.AuditFilter{From: t0.Add(time.Second), To: t0.Add(2 * time.Second), Limit: 10}, []*linkbridge.AuditRecord{recs[1]}},
		{"ByOutcome", linkbridge.AuditFilter{Outcome: &four, Limit: 10}, []*linkbridge.AuditRecord{recs[2]}},
		{"Paged", linkbridge.AuditFilter{Limit: 1, Offset: 1}, []*linkbridge.AuditRecord{recs[1]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total, err := s.SearchAudit(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name != "Paged" && total != len(tt.want) {
				t.Errorf("total = %d, want %d", total, len(tt.want))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d records, want %d", len(got), len(tt.want))
			}
			for i := range got {
				w := *tt.want[i]
				w.Entities, w.Query = nonNil(w.Entities), nonNil(w.Query)
				g := *got[i]
				if g.ID != w.ID || !g.Recorded.Equal(w.Recorded) || g.ClientID != w.ClientID || g.Role != w.Role || g.ODS != w.ODS ||
					g.Operation != w.Operation || g.Status != w.Status || g.Outcome != w.Outcome || g.Route != w.Route ||
					!slices.Equal(nonNil(g.Entities), w.Entities) || !slices.Equal(nonNil(g.Query), w.Query) || g.RequestID != w.RequestID {
					t.Errorf("record %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
	t.Run("Read", func(t *testing.T) {
		got, err := s.ReadAudit(ctx, recs[0].ID)
		if err != nil || got.ClientID != "gp-1" {
			t.Fatalf("ReadAudit = %+v, %v", got, err)
		}
		_, err = s.ReadAudit(ctx, "nope")
		checkError(t, err, linkbridge.ENOTFOUND, "")
	})
	t.Run("LimitRequired", func(t *testing.T) {
		_, _, err := s.SearchAudit(ctx, linkbridge.AuditFilter{})
		checkError(t, err, linkbridge.EINVALID, "")
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writeAudit returns the audit record of a write of entities, as the API
// attaches it to an Intake or a ReferralChange.
func writeAudit(op string, status int, entities ...string) *linkbridge.AuditRecord {
	return &linkbridge.AuditRecord{Recorded: t0, ClientID: "gp-1", Role: linkbridge.RoleGP, ODS: "Y01234", Action: "U",
		Operation: op, Method: "PUT", Route: "/fhir/Task/{id}", Entities: entities, Status: status}
}

// testAuditWithWrites checks Intake.Audit and ReferralChange.Audit: the
// record commits with the write, and a write that is refused stores
// neither.
func testAuditWithWrites(t *testing.T, open func(t *testing.T) AuditStore) {
	ctx := context.Background()
	s := open(t)
	nhs := nhsNumbers()
	// stored fails unless the record with id is stored (want) or not.
	stored := func(t *testing.T, rec *linkbridge.AuditRecord, want bool) {
		t.Helper()
		if rec.ID == "" {
			t.Fatal("the store did not assign the record's ID")
		}
		got, err := s.ReadAudit(ctx, rec.ID)
		switch {
		case !want:
			checkError(t, err, linkbridge.ENOTFOUND, "")
		case err != nil:
			t.Fatalf("ReadAudit(%s) returned unexpected error: %v", rec.ID, err)
		case got.Operation != rec.Operation || got.Status != rec.Status || !got.Recorded.Equal(rec.Recorded) ||
			!slices.Equal(got.Entities, rec.Entities):
			t.Errorf("stored record = %+v, want %+v", got, rec)
		}
	}
	// byEntity counts the records that name entity.
	byEntity := func(t *testing.T, entity string) int {
		t.Helper()
		_, total, err := s.SearchAudit(ctx, linkbridge.AuditFilter{Entity: entity, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return total
	}

	a := newIntake("a", nhs())
	a.Audit = writeAudit("create", 201, "Patient/p-a", "ServiceRequest/sr-a", "Task/task-a")
	mustCreate(t, s, a)
	t.Run("IntakeStoresItsRecord", func(t *testing.T) {
		stored(t, a.Audit, true)
		if n := byEntity(t, "Task/task-a"); n != 1 {
			t.Errorf("records of Task/task-a = %d, want 1 (the entity index is written with the record)", n)
		}
	})
	t.Run("RefusedIntakeStoresNeither", func(t *testing.T) {
		dup := newIntake("a2", nhs())
		dup.Referral.Identifier = a.Referral.Identifier // a's referral again
		dup.Audit = writeAudit("create", 201, "ServiceRequest/sr-a2")
		checkError(t, s.CreateReferral(ctx, dup), linkbridge.EDUPLICATE, "ServiceRequest/sr-a")
		checkIntakeAbsent(t, s, dup)
		stored(t, dup.Audit, false)
		if n := byEntity(t, "ServiceRequest/sr-a2"); n != 0 {
			t.Errorf("records of the refused intake = %d, want 0", n)
		}
	})
	t.Run("UntimedRecordRefusesTheIntake", func(t *testing.T) {
		b := newIntake("b", nhs())
		b.Audit = &linkbridge.AuditRecord{Operation: "create"}
		checkError(t, s.CreateReferral(ctx, b), linkbridge.EINVALID, "")
		checkIntakeAbsent(t, s, b)
	})

	v2 := nextVersion(a.Referral, t0.Add(time.Minute), func(r *linkbridge.Referral) { r.Status = linkbridge.TaskAccepted })
	change := &linkbridge.ReferralChange{Referral: v2, Resources: []*linkbridge.Resource{taskResource(v2, 2, t0.Add(time.Minute))},
		MessageID: "msg-a-accept", Audit: writeAudit("update", 200, "Task/task-a")}
	mustUpdate(t, s, change)
	t.Run("ChangeStoresItsRecord", func(t *testing.T) {
		stored(t, change.Audit, true)
		if n := byEntity(t, "Task/task-a"); n != 2 {
			t.Errorf("records of Task/task-a = %d, want 2", n)
		}
	})
	t.Run("RefusedChangeStoresNeither", func(t *testing.T) {
		tests := []struct {
			name string
			ch   func() *linkbridge.ReferralChange
			code string
		}{
			{"StaleVersion", func() *linkbridge.ReferralChange { // v2 again
				return &linkbridge.ReferralChange{Referral: v2, Resources: []*linkbridge.Resource{taskResource(v2, 2, t0.Add(time.Minute))}}
			}, linkbridge.EPRECONDITION},
			{"ReplayedMessage", func() *linkbridge.ReferralChange {
				v3 := nextVersion(v2, t0.Add(2*time.Minute), nil)
				return &linkbridge.ReferralChange{Referral: v3, Resources: []*linkbridge.Resource{taskResource(v3, 3, t0.Add(2*time.Minute))},
					MessageID: "msg-a-accept"}
			}, linkbridge.EDUPLICATE},
			{"UnknownReferral", func() *linkbridge.ReferralChange {
				return &linkbridge.ReferralChange{Referral: nextVersion(newIntake("zz", "").Referral, t0, nil)}
			}, linkbridge.ENOTFOUND},
			{"UntimedRecord", func() *linkbridge.ReferralChange {
				v3 := nextVersion(v2, t0.Add(2*time.Minute), nil)
				return &linkbridge.ReferralChange{Referral: v3, Audit: &linkbridge.AuditRecord{Operation: "update"}}
			}, linkbridge.EINVALID},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ch := tt.ch()
				if ch.Audit == nil {
					ch.Audit = writeAudit("update", 200, "Task/task-a", "Refused/"+tt.name)
				}
				checkError(t, s.UpdateReferral(ctx, ch), tt.code, "")
				if ch.Audit.ID != "" {
					stored(t, ch.Audit, false)
				}
				if n := byEntity(t, "Refused/"+tt.name); n != 0 {
					t.Errorf("records of the refused change = %d, want 0", n)
				}
				checkReferral(t, s, v2)
			})
		}
	})
	// Changes racing for one version (in one group commit, where the store
	// has one): the record of each loser rolls back with it.
	t.Run("RacingChanges", func(t *testing.T) {
		const n = 8
		v3 := nextVersion(v2, t0.Add(3*time.Minute), nil)
		errs := make(chan error, n)
		for i := range n {
			go func() {
				errs <- s.UpdateReferral(ctx, &linkbridge.ReferralChange{Referral: v3,
					Resources: []*linkbridge.Resource{taskResource(v3, 3, t0.Add(3*time.Minute))},
					Audit:     writeAudit("update", 200, "Task/task-a", "Race/"+string(rune('a'+i)))})
			}()
		}
		won := 0
		for range n {
			switch err := <-errs; linkbridge.ErrorCode(err) {
			case "":
				won++
			case linkbridge.EPRECONDITION:
			default:
				t.Errorf("racing change: unexpected error %v", err)
			}
		}
		recs := 0
		for i := range n {
			recs += byEntity(t, "Race/"+string(rune('a'+i)))
		}
		if won != 1 || recs != 1 {
			t.Errorf("%d changes won and %d records stored, want 1 and 1", won, recs)
		}
	})
}
