package ingest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/ingest"
)

type countingSink struct{ events int }

func (s *countingSink) Submit(_ context.Context, evs []triage.Event) error {
	s.events += len(evs)
	return nil
}

func TestTooManyEventsInOneRequest(t *testing.T) {
	sink := &countingSink{}
	m := ingest.NewMetrics(prometheus.NewRegistry())
	h := ingest.NewHTTP(ingest.HTTPOptions{Sink: sink, MaxEvents: 3}, m)
	post := func(n int) *httptest.ResponseRecorder {
		var evs []string
		for i := 0; i < n; i++ {
			evs = append(evs, fmt.Sprintf(`{"labels":{"alertname":"A%d"}}`, i))
		}
		rec := httptest.NewRecorder()
		h.Events()(rec, httptest.NewRequest("POST", "/api/v1/events", strings.NewReader("["+strings.Join(evs, ",")+"]")))
		return rec
	}
	if rec := post(3); rec.Code != http.StatusOK || sink.events != 3 {
		t.Fatalf("3 events at a limit of 3: %d, %d stored", rec.Code, sink.events)
	}
	rec := post(4)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "max_events_per_request") {
		t.Fatalf("4 events at a limit of 3: %d %s", rec.Code, rec.Body)
	}
	if sink.events != 3 {
		t.Fatalf("%d events stored: a refused request must store nothing", sink.events)
	}
	if got := testutil.ToFloat64(m.DecodeErrors.WithLabelValues("api", "too_many")); got != 1 {
		t.Fatalf("decode errors{reason=too_many} = %v", got)
	}
}

func TestPostableAlertWithoutEndsAtGetsResolveTimeout(t *testing.T) {
	var got []triage.Event
	sink := sinkFunc(func(evs []triage.Event) { got = evs })
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	h := ingest.NewHTTP(ingest.HTTPOptions{Sink: sink, ResolveTimeout: 5 * time.Minute, Now: func() time.Time { return now }},
		ingest.NewMetrics(prometheus.NewRegistry()))
	body := `[{"labels":{"alertname":"A"}},{"labels":{"alertname":"B"},"endsAt":"2026-11-24T10:30:00Z"}]`
	rec := httptest.NewRecorder()
	h.PostableAlerts()(rec, httptest.NewRequest("POST", "/api/v2/alerts", strings.NewReader(body)))
	if rec.Code != http.StatusOK || len(got) != 2 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if !got[0].EndsAt.Equal(now.Add(5*time.Minute)) || got[0].Status != triage.AlertFiring {
		t.Errorf("alert without endsAt: ends_at %s status %s, want now+5m firing", got[0].EndsAt, got[0].Status)
	}
	if !got[1].EndsAt.Equal(now.Add(30 * time.Minute)) {
		t.Errorf("alert with endsAt: ends_at %s, want its own", got[1].EndsAt)
	}
}

type sinkFunc func([]triage.Event)

func (f sinkFunc) Submit(_ context.Context, evs []triage.Event) error {
	f(evs)
	return nil
}

// TestHTTPSharesLabelStrings: the handlers decode with an interner, so
// that the same alert posted again holds the same label strings.
func TestHTTPSharesLabelStrings(t *testing.T) {
	var got [][]triage.Event
	sink := sinkFunc(func(evs []triage.Event) { got = append(got, evs) })
	h := ingest.NewHTTP(ingest.HTTPOptions{Sink: sink}, ingest.NewMetrics(prometheus.NewRegistry()))
	body := `[{"labels":{"alertname":"A","pod":"orders-7d4b9c-x2x9q"}}]`
	for range 2 {
		rec := httptest.NewRecorder()
		h.PostableAlerts()(rec, httptest.NewRequest("POST", "/api/v2/alerts", strings.NewReader(body)))
		if rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d submissions, want 2", len(got))
	}
	a, b := got[0][0].Labels["pod"], got[1][0].Labels["pod"]
	if a != "orders-7d4b9c-x2x9q" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatalf("the two requests' label values are two strings (%q, %q): not interned", a, b)
	}
}
