package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/linkbridge/linkbridge"
)

// referralColumnList names the referral table's columns in the order that
// referralRow.args and scanReferral use.
var referralColumnList = []string{"id", "task_id", "person_id", "identifier_system", "identifier_value", "status",
	"business_status", "status_reason", "request_status", "priority", "referrer_ods", "service_ods",
	"reasons", "do_not_contact", "link_worker_id", "link_worker_name", "consent",
	"decline_reason", "discharge_reason", "discharge_summary", "accepted_at", "completed_at",
	"authored_on", "received_at", "updated_at", "version"}

// referralColumns is referralColumnList as a SELECT or INSERT column list.
var referralColumns = strings.Join(referralColumnList, ", ")

// referralRow is a referral converted to column values.
type referralRow struct {
	id, taskID, personID                 string
	identifierSystem, identifierValue    string
	status, businessStatus, statusReason string
	requestStatus, priority              string
	referrerODS, serviceODS              string
	reasons                              string
	doNotContact                         int
	linkWorkerID, linkWorkerName         string
	consent                              string
	declineReason, dischargeReason       string
	dischargeSummary                     string
	acceptedAt, completedAt              any // nil (NULL) when unset, else a stored time
	authoredOn, receivedAt, updatedAt    string
	version                              int
}

// newReferralRow converts a referral to column values.
func newReferralRow(r *linkbridge.Referral) (*referralRow, error) {
	reasons := []byte("[]")
	if len(r.Reasons) > 0 {
		var err error
		if reasons, err = json.Marshal(r.Reasons); err != nil {
			return nil, fmt.Errorf("sqlite: encode reasons: %w", err)
		}
	}
	row := &referralRow{
		id: r.ID, taskID: r.TaskID, personID: r.PersonID,
		identifierSystem: r.Identifier.System, identifierValue: r.Identifier.Value,
		status: string(r.Status), businessStatus: r.BusinessStatus, statusReason: r.StatusReason,
		requestStatus: r.RequestStatus, priority: r.Priority,
		referrerODS: r.ReferrerODS, serviceODS: r.ServiceODS,
		reasons:      string(reasons),
		linkWorkerID: r.LinkWorker.ID, linkWorkerName: r.LinkWorker.Name,
		consent:       string(r.Consent),
		declineReason: r.DeclineReason, dischargeReason: r.DischargeReason, dischargeSummary: r.DischargeSummary,
		acceptedAt: nullTime(r.AcceptedAt), completedAt: nullTime(r.CompletedAt),
		authoredOn: formatTime(r.AuthoredOn), receivedAt: formatTime(r.ReceivedAt), updatedAt: formatTime(r.UpdatedAt),
		version: r.Version,
	}
	if r.DoNotContact {
		row.doNotContact = 1
	}
	return row, nil
}

// resourceRow is a resource converted to column values.
type resourceRow struct {
	typ, id     string
	versionID   int
	lastUpdated string
	body        []byte
	params      []linkbridge.SearchParam
	paramsJSON  string // params as resource.params stores them
}

