package sqlshared

import (
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// MigrationFiles returns the embedded migrations (migration/*.sql in fsys)
// in the order they run: by name, which starts with their number.
func MigrationFiles(fsys fs.FS) ([]string, error) {
	names, err := fs.Glob(fsys, "migration/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// MigrationNumber returns the number a migration's name starts with (1 for
// 001_initial.sql).
func MigrationNumber(name string) (int, error) {
	num, _, _ := strings.Cut(name, "_")
	v, err := strconv.Atoi(num)
	if err != nil {
		return 0, fmt.Errorf("bad migration name %q: %w", name, err)
	}
	return v, nil
}
