package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// writeReq is one write waiting for the writer. apply runs inside the
// request's own SAVEPOINT; it is built by the caller's goroutine, with its
// arguments already converted, so the writer goroutine only runs SQL.
type writeReq struct {
	ctx   context.Context
	apply func(w *writer) error
	done  chan error // buffered (1): the writer never blocks answering
	// alone runs the request in a transaction of its own, without a
	// savepoint: a bulk write (WriteBatch), whose savepoint journal would
	// grow with it and make each statement slower than the last.
	alone bool
}

// writer owns the single write connection. It commits requests in groups:
// see the package documentation.
type writer struct {
	db   *DB
	conn *sql.Conn
	log  *slog.Logger

	reqs    chan *writeReq // unbuffered: a waiting sender is a queued request
	quit    chan struct{}  // closed by stop
	stopped chan struct{}  // closed when run returns

	// now is the time of the batch in progress, as stored.
	now string

	// Statements prepared once on the write connection.
	begin, commit, rollback        *sql.Stmt
	savepoint, release, rollbackTo *sql.Stmt
	resetTimeout, writeTimeout     *sql.Stmt // set busy_timeout
	insMessage                     *sql.Stmt
	insPerson, selPersonIDByNHS    *sql.Stmt
	insReferral, updReferral       *sql.Stmt
	selReferralVersion             *sql.Stmt
	selReferralIDByIdentifier      *sql.Stmt
	selReferralIDByOpenKey         *sql.Stmt
	selResource, updResource       *sql.Stmt
	insHistory, delParam           *sql.Stmt
	selResourceExists              *sql.Stmt
	upsertPlan, insContact         *sql.Stmt
	insMeasure, insEvent           *sql.Stmt
	updContact, updMeasure         *sql.Stmt
	upsertIdentity, delIdentity    *sql.Stmt
	ob                             outboxStmts
	stmts                          []*sql.Stmt

	// cached holds the statements the writer prepared on first use, by
	// their SQL (see stmt).
	cached map[string]*sql.Stmt
}

// bg is the context of every statement the writer runs. A caller's context
// must not reach SQLite: cancelling it would interrupt a statement, and an
// interrupted write rolls back the whole shared transaction. Callers'
// contexts are checked before their request starts instead.
var bg = context.Background()

