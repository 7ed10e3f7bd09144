package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRedactDB(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"linkbridge.db", "linkbridge.db"},
		{"/var/lib/linkbridge/lb.db", "/var/lib/linkbridge/lb.db"},
		{"postgres://lb:s3cret@db.internal:5432/linkbridge?sslmode=verify-full", "postgres://lb:xxxxx@db.internal:5432/linkbridge"},
		{"postgresql://lb@db/linkbridge?password=s3cret", "postgresql://lb@db/linkbridge"},
		{"postgres://db/linkbridge", "postgres://db/linkbridge"},
	} {
		if got := redactDB(tc.in); got != tc.want {
			t.Errorf("redactDB(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestOpenStoreErrorHidesPassword: a PostgreSQL URL that cannot be reached
// is an error that names neither the password nor the URL's query.
func TestOpenStoreErrorHidesPassword(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, u := range []string{"postgres://lb:s3cret@127.0.0.1:1/x?connect_timeout=2", "postgres://lb@127.0.0.1:1/x?password=s3cret&connect_timeout=2", "postgres://lb:s3cret@[::1"} {
		_, err := openStore(ctx, u, nil)
		if err == nil {
			t.Fatalf("openStore(unreachable) = nil error")
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("openStore error shows the password: %v", err)
		}
	}
}
