package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
)

// ExplainSearch returns the plans, as EXPLAIN (FORMAT JSON) gives them
// (with ANALYZE when analyze is set), of the statements SearchResources
// runs for q: the page and the count as far as q.CountLimit says.
func (db *DB) ExplainSearch(ctx context.Context, q *linkbridge.ResourceQuery, analyze bool) (page, count []byte, err error) {
	s, err := buildSearch(q)
	if err != nil {
		return nil, nil, err
	}
	opts := `EXPLAIN (FORMAT JSON) `
	if analyze {
		opts = `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `
	}
	err = db.readTx(ctx, func(tx pgx.Tx) error {
		if err := s.choose(ctx, tx); err != nil {
			return err
		}
		sql, args := s.page(q.Count, q.Offset)
		if err := tx.QueryRow(ctx, opts+sql, args...).Scan(&page); err != nil {
			return err
		}
		sql, args = s.count(q.CountLimit())
		return tx.QueryRow(ctx, opts+sql, args...).Scan(&count)
	})
	if err != nil {
		return nil, nil, err
	}
	return page, count, nil
}
