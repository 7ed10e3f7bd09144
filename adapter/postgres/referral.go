package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// Statements used by the writes. reasons is sent as text and cast, so that
// pgx does not re-encode JSON it is given.
var (
	insReferral = func() string {
		vals := make([]string, len(sqlshared.ReferralColumnList))
		for i, c := range sqlshared.ReferralColumnList {
			vals[i] = "$" + strconv.Itoa(i+1)
			if c == "reasons" {
				vals[i] += "::jsonb"
			}
		}
		return `INSERT INTO referral (` + sqlshared.ReferralColumns + `) VALUES (` + strings.Join(vals, ", ") + `)`
	}()
	// SET takes every column but id ($2 ...); WHERE takes id ($1) and the
	// stored version (the last parameter).
	updReferral = func() string {
		sets := make([]string, 0, len(sqlshared.ReferralColumnList)-1)
		for i, c := range sqlshared.ReferralColumnList[1:] {
			p := "$" + strconv.Itoa(i+2)
			if c == "reasons" {
				p += "::jsonb"
			}
			sets = append(sets, c+" = "+p)
		}
		return `UPDATE referral SET ` + strings.Join(sets, ", ") + ` WHERE id = $1 AND version = $` +
			strconv.Itoa(len(sqlshared.ReferralColumnList)+1)
	}()
	insEvent  = `INSERT INTO referral_event (referral_id, version, at, action, actor, status, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	insPerson = `INSERT INTO person (id, nhs_number, birth_date, gp_ods, created_at) VALUES ($1, $2, $3, $4, $5)`
	// Resources and their search parameters go in one statement each,
	// whatever their number: unnest turns arrays into rows (SQLite's
	// adapter builds multi-row VALUES lists instead, having no arrays).
	insResources = `INSERT INTO resource (type, id, version_id, last_updated, body, params)
		SELECT t, i, v, lu, b, p::jsonb
		FROM unnest($1::text[], $2::text[], $3::int4[], $4::timestamptz[], $5::bytea[], $6::text[]) AS u (t, i, v, lu, b, p)`
	// A resource may carry the same value twice; the key keeps one (DO
	// NOTHING also absorbs duplicates within the one statement).
	insParams = `INSERT INTO search_param (type, id, name, value, system)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
		ON CONFLICT DO NOTHING`
	// A value a new version no longer has goes by its key, one statement
	// a value, and a resource to replace is read and locked by its key:
	// point statements that PostgreSQL plans once a session
	// (docs/performance.md#statements-planned-once).
	delParam     = `DELETE FROM search_param WHERE type = $1 AND name = $2 AND value = $3 AND id = $4 AND system = $5`
	lockResource = `SELECT version_id, params::text FROM resource WHERE type = $1 AND id = $2 FOR UPDATE`
	insMessage   = `INSERT INTO message (request_id, received_at) VALUES ($1, $2)`
	// A stored resource replaced: its stored version is copied to the
	// history, then its row rewritten.
	copyHistory = `INSERT INTO resource_history (type, id, version_id, last_updated, body)
		SELECT type, id, version_id, last_updated, body FROM resource WHERE type = $1 AND id = $2`
	updResource = `UPDATE resource SET version_id = $1, last_updated = $2, body = $3, params = $4::jsonb
		WHERE type = $5 AND id = $6`
)

// resourceRow is a resource version converted to column values.
type resourceRow = sqlshared.ResourceRow

// resourceArrays returns rs as the column arrays of insResources.
func resourceArrays(rs []resourceRow) []any {
	var (
		types, ids, ps []string
		versions       []int32
		times          []time.Time
		bodies         [][]byte
	)
	for i := range rs {
		r := &rs[i]
		types, ids, ps = append(types, r.Type), append(ids, r.ID), append(ps, r.ParamsJSON)
		versions, times, bodies = append(versions, int32(r.VersionID)), append(times, r.LastUpdated), append(bodies, r.Body)
	}
	return []any{types, ids, versions, times, bodies, ps}
}

// paramArrays returns the search parameter values of rs, but for those in
// skip (indexed already), as the column arrays of insParams; ok is false
// when there are none.
func paramArrays(rs []resourceRow, skip map[linkbridge.SearchParam]bool) (args []any, ok bool) {
	var types, ids, names, values, systems []string
	for i := range rs {
		r := &rs[i]
		for _, p := range r.Params {
			if !skip[p] {
				types, ids = append(types, r.Type), append(ids, r.ID)
				names, values, systems = append(names, p.Name), append(values, p.Value), append(systems, p.System)
			}
		}
	}
	return []any{types, ids, names, values, systems}, len(types) > 0
}

// CreateReferral stores an intake atomically: all or nothing. It returns
// EDUPLICATE with Error.Existing set when MessageID was already processed
// ("MessageHeader/<request id>"), when the referrer's referral identifier
// is stored ("ServiceRequest/<id>"; identifiers are unique per ReferrerODS),
// or when NewPerson is set and the NHS number is stored ("Patient/<id>";
// but "ServiceRequest/<id>" if the referrer's identifier is stored too). It returns ECONFLICT when a person, referral, Task or resource
// id is taken, ENOTFOUND when an existing person to link is not stored, and
// EINVALID when the intake is incomplete or not at version 1. It records the
// referral's first event: version 1, "received" by the "requester" at
// ReceivedAt, with the referral's status, and the intake's Audit record
// when set (EINVALID when it has no time).
//
// Every statement goes to the server in one batch, which PostgreSQL runs as
// one implicit transaction: one round trip per intake. The unique
// constraints decide between replicas storing the same referral at once: the
// later insert waits for the earlier transaction and then fails, and only
// then, after the rollback, is the stored row looked up to name it (it is
// committed, and rows the constraints protect are never deleted).
func (db *DB) CreateReferral(ctx context.Context, in *linkbridge.Intake) error {
	c, err := db.prepareCreate(in)
	if err != nil {
		return err
	}
	var op string
	err = retryTx(ctx, func() (err error) {
		if len(in.Events) == 0 {
			op, err = db.runBatch(ctx, c.batch(), c.ops)
			return err
		}
		// Topic events are recorded after the intake's rows, in its
		// transaction.
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			op, err = c.inTx(ctx, tx, db.Now())
			return err
		})
	})
	if err == nil {
		return nil
	}
	return db.formatError(ctx, err, op, c.subject)
}

// createWrite is an intake prepared for the server: its statements, sent
// in one batch, and what a violated constraint is looked up by.
type createWrite struct {
	stmts   []createStmt
	ops     []string
	ref     *linkbridge.Referral
	events  []*linkbridge.TopicEvent
	subject writeSubject
	// in, refArgs and audit are the intake and its rows, for a batch
	// that writes them folded with others (batchfold.go).
	in      *linkbridge.Intake
	refArgs []any
	audit   *sqlshared.AuditRow
}

// prepareCreate validates an intake and queues its statements
// (CreateReferral, WriteBatch).
func (db *DB) prepareCreate(in *linkbridge.Intake) (*createWrite, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	ref := in.Referral
	refArgs, err := sqlshared.ReferralArgs(ref, columns)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	res, err := sqlshared.ResourceRows(in.Resources)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	sqlshared.CompressBodies(res)
	audit, err := sqlshared.WriteAuditRow(in.Audit, columns)
	if err != nil {
		return nil, err
	}

	c := &createWrite{ref: ref, events: in.Events, in: in, refArgs: refArgs, audit: audit,
		subject: writeSubject{messageID: in.MessageID, person: personIf(in), ref: ref, resources: res}}
	queue := func(op, sql string, args ...any) {
		c.stmts = append(c.stmts, createStmt{sql, args})
		c.ops = append(c.ops, op)
	}
	if in.MessageID != "" {
		queue("record message", insMessage, in.MessageID, db.Now())
	}
	if in.NewPerson {
		p := in.Person
		queue("create person", insPerson, p.ID, p.NHSNumber, p.BirthDate, p.GPODS, p.CreatedAt)
	}
	queue("create referral", insReferral, refArgs...)
	// The referral's history starts with its receipt.
	queue("record event", insEvent, sqlshared.EventArgs(linkbridge.ReceivedEvent(ref), columns)...)
	if len(res) > 0 {
		queue("create resources", insResources, resourceArrays(res)...)
		if args, ok := paramArrays(res, nil); ok {
			queue("index search parameters", insParams, args...)
		}
	}
	// The referral's access keys go on its resources and on the person's
	// Patient, also when the person is only linked.
	if args, ok := accessArrays(ref, res, ref.Patient()); ok {
		queue("grant access", insAccess, args...)
	}
	queueAudit(audit, queue)
	queue("notify", notifyReferral, notifyArgs(ref)...)
	return c, nil
}

// createStmt is one statement of a createWrite, with its arguments.
type createStmt struct {
	sql  string
	args []any
}

// batch returns the intake's statements as a new batch, for one attempt.
// A pgx.Batch cannot be sent twice: sending it records on each statement
// the prepared statement of the connection it went to, and a retry on
// another connection of the pool would then name a statement that
// connection never prepared (SQLSTATE 26000).
func (c *createWrite) batch() *pgx.Batch {
	b := &pgx.Batch{}
	for _, s := range c.stmts {
		b.Queue(s.sql, s.args...)
	}
	return b
}

// inTx runs the intake's statements in tx, then records its topic events
// (at now, by default). It returns the op that failed, with the error.
func (c *createWrite) inTx(ctx context.Context, tx pgx.Tx, now time.Time) (string, error) {
	br := tx.SendBatch(ctx, c.batch())
	for _, o := range c.ops {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return o, err
		}
	}
	if err := br.Close(); err != nil {
		return "commit", err
	}
	if err := recordEvents(ctx, tx, c.ref, c.events, sqlshared.EventTime(c.ref, now)); err != nil {
		return "record subscription events", err
	}
	return "", nil
}

// personIf returns the intake's person when it is new.
func personIf(in *linkbridge.Intake) *linkbridge.Person {
	if in.NewPerson {
		return in.Person
	}
	return nil
}

// runBatch sends b (outside a transaction: one implicit transaction) and
// reads its results in order. On failure it returns the op of the statement
// that failed, and the error.
func (db *DB) runBatch(ctx context.Context, b *pgx.Batch, ops []string) (string, error) {
	br := db.pool.SendBatch(ctx, b)
	for _, op := range ops {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return op, err
		}
	}
	if err := br.Close(); err != nil {
		return "commit", err
	}
	return "", nil
}

// writeSubject is what a write stores, for naming the rows that a violated
// constraint collided with.
type writeSubject struct {
	messageID string
	person    *linkbridge.Person
	ref       *linkbridge.Referral
	resources []resourceRow
}

// formatError translates a failed write into a linkbridge error, naming the
// stored row that a unique constraint collided with. It runs after the
// write's transaction rolled back (PostgreSQL aborts the transaction at the
// first error): the conflicting row was committed before the violation was
// reported, so a fresh read finds it. Errors it does not recognise are
// wrapped as "postgres: <op>: ...".
func (db *DB) formatError(ctx context.Context, err error, op string, s writeSubject) error {
	withExisting := func(code, existing, format string, args ...any) error {
		e := linkbridge.Errorf(code, format, args...)
		e.Existing = existing
		return e
	}
	if _, ok := violation(err, foreignKeyViolation); ok && s.ref != nil && op == "create referral" {
		return linkbridge.Errorf(linkbridge.ENOTFOUND, "person %s not found", s.ref.PersonID)
	}
	name, ok := violation(err, uniqueViolation)
	if !ok {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	byIdentifier := func() (error, bool) {
		id, found, ferr := db.referralIDByIdentifier(ctx, s.ref)
		if ferr != nil {
			return ferr, true
		}
		if found {
			return withExisting(linkbridge.EDUPLICATE, "ServiceRequest/"+id,
				"the referral identifier is stored already, as referral %s", id), true
		}
		return nil, false
	}
	switch name {
	case "message_pkey":
		return withExisting(linkbridge.EDUPLICATE, "MessageHeader/"+s.messageID,
			"message %s was processed already", s.messageID)
	case "person_nhs_number_key":
		// A replayed referral that also carries a "new" person is better
		// answered with the referral, which intake turns into 200 + existing.
		if e, done := byIdentifier(); done {
			return e
		}
		if s.person != nil {
			var id string
			if err := db.pool.QueryRow(ctx, `SELECT id FROM person WHERE nhs_number = $1`, s.person.NHSNumber).Scan(&id); err != nil {
				return fmt.Errorf("postgres: %s: find person: %w", op, err)
			}
			return withExisting(linkbridge.EDUPLICATE, "Patient/"+id,
				"a person with this NHS number is stored already, as person %s", id)
		}
	case "person_pkey":
		if s.person != nil {
			return withExisting(linkbridge.ECONFLICT, "Patient/"+s.person.ID, "person %s exists already", s.person.ID)
		}
	case "referral_referrer_identifier_key":
		if e, done := byIdentifier(); done {
			return e
		}
	case "referral_open_key":
		// A replay of a stored referral is answered as one, before the
		// person's open referral is named.
		if e, done := byIdentifier(); done {
			return e
		}
		if s.ref != nil {
			var id string
			if err := db.pool.QueryRow(ctx, `SELECT id FROM referral WHERE open_key = $1`, s.ref.OpenKey()).Scan(&id); err != nil {
				return fmt.Errorf("postgres: %s: find open referral: %w", op, err)
			}
			return linkbridge.OpenReferralConflict(id)
		}
	case "referral_pkey":
		if s.ref != nil {
			return withExisting(linkbridge.ECONFLICT, "ServiceRequest/"+s.ref.ID, "referral %s exists already", s.ref.ID)
		}
	case "referral_task_id_key":
		if s.ref != nil {
			return withExisting(linkbridge.ECONFLICT, "Task/"+s.ref.TaskID,
				"Task %s already tracks another referral", s.ref.TaskID)
		}
	case "resource_pkey":
		for i := range s.resources {
			r := &s.resources[i]
			var n int
			if err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM resource WHERE type = $1 AND id = $2`, r.Type, r.ID).Scan(&n); err != nil {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
			if n > 0 {
				return withExisting(linkbridge.ECONFLICT, r.Type+"/"+r.ID, "%s/%s exists already", r.Type, r.ID)
			}
		}
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// referralIDByIdentifier looks up the stored referral of ref's referrer
// with ref's business identifier.
func (db *DB) referralIDByIdentifier(ctx context.Context, ref *linkbridge.Referral) (id string, ok bool, err error) {
	if ref == nil {
		return "", false, nil
	}
	err = db.pool.QueryRow(ctx, `SELECT id FROM referral WHERE referrer_ods = $1 AND identifier_system = $2 AND identifier_value = $3`,
		ref.ReferrerODS, ref.Identifier.System, ref.Identifier.Value).Scan(&id)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("postgres: find referral by identifier: %w", err)
	}
	return id, true, nil
}

