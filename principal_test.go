package linkbridge_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
)

func TestHasScope(t *testing.T) {
	tests := []struct {
		scopes []string
		typ    string
		op     string
		want   bool
	}{
		{[]string{"system/Task.read"}, "Task", linkbridge.ScopeRead, true},
		{[]string{"system/Task.read"}, "Task", linkbridge.ScopeWrite, false},
		{[]string{"system/Task.read"}, "Patient", linkbridge.ScopeRead, false},
		{[]string{"system/*.read"}, "Patient", linkbridge.ScopeRead, true},
		{[]string{"system/*.*"}, "Patient", linkbridge.ScopeWrite, true},
		{[]string{"system/Task.*"}, "Task", linkbridge.ScopeWrite, true},
		{[]string{"user/Task.read"}, "Task", linkbridge.ScopeRead, false},
		{[]string{"patient/*.read"}, "Task", linkbridge.ScopeRead, false},
		{[]string{"system/Task.rs"}, "Task", linkbridge.ScopeRead, true},
		{[]string{"system/Task.r"}, "Task", linkbridge.ScopeRead, false},
		{[]string{"system/Task.cu"}, "Task", linkbridge.ScopeWrite, true},
		{[]string{"system/Task.rs"}, "Task", linkbridge.ScopeWrite, false},
		{[]string{"Task.read", "system"}, "Task", linkbridge.ScopeRead, false},
		{nil, "Task", linkbridge.ScopeRead, false},
	}
	for _, tt := range tests {
		p := &linkbridge.Principal{Scopes: tt.scopes}
		if got := p.HasScope(tt.typ, tt.op); got != tt.want {
			t.Errorf("%v HasScope(%s, %s) = %v, want %v", tt.scopes, tt.typ, tt.op, got, tt.want)
		}
	}
}

// TestScopeGrants parses scope strings strictly: only v1 read/write/* and
// v2 ordered subsequences of "cruds" grant anything, and a v2 scope with a
// query restriction grants nothing (the gateway does not enforce it).
func TestScopeGrants(t *testing.T) {
	tests := []struct {
		scope       string
		typ         string
		read, write bool
	}{
		{"system/Task.read", "Task", true, false},
		{"system/Task.write", "Task", false, true},
		{"system/Task.*", "Task", true, true},
		{"system/*.read", "*", true, false},
		{"system/*.*", "*", true, true},
		{"system/Task.rs", "Task", true, false},
		{"system/*.cruds", "*", true, true},
		{"system/Task.cu", "Task", false, true},
		{"system/Task.cud", "Task", false, true},
		{"system/Task.crus", "Task", true, true},
		// Narrower v2 scopes than an operation needs grant it not.
		{"system/Task.r", "Task", false, false},
		{"system/Task.s", "Task", false, false},
		{"system/Task.c", "Task", false, false},
		{"system/Task.u", "Task", false, false},
		{"system/Task.d", "Task", false, false},
		// Unknown permission strings grant nothing.
		{"system/Task.search", "", false, false},
		{"system/Task.rsc", "", false, false},
		{"system/Task.sr", "", false, false},
		{"system/Task.rr", "", false, false},
		{"system/Task.rw", "", false, false},
		{"system/Task.cruds ", "", false, false},
		{"system/Task.READ", "", false, false},
		{"system/Task.", "", false, false},
		{"system/Task.x", "", false, false},
		{"system/Task.update", "", false, false},
		{"system/Task.create", "", false, false},
		// Query-restricted v2 scopes are not enforced, so refused.
		{"system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", "", false, false},
		{"system/Task.cruds?status=ready", "", false, false},
		{"system/*.rs?_tag=x", "", false, false},
		// Other contexts and malformed scopes.
		{"patient/*.read", "", false, false},
		{"user/Task.cruds", "", false, false},
		{"system/Task", "", false, false},
		{"system/.read", "", false, false},
		{"system/task.read", "", false, false},
		{"system/Task.Sub.read", "", false, false},
		{"system/Ta-sk.read", "", false, false},
		{"system/**.read", "", false, false},
		{"launch/patient", "", false, false},
		{"", "", false, false},
	}
	for _, tt := range tests {
		typ, read, write := linkbridge.ScopeGrants(tt.scope)
		if typ != tt.typ || read != tt.read || write != tt.write {
			t.Errorf("ScopeGrants(%q) = %q, read %v, write %v; want %q, %v, %v", tt.scope, typ, read, write, tt.typ, tt.read, tt.write)
		}
		// HasScope agrees on a concrete type.
		p := &linkbridge.Principal{Scopes: []string{tt.scope}}
		rt := tt.typ
		if rt == "" || rt == "*" {
			rt = "Task"
		}
		if got := p.HasScope(rt, linkbridge.ScopeRead); got != tt.read {
			t.Errorf("%q HasScope(%s, read) = %v, want %v", tt.scope, rt, got, tt.read)
		}
		if got := p.HasScope(rt, linkbridge.ScopeWrite); got != tt.write {
			t.Errorf("%q HasScope(%s, write) = %v, want %v", tt.scope, rt, got, tt.write)
		}
	}
}

