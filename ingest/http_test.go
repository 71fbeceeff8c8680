package ingest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
