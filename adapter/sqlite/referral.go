package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// newResourceRows converts the resources of a validated intake or change
// to column values.
func newResourceRows(rs []*linkbridge.Resource) ([]resourceRow, error) {
	rows, err := sqlshared.ResourceRows(rs)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return rows, nil
}

// resourceRow is a resource version converted to column values.
type resourceRow = sqlshared.ResourceRow

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
func (db *DB) CreateReferral(ctx context.Context, in *linkbridge.Intake) error {
	op, err := db.createOp(in)
	if err != nil {
		return err
	}
	if err := db.w.do(ctx, op.apply); err != nil {
		return err
	}
	op.done()
	return nil
}

// writeOp is one write prepared for the writer: apply runs on the writer
// goroutine, inside the write transaction; done runs after it committed.
type writeOp struct {
	apply func(w *writer) error
	done  func()
}

// createOp validates an intake and converts it to column values, and
// returns the write that stores it (CreateReferral, WriteBatch).
func (db *DB) createOp(in *linkbridge.Intake) (writeOp, error) {
	if err := in.Validate(); err != nil {
		return writeOp{}, err
	}
	ref := new(*in.Referral) // a copy: the writer goroutine reads it
	refArgs, err := sqlshared.ReferralArgs(ref, columns)
	if err != nil {
		return writeOp{}, fmt.Errorf("sqlite: %w", err)
	}
	res, err := newResourceRows(in.Resources)
	if err != nil {
		return writeOp{}, err
	}
	sqlshared.CompressBodies(res)
	var person *linkbridge.Person
	var personCreated string
	if in.NewPerson {
		p := *in.Person
		person = &p
		personCreated = formatTime(p.CreatedAt)
	}
	audit, err := sqlshared.WriteAuditRow(in.Audit, columns)
	if err != nil {
		return writeOp{}, err
	}
	msgID := in.MessageID
	events := in.Events
	subject := writeSubject{messageID: msgID, person: person, ref: ref}
	// The referral's history starts with its receipt.
	received := sqlshared.EventArgs(linkbridge.ReceivedEvent(ref), columns)

	apply := func(w *writer) error {
		if err := w.recordMessage(msgID); err != nil {
			return err
		}
		if person != nil {
			if _, err := w.insPerson.ExecContext(bg, person.ID, person.NHSNumber, person.BirthDate, person.GPODS, personCreated); err != nil {
				return w.formatError(err, "create person", subject)
			}
		}
		if _, err := w.insReferral.ExecContext(bg, refArgs...); err != nil {
			return w.formatError(err, "create referral", subject)
		}
		if _, err := w.insEvent.ExecContext(bg, received...); err != nil {
			return fmt.Errorf("sqlite: record event: %w", err)
		}
		if err := w.createResources(res); err != nil {
			return err
		}
		if err := w.grantAccess(ref, res, ref.Patient()); err != nil {
			return err
		}
		if err := w.recordEvents(ref, events, sqlshared.EventTime(ref, db.Now())); err != nil {
			return err
		}
		return w.insertAudit(audit)
	}
	return writeOp{apply: apply, done: func() { db.feed.publish(noticeOf(ref)) }}, nil
}

// revokeAccess ends the access a referral entered in error granted
// (sqlshared.RevokeAccessQuery).
var revokeAccess = sqlshared.RevokeAccessQuery(func(i int) string { return "?" + strconv.Itoa(i) }) // ?N: arguments are repeated

// UpdateReferral applies a change atomically. It returns ENOTFOUND when the
// referral does not exist, EPRECONDITION when the referral is not at
// Version-1 or a resource is not at VersionID-1 (or, for VersionID 1, exists
// already), and EDUPLICATE when MessageID was already processed.
//
// In the same transaction it replaces the plan when Plan is set, adds
// Contacts and Measures (ECONFLICT when an id is taken), replaces
// ContactUpdates and MeasureUpdates (ENOTFOUND when the referral holds no
// such entry), appends Event when set, stores the Audit record when set, and enqueues the Outbox
// messages (see sqlshared.NewOutboxRows; on success
// each message's ID, State and defaulted times are set to what was stored);
// if any of it fails, nothing of the change is stored. Entries
// that name no referral are the change's referral's; an event's zero
// Version, At and Status default to the new referral's Version, UpdatedAt
// and Status. A change that names another referral or version in its
// entries, or an event without an action, is EINVALID.
func (db *DB) UpdateReferral(ctx context.Context, ch *linkbridge.ReferralChange) error {
	op, err := db.updateOp(ch, sqlshared.OwnRowWrite(ch))
	if err != nil {
		return err
	}
	if err := db.w.do(ctx, op.apply); err != nil {
		return err
	}
	op.done()
	return nil
}

