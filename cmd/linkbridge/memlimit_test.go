package main

import (
	"context"
	"io"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMemoryLimitFlag: --memory-limit and LINKBRIDGE_MEMORY_LIMIT take
// GOMEMLIMIT's sizes (bytes, or B, KiB, MiB, GiB, TiB) and off; anything
// else stops serve naming the setting and the form.
func TestMemoryLimitFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  string
		args []string
		want int64
	}{
		{"", nil, defaultMemoryLimit},
		{"96MiB", nil, 96 << 20},
		{"1GiB", nil, 1 << 30},
		{"512KiB", nil, 512 << 10},
		{"123456", nil, 123456},
		{"100B", nil, 100},
		{"off", nil, 0},
		{"0", nil, 0},
		{"96MiB", []string{"--memory-limit", "2GiB"}, 2 << 30},
		{"", []string{"--memory-limit=off"}, 0},
	} {
		env := map[string]string{"LINKBRIDGE_MEMORY_LIMIT": tc.env}
		var cfg ServeConfig
		c := &ServeCommand{Getenv: func(k string) string { return env[k] }, Stderr: io.Discard}
		if err := c.flags(&cfg).Parse(tc.args); err != nil {
			t.Fatalf("LINKBRIDGE_MEMORY_LIMIT=%q %v: %v", tc.env, tc.args, err)
		}
		if cfg.MemoryLimit != tc.want {
			t.Errorf("LINKBRIDGE_MEMORY_LIMIT=%q %v: MemoryLimit = %d, want %d", tc.env, tc.args, cfg.MemoryLimit, tc.want)
		}
	}
	for _, bad := range []string{"80MB", "80M", "-1", "1.5GiB", "MiB", "lots", "9999999TiB"} {
		var cfg ServeConfig
		c := &ServeCommand{Getenv: func(k string) string {
			if k == "LINKBRIDGE_MEMORY_LIMIT" {
				return bad
			}
			return ""
		}, Stderr: io.Discard}
		err := c.flags(&cfg).Parse(nil)
		if err == nil || !strings.Contains(err.Error(), "LINKBRIDGE_MEMORY_LIMIT") || !strings.Contains(err.Error(), "MiB") {
			t.Errorf("LINKBRIDGE_MEMORY_LIMIT=%q: error %v, want one naming the variable and the form", bad, err)
		}
		if err := c.flags(&cfg).FlagSet.Parse([]string{"--memory-limit", bad}); err == nil {
			t.Errorf("--memory-limit %q accepted", bad)
		}
	}
	for n, want := range map[int64]string{0: "off", 80 << 20: "80MiB", 1 << 30: "1GiB", 3 << 10: "3KiB", 1536: "1536"} {
		if got := formatMemorySize(n); got != want {
			t.Errorf("formatMemorySize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestApplyMemoryLimit: the setting sets the runtime's limit; left at its
// default, a GOMEMLIMIT in the environment stays in force; off is no limit.
func TestApplyMemoryLimit(t *testing.T) {
	t.Parallel()
	env := func(gomemlimit string) func(string) string {
		return func(k string) string {
			if k == "GOMEMLIMIT" {
				return gomemlimit
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name       string
		limit      int64
		source     string
		gomemlimit string
		wantSet    int64 // the value passed to set
		wantLimit  int64
		wantFrom   string
	}{
		{"Default", defaultMemoryLimit, "", "", defaultMemoryLimit, defaultMemoryLimit, "default"},
		{"GOMEMLIMITOverDefault", defaultMemoryLimit, "", "200MiB", -1, 200 << 20, "GOMEMLIMIT"},
		{"FlagOverGOMEMLIMIT", 64 << 20, "flag", "200MiB", 64 << 20, 64 << 20, "flag"},
		{"EnvOverGOMEMLIMIT", 64 << 20, "env", "200MiB", 64 << 20, 64 << 20, "env"},
		{"Off", 0, "flag", "", math.MaxInt64, math.MaxInt64, "flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []int64
			set := func(n int64) int64 {
				got = append(got, n)
				if n < 0 {
					return 200 << 20 // the runtime's, from GOMEMLIMIT
				}
				return math.MaxInt64
			}
			limit, from := applyMemoryLimit(set, tc.limit, tc.source, env(tc.gomemlimit))
			if len(got) != 1 || got[0] != tc.wantSet || limit != tc.wantLimit || from != tc.wantFrom {
				t.Errorf("set(%v), limit %d from %q; want set(%d), %d from %q", got, limit, from, tc.wantSet, tc.wantLimit, tc.wantFrom)
			}
		})
	}
}

// TestServeSetsMemoryLimit: serve started as the process's own (main
// puts debug.SetMemoryLimit in the context) sets the limit before it
// serves, and logs it.
func TestServeSetsMemoryLimit(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []int64
	set := func(n int64) int64 {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, n)
		return math.MaxInt64
	}
	ready := make(chan string, 1)
	ctx, cancel := context.WithTimeout(withMemoryLimit(withReady(context.Background(), ready), set), time.Minute)
	defer cancel()
	logs := &syncBuffer{}
	errc := make(chan error, 1)
	db := filepath.Join(t.TempDir(), "lb.db")
	go func() {
		errc <- run(ctx, []string{"serve", "--create-db", "--dev", "--addr", "127.0.0.1:0", "--db", db, "--memory-limit", "96MiB"},
			func(string) string { return "" }, io.Discard, logs)
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
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != 96<<20 {
		t.Errorf("memory limit set %v, want [%d]", got, 96<<20)
	}
	if l := logs.String(); !strings.Contains(l, "memory limit") || !strings.Contains(l, "96MiB") {
		t.Errorf("logs do not report the limit:\n%s", l)
	}
}
