// Package svctest runs a real correlation service for the tests of the
// components that follow it (connectors, exporters, trackers).
package svctest

import (
	"context"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
)

// Service is a running correlation service on a temporary data dir.
type Service struct {
	*correlate.Service
	Store *correlate.Store
	Dir   string
	stop  func()
}

// Start runs a service in dir (a new temporary one when empty), grouping
// alerts by alertname and service; it stops at the end of the test or on
// Stop.
func Start(t testing.TB, dir string) *Service {
	t.Helper()
	return StartGroupedBy(t, dir, "alertname", "service")
}

// StartGroupedBy is Start with alerts grouped by the given labels.
func StartGroupedBy(t testing.TB, dir string, by ...string) *Service {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := correlate.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := correlate.NewService(correlate.ServiceOptions{
		Store:  st,
		WALDir: correlate.WALDir(dir),
		NewEngine: func() *correlate.Engine {
			return correlate.NewEngine(correlate.Options{ResolveAfter: 0, ReopenWindow: time.Hour},
				correlate.NewLabelGrouper(by, 10*time.Minute))
		},
		CheckpointInterval: 5 * time.Millisecond,
		TickInterval:       time.Hour,
		EventRetention:     24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = svc.Run(ctx)
	}()
	s := &Service{Service: svc, Store: st, Dir: dir}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		_ = st.Close()
	}
	t.Cleanup(s.stop)
	return s
}

// Stop stops the service and closes its store.
func (s *Service) Stop() { s.stop() }

// Fire submits one firing alert with the given labels.
func (s *Service) Fire(t testing.TB, labels ...string) {
	t.Helper()
	s.send(t, triage.AlertFiring, labels)
}

// ResolveAlert submits the resolution of an alert.
func (s *Service) ResolveAlert(t testing.TB, labels ...string) {
	t.Helper()
	s.send(t, triage.AlertResolved, labels)
}

func (s *Service) send(t testing.TB, st triage.AlertStatus, labels []string) {
	t.Helper()
	ev := triage.Event{Status: st, Labels: map[string]string{}}
	for i := 0; i+1 < len(labels); i += 2 {
		ev.Labels[labels[i]] = labels[i+1]
	}
	if err := ev.Normalize(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Submit(context.Background(), []triage.Event{ev}); err != nil {
		t.Fatal(err)
	}
}

// Eventually polls cond every 10ms until it holds or 20s pass.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
