package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestBadConfigurationStopsStartUp: every bad number, duration, boolean or
// URL, in a LINKBRIDGE_* variable or a flag, stops serve before it opens
// anything, with an error naming the variable (or flag) and the form it
// accepts. Before, LINKBRIDGE_RATE_LIMIT=abc silently turned rate limiting
// off and only the exact string "true" was true.
func TestBadConfigurationStopsStartUp(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	db := filepath.Join(tmp, "never-created", "lb.db")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string // substrings of the error
	}{
		{"EnvRateLimitNotANumber", map[string]string{"LINKBRIDGE_RATE_LIMIT": "abc"}, nil, []string{"LINKBRIDGE_RATE_LIMIT", `"abc"`, "a number"}},
		{"EnvRateBurstFraction", map[string]string{"LINKBRIDGE_RATE_BURST": "1.5"}, nil, []string{"LINKBRIDGE_RATE_BURST", "whole number"}},
		{"EnvDevYes", map[string]string{"LINKBRIDGE_DEV": "yes"}, nil, []string{"LINKBRIDGE_DEV", "a boolean: true, false, 1, 0"}},
		{"EnvNHSAnyRangeOn", map[string]string{"LINKBRIDGE_NHS_NUMBER_ANY_RANGE": "on"}, nil, []string{"LINKBRIDGE_NHS_NUMBER_ANY_RANGE", "boolean"}},
		{"EnvGPLinkPatientsNo", map[string]string{"LINKBRIDGE_GP_LINK_PATIENTS": "no"}, nil, []string{"LINKBRIDGE_GP_LINK_PATIENTS", "boolean"}},
		{"EnvGPTimeoutNoUnit", map[string]string{"LINKBRIDGE_GP_TIMEOUT": "10"}, nil, []string{"LINKBRIDGE_GP_TIMEOUT", "a duration with its unit"}},
		{"EnvOutboxRetentionDays", map[string]string{"LINKBRIDGE_OUTBOX_RETENTION": "30d"}, nil, []string{"LINKBRIDGE_OUTBOX_RETENTION", "720h"}},
		{"EnvShutdownTimeout", map[string]string{"LINKBRIDGE_SHUTDOWN_TIMEOUT": "soon"}, nil, []string{"LINKBRIDGE_SHUTDOWN_TIMEOUT", "duration"}},
		{"EnvMaxBodyWithUnit", map[string]string{"LINKBRIDGE_MAX_BODY": "4MB"}, nil, []string{"LINKBRIDGE_MAX_BODY", "whole number"}},
		{"EnvMemoryLimitMB", map[string]string{"LINKBRIDGE_MEMORY_LIMIT": "80MB"}, nil, []string{"LINKBRIDGE_MEMORY_LIMIT", "KiB, MiB, GiB"}},
		{"EnvMaxConnections", map[string]string{"LINKBRIDGE_MAX_CONNECTIONS": "lots"}, nil, []string{"LINKBRIDGE_MAX_CONNECTIONS", "whole number"}},
		{"EnvMaxHeaderBytes", map[string]string{"LINKBRIDGE_MAX_HEADER_BYTES": "64k"}, nil, []string{"LINKBRIDGE_MAX_HEADER_BYTES"}},
		{"EnvGPBaseNoScheme", map[string]string{"LINKBRIDGE_GP_BASE": "gp.example.nhs.uk/fhir"}, nil, []string{"LINKBRIDGE_GP_BASE", "absolute http:// or https:// URL"}},
		{"EnvGPTokenURLNotHTTP", map[string]string{"LINKBRIDGE_GP_TOKEN_URL": "ftp://auth.example/token"}, nil, []string{"LINKBRIDGE_GP_TOKEN_URL", "URL"}},
		{"EnvSystemBaseRelative", map[string]string{"LINKBRIDGE_SYSTEM_BASE": "/linkbridge"}, nil, []string{"LINKBRIDGE_SYSTEM_BASE", "URL"}},
		{"EnvCreateDB", map[string]string{"LINKBRIDGE_CREATE_DB": "y"}, nil, []string{"LINKBRIDGE_CREATE_DB"}},
		{"EnvTwoBadBothNamed", map[string]string{"LINKBRIDGE_RATE_LIMIT": "abc", "LINKBRIDGE_GP_TIMEOUT": "ten"}, nil, []string{"LINKBRIDGE_RATE_LIMIT", "LINKBRIDGE_GP_TIMEOUT"}},
		{"EnvBadEvenWhenFlagGiven", map[string]string{"LINKBRIDGE_RATE_LIMIT": "abc"}, []string{"--rate-limit", "5"}, []string{"LINKBRIDGE_RATE_LIMIT"}},
		{"FlagRateLimit", nil, []string{"--rate-limit", "abc"}, []string{"-rate-limit", "a number"}},
		{"FlagDevMaybe", nil, []string{"--dev=maybe"}, []string{"-dev", "boolean"}},
		{"FlagGPTimeoutNoUnit", nil, []string{"--gp-timeout", "10"}, []string{"-gp-timeout", "duration"}},
		{"FlagGPBase", nil, []string{"--gp-base", "localhost:8090"}, []string{"-gp-base", "URL"}},
		{"FlagMaxBody", nil, []string{"--max-body", "1e6"}, []string{"-max-body", "whole number"}},
		{"MissingDatabase", map[string]string{"LINKBRIDGE_DEV": "true"}, []string{"--addr", "127.0.0.1:0"}, []string{"no database at", "--create-db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			args := append([]string{"serve", "--db", db}, tt.args...)
			err := run(ctx, args, func(k string) string { return tt.env[k] }, io.Discard, io.Discard)
			if err == nil {
				t.Fatalf("serve %q with %v started; want an error", tt.args, tt.env)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Dir(db)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start created %s (%v)", filepath.Dir(db), err)
	}
}

// TestBooleanSettingsTakeParseBool: a boolean variable or flag takes what
// strconv.ParseBool takes, not only "true".
func TestBooleanSettingsTakeParseBool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  string
		args []string
		want bool
	}{
		{"1", nil, true}, {"TRUE", nil, true}, {"t", nil, true}, {"True", nil, true},
		{"0", nil, false}, {"F", nil, false}, {"false", nil, false}, {"", nil, false},
		{"1", []string{"--dev=false"}, false}, {"", []string{"--dev"}, true}, {"", []string{"--dev=1"}, true},
	} {
		env := map[string]string{"LINKBRIDGE_DEV": tc.env}
		var cfg ServeConfig
		c := &ServeCommand{Getenv: func(k string) string { return env[k] }, Stderr: io.Discard}
		if err := c.flags(&cfg).Parse(tc.args); err != nil {
			t.Fatalf("LINKBRIDGE_DEV=%q %v: %v", tc.env, tc.args, err)
		}
		if cfg.Security.Dev != tc.want {
			t.Errorf("LINKBRIDGE_DEV=%q %v: Dev = %v, want %v", tc.env, tc.args, cfg.Security.Dev, tc.want)
		}
	}
}

