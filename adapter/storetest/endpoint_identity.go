package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

// RunEndpointIdentityStore checks the EndpointIdentityStore contract: a
// record round-trips per endpoint and resource, a record of a later Version
// is never replaced by an earlier one (also when relays record at once),
// Forget removes one record, keys without a record are absent, and a record
// without Endpoint, ResourceType, ResourceID or EndpointID is EINVALID.
// open must return a new, empty store and close it when the test ends.
// Subtests run in parallel, each on its own store.
func RunEndpointIdentityStore(t *testing.T, open func(t *testing.T) linkbridge.EndpointIdentityStore) {
	t.Run("RoundTrip", func(t *testing.T) { t.Parallel(); testEndpointIdentityRoundTrip(t, open) })
	t.Run("PerEndpoint", func(t *testing.T) { t.Parallel(); testEndpointIdentityPerEndpoint(t, open) })
	t.Run("LaterVersionKept", func(t *testing.T) { t.Parallel(); testEndpointIdentityVersions(t, open) })
	t.Run("ConcurrentRecords", func(t *testing.T) { t.Parallel(); testEndpointIdentityConcurrent(t, open) })
	t.Run("Forget", func(t *testing.T) { t.Parallel(); testEndpointIdentityForget(t, open) })
	t.Run("ManyKeys", func(t *testing.T) { t.Parallel(); testEndpointIdentityManyKeys(t, open) })
	t.Run("ErrInvalid", func(t *testing.T) { t.Parallel(); testEndpointIdentityInvalid(t, open) })
}

// The suite's endpoints.
const (
	epA = "https://gp-a.example.nhs.uk/fhir/R4"
	epB = "https://gp-b.example.nhs.uk/fhir/R4"
)

// endpointIdentity builds the identity of typ/id on endpoint: the endpoint
// id "<endpoint id>", its version "<version>" of linkbridge's version,
// recorded at t0 plus version minutes.
func endpointIdentity(endpoint, typ, id, endpointID string, version int) linkbridge.EndpointIdentity {
	return linkbridge.EndpointIdentity{Endpoint: endpoint, ResourceType: typ, ResourceID: id, EndpointID: endpointID,
		EndpointVersion: strconv.Itoa(version), Version: version, UpdatedAt: t0.Add(time.Duration(version) * time.Minute)}
}

// keyOf returns the resource key of an identity.
func keyOf(id linkbridge.EndpointIdentity) linkbridge.ResourceKey {
	return linkbridge.ResourceKey{Type: id.ResourceType, ID: id.ResourceID}
}

// mustRecord records identities. Fatal on error.
func mustRecord(t *testing.T, s linkbridge.EndpointIdentityStore, ids ...linkbridge.EndpointIdentity) {
	t.Helper()
	for _, id := range ids {
		if err := s.RecordEndpointIdentity(context.Background(), id); err != nil {
			t.Fatalf("RecordEndpointIdentity(%s %s/%s v%d) returned unexpected error: %v",
				id.Endpoint, id.ResourceType, id.ResourceID, id.Version, err)
		}
	}
}

// checkIdentities fails unless reading keys on endpoint returns exactly
// want (keyed by their resource).
func checkIdentities(t *testing.T, s linkbridge.EndpointIdentityStore, endpoint string, keys []linkbridge.ResourceKey, want ...linkbridge.EndpointIdentity) {
	t.Helper()
	got, err := s.EndpointIdentities(context.Background(), endpoint, keys)
	if err != nil {
		t.Fatalf("EndpointIdentities(%s, %d keys) returned unexpected error: %v", endpoint, len(keys), err)
	}
	wantMap := make(map[linkbridge.ResourceKey]linkbridge.EndpointIdentity, len(want))
	for _, id := range want {
		wantMap[keyOf(id)] = id
	}
	if diff := cmp.Diff(wantMap, got, cmpOpts...); diff != "" {
		t.Fatalf("EndpointIdentities(%s, %d keys) mismatch (-want +got):\n%s", endpoint, len(keys), diff)
	}
}

