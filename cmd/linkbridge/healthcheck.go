package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// HealthcheckCommand is "linkbridge healthcheck": it asks a gateway's
// /readyz and exits 0 when it answers 200. The container image's
// HEALTHCHECK runs it (the distroless base has no shell or curl). The
// address is serve's --addr (LINKBRIDGE_ADDR), with an all-interfaces
// host asked on loopback; https when LINKBRIDGE_TLS_CERT is set.
type HealthcheckCommand struct {
	Getenv         func(string) string
	Stdout, Stderr io.Writer
}

// Run checks readiness once.
func (c *HealthcheckCommand) Run(ctx context.Context, args []string) error {
	fs := newFlags("healthcheck", c.Getenv, c.Stderr)
	fs.synopsis = "healthcheck [--addr HOST:PORT] [--timeout 5s]"
	var addr, cert string
	var timeout time.Duration
	fs.str(&addr, "addr", "ADDR", "127.0.0.1:8080", "the gateway's listen address")
	fs.str(&cert, "tls-cert", "TLS_CERT", "", "set when the gateway serves HTTPS (its certificate is not checked: the check is of this host's own gateway)")
	fs.FlagSet.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("healthcheck takes no arguments, got %q", fs.Args())
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme, tr := "http", &http.Transport{}
	if cert != "" {
		scheme = "https"
		// The certificate names the service's public host, not loopback;
		// what is checked is that this gateway answers.
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // loopback self-check, see above
	}
	client := &http.Client{Timeout: timeout, Transport: tr}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, port)+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %d %s", resp.StatusCode, body)
	}
	_, err = fmt.Fprintf(c.Stdout, "%s", body)
	return err
}