// updateOp validates a change and converts it to column values, and
// returns the write that applies it (UpdateReferral, WriteBatch).
func (db *DB) updateOp(ch *linkbridge.ReferralChange, rw sqlshared.RowWrite) (writeOp, error) {
	rows, err := sqlshared.NewChangeRows(ch, db.Now(), columns)
	if err != nil {
		return writeOp{}, err
	}
	ref, refArgs, res, cr, ob := rows.Referral, rows.ReferralArgs, rows.Resources, rows.Case, rows.Outbox
	sqlshared.CompressBodies(res)
	msgID := ch.MessageID
	events := ch.Events

	apply := func(w *writer) error {
		if err := w.recordMessage(msgID); err != nil {
			return err
		}
		if err := w.updateReferral(ref, refArgs, rw); err != nil {
			return err
		}
		for i := range res {
			r := &res[i]
			if r.VersionID == 1 {
				if err := w.createResources(res[i : i+1]); err != nil {
					if linkbridge.ErrorCode(err) == linkbridge.ECONFLICT {
						return linkbridge.Errorf(linkbridge.EPRECONDITION, "%s/%s exists already: version 1 cannot be created", r.Type, r.ID)
					}
					return err
				}
				continue
			}
			if err := w.updateResource(r); err != nil {
				return err
			}
		}
		if err := w.grantAccess(ref, res, ""); err != nil {
			return err
		}
		if err := applyCase(w, cr); err != nil {
			return err
		}
		if err := applyOutbox(w, ob); err != nil {
			return err
		}
		if err := w.recordEvents(ref, events, sqlshared.EventTime(ref, db.Now())); err != nil {
			return err
		}
		if sqlshared.EnteredInError(ref) {
			if _, err := w.exec(revokeAccess, sqlshared.RevokeAccessArgs(ref)...); err != nil {
				return fmt.Errorf("sqlite: revoke access: %w", err)
			}
		}
		return w.insertAudit(rows.Audit)
	}
	return writeOp{apply: apply, done: func() {
		ob.Stored()
		db.feed.publish(noticeOf(ref))
	}}, nil
}

// updateReferral writes a change's referral row as rw says: not at all
// when a later change of the batch writes it (rw.Skip), otherwise over the
// stored row at version rw.Expect, or ENOTFOUND or EPRECONDITION.
func (w *writer) updateReferral(ref *linkbridge.Referral, refArgs []any, rw sqlshared.RowWrite) error {
	if rw.Skip {
		return nil
	}
	// SET takes every column but id; WHERE takes id and the stored version.
	args := append(refArgs[1:len(refArgs):len(refArgs)], ref.ID, rw.Expect)
	result, err := w.updReferral.ExecContext(bg, args...)
	if err != nil {
		return w.formatError(err, "update referral", writeSubject{ref: ref})
	}
	if n, err := result.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: update referral: %w", err)
	} else if n > 0 {
		return nil
	}
	var stored int
	switch err := w.selReferralVersion.QueryRowContext(bg, ref.ID).Scan(&stored); {
	case errors.Is(err, sql.ErrNoRows):
		return linkbridge.Errorf(linkbridge.ENOTFOUND, "referral %s not found", ref.ID)
	case err != nil:
		return fmt.Errorf("sqlite: update referral: %w", err)
	}
	return linkbridge.Errorf(linkbridge.EPRECONDITION, "referral %s is at version %d, so the next version is %d, not %d",
		ref.ID, stored, stored+1, rw.Expect+1)
}

// recordMessage records a message id, or returns EDUPLICATE if it was
// recorded before. An empty id is not recorded.
func (w *writer) recordMessage(id string) error {
	if id == "" {
		return nil
	}
	if _, err := w.insMessage.ExecContext(bg, id, w.now); err != nil {
		return w.formatError(err, "record message", writeSubject{messageID: id})
	}
	return nil
}