func testEndpointIdentityRoundTrip(t *testing.T, open func(t *testing.T) linkbridge.EndpointIdentityStore) {
	ctx := context.Background()
	s := open(t)
	goal := endpointIdentity(epA, "Goal", "goal-a", "9001", 1)
	plan := endpointIdentity(epA, "CarePlan", "cp-a", "9002", 3)
	plan.EndpointVersion = "" // the endpoint did not say
	mustRecord(t, s, goal, plan)

	missing := linkbridge.ResourceKey{Type: "Goal", ID: "goal-missing"}
	// Same id, other type: a key is type and id.
	otherType := linkbridge.ResourceKey{Type: "CarePlan", ID: "goal-a"}
	checkIdentities(t, s, epA, []linkbridge.ResourceKey{keyOf(goal), missing, keyOf(plan), otherType}, goal, plan)
	checkIdentities(t, s, epA, []linkbridge.ResourceKey{keyOf(plan)}, plan)
	checkIdentities(t, s, epA, []linkbridge.ResourceKey{missing, otherType})
	// A key asked for twice is read once.
	checkIdentities(t, s, epA, []linkbridge.ResourceKey{keyOf(goal), keyOf(goal)}, goal)

	t.Run("NoKeys", func(t *testing.T) {
		for _, keys := range [][]linkbridge.ResourceKey{nil, {}} {
			got, err := s.EndpointIdentities(ctx, epA, keys)
			if err != nil || len(got) != 0 {
				t.Fatalf("EndpointIdentities(%v) = %v, %v; want none", keys, got, err)
			}
		}
	})
	t.Run("ZeroUpdatedAtIsNow", func(t *testing.T) {
		id := endpointIdentity(epA, "Goal", "goal-now", "9003", 1)
		id.UpdatedAt = time.Time{}
		before := time.Now().Add(-time.Minute)
		mustRecord(t, s, id)
		got, err := s.EndpointIdentities(ctx, epA, []linkbridge.ResourceKey{keyOf(id)})
		if err != nil {
			t.Fatalf("EndpointIdentities returned unexpected error: %v", err)
		}
		if at := got[keyOf(id)].UpdatedAt; at.Before(before) {
			t.Fatalf("UpdatedAt of a record without one = %v, want the store's clock (after %v)", at, before)
		}
	})
}

func testEndpointIdentityPerEndpoint(t *testing.T, open func(t *testing.T) linkbridge.EndpointIdentityStore) {
	s := open(t)
	onA := endpointIdentity(epA, "Goal", "goal-a", "9001", 2)
	onB := endpointIdentity(epB, "Goal", "goal-a", "b-17", 1)
	mustRecord(t, s, onA, onB)
	keys := []linkbridge.ResourceKey{keyOf(onA)}
	checkIdentities(t, s, epA, keys, onA)
	checkIdentities(t, s, epB, keys, onB)
	checkIdentities(t, s, "https://gp-c.example.nhs.uk/fhir/R4", keys)
	// Replacing one endpoint's record leaves the other's.
	onA2 := endpointIdentity(epA, "Goal", "goal-a", "9001", 3)
	mustRecord(t, s, onA2)
	checkIdentities(t, s, epA, keys, onA2)
	checkIdentities(t, s, epB, keys, onB)
}

func testEndpointIdentityVersions(t *testing.T, open func(t *testing.T) linkbridge.EndpointIdentityStore) {
	s := open(t)
	v2 := endpointIdentity(epA, "Goal", "goal-a", "9001", 2)
	mustRecord(t, s, v2)
	keys := []linkbridge.ResourceKey{keyOf(v2)}

	// Each step records one identity, then reads what is held; the steps
	// build on one another.
	stored := v2
	for _, tc := range []struct {
		name string
		rec  linkbridge.EndpointIdentity
		kept bool // the record before it stays
	}{
		{"OlderIgnored", endpointIdentity(epA, "Goal", "goal-a", "9000", 1), true},
		{"EqualReplaces", func() linkbridge.EndpointIdentity {
			id := endpointIdentity(epA, "Goal", "goal-a", "9001", 2)
			id.EndpointVersion, id.UpdatedAt = "2b", id.UpdatedAt.Add(time.Second)
			return id
		}(), false},
		{"NewerReplaces", endpointIdentity(epA, "Goal", "goal-a", "9005", 4), false},
		{"LateAnswerIgnored", endpointIdentity(epA, "Goal", "goal-a", "9004", 3), true},
		{"NewerAgain", endpointIdentity(epA, "Goal", "goal-a", "9005", 5), false},
	} {
		mustRecord(t, s, tc.rec)
		if !tc.kept {
			stored = tc.rec
		}
		t.Run(tc.name, func(t *testing.T) { checkIdentities(t, s, epA, keys, stored) })
	}
}