// startWriter takes the write connection, prepares the statements and
// starts the writer goroutine.
func startWriter(ctx context.Context, db *DB) (*writer, error) {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: start writer: %w", err)
	}
	w := &writer{
		db:      db,
		conn:    conn,
		log:     db.Logger,
		cached:  make(map[string]*sql.Stmt),
		reqs:    make(chan *writeReq),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	prep := func(dst **sql.Stmt, query string) {
		if err != nil {
			return
		}
		var s *sql.Stmt
		if s, err = conn.PrepareContext(ctx, query); err != nil {
			err = fmt.Errorf("sqlite: prepare %q: %w", query, err)
			return
		}
		*dst = s
		w.stmts = append(w.stmts, s)
	}
	prep(&w.begin, `BEGIN IMMEDIATE`)
	prep(&w.commit, `COMMIT`)
	prep(&w.rollback, `ROLLBACK`)
	prep(&w.savepoint, `SAVEPOINT req`)
	prep(&w.release, `RELEASE req`)
	prep(&w.rollbackTo, `ROLLBACK TO req`)
	prep(&w.resetTimeout, `PRAGMA busy_timeout = `+strconv.FormatInt(walResetTimeout.Milliseconds(), 10))
	prep(&w.writeTimeout, `PRAGMA busy_timeout = `+strconv.FormatInt(busyTimeout.Milliseconds(), 10))
	prep(&w.insMessage, `INSERT INTO message (request_id, received_at) VALUES (?, ?)`)
	prep(&w.insPerson, `INSERT INTO person (id, nhs_number, birth_date, gp_ods, created_at) VALUES (?, ?, ?, ?, ?)`)
	prep(&w.selPersonIDByNHS, `SELECT id FROM person WHERE nhs_number = ?`)
	prep(&w.insReferral, `INSERT INTO referral (`+sqlshared.ReferralColumns+`) VALUES (`+placeholders(len(sqlshared.ReferralColumnList))+`)`)
	// SET takes every column but id; WHERE takes id and the stored version.
	prep(&w.updReferral, `UPDATE referral SET `+strings.Join(sqlshared.ReferralColumnList[1:], ` = ?, `)+` = ?
		WHERE id = ? AND version = ?`)
	prep(&w.selReferralVersion, `SELECT version FROM referral WHERE id = ?`)
	prep(&w.selReferralIDByIdentifier, `SELECT id FROM referral WHERE referrer_ods = ? AND identifier_system = ? AND identifier_value = ?`)
	prep(&w.selReferralIDByOpenKey, `SELECT id FROM referral WHERE open_key = ?`)
	prep(&w.selResource, `SELECT version_id, params FROM resource WHERE type = ? AND id = ?`)
	prep(&w.insHistory, `INSERT INTO resource_history (type, id, version_id, last_updated, body)
		SELECT type, id, version_id, last_updated, body FROM resource WHERE type = ? AND id = ?`)
	prep(&w.updResource, `UPDATE resource SET version_id = ?, last_updated = ?, body = ?, params = ?
		WHERE type = ? AND id = ?`)
	prep(&w.delParam, `DELETE FROM search_param WHERE type = ? AND name = ? AND value = ? AND id = ? AND system = ?`)
	prep(&w.selResourceExists, `SELECT COUNT(*) FROM resource WHERE type = ? AND id = ?`)
	prep(&w.upsertPlan, `INSERT INTO case_plan (referral_id, body) VALUES (?, ?)
		ON CONFLICT (referral_id) DO UPDATE SET body = excluded.body`)
	prep(&w.insContact, `INSERT INTO contact (id, referral_id, at, mode, minutes, attended, notes, created_at,
		amended_at, withdrawn_at, withdrawn_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	prep(&w.insMeasure, `INSERT INTO measure (id, referral_id, instrument, timepoint, items, total, metric, taken_at, created_at,
		amended_at, withdrawn_at, withdrawn_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	prep(&w.updContact, sqlshared.ContactUpdateSQL(func(int) string { return "?" }))
	prep(&w.updMeasure, sqlshared.MeasureUpdateSQL(func(int) string { return "?" }, ""))
	prep(&w.insEvent, `INSERT INTO referral_event (referral_id, version, at, action, actor, status, occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	prepareOutbox(&w.ob, prep)
	prepareEndpointIdentity(w, prep)
	if err != nil {
		_ = w.close()
		return nil, err
	}
	go w.run()
	return w, nil
}

// Multi-row INSERTs: one statement per table and request instead of one per
// row. Each statement is a head, n copies of a row of placeholders, and a
// tail; the writer prepares each n it meets once.
//
// OR FAIL (search_param, resource_access, audit_event, audit_entity): on a
// constraint error the statement keeps the rows it inserted before it
// instead of undoing them, so SQLite keeps no statement journal for it (a
// multi-row INSERT that may abort copies every page it changes into one:
// 7% of a seed's CPU, docs/performance.md#the-writers-cost-is-per-row).
// Every such error fails its request, whose savepoint (or the batch's
// transaction) is rolled back whole. The resource INSERT keeps ABORT:
// after a conflict, existingResource looks up which row was there before.
const (
	resourceInsert = `INSERT INTO resource (type, id, version_id, last_updated, body, params) VALUES `
	paramInsert    = `INSERT OR FAIL INTO search_param (type, id, name, value, system) VALUES `
	// A resource may carry the same value twice; the index keeps one.
	paramInsertTail = ` ON CONFLICT DO NOTHING`
	// maxRowsPerInsert bounds the statements (and so the cache): longer
	// lists are inserted in chunks.
	maxRowsPerInsert = 32
)

// maxCachedStmts bounds the statements stmt keeps: past it, a statement
// is prepared for each use and closed after it. The writer's SQL is a fixed
// set of texts (a multi-row INSERT has at most maxRowsPerInsert variants,
// a list of topics a handful), so the bound is never reached in practice.
const maxCachedStmts = 256

// stmt returns query prepared on the write connection, once: modernc's
// driver compiles the SQL of every unprepared call again, which cost
// intake more than the subscription query it ran (0.14 ms a referral).
// done releases a statement that was not kept; call it after the
// statement's last use.
func (w *writer) stmt(query string) (st *sql.Stmt, done func(), err error) {
	if st, ok := w.cached[query]; ok {
		return st, func() {}, nil
	}
	if st, err = w.conn.PrepareContext(bg, query); err != nil {
		return nil, nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	if len(w.cached) >= maxCachedStmts {
		return st, func() { _ = st.Close() }, nil
	}
	w.cached[query] = st
	w.stmts = append(w.stmts, st)
	return st, func() {}, nil
}

// exec runs query, prepared once (stmt), with args.
func (w *writer) exec(query string, args ...any) (sql.Result, error) {
	st, done, err := w.stmt(query)
	if err != nil {
		return nil, err
	}
	defer done()
	return st.ExecContext(bg, args...)
}

// queryRow runs query, prepared once (stmt), with args and scans its
// first row into dest: sql.ErrNoRows when there is none.
func (w *writer) queryRow(query string, args []any, dest ...any) error {
	st, done, err := w.stmt(query)
	if err != nil {
		return err
	}
	defer done()
	return st.QueryRowContext(bg, args...).Scan(dest...)
}

// query runs query, prepared once (stmt), with args and calls fn for each
// row.
func (w *writer) query(query string, args []any, fn func(*sql.Rows) error) error {
	st, done, err := w.stmt(query)
	if err != nil {
		return err
	}
	defer done()
	rows, err := st.QueryContext(bg, args...)
	return eachRow(rows, err, fn)
}

// execRows runs head+rows+tail over args, width values a row, in chunks of
// at most maxRowsPerInsert rows.
func (w *writer) execRows(head, tail string, width int, args []any) error {
	row := `(` + placeholders(width) + `)`
	for len(args) > 0 {
		n := min(len(args)/width, maxRowsPerInsert)
		if _, err := w.exec(head+strings.Repeat(row+`, `, n-1)+row+tail, args[:n*width]...); err != nil {
			return err
		}
		args = args[n*width:]
	}
	return nil
}

// do hands a request to the writer and waits for its outcome. Once the writer
// has taken the request, do waits for the answer even if ctx ends, because the
// request may already be committed; the wait is at most one batch.
func (w *writer) do(ctx context.Context, apply func(w *writer) error) error {
	return w.send(ctx, &writeReq{ctx: ctx, apply: apply, done: make(chan error, 1)})
}

// doAlone is do for a request that runs in a transaction of its own (see
// writeReq.alone).
func (w *writer) doAlone(ctx context.Context, apply func(w *writer) error) error {
	return w.send(ctx, &writeReq{ctx: ctx, apply: apply, done: make(chan error, 1), alone: true})
}

// send hands r to the writer and waits for its outcome (see do).
func (w *writer) send(ctx context.Context, r *writeReq) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case w.reqs <- r:
	case <-w.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-r.done
}

// run is the writer goroutine: wait for a request, gather the others that
// are waiting, commit them together, repeat until stopped.
func (w *writer) run() {
	defer close(w.stopped)
	batch := make([]*writeReq, 0, w.db.MaxBatch)
	var next *writeReq // taken while gathering, for the next round
	for {
		if next == nil {
			select {
			case next = <-w.reqs:
			case <-w.quit:
				return
			}
		}
		if next.alone {
			w.runAlone(next)
			next = nil
			continue
		}
		batch = append(batch[:0], next)
		next = nil
	gather:
		for len(batch) < w.db.MaxBatch {
			select {
			case r := <-w.reqs:
				if r.alone {
					next = r
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		w.runBatch(batch)
		clear(batch) // drop references to finished requests
	}
}

// runAlone runs one request in a transaction of its own, without a
// savepoint: all of it commits, or none.
func (w *writer) runAlone(r *writeReq) {
	if err := r.ctx.Err(); err != nil {
		r.done <- err
		return
	}
	w.now = formatTime(w.db.Now())
	if _, err := w.begin.ExecContext(bg); err != nil {
		r.done <- fmt.Errorf("sqlite: begin: %w", err)
		return
	}
	if err := r.apply(w); err != nil {
		if _, rerr := w.rollback.ExecContext(bg); rerr != nil {
			w.log.Debug("rollback write", slog.Any("error", rerr))
		}
		r.done <- err
		return
	}
	if _, err := w.commit.ExecContext(bg); err != nil {
		w.abort(fmt.Errorf("sqlite: commit: %w", err), func(err error) { r.done <- err })
		return
	}
	r.done <- nil
	if w.db.wantCheckpoint.CompareAndSwap(true, false) {
		w.resetWAL()
	}
}

// runBatch runs a batch in one transaction, each request in its own
// savepoint, and answers every request.
func (w *writer) runBatch(batch []*writeReq) {
	errs := make([]error, len(batch))
	answer := func() {
		for i, r := range batch {
			r.done <- errs[i]
		}
	}
	failAll := func(err error) {
		for i := range errs {
			errs[i] = err
		}
		answer()
	}

	w.now = formatTime(w.db.Now())
	if _, err := w.begin.ExecContext(bg); err != nil {
		w.log.Error("begin write batch", slog.Any("error", err))
		failAll(fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := w.savepoint.ExecContext(bg); err != nil {
			w.abort(fmt.Errorf("sqlite: savepoint: %w", err), failAll)
			return
		}
		if err := r.apply(w); err != nil {
			errs[i] = err
			// Undo this request only. If SQLite already rolled back the
			// whole transaction (I/O error, disk full), this fails and the
			// batch is lost.
			if _, rerr := w.rollbackTo.ExecContext(bg); rerr != nil {
				w.abort(fmt.Errorf("sqlite: rollback to savepoint: %w (after %w)", rerr, err), failAll)
				return
			}
		}
		if _, err := w.release.ExecContext(bg); err != nil {
			w.abort(fmt.Errorf("sqlite: release savepoint: %w", err), failAll)
			return
		}
	}
	if _, err := w.commit.ExecContext(bg); err != nil {
		// Every request fails, including those that failed already: their
		// errors may name rows of this batch that are now not stored.
		w.abort(fmt.Errorf("sqlite: commit: %w", err), failAll)
		return
	}
	answer()
	if w.db.wantCheckpoint.CompareAndSwap(true, false) {
		w.resetWAL()
	}
}

// resetWAL runs a RESTART checkpoint on the write connection, between
// batches: it copies what the background checkpoint left (what was written
// since it began), waits for the readers still reading WAL frames to finish,
// and restarts the WAL from its beginning. The wait is bounded by
// walResetTimeout; a checkpoint that runs out of it has still copied what it
// could, and the checkpointer asks again. See checkpoint.go.
func (w *writer) resetWAL() {
	if _, err := w.resetTimeout.ExecContext(bg); err != nil {
		w.log.Warn("writer checkpoint", slog.Any("error", err))
		return
	}
	res, err := checkpoint(w.conn, "RESTART")
	if err != nil {
		w.log.Warn("writer checkpoint", slog.Any("error", err))
	} else if res.busy {
		w.log.Debug("writer checkpoint: readers held the WAL", slog.Int("frames", res.log),
			slog.Int("checkpointed", res.checkpointed))
	}
	if _, err := w.writeTimeout.ExecContext(bg); err != nil {
		w.log.Warn("writer checkpoint", slog.Any("error", err))
	}
}

// abort rolls back the batch's transaction and fails every request with err.
func (w *writer) abort(err error, failAll func(error)) {
	w.log.Error("write batch failed", slog.Any("error", err))
	if _, rerr := w.rollback.ExecContext(bg); rerr != nil {
		// "no transaction is active" when SQLite rolled back already.
		w.log.Debug("rollback write batch", slog.Any("error", rerr))
	}
	failAll(err)
}

// stop makes the writer finish its batch in progress and return. Later
// writes get ErrClosed.
func (w *writer) stop() {
	close(w.quit)
	<-w.stopped
}

// close releases the statements and the write connection. The writer must
// not be running.
func (w *writer) close() error {
	var errs []error
	for _, s := range w.stmts {
		errs = append(errs, s.Close())
	}
	w.stmts = nil
	if w.conn != nil {
		errs = append(errs, w.conn.Close())
		w.conn = nil
	}
	return errors.Join(errs...)
}
