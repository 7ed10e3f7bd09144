package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared/sqlsharedtest"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
)

// mustOpen opens a store on a new file under tb.TempDir() and closes it at
// cleanup. Fatal on error.
func mustOpen(tb testing.TB) *sqlite.DB {
	tb.Helper()
	return mustOpenPath(tb, filepath.Join(tb.TempDir(), "linkbridge.db"))
}

// mustOpenPath opens a store on path and closes it at cleanup. Fatal on error.
func mustOpenPath(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlsharedtest.NewLogger(tb))
	if err != nil {
		tb.Fatalf("Open(%s) returned unexpected error: %v", path, err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close returned unexpected error: %v", err)
		}
	})
	return db
}

// TestSuites runs every adapter/storetest suite on SQLite.
func TestSuites(t *testing.T) {
	t.Parallel()
	sqlsharedtest.RunSuites(t, mustOpen)
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("MigrationsRecordedOnce", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "linkbridge.db")
		db := mustOpenPath(t, path)
		first, err := db.Migrations(ctx)
		if err != nil {
			t.Fatalf("Migrations returned unexpected error: %v", err)
		}
		if len(first) == 0 || first[0] != "001_initial.sql" {
			t.Fatalf("Migrations = %v, want 001_initial.sql first", first)
		}
		v, err := db.MigrationVersion(ctx)
		if err != nil {
			t.Fatalf("MigrationVersion returned unexpected error: %v", err)
		}
		// The version is the last migration's number (numbers may skip
		// one reserved for a branch not merged yet).
		if want, _ := strconv.Atoi(first[len(first)-1][:3]); v != want {
			t.Fatalf("MigrationVersion = %d, want %d", v, want)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close returned unexpected error: %v", err)
		}

		// Reopening runs nothing again (001 would fail: its tables exist).
		db = mustOpenPath(t, path)
		again, err := db.Migrations(ctx)
		if err != nil {
			t.Fatalf("Migrations returned unexpected error: %v", err)
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Fatalf("Migrations after reopen mismatch (-want +got):\n%s", diff)
		}
		if v2, err := db.MigrationVersion(ctx); err != nil || v2 != v {
			t.Fatalf("MigrationVersion after reopen = %d, %v; want %d", v2, err, v)
		}
	})

	t.Run("FileModes", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "state", "linkbridge")
		path := filepath.Join(dir, "linkbridge.db")
		db := mustOpenPath(t, path)
		mustCreate(t, db, 0)

		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o700 {
			t.Fatalf("directory mode = %o, want 700", got)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Fatalf("%s mode = %o, want 600", filepath.Base(p), got)
			}
		}
	})

	t.Run("ExistingFileMadePrivate", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "linkbridge.db")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		mustOpenPath(t, path)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Fatalf("file mode = %o, want 600", got)
		}
	})

	t.Run("DataSurvivesReopen", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "linkbridge.db")
		db := mustOpenPath(t, path)
		in := mustCreate(t, db, 0)
		if err := db.Close(); err != nil {
			t.Fatalf("Close returned unexpected error: %v", err)
		}

		db = mustOpenPath(t, path)
		got, err := db.FindReferral(ctx, in.Referral.ID)
		if err != nil {
			t.Fatalf("FindReferral after reopen returned unexpected error: %v", err)
		}
		if diff := cmp.Diff(in.Referral, got); diff != "" {
			t.Fatalf("FindReferral after reopen mismatch (-want +got):\n%s", diff)
		}
		// The message id is remembered too.
		err = db.CreateReferral(ctx, intake(1, in.MessageID))
		if code := linkbridge.ErrorCode(err); code != linkbridge.EDUPLICATE {
			t.Fatalf("replayed message after reopen: error code %q, want %q (error: %v)", code, linkbridge.EDUPLICATE, err)
		}
	})

	t.Run("ErrClosed", func(t *testing.T) {
		t.Parallel()
		db := mustOpen(t)
		if err := db.Close(); err != nil {
			t.Fatalf("Close returned unexpected error: %v", err)
		}
		if err := db.CreateReferral(ctx, intake(0, "")); err != sqlite.ErrClosed {
			t.Fatalf("CreateReferral after Close: error %v, want ErrClosed", err)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("second Close returned unexpected error: %v", err)
		}
	})

	t.Run("ErrMemory", func(t *testing.T) {
		t.Parallel()
		if _, err := sqlite.Open(ctx, ":memory:", nil); err == nil {
			t.Fatal("Open(:memory:) returned no error")
		}
	})
}

