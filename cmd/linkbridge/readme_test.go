package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The README test runs the README's examples, top to bottom, in one bash
// session against a gateway started with serve --dev-auth, so they cannot
// rot. The conventions it reads:
//
//   - every ```sh block runs, in order, unless the line just before its
//     fence is `<!-- readme-test: skip — reason -->` (serve itself, the test
//     suite, commands against other systems); other fences (```json,
//     ```text, a bare ```) are never run, and ```bash, ```shell or
//     ```console are refused so that a runnable block cannot hide as one;
//   - every curl must answer 2xx, unless its command ends with a comment
//     holding `-> NNN` (e.g. `# -> 409`): then it must answer exactly NNN
//     (such a command holds one curl);
//   - http://127.0.0.1:8080 is the test's gateway; `go run ./cmd/linkbridge`
//     and `linkbridge` run the linkbridge binary, built once; uuidgen falls
//     back to the kernel's when missing.

// readmeBlock is one runnable ```sh block of a README.
type readmeBlock struct {
	line  int // README line of the block's first line (after the fence)
	lines []string
}

// readmeCommand is one command of a block, with its continuation lines.
type readmeCommand struct {
	line   int    // README line the command starts on
	text   string // the command as written, comments included
	expect string // the HTTP status its `-> NNN` comment names; "" for any 2xx
}

var (
	fenceRe      = regexp.MustCompile("^```\\s*([A-Za-z0-9_+-]*)")
	directiveRe  = regexp.MustCompile(`^<!--\s*readme-test:`)
	skipMarkerRe = regexp.MustCompile(`^<!--\s*readme-test:\s*skip\b\s*[—:-]?\s*(.*?)\s*-->\s*$`)
	expectRe     = regexp.MustCompile(`->\s*([1-5][0-9][0-9])\b`)
	curlWordRe   = regexp.MustCompile(`(^|[\s|;&(])curl\s`)
)

// parseReadme returns the README's runnable ```sh blocks, in order.
func parseReadme(md string) ([]readmeBlock, error) {
	lines := strings.Split(md, "\n")
	var blocks []readmeBlock
	for i := 0; i < len(lines); i++ {
		ln := lines[i]
		if directiveRe.MatchString(ln) {
			m := skipMarkerRe.FindStringSubmatch(ln)
			if m == nil || m[1] == "" {
				return nil, fmt.Errorf("README.md:%d: a readme-test directive is `<!-- readme-test: skip — reason -->`: %s", i+1, ln)
			}
			if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```sh") {
				return nil, fmt.Errorf("README.md:%d: a skip marker must stand on the line just before a ```sh fence", i+1)
			}
			continue
		}
		m := fenceRe.FindStringSubmatch(ln)
		if m == nil {
			continue
		}
		start := i + 1
		end := start
		for end < len(lines) && !strings.HasPrefix(lines[end], "```") {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("README.md:%d: code block never closed", i+1)
		}
		i = end
		switch m[1] {
		case "sh":
		case "bash", "shell", "console", "zsh", "shell-session":
			return nil, fmt.Errorf("README.md:%d: shell examples are ```sh blocks (the README test runs those), not ```%s", start, m[1])
		default:
			continue
		}
		if start >= 2 && directiveRe.MatchString(lines[start-2]) {
			continue // skipped, with its reason
		}
		blocks = append(blocks, readmeBlock{line: start + 1, lines: lines[start:end]})
	}
	return blocks, nil
}

