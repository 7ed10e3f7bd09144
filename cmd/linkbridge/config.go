package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"runtime/debug"
	"strings"
	"text/tabwriter"
)

// ConfigCommand is "linkbridge config": it reads serve's configuration as
// serve would (the same flags, LINKBRIDGE_* variables and defaults, parsed
// as strictly), prints every setting with where its value came from,
// secrets redacted, then checks it as serve does before it opens the
// store. It exits non-zero when serve would refuse to start on it.
//
// A configuration file was considered and left out: serve's settings are
// flat, every one has a variable, and systemd's EnvironmentFile= or
// compose's env_file: already give a file of them (deploy/linkbridge.env)
// without a second source of truth, another precedence rule, or another
// dependency.
type ConfigCommand struct {
	Getenv func(string) string
	// Environ is the process environment, for unknown LINKBRIDGE_*
	// variables.
	Environ        []string
	Stdout, Stderr io.Writer
}

// configSetting is one line of "linkbridge config".
type configSetting struct {
	Flag     string `json:"flag"`
	Variable string `json:"variable,omitempty"`
	Value    string `json:"value"`
	// Source is default, env or flag.
	Source string `json:"source"`
}

// Run prints the effective configuration and checks it.
func (c *ConfigCommand) Run(ctx context.Context, args []string) error {
	var cfg ServeConfig
	serve := &ServeCommand{Getenv: c.Getenv, Stdout: c.Stdout, Stderr: c.Stderr}
	fs := serve.flags(&cfg)
	fs.FlagSet.Init("config", flag.ContinueOnError)
	fs.synopsis = "config [--json] [serve's flags]"
	asJSON := fs.FlagSet.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("config takes no arguments, got %q: it takes serve's flags", fs.Args())
	}
	var settings []configSetting
	fs.VisitAll(func(fl *flag.Flag) {
		if fl.Name == "json" {
			return
		}
		src := fs.source[fl.Name]
		if src == "" {
			src = "default"
		}
		settings = append(settings, configSetting{Flag: "--" + fl.Name, Variable: fs.variable(fl), Value: redactSetting(fs, fl), Source: src})
	})
	if *asJSON {
		enc := json.NewEncoder(c.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(settings); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(c.Stdout, 0, 2, 2, ' ', 0)
		var b strings.Builder
		b.WriteString("FLAG\tVARIABLE\tSOURCE\tVALUE\n")
		for _, s := range settings {
			fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", s.Flag, s.Variable, s.Source, s.Value)
		}
		if _, err := io.WriteString(tw, b.String()); err != nil {
			return err
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	var problems []error
	for _, u := range unknownVariables(c.Environ, fs.variables()) {
		msg := fmt.Sprintf("%s is not a setting (ignored)", u[0])
		if u[1] != "" {
			msg += "; did you mean " + u[1] + "?"
		}
		if _, err := fmt.Fprintln(c.Stderr, "warning:", msg); err != nil {
			return err
		}
	}
	if err := cfg.Validate(); err != nil {
		problems = append(problems, err)
	}
	if err := cfg.Security.Validate(); err != nil {
		problems = append(problems, err)
	}
	if _, err := newLogger(io.Discard, cfg.LogLevel, cfg.LogFormat); err != nil {
		problems = append(problems, err)
	}
	if err := checkDBExists(cfg.DB, cfg.CreateDB || cfg.DB == defaultDB); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("serve would not start: %w", errors.Join(problems...))
	}
	return nil
}

// redactSetting is a setting's value fit to print: secrets as "(set)",
// URLs without a password, the database URL as logs show it.
func redactSetting(fs *commandFlags, fl *flag.Flag) string {
	v := fl.Value.String()
	switch {
	case v == "":
		return ""
	case fs.secret[fl.Name]:
		return "(set, redacted)"
	case fl.Name == "db":
		return redactDB(v)
	}
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return v
}

// VersionCommand is "linkbridge version": the module version, VCS
// revision and time, and Go version recorded in the binary's build info.
type VersionCommand struct {
	Stdout, Stderr io.Writer
}

// Run prints the version.
func (c *VersionCommand) Run(ctx context.Context, args []string) error {
	fs := newFlags("version", nil, c.Stderr)
	fs.synopsis = "version"
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("version takes no arguments, got %q", fs.Args())
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("this binary carries no build information (build it with go build)")
	}
	_, err := fmt.Fprintln(c.Stdout, versionLine(info))
	return err
}

// versionLine renders the build info as one line: "linkbridge v1.2.3
// (revision 0123abcd, 2026-01-02T03:04:05Z, modified) go1.26.0". Without VCS
// information (a build with -buildvcs=false, or outside a repository) the
// revision reads "unknown".
func versionLine(info *debug.BuildInfo) string {
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	rev, at, modified := "unknown", "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	detail := "revision " + rev
	if at != "" {
		detail += ", " + at
	}
	if modified {
		detail += ", modified"
	}
	return fmt.Sprintf("linkbridge %s (%s) %s", version, detail, info.GoVersion)
}
