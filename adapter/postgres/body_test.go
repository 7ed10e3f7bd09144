package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/postgres"
)

// zstdMagic starts every zstd frame: a compressed body.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// rawConn connects to the schema at u for SQL the store's API does not
// offer. Closed at cleanup.
func rawConn(t *testing.T, u string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// fullBody returns a resource body of the size and shape the gateway
// stores (a kilobyte or so of FHIR JSON), at version v.
func fullBody(typ, id string, v int, status string) []byte {
	return fmt.Appendf(nil, `{"resourceType":%q,"id":%q,"meta":{"versionId":"%d","lastUpdated":"2026-11-02T09:00:00Z",`+
		`"profile":["https://fhir.hl7.org.uk/StructureDefinition/UKCore-%s"]},"status":%q,"intent":"order",`+
		`"identifier":[{"system":"https://fhir.example-gp.nhs.uk/Id/referral","value":"REF-1"}],`+
		`"code":{"coding":[{"system":"http://snomed.info/sct","code":"871731000000106","display":"Referral to social prescribing service"}]},`+
		`"reasonCode":[{"coding":[{"system":"http://snomed.info/sct","code":"423521000000102","display":"Loneliness"}]}],`+
		`"note":[{"time":"2026-11-02T09:00:00Z","text":"Lives alone since a bereavement last year; would like to meet people locally and get back to walking."}],`+
		`"requester":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"Y01234"}},`+
		`"performer":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RAT01"}}]}`,
		typ, id, v, typ, status)
}

// fullIntake is intake's referral with bodies of full size.
func fullIntake(n int) *linkbridge.Intake {
	in := intake("z", n, nhsNumber(n), "")
	for _, r := range in.Resources {
		r.Body = fullBody(r.Type, r.ID, 1, "active")
	}
	return in
}

// taskChange returns the change that moves in's referral to version v with
// a new version of its Task.
func taskChange(in *linkbridge.Intake, v int) *linkbridge.ReferralChange {
	next := *in.Referral
	next.Version, next.UpdatedAt = v, t0.Add(time.Duration(v)*time.Minute)
	task := &linkbridge.Resource{Type: "Task", ID: next.TaskID, VersionID: v, LastUpdated: next.UpdatedAt,
		Body: fullBody("Task", next.TaskID, v, "accepted")}
	return &linkbridge.ReferralChange{Referral: &next, Resources: []*linkbridge.Resource{task}}
}

// checkStored checks that the stored body of typ/id at version v (in
// resource or resource_history) is a zstd frame shorter than want, and
// that the store reads it back as want.
func checkStored(t *testing.T, conn *pgx.Conn, db *postgres.DB, typ, id string, v int, want []byte) {
	t.Helper()
	ctx := context.Background()
	var stored []byte
	if err := conn.QueryRow(ctx, `SELECT body FROM resource WHERE type = $1 AND id = $2 AND version_id = $3
		UNION ALL SELECT body FROM resource_history WHERE type = $1 AND id = $2 AND version_id = $3`, typ, id, v).Scan(&stored); err != nil {
		t.Fatalf("%s/%s version %d: %v", typ, id, v, err)
	}
	if !bytes.HasPrefix(stored, zstdMagic) || len(stored) >= len(want) {
		t.Errorf("%s/%s version %d: %d bytes stored for a %d-byte body, starting %x; want a shorter zstd frame",
			typ, id, v, len(stored), len(want), stored[:min(len(stored), 4)])
	}
	got, err := db.ReadResourceVersion(ctx, typ, id, v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Body, want) {
		t.Errorf("ReadResourceVersion(%s/%s, %d) body:\n%.300q\nwant\n%.300q", typ, id, v, got.Body, want)
	}
}

// TestBodiesCompressed checks that resource bodies are stored as zstd
// frames, by CreateReferral, UpdateReferral and WriteBatch, in resource and
// (the replaced version) in resource_history, and read back as the JSON
// written.
func TestBodiesCompressed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := newSchema(t)
	db := mustOpenURL(t, u)
	conn := rawConn(t, u)

	in := fullIntake(1)
	if err := db.CreateReferral(ctx, in); err != nil {
		t.Fatal(err)
	}
	for _, r := range in.Resources {
		checkStored(t, conn, db, r.Type, r.ID, 1, r.Body)
	}
	ch := taskChange(in, 2)
	if err := db.UpdateReferral(ctx, ch); err != nil {
		t.Fatal(err)
	}
	checkStored(t, conn, db, "Task", in.Referral.TaskID, 1, in.Resources[2].Body)
	checkStored(t, conn, db, "Task", in.Referral.TaskID, 2, ch.Resources[0].Body)

	in2 := fullIntake(2)
	ch3 := taskChange(in, 3)
	if err := db.WriteBatch(ctx, []linkbridge.BatchOp{{Intake: in2}, {Change: ch3}}); err != nil {
		t.Fatal(err)
	}
	for _, r := range in2.Resources {
		checkStored(t, conn, db, r.Type, r.ID, 1, r.Body)
	}
	checkStored(t, conn, db, "Task", in.Referral.TaskID, 3, ch3.Resources[0].Body)
}

