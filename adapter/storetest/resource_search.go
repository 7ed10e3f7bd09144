package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/linkbridge/linkbridge"
)

func testSearchResources(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	ctx := context.Background()
	s := open(t)
	in := newIntake("a", nhsNumbers()())

	const sct = "http://snomed.info/sct|"
	// An Observation without a code ("") has no code value (for
	// MissingFilter).
	obs := func(id string, at time.Duration, code, status string) *linkbridge.Resource {
		params := []linkbridge.SearchParam{param("status", status), param("subject", "Patient/"+in.Person.ID)}
		if code != "" {
			params = append(params, param("code", sct+code))
		}
		return resource("Observation", id, 1, t0.Add(at), fmt.Sprintf(`,"status":%q`, status), params...)
	}
	// o3 and o4 share a lastUpdated: id breaks the tie. They are listed out
	// of order so that insertion order cannot pass for the sort order.
	o1 := obs("o1", 0, "A", "final")
	o2 := obs("o2", time.Second, "B", "final")
	o3 := obs("o3", 2*time.Second, "A", "preliminary")
	o4 := obs("o4", 2*time.Second, "C", "final")
	o5 := obs("o5", 3*time.Second, "", "amended")
	in.Resources = append(in.Resources, o5, o4, o2, o3, o1)
	mustCreate(t, s, in)

	all := []*linkbridge.Resource{o1, o2, o3, o4, o5}
	ids := func(rs []*linkbridge.Resource) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	for _, tc := range []struct {
		name string
		q    linkbridge.ResourceQuery
		want []string
	}{
		{"All", linkbridge.ResourceQuery{}, ids(all)},
		{"Param", linkbridge.ResourceQuery{Params: []linkbridge.ParamFilter{{Name: "code", Values: []string{sct + "A"}}}}, []string{"o1", "o3"}},
		{"ParamAnyValue", linkbridge.ResourceQuery{Params: []linkbridge.ParamFilter{{Name: "code", Values: []string{sct + "A", sct + "C"}}}}, []string{"o1", "o3", "o4"}},
		{"ParamsAll", linkbridge.ResourceQuery{Params: []linkbridge.ParamFilter{
			{Name: "code", Values: []string{sct + "A", sct + "B"}},
			{Name: "status", Values: []string{"final"}},
		}}, []string{"o1", "o2"}},
		{"ParamsNoneMatch", linkbridge.ResourceQuery{Params: []linkbridge.ParamFilter{
			{Name: "code", Values: []string{sct + "C"}},
			{Name: "status", Values: []string{"amended"}},
		}}, nil},
		{"ParamValueOfOtherParam", linkbridge.ResourceQuery{Params: []linkbridge.ParamFilter{{Name: "status", Values: []string{sct + "A"}}}}, nil},
		{"ParamUnknownValue", linkbridge.ResourceQuery{Params: []linkbridge.ParamFilter{{Name: "code", Values: []string{sct + "Z"}}}}, nil},
		{"IDs", linkbridge.ResourceQuery{IDs: []string{"o5", "o2", "missing"}}, []string{"o2", "o5"}},
		{"IDsAndParam", linkbridge.ResourceQuery{IDs: []string{"o1", "o2", "o3"}, Params: []linkbridge.ParamFilter{{Name: "status", Values: []string{"final"}}}}, []string{"o1", "o2"}},
		{"LastUpdatedEq", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{{Prefix: "eq", Time: at(2 * time.Second)}}}, []string{"o3", "o4"}},
		{"LastUpdatedGt", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{{Prefix: "gt", Time: at(2 * time.Second)}}}, []string{"o5"}},
		{"LastUpdatedGe", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{{Prefix: "ge", Time: at(2 * time.Second)}}}, []string{"o3", "o4", "o5"}},
		{"LastUpdatedLt", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{{Prefix: "lt", Time: at(time.Second)}}}, []string{"o1"}},
		{"LastUpdatedLe", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{{Prefix: "le", Time: at(time.Second)}}}, []string{"o1", "o2"}},
		{"LastUpdatedRange", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{
			{Prefix: "ge", Time: at(time.Second)}, {Prefix: "lt", Time: at(3 * time.Second)},
		}}, []string{"o2", "o3", "o4"}},
		{"LastUpdatedOtherZone", linkbridge.ResourceQuery{LastUpdated: []linkbridge.DateFilter{
			{Prefix: "gt", Time: at(2 * time.Second).In(time.FixedZone("BST", 3600))},
		}}, []string{"o5"}},
		{"MissingTrue", linkbridge.ResourceQuery{Missing: []linkbridge.MissingFilter{{Names: []string{"code"}, Missing: true}}}, []string{"o5"}},
		{"MissingFalse", linkbridge.ResourceQuery{Missing: []linkbridge.MissingFilter{{Names: []string{"code"}}}}, []string{"o1", "o2", "o3", "o4"}},
		{"MissingAnyName", linkbridge.ResourceQuery{Missing: []linkbridge.MissingFilter{{Names: []string{"code", "status"}, Missing: true}}}, nil},
		{"MissingNeverIndexed", linkbridge.ResourceQuery{Missing: []linkbridge.MissingFilter{{Names: []string{"performer"}, Missing: true}}}, ids(all)},
		{"MissingAndParam", linkbridge.ResourceQuery{
			Params:  []linkbridge.ParamFilter{{Name: "status", Values: []string{"amended", "preliminary"}}},
			Missing: []linkbridge.MissingFilter{{Names: []string{"code"}}},
		}, []string{"o3"}},
		{"Descending", linkbridge.ResourceQuery{Descending: true}, []string{"o5", "o4", "o3", "o2", "o1"}},
		{"DescendingParam", linkbridge.ResourceQuery{Descending: true, Params: []linkbridge.ParamFilter{{Name: "code", Values: []string{sct + "A", sct + "C"}}}}, []string{"o4", "o3", "o1"}},
		{"DescendingLastUpdated", linkbridge.ResourceQuery{Descending: true, LastUpdated: []linkbridge.DateFilter{{Prefix: "lt", Time: at(3 * time.Second)}}}, []string{"o4", "o3", "o2", "o1"}},
		{"LastUpdatedAndParam", linkbridge.ResourceQuery{
			Params:      []linkbridge.ParamFilter{{Name: "status", Values: []string{"final"}}},
			LastUpdated: []linkbridge.DateFilter{{Prefix: "gt", Time: at(0)}},
		}, []string{"o2", "o4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Type, q.Count = "Observation", 100
			got, err := s.SearchResources(ctx, &q)
			if err != nil {
				t.Fatalf("SearchResources returned unexpected error: %v", err)
			}
			if diff := cmp.Diff(tc.want, ids(got.Resources), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("SearchResources ids mismatch (-want +got):\n%s", diff)
			}
			if got.Total != len(tc.want) {
				t.Fatalf("SearchResources Total = %d, want %d", got.Total, len(tc.want))
			}
		})
	}

	t.Run("OtherType", func(t *testing.T) {
		// Task has a status parameter too, but is not an Observation.
		got, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{
			Type: "Task", Count: 100, Params: []linkbridge.ParamFilter{{Name: "code", Values: []string{sct + "A"}}},
		})
		if err != nil {
			t.Fatalf("SearchResources returned unexpected error: %v", err)
		}
		if len(got.Resources) != 0 || got.Total != 0 {
			t.Fatalf("SearchResources(Task, code=A) = %v (total %d), want none", ids(got.Resources), got.Total)
		}
	})

	t.Run("Resources", func(t *testing.T) {
		got, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Observation", Count: 100})
		if err != nil {
			t.Fatalf("SearchResources returned unexpected error: %v", err)
		}
		want := &linkbridge.SearchResult{Resources: all, Total: len(all), TotalExact: true}
		if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
			t.Fatalf("SearchResources mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("Total", func(t *testing.T) {
		// Five matches. Without AccurateTotal the count stops at
		// CountLimit (one past the larger of the bound and the page's
		// end): a total at the limit is a lower bound.
		for _, tc := range []struct {
			name  string
			q     linkbridge.ResourceQuery
			want  []string
			total int
			exact bool
		}{
			{"UnderBound", linkbridge.ResourceQuery{Count: 2}, []string{"o1", "o2"}, 5, true},
			{"PastBound", linkbridge.ResourceQuery{Count: 1, TotalBound: 2}, []string{"o1"}, 3, false},
			{"AtBound", linkbridge.ResourceQuery{Count: 1, TotalBound: 4}, []string{"o1"}, 5, false},
			{"PastBoundAccurate", linkbridge.ResourceQuery{Count: 1, TotalBound: 2, AccurateTotal: true}, []string{"o1"}, 5, true},
			{"PageEndPastBound", linkbridge.ResourceQuery{Count: 2, Offset: 2, TotalBound: 1}, []string{"o3", "o4"}, 5, false},
			{"LastPage", linkbridge.ResourceQuery{Count: 2, Offset: 4, TotalBound: 1}, []string{"o5"}, 5, true},
			{"PastTheEnd", linkbridge.ResourceQuery{Count: 2, Offset: 10, TotalBound: 1}, nil, 5, true},
			{"NoMatch", linkbridge.ResourceQuery{Count: 1, TotalBound: 1, IDs: []string{"missing"}}, nil, 0, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				q := tc.q
				q.Type = "Observation"
				got, err := s.SearchResources(ctx, &q)
				if err != nil {
					t.Fatalf("SearchResources returned unexpected error: %v", err)
				}
				if diff := cmp.Diff(tc.want, ids(got.Resources), cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("SearchResources ids mismatch (-want +got):\n%s", diff)
				}
				if got.Total != tc.total || got.TotalExact != tc.exact {
					t.Fatalf("SearchResources Total = %d (exact %t), want %d (exact %t)", got.Total, got.TotalExact, tc.total, tc.exact)
				}
				matches := len(all)
				if len(q.IDs) > 0 {
					matches = 0
				}
				if more := q.Offset+q.Count < got.Total; more != (q.Offset+q.Count < matches) {
					t.Fatalf("Offset+Count < Total = %t, want %t (another page)", more, !more)
				}
			})
		}
	})

	t.Run("Paging", func(t *testing.T) {
		for _, tc := range []struct {
			offset int
			want   []string
		}{
			{0, []string{"o1", "o2"}},
			{2, []string{"o3", "o4"}},
			{4, []string{"o5"}},
			{6, nil},
		} {
			got, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Observation", Count: 2, Offset: tc.offset})
			if err != nil {
				t.Fatalf("SearchResources(offset %d) returned unexpected error: %v", tc.offset, err)
			}
			if diff := cmp.Diff(tc.want, ids(got.Resources), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("SearchResources(offset %d) ids mismatch (-want +got):\n%s", tc.offset, diff)
			}
			if got.Total != len(all) {
				t.Fatalf("SearchResources(offset %d) Total = %d, want %d", tc.offset, got.Total, len(all))
			}
		}
	})

	t.Run("PagingDescending", func(t *testing.T) {
		for _, tc := range []struct {
			offset int
			want   []string
		}{
			{0, []string{"o5", "o4"}},
			{2, []string{"o3", "o2"}},
			{4, []string{"o1"}},
		} {
			got, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Observation", Count: 2, Offset: tc.offset, Descending: true})
			if err != nil {
				t.Fatalf("SearchResources(offset %d, descending) returned unexpected error: %v", tc.offset, err)
			}
			if diff := cmp.Diff(tc.want, ids(got.Resources), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("SearchResources(offset %d, descending) ids mismatch (-want +got):\n%s", tc.offset, diff)
			}
			if got.Total != len(all) {
				t.Fatalf("SearchResources(offset %d, descending) Total = %d, want %d", tc.offset, got.Total, len(all))
			}
		}
	})

	t.Run("CurrentVersionOnly", func(t *testing.T) {
		s := open(t)
		in := newIntake("b", nhsNumbers()())
		mustCreate(t, s, in)
		t1 := t0.Add(time.Hour)
		ref := nextVersion(in.Referral, t1, func(r *linkbridge.Referral) { r.Status = linkbridge.TaskAccepted })
		task := taskResource(ref, 2, t1)
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref, Resources: []*linkbridge.Resource{task}})

		search := func(status string) []*linkbridge.Resource {
			t.Helper()
			got, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{
				Type: "Task", Count: 10, Params: []linkbridge.ParamFilter{{Name: "status", Values: []string{status}}},
			})
			if err != nil {
				t.Fatalf("SearchResources(status=%s) returned unexpected error: %v", status, err)
			}
			return got.Resources
		}
		if got := search("requested"); len(got) != 0 {
			t.Fatalf("SearchResources(status=requested) found %v: the old version's params were kept", ids(got))
		}
		if diff := cmp.Diff([]*linkbridge.Resource{task}, search("accepted"), cmpOpts...); diff != "" {
			t.Fatalf("SearchResources(status=accepted) mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("ParamsOfEachVersion", func(t *testing.T) {
		// Each version's values replace the last's: kept, dropped (even one
		// listed twice), added, and dropped then added back.
		s := open(t)
		in := newIntake("c", nhsNumbers()())
		code := func(c string) linkbridge.SearchParam { return param("code", sct+c) }
		obs := func(v int, ps ...linkbridge.SearchParam) *linkbridge.Resource {
			return resource("Observation", "obs-c", v, t0.Add(time.Duration(v)*time.Hour), "", ps...)
		}
		in.Resources = append(in.Resources, obs(1, code("A"), code("B"), code("B"), param("status", "final")))
		mustCreate(t, s, in)

		ref := in.Referral
		for v, tc := range []struct {
			params     []linkbridge.SearchParam
			want, gone []linkbridge.SearchParam
		}{
			{[]linkbridge.SearchParam{code("A"), code("C"), param("status", "final")}, []linkbridge.SearchParam{code("A"), code("C"), param("status", "final")}, []linkbridge.SearchParam{code("B")}},
			{[]linkbridge.SearchParam{code("B"), code("B")}, []linkbridge.SearchParam{code("B")}, []linkbridge.SearchParam{code("A"), code("C"), param("status", "final")}},
			{nil, nil, []linkbridge.SearchParam{code("B")}},
			{[]linkbridge.SearchParam{code("A")}, []linkbridge.SearchParam{code("A")}, []linkbridge.SearchParam{code("B")}},
		} {
			ref = nextVersion(ref, t0.Add(time.Duration(v+2)*time.Hour), nil)
			o := obs(v+2, tc.params...)
			mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref, Resources: []*linkbridge.Resource{o}})
			for _, p := range append(tc.want, tc.gone...) {
				got, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{
					Type: "Observation", Count: 10, Params: []linkbridge.ParamFilter{{Name: p.Name, Values: []string{p.Value}}},
				})
				if err != nil {
					t.Fatalf("SearchResources(%s=%s) returned unexpected error: %v", p.Name, p.Value, err)
				}
				want := 0
				if slices.Contains(tc.want, p) {
					want = 1
				}
				if got.Total != want {
					t.Fatalf("version %d: SearchResources(%s=%s) Total = %d, want %d", v+2, p.Name, p.Value, got.Total, want)
				}
			}
		}
	})
}

