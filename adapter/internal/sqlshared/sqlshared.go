// Package sqlshared holds what the SQL store adapters, adapter/sqlite and
// adapter/postgres, share: the logic that does not depend on the SQL
// dialect. It turns domain values into column values and stored values
// back into domain values (search parameters, reasons, plans and measure
// items as JSON, audit entities), builds the rows of a change (referral,
// case record, outbox), and makes the decisions the outbox takes on what a
// claim read (superseding, claimability). Both adapters pass
// adapter/storetest, so what is here has one behaviour for both.
//
// SQL text and what differs between the databases (placeholders, arrays,
// locking, how a time or a boolean is stored) stay in each adapter, with
// the reason beside the query; Columns carries the few value encodings the
// shared row builders need. Validation of a change or an intake is domain
// logic and lives in the root package (Intake.Validate,
// ReferralChange.Validate).
//
// The package is internal: only the adapters import it (as river's
// rivershared serves its drivers).
package sqlshared

import "time"

// Columns says how one database stores the Go values whose column form
// differs between the dialects. The adapters define theirs, with the
// reason.
type Columns struct {
	// Time converts a time to its column value.
	Time func(time.Time) any
	// Bool converts a boolean to its column value.
	Bool func(bool) any
	// Precision is the resolution of stored times; 0 keeps times exactly.
	// Rows that report stored times back to the caller (the outbox's
	// defaulted times) round to it, so that the caller sees what a read
	// returns.
	Precision time.Duration
}

// NullTime returns c.Time(t), or nil (NULL) for the zero time.
func (c Columns) NullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return c.Time(t)
}

// Stored returns t as the database keeps it: truncated to Precision.
func (c Columns) Stored(t time.Time) time.Time {
	if c.Precision > 0 {
		return t.Truncate(c.Precision)
	}
	return t
}
