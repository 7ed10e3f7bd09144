package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// Reads return resources without Params: the store indexes them but does
// not return them.

// ReadResource returns the current version of a resource, or ENOTFOUND.
func (db *DB) ReadResource(ctx context.Context, typ, id string) (*linkbridge.Resource, error) {
	r := &linkbridge.Resource{Type: typ, ID: id}
	err := db.pool.QueryRow(ctx, `SELECT version_id, last_updated, body FROM resource WHERE type = $1 AND id = $2`, typ, id).
		Scan(&r.VersionID, &r.LastUpdated, &r.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s not found", typ, id)
	} else if err != nil {
		return nil, fmt.Errorf("postgres: read resource: %w", err)
	}
	r.LastUpdated = utc(r.LastUpdated)
	if err := sqlshared.DecodeBody(r); err != nil {
		return nil, err
	}
	return r, nil
}

// ReadResourceVersion returns one version of a resource, or ENOTFOUND.
func (db *DB) ReadResourceVersion(ctx context.Context, typ, id string, version int) (*linkbridge.Resource, error) {
	r := &linkbridge.Resource{Type: typ, ID: id, VersionID: version}
	// The current version is in resource, the versions it replaced in
	// resource_history; one statement reads both from one snapshot.
	err := db.pool.QueryRow(ctx, `SELECT last_updated, body FROM resource
		WHERE type = $1 AND id = $2 AND version_id = $3
		UNION ALL
		SELECT last_updated, body FROM resource_history
		WHERE type = $1 AND id = $2 AND version_id = $3`, typ, id, version).
		Scan(&r.LastUpdated, &r.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s version %d not found", typ, id, version)
	} else if err != nil {
		return nil, fmt.Errorf("postgres: read resource version: %w", err)
	}
	r.LastUpdated = utc(r.LastUpdated)
	if err := sqlshared.DecodeBody(r); err != nil {
		return nil, err
	}
	return r, nil
}