// revokeAccess ends the access a referral entered in error granted
// (sqlshared.RevokeAccessQuery).
var revokeAccess = sqlshared.RevokeAccessQuery(func(i int) string { return "$" + strconv.Itoa(i) })

// UpdateReferral applies a change atomically. It returns ENOTFOUND when the
// referral does not exist, EPRECONDITION when the referral is not at
// Version-1 or a resource is not at VersionID-1 (or, for VersionID 1, exists
// already), and EDUPLICATE when MessageID was already processed.
//
// In the same transaction it replaces the plan when Plan is set, adds
// Contacts and Measures (ECONFLICT when an id is taken), replaces
// ContactUpdates and MeasureUpdates (ENOTFOUND when the referral holds no
// such entry), appends Event when
// set, stores the Audit record when set, and enqueues the Outbox messages
// (on success each message's ID, State
// and defaulted times are set to what was stored); if any of it fails,
// nothing of the change is stored. Entries that name no referral are the
// change's referral's; an event's zero Version, At and Status default to the
// new referral's Version, UpdatedAt and Status. A change that names another
// referral or version in its entries, or an event without an action, is
// EINVALID.
//
// Concurrency: the UPDATE of the referral row at its expected version locks
// it, so a second change of the same referral (from any replica) waits and
// then finds the version moved (EPRECONDITION); the resources it replaces
// are locked (FOR UPDATE) before their versions are checked; and the outbox
// messages are enqueued under their order keys' enqueue locks (see
// outbox.go).
func (db *DB) UpdateReferral(ctx context.Context, ch *linkbridge.ReferralChange) error {
	rows, err := db.newChangeRows(ch)
	if err != nil {
		return err
	}
	err = retryTx(ctx, func() error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			return db.updateInTx(ctx, tx, ch, rows, sqlshared.OwnRowWrite(ch))
		})
	})
	if err != nil {
		return err
	}
	rows.Outbox.Stored()
	return nil
}

