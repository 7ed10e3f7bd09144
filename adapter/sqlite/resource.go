package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// Reads return resources without Params: the store indexes them but does
// not return them.

// ReadResource returns the current version of a resource, or ENOTFOUND.
func (db *DB) ReadResource(ctx context.Context, typ, id string) (*linkbridge.Resource, error) {
	r := &linkbridge.Resource{Type: typ, ID: id}
	var lastUpdated string
	err := db.read.QueryRowContext(ctx, `SELECT version_id, last_updated, body FROM resource WHERE type = ? AND id = ?`, typ, id).
		Scan(&r.VersionID, &lastUpdated, &r.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s not found", typ, id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: read resource: %w", err)
	}
	if err := sqlshared.DecodeBody(r); err != nil {
		return nil, err
	}
	if r.LastUpdated, err = parseTime(lastUpdated); err != nil {
		return nil, err
	}
	return r, nil
}

// ReadResourceVersion returns one version of a resource, or ENOTFOUND.
func (db *DB) ReadResourceVersion(ctx context.Context, typ, id string, version int) (*linkbridge.Resource, error) {
	r := &linkbridge.Resource{Type: typ, ID: id, VersionID: version}
	var lastUpdated string
	// The current version is in resource, the versions it replaced in
	// resource_history.
	err := db.read.QueryRowContext(ctx, `SELECT last_updated, body FROM resource
		WHERE type = ?1 AND id = ?2 AND version_id = ?3
		UNION ALL
		SELECT last_updated, body FROM resource_history
		WHERE type = ?1 AND id = ?2 AND version_id = ?3`, typ, id, version).
		Scan(&lastUpdated, &r.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s version %d not found", typ, id, version)
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: read resource version: %w", err)
	}
	if err := sqlshared.DecodeBody(r); err != nil {
		return nil, err
	}
	if r.LastUpdated, err = parseTime(lastUpdated); err != nil {
		return nil, err
	}
	return r, nil
}

