package sqlshared_test

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

func TestMigrations(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"migration/010_ten.sql":     {},
		"migration/002_two.sql":     {},
		"migration/001_initial.sql": {},
		"migration/README":          {},
		"other/003_x.sql":           {},
	}
	names, err := sqlshared.MigrationFiles(fsys)
	if err != nil {
		t.Fatalf("MigrationFiles returned unexpected error: %v", err)
	}
	want := []string{"migration/001_initial.sql", "migration/002_two.sql", "migration/010_ten.sql"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("MigrationFiles mismatch (-want +got):\n%s", diff)
	}
	for name, want := range map[string]int{"001_initial.sql": 1, "010_ten.sql": 10, "5_x.sql": 5} {
		if got, err := sqlshared.MigrationNumber(name); err != nil || got != want {
			t.Errorf("MigrationNumber(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, name := range []string{"initial.sql", "x_1.sql", ""} {
		if got, err := sqlshared.MigrationNumber(name); err == nil {
			t.Errorf("MigrationNumber(%q) = %d, want an error", name, got)
		}
	}
}