// newResourceRows converts resources to column values. It returns EINVALID
// for a resource without a type or id, or one listed twice.
func newResourceRows(rs []*linkbridge.Resource) ([]resourceRow, error) {
	rows := make([]resourceRow, len(rs))
	for i, r := range rs {
		if r == nil || r.Type == "" || r.ID == "" {
			return nil, linkbridge.Errorf(linkbridge.EINVALID, "resource %d has no type or id", i)
		}
		for _, prev := range rs[:i] {
			if prev.Type == r.Type && prev.ID == r.ID {
				return nil, linkbridge.Errorf(linkbridge.EINVALID, "%s/%s is listed twice", r.Type, r.ID)
			}
		}
		rows[i] = resourceRow{
			typ: r.Type, id: r.ID, versionID: r.VersionID,
			lastUpdated: formatTime(r.LastUpdated), body: r.Body, params: r.Params,
		}
		if rows[i].body == nil {
			rows[i].body = []byte{} // body is NOT NULL
		}
		var err error
		if rows[i].paramsJSON, err = encodeParams(r.Params); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// CreateReferral stores an intake atomically: all or nothing. It returns
// EDUPLICATE with Error.Existing set when MessageID was already processed
// ("MessageHeader/<request id>"), when the referral identifier is stored
// ("ServiceRequest/<id>"), or when NewPerson is set and the NHS number is
// stored ("Patient/<id>"; but "ServiceRequest/<id>" if the identifier is
// stored too). It returns ECONFLICT when a person, referral, Task or resource
// id is taken, ENOTFOUND when an existing person to link is not stored, and
// EINVALID when the intake is incomplete or not at version 1. It records the
// referral's first event: version 1, "received" by the "requester" at
// ReceivedAt, with the referral's status.
func (db *DB) CreateReferral(ctx context.Context, in *linkbridge.Intake) error {
	if in == nil || in.Referral == nil {
		return linkbridge.Errorf(linkbridge.EINVALID, "intake has no referral")
	}
	if in.NewPerson && in.Person == nil {
		return linkbridge.Errorf(linkbridge.EINVALID, "intake has a new person but no person")
	}
	if in.Referral.Version != 1 {
		return linkbridge.Errorf(linkbridge.EINVALID, "a new referral must be at version 1, not %d", in.Referral.Version)
	}
	ref, err := newReferralRow(in.Referral)
	if err != nil {
		return err
	}
	res, err := newResourceRows(in.Resources)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.versionID != 1 {
			return linkbridge.Errorf(linkbridge.EINVALID, "new resource %s/%s must be at version 1, not %d", r.typ, r.id, r.versionID)
		}
	}
	var person *linkbridge.Person
	var personCreated string
	if in.NewPerson {
		p := *in.Person
		person = &p
		personCreated = formatTime(p.CreatedAt)
	}
	msgID := in.MessageID
	subject := writeSubject{messageID: msgID, person: person, ref: ref}
	// The referral's history starts with its receipt.
	received := []any{ref.id, 1, ref.receivedAt, "received", "requester", ref.status}

	return db.w.do(ctx, func(w *writer) error {
		if err := w.recordMessage(msgID); err != nil {
			return err
		}
		if person != nil {
			if _, err := w.insPerson.ExecContext(bg, person.ID, person.NHSNumber, person.BirthDate, person.GPODS, personCreated); err != nil {
				return w.formatError(err, "create person", subject)
			}
		}
		if _, err := w.insReferral.ExecContext(bg, ref.args()...); err != nil {
			return w.formatError(err, "create referral", subject)
		}
		if _, err := w.insEvent.ExecContext(bg, received...); err != nil {
			return fmt.Errorf("sqlite: record event: %w", err)
		}
		if err := w.createResources(res); err != nil {
			return err
		}
		return w.grantAccess(ref, res, ref.personID)
	})
}

// args returns the row's values in referralColumnList order.
func (r *referralRow) args() []any {
	return []any{r.id, r.taskID, r.personID, r.identifierSystem, r.identifierValue, r.status,
		r.businessStatus, r.statusReason, r.requestStatus, r.priority, r.referrerODS, r.serviceODS,
		r.reasons, r.doNotContact, r.linkWorkerID, r.linkWorkerName, r.consent,
		r.declineReason, r.dischargeReason, r.dischargeSummary, r.acceptedAt, r.completedAt,
		r.authoredOn, r.receivedAt, r.updatedAt, r.version}
}

// UpdateReferral applies a change atomically. It returns ENOTFOUND when the
// referral does not exist, EPRECONDITION when the referral is not at
// Version-1 or a resource is not at VersionID-1 (or, for VersionID 1, exists
// already), and EDUPLICATE when MessageID was already processed.
//
// In the same transaction it replaces the plan when Plan is set, adds
// Contacts and Measures (ECONFLICT when an id is taken), appends Event
// when set and enqueues the Outbox messages (see newOutboxRows; on success
// each message's ID, State and defaulted times are set to what was stored);
// if any of it fails, nothing of the change is stored. Entries
// that name no referral are the change's referral's; an event's zero
// Version, At and Status default to the new referral's Version, UpdatedAt
// and Status. A change that names another referral or version in its
// entries, or an event without an action, is EINVALID.
func (db *DB) UpdateReferral(ctx context.Context, ch *linkbridge.ReferralChange) error {
	if ch == nil || ch.Referral == nil {
		return linkbridge.Errorf(linkbridge.EINVALID, "change has no referral")
	}
	ref, err := newReferralRow(ch.Referral)
	if err != nil {
		return err
	}
	res, err := newResourceRows(ch.Resources)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.versionID < 1 {
			return linkbridge.Errorf(linkbridge.EINVALID, "resource %s/%s has version %d", r.typ, r.id, r.versionID)
		}
	}
	cr, err := newCaseRows(ch)
	if err != nil {
		return err
	}
	ob, err := newOutboxRows(ch, db.Now())
	if err != nil {
		return err
	}
	msgID := ch.MessageID

	err = db.w.do(ctx, func(w *writer) error {
		if err := w.recordMessage(msgID); err != nil {
			return err
		}
		a := ref.args()
		// SET takes every column but id; WHERE takes id and the stored version.
		args := append(a[1:len(a):len(a)], ref.id, ref.version-1)
		result, err := w.updReferral.ExecContext(bg, args...)
		if err != nil {
			return w.formatError(err, "update referral", writeSubject{ref: ref})
		}
		if n, err := result.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: update referral: %w", err)
		} else if n == 0 {
			var stored int
			switch err := w.selReferralVersion.QueryRowContext(bg, ref.id).Scan(&stored); {
			case errors.Is(err, sql.ErrNoRows):
				return linkbridge.Errorf(linkbridge.ENOTFOUND, "referral %s not found", ref.id)
			case err != nil:
				return fmt.Errorf("sqlite: update referral: %w", err)
			}
			return linkbridge.Errorf(linkbridge.EPRECONDITION, "referral %s is at version %d, so the next version is %d, not %d",
				ref.id, stored, stored+1, ref.version)
		}
		for i := range res {
			r := &res[i]
			if r.versionID == 1 {
				if err := w.createResources(res[i : i+1]); err != nil {
					if linkbridge.ErrorCode(err) == linkbridge.ECONFLICT {
						return linkbridge.Errorf(linkbridge.EPRECONDITION, "%s/%s exists already: version 1 cannot be created", r.typ, r.id)
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
		if err := cr.apply(w); err != nil {
			return err
		}
		return ob.apply(w)
	})
	if err != nil {
		return err
	}
	ob.stored()
	return nil
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
		args = append(args, r.typ, r.id, r.versionID, r.lastUpdated, r.body, r.paramsJSON)
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
		if serr := w.selResourceExists.QueryRowContext(bg, r.typ, r.id).Scan(&n); serr != nil {
			return fmt.Errorf("sqlite: create resources: %w", serr)
		}
		if n > 0 {
			e := linkbridge.Errorf(linkbridge.ECONFLICT, "%s/%s exists already", r.typ, r.id)
			e.Existing = r.typ + "/" + r.id
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
	switch err := w.selResource.QueryRowContext(bg, r.typ, r.id).Scan(&stored, &oldParams); {
	case errors.Is(err, sql.ErrNoRows):
		return linkbridge.Errorf(linkbridge.EPRECONDITION, "%s/%s is not at version %d: it does not exist", r.typ, r.id, r.versionID-1)
	case err != nil:
		return fmt.Errorf("sqlite: update resource: %w", err)
	case stored != r.versionID-1:
		return linkbridge.Errorf(linkbridge.EPRECONDITION, "%s/%s is at version %d, not %d", r.typ, r.id, stored, r.versionID-1)
	}
	if _, err := w.insHistory.ExecContext(bg, r.typ, r.id); err != nil {
		return fmt.Errorf("sqlite: update resource history: %w", err)
	}
	if _, err := w.updResource.ExecContext(bg, r.versionID, r.lastUpdated, r.body, r.paramsJSON, r.typ, r.id); err != nil {
		return fmt.Errorf("sqlite: update resource: %w", err)
	}
	old, err := decodeParams(oldParams)
	if err != nil {
		return fmt.Errorf("sqlite: update resource %s/%s: %w", r.typ, r.id, err)
	}
	keep := make(map[linkbridge.SearchParam]bool, len(r.params))
	for _, p := range r.params {
		keep[p] = true
	}
	had := make(map[linkbridge.SearchParam]bool, len(old))
	for _, p := range old {
		if had[p] {
			continue
		}
		had[p] = true
		if keep[p] {
			continue
		}
		if _, err := w.delParam.ExecContext(bg, r.typ, p.Name, p.Value, r.id); err != nil {
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
		n += len(rs[i].params)
	}
	if n == 0 {
		return nil
	}
	args := make([]any, 0, 4*n)
	for i := range rs {
		r := &rs[i]
		for _, p := range r.params {
			if !skip[p] {
				args = append(args, r.typ, r.id, p.Name, p.Value)
			}
		}
	}
	if err := w.execRows(paramInsert, paramInsertTail, 4, args); err != nil {
		return fmt.Errorf("sqlite: index search parameters: %w", err)
	}
	return nil
}

// encodeParams renders search parameter values as resource.params stores
// them: a JSON array of [name, value] pairs.
func encodeParams(ps []linkbridge.SearchParam) (string, error) {
	if len(ps) == 0 {
		return "[]", nil
	}
	pairs := make([][2]string, len(ps))
	for i, p := range ps {
		pairs[i] = [2]string{p.Name, p.Value}
	}
	b, err := json.Marshal(pairs)
	if err != nil {
		return "", fmt.Errorf("sqlite: encode search parameters: %w", err)
	}
	return string(b), nil
}

// decodeParams reads resource.params.
func decodeParams(s string) ([]linkbridge.SearchParam, error) {
	if s == "[]" || s == "" {
		return nil, nil
	}
	var pairs [][2]string
	if err := json.Unmarshal([]byte(s), &pairs); err != nil {
		return nil, fmt.Errorf("bad stored search parameters: %w", err)
	}
	ps := make([]linkbridge.SearchParam, len(pairs))
	for i, p := range pairs {
		ps[i] = linkbridge.SearchParam{Name: p[0], Value: p[1]}
	}
	return ps, nil
}

// writeSubject is what a request writes, for naming the rows that a failed
// constraint collided with.
type writeSubject struct {
	messageID string
	person    *linkbridge.Person
	ref       *referralRow
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
		return linkbridge.Errorf(linkbridge.ENOTFOUND, "person %s not found", s.ref.personID)
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
	case "referral.identifier_system, referral.identifier_value":
		if id, ok, err := w.referralIDByIdentifier(s.ref); err != nil {
			return err
		} else if ok {
			return withExisting(linkbridge.EDUPLICATE, "ServiceRequest/"+id,
				"the referral identifier is stored already, as referral %s", id)
		}
	case "referral.id":
		if s.ref != nil {
			return withExisting(linkbridge.ECONFLICT, "ServiceRequest/"+s.ref.id,
				"referral %s exists already", s.ref.id)
		}
	case "referral.task_id":
		if s.ref != nil {
			return withExisting(linkbridge.ECONFLICT, "Task/"+s.ref.taskID,
				"Task %s already tracks another referral", s.ref.taskID)
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// referralIDByIdentifier looks up the stored referral with ref's business
// identifier, inside the write transaction.
func (w *writer) referralIDByIdentifier(ref *referralRow) (id string, ok bool, err error) {
	if ref == nil {
		return "", false, nil
	}
	err = w.selReferralIDByIdentifier.QueryRowContext(bg, ref.identifierSystem, ref.identifierValue).Scan(&id)
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

// FindReferralByIdentifier returns the referral with a business identifier,
// or ENOTFOUND.
func (db *DB) FindReferralByIdentifier(ctx context.Context, id linkbridge.Identifier) (*linkbridge.Referral, error) {
	return db.findReferral(ctx, "referral with this identifier",
		`WHERE identifier_system = ? AND identifier_value = ?`, id.System, id.Value)
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
	row := q.QueryRowContext(ctx, `SELECT `+referralColumns+` FROM referral `+where, args...)
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

// scanReferral reads a row of referralColumns.
func scanReferral(row scanner) (*linkbridge.Referral, error) {
	var (
		r                                 linkbridge.Referral
		status, reasons, consent          string
		doNotContact                      int
		acceptedAt, completedAt           sql.NullString
		authoredOn, receivedAt, updatedAt string
	)
	if err := row.Scan(&r.ID, &r.TaskID, &r.PersonID, &r.Identifier.System, &r.Identifier.Value, &status,
		&r.BusinessStatus, &r.StatusReason, &r.RequestStatus, &r.Priority, &r.ReferrerODS, &r.ServiceODS,
		&reasons, &doNotContact, &r.LinkWorker.ID, &r.LinkWorker.Name, &consent,
		&r.DeclineReason, &r.DischargeReason, &r.DischargeSummary, &acceptedAt, &completedAt,
		&authoredOn, &receivedAt, &updatedAt, &r.Version); err != nil {
		return nil, err
	}
	r.Status = linkbridge.TaskStatus(status)
	r.Consent = linkbridge.ConsentLevel(consent)
	r.DoNotContact = doNotContact != 0
	if reasons != "[]" && reasons != "" {
		if err := json.Unmarshal([]byte(reasons), &r.Reasons); err != nil {
			return nil, fmt.Errorf("bad stored reasons: %w", err)
		}
	}
	if err := parseTimes(storedTime{&r.AuthoredOn, authoredOn}, storedTime{&r.ReceivedAt, receivedAt},
		storedTime{&r.UpdatedAt, updatedAt}, storedTime{&r.AcceptedAt, acceptedAt.String},
		storedTime{&r.CompletedAt, completedAt.String}); err != nil {
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
