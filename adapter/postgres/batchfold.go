package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// A folded batch (docs/performance.md#a-batch-folded) writes what its ops
// write, table by table, in a few statements for the whole batch instead
// of a dozen for each op: on this machine a statement costs about 100 µs
// end to end whatever its rows, a row 10–20 µs, and a seeded referral
// took 119 statements. The referral rows (inserts, and the updates that
// check each change's version) go in one pipeline; resources, history,
// events, contacts, measures and audit records by COPY; search values,
// access keys, plans and notifications one statement each. Resources
// created and replaced within the batch are chained in memory: the
// resource table gets the last version, resource_history the ones before
// it. Only a resource stored before the batch is read (locked), by the
// change that first replaces it.
//
// What a fold cannot check as the ops one by one do (versions, unique
// keys) fails its transaction; WriteBatch then runs the batch again op by
// op, which reports the error as the per-request methods do. An op whose
// writes read what the batch wrote before it (an entry correction, a
// referral entered in error, whose revocation reads access rows, topic
// events, a message id) is run as it is alone, after the fold writes what
// it holds.

// foldedResource is the last version of a resource written by the batch,
// and what it replaces.
type foldedResource struct {
	row resourceRow
	// stored is set when the resource was stored before the batch, with
	// its params column as read: the fold replaces it and its values.
	stored       bool
	storedParams string
}

// fold is a batch's writes, gathered table by table.
type fold struct {
	// head are the statements that write referral and person rows (and
	// message ids), in op order, with what each must affect (-1: any).
	head     pgx.Batch
	headRows []int64

	resources map[[2]string]*foldedResource
	order     [][2]string // resources' keys in first-write order
	history   [][]any     // versions superseded within the batch
	access    [][3]string
	events    [][]any
	contacts  [][]any
	measures  [][]any
	plans     map[string]string // referral id -> last plan
	planOrder []string
	audits    [][]any
	entities  [][]any
	outbox    []*sqlshared.OutboxRows
	notify    [][]any
}

func newFold() *fold {
	return &fold{resources: map[[2]string]*foldedResource{}, plans: map[string]string{}}
}

// empty reports whether the fold holds nothing to write.
func (f *fold) empty() bool {
	return f.head.Len() == 0 && len(f.order) == 0 && len(f.history) == 0 && len(f.access) == 0 && len(f.events) == 0 &&
		len(f.contacts) == 0 && len(f.measures) == 0 && len(f.planOrder) == 0 && len(f.audits) == 0 &&
		len(f.outbox) == 0 && len(f.notify) == 0
}

// errFoldVersion is a version the fold found out of line: a resource
// version that does not follow the one before it, or a referral row that
// is not at the version a change expects (its update changed no row). The
// batch is written again op by op, which names it.
var errFoldVersion = errors.New("postgres: batch fold: a version does not follow the one before it")

// foldable reports whether an op can be folded: it reads nothing the
// batch writes before it.
func foldable(p *prepared) bool {
	if p.create != nil {
		return len(p.create.events) == 0
	}
	ch := p.change
	return len(ch.Events) == 0 && ch.MessageID == "" && len(p.rows.Case.ContactUpdates) == 0 &&
		len(p.rows.Case.MeasureUpdates) == 0 && !sqlshared.EnteredInError(p.rows.Referral)
}

// writeFolded writes ops in tx, folding what it can (see above).
func (db *DB) writeFolded(ctx context.Context, tx pgx.Tx, ps []prepared, rws []sqlshared.RowWrite) error {
	f := newFold()
	for i := range ps {
		p := &ps[i]
		if !foldable(p) {
			if err := f.flush(ctx, tx); err != nil {
				return err
			}
			f = newFold()
			if err := db.writeOp(ctx, tx, p, rws[i]); err != nil {
				return err
			}
			continue
		}
		if p.create != nil {
			f.addIntake(p.create, db.Now())
			continue
		}
		if err := f.addChange(ctx, tx, p.change, p.rows, rws[i]); err != nil {
			return err
		}
	}
	return f.flush(ctx, tx)
}

// addIntake folds an intake.
func (f *fold) addIntake(c *createWrite, now time.Time) {
	in, ref := c.in, c.ref
	if in.MessageID != "" {
		f.queueHead(-1, insMessage, in.MessageID, now)
	}
	if in.NewPerson {
		p := in.Person
		f.queueHead(1, insPerson, p.ID, p.NHSNumber, p.BirthDate, p.GPODS, p.CreatedAt)
	}
	f.queueHead(1, insReferral, c.refArgs...)
	f.events = append(f.events, sqlshared.EventArgs(linkbridge.ReceivedEvent(ref), columns))
	res := c.subject.resources
	for i := range res {
		f.resources[[2]string{res[i].Type, res[i].ID}] = &foldedResource{row: res[i]}
		f.order = append(f.order, [2]string{res[i].Type, res[i].ID})
	}
	f.access = append(f.access, sqlshared.AccessRows(ref, res, ref.Patient())...)
	f.addAudit(c.audit)
	f.notify = append(f.notify, notifyArgs(ref))
}

