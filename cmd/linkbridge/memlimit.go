package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// defaultMemoryLimit is serve's default soft memory limit of the Go
// runtime (--memory-limit): the Go heap, stacks and runtime metadata. The
// process's resident set is that plus the binary's mapped code and data
// (about 40 MB) and SQLite's page caches (outside the Go heap, bounded by
// adapter/sqlite's cache sizes), so this default keeps the gateway under
// the 150 MB of issue 18 (docs/performance.md#memory). Without a limit
// the heap grows to twice the live heap (GOGC=100) and the runtime keeps
// the freed pages for a while; with one, it collects and returns memory
// sooner as it nears the limit. The limit is soft: a live heap above it
// is never refused, and the runtime caps the extra collection at about
// half the CPU.
const defaultMemoryLimit = 64 << 20

// memoryUnits are the suffixes a memory size takes, as GOMEMLIMIT's.
var memoryUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// memoryForm is a memory size: bytes, or a whole number with one of
// GOMEMLIMIT's units (B, KiB, MiB, GiB, TiB); "off" or 0 for no limit.
var memoryForm = form[int64]{parseMemorySize, formatMemorySize,
	"a size in bytes or with a unit B, KiB, MiB, GiB or TiB (e.g. 64MiB), or off", "size"}

// parseMemorySize parses a memory size; "off" is 0.
func parseMemorySize(s string) (int64, error) {
	if s == "off" {
		return 0, nil
	}
	num, shift := s, uint(0)
	for _, u := range memoryUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("not a size")
	}
	if n > math.MaxInt64>>shift {
		return 0, errors.New("too large")
	}
	return n << shift, nil
}

// formatMemorySize renders a size in the largest unit that divides it.
func formatMemorySize(n int64) string {
	if n == 0 {
		return "off"
	}
	for _, u := range memoryUnits {
		if u.shift > 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// applyMemoryLimit sets the Go runtime's soft memory limit through set
// (debug.SetMemoryLimit's contract) from --memory-limit (0: none). When
// the setting was left at its default (source "") and GOMEMLIMIT is set,
// the runtime's own reading of GOMEMLIMIT stays in force: the standard Go
// variable is honoured unless linkbridge's own setting is given. It
// returns the limit in force (math.MaxInt64: none) and where it came
// from, for the log.
func applyMemoryLimit(set func(int64) int64, limit int64, source string, getenv func(string) string) (int64, string) {
	if source == "" && getenv != nil && getenv("GOMEMLIMIT") != "" {
		return set(-1), "GOMEMLIMIT"
	}
	if source == "" {
		source = "default"
	}
	if limit <= 0 {
		limit = math.MaxInt64
	}
	set(limit)
	return limit, source
}

// describeMemoryLimit renders a limit in force for the log.
func describeMemoryLimit(limit int64) string {
	if limit == math.MaxInt64 {
		return "off"
	}
	return fmt.Sprintf("%s (%d bytes)", formatMemorySize(limit), limit)
}