// TestFlagsAfterArguments: flags may follow positional arguments, which
// keep their order; "--" ends the flags.
func TestFlagsAfterArguments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args     []string
		wantArgs []string
		wantDB   string
		wantJSON bool
	}{
		{[]string{"42"}, []string{"42"}, defaultDB, false},
		{[]string{"42", "--db", "x.db"}, []string{"42"}, "x.db", false},
		{[]string{"--db", "x.db", "42"}, []string{"42"}, "x.db", false},
		{[]string{"42", "--json", "43", "--db=y.db"}, []string{"42", "43"}, "y.db", true},
		{[]string{"-db", "x.db", "42", "-json"}, []string{"42"}, "x.db", true},
		{[]string{"42", "--", "--db", "x.db"}, []string{"42", "--db", "x.db"}, defaultDB, false},
		{[]string{"--", "-1"}, []string{"-1"}, defaultDB, false},
		{nil, nil, defaultDB, false},
	} {
		fs := newFlags("t", nil, io.Discard)
		var db string
		dbFlag(fs, &db)
		asJSON := fs.FlagSet.Bool("json", false, "")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("Parse(%q): %v", tc.args, err)
		}
		if diff := cmp.Diff(tc.wantArgs, fs.Args()); diff != "" {
			t.Errorf("Parse(%q) arguments (-want +got):\n%s", tc.args, diff)
		}
		if db != tc.wantDB || *asJSON != tc.wantJSON {
			t.Errorf("Parse(%q): db=%q json=%v, want %q %v", tc.args, db, *asJSON, tc.wantDB, tc.wantJSON)
		}
	}
	fs := newFlags("t", nil, io.Discard)
	if err := fs.Parse([]string{"42", "--bogus"}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("an unknown flag after an argument: %v, want an error naming it", err)
	}
}

