// Package sqlsharedtest holds the test setup the SQL store adapters share:
// a logger that writes to the test's log, and one call that runs every
// adapter/storetest suite on a store. Import it only from tests.
package sqlsharedtest

import (
	"log/slog"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/storetest"
)

// NewLogger returns a logger writing to tb's log, at debug level.
func NewLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tLogWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tLogWriter writes to a test's log.
type tLogWriter struct{ tb testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(string(p))
	return len(p), nil
}

// Store is every contract a SQL store adapter implements.
type Store interface {
	storetest.OutboxStore
	linkbridge.AuditStore
	linkbridge.EndpointIdentityStore
	linkbridge.DocumentDeliveryStore
	linkbridge.IndexStore
	linkbridge.SettingStore
	linkbridge.SubscriptionStore
}

// RunSuites runs every adapter/storetest suite (Store, CaseStore,
// Reports, OutboxStore, Access, AuditStore, EndpointIdentityStore, IndexStore,
// SettingStore, SubscriptionStore), each as a
// parallel subtest of that name. open must return a new, empty store and close it when the test
// ends.
func RunSuites[S Store](t *testing.T, open func(tb testing.TB) S) {
	t.Run("Store", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) linkbridge.Store { return open(t) })
	})
	t.Run("CaseStore", func(t *testing.T) {
		t.Parallel()
		storetest.RunCaseStore(t, func(t *testing.T) storetest.CaseStore { return open(t) })
	})
	t.Run("Reports", func(t *testing.T) {
		t.Parallel()
		storetest.RunReports(t, func(t *testing.T) storetest.CaseStore { return open(t) })
	})
	t.Run("OutboxStore", func(t *testing.T) {
		t.Parallel()
		storetest.RunOutboxStore(t, func(t *testing.T) storetest.OutboxStore { return open(t) })
	})
	t.Run("Access", func(t *testing.T) {
		t.Parallel()
		storetest.RunAccess(t, func(t *testing.T) linkbridge.Store { return open(t) })
	})
	t.Run("AuditStore", func(t *testing.T) {
		t.Parallel()
		storetest.RunAuditStore(t, func(t *testing.T) storetest.AuditStore { return open(t) })
	})
	t.Run("DocumentDeliveryStore", func(t *testing.T) {
		t.Parallel()
		storetest.RunDocumentDeliveryStore(t, func(t *testing.T) linkbridge.DocumentDeliveryStore { return open(t) })
	})
	t.Run("EndpointIdentityStore", func(t *testing.T) {
		t.Parallel()
		storetest.RunEndpointIdentityStore(t, func(t *testing.T) linkbridge.EndpointIdentityStore { return open(t) })
	})
	t.Run("IndexStore", func(t *testing.T) {
		t.Parallel()
		storetest.RunIndexStore(t, func(t *testing.T) storetest.IndexStore { return open(t) })
	})
	t.Run("SubscriptionStore", func(t *testing.T) {
		t.Parallel()
		storetest.RunSubscriptionStore(t, func(t *testing.T) storetest.SubscriptionStore { return open(t) })
	})
	t.Run("SettingStore", func(t *testing.T) {
		t.Parallel()
		storetest.RunSettingStore(t, func(t *testing.T) storetest.SettingStore { return open(t) })
	})
}
