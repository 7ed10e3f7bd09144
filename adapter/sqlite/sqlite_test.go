package sqlite_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/adapter/storetest"
)

// testLogger returns a logger writing to t.Log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tLogWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tLogWriter writes to a test's log.
type tLogWriter struct{ tb testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(string(p))
	return len(p), nil
}

// mustOpen opens a store on a new file under tb.TempDir() and closes it at
// cleanup. Fatal on error.
func mustOpen(tb testing.TB) *sqlite.DB {
	tb.Helper()
	return mustOpenPath(tb, filepath.Join(tb.TempDir(), "linkbridge.db"))
}

// mustOpenPath opens a store on path and closes it at cleanup. Fatal on error.
func mustOpenPath(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), path, testLogger(tb))
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

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) linkbridge.Store { return mustOpen(t) })
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
		if want := len(first); v != want {
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
		sum := 0
		for j := 0; j < 9; j++ {
			sum += int(s[j]-'0') * (10 - j)
		}
		if check := (11 - sum%11) % 11; check != 10 {
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
		ID: "sr-" + n, TaskID: "task-" + n, PersonID: p.ID,
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
		})
	}
}