// testSearchEscapes: a token whose value holds "|", "," or "\\" is found by
// its value escaped as FHIR escapes it (search.html#escaping), with or
// without its system, and not by the unescaped form (read as another
// system, or as two values).
func testSearchEscapes(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	ctx := context.Background()
	s := open(t)
	in := newIntake("esc", nhsNumbers()())
	const sys = "https://example.org/refs"
	in.Resources = append(in.Resources,
		resource("Observation", "e1", 1, t0, `,"status":"final"`, linkbridge.SearchParam{Name: "identifier", Value: `REF|7,8\x`, System: sys}),
		resource("Observation", "e2", 1, t0, `,"status":"final"`, linkbridge.SearchParam{Name: "identifier", Value: "REF", System: sys}),
		resource("Observation", "e3", 1, t0, `,"status":"final"`, linkbridge.SearchParam{Name: "identifier", Value: "7", System: "REF"}))
	mustCreate(t, s, in)
	for _, tc := range []struct {
		values []string
		want   []string
	}{
		{[]string{`REF\|7\,8\\x`}, []string{"e1"}},
		{[]string{sys + `|REF\|7\,8\\x`}, []string{"e1"}},
		{[]string{`|REF\|7\,8\\x`}, nil},
		{[]string{`REF|7`}, []string{"e3"}},
		{[]string{`REF\|7`}, nil},
		{[]string{`REF`, `REF\|7\,8\\x`}, []string{"e1", "e2"}},
	} {
		got, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Observation", Count: 10,
			Params: []linkbridge.ParamFilter{{Name: "identifier", Values: tc.values}}})
		if err != nil {
			t.Fatalf("identifier=%q: %v", tc.values, err)
		}
		var ids []string
		for _, r := range got.Resources {
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, tc.want) {
			t.Errorf("identifier=%q: found %q, want %q", tc.values, ids, tc.want)
		}
	}
}

// concurrency is how many goroutines the concurrent tests run.
const concurrency = 32