// splitCommands cuts a block into its commands. A command goes on over the
// next line after a trailing backslash, pipe, && or ||, and while a quote
// is open; lines of comments alone belong to no command.
func splitCommands(b readmeBlock) ([]readmeCommand, error) {
	var cmds []readmeCommand
	var code string // the current command without its comments
	open := false
	single, double := false, false
	for i, ln := range b.lines {
		if !open {
			if t := strings.TrimSpace(ln); t == "" || strings.HasPrefix(t, "#") {
				continue
			}
			cmds = append(cmds, readmeCommand{line: b.line + i})
			code, open = "", true
		}
		cur := &cmds[len(cmds)-1]
		if cur.text != "" {
			cur.text += "\n"
			code += "\n"
		}
		cur.text += ln
		escaped := false
		comment := ""
		j := 0
	scan:
		for ; j < len(ln); j++ {
			c := ln[j]
			switch {
			case escaped:
				escaped = false
			case single:
				single = c != '\''
			case c == '\\':
				escaped = true
			case double:
				double = c != '"'
			case c == '\'':
				single = true
			case c == '"':
				double = true
			case c == '#' && (j == 0 || ln[j-1] == ' ' || ln[j-1] == '\t'):
				comment = ln[j:]
				break scan
			}
		}
		code += ln[:j]
		if m := expectRe.FindStringSubmatch(comment); m != nil {
			cur.expect = m[1]
		}
		rest := strings.TrimSpace(ln[:j])
		if single || double || escaped || strings.HasSuffix(rest, "|") || strings.HasSuffix(rest, "&&") {
			continue
		}
		open = false
		if cur.expect != "" && len(curlWordRe.FindAllString(code, -1)) != 1 {
			return nil, fmt.Errorf("README.md:%d: a command annotated `-> %s` must hold exactly one curl", cur.line, cur.expect)
		}
	}
	if open {
		return nil, fmt.Errorf("README.md:%d: command not finished at the end of its block (open quote or trailing continuation)", cmds[len(cmds)-1].line)
	}
	return cmds, nil
}

// readmePrelude is the bash the README's commands run after. curl answers
// as usual (body, -i headers) and also checks the status against the
// command's annotation; a failure is written to $LB_FAILURES with the
// README line and stops the whole script, even from a subshell.
const readmePrelude = `set -Eeuo pipefail
__lb_line=0 __lb_expect=
__lb_at() { __lb_line=$1; __lb_expect=$2; printf '\n### README.md:%s\n' "$1"; }
__lb_fail() {
	printf 'README.md:%s: %s\n' "$__lb_line" "$*" >>"$LB_FAILURES"
	kill -TERM $$
	exit 1
}
trap 'printf "README.md:%s: exit status %s\n" "$__lb_line" "$?" >>"$LB_FAILURES"' ERR
curl() {
	local body status rc=0 prev= a
	# curl sends an empty body, with a warning -s hides, for a file it cannot read
	for a in "$@"; do
		case "$prev" in
		-d | --data | --data-binary | --data-ascii | --json | -T | --upload-file)
			if [[ $a == @* && $a != @- && ! -r ${a#@} ]]; then __lb_fail "curl would send $a, which is not there"; fi
			;;
		esac
		prev=$a
	done
	body=$(mktemp "$LB_TMP/body.XXXXXX")
	status=$(command curl -q -S "$@" -o "$body" -w '%{http_code}') || rc=$?
	cat "$body"
	if [ "$rc" -ne 0 ]; then
		__lb_fail "curl exited with status $rc"
	fi
	local want=${__lb_expect:-2xx}
	if [ "$want" = 2xx ] && [[ $status == 2[0-9][0-9] ]]; then return 0; fi
	if [ "$status" = "$want" ]; then return 0; fi
	__lb_fail "curl answered $status, the README says $want: $(head -c 1500 "$body")"
}
go() {
	if [ "${1-}" = run ] && [ "${2-}" = ./cmd/linkbridge ]; then
		shift 2
		"$LB_BIN" "$@"
	else
		__lb_fail "the README test runs only 'go run ./cmd/linkbridge …', not: go $*"
	fi
}
linkbridge() { "$LB_BIN" "$@"; }
command -v uuidgen >/dev/null 2>&1 || uuidgen() { cat /proc/sys/kernel/random/uuid; }
`

// readmeGateway is the gateway the README's examples run against.
type readmeGateway struct {
	addr   string // host:port standing in for 127.0.0.1:8080
	devDir string // its development key and clients
	bin    string // the linkbridge binary the examples' commands run
}

// startReadmeGateway starts serve --dev-auth on a fresh database, as the
// README's Quick start does.
func startReadmeGateway(t *testing.T) readmeGateway {
	t.Helper()
	dir := t.TempDir()
	devDir := filepath.Join(dir, "dev")
	ready := make(chan string, 1)
	var out bytes.Buffer
	addr := startCommand(t, []string{"serve", "--dev-auth", "--dev-dir", devDir, "--addr", "127.0.0.1:0",
		"--db", filepath.Join(dir, "lb.db"), "--log-level", "error"}, ready, &out)
	return readmeGateway{addr: addr, devDir: devDir, bin: buildBinary(t)}
}

