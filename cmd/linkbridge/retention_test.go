package main

import (
	"io"
	"testing"
	"time"
)

func TestServeOutboxRetention(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     string
		args    []string
		want    time.Duration
		wantErr bool
	}{
		{name: "Default30Days", want: 720 * time.Hour},
		{name: "Environment", env: "168h", want: 168 * time.Hour},
		{name: "FlagOverEnvironment", env: "168h", args: []string{"--outbox-retention=24h"}, want: 24 * time.Hour},
		{name: "ZeroDisables", args: []string{"--outbox-retention=0"}, want: 0},
		{name: "ErrNegative", args: []string{"--outbox-retention=-1h"}, want: -time.Hour, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"LINKBRIDGE_OUTBOX_RETENTION": tc.env}
			c := &ServeCommand{Getenv: func(k string) string { return env[k] }, Stdout: io.Discard, Stderr: io.Discard}
			var cfg ServeConfig
			if err := c.flags(&cfg).Parse(tc.args); err != nil {
				t.Fatalf("Parse(%v) returned unexpected error: %v", tc.args, err)
			}
			if cfg.OutboxRetention != tc.want {
				t.Fatalf("OutboxRetention = %v, want %v", cfg.OutboxRetention, tc.want)
			}
			cfg.GPBase = "" // Validate's other checks pass with the defaults
			if err := cfg.Validate(); (err != nil) != tc.wantErr {
				t.Fatalf("Validate() = %v, want error: %v", err, tc.wantErr)
			}
			// The relay serve builds carries it.
			cfg.GPBase, cfg.GPMode = "http://127.0.0.1:1/fhir", "client-id"
			if tc.wantErr {
				return
			}
			r, err := newRelay(&cfg, nil, nil, nil, nil)
			if err != nil {
				t.Fatalf("newRelay returned unexpected error: %v", err)
			}
			if r.Retention != tc.want {
				t.Fatalf("relay Retention = %v, want %v", r.Retention, tc.want)
			}
		})
	}
}