// testEndpointIdentityConcurrent records versions of one resource from many
// goroutines at once, in a shuffled order: the latest version is held.
func testEndpointIdentityConcurrent(t *testing.T, open func(t *testing.T) linkbridge.EndpointIdentityStore) {
	s := open(t)
	const n = 24
	versions := rand.Perm(n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, v := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := endpointIdentity(epA, "Goal", "goal-a", fmt.Sprintf("id-%d", v+1), v+1)
			errs <- s.RecordEndpointIdentity(context.Background(), id)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("RecordEndpointIdentity returned unexpected error: %v", err)
		}
	}
	last := endpointIdentity(epA, "Goal", "goal-a", fmt.Sprintf("id-%d", n), n)
	checkIdentities(t, s, epA, []linkbridge.ResourceKey{keyOf(last)}, last)
}

func testEndpointIdentityForget(t *testing.T, open func(t *testing.T) linkbridge.EndpointIdentityStore) {
	ctx := context.Background()
	s := open(t)
	g1, g2 := endpointIdentity(epA, "Goal", "goal-1", "9001", 1), endpointIdentity(epA, "Goal", "goal-2", "9002", 1)
	g1B := endpointIdentity(epB, "Goal", "goal-1", "b-1", 1)
	mustRecord(t, s, g1, g2, g1B)
	keys := []linkbridge.ResourceKey{keyOf(g1), keyOf(g2)}

	if err := s.ForgetEndpointIdentity(ctx, epA, keyOf(g1)); err != nil {
		t.Fatalf("ForgetEndpointIdentity returned unexpected error: %v", err)
	}
	checkIdentities(t, s, epA, keys, g2)
	checkIdentities(t, s, epB, keys, g1B)

	// Forgetting what is not held is no error, and changes nothing.
	for _, tc := range []struct {
		name     string
		endpoint string
		key      linkbridge.ResourceKey
	}{
		{"Again", epA, keyOf(g1)},
		{"UnknownKey", epA, linkbridge.ResourceKey{Type: "Goal", ID: "goal-missing"}},
		{"UnknownEndpoint", "https://gp-c.example.nhs.uk/fhir/R4", keyOf(g2)},
	} {
		if err := s.ForgetEndpointIdentity(ctx, tc.endpoint, tc.key); err != nil {
			t.Fatalf("%s: ForgetEndpointIdentity returned unexpected error: %v", tc.name, err)
		}
	}
	checkIdentities(t, s, epA, keys, g2)
	checkIdentities(t, s, epB, keys, g1B)

	// A forgotten resource may be recorded again, at any version.
	g1Again := endpointIdentity(epA, "Goal", "goal-1", "9010", 1)
	mustRecord(t, s, g1Again)
	checkIdentities(t, s, epA, keys, g1Again, g2)
}

// testEndpointIdentityManyKeys reads more keys than fit one query of a
// store that bounds them: records in different chunks are all found.
func testEndpointIdentityManyKeys(t *testing.T, open func(t *testing.T) linkbridge.EndpointIdentityStore) {
	s := open(t)
	keys := make([]linkbridge.ResourceKey, 1201)
	for i := range keys {
		keys[i] = linkbridge.ResourceKey{Type: "Goal", ID: "goal-" + strconv.Itoa(i)}
	}
	var want []linkbridge.EndpointIdentity
	for _, i := range []int{0, 499, 500, 777, 1200} {
		id := endpointIdentity(epA, "Goal", keys[i].ID, "e-"+strconv.Itoa(i), 1)
		want = append(want, id)
	}
	mustRecord(t, s, want...)
	checkIdentities(t, s, epA, keys, want...)
}

func testEndpointIdentityInvalid(t *testing.T, open func(t *testing.T) linkbridge.EndpointIdentityStore) {
	s := open(t)
	for _, tc := range []struct {
		name string
		edit func(*linkbridge.EndpointIdentity)
	}{
		{"NoEndpoint", func(id *linkbridge.EndpointIdentity) { id.Endpoint = "" }},
		{"NoResourceType", func(id *linkbridge.EndpointIdentity) { id.ResourceType = "" }},
		{"NoResourceID", func(id *linkbridge.EndpointIdentity) { id.ResourceID = "" }},
		{"NoEndpointID", func(id *linkbridge.EndpointIdentity) { id.EndpointID = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := endpointIdentity(epA, "Goal", "goal-a", "9001", 1)
			tc.edit(&id)
			checkError(t, s.RecordEndpointIdentity(context.Background(), id), linkbridge.EINVALID, "")
			checkIdentities(t, s, id.Endpoint, []linkbridge.ResourceKey{keyOf(id)})
		})
	}
}