// ResourceHistory returns every version of a resource, newest first, or
// ENOTFOUND.
func (db *DB) ResourceHistory(ctx context.Context, typ, id string) ([]*linkbridge.Resource, error) {
	var out []*linkbridge.Resource
	err := queryRows(ctx, db.pool, `SELECT version_id, last_updated, body FROM resource
		WHERE type = $1 AND id = $2
		UNION ALL
		SELECT version_id, last_updated, body FROM resource_history
		WHERE type = $1 AND id = $2
		ORDER BY version_id DESC`, []any{typ, id}, func(rows pgx.Rows) error {
		r := &linkbridge.Resource{Type: typ, ID: id}
		if err := rows.Scan(&r.VersionID, &r.LastUpdated, &r.Body); err != nil {
			return err
		}
		r.LastUpdated = utc(r.LastUpdated)
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: resource history: %w", err)
	}
	if len(out) == 0 {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s not found", typ, id)
	}
	for _, r := range out {
		if err := sqlshared.DecodeBody(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Dates compare with sqlshared.DateOp's operators on timestamptz, the
// bounds rounded as ceilMicro says.

// SearchResources returns one page of the current versions matching q,
// ordered by lastUpdated then id (byte order: the id columns are COLLATE
// "C"), with the number of matches, counted as far as q.CountLimit says. It
// returns EINVALID for a query without a type, with Count below 1, a
// negative Offset or an unsupported date prefix. A parameter filter without
// values matches nothing; so does an Access without keys.
//
// The page is read first: a page that is not full tells the total without
// a count (the common case of a poll or a patient's resources), and only a
// full page, or an empty one past the first, needs the count. Everything
// comes from one snapshot, so it agrees.
func (db *DB) SearchResources(ctx context.Context, q *linkbridge.ResourceQuery) (*linkbridge.SearchResult, error) {
	s, err := buildSearch(q)
	if err != nil {
		return nil, err
	}
	res := &linkbridge.SearchResult{}
	err = db.readTx(ctx, func(tx pgx.Tx) error {
		res.Resources = res.Resources[:0]
		if err := s.choose(ctx, tx); err != nil {
			return err
		}
		sql, args := s.page(q.Count, q.Offset)
		err := queryRows(ctx, tx, sql, args, func(rows pgx.Rows) error {
			r := &linkbridge.Resource{Type: q.Type}
			if err := rows.Scan(&r.ID, &r.VersionID, &r.LastUpdated, &r.Body); err != nil {
				return err
			}
			r.LastUpdated = utc(r.LastUpdated)
			res.Resources = append(res.Resources, r)
			return nil
		})
		if err != nil {
			return err
		}
		sortPage(res.Resources, q.Descending)
		n := len(res.Resources)
		if n > 0 && n < q.Count || n == 0 && q.Offset == 0 {
			res.Total, res.TotalExact = q.Offset+n, true
			return nil
		}
		limit := q.CountLimit()
		if limit == 0 && s.settings {
			if _, err := tx.Exec(ctx, resetSettings, pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("count: %w", err)
			}
		}
		sql, args = s.count(limit)
		if err := tx.QueryRow(ctx, sql, args...).Scan(&res.Total); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		res.TotalExact = limit == 0 || res.Total < limit
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: search: %w", err)
	}
	// Decoded after the read transaction, which need not stay open for it.
	for _, r := range res.Resources {
		if err := sqlshared.DecodeBody(r); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// search is the SQL of one ResourceQuery: the conditions on resource r and
// their arguments, from which page and count make the statements.
//
// Each parameter filter and the access filter is an EXISTS on the key of
// its table (search_param (type, name, value, id), resource_access (type,
// key, id)), a semi-join. It was "r.id IN (SELECT a.id FROM
// resource_access a WHERE a.type = r.type ...)": the reference to r.type
// made the subquery correlated, which PostgreSQL cannot turn into a join,
// so it ran once per candidate row and read every id of the key each time
// (a service's Task search over 12,000 referrals took 26 s; SQLite, whose
// subquery was not correlated, 0.03 s).
//
// How the semi-joins run is chosen as sqlshared.Driver says, from each
// filter's entries counted up to sqlshared.DriveLimit (choose): without a
// rare filter the statements walk resource_last_updated in
// page order and probe each filter's key for each resource, and stop at
// the end of the page; with a rare filter, they start from its entries and
// probe the others' keys. PostgreSQL does not choose the walk by itself: it
// takes filters for independent (a practice's requester identifier and its
// access key are the same referrals, estimated at 1/400 of the Tasks
// instead of 1/20), expects to walk far to fill a page, and reads a whole
// key into a hash instead (a service's bounded count read its 30,000
// entries; a practice's Task search by requester 2,500 resources, 35 ms,
// for a page of 20). So choose turns off for the transaction (SET LOCAL)
// the plans that read a filter whole: hash and merge joins, materialized
// inner sides, sequential scans and parallel workers, and for the walk
// sorts.
type search struct {
	q       *linkbridge.ResourceQuery
	where   string
	args    []any
	filters []filter
	// settings is set once choose changed the planner's settings.
	settings bool
}

// filter is one parameter filter, or the access filter: the condition on
// its table (alias t in a probe) and its arguments.
type filter struct {
	table  string // search_param or resource_access
	column string // the column of the values: value or key
	name   string // the parameter name (search_param)
	values []string
	// tokens are values's values with their systems, when a value names
	// its system ("system|value", or "|value" for none: see
	// linkbridge.ParamFilter); values then holds the values alone.
	tokens []sqlshared.TokenValue
}

// cond returns f's condition on its table under alias t, with its
// arguments placed by arg.
func (f filter) cond(t string, arg func(any) string) string {
	c := ``
	if f.name != "" {
		c = t + `.name = ` + arg(f.name) + ` AND `
	}
	if len(f.tokens) == 1 {
		return c + t + `.value = ` + arg(f.tokens[0].Value) + ` AND ` + t + `.system = ` + arg(f.tokens[0].System)
	}
	if len(f.values) == 1 {
		c += t + `.` + f.column + ` = ` + arg(f.values[0])
	} else {
		c += t + `.` + f.column + ` = ANY(` + arg(f.values) + `::text[])`
	}
	if len(f.tokens) == 0 {
		return c
	}
	// The values are looked up in the key; each entry found is then
	// checked against its value's system, if it names one.
	terms := make([]string, len(f.tokens))
	for i, tv := range f.tokens {
		terms[i] = t + `.value = ` + arg(tv.Value)
		if tv.BySystem {
			terms[i] += ` AND ` + t + `.system = ` + arg(tv.System)
		}
	}
	return c + ` AND (` + strings.Join(terms, ` OR `) + `)`
}

// buildSearch returns the search of q, or EINVALID (see SearchResources).
func buildSearch(q *linkbridge.ResourceQuery) (*search, error) {
	if err := sqlshared.CheckResourceQuery(q); err != nil {
		return nil, err
	}
	s := &search{q: q}
	var where strings.Builder
	where.WriteString(`WHERE r.type = ` + s.arg(q.Type))
	if len(q.IDs) > 0 {
		where.WriteString(` AND r.id = ANY(` + s.arg(q.IDs) + `::text[])`)
	}
	for _, f := range q.Params {
		values := f.Values
		if values == nil {
			values = []string{} // matches nothing
		}
		// The stored values: escapes read, a token's system cut off.
		toks, bySystem := sqlshared.TokenValues(values)
		pf := filter{table: "search_param", column: "value", name: f.Name, values: make([]string, len(toks))}
		for i, tv := range toks {
			pf.values[i] = tv.Value
		}
		if bySystem {
			pf.tokens = toks
		}
		s.filters = append(s.filters, pf)
	}
	if q.Access != nil {
		// Only resources carrying one of the caller's keys; no keys
		// matches nothing. A resource may carry several of them (a
		// Patient referred by two practices of an MDT): EXISTS counts it
		// once.
		keys := q.Access.Keys
		if keys == nil {
			keys = []string{}
		}
		s.filters = append(s.filters, filter{table: "resource_access", column: "key", values: keys})
	}
	for i, f := range s.filters {
		t := "p" + strconv.Itoa(i)
		where.WriteString(` AND EXISTS (SELECT FROM ` + f.table + ` ` + t + ` WHERE ` + t + `.type = r.type AND ` +
			f.cond(t, s.arg) + ` AND ` + t + `.id = r.id)`)
	}
	// A :missing filter reads the resource's own list of its values
	// (resource.params, on the row the walk reads anyway): search_param's
	// key starts with the value, not the resource.
	for _, m := range q.Missing {
		not := ""
		if m.Missing {
			not = "NOT "
		}
		names := m.Names
		if names == nil {
			names = []string{}
		}
		where.WriteString(` AND ` + not + `EXISTS (SELECT FROM jsonb_array_elements(r.params) j WHERE j->>0 = ANY(` + s.arg(names) + `::text[]))`)
	}
	for _, d := range q.LastUpdated {
		op, err := sqlshared.DateOp(d.Prefix)
		if err != nil {
			return nil, err
		}
		bound := d.Time
		if op == "<" || op == ">=" {
			bound = ceilMicro(bound) // see ceilMicro
		}
		where.WriteString(` AND r.last_updated ` + op + ` ` + s.arg(bound) + `::timestamptz`)
	}
	s.where = where.String()
	return s, nil
}

// arg adds an argument and returns its placeholder.
func (s *search) arg(v any) string {
	s.args = append(s.args, v)
	return "$" + strconv.Itoa(len(s.args))
}

// nestedSettings turn off, for a search's transaction, the plans that read
// a filter whole (see search): every join is then a nested loop that
// probes a key for each row. walkSettings turn off sorts too, which leaves
// the walk in page order.
const (
	nestedSettings = `SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;
		SET LOCAL enable_material = off; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
		SET LOCAL max_parallel_workers_per_gather = 0`
	walkSettings = nestedSettings + `; SET LOCAL enable_sort = off`
	// resetSettings undo them for a count of every match
	// (AccurateTotal), which reads every match whichever way and is
	// best left to the planner.
	resetSettings = `RESET enable_hashjoin; RESET enable_mergejoin; RESET enable_material; RESET enable_seqscan;
		RESET enable_bitmapscan; RESET max_parallel_workers_per_gather; RESET enable_sort`
)

// choose counts the entries of each filter, up to sqlshared.DriveLimit, in
// one statement, and sets up the walk when sqlshared.Driver says so. A
// search by ids starts from them: the planner looks each up.
func (s *search) choose(ctx context.Context, tx pgx.Tx) error {
	if len(s.q.IDs) > 0 || len(s.filters) == 0 {
		return nil
	}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	typ := arg(s.q.Type)
	counts := make([]string, len(s.filters))
	for i, f := range s.filters {
		counts[i] = `(SELECT count(*) FROM (SELECT FROM ` + f.table + ` t WHERE t.type = ` + typ + ` AND ` + f.cond("t", arg) +
			` LIMIT ` + strconv.Itoa(sqlshared.DriveLimit) + `) c)::int`
	}
	var n []int32
	if err := tx.QueryRow(ctx, `SELECT ARRAY[`+strings.Join(counts, ", ")+`]`, append([]any{searchMode}, args...)...).Scan(&n); err != nil {
		return fmt.Errorf("count filter entries: %w", err)
	}
	ns := make([]int, len(n))
	for i, v := range n {
		ns[i] = int(v)
	}
	settings := walkSettings
	if sqlshared.Driver(ns) >= 0 {
		settings = nestedSettings
	}
	if _, err := tx.Exec(ctx, settings, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("set up the plan: %w", err)
	}
	s.settings = true
	return nil
}

// searchMode runs the search statements with a plan made for their
// arguments each time (an unnamed statement whose description pgx caches)
// rather than a cached generic plan: how selective an access key or a value
// is decides the plan, and a generic plan cannot know it.
const searchMode = pgx.QueryExecModeCacheDescribe

// page returns the statement that reads count matches after offset, in
// page order, and its arguments.
//
// The matches are found and skipped on the index alone (resource_last_updated
// holds type, last_updated and id: an index-only scan), and only the
// page's rows are read from the table, for their bodies. Read whole, every
// row the walk passed (the offset, and the rows another filter rejected)
// cost a heap fetch, and PostgreSQL preferred reading the whole table. The
// page's rows come back in no particular order: sortPage orders them.
func (s *search) page(count, offset int) (string, []any) {
	n := len(s.args)
	order := ` ORDER BY r.last_updated, r.id`
	if s.q.Descending {
		order = ` ORDER BY r.last_updated DESC, r.id DESC`
	}
	return `SELECT r.id, r.version_id, r.last_updated, r.body FROM (SELECT r.id FROM resource r ` + s.where +
			order + ` LIMIT $` + strconv.Itoa(n+1) + ` OFFSET $` + strconv.Itoa(n+2) + `) m
		JOIN resource r ON r.type = $1 AND r.id = m.id`,
		append([]any{searchMode}, append(slices.Clip(s.args), count, offset)...)
}

// sortPage puts a page in page order: by lastUpdated, then id in byte
// order (COLLATE "C"), both reversed when desc is set. The page statement
// leaves it to the caller: an ORDER BY would be a sort, which the walk's
// settings price out, and the planner would rather walk the whole table
// than sort a page.
func sortPage(rs []*linkbridge.Resource, desc bool) {
	slices.SortFunc(rs, func(a, b *linkbridge.Resource) int {
		c := a.LastUpdated.Compare(b.LastUpdated)
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		if desc {
			return -c
		}
		return c
	})
}

// count returns the statement that counts the matches, at most limit of
// them (0: all), and its arguments. The bounded count reads no more than
// limit matches, by the plan a page of that size would take.
func (s *search) count(limit int) (string, []any) {
	if limit == 0 {
		return `SELECT count(*) FROM resource r ` + s.where, append([]any{searchMode}, s.args...)
	}
	return `SELECT count(*) FROM (SELECT FROM resource r ` + s.where + ` LIMIT $` + strconv.Itoa(len(s.args)+1) + `) m`,
		append([]any{searchMode}, append(slices.Clip(s.args), limit)...)
}
