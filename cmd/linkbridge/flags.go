package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// envPrefix starts every environment variable linkbridge reads.
const envPrefix = "LINKBRIDGE_"

// commandFlags is a command's flag set. Its flags take their defaults from
// LINKBRIDGE_* variables, which are parsed as strictly as the flags: a bad
// number, duration, boolean or URL in either is an error naming the flag or
// variable and the accepted form, never a silent default. Flags may come
// before or after the positional arguments ("outbox show 42 --db x"); "--"
// ends the flags.
type commandFlags struct {
	*flag.FlagSet
	getenv func(string) string
	// synopsis follows "usage: linkbridge " in the help.
	synopsis string
	// envErrs are the variables that did not parse, reported by Parse.
	envErrs []error
	// vars maps a flag to its variable; secret flags are redacted by
	// "linkbridge config".
	vars   map[string]string
	secret map[string]bool
	// source maps a flag to where its value came from when it was not
	// the default: "env" (set by its variable) or "flag".
	source map[string]string
	args   []string
}

// newFlags returns an empty flag set for a command. Errors are returned
// from Parse, not printed; usage goes to stderr.
func newFlags(name string, getenv func(string) string, stderr io.Writer) *commandFlags {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &commandFlags{FlagSet: fs, getenv: getenv, synopsis: name + " [flags]", vars: map[string]string{}, secret: map[string]bool{}, source: map[string]string{}}
	fs.Usage = f.usage
	return f
}

// usage prints the synopsis and every flag with the kind of value it
// takes, its default and its variable.
func (f *commandFlags) usage() {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: linkbridge %s\n\nFlags may come before or after arguments; each --flag can also be written -flag.\n\n", f.synopsis)
	f.VisitAll(func(fl *flag.Flag) {
		kind, text := flag.UnquoteUsage(fl)
		if k, ok := fl.Value.(interface{ kind() string }); ok {
			kind = k.kind()
		}
		if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			kind = ""
		}
		fmt.Fprintf(&b, "  --%s", fl.Name)
		if kind != "" {
			fmt.Fprintf(&b, " %s", kind)
		}
		b.WriteString("\n    \t")
		b.WriteString(strings.ReplaceAll(text, "\n", "\n    \t"))
		switch fl.DefValue {
		case "", "0", "0s", "false":
		default:
			if f.secret[fl.Name] {
				fmt.Fprintf(&b, " (default set)")
			} else {
				fmt.Fprintf(&b, " (default %s)", fl.DefValue)
			}
		}
		b.WriteString("\n")
	})
	_, _ = io.WriteString(f.Output(), b.String()) // help text; a failed write has nowhere to go
}

// Parse parses the command line: flags and positional arguments in any
// order, "--" ending the flags. It then reports every LINKBRIDGE_*
// variable that did not parse (all of them, in one error), even one a flag
// overrides: a variable that is set is meant to be used. -h and --help
// return flag.ErrHelp after printing the usage.
func (f *commandFlags) Parse(args []string) error {
	f.args = nil
	for {
		if err := f.FlagSet.Parse(args); err != nil {
			return err
		}
		rest := f.FlagSet.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			f.args = append(f.args, rest...) // after "--": all positional
			break
		}
		f.args = append(f.args, rest[0])
		args = rest[1:]
	}
	f.Visit(func(fl *flag.Flag) { f.source[fl.Name] = "flag" })
	return errors.Join(f.envErrs...)
}

// Args returns the positional arguments, wherever they stood among the
// flags.
func (f *commandFlags) Args() []string { return f.args }

// NArg returns the number of positional arguments.
func (f *commandFlags) NArg() int { return len(f.args) }

// Arg returns the i'th positional argument, or "".
func (f *commandFlags) Arg(i int) string {
	if i < 0 || i >= len(f.args) {
		return ""
	}
	return f.args[i]
}

// A form is what a typed setting accepts: its parser and the accepted form
// in words, for the error message.
type form[T any] struct {
	parse  func(string) (T, error)
	format func(T) string
	words  string
	// kind names the value in the usage ("--gp-timeout duration").
	kind string
}