// ResourceHistory returns every version of a resource, newest first, or
// ENOTFOUND.
func (db *DB) ResourceHistory(ctx context.Context, typ, id string) ([]*linkbridge.Resource, error) {
	// One statement reads both tables from one snapshot.
	rows, err := db.read.QueryContext(ctx, `SELECT version_id, last_updated, body FROM resource
		WHERE type = ?1 AND id = ?2
		UNION ALL
		SELECT version_id, last_updated, body FROM resource_history
		WHERE type = ?1 AND id = ?2
		ORDER BY version_id DESC`, typ, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: resource history: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*linkbridge.Resource
	for rows.Next() {
		r := &linkbridge.Resource{Type: typ, ID: id}
		var lastUpdated string
		if err := rows.Scan(&r.VersionID, &lastUpdated, &r.Body); err != nil {
			return nil, fmt.Errorf("sqlite: resource history: %w", err)
		}
		if err := sqlshared.DecodeBody(r); err != nil {
			return nil, err
		}
		if r.LastUpdated, err = parseTime(lastUpdated); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: resource history: %w", err)
	}
	if len(out) == 0 {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s not found", typ, id)
	}
	return out, nil
}

// Dates compare with sqlshared.DateOp's operators: stored times are
// fixed-width UTC text, so text comparison is time comparison.

// SearchResources returns one page of the current versions matching q,
// ordered by lastUpdated then id, with the number of matches, counted as
// far as q.CountLimit says. It returns EINVALID for a query without a
// type, with Count below 1, a negative Offset or an unsupported date
// prefix. A parameter filter without values matches nothing; so does an
// Access without keys.
//
// The page is read first: a page that is not full tells the total without
// a count, and only a full page, or an empty one past the first, needs the
// count. Everything is read in one read transaction, so it agrees.
func (db *DB) SearchResources(ctx context.Context, q *linkbridge.ResourceQuery) (*linkbridge.SearchResult, error) {
	s, err := buildSearch(q)
	if err != nil {
		return nil, err
	}
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	if err := s.choose(ctx, tx); err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	res := &linkbridge.SearchResult{}
	query, args := s.page(q.Count, q.Offset)
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		r := &linkbridge.Resource{Type: q.Type}
		var lastUpdated string
		if err := rows.Scan(&r.ID, &r.VersionID, &lastUpdated, &r.Body); err != nil {
			return nil, fmt.Errorf("sqlite: search: %w", err)
		}
		if err := sqlshared.DecodeBody(r); err != nil {
			return nil, err
		}
		if r.LastUpdated, err = parseTime(lastUpdated); err != nil {
			return nil, err
		}
		res.Resources = append(res.Resources, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	if n := len(res.Resources); n > 0 && n < q.Count || n == 0 && q.Offset == 0 {
		res.Total, res.TotalExact = q.Offset+n, true
		return res, nil
	}
	limit := q.CountLimit()
	query, args = s.count(limit)
	if err := tx.QueryRowContext(ctx, query, args...).Scan(&res.Total); err != nil {
		return nil, fmt.Errorf("sqlite: search: count: %w", err)
	}
	res.TotalExact = limit == 0 || res.Total < limit
	return res, nil
}

// search is the SQL of one ResourceQuery. Each filter (a parameter
// filter, the access filter) is a condition on the key of its table
// (search_param (type, name, value, id), resource_access (type, key, id)).
// The resources r that match are found one of two ways, as
// sqlshared.Driver says from each filter's entries counted up to
// sqlshared.DriveLimit (choose):
//
//   - walking resource_last_updated in page order and probing each
//     filter's key for the resource (EXISTS) until the page is full: the
//     cost of a page grows with the page, not with the matches, as long
//     as the filters are not rare;
//   - reading the entries of the rarest filter (a patient's resources, an
//     identifier), joining the resources to them (CROSS JOIN makes SQLite
//     keep that order), probing the other filters' keys and sorting the
//     few that match.
//
// SQLite cannot choose between them itself: it keeps no statistics unless
// ANALYZE runs, and with them it started from a service's access key,
// which holds most of the Tasks. Before, each filter was "r.id IN (SELECT
// ...)", which SQLite evaluates in full to a list first: every search read
// all of its access key's entries (20 ms to check one _include'd resource
// of a service with 30,000 referrals).
//
// adapter/postgres makes the same choice, with PostgreSQL's own means of
// holding its planner to it.
type search struct {
	q       *linkbridge.ResourceQuery
	filters []filter
	// drive is the index in filters of the filter the page starts from,
	// or -1 to walk the page order; countDrive the same for the count.
	drive, countDrive int
	// dates and dateArgs are the conditions on r's lastUpdated and their
	// arguments (ids drive the search: see from); missing and missingArgs
	// the :missing conditions on r's params and their arguments.
	dates       string
	dateArgs    []any
	missing     string
	missingArgs []any
}

// filter is one parameter filter, or the access filter, as a condition on
// its table (alias t) and its arguments.
type filter struct {
	table string // search_param or resource_access
	cond  string
	args  []any
}

// buildSearch returns the search of q, or EINVALID (see SearchResources).
func buildSearch(q *linkbridge.ResourceQuery) (*search, error) {
	if err := sqlshared.CheckResourceQuery(q); err != nil {
		return nil, err
	}
	s := &search{q: q, drive: -1, countDrive: -1}
	for _, f := range q.Params {
		s.filters = append(s.filters, paramFilter(f))
	}
	if q.Access != nil {
		// Only resources carrying one of the caller's keys; no keys
		// matches nothing.
		var args []any
		for _, k := range q.Access.Keys {
			args = append(args, k)
		}
		s.filters = append(s.filters, filter{"resource_access", `t.key IN (` + placeholders(len(q.Access.Keys)) + `)`, args})
	}
	// A :missing filter reads the resource's own list of its values
	// (resource.params), which the walk has in hand: search_param's key
	// starts with the value, not the resource.
	var missing strings.Builder
	for _, m := range q.Missing {
		not := ""
		if m.Missing {
			not = "NOT "
		}
		missing.WriteString(` AND ` + not + `EXISTS (SELECT 1 FROM json_each(r.params) j WHERE json_extract(j.value, '$[0]') IN (` + placeholders(len(m.Names)) + `))`)
		for _, n := range m.Names {
			s.missingArgs = append(s.missingArgs, n)
		}
	}
	s.missing = missing.String()
	var dates strings.Builder
	for _, d := range q.LastUpdated {
		op, err := sqlshared.DateOp(d.Prefix)
		if err != nil {
			return nil, err
		}
		dates.WriteString(` AND r.last_updated ` + op + ` ?`)
		s.dateArgs = append(s.dateArgs, formatTime(d.Time))
	}
	s.dates = dates.String()
	return s, nil
}

// paramFilter is the condition of a parameter filter on search_param: the
// values are looked up in the key (type, name, value, id), and a value
// given with its system ("system|value", or "|value" for none) checks the
// system of the entries found (linkbridge.ParamFilter).
func paramFilter(f linkbridge.ParamFilter) filter {
	toks, bySystem := sqlshared.TokenValues(f.Values)
	if len(toks) == 1 && bySystem {
		return filter{"search_param", `t.name = ? AND t.value = ? AND t.system = ?`, []any{f.Name, toks[0].Value, toks[0].System}}
	}
	args := []any{f.Name}
	for _, tv := range toks {
		args = append(args, tv.Value)
	}
	cond := `t.name = ? AND t.value IN (` + placeholders(len(toks)) + `)`
	if bySystem {
		terms := make([]string, len(toks))
		for i, tv := range toks {
			if tv.BySystem {
				terms[i] = `t.value = ? AND t.system = ?`
				args = append(args, tv.Value, tv.System)
			} else {
				terms[i] = `t.value = ?`
				args = append(args, tv.Value)
			}
		}
		cond += ` AND (` + strings.Join(terms, ` OR `) + `)`
	}
	return filter{"search_param", cond, args}
}

// choose counts each filter's entries, up to sqlshared.DriveLimit, and
// picks the filter to start from, if any (sqlshared.Driver). A search by
// ids starts from them: SQLite looks each up.
func (s *search) choose(ctx context.Context, tx *sql.Tx) error {
	if len(s.q.IDs) > 0 || len(s.filters) == 0 {
		return nil
	}
	counts := make([]int, len(s.filters))
	for i, f := range s.filters {
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM `+f.table+` t WHERE t.type = ? AND `+f.cond+` LIMIT ?)`,
			append(append([]any{s.q.Type}, f.args...), sqlshared.DriveLimit)...).Scan(&counts[i])
		if err != nil {
			return fmt.Errorf("count filter entries: %w", err)
		}
	}
	s.drive = sqlshared.Driver(counts)
	// A count needs no order: starting from the rarest filter (even one
	// past DriveLimit) reads no more rows than the walk does, which must
	// pass the resources that filter rejects too (a practice's bounded
	// count walked 20,000 Tasks for its 1,001). A date range is left to
	// bound the walk instead, as it does for the page (polls).
	s.countDrive = s.drive
	if s.dates == "" {
		s.countDrive = slices.Index(counts, slices.Min(counts))
	}
	return nil
}

// from returns the FROM clause and WHERE conditions of the search's
// statements starting from filter drive (-1: walking resource), and
// their arguments.
func (s *search) from(drive int) (string, []any) {
	var b strings.Builder
	var args []any
	switch {
	case drive >= 0:
		f := s.filters[drive]
		b.WriteString(`(SELECT DISTINCT t.id FROM ` + f.table + ` t WHERE t.type = ? AND ` + f.cond + `) d CROSS JOIN resource r ON r.type = ? AND r.id = d.id`)
		args = append(append(append(args, s.q.Type), f.args...), s.q.Type)
	case len(s.q.IDs) > 0:
		// A search by ids starts from them, each looked up by key (CROSS
		// JOIN keeps that order): with "r.id IN (…)" SQLite preferred to
		// walk every resource of the type in resource_last_updated order,
		// testing each id (36 ms for the 50 Patients of an MDT board page
		// on a 100,000-referral store, against under 1 ms).
		b.WriteString(`(SELECT DISTINCT column1 AS id FROM (VALUES ` + strings.TrimSuffix(strings.Repeat(`(?),`, len(s.q.IDs)), ",") + `)) d CROSS JOIN resource r ON r.type = ? AND r.id = d.id`)
		for _, id := range s.q.IDs {
			args = append(args, id)
		}
		args = append(args, s.q.Type)
	default:
		b.WriteString(`resource r`)
	}
	b.WriteString(` WHERE r.type = ?`)
	args = append(args, s.q.Type)
	for i, f := range s.filters {
		if i == drive {
			continue
		}
		b.WriteString(` AND EXISTS (SELECT 1 FROM ` + f.table + ` t WHERE t.type = r.type AND ` + f.cond + ` AND t.id = r.id)`)
		args = append(args, f.args...)
	}
	b.WriteString(s.missing)
	args = append(args, s.missingArgs...)
	b.WriteString(s.dates)
	return b.String(), append(args, s.dateArgs...)
}

// page returns the statement that reads count matches after offset, in
// page order (reversed when the query is Descending: SQLite walks
// resource_last_updated backwards), and its arguments.
func (s *search) page(count, offset int) (string, []any) {
	from, args := s.from(s.drive)
	order := ` ORDER BY r.last_updated, r.id`
	if s.q.Descending {
		order = ` ORDER BY r.last_updated DESC, r.id DESC`
	}
	return `SELECT r.id, r.version_id, r.last_updated, r.body FROM ` + from + order + ` LIMIT ? OFFSET ?`,
		append(args, count, offset)
}

// count returns the statement that counts the matches, at most limit of
// them (0: all), and its arguments.
func (s *search) count(limit int) (string, []any) {
	from, args := s.from(s.countDrive)
	if limit == 0 {
		return `SELECT count(*) FROM ` + from, args
	}
	return `SELECT count(*) FROM (SELECT 1 FROM ` + from + ` LIMIT ?)`, append(args, limit)
}

// placeholders returns n comma-separated "?".
func placeholders(n int) string {
	if n == 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
