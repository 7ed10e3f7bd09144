package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge/conformance"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// ConformCommand runs the conformance kit against a target over HTTP.
type ConformCommand struct {
	Getenv         func(string) string
	Stdout, Stderr io.Writer
}

// headerFlags collects repeated --header 'Name: value' flags.
type headerFlags http.Header

// String implements flag.Value.
func (h headerFlags) String() string { return "" }

// Set adds one header.
func (h headerFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return fmt.Errorf("want 'Name: value', got %q", s)
	}
	http.Header(h).Add(name, value)
	return nil
}

// Run parses flags, runs the kit, writes the reports and fails when any
// scenario failed.
func (c *ConformCommand) Run(ctx context.Context, args []string) error {
	fs := newFlags("conform", c.Getenv, c.Stderr)
	fs.synopsis = "conform --target URL [--role receiver|gp-endpoint] [flags]"
	var cfg conformance.Config
	header := headerFlags(http.Header{})
	fs.StringVar(&cfg.Target, "target", "", "FHIR base URL of the system under test, e.g. http://127.0.0.1:8080/fhir (required)")
	role := fs.String("role", "receiver", "receiver (the target receives referrals) or gp-endpoint (the target receives write-backs)")
	token := fs.String("token", c.Getenv("LINKBRIDGE_CONFORM_TOKEN"), "bearer token for the target (LINKBRIDGE_CONFORM_TOKEN); shorthand for --header 'Authorization: Bearer …'")
	gpToken := fs.String("gp-token", c.Getenv("LINKBRIDGE_CONFORM_GP_TOKEN"), "receiver role: bearer token of a GP system's client, for the requests the kit sends as the referrer (LINKBRIDGE_CONFORM_GP_TOKEN; default --token)")
	spToken := fs.String("sp-token", c.Getenv("LINKBRIDGE_CONFORM_SP_TOKEN"), "receiver role: bearer token of the social prescribing service's client, for link worker steps and the service's own requests (LINKBRIDGE_CONFORM_SP_TOKEN; default --token)")
	fs.Var(header, "header", "extra request header 'Name: value' (repeatable), e.g. for other authentication schemes")
	fs.StringVar(&cfg.SPBase, "sp-base", "", "linkbridge /sp/v1 base for link worker steps (default: probe <target root>/sp/v1)")
	fs.BoolVar(&cfg.Manual, "manual", false, "never drive /sp/v1: prompt a person to do each link worker step on the target and wait for its Task")
	fs.DurationVar(&cfg.ManualTimeout, "manual-timeout", 10*time.Minute, "how long to wait for a person's step")
	fs.StringVar(&cfg.Run, "run", "", "regular expression selecting scenario ids")
	fs.StringVar(&cfg.ServiceODS, "service-ods", "Y02662", "ODS code of the social prescribing service referrals are addressed to (receiver)")
	fs.StringVar(&cfg.ReferrerODS, "referrer-ods", "A81001", "ODS code of the GP practice the kit's referrals come from (receiver): on a secured target, the organisation of --gp-token's client")
	junit := fs.String("junit", "", "write a JUnit XML report to this file")
	jsonFile := fs.String("json", "", "write a JSON report to this file")
	list := fs.Bool("list", false, "list the role's scenarios and exit")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of one HTTP request")
	systemBase := fs.String("system-base", c.Getenv("LINKBRIDGE_SYSTEM_BASE"), "gp-endpoint role: the --system-base of the linkbridge deployment whose write-backs the kit imitates (its write-back key is under it; LINKBRIDGE_SYSTEM_BASE; default "+fhirmap.DefaultSystemBase+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("conform takes no arguments, got %q (the system under test is --target)", fs.Args())
	}
	systems, err := fhirmap.NewSystems(*systemBase)
	if err != nil {
		return fmt.Errorf("conform: --system-base: %w", err)
	}
	cfg.Systems = systems
	cfg.Role = conformance.Role(*role)
	if *list {
		for _, s := range conformance.Scenarios(cfg.Role) {
			if _, err := fmt.Fprintf(c.Stdout, "%-30s %s (%s)\n", s.ID, s.Name, s.Ref); err != nil {
				return err
			}
		}
		return nil
	}
	if cfg.Target == "" {
		return errors.New("conform: --target is required")
	}
	if *gpToken != "" {
		*token = *gpToken
	}
	sp := http.Header(header).Clone()
	if *token != "" {
		http.Header(header).Set("Authorization", "Bearer "+*token)
		sp.Set("Authorization", "Bearer "+*token)
	}
	if *spToken != "" {
		sp.Set("Authorization", "Bearer "+*spToken)
	}
	cfg.Header, cfg.SPHeader = http.Header(header), sp
	cfg.Progress, cfg.Prompt = c.Stdout, c.Stdout
	cfg.Client = &http.Client{Timeout: *timeout}
	rep, err := conformance.Run(ctx, cfg)
	if err != nil {
		return err
	}
	write := func(path string, fn func(io.Writer) error) error {
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("conform: report: %w", err)
		}
		if err := fn(f); err != nil {
			return fmt.Errorf("conform: report: %w", errors.Join(err, f.Close()))
		}
		return f.Close()
	}
	if err := write(*junit, rep.WriteJUnit); err != nil {
		return err
	}
	if err := write(*jsonFile, rep.WriteJSON); err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("conform: %d of %d scenarios failed", rep.Failed, len(rep.Results))
	}
	if len(rep.Results) == 0 {
		return errors.New("conform: no scenario ran (check --run)")
	}
	return nil
}
