package sqlsharedtest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
)

// TokenUpgradeResource is a resource as a store indexed it before
// migration 023: each token twice, as "system|value" and as "value".
type TokenUpgradeResource struct {
	Type, ID string
	// Params are the (name, value) pairs of its search_param rows and of
	// its resource.params column.
	Params [][2]string
}

// TokenUpgradeResources are the resources of the upgrade tests: a Patient
// with an NHS number, a local identifier without a system and its
// practice's ODS code; another with the same number in another system;
// an Observation whose code and category have the same code, one with a
// system, one without.
var TokenUpgradeResources = []TokenUpgradeResource{
	{"Patient", "P", [][2]string{
		{"identifier", linkbridge.NHSNumberSystem + "|9434765919"}, {"identifier", "9434765919"},
		{"identifier", "|L-1"}, {"identifier", "L-1"},
		{"general-practitioner:identifier", linkbridge.ODSSystem + "|A81001"},
	}},
	{"Patient", "Q", [][2]string{{"identifier", "https://other.example/id|9434765919"}, {"identifier", "9434765919"}}},
	{"Observation", "o1", [][2]string{
		{"code", "http://snomed.info/sct|1"}, {"code", "1"}, {"category", "1"},
		{"patient", "Patient/P"}, {"status", "final"},
	}},
}

// TokenUpgradeRows are the search_param rows migration 023 leaves, as
// "type id name value system", sorted.
var TokenUpgradeRows = []string{
	"Observation o1 category 1 ",
	"Observation o1 code 1 http://snomed.info/sct",
	"Observation o1 patient Patient/P ",
	"Observation o1 status final ",
	"Patient P general-practitioner:identifier A81001 " + linkbridge.ODSSystem,
	"Patient P identifier 9434765919 " + linkbridge.NHSNumberSystem,
	"Patient P identifier L-1 ",
	"Patient Q identifier 9434765919 https://other.example/id",
}

// UpgradedIndex is a store whose index migration 023 rewrote.
type UpgradedIndex interface {
	SearchResources(ctx context.Context, q *linkbridge.ResourceQuery) (*linkbridge.SearchResult, error)
	CurrentResources(ctx context.Context, afterType, afterID string, limit int) ([]*linkbridge.Resource, error)
	ReindexResource(ctx context.Context, r *linkbridge.Resource) (bool, error)
}

// CheckTokenUpgrade checks a store built from TokenUpgradeResources and
// migrated: its search_param rows (type, id, name, value, system, as read
// by rows) are TokenUpgradeRows; each token form
// (search.html#token) finds what it should; the stored params read back as
// the rows; and a new version of Patient P without its local identifier
// deletes that row and leaves the others, on the old params column.
func CheckTokenUpgrade(t *testing.T, store UpgradedIndex, read func() [][5]string) {
	t.Helper()
	ctx := context.Background()
	rows := func() []string {
		var out []string
		for _, r := range read() {
			out = append(out, strings.Join(r[:], " "))
		}
		slices.Sort(out)
		return out
	}
	if got := rows(); !slices.Equal(got, TokenUpgradeRows) {
		t.Errorf("search_param after migration 023:\n%q\nwant\n%q", got, TokenUpgradeRows)
	}
	for _, tc := range []struct {
		typ, name, value string
		want             []string
	}{
		{"Patient", "identifier", linkbridge.NHSNumberSystem + "|9434765919", []string{"P"}},
		{"Patient", "identifier", "9434765919", []string{"P", "Q"}},
		{"Patient", "identifier", "|9434765919", nil},
		{"Patient", "identifier", "|L-1", []string{"P"}},
		{"Patient", "identifier", "L-1", []string{"P"}},
		{"Patient", "identifier", "https://other.example/id|L-1", nil},
		{"Patient", "general-practitioner:identifier", linkbridge.ODSSystem + "|A81001", []string{"P"}},
		{"Observation", "code", "1", []string{"o1"}},
		{"Observation", "code", "http://snomed.info/sct|1", []string{"o1"}},
		{"Observation", "category", "1", []string{"o1"}},
		{"Observation", "category", "http://snomed.info/sct|1", nil},
	} {
		res, err := store.SearchResources(ctx, &linkbridge.ResourceQuery{Type: tc.typ, Count: 10,
			Params: []linkbridge.ParamFilter{{Name: tc.name, Values: []string{tc.value}}}})
		if err != nil {
			t.Fatalf("search %s?%s=%s: %v", tc.typ, tc.name, tc.value, err)
		}
		var ids []string
		for _, r := range res.Resources {
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, tc.want) {
			t.Errorf("after migration 023, %s?%s=%s found %v, want %v", tc.typ, tc.name, tc.value, ids, tc.want)
		}
	}
	current, err := store.CurrentResources(ctx, "Patient", "", 1)
	if err != nil || len(current) != 1 || current[0].ID != "P" {
		t.Fatalf("CurrentResources = %v, %v; want Patient P", current, err)
	}
	p := current[0]
	want := []linkbridge.SearchParam{
		{Name: "identifier", Value: "9434765919", System: linkbridge.NHSNumberSystem},
		{Name: "identifier", Value: "L-1"},
		{Name: "general-practitioner:identifier", Value: "A81001", System: linkbridge.ODSSystem},
	}
	if !slices.Equal(p.Params, want) {
		t.Errorf("Patient P's stored params read back as %+v, want %+v", p.Params, want)
	}
	p.Params = slices.DeleteFunc(slices.Clone(want), func(sp linkbridge.SearchParam) bool { return sp.Value == "L-1" })
	if ok, err := store.ReindexResource(ctx, p); err != nil || !ok {
		t.Fatalf("ReindexResource(Patient P) = %v, %v", ok, err)
	}
	wantRows := slices.DeleteFunc(slices.Clone(TokenUpgradeRows), func(r string) bool { return r == "Patient P identifier L-1 " })
	if got := rows(); !slices.Equal(got, wantRows) {
		t.Errorf("search_param after Patient P lost its local identifier:\n%q\nwant\n%q", got, wantRows)
	}
}
