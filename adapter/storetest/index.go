package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/linkbridge/linkbridge"
)

// IndexStore is a store whose search index can be rebuilt.
type IndexStore interface {
	linkbridge.Store
	linkbridge.IndexStore
}

// RunIndexStore checks the IndexStore contract: the index version
// round-trips (empty before it is set); CurrentResources pages every
// current version in (type, id) order with its stored Params; and
// ReindexResource replaces what searches find for a resource at the given
// version and changes nothing for a resource at another version or none.
// open must return a new, empty store and close it when the test ends.
func RunIndexStore(t *testing.T, open func(t *testing.T) IndexStore) {
	t.Run("Version", func(t *testing.T) { t.Parallel(); testIndexVersion(t, open) })
	t.Run("CurrentResources", func(t *testing.T) { t.Parallel(); testCurrentResources(t, open) })
	t.Run("Reindex", func(t *testing.T) { t.Parallel(); testReindexResource(t, open) })
}

func testIndexVersion(t *testing.T, open func(t *testing.T) IndexStore) {
	s, ctx := open(t), context.Background()
	if v, err := s.SearchIndexVersion(ctx); err != nil || v != "" {
		t.Fatalf("SearchIndexVersion() of a new store = %q, %v; want \"\", nil", v, err)
	}
	for _, want := range []string{"v1", "v2"} {
		if err := s.SetSearchIndexVersion(ctx, want); err != nil {
			t.Fatalf("SetSearchIndexVersion(%q): %v", want, err)
		}
		if v, err := s.SearchIndexVersion(ctx); err != nil || v != want {
			t.Fatalf("SearchIndexVersion() = %q, %v; want %q", v, err, want)
		}
	}
}

func testCurrentResources(t *testing.T, open func(t *testing.T) IndexStore) {
	s, ctx := open(t), context.Background()
	nhs := nhsNumbers()
	var want []string
	for i := range 4 {
		in := newIntake(fmt.Sprintf("c%d", i), nhs())
		mustCreate(t, s, in)
		for _, r := range in.Resources {
			want = append(want, r.Type+"/"+r.ID)
		}
	}
	// A second version of one Task: CurrentResources returns version 2.
	in := newIntake("c9", nhs())
	mustCreate(t, s, in)
	for _, r := range in.Resources {
		want = append(want, r.Type+"/"+r.ID)
	}
	r2 := nextVersion(in.Referral, t0.Add(1), func(r *linkbridge.Referral) { r.Status = linkbridge.TaskAccepted })
	mustUpdate(t, s, &linkbridge.ReferralChange{Referral: r2, Resources: []*linkbridge.Resource{taskResource(r2, 2, t0.Add(1))}})
	slices.SortFunc(want, func(a, b string) int { return compareKey(a, b) })

	var got []string
	var afterType, afterID string
	for pages := 0; ; pages++ {
		if pages > len(want) {
			t.Fatal("CurrentResources does not end")
		}
		page, err := s.CurrentResources(ctx, afterType, afterID, 4)
		if err != nil {
			t.Fatalf("CurrentResources: %v", err)
		}
		for _, r := range page {
			got = append(got, r.Type+"/"+r.ID)
			if r.Type == "Task" && r.ID == r2.TaskID {
				if r.VersionID != 2 || len(r.Params) == 0 || !slices.Contains(r.Params, param("status", "accepted")) {
					t.Errorf("CurrentResources gave %s at version %d params %v; want version 2 with its params", r.Reference(), r.VersionID, r.Params)
				}
			}
			if len(r.Body) == 0 {
				t.Errorf("CurrentResources gave %s without its body", r.Reference())
			}
		}
		if len(page) < 4 {
			break
		}
		afterType, afterID = page[len(page)-1].Type, page[len(page)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("CurrentResources paged\n%v\nwant\n%v", got, want)
	}
}

// compareKey orders "Type/id" keys by type, then id, as bytes.
func compareKey(a, b string) int {
	ta, ia, _ := cutRef(a)
	tb, ib, _ := cutRef(b)
	if ta != tb {
		if ta < tb {
			return -1
		}
		return 1
	}
	switch {
	case ia < ib:
		return -1
	case ia > ib:
		return 1
	}
	return 0
}

func cutRef(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func testReindexResource(t *testing.T, open func(t *testing.T) IndexStore) {
	s, ctx := open(t), context.Background()
	in := newIntake("ri", nhsNumbers()())
	mustCreate(t, s, in)
	task := in.Resources[2]
	find := func(name, value string) []string {
		t.Helper()
		res, err := s.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Task", Count: 10,
			Params: []linkbridge.ParamFilter{{Name: name, Values: []string{value}}}})
		if err != nil {
			t.Fatalf("SearchResources(%s=%s): %v", name, value, err)
		}
		return ids(res)
	}
	if got := find("status", "requested"); !slices.Equal(got, []string{task.ID}) {
		t.Fatalf("before: status=requested found %v", got)
	}

	// A new table indexes a code the old one did not, and drops status.
	re := *task
	re.Params = []linkbridge.SearchParam{param("focus", "ServiceRequest/"+in.Referral.ID), param("code", "fulfill"), param("code", "fulfill")}
	if ok, err := s.ReindexResource(ctx, &re); err != nil || !ok {
		t.Fatalf("ReindexResource(current version) = %v, %v; want true, nil", ok, err)
	}
	if got := find("code", "fulfill"); !slices.Equal(got, []string{task.ID}) {
		t.Errorf("after: code=fulfill found %v, want the Task", got)
	}
	if got := find("status", "requested"); len(got) != 0 {
		t.Errorf("after: status=requested (no longer indexed) found %v", got)
	}
	if got := find("focus", "ServiceRequest/"+in.Referral.ID); !slices.Equal(got, []string{task.ID}) {
		t.Errorf("after: focus (kept) found %v", got)
	}
	page, err := s.CurrentResources(ctx, "Task", "", 1)
	if err != nil || len(page) != 1 || !slices.Contains(page[0].Params, param("code", "fulfill")) || slices.Contains(page[0].Params, param("status", "requested")) {
		t.Errorf("stored Params after reindex = %v, %v", page, err)
	}

	// At another version, or absent: nothing changes.
	stale := re
	stale.VersionID = 7
	stale.Params = []linkbridge.SearchParam{param("status", "bogus")}
	if ok, err := s.ReindexResource(ctx, &stale); err != nil || ok {
		t.Errorf("ReindexResource(wrong version) = %v, %v; want false, nil", ok, err)
	}
	if got := find("status", "bogus"); len(got) != 0 {
		t.Errorf("a refused reindex indexed its values: %v", got)
	}
	gone := stale
	gone.ID, gone.VersionID = "no-such-task", 1
	if ok, err := s.ReindexResource(ctx, &gone); err != nil || ok {
		t.Errorf("ReindexResource(absent) = %v, %v; want false, nil", ok, err)
	}
}