// runReadme runs md's runnable blocks in one bash session against gw, from
// the repository root. It returns the transcript and, when an example
// failed, an error naming its README line, the command and why.
func runReadme(t *testing.T, gw readmeGateway, md string) (string, error) {
	t.Helper()
	blocks, err := parseReadme(md)
	if err != nil {
		return "", err
	}
	var script strings.Builder
	script.WriteString(readmePrelude)
	byLine := map[int]readmeCommand{}
	for _, b := range blocks {
		cmds, err := splitCommands(b)
		if err != nil {
			return "", err
		}
		for _, c := range cmds {
			byLine[c.line] = c
			fmt.Fprintf(&script, "__lb_at %d '%s'\n%s\n", c.line, c.expect, strings.ReplaceAll(c.text, "127.0.0.1:8080", gw.addr))
		}
	}
	tmp := t.TempDir()
	scriptPath, failures := filepath.Join(tmp, "readme.sh"), filepath.Join(tmp, "failures")
	if err := os.WriteFile(scriptPath, []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang guard, not a timing check
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", scriptPath)
	cmd.WaitDelay = 5 * time.Second // a child still holding the output after bash is killed
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(readmeEnv(), "LINKBRIDGE_DEV_DIR="+gw.devDir, "LB_BIN="+gw.bin, "LB_FAILURES="+failures, "LB_TMP="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	failed, _ := os.ReadFile(failures)
	if runErr == nil && len(failed) == 0 {
		return out.String(), nil
	}
	reports := strings.Split(strings.TrimSpace(string(failed)), "\n")
	if len(failed) == 0 {
		// bash stopped by itself (an unset variable, a syntax error): the
		// last command it started is the one.
		line := "?"
		if i := strings.LastIndex(out.String(), "### README.md:"); i >= 0 {
			line, _, _ = strings.Cut(out.String()[i+len("### README.md:"):], "\n")
		}
		reports = []string{fmt.Sprintf("README.md:%s: exit status: %v", line, runErr)}
	}
	var msg strings.Builder
	seen := map[string]bool{}
	for _, f := range reports {
		if f == "" || seen[f] {
			continue
		}
		seen[f] = true
		msg.WriteString(f + "\n")
		if parts := strings.SplitN(f, ":", 3); len(parts) == 3 {
			if n, err := strconv.Atoi(parts[1]); err == nil {
				if c, ok := byLine[n]; ok {
					msg.WriteString("  the command:\n    " + strings.ReplaceAll(c.text, "\n", "\n    ") + "\n")
				}
			}
		}
	}
	tail := out.String()
	if len(tail) > 4000 {
		tail = "…" + tail[len(tail)-4000:]
	}
	return out.String(), fmt.Errorf("%stranscript (end):\n%s", msg.String(), tail)
}

// readmeEnv is the environment without the caller's LINKBRIDGE_* settings
// and shell start-up files, which would change what the examples do.
func readmeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "LINKBRIDGE_") || k == "BASH_ENV" || k == "ENV" || k == "CURL_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// requireTools skips the test when a tool the README uses is missing, or
// fails it under CI=true, where .ci/run installs them.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the README examples need %s (.ci/run installs it): %v", tool, err)
			}
			t.Skipf("the README examples need %s: %v", tool, err)
		}
	}
}

