package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"
	"github.com/linkbridge/linkbridge/refgp"
)

// ownBase is a deployment's own system base in these tests.
const ownBase = "https://sp.example-ics.nhs.uk/linkbridge"

// TestSystemBaseWrittenAndKept runs the demo with a deployment's own
// --system-base: every URI linkbridge minted in the GP record is under it
// (none under the default), the link worker is named by SDS user id, and
// the store records the base; serve then refuses another base on that
// store, with a message saying why, and starts without one.
func TestSystemBaseWrittenAndKept(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := (&DemoCommand{Getenv: noEnv, Stdout: &stdout, Stderr: &stderr}).
		Run(context.Background(), []string{"--dir", dir, "--system-base", ownBase + "/"}); err != nil {
		t.Fatalf("demo: %v\n%s%s", err, stdout.String(), stderr.String())
	}

	gp, err := refgp.Open(context.Background(), filepath.Join(dir, "reference-gp.db"), refgp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gp.Close() })
	var record strings.Builder
	for _, typ := range []string{"Task", "Procedure", "CarePlan", "Goal", "ServiceRequest", "Encounter", "Observation", "Provenance"} {
		rec := httptest.NewRecorder()
		gp.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/fhir/"+typ+"?_count=100", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s on the reference GP: %d %s", typ, rec.Code, rec.Body)
		}
		record.WriteString(rec.Body.String())
	}
	got := record.String()
	own, _ := fhirmap.NewSystems(ownBase)
	for _, want := range []string{own.Writeback(), own.BusinessStatus(), own.ExtTimepoint(), own.ExtGoalImportance(),
		own.Outcome(), fhirmap.SDSUserIDSystem, "555050304199"} {
		if !strings.Contains(got, `"`+want) {
			t.Errorf("the GP record lacks %s", want)
		}
	}
	if strings.Contains(got, fhirmap.DefaultSystemBase) {
		t.Errorf("the GP record holds a URI under the default base %s", fhirmap.DefaultSystemBase)
	}
	if strings.Contains(got, own.LinkWorker()) {
		t.Errorf("the link worker with an SDS user id is named in %s too", own.LinkWorker())
	}

	// Restarting on the same store.
	db := filepath.Join(dir, "linkbridge.db")
	var logs syncBuffer
	err = run(context.Background(), []string{"serve", "--create-db", "--addr", "127.0.0.1:0", "--db", db, "--dev", "--system-base", "https://other.example/lb"}, noEnv, &logs, &logs)
	if err == nil || !strings.Contains(err.Error(), "differs from "+ownBase) || !strings.Contains(err.Error(), "--system-base "+ownBase) {
		t.Fatalf("serve with another base: %v; want a refusal naming the recorded base", err)
	}
	for _, base := range []string{"", ownBase} {
		args := []string{"--db", db, "--dev"}
		if base != "" {
			args = append(args, "--system-base", base)
		}
		startServe(t, args...) // starts, or fails the test
	}
}

// fakeSettings is a systemBaseStore in memory: settings, and a number of
// referrals.
type fakeSettings struct {
	linkbridge.CaseStore
	settings  map[string]string
	referrals int
}

func (f *fakeSettings) Setting(_ context.Context, name string) (string, error) {
	return f.settings[name], nil
}

func (f *fakeSettings) InitSetting(_ context.Context, name, value string) (string, error) {
	if _, ok := f.settings[name]; !ok {
		f.settings[name] = value
	}
	return f.settings[name], nil
}

func (f *fakeSettings) ListReferrals(context.Context, linkbridge.ReferralFilter) ([]*linkbridge.Referral, int, error) {
	return nil, f.referrals, nil
}

// TestResolveSystems: a fresh store records the configured base (or the
// default); a store holding referrals from before bases were recorded
// records the default, which its data carries, and refuses another; a
// recorded base is kept, and a different one refused.
func TestResolveSystems(t *testing.T) {
	for _, tt := range []struct {
		name               string
		recorded           string
		referrals          int
		configured         string
		want, wantRecorded string
		wantErr            string
	}{
		{"FreshOwn", "", 0, ownBase, ownBase, ownBase, ""},
		{"FreshOwnTrailingSlash", "", 0, ownBase + "/", ownBase, ownBase, ""},
		{"FreshNone", "", 0, "", fhirmap.DefaultSystemBase, fhirmap.DefaultSystemBase, ""},
		{"LegacyNone", "", 3, "", fhirmap.DefaultSystemBase, fhirmap.DefaultSystemBase, ""},
		{"LegacyDefault", "", 3, fhirmap.DefaultSystemBase, fhirmap.DefaultSystemBase, fhirmap.DefaultSystemBase, ""},
		{"LegacyOwnRefused", "", 3, ownBase, "", fhirmap.DefaultSystemBase, "differs from " + fhirmap.DefaultSystemBase},
		{"RecordedKept", ownBase, 3, "", ownBase, ownBase, ""},
		{"RecordedSame", ownBase, 3, ownBase, ownBase, ownBase, ""},
		{"RecordedOtherRefused", ownBase, 0, "https://other.example", "", ownBase, "write a second copy"},
		{"RecordedDefaultOwnRefused", fhirmap.DefaultSystemBase, 0, ownBase, "", fhirmap.DefaultSystemBase, "differs from"},
		{"Invalid", "", 0, "not a url", "", "", "--system-base"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSettings{settings: map[string]string{}, referrals: tt.referrals}
			if tt.recorded != "" {
				f.settings[linkbridge.SettingSystemBase] = tt.recorded
			}
			sys, err := resolveSystems(context.Background(), f, tt.configured, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolveSystems() error = %v; want one containing %q", err, tt.wantErr)
				}
			} else if err != nil || sys.Base() != tt.want {
				t.Fatalf("resolveSystems() = %s, %v; want %s", sys, err, tt.want)
			}
			if got := f.settings[linkbridge.SettingSystemBase]; got != tt.wantRecorded {
				t.Errorf("recorded base = %q, want %q", got, tt.wantRecorded)
			}
		})
	}
}
