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
	"github.com/linkbridge/linkbridge/senddoc"
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
	fs.synopsis = "conform --target URL [--role receiver|gp-endpoint] [flags]\n       linkbridge conform --role mesh-recipient --mesh-url URL --mesh-mailbox ID --mesh-to ADDRESS [flags]"
	var cfg conformance.Config
	header := headerFlags(http.Header{})
	fs.StringVar(&cfg.Target, "target", "", "FHIR base URL of the system under test, e.g. http://127.0.0.1:8080/fhir (required, but for mesh-recipient)")
	role := fs.String("role", "receiver", "receiver (the target receives referrals), gp-endpoint (the target receives write-backs) or mesh-recipient (the target is a MESH API with a GP document inbox: GP Connect Send Document)")
	token := fs.String("token", c.Getenv("LINKBRIDGE_CONFORM_TOKEN"), "bearer token for the target (LINKBRIDGE_CONFORM_TOKEN); shorthand for --header 'Authorization: Bearer …'")
	gpToken := fs.String("gp-token", c.Getenv("LINKBRIDGE_CONFORM_GP_TOKEN"), "receiver role: bearer token of a GP system's client, for the requests the kit sends as the referrer (LINKBRIDGE_CONFORM_GP_TOKEN; default --token)")
	spToken := fs.String("sp-token", c.Getenv("LINKBRIDGE_CONFORM_SP_TOKEN"), "receiver role: bearer token of the social prescribing service's client, for link worker steps and the service's own requests (LINKBRIDGE_CONFORM_SP_TOKEN; default --token)")
	fs.Var(header, "header", "extra request header 'Name: value' (repeatable), e.g. for other authentication schemes")
	fs.StringVar(&cfg.SPBase, "sp-base", "", "linkbridge /sp/v1 base for link worker steps (default: probe <target root>/sp/v1)")
	fs.BoolVar(&cfg.Manual, "manual", false, "never drive /sp/v1: prompt a person to do each link worker step on the target and wait for its Task")
	fs.DurationVar(&cfg.ManualTimeout, "manual-timeout", 10*time.Minute, "how long to wait for a person's step")
	fs.StringVar(&cfg.Run, "run", "", "regular expression selecting scenario ids")
	fs.StringVar(&cfg.ServiceODS, "service-ods", "Y02662", "ODS code of the social prescribing service referrals are addressed to (receiver), or that the kit sends documents as (mesh-recipient)")
	fs.StringVar(&cfg.ReferrerODS, "referrer-ods", "A81001", "ODS code of the GP practice the kit's referrals come from (receiver): on a secured target, the organisation of --gp-token's client; mesh-recipient: the practice the documents are addressed to")
	junit := fs.String("junit", "", "write a JUnit XML report to this file")
	jsonFile := fs.String("json", "", "write a JSON report to this file")
	list := fs.Bool("list", false, "list the role's scenarios and exit")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of one HTTP request")
	systemBase := fs.String("system-base", c.Getenv("LINKBRIDGE_SYSTEM_BASE"), "gp-endpoint role: the --system-base of the linkbridge deployment whose write-backs the kit imitates (its write-back key is under it; LINKBRIDGE_SYSTEM_BASE; default "+fhirmap.DefaultSystemBase+")")
	var mc meshConformFlags
	mc.bind(fs)
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
	client := &http.Client{Timeout: *timeout}
	if cfg.Role == conformance.RoleMeshRecipient {
		if err := mc.apply(&cfg, client); err != nil {
			return err
		}
	}
	if cfg.Target == "" {
		return errors.New("conform: --target is required")
	}
	if cfg.Role == conformance.RoleMeshRecipient {
		// MESH authenticates with its own Authorization token: a bearer
		// token (LINKBRIDGE_CONFORM_TOKEN set for the other roles) is not
		// sent, and one asked for on the command line is an error.
		for _, f := range []string{"token", "gp-token", "sp-token"} {
			if fs.source[f] == "flag" {
				return fmt.Errorf("conform: --%s is for FHIR targets; the mesh-recipient role authenticates with --mesh-password and --mesh-shared-key", f)
			}
		}
		if http.Header(header).Get("Authorization") != "" {
			return errors.New("conform: the mesh-recipient role sends MESH's own Authorization header; drop --header 'Authorization: …'")
		}
		*token, *gpToken, *spToken = "", "", ""
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
	cfg.Client = client
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

// meshConformFlags are the mesh-recipient role's flags
// (docs/conformance.md#mesh-recipient-role).
type meshConformFlags struct {
	url, mailbox, password, sharedKey, to string
	format                                string
	cert, key, ca                         string
	ackTimeout, poll                      time.Duration
	chunkSize                             int
}

func (m *meshConformFlags) bind(fs *commandFlags) {
	fs.url(&m.url, "mesh-url", "", "", "mesh-recipient: base URL of the MESH API under test (required for that role)")
	fs.str(&m.mailbox, "mesh-mailbox", "", "", "mesh-recipient: the kit's own MESH mailbox, which sends the documents and receives the acknowledgements; the kit reads and acknowledges everything in it")
	fs.secretStr(&m.password, "mesh-password", "CONFORM_MESH_PASSWORD", "", "mesh-recipient: the kit's mailbox password")
	fs.secretStr(&m.sharedKey, "mesh-shared-key", "CONFORM_MESH_SHARED_KEY", "", "mesh-recipient: the MESH environment's shared key of the authentication HMAC")
	fs.str(&m.to, "mesh-to", "", "", "mesh-recipient: the GP inbox's mailbox id, or GPPROVIDER_<NHS number>_<DDMMYYYY>_<surname> of a test patient the target has registered (required for that role)")
	fs.str(&m.cert, "mesh-client-cert", "", "", "mesh-recipient: client certificate (PEM) MESH requires")
	fs.str(&m.key, "mesh-client-key", "", "", "mesh-recipient: its key (PEM)")
	fs.str(&m.ca, "mesh-ca", "", "", "mesh-recipient: CA certificate (PEM) to trust for MESH")
	fs.duration(&m.ackTimeout, "mesh-ack-timeout", "", 10*time.Minute, "mesh-recipient: how long to wait for a message's ITK3 acknowledgements")
	fs.duration(&m.poll, "mesh-poll", "", 5*time.Second, "mesh-recipient: how often the kit reads its MESH inbox while it waits (mind the MESH environment's rate limits)")
	fs.integer(&m.chunkSize, "mesh-chunk-size", "", 0, "mesh-recipient: chunk size of the chunked scenario (0: a third of the message, three chunks)")
	fs.oneOf(&m.format, "mesh-format", "", "json", []string{"json", "xml"}, "mesh-recipient: format of the messages the kit sends, json or xml (FHIR STU3), as serve's --mesh-format")
}

// apply configures the run: the MESH API is the target, reached through
// client (with the TLS client certificate, when given).
func (m *meshConformFlags) apply(cfg *conformance.Config, client *http.Client) error {
	if cfg.Target != "" {
		return errors.New("conform: the mesh-recipient role's target is --mesh-url, not --target")
	}
	if m.url == "" {
		return errors.New("conform: --role mesh-recipient needs --mesh-url")
	}
	cfg.Target = m.url
	format, err := senddoc.ParseFormat(m.format)
	if err != nil {
		return fmt.Errorf("conform: --mesh-format: %w", err)
	}
	cfg.MESH = conformance.MESHConfig{Mailbox: m.mailbox, Password: m.password, SharedKey: m.sharedKey, To: m.to,
		AckTimeout: m.ackTimeout, ChunkSize: m.chunkSize, Format: format}
	cfg.PollInterval = m.poll
	tc, err := clientTLS("mesh", m.cert, m.key, m.ca)
	if err != nil {
		return fmt.Errorf("conform: %w", err)
	}
	if tc != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		client.Transport = tr
	}
	return nil
}