var (
	intForm = form[int]{strconv.Atoi, strconv.Itoa, "a whole number, e.g. 8", "int"}
	// int64Form is a whole number of bytes or items.
	int64Form = form[int64]{func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) },
		func(n int64) string { return strconv.FormatInt(n, 10) }, "a whole number, e.g. 4194304", "int"}
	floatForm = form[float64]{func(s string) (float64, error) { return strconv.ParseFloat(s, 64) },
		func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }, "a number, e.g. 50 or 0.5", "number"}
	durationForm = form[time.Duration]{time.ParseDuration, time.Duration.String,
		"a duration with its unit, e.g. 30s, 5m, 1h30m or 720h", "duration"}
	boolForm = form[bool]{strconv.ParseBool, strconv.FormatBool, "a boolean: true, false, 1, 0, t, f, TRUE, FALSE, True or False", ""}
	// urlForm is an absolute http or https URL, or empty (the setting off).
	urlForm = form[string]{parseURL, func(s string) string { return s }, "an absolute http:// or https:// URL, or empty", "url"}
)

// parseURL accepts an absolute http(s) URL with a host, or "".
func parseURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("not an absolute http(s) URL")
	}
	return s, nil
}

// typedValue is a flag.Value over a form.
type typedValue[T any] struct {
	p    *T
	form form[T]
}

func (v *typedValue[T]) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return v.form.format(*v.p)
}

func (v *typedValue[T]) kind() string { return v.form.kind }

func (v *typedValue[T]) Set(s string) error {
	x, err := v.form.parse(s)
	if err != nil {
		return fmt.Errorf("want %s", v.form.words)
	}
	*v.p = x
	return nil
}

// boolValue lets a boolean flag stand alone ("--dev" for "--dev=true").
type boolValue struct{ typedValue[bool] }

func (*boolValue) IsBoolFlag() bool { return true }

// bind registers a typed flag whose default comes from its variable (none
// when envName is ""), checked with the flag's own form.
func bind[T any](f *commandFlags, p *T, name, envName string, def T, fm form[T], usage string) {
	*p = def
	if envName != "" {
		f.vars[name] = envPrefix + envName
		usage += " (" + envPrefix + envName + ")"
		if s := f.getenv(envPrefix + envName); s != "" {
			x, err := fm.parse(s)
			if err != nil {
				f.envErrs = append(f.envErrs, fmt.Errorf("%s%s=%q: want %s (or unset it; flag --%s)", envPrefix, envName, s, fm.words, name))
			} else {
				*p = x
				f.source[name] = "env"
			}
		}
	}
	var v flag.Value = &typedValue[T]{p: p, form: fm}
	if b, ok := any(p).(*bool); ok {
		v = &boolValue{typedValue[bool]{p: b, form: boolForm}}
	}
	f.Var(v, name, usage)
}

// str binds a free-form string setting.
func (f *commandFlags) str(p *string, name, envName, def, usage string) {
	bind(f, p, name, envName, def, form[string]{func(s string) (string, error) { return s, nil }, func(s string) string { return s }, "text", "string"}, usage)
}

// oneOf binds a string setting that takes one of choices.
func (f *commandFlags) oneOf(p *string, name, envName, def string, choices []string, usage string) {
	words := strings.Join(choices, " or ")
	bind(f, p, name, envName, def, form[string]{func(s string) (string, error) {
		if !slices.Contains(choices, s) {
			return "", fmt.Errorf("not %s", words)
		}
		return s, nil
	}, func(s string) string { return s }, words, "string"}, usage)
}

// secretStr binds a string setting that "linkbridge config" redacts.
func (f *commandFlags) secretStr(p *string, name, envName, def, usage string) {
	f.str(p, name, envName, def, usage)
	f.secret[name] = true
}

// url binds an absolute http(s) URL setting (empty: off).
func (f *commandFlags) url(p *string, name, envName, def, usage string) {
	bind(f, p, name, envName, def, urlForm, usage)
}

