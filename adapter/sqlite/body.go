package sqlite

import (
	"fmt"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/bodyzip"
)

// Resource bodies are stored compressed (bodyzip: zstd against a built-in
// dictionary of FHIR JSON), in resource.body and, copied by SQL as they
// are, in resource_history.body. Rows written before hold plain JSON, which
// bodyzip.Decode returns as it is. No SQL reads a body's JSON: search uses
// search_param and resource.params.

// compressBodies replaces the bodies of rows with their stored form. It
// runs where a write's rows are built (createOp, updateOp), in the caller's
// goroutine, so the single writer goroutine does not spend its time
// compressing.
func compressBodies(rows []resourceRow) {
	for i := range rows {
		rows[i].Body = bodyzip.Encode(rows[i].Body)
	}
}

// decodeBody replaces r.Body, as scanned from resource or
// resource_history, with the JSON it holds.
func decodeBody(r *linkbridge.Resource) error {
	body, err := bodyzip.Decode(r.Body)
	if err != nil {
		return fmt.Errorf("sqlite: %s/%s version %d: %w", r.Type, r.ID, r.VersionID, err)
	}
	r.Body = body
	return nil
}
