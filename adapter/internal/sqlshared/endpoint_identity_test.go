package sqlshared_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

func TestEndpointIdentityArgs(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	at := now.Add(-time.Hour)
	full := linkbridge.EndpointIdentity{Endpoint: "https://gp.example/fhir", ResourceType: "Goal", ResourceID: "g1",
		EndpointID: "77", EndpointVersion: "3", Version: 2, UpdatedAt: at}
	for _, tc := range []struct {
		name string
		edit func(*linkbridge.EndpointIdentity)
		want []any // nil: EINVALID
	}{
		{"Full", func(*linkbridge.EndpointIdentity) {}, []any{"https://gp.example/fhir", "Goal", "g1", "77", "3", 2, at}},
		{"NoEndpointVersion", func(id *linkbridge.EndpointIdentity) { id.EndpointVersion = "" },
			[]any{"https://gp.example/fhir", "Goal", "g1", "77", "", 2, at}},
		{"ZeroUpdatedAtIsNow", func(id *linkbridge.EndpointIdentity) { id.UpdatedAt = time.Time{} },
			[]any{"https://gp.example/fhir", "Goal", "g1", "77", "3", 2, now}},
		{"NoEndpoint", func(id *linkbridge.EndpointIdentity) { id.Endpoint = "" }, nil},
		{"NoResourceType", func(id *linkbridge.EndpointIdentity) { id.ResourceType = "" }, nil},
		{"NoResourceID", func(id *linkbridge.EndpointIdentity) { id.ResourceID = "" }, nil},
		{"NoEndpointID", func(id *linkbridge.EndpointIdentity) { id.EndpointID = "" }, nil},
	} {
		id := full
		tc.edit(&id)
		got, err := sqlshared.EndpointIdentityArgs(id, now, nativeColumns)
		if tc.want == nil {
			if linkbridge.ErrorCode(err) != linkbridge.EINVALID {
				t.Errorf("%s: EndpointIdentityArgs error = %v, want EINVALID", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: EndpointIdentityArgs returned unexpected error: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: EndpointIdentityArgs mismatch (-want +got):\n%s", tc.name, diff)
		}
	}
}
