package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestRetryTx(t *testing.T) {
	t.Parallel()
	deadlock := fmt.Errorf("postgres: update referral: %w", &pgconn.PgError{Code: deadlockDetected})
	serialization := &pgconn.PgError{Code: serializationFailure}
	unique := &pgconn.PgError{Code: uniqueViolation, ConstraintName: "referral_referrer_identifier_key"}
	other := errors.New("connection reset")
	for _, tc := range []struct {
		name      string
		errs      []error // what each call returns; nil after the list
		wantCalls int
		wantErr   error
	}{
		{"OK", nil, 1, nil},
		{"DeadlockThenOK", []error{deadlock}, 2, nil},
		{"SerializationTwiceThenOK", []error{serialization, serialization}, 3, nil},
		{"DeadlockEveryTime", []error{deadlock, deadlock, deadlock, deadlock}, maxTxAttempts, deadlock},
		{"UniqueViolationNotRetried", []error{unique}, 1, unique},
		{"OtherErrorNotRetried", []error{other}, 1, other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			err := retryTx(context.Background(), func() error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls || !errors.Is(err, tc.wantErr) {
				t.Fatalf("retryTx: %d calls, error %v; want %d calls, error %v", calls, err, tc.wantCalls, tc.wantErr)
			}
		})
	}
}