// addChange folds a change: its referral row write goes to the head, its
// resources onto the batch's chain (locking those stored before the
// batch), the rest to its tables.
func (f *fold) addChange(ctx context.Context, tx pgx.Tx, ch *linkbridge.ReferralChange, rows *sqlshared.ChangeRows, rw sqlshared.RowWrite) error {
	ref := rows.Referral
	if !rw.Skip {
		f.queueHead(1, updReferral, append(slices.Clone(rows.ReferralArgs), rw.Expect)...)
	}
	if err := f.chainResources(ctx, tx, rows.Resources); err != nil {
		return err
	}
	f.access = append(f.access, sqlshared.AccessRows(ref, rows.Resources, "")...)
	cr := rows.Case
	if cr.Plan != nil {
		if _, ok := f.plans[cr.ReferralID]; !ok {
			f.planOrder = append(f.planOrder, cr.ReferralID)
		}
		f.plans[cr.ReferralID] = *cr.Plan
	}
	f.contacts = append(f.contacts, cr.Contacts...)
	f.measures = append(f.measures, cr.Measures...)
	if cr.Event != nil {
		f.events = append(f.events, cr.Event)
	}
	f.addAudit(rows.Audit)
	if rows.Outbox != nil {
		f.outbox = append(f.outbox, rows.Outbox)
	}
	f.notify = append(f.notify, notifyArgs(ref))
	return nil
}

// queueHead queues a head statement that must affect want rows (-1: any).
func (f *fold) queueHead(want int64, sql string, args ...any) {
	f.head.Queue(sql, args...)
	f.headRows = append(f.headRows, want)
}

// addAudit folds an audit record and its entity index (none for nil).
func (f *fold) addAudit(ar *sqlshared.AuditRow) {
	if ar == nil {
		return
	}
	f.audits = append(f.audits, ar.Args)
	for _, e := range ar.Index {
		f.entities = append(f.entities, []any{e, ar.ID})
	}
}

// chainResources puts a change's resource versions on the batch's chain.
// A version must follow the batch's last version of its resource; a
// resource the batch has not written yet is new at version 1, or else is
// read and locked (as queueResources does) and must follow the stored
// version.
func (f *fold) chainResources(ctx context.Context, tx pgx.Tx, res []resourceRow) error {
	var lock [][2]string
	for i := range res {
		k := [2]string{res[i].Type, res[i].ID}
		if _, ok := f.resources[k]; !ok && res[i].VersionID > 1 {
			lock = append(lock, k)
		}
	}
	if len(lock) > 0 {
		var b *pgx.Batch
		lock, b = lockResources(lock)
		br := tx.SendBatch(ctx, b)
		for _, k := range lock {
			var version int
			var params string
			if err := br.QueryRow().Scan(&version, &params); err != nil {
				_ = br.Close()
				if errors.Is(err, pgx.ErrNoRows) {
					return errFoldVersion
				}
				return fmt.Errorf("postgres: update resources: %w", err)
			}
			f.resources[k] = &foldedResource{row: resourceRow{Type: k[0], ID: k[1], VersionID: version},
				stored: true, storedParams: params}
			f.order = append(f.order, k)
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("postgres: update resources: %w", err)
		}
	}
	for i := range res {
		r := res[i]
		k := [2]string{r.Type, r.ID}
		last, ok := f.resources[k]
		switch {
		case !ok && r.VersionID == 1:
			f.resources[k] = &foldedResource{row: r}
			f.order = append(f.order, k)
			continue
		case !ok || last.row.VersionID != r.VersionID-1:
			return errFoldVersion
		}
		if !last.stored || last.row.Body != nil {
			// A version the batch wrote is superseded: it goes to the
			// history as it would have been copied there.
			h := last.row
			f.history = append(f.history, []any{h.Type, h.ID, h.VersionID, h.LastUpdated, h.Body})
		}
		last.row = r
	}
	return nil
}

