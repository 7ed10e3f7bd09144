package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/linkbridge/linkbridge"
)

// ExplainSearch returns the plans, as EXPLAIN QUERY PLAN gives them (one
// "id parent detail" line per row), of the statements SearchResources runs
// for q: the page and the count as far as q.CountLimit says.
func (db *DB) ExplainSearch(ctx context.Context, q *linkbridge.ResourceQuery) (page, count []string, err error) {
	s, err := buildSearch(q)
	if err != nil {
		return nil, nil, err
	}
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = tx.Rollback() }()
	if err := s.choose(ctx, tx); err != nil {
		return nil, nil, err
	}
	explain := func(query string, args []any) ([]string, error) {
		rows, err := tx.QueryContext(ctx, `EXPLAIN QUERY PLAN `+query, args...)
		if err != nil {
			return nil, err
		}
		defer func() { _ = rows.Close() }()
		var out []string
		for rows.Next() {
			var id, parent, notUsed int
			var detail string
			if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
				return nil, err
			}
			out = append(out, fmt.Sprintf("%d %d %s", id, parent, detail))
		}
		return out, rows.Err()
	}
	if page, err = explain(s.page(q.Count, q.Offset)); err != nil {
		return nil, nil, err
	}
	if count, err = explain(s.count(q.CountLimit())); err != nil {
		return nil, nil, err
	}
	return page, count, nil
}

// ReadSlowly runs, on a connection of the read pool and in a read
// transaction as SearchResources does, a statement that never ends by
// itself, until ctx ends it.
func (db *DB) ReadSlowly(ctx context.Context) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	return tx.QueryRowContext(ctx, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c`).Scan(&n)
}
