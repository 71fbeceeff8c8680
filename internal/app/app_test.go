package app_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/app"
	"github.com/triage-dev/triage/internal/config"
)

func TestRefusesRemoteListenWithoutToken(t *testing.T) {
	tests := []struct {
		name   string
		listen string
		token  string
		allow  bool
		refuse bool
	}{
		{"all interfaces, no token", "0.0.0.0:0", "", false, true},
		{"empty host, no token", ":0", "", false, true},
		{"all interfaces, token from env", "0.0.0.0:0", "t0ken", false, false},
		{"all interfaces, explicitly allowed", "0.0.0.0:0", "", true, false},
		{"loopback, no token", "127.0.0.1:0", "", false, false},
		{"localhost, no token", "localhost:0", "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Listen = tc.listen
			cfg.DataDir = t.TempDir()
			cfg.Auth.AllowUnauthenticated = tc.allow
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			listening := make(chan net.Addr, 1)
			done := make(chan error, 1)
			go func() {
				done <- app.Run(ctx, app.Options{
					Config:    cfg,
					Getenv:    func(k string) string { return map[string]string{"TRIAGE_AUTH_TOKEN": tc.token}[k] },
					Listening: func(a net.Addr) { listening <- a },
				})
			}()
			select {
			case err := <-done:
				if !tc.refuse {
					t.Fatalf("refused to start: %v", err)
				}
				if err == nil || !strings.Contains(err.Error(), "without an auth token") {
					t.Fatalf("error %v does not explain the refusal", err)
				}
			case <-listening:
				if tc.refuse {
					t.Fatal("served beyond loopback without a token")
				}
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("shutdown: %v", err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("no shutdown")
				}
			}
		})
	}
}

func TestSecondProcessOnSameDataDirFails(t *testing.T) {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, app.Options{Config: cfg, Listening: func(a net.Addr) { listening <- a }}) }()
	<-listening
	err := app.Run(context.Background(), app.Options{Config: cfg})
	if err == nil || !strings.Contains(err.Error(), "another triage process holds it") {
		t.Fatalf("second run on the same data dir: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
