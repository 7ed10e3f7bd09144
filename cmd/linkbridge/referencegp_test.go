package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestReferenceGPModes: reference-gp is strict by default; --allow-client-ids
// (or LINKBRIDGE_REFGP_ALLOW_CLIENT_IDS=true) makes it lenient and
// --no-delete (or LINKBRIDGE_REFGP_NO_DELETE=true) turns delete off, as
// its CapabilityStatement declares.
func TestReferenceGPModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		args         []string
		env          map[string]string
		updateCreate bool
		policy       []string
		delete       bool
	}{
		{name: "DefaultStrict", policy: []string{"literal", "logical", "enforced"}, delete: true},
		{name: "AllowClientIDsFlag", args: []string{"--allow-client-ids"}, updateCreate: true, policy: []string{"literal", "logical"}, delete: true},
		{name: "AllowClientIDsEnv", env: map[string]string{"LINKBRIDGE_REFGP_ALLOW_CLIENT_IDS": "true"}, updateCreate: true, policy: []string{"literal", "logical"}, delete: true},
		{name: "NoDeleteFlag", args: []string{"--no-delete"}, policy: []string{"literal", "logical", "enforced"}},
		{name: "NoDeleteEnv", env: map[string]string{"LINKBRIDGE_REFGP_NO_DELETE": "true"}, policy: []string{"literal", "logical", "enforced"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan string, 1)
			done := make(chan error, 1)
			var out, stderr bytes.Buffer
			args := append([]string{"--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "gp.db"), "--log-level", "error"}, tc.args...)
			go func() {
				done <- (&ReferenceGPCommand{Getenv: func(k string) string { return tc.env[k] }, Stdout: &out, Stderr: &stderr, Ready: ready}).Run(ctx, args)
			}()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("reference-gp: %v", err)
				}
			})
			var addr string
			select {
			case addr = <-ready:
			case err := <-done:
				t.Fatalf("reference-gp exited: %v\n%s", err, stderr.String())
			case <-time.After(20 * time.Second):
				t.Fatal("reference-gp did not start")
			}
			resp, err := http.Get("http://" + addr + "/fhir/metadata")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			type interaction struct {
				Code string `json:"code"`
			}
			var cs struct {
				Rest []struct {
					Resource []struct {
						Type            string        `json:"type"`
						UpdateCreate    bool          `json:"updateCreate"`
						ReferencePolicy []string      `json:"referencePolicy"`
						Interaction     []interaction `json:"interaction"`
					} `json:"resource"`
				} `json:"rest"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&cs); err != nil || len(cs.Rest) != 1 || len(cs.Rest[0].Resource) == 0 {
				t.Fatalf("metadata: %v %+v", err, cs)
			}
			for _, res := range cs.Rest[0].Resource {
				del := slices.Contains(res.Interaction, interaction{Code: "delete"})
				if res.UpdateCreate != tc.updateCreate || !slices.Equal(res.ReferencePolicy, tc.policy) || del != tc.delete {
					t.Errorf("%s: updateCreate %v referencePolicy %v delete %v; want %v %v %v", res.Type, res.UpdateCreate, res.ReferencePolicy, del,
						tc.updateCreate, tc.policy, tc.delete)
				}
			}
		})
	}
}
