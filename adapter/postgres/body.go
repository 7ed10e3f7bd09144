package postgres

import (
	"fmt"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/bodyzip"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// Resource bodies are stored compressed (bodyzip: zstd against a built-in
// dictionary of FHIR JSON), in resource.body and, copied by SQL as they
// are, in resource_history.body, exactly as adapter/sqlite stores them. Rows
// written before hold plain JSON, which bodyzip.Decode returns as it is, so
// no migration rewrites them. No SQL reads a body's JSON: search uses
// search_param and resource.params.

// compressBodies replaces the bodies of rows with their stored form. It
// runs where a write's rows are built (prepareCreate, newChangeRows),
// before any transaction: retryTx runs a failed transaction again on the
// same rows, and a body compressed inside it would be compressed twice.
func compressBodies(rows []resourceRow) {
	for i := range rows {
		rows[i].Body = bodyzip.Encode(rows[i].Body)
	}
}

// newChangeRows converts a change to its rows (sqlshared.NewChangeRows),
// with the resource bodies compressed.
func (db *DB) newChangeRows(ch *linkbridge.ReferralChange) (*sqlshared.ChangeRows, error) {
	rows, err := sqlshared.NewChangeRows(ch, db.Now(), columns)
	if err != nil {
		return nil, err
	}
	compressBodies(rows.Resources)
	return rows, nil
}

// decodeBody replaces r.Body, as scanned from resource or
// resource_history, with the JSON it holds.
func decodeBody(r *linkbridge.Resource) error {
	body, err := bodyzip.Decode(r.Body)
	if err != nil {
		return fmt.Errorf("postgres: %s/%s version %d: %w", r.Type, r.ID, r.VersionID, err)
	}
	r.Body = body
	return nil
}