// flush writes what the fold holds, in an order the foreign keys and
// the outbox's locks accept: the head (people and referrals), the
// resources and their search values and access keys, the case record's
// rows, audit records, write-backs, then the notifications.
func (f *fold) flush(ctx context.Context, tx pgx.Tx) error {
	if f.empty() {
		return nil
	}
	if f.head.Len() > 0 {
		br := tx.SendBatch(ctx, &f.head)
		for _, want := range f.headRows {
			tag, err := br.Exec()
			if err == nil && want >= 0 && tag.RowsAffected() != want {
				err = errFoldVersion
			}
			if err != nil {
				_ = br.Close()
				return err
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
	}
	var (
		created, params [][]any
		stored          pgx.Batch
	)
	for _, k := range f.order {
		fr := f.resources[k]
		r := fr.row
		if !fr.stored {
			created = append(created, []any{r.Type, r.ID, r.VersionID, r.LastUpdated, r.Body, r.ParamsJSON})
			params = appendParams(params, r, nil)
			continue
		}
		if r.Body == nil {
			continue // locked, not replaced
		}
		// Replaced: the stored version goes to the history and its
		// values that the last version no longer has go, as
		// queueResources writes them.
		stored.Queue(copyHistory, r.Type, r.ID)
		stored.Queue(updResource, r.VersionID, r.LastUpdated, r.Body, r.ParamsJSON, r.Type, r.ID)
		del, had, err := sqlshared.ParamChanges(fr.storedParams, r.Params)
		if err != nil {
			return fmt.Errorf("postgres: update resource %s/%s: %w", r.Type, r.ID, err)
		}
		for _, p := range del {
			stored.Queue(delParam, r.Type, p.Name, p.Value, r.ID, p.System)
		}
		if args, ok := paramArrays([]resourceRow{r}, had); ok {
			stored.Queue(insParams, args...)
		}
	}
	if stored.Len() > 0 {
		if err := tx.SendBatch(ctx, &stored).Close(); err != nil {
			return fmt.Errorf("postgres: update resources: %w", err)
		}
	}
	copies := []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"resource", []string{"type", "id", "version_id", "last_updated", "body", "params"}, created},
		{"resource_history", []string{"type", "id", "version_id", "last_updated", "body"}, f.history},
		{"search_param", []string{"type", "id", "name", "value", "system"}, params},
		{"referral_event", []string{"referral_id", "version", "at", "action", "actor", "status", "occurred_at"}, f.events},
		{"contact", []string{"id", "referral_id", "at", "mode", "minutes", "attended", "notes", "created_at",
			"amended_at", "withdrawn_at", "withdrawn_reason"}, f.contacts},
		{"measure", []string{"id", "referral_id", "instrument", "timepoint", "items", "total", "metric", "taken_at",
			"created_at", "amended_at", "withdrawn_at", "withdrawn_reason"}, f.measures},
		{"audit_event", sqlshared.AuditColumnList, f.audits},
		{"audit_entity", []string{"entity", "audit_id"}, f.entities},
	}
	for _, c := range copies {
		if len(c.rows) == 0 {
			continue
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			return fmt.Errorf("postgres: batch: copy %s: %w", c.table, err)
		}
	}
	var b pgx.Batch
	if args, ok := accessRowArrays(f.access); ok {
		b.Queue(insAccess, args...)
	}
	if len(f.planOrder) > 0 {
		bodies := make([]string, len(f.planOrder))
		for i, id := range f.planOrder {
			bodies[i] = f.plans[id]
		}
		b.Queue(`INSERT INTO case_plan (referral_id, body) SELECT r, b::json FROM unnest($1::text[], $2::text[]) AS u (r, b)
			ON CONFLICT (referral_id) DO UPDATE SET body = excluded.body`, f.planOrder, bodies)
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return fmt.Errorf("postgres: batch: %w", err)
		}
	}
	if err := f.flushOutbox(ctx, tx); err != nil {
		return err
	}
	return f.flushNotify(ctx, tx)
}

// appendParams appends the search values of r but those in skip to rows,
// once each (a resource may carry a value twice), as search_param rows.
func appendParams(rows [][]any, r resourceRow, skip map[linkbridge.SearchParam]bool) [][]any {
	seen := make(map[linkbridge.SearchParam]bool, len(r.Params))
	for _, p := range r.Params {
		if skip[p] || seen[p] {
			continue
		}
		seen[p] = true
		rows = append(rows, []any{r.Type, r.ID, p.Name, p.Value, p.System})
	}
	return rows
}

// flushOutbox enqueues the fold's write-backs as the changes one by one
// would: their order keys locked (in one sorted statement), then the
// messages inserted in op order, so that a key's ids follow its changes.
func (f *fold) flushOutbox(ctx context.Context, tx pgx.Tx) error {
	if len(f.outbox) == 0 {
		return nil
	}
	all := &sqlshared.OutboxRows{}
	for _, o := range f.outbox {
		all.Msgs = append(all.Msgs, o.Msgs...)
	}
	if err := lockOutboxKeys(ctx, tx, all); err != nil {
		return err
	}
	for _, o := range f.outbox {
		if err := insertOutbox(ctx, tx, o); err != nil {
			return err
		}
	}
	return nil
}

// flushNotify sends the fold's notifications, in op order, in one
// statement.
func (f *fold) flushNotify(ctx context.Context, tx pgx.Tx) error {
	if len(f.notify) == 0 {
		return nil
	}
	ids, refs, svcs := make([]string, len(f.notify)), make([]string, len(f.notify)), make([]string, len(f.notify))
	versions := make([]int32, len(f.notify))
	for i, n := range f.notify {
		ids[i], versions[i], refs[i], svcs[i] = n[0].(string), int32(n[1].(int)), n[2].(string), n[3].(string)
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify('`+feedChannel+`', json_build_object(
		'schema', current_schema(), 'referral', r, 'version', v, 'referrer', rf, 'service', s)::text)
		FROM unnest($1::text[], $2::int4[], $3::text[], $4::text[]) WITH ORDINALITY AS u (r, v, rf, s, n) ORDER BY n`,
		ids, versions, refs, svcs)
	if err != nil {
		return fmt.Errorf("postgres: notify: %w", err)
	}
	return nil
}