// createResources inserts version 1 of resources and their search
// parameters. A resource that exists already is ECONFLICT, with Existing
// naming it. The current version is not written to resource_history: it is
// copied there when a new version replaces it.
func (w *writer) createResources(rs []resourceRow) error {
	if len(rs) == 0 {
		return nil
	}
	args := make([]any, 0, 6*len(rs))
	for i := range rs {
		r := &rs[i]
		args = append(args, r.Type, r.ID, r.VersionID, formatTime(r.LastUpdated), r.Body, r.ParamsJSON)
	}
	if err := w.execRows(resourceInsert, "", 6, args); err != nil {
		if c := constraintOf(err); c.kind == "unique" {
			return w.existingResource(rs, err)
		}
		return fmt.Errorf("sqlite: create resources: %w", err)
	}
	return w.insertParams(rs, nil)
}

// existingResource names the first of rs that is stored already, after an
// INSERT of rs failed on the resource key.
func (w *writer) existingResource(rs []resourceRow, err error) error {
	for i := range rs {
		r := &rs[i]
		var n int
		if serr := w.selResourceExists.QueryRowContext(bg, r.Type, r.ID).Scan(&n); serr != nil {
			return fmt.Errorf("sqlite: create resources: %w", serr)
		}
		if n > 0 {
			e := linkbridge.Errorf(linkbridge.ECONFLICT, "%s/%s exists already", r.Type, r.ID)
			e.Existing = r.Type + "/" + r.ID
			return e
		}
	}
	return fmt.Errorf("sqlite: create resources: %w", err)
}

// updateResource stores a new version of an existing resource, or returns
// EPRECONDITION if the stored version is not the one before it. The version
// it replaces moves to resource_history, and only the search parameter
// values that changed are deleted and inserted.
func (w *writer) updateResource(r *resourceRow) error {
	var (
		stored    int
		oldParams string
	)
	switch err := w.selResource.QueryRowContext(bg, r.Type, r.ID).Scan(&stored, &oldParams); {
	case errors.Is(err, sql.ErrNoRows):
		return linkbridge.Errorf(linkbridge.EPRECONDITION, "%s/%s is not at version %d: it does not exist", r.Type, r.ID, r.VersionID-1)
	case err != nil:
		return fmt.Errorf("sqlite: update resource: %w", err)
	case stored != r.VersionID-1:
		return linkbridge.Errorf(linkbridge.EPRECONDITION, "%s/%s is at version %d, not %d", r.Type, r.ID, stored, r.VersionID-1)
	}
	if _, err := w.insHistory.ExecContext(bg, r.Type, r.ID); err != nil {
		return fmt.Errorf("sqlite: update resource history: %w", err)
	}
	if _, err := w.updResource.ExecContext(bg, r.VersionID, formatTime(r.LastUpdated), r.Body, r.ParamsJSON, r.Type, r.ID); err != nil {
		return fmt.Errorf("sqlite: update resource: %w", err)
	}
	del, had, err := sqlshared.ParamChanges(oldParams, r.Params)
	if err != nil {
		return fmt.Errorf("sqlite: update resource %s/%s: %w", r.Type, r.ID, err)
	}
	for _, p := range del {
		if _, err := w.delParam.ExecContext(bg, r.Type, p.Name, p.Value, r.ID, p.System); err != nil {
			return fmt.Errorf("sqlite: update resource: delete params: %w", err)
		}
	}
	return w.insertParams([]resourceRow{*r}, had)
}

// insertParams indexes the search parameters of resources, but for those in
// skip (indexed already).
func (w *writer) insertParams(rs []resourceRow, skip map[linkbridge.SearchParam]bool) error {
	n := 0
	for i := range rs {
		n += len(rs[i].Params)
	}
	if n == 0 {
		return nil
	}
	args := make([]any, 0, 5*n)
	for i := range rs {
		r := &rs[i]
		for _, p := range r.Params {
			if !skip[p] {
				args = append(args, r.Type, r.ID, p.Name, p.Value, p.System)
			}
		}
	}
	if err := w.execRows(paramInsert, paramInsertTail, 5, args); err != nil {
		return fmt.Errorf("sqlite: index search parameters: %w", err)
	}
	return nil
}

// writeSubject is what a request writes, for naming the rows that a failed
// constraint collided with.
type writeSubject struct {
	messageID string
	person    *linkbridge.Person
	ref       *linkbridge.Referral
}

