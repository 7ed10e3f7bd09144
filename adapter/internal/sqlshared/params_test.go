package sqlshared_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

type sp = linkbridge.SearchParam

func TestParamsRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ps   []sp
		want string
	}{
		{"None", nil, `[]`},
		{"Empty", []sp{}, `[]`},
		{"One", []sp{{Name: "patient", Value: "Patient/1"}}, `[["patient","Patient/1"]]`},
		{"Escaped", []sp{{Name: "identifier", Value: `"9"`, System: "https://x"}, {Name: "status", Value: "ready"}},
			`[["identifier","\"9\"","https://x"],["status","ready"]]`},
		{"TokenWithoutSystem", []sp{{Name: "identifier", Value: "9"}}, `[["identifier","9"]]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := sqlshared.EncodeParams(tt.ps)
			if err != nil || got != tt.want {
				t.Fatalf("EncodeParams = %q, %v; want %q", got, err, tt.want)
			}
			back, err := sqlshared.DecodeParams(got)
			if err != nil {
				t.Fatalf("DecodeParams(%q) returned unexpected error: %v", got, err)
			}
			want := tt.ps
			if len(want) == 0 {
				want = nil
			}
			if diff := cmp.Diff(want, back); diff != "" {
				t.Errorf("DecodeParams(EncodeParams) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeParamsBad(t *testing.T) {
	t.Parallel()
	for _, s := range []string{`{`, `{"a":"b"}`, `[["a",1]]`} {
		if ps, err := sqlshared.DecodeParams(s); err == nil {
			t.Errorf("DecodeParams(%q) = %v, want an error", s, ps)
		}
	}
	if ps, err := sqlshared.DecodeParams(""); err != nil || ps != nil {
		t.Errorf("DecodeParams(\"\") = %v, %v; want nil, nil", ps, err)
	}
}

func TestParamChanges(t *testing.T) {
	t.Parallel()
	a, b, c := sp{Name: "patient", Value: "Patient/1"}, sp{Name: "status", Value: "ready"}, sp{Name: "status", Value: "in-progress"}
	tests := []struct {
		name    string
		stored  []sp
		params  []sp
		wantDel []sp
		wantHad []sp
	}{
		{"NoneBefore", nil, []sp{a, b}, nil, nil},
		{"Unchanged", []sp{a, b}, []sp{a, b}, nil, []sp{a, b}},
		{"OneReplaced", []sp{a, b}, []sp{a, c}, []sp{b}, []sp{a, b}},
		{"AllGone", []sp{a, b}, nil, []sp{a, b}, []sp{a, b}},
		// A value stored twice is deleted once.
		{"StoredTwice", []sp{b, b, a}, []sp{a}, []sp{b}, []sp{a, b}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stored, err := sqlshared.EncodeParams(tt.stored)
			if err != nil {
				t.Fatal(err)
			}
			del, had, err := sqlshared.ParamChanges(stored, tt.params)
			if err != nil {
				t.Fatalf("ParamChanges returned unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.wantDel, del); diff != "" {
				t.Errorf("deleted mismatch (-want +got):\n%s", diff)
			}
			wantHad := map[sp]bool{}
			for _, p := range tt.wantHad {
				wantHad[p] = true
			}
			if diff := cmp.Diff(wantHad, had); diff != "" {
				t.Errorf("had mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if _, _, err := sqlshared.ParamChanges("{", nil); err == nil {
		t.Error("ParamChanges of a bad stored column returned no error")
	}
}

// TestParamsNormalized: a value written as "system|value" is stored as the
// token, split at its first "|".
func TestParamsNormalized(t *testing.T) {
	t.Parallel()
	got, err := sqlshared.EncodeParams([]sp{{Name: "identifier", Value: "https://x|9|a"}, {Name: "identifier", Value: "|8"}})
	if want := `[["identifier","9|a","https://x"],["identifier","8"]]`; err != nil || got != want {
		t.Fatalf("EncodeParams = %q, %v; want %q", got, err, want)
	}
}

// TestDecodeParamsBeforeMigration023 reads columns written when a token was
// stored twice, as "system|value" and "value": as migration 023 rewrites
// the index rows, the first is the token and the second goes; a bare value
// that is no token's (a code, a reference) stays, and "|value" (no
// system) is one token without a system.
func TestDecodeParamsBeforeMigration023(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, stored string
		want         []sp
	}{
		{"Identifier", `[["identifier","https://x|9"],["identifier","9"],["status","ready"]]`,
			[]sp{{Name: "identifier", Value: "9", System: "https://x"}, {Name: "status", Value: "ready"}}},
		{"NoSystem", `[["identifier","|9"],["identifier","9"]]`, []sp{{Name: "identifier", Value: "9"}}},
		// The same value under another name is not the token's second row.
		{"OtherName", `[["code","http://snomed.info/sct|1"],["category","1"]]`,
			[]sp{{Name: "code", Value: "1", System: "http://snomed.info/sct"}, {Name: "category", Value: "1"}}},
		{"ReferenceIdentifier", `[["owner:identifier","https://ods|Y1"],["patient","Patient/1"]]`,
			[]sp{{Name: "owner:identifier", Value: "Y1", System: "https://ods"}, {Name: "patient", Value: "Patient/1"}}},
		// Written since: a token is one entry, a bare value stays.
		{"Current", `[["identifier","9","https://x"],["identifier","9"]]`,
			[]sp{{Name: "identifier", Value: "9", System: "https://x"}, {Name: "identifier", Value: "9"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := sqlshared.DecodeParams(tt.stored)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeParams(%s) mismatch (-want +got):\n%s", tt.stored, diff)
			}
		})
	}
	if _, err := sqlshared.DecodeParams(`[["a","b","c","d"]]`); err == nil {
		t.Error("DecodeParams of an entry of four strings: no error")
	}
}
