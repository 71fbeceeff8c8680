package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/internal/httpx"
)

// Sink takes normalised events and returns once they are durable.
type Sink interface {
	Submit(ctx context.Context, events []triage.Event) error
}

// HTTPOptions configure the ingest handlers.
type HTTPOptions struct {
	Sink Sink
	// MaxBodyBytes bounds a request body; larger ones get 413.
	MaxBodyBytes int64
	// MaxEvents bounds the events of one request; more get 413.
	MaxEvents int
	// ResolveTimeout is when an alert posted to /api/v2/alerts without
	// endsAt expires; 0 never.
	ResolveTimeout time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
	Registry       prometheus.Registerer
}

// HTTP serves the ingest endpoints.
type HTTP struct {
	opts HTTPOptions
	m    *Metrics
	dec  *Decoder // shares label strings across requests
}

// Metrics count what the sources receive. They are shared by every source
// (HTTP, Kafka) so that the counts read the same way.
type Metrics struct {
	Received     *prometheus.CounterVec
	DecodeErrors *prometheus.CounterVec
}

// NewMetrics registers the ingest metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		Received: f.NewCounterVec(prometheus.CounterOpts{Name: "triage_ingest_events_received_total",
			Help: "Events accepted from senders, by source."}, []string{"source"}),
		DecodeErrors: f.NewCounterVec(prometheus.CounterOpts{Name: "triage_ingest_decode_errors_total",
			Help: "Payloads rejected as bad input, by source and reason."}, []string{"source", "reason"}),
	}
}

// NewHTTP returns the ingest handlers.
func NewHTTP(opts HTTPOptions, m *Metrics) *HTTP {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 16 << 20
	}
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = 20000
	}
	return &HTTP{opts: opts, m: m, dec: NewDecoder(NewInterner(DefaultInternerCapacity))}
}

// Webhook serves POST /api/v1/alerts (Alertmanager webhook).
func (h *HTTP) Webhook() http.HandlerFunc { return h.handler(SourceAlertmanager, h.dec.Webhook) }

// PostableAlerts serves POST /api/v2/alerts (Alertmanager's API, as Prometheus sends).
//
// As in Alertmanager, a firing alert posted without endsAt expires after
// ResolveTimeout unless posted again (Prometheus always sets endsAt).
func (h *HTTP) PostableAlerts() http.HandlerFunc {
	return h.handler(SourcePrometheus, func(body []byte) ([]triage.Event, error) {
		events, err := h.dec.PostableAlerts(body)
		if err != nil || h.opts.ResolveTimeout <= 0 {
			return events, err
		}
		now := h.opts.Now()
		for i := range events {
			if events[i].EndsAt.IsZero() {
				events[i].EndsAt = now.Add(h.opts.ResolveTimeout)
			}
		}
		return events, nil
	})
}

// Events serves POST /api/v1/events (generic events).
func (h *HTTP) Events() http.HandlerFunc { return h.handler(SourceAPI, h.dec.Events) }

func (h *HTTP) handler(source string, decode func([]byte) ([]triage.Event, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(w, r, h.opts.MaxBodyBytes)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				h.m.DecodeErrors.WithLabelValues(source, "too_large").Inc()
				httpx.WriteError(w, http.StatusRequestEntityTooLarge,
					fmt.Sprintf("body: larger than the limit of %d bytes (http.max_body_bytes)", tooBig.Limit))
				return
			}
			httpx.WriteError(w, http.StatusBadRequest, "body: "+err.Error())
			return
		}
		events, err := decode(body)
		if err == nil && len(events) > h.opts.MaxEvents {
			h.m.DecodeErrors.WithLabelValues(source, "too_many").Inc()
			httpx.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf(
				"body: %d events, more than the limit of %d (http.max_events_per_request); split it, "+
					"e.g. with max_alerts in Alertmanager's webhook_configs", len(events), h.opts.MaxEvents))
			return
		}
		if err == nil {
			err = normalize(events, source, h.opts.Now())
		}
		if err != nil {
			reason := "invalid"
			var de *DecodeError
			if errors.As(err, &de) {
				reason = de.Reason
			}
			h.m.DecodeErrors.WithLabelValues(source, reason).Inc()
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		if len(events) > 0 {
			if err := h.opts.Sink.Submit(r.Context(), events); err != nil {
				level := slog.LevelWarn
				if errors.Is(err, context.Canceled) {
					level = slog.LevelDebug // the sender went away; it will resend
				}
				h.opts.Logger.Log(r.Context(), level, "events not acknowledged", "source", source, "events", len(events), "err", err)
				httpx.WriteError(w, http.StatusServiceUnavailable, "events not stored, retry: "+err.Error())
				return
			}
			h.m.Received.WithLabelValues(source).Add(float64(len(events)))
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]int{"accepted": len(events)})
	}
}

// readBody reads a request body of at most max bytes (else an
// *http.MaxBytesError). With a Content-Length it reads into one buffer of
// that size instead of growing one from 512 bytes.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, max)
	if n := r.ContentLength; n > 0 && n <= max {
		buf := bytes.NewBuffer(make([]byte, 0, n+bytes.MinRead)) // ReadFrom wants MinRead free at the end
		_, err := buf.ReadFrom(body)
		return buf.Bytes(), err
	}
	return io.ReadAll(body)
}

// normalize validates every event; one bad event rejects the payload, so
// that nothing of it is stored and the sender can fix and resend it whole.
func normalize(events []triage.Event, source string, now time.Time) error {
	what := "alerts"
	if source == SourceAPI {
		what = "events"
	}
	for i := range events {
		if err := events[i].Normalize(now); err != nil {
			return &DecodeError{Reason: "invalid", Msg: fmt.Sprintf("%s[%d]: %v", what, i, err)}
		}
	}
	return nil
}
