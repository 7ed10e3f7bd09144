package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// boardRowRE matches a board row: the referral, the person's name and the
// practice.
var boardRowRE = regexp.MustCompile(`data-referral="([^"]+)">\s*<td[^>]*><span[^>]*>Person </span><a href="/mdt/people/[^"]+">([^<]*)</a></td>\s*<td[^>]*><span[^>]*>Practice </span>([^<]*)</td>`)

// TestMDTBoardPages: on a seeded store, the board lists everyone in
// pages of 50, each person once; the practice filter, which the store
// applies, lists exactly the people the unfiltered board shows for that
// practice; the group counts add up to everyone; every name is read;
// a page past the end is 404 and a malformed page 400.
func TestMDTBoardPages(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "seed.db")
	end := time.Now().UTC().Truncate(time.Second)
	var out bytes.Buffer
	if err := run(ctx, []string{"bench", "seed", "--referrals", "150", "--practices", "2", "--services", "1",
		"--span", "2400h", "--end", end.Format(time.RFC3339), "--db", path}, noEnv, &out, &out); err != nil {
		t.Fatalf("bench seed: %v\n%s", err, out.String())
	}
	addr, _ := startServeDB(t, path, "--dev")
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	countRE := regexp.MustCompile(`<span class="mdt-count">\((\d+)\)</span>`)
	totalRE := regexp.MustCompile(`of (\d+) \(page (\d+) of (\d+)\)`)
	// pages reads every page of the board at query q: the practice of each
	// person listed, and the total the first page states.
	pages := func(q string) (map[string]string, int) {
		t.Helper()
		seen := map[string]string{}
		total, pagesN := 0, 1
		for page := 1; page <= pagesN; page++ {
			st, body := get("/mdt?" + q + "&page=" + strconv.Itoa(page))
			if st != http.StatusOK {
				t.Fatalf("board %s page %d: HTTP %d", q, page, st)
			}
			if m := totalRE.FindStringSubmatch(body); m != nil {
				total, _ = strconv.Atoi(m[1])
				pagesN, _ = strconv.Atoi(m[3])
				if m[2] != strconv.Itoa(page) {
					t.Errorf("board %s page %d says page %s", q, page, m[2])
				}
			}
			rows := boardRowRE.FindAllStringSubmatch(body, -1)
			if len(rows) > 50 || page < pagesN && len(rows) != 50 {
				t.Errorf("board %s page %d of %d lists %d people, want 50 (fewer on the last)", q, page, pagesN, len(rows))
			}
			sum := 0
			for _, c := range countRE.FindAllStringSubmatch(body, -1) {
				n, _ := strconv.Atoi(c[1])
				sum += n
			}
			if page == 1 {
				if total == 0 {
					total = len(rows)
				}
				if sum != total {
					t.Errorf("board %s: the groups count %d people, the board %d", q, sum, total)
				}
			}
			for _, r := range rows {
				if _, dup := seen[r[1]]; dup {
					t.Errorf("board %s: %s listed twice", q, r[1])
				}
				if r[2] == "Name not recorded" || r[2] == "" {
					t.Errorf("board %s: %s without the seeded person's name", q, r[1])
				}
				seen[r[1]] = r[3]
			}
		}
		if len(seen) != total {
			t.Errorf("board %s: %d people over its pages, the board says %d", q, len(seen), total)
		}
		return seen, total
	}
	all, total := pages("")
	if total <= 100 {
		t.Fatalf("the board lists %d people: want more than two pages' worth to test paging", total)
	}
	practice := "Y90001"
	want := map[string]bool{}
	for id, ods := range all {
		if ods == practice {
			want[id] = true
		}
	}
	got, _ := pages("practice=" + practice)
	t.Logf("%d people on the board, %d of practice %s", total, len(got), practice)
	if len(got) != len(want) || len(want) == 0 {
		t.Errorf("practice %s's board lists %d people, the whole board %d of that practice", practice, len(got), len(want))
	}
	for id, ods := range got {
		if ods != practice || !want[id] {
			t.Errorf("practice %s's board lists %s of %s (on the whole board: %v)", practice, id, ods, want[id])
		}
	}
	if st, _ := get("/mdt?page=99"); st != http.StatusNotFound {
		t.Errorf("page 99 of the board: HTTP %d, want 404", st)
	}
	for _, bad := range []string{"0", "two", "-1"} {
		if st, _ := get("/mdt?page=" + bad); st != http.StatusBadRequest {
			t.Errorf("page=%s: HTTP %d, want 400", bad, st)
		}
	}
}
