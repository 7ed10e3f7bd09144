package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/adapter/storetest"
)

var updateReport = flag.Bool("update-report", false, "rewrite cmd/linkbridge/testdata/report-*.csv from the current output")

// seededReportDB is a SQLite file holding the reports' seeded data set
// (storetest.SeedReports).
func seededReportDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "linkbridge.db")
	db, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	storetest.SeedReports(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReportCommand runs "linkbridge report" over a real SQLite file
// holding the seeded data set: its JSON is the hand-computed report, its
// CSV the golden file.
func TestReportCommand(t *testing.T) {
	t.Parallel()
	db := seededReportDB(t)
	report := func(t *testing.T, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		cmd := &ReportCommand{Getenv: noEnv, Stdout: &out, Stderr: &errOut, Now: func() time.Time { return storetest.ReportNow }}
		if err := cmd.Run(context.Background(), append([]string{"--db", db}, args...)); err != nil {
			t.Fatalf("report %v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	golden := func(t *testing.T, name, got string) {
		t.Helper()
		path := filepath.Join("testdata", name)
		if *updateReport {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}

	t.Run("PeriodJSON", func(t *testing.T) {
		var got linkbridge.PeriodReport
		if err := json.Unmarshal([]byte(report(t, "--service", "rat01", "--from", "2025-04", "--to", "2025-06", "--format", "json")), &got); err != nil {
			t.Fatal(err)
		}
		want := storetest.WantPeriod(linkbridge.ReportScope{ServiceODS: "RAT01"})
		if diff := cmp.Diff(want, &got); diff != "" {
			t.Errorf("report JSON (-want +got):\n%s", diff)
		}
	})
	t.Run("PeriodCSV", func(t *testing.T) {
		golden(t, "report-period.csv", report(t, "--service", "RAT01", "--from", "2025-04-01", "--to", "2025-06-30", "--format", "csv"))
	})
	t.Run("CaseloadJSON", func(t *testing.T) {
		var got linkbridge.CaseloadReport
		if err := json.Unmarshal([]byte(report(t, "--service", "RAT01", "--caseload")), &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(storetest.WantCaseload(), &got); diff != "" {
			t.Errorf("caseload JSON (-want +got):\n%s", diff)
		}
	})
	t.Run("CaseloadCSV", func(t *testing.T) {
		golden(t, "report-caseload.csv", report(t, "--service", "RAT01", "--caseload", "--format", "csv"))
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--from", "2025-04", "--to", "2025-06"}, "--service or --practice"},
			{[]string{"--service", "RAT01", "--from", "2025-04"}, "--to"},
			{[]string{"--service", "RAT01", "--from", "2025-04", "--to", "2025-06", "--format", "xml"}, "json or csv"},
		} {
			err := run(context.Background(), append([]string{"report", "--db", db}, tc.args...), noEnv, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("report %v = %v, want an error naming %s", tc.args, err, tc.want)
			}
		}
	})
}