// updateInTx applies a change, converted to rows, in tx (UpdateReferral,
// WriteBatch), writing its referral row as rw says.
func (db *DB) updateInTx(ctx context.Context, tx pgx.Tx, ch *linkbridge.ReferralChange, rows *sqlshared.ChangeRows, rw sqlshared.RowWrite) error {
	ref, refArgs, res, cr, ob := rows.Referral, rows.ReferralArgs, rows.Resources, rows.Case, rows.Outbox
	if ch.MessageID != "" {
		if _, err := tx.Exec(ctx, insMessage, ch.MessageID, db.Now()); err != nil {
			if _, ok := violation(err, uniqueViolation); ok {
				e := linkbridge.Errorf(linkbridge.EDUPLICATE, "message %s was processed already", ch.MessageID)
				e.Existing = "MessageHeader/" + ch.MessageID
				return e
			}
			return fmt.Errorf("postgres: record message: %w", err)
		}
	}
	if err := updateReferral(ctx, tx, ref, refArgs, rw); err != nil {
		return err
	}
	b := &pgx.Batch{}
	var ops []string
	queue := func(op, sql string, args ...any) {
		b.Queue(sql, args...)
		ops = append(ops, op)
	}
	if err := queueResources(ctx, tx, res, queue); err != nil {
		return err
	}
	if args, ok := accessArrays(ref, res, ""); ok {
		queue("grant access", insAccess, args...)
	}
	queueCase(cr, queue)
	queueAudit(rows.Audit, queue)
	queue("notify", notifyReferral, notifyArgs(ref)...)
	if err := lockOutboxKeys(ctx, tx, ob); err != nil {
		return err
	}
	br := tx.SendBatch(ctx, b)
	for _, op := range ops {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return caseError(err, op, res)
		}
		if strings.HasPrefix(op, correctOp) && tag.RowsAffected() == 0 {
			_ = br.Close()
			what, id, _ := strings.Cut(strings.TrimPrefix(op, correctOp), " ")
			return linkbridge.Errorf(linkbridge.ENOTFOUND, "referral %s has no %s %s", ref.ID, what, id)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("postgres: update referral: %w", err)
	}
	if err := insertOutbox(ctx, tx, ob); err != nil {
		return err
	}
	if err := recordEvents(ctx, tx, ref, ch.Events, sqlshared.EventTime(ref, db.Now())); err != nil {
		return err
	}
	if sqlshared.EnteredInError(ref) {
		if _, err := tx.Exec(ctx, revokeAccess, sqlshared.RevokeAccessArgs(ref)...); err != nil {
			return fmt.Errorf("postgres: revoke access: %w", err)
		}
	}
	return nil
}

