package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile checks what can be checked of the image without a Docker
// daemon (CI builds the image itself when one answers, .ci/run): the build
// is multi-stage onto a distroless or scratch base, runs as a non-root
// user with a health check the image can run, and its go build command,
// run here as written, makes a static binary (no ELF interpreter, no
// shared libraries), which those bases need.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if n := len(regexp.MustCompile(`(?m)^FROM `).FindAllString(df, -1)); n < 2 {
		t.Errorf("%d stages, want a multi-stage build", n)
	}
	final := df[strings.LastIndex(df, "\nFROM "):]
	if !regexp.MustCompile(`^\nFROM (gcr\.io/distroless/static\S*|scratch)\b`).MatchString(final) {
		t.Errorf("final stage %q: want distroless static or scratch", strings.SplitN(final, "\n", 3)[1])
	}
	if m := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(final); m == nil || strings.HasPrefix(m[1], "0") || strings.HasPrefix(m[1], "root") {
		t.Errorf("final stage user %v: want a non-root user", m)
	}
	if !strings.Contains(final, `HEALTHCHECK`) || !strings.Contains(final, `"healthcheck"`) {
		t.Error("no HEALTHCHECK running linkbridge healthcheck")
	}
	run := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 .*go build .*) -o \S+ (\./cmd/linkbridge)$`).FindStringSubmatch(df)
	if run == nil {
		t.Fatal("no RUN CGO_ENABLED=0 ... go build ... -o OUT ./cmd/linkbridge line")
	}
	out := filepath.Join(t.TempDir(), "linkbridge")
	// The Dockerfile's command, with its environment assignments and flags.
	fields := strings.Fields(run[1])
	env := os.Environ()
	for len(fields) > 0 && strings.Contains(fields[0], "=") {
		env = append(env, fields[0])
		fields = fields[1:]
	}
	args := append(fields[1:], "-o", out, "./cmd/linkbridge")
	for i, a := range args {
		args[i] = strings.Trim(a, "'")
	}
	cmd := exec.Command(fields[0], args...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(env, "GOFLAGS=-buildvcs=false") // a worktree's .git is not always readable by go
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, msg)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v (%v)", libs, err)
	}
}