func TestCreateReferral(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("ErrResourceExists", func(t *testing.T) {
		t.Parallel()
		db := mustOpen(t)
		first := mustCreate(t, db, 0)
		second := intake(1, "")
		second.Resources = append(second.Resources, first.Resources[1])
		err := db.CreateReferral(ctx, second)
		if code := linkbridge.ErrorCode(err); code != linkbridge.ECONFLICT {
			t.Fatalf("error code %q, want %q (error: %v)", code, linkbridge.ECONFLICT, err)
		}
	})

	t.Run("ErrPersonMissing", func(t *testing.T) {
		t.Parallel()
		db := mustOpen(t)
		in := intake(0, "")
		in.NewPerson = false
		err := db.CreateReferral(ctx, in)
		if code := linkbridge.ErrorCode(err); code != linkbridge.ENOTFOUND {
			t.Fatalf("error code %q, want %q (error: %v)", code, linkbridge.ENOTFOUND, err)
		}
	})

	t.Run("ErrCanceled", func(t *testing.T) {
		t.Parallel()
		db := mustOpen(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		in := intake(0, "")
		if err := db.CreateReferral(cctx, in); err != context.Canceled {
			t.Fatalf("CreateReferral with a canceled context: error %v, want context.Canceled", err)
		}
		if _, err := db.FindReferral(ctx, in.Referral.ID); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
			t.Fatalf("FindReferral after a canceled create: error %v, want ENOTFOUND", err)
		}
	})
}

// nhsNumber returns a valid NHS number unique to i: the stem 600000000+2i,
// or the next stem when the first one's check digit would be 10 (for an even
// stem, the next one's check digit differs by 2, so one of the two is valid).
func nhsNumber(i int64) string {
	for stem := 600000000 + 2*i; ; stem++ {
		s := strconv.FormatInt(stem, 10)
		if check, ok := linkbridge.NHSCheckDigit(s); ok {
			return s + strconv.Itoa(check)
		}
	}
}