// TestEveryCommandHelp runs each command's --help (and -h, and
// "linkbridge help <command>"): each exits 0 and prints its flags.
func TestEveryCommandHelp(t *testing.T) {
	t.Parallel()
	var helps [][]string
	for _, c := range commands {
		helps = append(helps, []string{c, "--help"}, []string{c, "-h"}, []string{"help", c})
	}
	helps = append(helps, []string{"help"}, []string{"--help"}, []string{"outbox", "help"},
		[]string{"outbox", "list", "--help"}, []string{"outbox", "show", "-h"}, []string{"outbox", "retry", "--help"}, []string{"outbox", "discard", "--help"})
	for _, args := range helps {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, noEnv, &out, &errOut)
		if code := exitCode(err, io.Discard); code != 0 {
			t.Errorf("linkbridge %s: exit %d (%v), want 0", strings.Join(args, " "), code, err)
		}
		if out.Len()+errOut.Len() == 0 {
			t.Errorf("linkbridge %s printed nothing", strings.Join(args, " "))
		}
	}
	// Every command is listed in the usage, and dispatch knows every one.
	var out bytes.Buffer
	if err := usage(&out); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(c) + ` `).MatchString(out.String()) {
			t.Errorf("usage does not list %q", c)
		}
	}
	// serve's help names each value's kind, not words of its description
	// (it showed "-dev-auth linkbridge token").
	var serveHelp bytes.Buffer
	_ = run(context.Background(), []string{"serve", "--help"}, noEnv, io.Discard, &serveHelp)
	for _, want := range []string{"--dev-auth\n", "--gp-timeout duration\n", "--rate-limit number\n", "--gp-base url\n", "(LINKBRIDGE_RATE_LIMIT)"} {
		if !strings.Contains(serveHelp.String(), want) {
			t.Errorf("serve --help lacks %q:\n%s", want, serveHelp.String())
		}
	}
	// Errors: no command is a usage error (exit 2); others exit 1.
	if code := exitCode(run(context.Background(), nil, noEnv, io.Discard, io.Discard), io.Discard); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
	for _, args := range [][]string{{"frobnicate"}, {"outbox", "frobnicate"}, {"outbox", "show"}, {"outbox", "show", "x"}, {"version", "extra"}} {
		err := run(context.Background(), args, noEnv, io.Discard, io.Discard)
		if code := exitCode(err, io.Discard); code != 1 {
			t.Errorf("linkbridge %s: exit %d (%v), want 1", strings.Join(args, " "), code, err)
		}
	}
}