// TestBodiesCompressedOnceOnRetry makes the first attempt of each write
// fail with a serialization failure, which retryTx runs again: the body the
// second attempt stores is compressed once (it decodes to the JSON
// written), not compressed a second time.
func TestBodiesCompressedOnceOnRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := newSchema(t)
	db := mustOpenURL(t, u)
	conn := rawConn(t, u)
	// A sequence is not rolled back with the transaction that advanced
	// it, so the trigger fails the first write of a resource row after
	// each reset, and lets the retry through.
	for _, q := range []string{
		`CREATE SEQUENCE fail_once`,
		`CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('fail_once') = 1 THEN
				RAISE EXCEPTION 'provoked retry' USING ERRCODE = 'serialization_failure';
			END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER fail_once BEFORE INSERT OR UPDATE ON resource FOR EACH ROW EXECUTE FUNCTION fail_once()`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// attempts returns how many times the trigger ran since the last
	// reset, and resets it.
	attempts := func() int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM fail_once`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `ALTER SEQUENCE fail_once RESTART`); err != nil {
			t.Fatal(err)
		}
		return n
	}

	in := fullIntake(1)
	ch, ch3 := taskChange(in, 2), taskChange(in, 3)
	for _, w := range []struct {
		name  string
		write func() error
		// stored are the resources the write stored, as written.
		stored []*linkbridge.Resource
	}{
		{"CreateReferral", func() error { return db.CreateReferral(ctx, in) }, in.Resources},
		{"UpdateReferral", func() error { return db.UpdateReferral(ctx, ch) }, ch.Resources[:1]},
		{"WriteBatch", func() error { return db.WriteBatch(ctx, []linkbridge.BatchOp{{Change: ch3}}) }, ch3.Resources[:1]},
	} {
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if n := attempts(); n < 2 {
			t.Fatalf("%s: the trigger ran %d times; want a failed attempt and a retry", w.name, n)
		}
		for _, r := range w.stored {
			checkStored(t, conn, db, r.Type, r.ID, r.VersionID, r.Body)
		}
	}
}

// TestPlainBodies checks that bodies stored as plain JSON, as every store
// written before bodies were compressed holds them, read as they are
// through every read of resource and resource_history.
func TestPlainBodies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := newSchema(t)
	db := mustOpenURL(t, u)
	conn := rawConn(t, u)
	const (
		v1 = `{"resourceType":"Task","id":"task-plain","meta":{"versionId":"1"},"status":"requested"}`
		v2 = `{"resourceType":"Task","id":"task-plain","meta":{"versionId":"2"},"status":"accepted"}`
	)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO resource (type, id, version_id, last_updated, body, params) VALUES ('Task', 'task-plain', 2, $1, $2, '[["status","accepted"]]')`,
			[]any{t0.Add(time.Hour), []byte(v2)}},
		{`INSERT INTO resource_history (type, id, version_id, last_updated, body) VALUES ('Task', 'task-plain', 1, $1, $2)`,
			[]any{t0, []byte(v1)}},
		{`INSERT INTO search_param (type, id, name, value) VALUES ('Task', 'task-plain', 'status', 'accepted')`, nil},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}

	check := func(what string, r *linkbridge.Resource, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if string(r.Body) != want {
			t.Fatalf("%s body %s, want %s", what, r.Body, want)
		}
	}
	r, err := db.ReadResource(ctx, "Task", "task-plain")
	check("ReadResource", r, err, v2)
	r, err = db.ReadResourceVersion(ctx, "Task", "task-plain", 1)
	check("ReadResourceVersion 1", r, err, v1)
	h, err := db.ResourceHistory(ctx, "Task", "task-plain")
	if err != nil || len(h) != 2 {
		t.Fatalf("ResourceHistory = %d versions, %v; want 2", len(h), err)
	}
	check("ResourceHistory[0]", h[0], nil, v2)
	check("ResourceHistory[1]", h[1], nil, v1)
	res, err := db.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Task", Count: 10,
		Params: []linkbridge.ParamFilter{{Name: "status", Values: []string{"accepted"}}}})
	if err != nil || len(res.Resources) != 1 {
		t.Fatalf("SearchResources = %+v, %v; want 1 match", res, err)
	}
	check("SearchResources", res.Resources[0], nil, v2)
	cur, err := db.CurrentResources(ctx, "", "", 10)
	if err != nil || len(cur) != 1 {
		t.Fatalf("CurrentResources = %d, %v; want 1", len(cur), err)
	}
	check("CurrentResources", cur[0], nil, v2)

	// A body that is neither JSON nor a frame is an error, not served.
	if _, err := conn.Exec(ctx, `UPDATE resource SET body = '\x00010203' WHERE id = 'task-plain'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ReadResource(ctx, "Task", "task-plain"); err == nil {
		t.Fatal("ReadResource of a damaged body: no error")
	}
	if _, err := db.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Task", Count: 10}); err == nil {
		t.Fatal("SearchResources of a damaged body: no error")
	}
}
