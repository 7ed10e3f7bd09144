package main

import (
	"io"
	"testing"
	"time"
)

func TestServeWritebackSendTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     string
		args    []string
		want    time.Duration
		wantErr bool
	}{
		{name: "Default30s", want: 30 * time.Second},
		{name: "Environment", env: "45s", want: 45 * time.Second},
		{name: "FlagOverEnvironment", env: "45s", args: []string{"--writeback-send-timeout=5s"}, want: 5 * time.Second},
		{name: "ErrZero", args: []string{"--writeback-send-timeout=0"}, want: 0, wantErr: true},
		{name: "ErrNegative", args: []string{"--writeback-send-timeout=-1s"}, want: -time.Second, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"LINKBRIDGE_WRITEBACK_SEND_TIMEOUT": tc.env}
			c := &ServeCommand{Getenv: func(k string) string { return env[k] }, Stdout: io.Discard, Stderr: io.Discard}
			var cfg ServeConfig
			if err := c.flags(&cfg).Parse(tc.args); err != nil {
				t.Fatalf("Parse(%v) returned unexpected error: %v", tc.args, err)
			}
			if cfg.WritebackSendTimeout != tc.want {
				t.Fatalf("WritebackSendTimeout = %v, want %v", cfg.WritebackSendTimeout, tc.want)
			}
			cfg.GPBase = "" // Validate's other checks pass with the defaults
			if err := cfg.Validate(); (err != nil) != tc.wantErr {
				t.Fatalf("Validate() = %v, want error: %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			// The relay serve builds carries it.
			cfg.GPBase, cfg.GPMode = "http://127.0.0.1:1/fhir", "client-id"
			r, err := newRelay(&cfg, nil, nil, nil, nil)
			if err != nil {
				t.Fatalf("newRelay returned unexpected error: %v", err)
			}
			if r.SendTimeout != tc.want {
				t.Fatalf("relay SendTimeout = %v, want %v", r.SendTimeout, tc.want)
			}
		})
	}
}