// TestVersion: "linkbridge version" prints the module version, the VCS
// revision and the Go version from the build info.
func TestVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^linkbridge \S+ \(revision \S+.*\) go\S+\n$`).MatchString(out.String()) {
		t.Errorf("version printed %q", out.String())
	}
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := versionLine(info), "linkbridge v1.2.3 (revision 0123abcd, 2026-01-02T03:04:05Z, modified) go1.26.0"; got != want {
		t.Errorf("versionLine = %q, want %q", got, want)
	}
	if got, want := versionLine(&debug.BuildInfo{GoVersion: "go1.26.0"}), "linkbridge (devel) (revision unknown) go1.26.0"; got != want {
		t.Errorf("versionLine without VCS = %q, want %q", got, want)
	}
}

// TestConfigCommand: "linkbridge config" shows every setting with its
// source, redacts secrets, warns about unknown variables with the likely
// intended one, and fails when serve would not start.
func TestConfigCommand(t *testing.T) {
	t.Parallel()
	environ := []string{
		"LINKBRIDGE_GP_TOKEN=s3cret-token",
		"LINKBRIDGE_DB=postgres://lb:pw-in-url@db.internal/lb?sslmode=disable",
		"LINKBRIDGE_RATE_LIMT=5", // misspelt
		"LINKBRIDGE_AUTH_CONFIG=/etc/linkbridge/auth.json",
		"LINKBRIDGE_TEST_POSTGRES_URL=postgres://x", // the test suite's, not a setting
		"PATH=/usr/bin",
	}
	var out, errOut bytes.Buffer
	err := runEnviron(context.Background(), []string{"config", "--rate-limit", "7", "--gp-base", "https://u:pw@gp.example/fhir"}, environ, &out, &errOut)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, errOut.String())
	}
	got := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`--rate-limit\s+LINKBRIDGE_RATE_LIMIT\s+flag\s+7\n`),
		regexp.MustCompile(`--rate-burst\s+LINKBRIDGE_RATE_BURST\s+default\s+100\n`),
		regexp.MustCompile(`--auth-config\s+LINKBRIDGE_AUTH_CONFIG\s+env\s+/etc/linkbridge/auth.json\n`),
		regexp.MustCompile(`--gp-token\s+LINKBRIDGE_GP_TOKEN\s+env\s+\(set, redacted\)\n`),
		regexp.MustCompile(`--db\s+LINKBRIDGE_DB\s+env\s+postgres://lb:xxxxx@db.internal/lb\n`),
		regexp.MustCompile(`--gp-base\s+LINKBRIDGE_GP_BASE\s+flag\s+https://u:xxxxx@gp.example/fhir\n`),
	} {
		if !want.MatchString(got) {
			t.Errorf("config output lacks %s:\n%s", want, got)
		}
	}
	for _, secret := range []string{"s3cret-token", "pw-in-url", ":pw@"} {
		if strings.Contains(got+errOut.String(), secret) {
			t.Errorf("config printed the secret %q", secret)
		}
	}
	if w := errOut.String(); !strings.Contains(w, "LINKBRIDGE_RATE_LIMT is not a setting") || !strings.Contains(w, "did you mean LINKBRIDGE_RATE_LIMIT?") || strings.Contains(w, "TEST_POSTGRES") {
		t.Errorf("config warnings = %q, want one about LINKBRIDGE_RATE_LIMT only", w)
	}
	// A configuration serve refuses makes config fail, naming why.
	err = runEnviron(context.Background(), []string{"config", "--db", filepath.Join(t.TempDir(), "typo.db")}, []string{"LINKBRIDGE_DEV=1"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "serve would not start") || !strings.Contains(err.Error(), "no database at") {
		t.Errorf("config on a missing database = %v", err)
	}
	err = runEnviron(context.Background(), []string{"config"}, []string{"LINKBRIDGE_RATE_LIMIT=abc"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "LINKBRIDGE_RATE_LIMIT") {
		t.Errorf("config with a bad variable = %v", err)
	}
	// JSON, for tools.
	out.Reset()
	if err := runEnviron(context.Background(), []string{"config", "--json", "--dev"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"flag": "--dev"`) || !strings.Contains(out.String(), `"source": "flag"`) {
		t.Errorf("config --json:\n%s", out.String())
	}
}

// TestServeWarnsUnknownVariables: serve logs a warning for a LINKBRIDGE_*
// variable it does not know, naming the one it probably misspells.
func TestServeWarnsUnknownVariables(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "lb.db")
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(withReady(context.Background(), ready))
	defer cancel()
	logs := &syncBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- runEnviron(ctx, []string{"serve", "--create-db", "--dev", "--addr", "127.0.0.1:0", "--db", db},
			[]string{"LINKBRIDGE_GP_TIMOUT=5s", "LINKBRIDGE_COMPLETELY_UNKNOWN=1", "LINKBRIDGE_FHIR_SCHEMA=/x"}, io.Discard, logs)
	}()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("serve: %v\n%s", err, logs)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	l := logs.String()
	if !strings.Contains(l, "did you mean LINKBRIDGE_GP_TIMEOUT?") || !strings.Contains(l, "variable=LINKBRIDGE_COMPLETELY_UNKNOWN") || strings.Contains(l, "FHIR_SCHEMA") {
		t.Errorf("logs:\n%s", l)
	}
}

// TestEveryVariableKnown: every LINKBRIDGE_* name the code reads is a
// serve setting or in otherVariables, so serve warns about none of them.
func TestEveryVariableKnown(t *testing.T) {
	t.Parallel()
	known := (&ServeCommand{Getenv: noEnv, Stderr: io.Discard}).flags(&ServeConfig{}).variables()
	known = append(known, otherVariables...)
	var files []string
	for _, glob := range []string{"*.go", "../../*/*.go", "../../*/*/*.go", "../../*/*/*/*.go", "../../.ci/*"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range regexp.MustCompile(`"(LINKBRIDGE_[A-Z0-9_]*[A-Z0-9])"`).FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(known, name[1]) && !strings.HasSuffix(f, "config_test.go") {
				t.Errorf("%s reads %s, which serve would warn about: add it to serve's settings or otherVariables", f, name[1])
			}
		}
	}
}

// TestMigrateCreatesOnlyWhenAsked: migrate, outbox and report refuse a
// database file that does not exist; migrate --create-db makes it.
func TestMigrateCreatesOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "new", "lb.db")
	for _, args := range [][]string{{"migrate", "--db", db}, {"outbox", "list", "--db", db}, {"report", "--service", "Y02662", "--from", "2026", "--to", "2026", "--db", db}} {
		if err := run(context.Background(), args, noEnv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "no database at") {
			t.Errorf("%q = %v, want no database", args, err)
		}
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused command created the database: %v", err)
	}
	if err := run(context.Background(), []string{"migrate", "--db", db, "--create-db"}, noEnv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"outbox", "list", "--db", db}, noEnv, io.Discard, io.Discard); err != nil {
		t.Errorf("outbox list on the created database: %v", err)
	}
}

// TestBulkRetryFlags: a bulk retry needs a filter or --all, and its --since
// takes a duration, a date or a time.
func TestBulkRetryFlags(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name                  string
		state, since, person  string
		all                   bool
		wantErr, wantSinceStr string
	}{
		{name: "All", state: "dead", all: true},
		{name: "Person", state: "dead", person: "p1"},
		{name: "SinceDuration", state: "dead", since: "2h", wantSinceStr: "2026-03-01T10:00:00Z"},
		{name: "SinceDate", state: "discarded", since: "2026-02-27", wantSinceStr: "2026-02-27T00:00:00Z"},
		{name: "SinceTime", state: "dead", since: "2026-02-28T09:30:00Z", wantSinceStr: "2026-02-28T09:30:00Z"},
		{name: "ErrNoFilter", state: "dead", wantErr: "--all"},
		{name: "ErrAllAndFilter", state: "dead", all: true, person: "p1", wantErr: "--all means no other filter"},
		{name: "ErrState", state: "pending", all: true, wantErr: "dead or discarded"},
		{name: "ErrSince", state: "dead", since: "yesterday", wantErr: "--since"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := bulkRetryFilter(tc.state, tc.since, tc.person, tc.all, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantSinceStr != "" && f.CreatedSince.UTC().Format(time.RFC3339) != tc.wantSinceStr {
				t.Errorf("since = %v, want %s", f.CreatedSince, tc.wantSinceStr)
			}
			if f.OrderKey != tc.person || string(f.States[0]) != tc.state {
				t.Errorf("filter = %+v", f)
			}
		})
	}
}