// intake builds a realistic intake number i: a new person, the referral and
// its Patient, ServiceRequest and Task (bodies of about 0.5 to 1 KiB each).
func intake(i int64, messageID string) *linkbridge.Intake {
	now := time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC).Add(time.Duration(i) * time.Microsecond)
	n := strconv.FormatInt(i, 10)
	p := &linkbridge.Person{ID: "p-" + n, NHSNumber: nhsNumber(i), BirthDate: "1956-07-21", GPODS: "Y01234", CreatedAt: now}
	r := &linkbridge.Referral{
		ID: "sr-" + n, TaskID: "task-" + n, PersonID: p.ID, PatientID: p.ID,
		Identifier:    linkbridge.Identifier{System: "https://fhir.example-gp.nhs.uk/Id/referral", Value: "REF-" + n},
		Status:        linkbridge.TaskRequested,
		RequestStatus: "active", Priority: "routine", ReferrerODS: "Y01234", ServiceODS: "RAT01",
		Reasons:    []linkbridge.Coding{{System: linkbridge.SNOMEDSystem, Code: "423521000000102", Display: "Loneliness"}},
		AuthoredOn: now.Add(-time.Hour), ReceivedAt: now, UpdatedAt: now, Version: 1,
	}
	res := func(typ, id, body string, params ...linkbridge.SearchParam) *linkbridge.Resource {
		b := fmt.Sprintf(`{"resourceType":%q,"id":%q,"meta":{"versionId":"1","lastUpdated":%q},%s}`,
			typ, id, now.Format(time.RFC3339Nano), body)
		return &linkbridge.Resource{Type: typ, ID: id, VersionID: 1, LastUpdated: now, Body: []byte(b), Params: params}
	}
	sp := func(name, value string) linkbridge.SearchParam {
		return linkbridge.SearchParam{Name: name, Value: value}
	}
	return &linkbridge.Intake{
		Person: p, NewPerson: true, Referral: r, MessageID: messageID,
		Resources: []*linkbridge.Resource{
			res("Patient", p.ID, `"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"`+p.NHSNumber+`"}],`+
				`"name":[{"use":"official","family":"Testpatient","given":["Alex"]}],"gender":"unknown","birthDate":"1956-07-21",`+
				`"address":[{"line":["1 Test Street"],"city":"Leeds","postalCode":"LS1 1AA"}],`+
				`"generalPractitioner":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"Y01234"}}]`,
				sp("identifier", linkbridge.NHSNumberSystem+"|"+p.NHSNumber), sp("birthdate", "1956-07-21")),
			res("ServiceRequest", r.ID, `"identifier":[{"system":"`+r.Identifier.System+`","value":"`+r.Identifier.Value+`"}],`+
				`"status":"active","intent":"order","priority":"routine",`+
				`"code":{"coding":[{"system":"http://snomed.info/sct","code":"871731000000106","display":"Referral to social prescribing service"}]},`+
				`"reasonCode":[{"coding":[{"system":"http://snomed.info/sct","code":"423521000000102","display":"Loneliness"}]}],`+
				`"subject":{"reference":"Patient/`+p.ID+`"},"authoredOn":"2025-03-14T08:30:00Z",`+
				`"requester":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"Y01234"}},`+
				`"performer":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RAT01"}}]`,
				sp("identifier", r.Identifier.String()), sp("patient", "Patient/"+p.ID), sp("status", "active"),
				sp("code", linkbridge.SNOMEDSystem+"|871731000000106")),
			res("Task", r.TaskID, `"status":"requested","intent":"order","focus":{"reference":"ServiceRequest/`+r.ID+`"},`+
				`"for":{"reference":"Patient/`+p.ID+`"},"authoredOn":"2025-03-14T09:30:00Z",`+
				`"owner":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RAT01"}}`,
				sp("focus", "ServiceRequest/"+r.ID), sp("patient", "Patient/"+p.ID), sp("status", "requested"),
				sp("owner", "Organization/RAT01")),
		},
	}
}

// mustCreate stores intake number i. Fatal on error.
func mustCreate(tb testing.TB, db *sqlite.DB, i int64) *linkbridge.Intake {
	tb.Helper()
	in := intake(i, "msg-"+strconv.FormatInt(i, 10))
	if err := db.CreateReferral(context.Background(), in); err != nil {
		tb.Fatalf("CreateReferral returned unexpected error: %v", err)
	}
	return in
}

// BenchmarkCreateReferral measures durable intake: each op is one
// CreateReferral of a new person's referral (person, referral, message id
// and three resources with 13 search parameters). "Concurrent" has 64
// callers per GOMAXPROCS, as a busy HTTP server would, and measures
// throughput with group commit; "Serial" has one caller, and so measures the
// latency of one durable commit.
func BenchmarkCreateReferral(b *testing.B) {
	for _, bc := range []struct {
		name        string
		parallelism int
	}{
		{"Concurrent", 64},
		{"Serial", 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = db.Close() })
			var seq atomic.Int64
			create := func() error {
				i := seq.Add(1)
				return db.CreateReferral(context.Background(), intake(i, "msg-"+strconv.FormatInt(i, 10)))
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := readProcStat()
			if bc.parallelism == 0 {
				for b.Loop() {
					if err := create(); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.SetParallelism(bc.parallelism)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := create(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "referrals/s")
			// CPU time and bytes written per referral depend less on what
			// else the machine runs than throughput does.
			if end := readProcStat(); start.ok && end.ok {
				b.ReportMetric(float64((end.cpu-start.cpu).Microseconds())/float64(b.N), "cpu-µs/op")
				b.ReportMetric(float64(end.wchar-start.wchar)/float64(b.N), "wB/op")
			}
		})
	}
}