func TestPrincipalReferralAccess(t *testing.T) {
	rf := &linkbridge.Referral{ReferrerODS: "A81001", ServiceODS: "Y02662"}
	tests := []struct {
		name         string
		p            linkbridge.Principal
		read, change bool
		keys         []string
	}{
		{"GPOwn", linkbridge.Principal{Role: linkbridge.RoleGP, ODS: "A81001"}, true, true, []string{"referrer|A81001"}},
		{"GPOther", linkbridge.Principal{Role: linkbridge.RoleGP, ODS: "B82002"}, false, false, []string{"referrer|B82002"}},
		{"GPWithServiceCode", linkbridge.Principal{Role: linkbridge.RoleGP, ODS: "Y02662"}, false, false, []string{"referrer|Y02662"}},
		{"ServiceOwn", linkbridge.Principal{Role: linkbridge.RoleService, ODS: "Y02662"}, true, true, []string{"service|Y02662"}},
		{"ServiceOther", linkbridge.Principal{Role: linkbridge.RoleService, ODS: "Y09999"}, false, false, []string{"service|Y09999"}},
		{"MDTOwnPractice", linkbridge.Principal{Role: linkbridge.RoleMDT, ODS: "U1", Practices: []string{"A81002", "A81001"}}, true, false, []string{"referrer|A81002", "referrer|A81001"}},
		{"MDTOther", linkbridge.Principal{Role: linkbridge.RoleMDT, ODS: "A81001", Practices: []string{"B82002"}}, false, false, []string{"referrer|B82002"}},
		{"Admin", linkbridge.Principal{Role: linkbridge.RoleAdmin, ODS: "A81001"}, false, false, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.CanRead(rf); got != tt.read {
				t.Errorf("CanRead = %v, want %v", got, tt.read)
			}
			if got := tt.p.CanChange(rf); got != tt.change {
				t.Errorf("CanChange = %v, want %v", got, tt.change)
			}
			if got := tt.p.Access().Keys; !slices.Equal(got, tt.keys) {
				t.Errorf("Access = %v, want %v", got, tt.keys)
			}
		})
	}
}

// scopePerm is the SMART permission grammar, v1 or v2 without a query.
var scopePerm = regexp.MustCompile(`^(read|write|\*|c?r?u?d?s?)$`)

// FuzzScopeGrants checks that no scope string outside the grammar grants
// anything.
func FuzzScopeGrants(f *testing.F) {
	for _, s := range []string{"system/Task.read", "system/*.cruds", "system/Task.rs?x=1", "system/Task.search", "user/*.*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		typ, read, write := linkbridge.ScopeGrants(s)
		if !read && !write {
			return
		}
		perm, ok := strings.CutPrefix(s, "system/"+typ+".")
		if !ok || typ == "" || !scopePerm.MatchString(perm) {
			t.Fatalf("ScopeGrants(%q) = %q, read %v, write %v", s, typ, read, write)
		}
	})
}
