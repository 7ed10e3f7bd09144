// Command linkbridge is the linkbridge gateway: GP referrals to social
// prescribing over FHIR R4, and the link worker's record back to the GP
// record.
//
// Usage:
//
//	linkbridge serve [flags]     run the gateway
//	linkbridge config [flags]    print serve's effective configuration
//	linkbridge outbox ...        operate the write-back queue
//	linkbridge migrate [--db]    apply the store's pending migrations
//	linkbridge report [flags]    an organisation's period report or caseload (JSON or CSV)
//	linkbridge bench [flags]     load-test a gateway with referral Bundles
//	linkbridge bench seed ...    fill a store with referrals and their journeys
//	linkbridge bench scale ...   measure both stores at several sizes
//	linkbridge bench migrations  time the migrations and the re-index on a store
//	linkbridge demo              the whole loop locally, in seconds
//	linkbridge conform [flags]   the conformance kit
//	linkbridge reference-gp      the reference GP record endpoint
//	linkbridge token [flags]     mint a development token (serve --dev-auth)
//	linkbridge healthcheck       is the local gateway ready (container health check)
//	linkbridge version           version and VCS revision of this binary
//	linkbridge help              show help
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// serve sets this process's memory limit; tests running serve in
	// their own process leave theirs alone.
	ctx = withMemoryLimit(ctx, debug.SetMemoryLimit)
	err := runEnviron(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err on stderr and returns the process exit status: 0
// on success and when help was asked for, 2 for a command line that names
// no command, 1 for every other error.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errNoCommand):
		return 2
	}
	_, _ = fmt.Fprintln(stderr, "linkbridge:", err) // the exit status reports the failure too
	return 1
}

// errNoCommand is returned when the command line names no command (the
// usage is printed).
var errNoCommand = errors.New("no command given")

// runEnviron is run over an environment in os.Environ's form: serve also
// warns about LINKBRIDGE_* variables it does not know.
func runEnviron(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return dispatch(ctx, args, func(k string) string { return vars[k] }, environ, stdout, stderr)
}

// run dispatches a subcommand. Tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return dispatch(ctx, args, getenv, nil, stdout, stderr)
}

// dispatch runs the command args[0] names.
func dispatch(ctx context.Context, args []string, getenv func(string) string, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		_ = usage(stderr) // the error says what is wrong; a failed write to stderr has nowhere to go
		return errNoCommand
	}
	switch args[0] {
	case "serve":
		return (&ServeCommand{Getenv: getenv, Environ: environ, Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "config":
		return (&ConfigCommand{Getenv: getenv, Environ: environ, Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "outbox":
		return (&OutboxCommand{Getenv: getenv, Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "migrate":
		return (&MigrateCommand{Getenv: getenv, Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "report":
		return (&ReportCommand{Getenv: getenv, Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "bench":
		return (&BenchCommand{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "conform":
		return (&ConformCommand{Getenv: getenv, Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "reference-gp":
		return (&ReferenceGPCommand{Getenv: getenv, Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "reference-mesh":
		return (&ReferenceMESHCommand{Getenv: getenv, Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "token":
		return (&TokenCommand{Getenv: getenv, Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "demo":
		return (&DemoCommand{Getenv: getenv, Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "healthcheck":
		return (&HealthcheckCommand{Getenv: getenv, Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "version":
		return (&VersionCommand{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[1] != "help" && !strings.HasPrefix(args[1], "-") {
			return dispatch(ctx, []string{args[1], "--help"}, getenv, environ, stdout, stderr)
		}
		return usage(stdout)
	}
	_ = usage(stderr) // the error is the unknown command; a failed write to stderr has nowhere to go
	return fmt.Errorf("unknown command %q: the commands are listed above (linkbridge help)", args[0])
}

// commands are the subcommands, in the order the usage lists them.
var commands = []string{"serve", "config", "outbox", "migrate", "report", "bench", "demo", "conform", "reference-gp", "token", "healthcheck", "version"}

func usage(w io.Writer) error {
	_, err := fmt.Fprint(w, `linkbridge: GP referrals to social prescribing over FHIR R4.

Commands:
  serve   run the gateway (FHIR API at /fhir)
  config  print serve's effective configuration (flags, LINKBRIDGE_* variables, defaults; secrets redacted) and check it
  outbox  list, show, retry (one or in bulk) or discard write-backs to the GP record
  migrate apply the store's pending migrations (serve also does at start-up) and list them
  report  an organisation's period report (referrals, waiting times, contacts, DNAs, discharges, outcomes) or caseload, as JSON or CSV
  bench   load-test a gateway with referral transaction Bundles; bench seed fills a store with N referrals and their journeys; bench scale measures stores of several sizes; bench migrations times the migrations on a populated store
  demo    run the whole loop locally in seconds: gateway, reference GP record, a referral worked end to end
  conform run the conformance kit against a receiver or a GP-side endpoint (JUnit/JSON reports)
  reference-gp  run the reference GP record endpoint (FHIR R4 on SQLite, HTML page per patient)
  reference-mesh  run the reference MESH mailbox server and GP document inbox (GP Connect Send Document, ITK3)
  token   mint a token signed with the local development key (for serve --dev-auth)
  healthcheck  exit 0 when the gateway at --addr answers /readyz (the container image's health check)
  version print the version, VCS revision and Go version of this binary
  help    show this help ("linkbridge help <command>" for a command's flags)

Run "linkbridge <command> --help" for a command's flags.
`)
	return err
}
