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
		{"Escaped", []sp{{Name: "identifier", Value: `https://x|"9"`}, {Name: "status", Value: "ready"}},
			`[["identifier","https://x|\"9\""],["status","ready"]]`},
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