// TestUpgrade opens a database that only 001_initial.sql built and that
// holds a referral, as a deployed gateway's would be: the later migrations
// apply, and the stored referral reads with the new fields unset and works
// with the case record.
func TestUpgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "linkbridge.db")

	script, err := os.ReadFile(filepath.Join("migration", "001_initial.sql"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	const at = "2025-03-14T09:30:00.000000000Z"
	for _, q := range []string{
		`CREATE TABLE migrations (name TEXT NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL) STRICT`,
		string(script),
		`INSERT INTO migrations VALUES ('001_initial.sql', '` + at + `')`,
		`INSERT INTO person VALUES ('p-old', '9434765919', '1956-07-21', 'Y01234', '` + at + `')`,
		`INSERT INTO referral (id, task_id, person_id, identifier_system, identifier_value, status, request_status,
			referrer_ods, service_ods, authored_on, received_at, updated_at, version)
			VALUES ('sr-old', 'task-old', 'p-old', 'urn:x', 'REF-old', 'requested', 'active', 'Y01234', 'RAT01',
			'` + at + `', '` + at + `', '` + at + `', 1)`,
		`INSERT INTO resource VALUES ('Task', 'task-old', 1, '` + at + `', X'7B7D')`,
		`INSERT INTO resource_history VALUES ('Task', 'task-old', 1, '` + at + `', X'7B7D')`,
		`INSERT INTO search_param VALUES ('Task', 'task-old', 'status', 'requested')`,
		`INSERT INTO message VALUES ('msg-old', '` + at + `')`,
	} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatalf("building a 001 database: %v", err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := mustOpenPath(t, path)
	names, err := db.Migrations(ctx)
	if err != nil {
		t.Fatalf("Migrations returned unexpected error: %v", err)
	}
	if len(names) < 2 || names[1] != "002_case_record.sql" {
		t.Fatalf("Migrations = %v, want 002_case_record.sql applied", names)
	}

	t0, _ := time.Parse(time.RFC3339, "2025-03-14T09:30:00Z")
	want := &linkbridge.Referral{
		ID: "sr-old", TaskID: "task-old", PersonID: "p-old", PatientID: "p-old", // migration 007: the person's Patient
		Identifier: linkbridge.Identifier{System: "urn:x", Value: "REF-old"},
		Status:     linkbridge.TaskRequested, RequestStatus: "active", ReferrerODS: "Y01234", ServiceODS: "RAT01",
		AuthoredOn: t0, ReceivedAt: t0, UpdatedAt: t0, Version: 1,
		Source: linkbridge.SourceGPPractice, // migration 010: read from the ODS code
	}
	got, err := db.FindReferral(ctx, "sr-old")
	if err != nil {
		t.Fatalf("FindReferral returned unexpected error: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("FindReferral after upgrade mismatch (-want +got):\n%s", diff)
	}
	if ok, err := db.MessageProcessed(ctx, "msg-old"); err != nil || !ok {
		t.Fatalf("MessageProcessed(msg-old) after upgrade = %v, %v; want true", ok, err)
	}
	if res, err := db.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Task", Count: 10,
		Params: []linkbridge.ParamFilter{{Name: "status", Values: []string{"requested"}}}}); err != nil || res.Total != 1 {
		t.Fatalf("SearchResources(Task?status=requested) after upgrade = %+v, %v; want 1 match", res, err)
	}
	if h, err := db.ResourceHistory(ctx, "Task", "task-old"); err != nil || len(h) != 1 || h[0].VersionID != 1 {
		t.Fatalf("ResourceHistory(Task/task-old) after upgrade = %v, %v; want version 1", h, err)
	}

	// The old referral has no history; its next change starts one.
	rec, err := db.GetCaseRecord(ctx, "sr-old")
	if err != nil {
		t.Fatalf("GetCaseRecord returned unexpected error: %v", err)
	}
	if len(rec.Events) != 0 || rec.Person.ID != "p-old" {
		t.Fatalf("GetCaseRecord after upgrade = person %s, events %v; want p-old and none", rec.Person.ID, rec.Events)
	}
	next := *want
	next.Version, next.Status, next.LinkWorker = 2, linkbridge.TaskAccepted, linkbridge.LinkWorker{ID: "lw-1"}
	task := &linkbridge.Resource{Type: "Task", ID: "task-old", VersionID: 2, LastUpdated: t0.Add(time.Hour), Body: []byte(`{"v":2}`),
		Params: []linkbridge.SearchParam{{Name: "status", Value: "accepted"}}}
	writeBack := &linkbridge.OutboxMessage{OrderKey: "p-old", ResourceType: "Task", ResourceID: "task-old", Version: 2,
		Body: []byte(`{"v":2}`), NHSNumber: "9434765919", CreatedAt: t0.Add(time.Hour)}
	if err := db.UpdateReferral(ctx, &linkbridge.ReferralChange{Referral: &next, Resources: []*linkbridge.Resource{task},
		Event: &linkbridge.ReferralEvent{Action: "accept", Actor: "lw-1"}, Outbox: []*linkbridge.OutboxMessage{writeBack}}); err != nil {
		t.Fatalf("UpdateReferral after upgrade returned unexpected error: %v", err)
	}
	if msgs, err := db.ClaimOutbox(ctx, linkbridge.ChannelWriteBack, "w1", 10, t0.Add(2*time.Hour)); err != nil || len(msgs) != 1 || msgs[0].ID != writeBack.ID {
		t.Fatalf("ClaimOutbox after upgrade = %v, %v; want the write-back of the change", msgs, err)
	}
	if h, err := db.ResourceHistory(ctx, "Task", "task-old"); err != nil || len(h) != 2 || string(h[1].Body) != "{}" {
		t.Fatalf("ResourceHistory(Task/task-old) after an update = %v, %v; want versions 2 and 1", h, err)
	}
	for status, want := range map[string]int{"requested": 0, "accepted": 1} {
		res, err := db.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Task", Count: 10,
			Params: []linkbridge.ParamFilter{{Name: "status", Values: []string{status}}}})
		if err != nil || res.Total != want {
			t.Fatalf("SearchResources(Task?status=%s) after an update = %+v, %v; want %d matches", status, res, err, want)
		}
	}
	list, total, err := db.ListReferrals(ctx, linkbridge.ReferralFilter{LinkWorkerID: "lw-1", Limit: 10})
	if err != nil || total != 1 || len(list) != 1 {
		t.Fatalf("ListReferrals(lw-1) after upgrade = %v, %d, %v; want sr-old", list, total, err)
	}
}

func TestUpdateReferralCaseRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// setup stores intake 0 and returns its next version.
	setup := func(t *testing.T) (*sqlite.DB, *linkbridge.Referral) {
		db := mustOpen(t)
		in := mustCreate(t, db, 0)
		next := *in.Referral
		next.Version, next.Status, next.UpdatedAt = 2, linkbridge.TaskAccepted, next.UpdatedAt.Add(time.Hour)
		return db, &next
	}

	t.Run("EventDefaults", func(t *testing.T) {
		t.Parallel()
		db, next := setup(t)
		if err := db.UpdateReferral(ctx, &linkbridge.ReferralChange{Referral: next,
			Event: &linkbridge.ReferralEvent{Action: "accept", Actor: "lw-1"}}); err != nil {
			t.Fatalf("UpdateReferral returned unexpected error: %v", err)
		}
		rec, err := db.GetCaseRecord(ctx, next.ID)
		if err != nil {
			t.Fatalf("GetCaseRecord returned unexpected error: %v", err)
		}
		want := &linkbridge.ReferralEvent{ReferralID: next.ID, Version: 2, At: next.UpdatedAt, Action: "accept", Actor: "lw-1", Status: linkbridge.TaskAccepted}
		if len(rec.Events) != 2 {
			t.Fatalf("GetCaseRecord events = %v, want received and accept", rec.Events)
		}
		if diff := cmp.Diff(want, rec.Events[1]); diff != "" {
			t.Fatalf("event mismatch (-want +got):\n%s", diff)
		}
	})

	for _, tc := range []struct {
		name   string
		change func(ch *linkbridge.ReferralChange)
	}{
		{"ErrContactOfOtherReferral", func(ch *linkbridge.ReferralChange) {
			ch.Contacts = []*linkbridge.Contact{{ID: "c1", ReferralID: "sr-other", Mode: linkbridge.ContactPhone}}
		}},
		{"ErrContactWithoutID", func(ch *linkbridge.ReferralChange) {
			ch.Contacts = []*linkbridge.Contact{{Mode: linkbridge.ContactPhone}}
		}},
		{"ErrMeasureOfOtherReferral", func(ch *linkbridge.ReferralChange) {
			ch.Measures = []*linkbridge.Measure{{ID: "m1", ReferralID: "sr-other"}}
		}},
		{"ErrMeasureWithoutID", func(ch *linkbridge.ReferralChange) { ch.Measures = []*linkbridge.Measure{nil} }},
		{"ErrEventOfOtherVersion", func(ch *linkbridge.ReferralChange) {
			ch.Event = &linkbridge.ReferralEvent{Version: 3, Action: "accept"}
		}},
		{"ErrEventOfOtherReferral", func(ch *linkbridge.ReferralChange) {
			ch.Event = &linkbridge.ReferralEvent{ReferralID: "sr-other", Action: "accept"}
		}},
		{"ErrEventWithoutAction", func(ch *linkbridge.ReferralChange) { ch.Event = &linkbridge.ReferralEvent{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, next := setup(t)
			ch := &linkbridge.ReferralChange{Referral: next}
			tc.change(ch)
			err := db.UpdateReferral(ctx, ch)
			if code := linkbridge.ErrorCode(err); code != linkbridge.EINVALID {
				t.Fatalf("error code %q, want %q (error: %v)", code, linkbridge.EINVALID, err)
			}
			if got, err := db.FindReferral(ctx, next.ID); err != nil || got.Version != 1 {
				t.Fatalf("FindReferral after a refused change = %v, %v; want version 1", got, err)
			}
		})
	}
}

func TestUpdateReferralOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in := intake(0, "")
	next := *in.Referral
	next.Version, next.UpdatedAt = 2, next.UpdatedAt.Add(time.Hour)
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "linkbridge.db"))
	db.Now = func() time.Time { return next.UpdatedAt }
	if err := db.Open(ctx); err != nil {
		t.Fatalf("Open returned unexpected error: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.CreateReferral(ctx, in); err != nil {
		t.Fatalf("CreateReferral returned unexpected error: %v", err)
	}
	msg := func() *linkbridge.OutboxMessage {
		return &linkbridge.OutboxMessage{OrderKey: in.Person.ID, ResourceType: "Task", ResourceID: in.Referral.TaskID,
			Version: 2, Body: []byte(`{"resourceType":"Task"}`), NHSNumber: in.Person.NHSNumber}
	}

	for _, tc := range []struct {
		name string
		bad  func(m *linkbridge.OutboxMessage)
	}{
		{"ErrOtherReferral", func(m *linkbridge.OutboxMessage) { m.ReferralID = "sr-other" }},
		{"ErrNoOrderKey", func(m *linkbridge.OutboxMessage) { m.OrderKey = "" }},
		{"ErrNoResource", func(m *linkbridge.OutboxMessage) { m.ResourceID = "" }},
		{"ErrNoVersion", func(m *linkbridge.OutboxMessage) { m.Version = 0 }},
		{"ErrNoBody", func(m *linkbridge.OutboxMessage) { m.Body = nil }},
		{"ErrNotPending", func(m *linkbridge.OutboxMessage) { m.State = linkbridge.OutboxDelivered }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := msg()
			tc.bad(bad)
			err := db.UpdateReferral(ctx, &linkbridge.ReferralChange{Referral: &next, Outbox: []*linkbridge.OutboxMessage{msg(), bad}})
			if code := linkbridge.ErrorCode(err); code != linkbridge.EINVALID {
				t.Fatalf("error code %q, want %q (error: %v)", code, linkbridge.EINVALID, err)
			}
			if got, err := db.FindReferral(ctx, next.ID); err != nil || got.Version != 1 {
				t.Fatalf("FindReferral after a refused change = %v, %v; want version 1", got, err)
			}
			if got, err := db.ListOutbox(ctx, linkbridge.OutboxFilter{}); err != nil || len(got) != 0 {
				t.Fatalf("ListOutbox after a refused change = %v, %v; want none", got, err)
			}
		})
	}

	// A message without a referral, creation or due time is the change's,
	// created and due when it is stored.
	m := msg()
	if err := db.UpdateReferral(ctx, &linkbridge.ReferralChange{Referral: &next, Outbox: []*linkbridge.OutboxMessage{m}}); err != nil {
		t.Fatalf("UpdateReferral returned unexpected error: %v", err)
	}
	got, err := db.GetOutbox(ctx, m.ID)
	if err != nil {
		t.Fatalf("GetOutbox returned unexpected error: %v", err)
	}
	if got.ReferralID != next.ID || !got.CreatedAt.Equal(next.UpdatedAt) || !got.AvailableAt.Equal(next.UpdatedAt) ||
		got.State != linkbridge.OutboxPending {
		t.Fatalf("stored message = %+v; want referral %s, created and due at %s, pending", got, next.ID, next.UpdatedAt)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Fatalf("enqueued message differs from the stored one (-enqueued +stored):\n%s", diff)
	}
}

func TestCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	walSize := func(t *testing.T, path string) int64 {
		t.Helper()
		fi, err := os.Stat(path + "-wal")
		if errors.Is(err, fs.ErrNotExist) {
			return 0
		} else if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}

	// Without checkpoints, 300 serial intakes grow the WAL to about 40 MiB (one
	// commit each, tens of pages a commit). The background checkpoints keep
	// it to a few MiB, and Close empties it.
	t.Run("BoundsTheWAL", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "linkbridge.db")
		db := sqlite.NewDB(path)
		db.CheckpointInterval = 10 * time.Millisecond
		if err := db.Open(ctx); err != nil {
			t.Fatalf("Open returned unexpected error: %v", err)
		}
		t.Cleanup(func() { _ = db.Close() })
		for i := range int64(300) {
			mustCreate(t, db, i)
		}
		if got, limit := walSize(t, path), int64(12<<20); got > limit {
			t.Errorf("WAL is %d bytes after 300 intakes, want at most %d", got, limit)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close returned unexpected error: %v", err)
		}
		if got := walSize(t, path); got != 0 {
			t.Errorf("WAL is %d bytes after Close, want 0", got)
		}
		db = mustOpenPath(t, path)
		if _, err := db.FindReferral(ctx, "sr-299"); err != nil {
			t.Fatalf("FindReferral after reopen returned unexpected error: %v", err)
		}
	})

	t.Run("Automatic", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "linkbridge.db")
		db := sqlite.NewDB(path)
		db.CheckpointInterval = -1
		if err := db.Open(ctx); err != nil {
			t.Fatalf("Open returned unexpected error: %v", err)
		}
		t.Cleanup(func() { _ = db.Close() })
		for i := range int64(50) {
			mustCreate(t, db, i)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close returned unexpected error: %v", err)
		}
		db = mustOpenPath(t, path)
		if _, err := db.FindReferral(ctx, "sr-49"); err != nil {
			t.Fatalf("FindReferral after reopen returned unexpected error: %v", err)
		}
	})
}