// TestREADME runs every runnable example of the README, in order, against
// a secured gateway (serve --dev-auth): each command works as written, and
// each curl answers 2xx or the status the README names.
func TestREADME(t *testing.T) {
	requireTools(t, "bash", "curl", "jq")
	md, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	gw := startReadmeGateway(t)
	out, err := runReadme(t, gw, string(md))
	if err != nil {
		t.Fatalf("a README example failed:\n%v", err)
	}
	// The annotations are checked, not only present: the README shows a
	// replay, a stale version and another practice's read.
	for _, want := range []string{`"code":"duplicate"`, "is stale", "24 passed, 0 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("the README run's output lacks %q", want)
		}
	}

	// The same run catches a broken example: each is the README's way of
	// rotting, and each must fail at its line with its reason.
	tokens := "```sh\nT_GP=$(go run ./cmd/linkbridge token --client dev-gp)\nT_SP=$(go run ./cmd/linkbridge token --client dev-sp)\n" +
		"B=http://127.0.0.1:8080/fhir\nCT='Content-Type: application/fhir+json'\n```\n\n```sh\n"
	for _, tt := range []struct {
		name, block, want string
	}{
		{"MissingFile", `curl -s -XPOST -H "$CT" --oauth2-bearer "$T_GP" --data-binary @testdata/fhir/r4/task-cancelled.json $B/Task`,
			"README.md:9: curl would send @testdata/fhir/r4/task-cancelled.json, which is not there"},
		{"WrongToken", `curl -s -XPOST -H "$CT" --oauth2-bearer "$T_SP" --data-binary @testdata/fhir/r4/bundle-referral-transaction.json $B`,
			"README.md:9: curl answered 403, the README says 2xx"},
		{"OtherPractice", `curl -s -XPOST -H "$CT" --oauth2-bearer "$T_GP" --data-binary @testdata/fhir/r4/valid/servicerequest-contained-patient.json $B/ServiceRequest`,
			"README.md:9: curl answered 403, the README says 2xx"},
		{"NoToken", `curl -s "$B/Task?status=requested"`, "README.md:9: curl answered 401"},
		{"StalePath", `curl -s --oauth2-bearer "$T_GP" $B/Tasks`, "README.md:9: curl answered 404"},
		{"Placeholder", `curl -s --oauth2-bearer "$T_GP" $B/Task/TASK_ID`, "README.md:9: curl answered 404"},
		{"StatusNotAsSaid", `curl -s $B/metadata   # -> 409`, "README.md:9: curl answered 200, the README says 409"},
		{"InCapture", "TASK=$(curl -s --oauth2-bearer \"$T_GP\" \"$B/Task?staus=requested\" | jq -r '.entry[0].resource.id')",
			"README.md:9: curl answered 400"},
		{"InArgument", `curl -s --oauth2-bearer "$T_GP" "$B/Task?_id=$(curl -s --oauth2-bearer "$T_GP" $B/Taks)"`,
			"README.md:9: curl answered 404"},
		{"UnsetVariable", `curl -s --oauth2-bearer "$T_NURSE" $B/Task`, "README.md:9: exit status"},
		{"OtherGoCommand", `go run ./cmd/other`, "README.md:9: the README test runs only"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runReadme(t, gw, tokens+tt.block+"\necho unreachable\n```\n")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("a broken example was not caught as %q:\n%v", tt.want, err)
			}
			if strings.Contains(err.Error(), "\nunreachable") {
				t.Errorf("the run went on after the failure:\n%v", err)
			}
		})
	}
}

// TestReadmeParse: which blocks run, where commands start and end, what
// status each expects, and the conventions refused.
func TestReadmeParse(t *testing.T) {
	md := strings.Join([]string{
		"# x", // 1
		"```sh",
		"A=1   # a comment",
		"# a comment line",
		"curl -s -XPOST \\", // 5
		"  -d '{\"a\": \"b # not a comment\",",
		"  \"c\": 1}' $B   # -> 409 duplicate",
		"X=$(curl -s $B |",
		"  jq -r .id)",
		"```", // 10
		"<!-- readme-test: skip — the server itself -->",
		"```sh",
		"serve &",
		"```",
		"```json", // 15
		"{}",
		"```",
		"```sh",
		"curl -s \"$B/it's\" 'x'   # -> 201",
		"```",
	}, "\n")
	blocks, err := parseReadme(md)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range blocks {
		cmds, err := splitCommands(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cmds {
			got = append(got, fmt.Sprintf("%d %q %d", c.line, c.expect, strings.Count(c.text, "\n")+1))
		}
	}
	want := []string{`3 "" 1`, `5 "409" 3`, `8 "" 2`, `19 "201" 1`}
	if !slices.Equal(got, want) {
		t.Errorf("commands (line, expect, lines) = %q, want %q", got, want)
	}

	for _, tt := range []struct{ name, md, want string }{
		{"BashFence", "```bash\nls\n```\n", "not ```bash"},
		{"Unclosed", "```sh\nls\n", "never closed"},
		{"MarkerWithoutReason", "<!-- readme-test: skip -->\n```sh\nls\n```\n", "readme-test directive"},
		{"MarkerAwayFromFence", "<!-- readme-test: skip — x -->\n\n```sh\nls\n```\n", "just before"},
		{"UnknownDirective", "<!-- readme-test: run -->\n```sh\nls\n```\n", "readme-test directive"},
		{"OpenQuote", "```sh\necho 'a\n```\n", "not finished"},
		{"TwoCurlsOneStatus", "```sh\ncurl -s $B | curl -s -d @- $B   # -> 412\n```\n", "exactly one curl"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			blocks, err := parseReadme(tt.md)
			for _, b := range blocks {
				if err == nil {
					_, err = splitCommands(b)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one about %q", err, tt.want)
			}
		})
	}
}
