package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/adapter/mesh"
)

// TestReferenceMESHCommand: "linkbridge reference-mesh" serves the MESH
// API for the mailboxes it is given (a handshake with the right password
// and shared key passes, a wrong password is refused), and its settings
// are read strictly, flags and LINKBRIDGE_REFMESH_* variables alike.
func TestReferenceMESHCommand(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	env := map[string]string{"LINKBRIDGE_REFMESH_SHARED_KEY": "EnvKey"}
	go func() {
		errc <- (&ReferenceMESHCommand{Getenv: func(k string) string { return env[k] }, Stdout: io.Discard, Stderr: io.Discard, Ready: ready}).
			Run(ctx, []string{"--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "mesh.db"), "--mailboxes", "SPS001OT001=sp-pw", "--gp-mailbox", "A81001OT001"})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("reference-mesh: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("reference-mesh not ready")
	}
	for _, tc := range []struct {
		pw, key string
		ok      bool
	}{{"sp-pw", "EnvKey", true}, {"wrong", "EnvKey", false}, {"sp-pw", "TestKey", false}} {
		c, err := mesh.New(mesh.Config{BaseURL: "http://" + addr, Mailbox: "SPS001OT001", Password: tc.pw, SharedKey: tc.key, RetryMax: -1})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Handshake(ctx); (err == nil) != tc.ok {
			t.Errorf("handshake with password %q, key %q: %v, want ok=%v", tc.pw, tc.key, err, tc.ok)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("reference-mesh ended with %v", err)
	}

	bad := func(k string) string {
		if k == "LINKBRIDGE_REFMESH_GP_CATCH_ALL" {
			return "perhaps"
		}
		return ""
	}
	err := (&ReferenceMESHCommand{Getenv: bad, Stdout: io.Discard, Stderr: io.Discard}).Run(context.Background(), []string{"--db", filepath.Join(dir, "x.db")})
	if err == nil || !strings.Contains(err.Error(), "LINKBRIDGE_REFMESH_GP_CATCH_ALL") {
		t.Errorf("a malformed LINKBRIDGE_REFMESH_GP_CATCH_ALL: %v, want an error naming it", err)
	}
}
