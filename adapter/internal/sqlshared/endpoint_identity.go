package sqlshared

import (
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
)

// EndpointIdentityColumns are the endpoint_identity table's columns in the
// order of EndpointIdentityArgs and of the adapters' scanEndpointIdentity.
const EndpointIdentityColumns = `endpoint, resource_type, resource_id, endpoint_id, endpoint_version, version, updated_at`

// EndpointIdentityChunk bounds the keys of one EndpointIdentities query
// (twice as many bound values on SQLite, well below its limit): longer
// lists are read in chunks, one query each.
const EndpointIdentityChunk = 500

// EndpointIdentityArgs checks id (EINVALID when its Endpoint, ResourceType,
// ResourceID or EndpointID is empty) and converts it to column values in
// the order of EndpointIdentityColumns. A zero UpdatedAt is recorded as
// now.
func EndpointIdentityArgs(id linkbridge.EndpointIdentity, now time.Time, c Columns) ([]any, error) {
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"Endpoint", id.Endpoint}, {"ResourceType", id.ResourceType}, {"ResourceID", id.ResourceID},
		{"EndpointID", id.EndpointID},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "endpoint identity needs %s", strings.Join(missing, ", "))
	}
	at := id.UpdatedAt
	if at.IsZero() {
		at = now
	}
	return []any{id.Endpoint, id.ResourceType, id.ResourceID, id.EndpointID, id.EndpointVersion, id.Version, c.Time(at)}, nil
}
