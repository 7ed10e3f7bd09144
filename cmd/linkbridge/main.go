// Command linkbridge is the linkbridge gateway: GP referrals to social
// prescribing over FHIR R4, and the link worker's record back to the GP
// record.
//
// Usage:
//
//	linkbridge serve [flags]     run the gateway
//	linkbridge outbox ...        operate the write-back queue
//	linkbridge migrate [--db]    apply the store's pending migrations
//	linkbridge report [flags]    an organisation's period report or caseload (JSON or CSV)
//	linkbridge bench [flags]     load-test a gateway with referral Bundles
//	linkbridge demo              the whole loop locally, in seconds
//	linkbridge conform [flags]   the conformance kit
//	linkbridge reference-gp      the reference GP record endpoint
//	linkbridge token [flags]     mint a development token (serve --dev-auth)
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
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "linkbridge:", err)
		os.Exit(1)
	}
}

// run dispatches a subcommand. Tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		_ = usage(stderr) // the error is ErrHelp; a failed write to stderr has nowhere to go
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return (&ServeCommand{Getenv: getenv, Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
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
	case "help", "-h", "--help":
		return usage(stdout)
	}
	_ = usage(stderr) // the error is the unknown command; a failed write to stderr has nowhere to go
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) error {
	_, err := fmt.Fprint(w, `linkbridge: GP referrals to social prescribing over FHIR R4.

Commands:
  serve   run the gateway (FHIR API at /fhir)
  outbox  list, show, retry or discard write-backs to the GP record
  migrate apply the store's pending migrations (serve also does at start-up) and list them
  report  an organisation's period report (referrals, waiting times, contacts, DNAs, discharges, outcomes) or caseload, as JSON or CSV
  bench   load-test a gateway with referral transaction Bundles
  demo    run the whole loop locally in seconds: gateway, reference GP record, a referral worked end to end
  conform run the conformance kit against a receiver or a GP-side endpoint (JUnit/JSON reports)
  reference-gp  run the reference GP record endpoint (FHIR R4 on SQLite, HTML page per patient)
  reference-mesh  run the reference MESH mailbox server and GP document inbox (GP Connect Send Document, ITK3)
  token   mint a token signed with the local development key (for serve --dev-auth)
  help    show this help

Run "linkbridge <command> -h" for a command's flags.
`)
	return err
}