// updateReferral writes a change's referral row as rw says: not at all when
// a later change of the batch writes it (rw.Skip), otherwise over the
// stored row at version rw.Expect, or ENOTFOUND, EPRECONDITION or (the
// Task tracks another referral) ECONFLICT.
func updateReferral(ctx context.Context, tx pgx.Tx, ref *linkbridge.Referral, refArgs []any, rw sqlshared.RowWrite) error {
	if rw.Skip {
		return nil
	}
	tag, err := tx.Exec(ctx, updReferral, append(refArgs, rw.Expect)...)
	if err != nil {
		if name, ok := violation(err, uniqueViolation); ok && name == "referral_task_id_key" {
			e := linkbridge.Errorf(linkbridge.ECONFLICT, "Task %s already tracks another referral", ref.TaskID)
			e.Existing = "Task/" + ref.TaskID
			return e
		}
		return fmt.Errorf("postgres: update referral: %w", err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var stored int
	switch err := tx.QueryRow(ctx, `SELECT version FROM referral WHERE id = $1`, ref.ID).Scan(&stored); {
	case errors.Is(err, pgx.ErrNoRows):
		return linkbridge.Errorf(linkbridge.ENOTFOUND, "referral %s not found", ref.ID)
	case err != nil:
		return fmt.Errorf("postgres: update referral: %w", err)
	}
	return linkbridge.Errorf(linkbridge.EPRECONDITION, "referral %s is at version %d, so the next version is %d, not %d",
		ref.ID, stored, stored+1, rw.Expect+1)
}

// queueResources locks the stored resources that res replaces, checks their
// versions, and queues the writes: new resources, superseded versions to
// resource_history, the new versions, and the search parameter values that
// changed.
func queueResources(ctx context.Context, tx pgx.Tx, res []resourceRow, queue func(op, sql string, args ...any)) error {
	if len(res) == 0 {
		return nil
	}
	type stored struct {
		version int
		params  string
	}
	// Locked in key order, so that two changes touching the same resources
	// cannot deadlock: one point read a resource, in one round trip. (A
	// single join with unnest over arrays of keys was planned again at
	// every call: PostgreSQL's generic plan reckons an unnest of a
	// parameter at ten rows, so it never looked cheaper than a custom
	// plan; docs/performance.md#statements-planned-once.)
	keys := make([][2]string, len(res))
	for i := range res {
		keys[i] = [2]string{res[i].Type, res[i].ID}
	}
	keys, lb := lockResources(keys)
	current := make(map[[2]string]stored, len(res))
	br := tx.SendBatch(ctx, lb)
	for _, k := range keys {
		var s stored
		switch err := br.QueryRow().Scan(&s.version, &s.params); {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			_ = br.Close()
			return fmt.Errorf("postgres: update resources: %w", err)
		default:
			current[k] = s
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("postgres: update resources: %w", err)
	}

	var created []resourceRow
	for i := range res {
		r := &res[i]
		s, exists := current[[2]string{r.Type, r.ID}]
		switch {
		case r.VersionID == 1 && exists:
			return linkbridge.Errorf(linkbridge.EPRECONDITION, "%s/%s exists already: version 1 cannot be created", r.Type, r.ID)
		case r.VersionID == 1:
			created = append(created, *r)
			continue
		case !exists:
			return linkbridge.Errorf(linkbridge.EPRECONDITION, "%s/%s is not at version %d: it does not exist", r.Type, r.ID, r.VersionID-1)
		case s.version != r.VersionID-1:
			return linkbridge.Errorf(linkbridge.EPRECONDITION, "%s/%s is at version %d, not %d", r.Type, r.ID, s.version, r.VersionID-1)
		}
		queue("update resource history", copyHistory, r.Type, r.ID)
		queue("update resource", updResource, r.VersionID, r.LastUpdated, r.Body, r.ParamsJSON, r.Type, r.ID)
		del, had, err := sqlshared.ParamChanges(s.params, r.Params)
		if err != nil {
			return fmt.Errorf("postgres: update resource %s/%s: %w", r.Type, r.ID, err)
		}
		for _, p := range del {
			queue("update resource: delete params", delParam, r.Type, p.Name, p.Value, r.ID, p.System)
		}
		if args, ok := paramArrays([]resourceRow{*r}, had); ok {
			queue("index search parameters", insParams, args...)
		}
	}
	if len(created) > 0 {
		queue("create resources", insResources, resourceArrays(created)...)
		if args, ok := paramArrays(created, nil); ok {
			queue("index search parameters", insParams, args...)
		}
	}
	return nil
}

// lockResources returns keys (type, id) sorted and once each, and a batch
// that reads and locks each stored resource by its key in that order
// (lockResource), so that two writes locking the same resources cannot
// deadlock.
func lockResources(keys [][2]string) ([][2]string, *pgx.Batch) {
	slices.SortFunc(keys, func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	keys = slices.Compact(keys)
	b := &pgx.Batch{}
	for _, k := range keys {
		b.Queue(lockResource, k[0], k[1])
	}
	return keys, b
}

// caseError translates the failure of a queued write of UpdateReferral.
func caseError(err error, op string, res []resourceRow) error {
	name, ok := violation(err, uniqueViolation)
	if !ok {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	switch {
	case name == "resource_pkey":
		// Another change created it after this one's check.
		for _, r := range res {
			if r.VersionID == 1 {
				return linkbridge.Errorf(linkbridge.EPRECONDITION, "a version 1 resource of this change exists already: %v", err)
			}
		}
	case name == "contact_pkey":
		return linkbridge.Errorf(linkbridge.ECONFLICT, "contact exists already: %s", opID(op))
	case name == "measure_pkey":
		return linkbridge.Errorf(linkbridge.ECONFLICT, "measure exists already: %s", opID(op))
	case name == "referral_event_pkey":
		return linkbridge.Errorf(linkbridge.ECONFLICT, "the referral has an event for this version already: %s", opID(op))
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// opID returns what follows "op " in an op name such as "add contact c-1".
func opID(op string) string {
	_, id, _ := strings.Cut(op, " ")
	if i := strings.LastIndex(id, " "); i >= 0 {
		return id[i+1:]
	}
	return id
}

// querier is what reads need of the pool and of a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// FindReferral returns a referral by id, or ENOTFOUND.
func (db *DB) FindReferral(ctx context.Context, id string) (*linkbridge.Referral, error) {
	return findReferral(ctx, db.pool, "referral "+id, `WHERE id = $1`, id)
}

// FindReferralByTaskID returns the referral tracked by a Task, or ENOTFOUND.
func (db *DB) FindReferralByTaskID(ctx context.Context, taskID string) (*linkbridge.Referral, error) {
	return findReferral(ctx, db.pool, "referral of Task "+taskID, `WHERE task_id = $1`, taskID)
}

// FindReferralByIdentifier returns the referral that the organisation
// referrerODS made with a business identifier, or ENOTFOUND when that
// organisation has none with it (another organisation's is not found).
func (db *DB) FindReferralByIdentifier(ctx context.Context, referrerODS string, id linkbridge.Identifier) (*linkbridge.Referral, error) {
	return findReferral(ctx, db.pool, "referral with this identifier",
		`WHERE referrer_ods = $1 AND identifier_system = $2 AND identifier_value = $3`, referrerODS, id.System, id.Value)
}

// findReferral reads, through q, the referral matching a WHERE clause; what
// names it in the ENOTFOUND message.
func findReferral(ctx context.Context, q querier, what, where string, args ...any) (*linkbridge.Referral, error) {
	r, err := scanReferral(q.QueryRow(ctx, `SELECT `+sqlshared.ReferralColumns+` FROM referral `+where, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s not found", what)
	} else if err != nil {
		return nil, fmt.Errorf("postgres: find referral: %w", err)
	}
	return r, nil
}

// scanReferral reads a row of sqlshared.ReferralColumns.
func scanReferral(row pgx.Row) (*linkbridge.Referral, error) {
	var (
		r                                 linkbridge.Referral
		status, consent, source           string
		reasons                           []byte
		acceptedAt, completedAt           *time.Time
		agreedAt, personDeclinedAt        *time.Time
		authoredOn, receivedAt, updatedAt time.Time
		linkKind                          string
		openKey                           *string // derived (Referral.OpenKey)
	)
	if err := row.Scan(&r.ID, &r.TaskID, &r.PersonID, &r.Identifier.System, &r.Identifier.Value, &status,
		&r.BusinessStatus, &r.StatusReason, &r.RequestStatus, &r.Priority, &r.ReferrerODS, &r.ServiceODS,
		&reasons, &r.DoNotContact, &r.LinkWorker.ID, &r.LinkWorker.Name, &consent,
		&r.DeclineReason, &r.DischargeReason, &r.DischargeSummary, &acceptedAt, &completedAt,
		&authoredOn, &receivedAt, &updatedAt, &r.Version, &r.PatientID, &source,
		&agreedAt, &r.AgreedBy.ID, &r.AgreedBy.Name, &personDeclinedAt,
		&r.LinkWorker.SDSUserID, &r.AgreedBy.SDSUserID, &r.Link.ReferralID, &linkKind, &openKey); err != nil {
		return nil, err
	}
	r.Link.Kind = linkbridge.LinkKind(linkKind)
	r.Status = linkbridge.TaskStatus(status)
	r.Source = linkbridge.ReferralSource(source)
	r.Consent = linkbridge.ConsentLevel(consent)
	var err error
	if r.Reasons, err = sqlshared.DecodeReasons(reasons); err != nil {
		return nil, err
	}
	r.AuthoredOn, r.ReceivedAt, r.UpdatedAt = utc(authoredOn), utc(receivedAt), utc(updatedAt)
	r.AcceptedAt, r.CompletedAt = utcp(acceptedAt), utcp(completedAt)
	r.AgreedAt, r.PersonDeclinedAt = utcp(agreedAt), utcp(personDeclinedAt)
	return &r, nil
}

// FindPerson returns a person by id, or ENOTFOUND.
func (db *DB) FindPerson(ctx context.Context, id string) (*linkbridge.Person, error) {
	return findPerson(ctx, db.pool, "person "+id, `WHERE id = $1`, id)
}

// FindPersonByNHSNumber returns the person with a normalised NHS number, or
// ENOTFOUND. The error message does not repeat the number.
func (db *DB) FindPersonByNHSNumber(ctx context.Context, nhsNumber string) (*linkbridge.Person, error) {
	return findPerson(ctx, db.pool, "person with this NHS number", `WHERE nhs_number = $1`, nhsNumber)
}

// findPerson reads, through q, the person matching a WHERE clause.
func findPerson(ctx context.Context, q querier, what, where string, args ...any) (*linkbridge.Person, error) {
	var p linkbridge.Person
	err := q.QueryRow(ctx, `SELECT id, nhs_number, birth_date, gp_ods, created_at FROM person `+where, args...).
		Scan(&p.ID, &p.NHSNumber, &p.BirthDate, &p.GPODS, &p.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s not found", what)
	} else if err != nil {
		return nil, fmt.Errorf("postgres: find person: %w", err)
	}
	p.CreatedAt = utc(p.CreatedAt)
	return &p, nil
}

// MessageProcessed reports whether a message with this X-Request-Id was
// recorded by CreateReferral or UpdateReferral (by any replica). An empty id
// is never recorded, so it reports false.
func (db *DB) MessageProcessed(ctx context.Context, requestID string) (bool, error) {
	if requestID == "" {
		return false, nil
	}
	var ok bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM message WHERE request_id = $1)`, requestID).Scan(&ok); err != nil {
		return false, fmt.Errorf("postgres: message processed: %w", err)
	}
	return ok, nil
}

// sortedUnique returns the distinct values of ss in order.
func sortedUnique(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}
