package correlate_test

import (
	"context"
	"testing"
	"time"

	"github.com/triage-dev/triage/correlate/problems"
	"github.com/triage-dev/triage/internal/svctest"
)

// An incident opened by an alert without an alertname and joined later by
// one with: Signature names the later alert (its documented fallback), on
// the full incident and on what IncidentOpeners reads alike.
func TestOpenersSignatureFallback(t *testing.T) {
	s := svctest.StartGroupedBy(t, "", "service")
	s.Fire(t, "service", "orders", "instance", "a")
	time.Sleep(5 * time.Millisecond) // a later first_seen
	s.Fire(t, "service", "orders", "alertname", "HighErrorRate")
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	full, err := s.Store.Incident(1)
	if err != nil {
		t.Fatal(err)
	}
	op, err := s.Store.IncidentOpeners(1)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := problems.Signature(full), problems.Signature(op); a != b || a != "HighErrorRate@orders" {
		t.Fatalf("signature from Incident %q, from IncidentOpeners %q (%d alerts of %d), want HighErrorRate@orders both",
			a, b, len(op.Alerts), len(full.Alerts))
	}
}