// formatError translates a failed write into a linkbridge error, naming the
// stored row that a unique constraint collided with. It runs inside the
// write transaction, before the request's savepoint is rolled back, so the
// row it looks up is the one that caused the failure: there is no window for
// a race. Errors it does not recognise are wrapped as "sqlite: <op>: ...".
func (w *writer) formatError(err error, op string, s writeSubject) error {
	c := constraintOf(err)
	withExisting := func(code, existing, format string, args ...any) error {
		e := linkbridge.Errorf(code, format, args...)
		e.Existing = existing
		return e
	}
	switch {
	case c.kind == "foreignkey" && s.ref != nil:
		return linkbridge.Errorf(linkbridge.ENOTFOUND, "person %s not found", s.ref.PersonID)
	case c.kind != "unique":
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	switch c.columns {
	case "message.request_id":
		return withExisting(linkbridge.EDUPLICATE, "MessageHeader/"+s.messageID,
			"message %s was processed already", s.messageID)
	case "person.nhs_number":
		// A replayed referral that also carries a "new" person is better
		// answered with the referral, which intake turns into 200 + existing.
		if id, ok, err := w.referralIDByIdentifier(s.ref); err != nil {
			return err
		} else if ok {
			return withExisting(linkbridge.EDUPLICATE, "ServiceRequest/"+id,
				"the referral identifier is stored already, as referral %s", id)
		}
		if s.person != nil {
			var id string
			if err := w.selPersonIDByNHS.QueryRowContext(bg, s.person.NHSNumber).Scan(&id); err != nil {
				return fmt.Errorf("sqlite: %s: find person: %w", op, err)
			}
			return withExisting(linkbridge.EDUPLICATE, "Patient/"+id,
				"a person with this NHS number is stored already, as person %s", id)
		}
	case "person.id":
		if s.person != nil {
			return withExisting(linkbridge.ECONFLICT, "Patient/"+s.person.ID,
				"person %s exists already", s.person.ID)
		}
	case "referral.referrer_ods, referral.identifier_system, referral.identifier_value":
		if id, ok, err := w.referralIDByIdentifier(s.ref); err != nil {
			return err
		} else if ok {
			return withExisting(linkbridge.EDUPLICATE, "ServiceRequest/"+id,
				"the referral identifier is stored already, as referral %s", id)
		}
	case "referral.open_key":
		// A replay of a stored referral is answered as one, before the
		// person's open referral is named.
		if id, ok, err := w.referralIDByIdentifier(s.ref); err != nil {
			return err
		} else if ok {
			return withExisting(linkbridge.EDUPLICATE, "ServiceRequest/"+id,
				"the referral identifier is stored already, as referral %s", id)
		}
		if s.ref != nil {
			var id string
			if err := w.selReferralIDByOpenKey.QueryRowContext(bg, s.ref.OpenKey()).Scan(&id); err != nil {
				return fmt.Errorf("sqlite: %s: find open referral: %w", op, err)
			}
			return linkbridge.OpenReferralConflict(id)
		}
	case "referral.id":
		if s.ref != nil {
			return withExisting(linkbridge.ECONFLICT, "ServiceRequest/"+s.ref.ID,
				"referral %s exists already", s.ref.ID)
		}
	case "referral.task_id":
		if s.ref != nil {
			return withExisting(linkbridge.ECONFLICT, "Task/"+s.ref.TaskID,
				"Task %s already tracks another referral", s.ref.TaskID)
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// referralIDByIdentifier looks up the stored referral of ref's referrer
// with ref's business identifier, inside the write transaction.
func (w *writer) referralIDByIdentifier(ref *linkbridge.Referral) (id string, ok bool, err error) {
	if ref == nil {
		return "", false, nil
	}
	err = w.selReferralIDByIdentifier.QueryRowContext(bg, ref.ReferrerODS, ref.Identifier.System, ref.Identifier.Value).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("sqlite: find referral by identifier: %w", err)
	}
	return id, true, nil
}

// FindReferral returns a referral by id, or ENOTFOUND.
func (db *DB) FindReferral(ctx context.Context, id string) (*linkbridge.Referral, error) {
	return db.findReferral(ctx, "referral "+id, `WHERE id = ?`, id)
}

// FindReferralByTaskID returns the referral tracked by a Task, or ENOTFOUND.
func (db *DB) FindReferralByTaskID(ctx context.Context, taskID string) (*linkbridge.Referral, error) {
	return db.findReferral(ctx, "referral of Task "+taskID, `WHERE task_id = ?`, taskID)
}

// FindReferralByIdentifier returns the referral that the organisation
// referrerODS made with a business identifier, or ENOTFOUND when that
// organisation has none with it (another organisation's is not found).
func (db *DB) FindReferralByIdentifier(ctx context.Context, referrerODS string, id linkbridge.Identifier) (*linkbridge.Referral, error) {
	return db.findReferral(ctx, "referral with this identifier",
		`WHERE referrer_ods = ? AND identifier_system = ? AND identifier_value = ?`, referrerODS, id.System, id.Value)
}

// findReferral reads the referral matching a WHERE clause; what names it in
// the ENOTFOUND message.
func (db *DB) findReferral(ctx context.Context, what, where string, args ...any) (*linkbridge.Referral, error) {
	return findReferral(ctx, db.read, what, where, args...)
}

// querier is what reads need of *sql.DB and *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// findReferral reads, through q, the referral matching a WHERE clause.
func findReferral(ctx context.Context, q querier, what, where string, args ...any) (*linkbridge.Referral, error) {
	row := q.QueryRowContext(ctx, `SELECT `+sqlshared.ReferralColumns+` FROM referral `+where, args...)
	r, err := scanReferral(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s not found", what)
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: find referral: %w", err)
	}
	return r, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanReferral reads a row of sqlshared.ReferralColumns.
func scanReferral(row scanner) (*linkbridge.Referral, error) {
	var (
		r                                 linkbridge.Referral
		status, reasons, consent, source  string
		doNotContact                      int
		acceptedAt, completedAt           sql.NullString
		agreedAt, personDeclinedAt        sql.NullString
		authoredOn, receivedAt, updatedAt string
		linkKind                          string
		openKey                           sql.NullString // derived (Referral.OpenKey)
	)
	if err := row.Scan(&r.ID, &r.TaskID, &r.PersonID, &r.Identifier.System, &r.Identifier.Value, &status,
		&r.BusinessStatus, &r.StatusReason, &r.RequestStatus, &r.Priority, &r.ReferrerODS, &r.ServiceODS,
		&reasons, &doNotContact, &r.LinkWorker.ID, &r.LinkWorker.Name, &consent,
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
	r.DoNotContact = doNotContact != 0
	var err error
	if r.Reasons, err = sqlshared.DecodeReasons([]byte(reasons)); err != nil {
		return nil, err
	}
	if err := parseTimes(storedTime{&r.AuthoredOn, authoredOn}, storedTime{&r.ReceivedAt, receivedAt},
		storedTime{&r.UpdatedAt, updatedAt}, storedTime{&r.AcceptedAt, acceptedAt.String},
		storedTime{&r.CompletedAt, completedAt.String}, storedTime{&r.AgreedAt, agreedAt.String},
		storedTime{&r.PersonDeclinedAt, personDeclinedAt.String}); err != nil {
		return nil, err
	}
	return &r, nil
}

// FindPerson returns a person by id, or ENOTFOUND.
func (db *DB) FindPerson(ctx context.Context, id string) (*linkbridge.Person, error) {
	return db.findPerson(ctx, "person "+id, `WHERE id = ?`, id)
}

// FindPersonByNHSNumber returns the person with a normalised NHS number, or
// ENOTFOUND. The error message does not repeat the number.
func (db *DB) FindPersonByNHSNumber(ctx context.Context, nhsNumber string) (*linkbridge.Person, error) {
	return db.findPerson(ctx, "person with this NHS number", `WHERE nhs_number = ?`, nhsNumber)
}

// findPerson reads the person matching a WHERE clause.
func (db *DB) findPerson(ctx context.Context, what, where string, args ...any) (*linkbridge.Person, error) {
	return findPerson(ctx, db.read, what, where, args...)
}

// findPerson reads, through q, the person matching a WHERE clause.
func findPerson(ctx context.Context, q querier, what, where string, args ...any) (*linkbridge.Person, error) {
	var (
		p         linkbridge.Person
		createdAt string
	)
	err := q.QueryRowContext(ctx, `SELECT id, nhs_number, birth_date, gp_ods, created_at FROM person `+where, args...).
		Scan(&p.ID, &p.NHSNumber, &p.BirthDate, &p.GPODS, &createdAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s not found", what)
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: find person: %w", err)
	}
	if p.CreatedAt, err = parseTime(createdAt); err != nil {
		return nil, err
	}
	return &p, nil
}

// MessageProcessed reports whether a message with this X-Request-Id was
// recorded by CreateReferral or UpdateReferral. An empty id is never
// recorded, so it reports false.
func (db *DB) MessageProcessed(ctx context.Context, requestID string) (bool, error) {
	if requestID == "" {
		return false, nil
	}
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM message WHERE request_id = ?`, requestID).Scan(&n); err != nil {
		return false, fmt.Errorf("sqlite: message processed: %w", err)
	}
	return n > 0, nil
}
