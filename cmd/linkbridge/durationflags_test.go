package main

import (
	"io"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/fhirmap"
	"github.com/linkbridge/linkbridge/outbox"
)

// TestServeDurationFlags: each duration setting of serve has its default,
// is read from its environment variable, is overridden by its flag, is
// refused by Validate outside its range, and reaches what serve builds.
func TestServeDurationFlags(t *testing.T) {
	t.Parallel()
	type tcase struct {
		name    string
		env     string
		args    []string
		want    time.Duration
		wantErr bool
	}
	settings := []struct {
		name, env string
		cfg       func(*ServeConfig) time.Duration
		relay     func(*outbox.Relay) time.Duration // nil: not a relay setting
		cases     []tcase
	}{
		{"OutboxRetention", "LINKBRIDGE_OUTBOX_RETENTION",
			func(c *ServeConfig) time.Duration { return c.OutboxRetention },
			func(r *outbox.Relay) time.Duration { return r.Retention },
			[]tcase{
				{name: "Default30Days", want: 720 * time.Hour},
				{name: "Environment", env: "168h", want: 168 * time.Hour},
				{name: "FlagOverEnvironment", env: "168h", args: []string{"--outbox-retention=24h"}, want: 24 * time.Hour},
				{name: "ZeroDisables", args: []string{"--outbox-retention=0"}, want: 0},
				{name: "ErrNegative", args: []string{"--outbox-retention=-1h"}, want: -time.Hour, wantErr: true},
			}},
		{"WritebackSendTimeout", "LINKBRIDGE_WRITEBACK_SEND_TIMEOUT",
			func(c *ServeConfig) time.Duration { return c.WritebackSendTimeout },
			func(r *outbox.Relay) time.Duration { return r.SendTimeout },
			[]tcase{
				{name: "Default30s", want: 30 * time.Second},
				{name: "Environment", env: "45s", want: 45 * time.Second},
				{name: "FlagOverEnvironment", env: "45s", args: []string{"--writeback-send-timeout=5s"}, want: 5 * time.Second},
				{name: "ErrZero", args: []string{"--writeback-send-timeout=0"}, want: 0, wantErr: true},
				{name: "ErrNegative", args: []string{"--writeback-send-timeout=-1s"}, want: -time.Second, wantErr: true},
			}},
		{"RequestTimeout", "LINKBRIDGE_REQUEST_TIMEOUT",
			func(c *ServeConfig) time.Duration { return c.RequestTimeout }, nil,
			[]tcase{
				{name: "Default5s", want: 5 * time.Second},
				{name: "Environment", env: "10s", want: 10 * time.Second},
				{name: "FlagOverEnvironment", env: "10s", args: []string{"--request-timeout=2s"}, want: 2 * time.Second},
				{name: "ErrZero", args: []string{"--request-timeout=0"}, want: 0, wantErr: true},
				{name: "ErrNotShorterThanWriteTimeout", args: []string{"--request-timeout=30s"}, want: 30 * time.Second, wantErr: true},
			}},
	}
	for _, st := range settings {
		for _, tc := range st.cases {
			t.Run(st.name+"/"+tc.name, func(t *testing.T) {
				env := map[string]string{st.env: tc.env}
				c := &ServeCommand{Getenv: func(k string) string { return env[k] }, Stdout: io.Discard, Stderr: io.Discard}
				var cfg ServeConfig
				if err := c.flags(&cfg).Parse(tc.args); err != nil {
					t.Fatalf("Parse(%v) returned unexpected error: %v", tc.args, err)
				}
				if got := st.cfg(&cfg); got != tc.want {
					t.Fatalf("%s = %v, want %v", st.name, got, tc.want)
				}
				cfg.GPBase = "" // Validate's other checks pass with the defaults
				if err := cfg.Validate(); (err != nil) != tc.wantErr {
					t.Fatalf("Validate() = %v, want error: %v", err, tc.wantErr)
				}
				if tc.wantErr || st.relay == nil {
					return
				}
				// The relay serve builds carries it.
				cfg.GPBase, cfg.GPMode = "http://127.0.0.1:1/fhir", "client-id"
				r, err := newRelay(&cfg, nil, nil, fhirmap.Systems{}, nil, nil)
				if err != nil {
					t.Fatalf("newRelay returned unexpected error: %v", err)
				}
				if got := st.relay(r); got != tc.want {
					t.Fatalf("relay %s = %v, want %v", st.name, got, tc.want)
				}
			})
		}
	}
}
