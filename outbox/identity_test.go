package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/refgp"
)

// identityEnv is a strict reference GP on loopback and a Sender whose
// identity record is a real SQLite store.
type identityEnv struct {
	gp     string
	db     *sqlite.DB
	sender *gpfhir.Sender
}

func newIdentityEnv(t *testing.T, opts refgp.Options, mode gpfhir.Mode) *identityEnv {
	t.Helper()
	ctx := context.Background()
	gp, err := refgp.Open(ctx, filepath.Join(t.TempDir(), "gp.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gp.Close() })
	srv := httptest.NewServer(gp.Handler())
	t.Cleanup(srv.Close)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := gpfhir.New(gpfhir.Config{BaseURL: srv.URL + "/fhir", Mode: mode, RetryMax: 0})
	if err != nil {
		t.Fatal(err)
	}
	return &identityEnv{gp: srv.URL + "/fhir", db: db, sender: &gpfhir.Sender{Client: c, Codec: codec, Identities: db}}
}

func (e *identityEnv) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(e.gp + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

func (e *identityEnv) identity(t *testing.T, typ, id string) linkbridge.EndpointIdentity {
	t.Helper()
	k := linkbridge.ResourceKey{Type: typ, ID: id}
	ids, err := e.db.EndpointIdentities(context.Background(), e.sender.Client.Endpoint(), []linkbridge.ResourceKey{k})
	if err != nil {
		t.Fatal(err)
	}
	return ids[k]
}

const (
	nhsRef     = `{"type":"Patient","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}}`
	wbIdent    = `"identifier":[{"system":"https://linkbridge.example.org/Id/writeback","value":"`
	goalGP     = `{"resourceType":"Goal","id":"g1",` + wbIdent + `Goal/g1"}],"lifecycleStatus":"active","description":{"text":"Join a walking group"},"subject":` + nhsRef + `}`
	carePlanGP = `{"resourceType":"CarePlan","id":"cp1",` + wbIdent + `CarePlan/cp1"}],"status":"active","intent":"plan","subject":` + nhsRef + `,"goal":[{"reference":"Goal/g1"}]}`
	provGP     = `{"resourceType":"Provenance","id":"r1-v2","meta":{"tag":[{"system":"https://linkbridge.example.org/Id/writeback","code":"Provenance/r1-v2"}]},"target":[{"reference":"Goal/g1/_history/1","type":"Goal"}],"recorded":"2026-12-05T10:00:00Z","agent":[{"who":{"type":"Organization","identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"Y02662"}}}]}`
	goalHeld   = `{"resourceType":"Goal","id":"g1",` + wbIdent + `Goal/g1"}],"lifecycleStatus":"entered-in-error","description":{"text":"Withheld"},"subject":` + nhsRef + `}`
)

func msg(typ, id string, version int, body string) *linkbridge.OutboxMessage {
	return &linkbridge.OutboxMessage{ResourceType: typ, ResourceID: id, Version: version, Body: []byte(body)}
}

// TestSenderUsesTheEndpointsIDs: against a strict endpoint (its own ids,
// references enforced) a CarePlan whose Goal the endpoint does not hold yet
// waits (retryable, nothing sent); once the Goal is written under the
// endpoint's own id, recorded with its version, the CarePlan is sent with
// its reference rewritten to that id, and a Provenance's versioned target
// to the endpoint's version.
func TestSenderUsesTheEndpointsIDs(t *testing.T) {
	for _, mode := range []gpfhir.Mode{gpfhir.ModeAuto, gpfhir.ModeCreate} {
		t.Run(string(mode), func(t *testing.T) {
			e := newIdentityEnv(t, refgp.Options{}, mode)
			ctx := context.Background()
			_, err := e.sender.Send(ctx, msg("CarePlan", "cp1", 1, carePlanGP))
			var re *gpfhir.RetryableError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), "waiting for Goal/g1") {
				t.Fatalf("CarePlan before its Goal: %v, want a retryable wait for Goal/g1", err)
			}
			if st, doc := e.get(t, "CarePlan"); st != 200 || doc["total"] != float64(0) {
				t.Fatalf("the waiting CarePlan reached the endpoint: %d %v", st, doc["total"])
			}
			if _, err := e.sender.Send(ctx, msg("Goal", "g1", 1, goalGP)); err != nil {
				t.Fatal(err)
			}
			goal := e.identity(t, "Goal", "g1")
			if goal.EndpointID == "" || goal.EndpointID == "g1" || goal.EndpointVersion == "" || goal.Version != 1 {
				t.Fatalf("recorded %+v, want the endpoint's own id and version for version 1", goal)
			}
			for i := 0; i < 2; i++ { // twice: one resource
				if _, err := e.sender.Send(ctx, msg("CarePlan", "cp1", 1, carePlanGP)); err != nil {
					t.Fatal(err)
				}
			}
			cp := e.identity(t, "CarePlan", "cp1")
			st, doc := e.get(t, "CarePlan/"+cp.EndpointID)
			if st != 200 {
				t.Fatalf("GET CarePlan/%s = %d", cp.EndpointID, st)
			}
			ref := doc["goal"].([]any)[0].(map[string]any)["reference"]
			if ref != "Goal/"+goal.EndpointID {
				t.Errorf("CarePlan.goal = %v, want Goal/%s", ref, goal.EndpointID)
			}
			if _, all := e.get(t, "CarePlan"); all["total"] != float64(1) {
				t.Errorf("two sends made %v CarePlans", all["total"])
			}
			if _, err := e.sender.Send(ctx, msg("Provenance", "r1-v2", 1, provGP)); err != nil {
				t.Fatal(err)
			}
			prov := e.identity(t, "Provenance", "r1-v2")
			_, pdoc := e.get(t, "Provenance/"+prov.EndpointID)
			target := pdoc["target"].([]any)[0].(map[string]any)["reference"]
			if target != "Goal/"+goal.EndpointID+"/_history/"+goal.EndpointVersion {
				t.Errorf("Provenance.target = %v, want Goal/%s/_history/%s", target, goal.EndpointID, goal.EndpointVersion)
			}
		})
	}
}

// TestSenderErase: an erase deletes the endpoint's copy where the endpoint
// offers delete (read then answers 410) and forgets its id; on an endpoint
// without delete it writes the withheld version in its place.
func TestSenderErase(t *testing.T) {
	ctx := context.Background()
	t.Run("delete", func(t *testing.T) {
		e := newIdentityEnv(t, refgp.Options{}, gpfhir.ModeAuto)
		if _, err := e.sender.Send(ctx, msg("Goal", "g1", 1, goalGP)); err != nil {
			t.Fatal(err)
		}
		id := e.identity(t, "Goal", "g1").EndpointID
		m := msg("Goal", "g1", 2, goalHeld)
		m.Erase = true
		if _, err := e.sender.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
		if st, _ := e.get(t, "Goal/"+id); st != http.StatusGone {
			t.Errorf("GET the erased Goal = %d, want 410", st)
		}
		if got := e.identity(t, "Goal", "g1"); got.EndpointID != "" {
			t.Errorf("identity kept after delete: %+v", got)
		}
		// Erasing again (a resend) is no error: it is gone either way.
		if _, err := e.sender.Send(ctx, m); err != nil {
			t.Errorf("second erase: %v", err)
		}
	})
	t.Run("no-delete", func(t *testing.T) {
		e := newIdentityEnv(t, refgp.Options{NoDelete: true}, gpfhir.ModeAuto)
		if _, err := e.sender.Send(ctx, msg("Goal", "g1", 1, goalGP)); err != nil {
			t.Fatal(err)
		}
		m := msg("Goal", "g1", 2, goalHeld)
		m.Erase = true
		if _, err := e.sender.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
		_, doc := e.get(t, "Goal/"+e.identity(t, "Goal", "g1").EndpointID)
		if doc["lifecycleStatus"] != "entered-in-error" || doc["description"].(map[string]any)["text"] != "Withheld" {
			t.Errorf("Goal on an endpoint without delete = %v, want the withheld version", doc)
		}
		// An erase with nothing to write changes nothing there.
		empty := msg("Provenance", "r1-v2", 2, "")
		empty.Erase = true
		if _, err := e.sender.Send(ctx, empty); err != nil {
			t.Errorf("empty erase: %v", err)
		}
	})
}

// TestSenderDropsReferencesToTypesNeverWrittenBack: a message queued before
// casework made such references logical (a Task naming the referrer's
// PractitionerRole by literal reference) does not wait for a resource the
// endpoint can never hold: the literal part is dropped, and the strict
// endpoint takes it.
func TestSenderDropsReferencesToTypesNeverWrittenBack(t *testing.T) {
	e := newIdentityEnv(t, refgp.Options{}, gpfhir.ModeAuto)
	task := `{"resourceType":"Task","id":"t1",` + wbIdent + `Task/t1"}],"status":"accepted","intent":"order","for":` + nhsRef + `,"requester":{"reference":"PractitionerRole/pr1","display":"Dr Jones"}}`
	if _, err := e.sender.Send(context.Background(), msg("Task", "t1", 2, task)); err != nil {
		t.Fatal(err)
	}
	_, doc := e.get(t, "Task/"+e.identity(t, "Task", "t1").EndpointID)
	if req := doc["requester"].(map[string]any); req["reference"] != nil || req["display"] != "Dr Jones" {
		t.Errorf("requester = %v, want the display only", req)
	}
}
