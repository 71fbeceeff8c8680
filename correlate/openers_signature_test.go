package correlate_test

import (
	"context"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/correlate/problems"
)

// The incident opened by an alert without an alertname, joined later by
// one with: Signature on the full incident names the later alert (its
// documented fallback), on IncidentOpeners it is empty.
func TestOpenersSignatureFallback(t *testing.T) {
	dir := t.TempDir()
	st, err := correlate.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := correlate.NewService(correlate.ServiceOptions{
		Store:  st,
		WALDir: correlate.WALDir(dir),
		NewEngine: func() *correlate.Engine {
			return correlate.NewEngine(correlate.Options{ReopenWindow: time.Hour},
				correlate.NewLabelGrouper([]string{"service"}, 10*time.Minute))
		},
		CheckpointInterval: 5 * time.Millisecond,
		TickInterval:       time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	send := func(labels ...string) {
		ev := triage.Event{Labels: map[string]string{}, Status: triage.AlertFiring}
		for i := 0; i+1 < len(labels); i += 2 {
			ev.Labels[labels[i]] = labels[i+1]
		}
		if err := ev.Normalize(time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := svc.Submit(ctx, []triage.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	send("service", "orders", "instance", "a")
	time.Sleep(5 * time.Millisecond)
	send("service", "orders", "alertname", "HighErrorRate")
	if err := svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	full, err := st.Incident(1)
	if err != nil {
		t.Fatal(err)
	}
	op, err := st.IncidentOpeners(1)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := problems.Signature(full), problems.Signature(op); a != b {
		t.Fatalf("signature from Incident %q, from IncidentOpeners %q (%d alerts of %d)", a, b, len(op.Alerts), len(full.Alerts))
	}
}
