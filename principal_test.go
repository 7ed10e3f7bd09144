package linkbridge_test

import (
	"slices"
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
