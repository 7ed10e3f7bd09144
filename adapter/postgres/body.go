package postgres

import (
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// newChangeRows converts a change to its rows (sqlshared.NewChangeRows),
// with the resource bodies compressed.
func (db *DB) newChangeRows(ch *linkbridge.ReferralChange) (*sqlshared.ChangeRows, error) {
	rows, err := sqlshared.NewChangeRows(ch, db.Now(), columns)
	if err != nil {
		return nil, err
	}
	sqlshared.CompressBodies(rows.Resources)
	return rows, nil
}