// boolean binds a boolean setting; flag and variable take what
// strconv.ParseBool takes.
func (f *commandFlags) boolean(p *bool, name, envName string, def bool, usage string) {
	bind(f, p, name, envName, def, boolForm, usage)
}

// integer binds a whole-number setting.
func (f *commandFlags) integer(p *int, name, envName string, def int, usage string) {
	bind(f, p, name, envName, def, intForm, usage)
}

// int64 binds a whole-number setting of bytes or items.
func (f *commandFlags) int64(p *int64, name, envName string, def int64, usage string) {
	bind(f, p, name, envName, def, int64Form, usage)
}

// number binds a number setting.
func (f *commandFlags) number(p *float64, name, envName string, def float64, usage string) {
	bind(f, p, name, envName, def, floatForm, usage)
}

// duration binds a duration setting (time.ParseDuration's form).
func (f *commandFlags) duration(p *time.Duration, name, envName string, def time.Duration, usage string) {
	bind(f, p, name, envName, def, durationForm, usage)
}

// varPattern finds a variable named in a flag's usage text.
var varPattern = regexp.MustCompile(`LINKBRIDGE_[A-Z0-9_]+`)

// variable returns the LINKBRIDGE_* variable of a flag, or "".
func (f *commandFlags) variable(fl *flag.Flag) string {
	if v, ok := f.vars[fl.Name]; ok {
		return v
	}
	return varPattern.FindString(fl.Usage) // a flag bound with env()
}

// variables returns every variable the command reads, sorted.
func (f *commandFlags) variables() []string {
	var vs []string
	f.VisitAll(func(fl *flag.Flag) {
		if v := f.variable(fl); v != "" {
			vs = append(vs, v)
		}
	})
	sort.Strings(vs)
	return vs
}

// otherVariables are the LINKBRIDGE_* variables that are not serve's
// settings: other commands' and the test suite's. serve does not warn
// about them.
var otherVariables = []string{
	"LINKBRIDGE_CONFORM_TOKEN", "LINKBRIDGE_CONFORM_GP_TOKEN", "LINKBRIDGE_CONFORM_SP_TOKEN",
	"LINKBRIDGE_CONFORM_MESH_PASSWORD", "LINKBRIDGE_CONFORM_MESH_SHARED_KEY",
	"LINKBRIDGE_REFGP_ADDR", "LINKBRIDGE_REFGP_DB", "LINKBRIDGE_REFGP_TOKEN",
	"LINKBRIDGE_REFGP_ALLOW_CLIENT_IDS", "LINKBRIDGE_REFGP_NO_DELETE", "LINKBRIDGE_REFGP_LOG_LEVEL",
	"LINKBRIDGE_REFMESH_ADDR", "LINKBRIDGE_REFMESH_DB", "LINKBRIDGE_REFMESH_SHARED_KEY", "LINKBRIDGE_REFMESH_MAILBOXES",
	"LINKBRIDGE_REFMESH_GP_MAILBOX", "LINKBRIDGE_REFMESH_GP_ODS", "LINKBRIDGE_REFMESH_GP_CATCH_ALL",
	"LINKBRIDGE_TEST_POSTGRES_URL", "LINKBRIDGE_FHIR_SCHEMA", "LINKBRIDGE_CACHE_DIR",
	"LINKBRIDGE_TEST_ARTIFACTS", "LINKBRIDGE_CHROMIUM", "LINKBRIDGE_AXE_JS", // the browser test (.ci/run)
	"LINKBRIDGE_BENCH_BOARD_DB", // BenchmarkMDTBoard's seeded store
}

// unknownVariables returns the LINKBRIDGE_* variables in environ that
// neither known nor otherVariables names, each with the known variable it
// most likely misspells ("" when none is close).
func unknownVariables(environ, known []string) [][2]string {
	all := map[string]bool{}
	for _, k := range append(append([]string{}, known...), otherVariables...) {
		all[k] = true
	}
	var out [][2]string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || all[name] {
			continue
		}
		best, bestD := "", 4 // at most three edits away
		for _, k := range known {
			if d := editDistance(name, k); d < bestD {
				best, bestD = k, d
			}
		}
		out = append(out, [2]string{name, best})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
