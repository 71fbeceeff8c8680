package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/metrics/sla/tracker"
)

// Source is where the exporter reads: the engine's store.
type Source interface {
	Changes(after uint64, limit int) ([]correlate.Change, error)
	Events(after uint64, limit int) ([]correlate.StoredEvent, error)
	Incident(id uint64) (*triage.Incident, error)
	LiveIncidents(fn func(*triage.Incident) error) error
}

// ExporterOptions configure an Exporter.
type ExporterOptions struct {
	// Writer options; the exporter opens (and reopens) the writer itself,
	// so that ClickHouse may be down when the daemon starts.
	Writer Options
	Source Source
	// CursorPath is the file holding how far the export got
	// (data_dir/clickhouse-export.json).
	CursorPath string
	// Problems lists every problem, as rows; nil without problem tracking.
	Problems func() ([]ProblemRow, error)
	// Weights give each service's user-impact weight (default 1).
	Weights map[string]float64
	// Interval is the pause between export rounds when there is nothing
	// more to read (default 1s); MaxBackoff caps the wait after failures.
	Interval, MaxBackoff time.Duration
	// Refresh is how often live incidents changed without a timeline entry
	// (repeated notifications raise counts) are exported again (default 1m).
	Refresh  time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// Exporter copies the store's events and incident changes into
// ClickHouse in batches. The store is the durable buffer: the exporter
// keeps only a cursor, advanced after ClickHouse took a batch, so
// ClickHouse being down for minutes (or the daemon being killed) loses
// nothing; a batch sent again after a crash collapses in the
// ReplacingMergeTree tables, so nothing counts twice. Events the store has
// pruned (store.event_retention) before they were exported are skipped.
type Exporter struct {
	o      ExporterOptions
	w      *Writer
	cur    cursor
	log    *slog.Logger
	lag    prometheus.Gauge
	errs   prometheus.Counter
	probV  map[uint64]uint64 // problem versions exported since start
	failed int
	// sent is the UpdatedAt of each live incident as last exported;
	// refreshed is when live incidents were last checked against it.
	sent      map[uint64]time.Time
	refreshed time.Time
}

type cursor struct {
	Changes uint64 `json:"changes"`
	Events  uint64 `json:"events"`
}

// NewExporter reads the cursor; it does not connect.
func NewExporter(o ExporterOptions) (*Exporter, error) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.Refresh <= 0 {
		o.Refresh = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Writer.BatchRows <= 0 {
		o.Writer.BatchRows = 50000
	}
	o.Writer.Logger = o.Logger
	o.Writer.metrics = newMetrics(o.Registry) // once: the writer is opened again after failures
	e := &Exporter{o: o, log: o.Logger, probV: map[uint64]uint64{}, sent: map[uint64]time.Time{}}
	f := promauto.With(o.Registry)
	e.lag = f.NewGauge(prometheus.GaugeOpts{Name: "triage_clickhouse_export_behind_seconds",
		Help: "Age of the oldest change not yet exported to ClickHouse (0 when caught up)."})
	e.errs = f.NewCounter(prometheus.CounterOpts{Name: "triage_clickhouse_export_failures_total",
		Help: "Export rounds that failed (ClickHouse down or refusing); they are retried."})
	b, err := os.ReadFile(o.CursorPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading the export cursor: %w", err)
	default:
		if err := json.Unmarshal(b, &e.cur); err != nil {
			return nil, fmt.Errorf("reading the export cursor %s: %w", o.CursorPath, err)
		}
	}
	return e, nil
}

// Run exports until ctx is cancelled.
func (e *Exporter) Run(ctx context.Context) error {
	defer func() {
		if e.w != nil {
			_ = e.w.Close()
		}
	}()
	for {
		more, err := e.Round(ctx)
		wait := e.o.Interval
		if err != nil {
			e.errs.Inc()
			e.failed++
			if chs, cerr := e.o.Source.Changes(e.cur.Changes, 1); cerr == nil && len(chs) > 0 {
				e.lag.Set(e.o.Now().Sub(chs[0].Entry.Time).Seconds())
			}
			wait = min(e.o.Interval<<min(e.failed, 10), e.o.MaxBackoff)
			e.log.Warn("clickhouse export failed; rows stay in the store and are retried", "err", err, "retry_in", wait)
		} else {
			e.failed = 0
			if more {
				wait = 0
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Round exports one batch: it connects when needed, sends what follows
// the cursor and advances it. more is true when a full batch was sent.
func (e *Exporter) Round(ctx context.Context) (more bool, err error) {
	if e.w == nil {
		w, err := Open(ctx, e.o.Writer)
		if err != nil {
			return false, err
		}
		e.w = w
		e.log.Info("clickhouse export connected", "addr", e.o.Writer.Addr, "server", w.ServerVersion().String())
	}
	limit := e.o.Writer.BatchRows
	var b Batch
	next := e.cur
	evs, err := e.o.Source.Events(e.cur.Events, limit)
	if err != nil {
		return false, fmt.Errorf("reading events: %w", err)
	}
	for _, se := range evs {
		b.Events = append(b.Events, eventRow(se))
		next.Events = se.Seq
	}
	chs, err := e.o.Source.Changes(e.cur.Changes, limit)
	if err != nil {
		return false, fmt.Errorf("reading changes: %w", err)
	}
	last := map[uint64]uint64{}         // incident → its last change in this batch
	allAlerts := map[uint64]bool{}      // incidents whose every alert is written
	fps := map[uint64]map[string]bool{} // otherwise only the alerts their changes name
	for _, c := range chs {
		switch c.Entry.Kind {
		case triage.KindOpened, triage.KindMerged, triage.KindResolved, triage.KindReopened:
			allAlerts[c.IncidentID] = true
		}
		if fp := c.Entry.Fingerprint; fp != "" {
			if fps[c.IncidentID] == nil {
				fps[c.IncidentID] = map[string]bool{}
			}
			fps[c.IncidentID][fp] = true
		}
		b.Changes = append(b.Changes, ChangeRow{IncidentID: c.IncidentID, Seq: c.Entry.Seq, Time: c.Entry.Time,
			Kind: c.Entry.Kind, Actor: c.Entry.Actor, Message: c.Entry.Message})
		last[c.IncidentID] = c.Entry.Seq
		next.Changes = c.Entry.Seq
	}
	now := e.o.Now()
	if now.Sub(e.refreshed) >= e.o.Refresh {
		// Incidents whose record moved on without a timeline entry (event
		// and alert counts): exported again with all their alerts.
		live := map[uint64]time.Time{} // what is remembered: live incidents only
		err := e.o.Source.LiveIncidents(func(inc *triage.Incident) error {
			if t, ok := e.sent[inc.ID]; ok {
				live[inc.ID] = t
			}
			if _, ok := last[inc.ID]; !ok && inc.UpdatedAt.After(e.sent[inc.ID]) {
				last[inc.ID] = 0
				allAlerts[inc.ID] = true
			}
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("listing live incidents: %w", err)
		}
		e.sent, e.refreshed = live, now
	}
	ids := make([]uint64, 0, len(last))
	for id := range last {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	incs := make(map[uint64]*triage.Incident, len(ids))
	for _, id := range ids {
		inc, err := e.o.Source.Incident(id)
		if errors.Is(err, correlate.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("reading %s: %w", triage.IncidentKey(id), err)
		}
		// Versions follow the record's UpdatedAt, which every change of an
		// incident moves forward: the newest export wins in the
		// ReplacingMergeTree tables, whatever triggered it.
		version := uint64(inc.UpdatedAt.UnixNano())
		b.Incidents = append(b.Incidents, e.incidentRow(inc, version, now))
		// Only the alerts this batch's changes name (all of them when the
		// incident opened, merged, resolved or reopened): a 10k-alert
		// incident is not rewritten whole on every change.
		for _, a := range inc.Alerts {
			if allAlerts[id] || fps[id][a.Fingerprint] {
				b.Alerts = append(b.Alerts, alertRow(inc, &a, version))
			}
		}
		incs[id] = inc
	}
	defer func() {
		if err == nil { // remember what ClickHouse has, once it took it
			for id, inc := range incs {
				e.sent[id] = inc.UpdatedAt
			}
		}
	}()
	for _, c := range chs {
		inc := incs[c.IncidentID]
		if inc == nil {
			continue
		}
		if r, ok := slaRow(inc, c.Entry); ok {
			b.SLAEvents = append(b.SLAEvents, r)
		}
		if c.Entry.Kind == triage.KindFeedback {
			b.Feedback = append(b.Feedback, feedbackRow(inc, c.Entry))
		}
	}
	var probs []ProblemRow
	if e.o.Problems != nil {
		all, err := e.o.Problems()
		if err != nil {
			return false, fmt.Errorf("listing problems: %w", err)
		}
		for _, p := range all {
			if e.probV[p.ID] != p.Version {
				probs = append(probs, p)
			}
		}
		b.Problems = probs
	}
	if b.Len() > 0 {
		if err := e.w.Write(ctx, b); err != nil {
			if !IsRetryable(err) {
				// A refused batch (schema drift, a bad value) is not
				// retried forever silently: reconnect and migrate again.
				_ = e.w.Close()
				e.w = nil
			}
			return false, err
		}
	}
	if next != e.cur {
		if err := e.saveCursor(next); err != nil {
			return false, err
		}
	}
	for _, p := range probs {
		e.probV[p.ID] = p.Version
	}
	if len(chs) > 0 && len(chs) == limit {
		e.lag.Set(now.Sub(chs[len(chs)-1].Entry.Time).Seconds())
	} else {
		e.lag.Set(0)
	}
	return len(evs) == limit || len(chs) == limit, nil
}

// saveCursor writes the cursor durably: temp file, fsync, rename.
func (e *Exporter) saveCursor(c cursor) error {
	b, _ := json.Marshal(c)
	tmp := e.o.CursorPath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("saving the export cursor: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, e.o.CursorPath)
	}
	if err == nil {
		if d, derr := os.Open(filepath.Dir(e.o.CursorPath)); derr == nil {
			_ = d.Sync()
			_ = d.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("saving the export cursor: %w", err)
	}
	e.cur = c
	return nil
}

func eventRow(se correlate.StoredEvent) EventRow {
	ev := se.Event
	keys := make([]string, 0, len(ev.Labels))
	for k := range ev.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = ev.Labels[k]
	}
	t := ev.Time
	if t.IsZero() {
		t = se.ReceivedAt
	}
	return EventRow{Received: se.ReceivedAt, Time: t, Seq: se.Seq, Source: ev.Source, Fingerprint: ev.Fingerprint,
		Status: string(ev.Status), Severity: ev.Severity, Alertname: ev.Labels["alertname"], Service: ev.Labels["service"],
		CI: firstOf(ev.Labels, "ci", "instance", "host"), LabelKeys: keys, LabelValues: vals}
}

func firstOf(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := m[k]; v != "" {
			return v
		}
	}
	return ""
}

func tv(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// UserImpactMinutes is an incident's open minutes (to resolution, or to
// now) times its service's weight.
func UserImpactMinutes(inc *triage.Incident, weights map[string]float64, now time.Time) float64 {
	end := now
	if inc.ResolvedAt != nil {
		end = *inc.ResolvedAt
	}
	w := 1.0
	if v, ok := weights[inc.Service]; ok {
		w = v
	}
	if !end.After(inc.OpenedAt) {
		return 0
	}
	return end.Sub(inc.OpenedAt).Minutes() * w
}

func (e *Exporter) incidentRow(inc *triage.Incident, version uint64, now time.Time) IncidentRow {
	r := IncidentRow{ID: inc.ID, Key: inc.Key, Title: inc.Title, Status: string(inc.Status), Priority: inc.Priority,
		Severity: inc.Severity, CI: inc.CI, Service: inc.Service, AssignmentGroup: inc.AssignmentGroup,
		AlertCount: uint64(inc.AlertCount), EventCount: uint64(max(inc.EventCount, 0)), OpenedAt: inc.OpenedAt,
		AcknowledgedAt: tv(inc.AcknowledgedAt), ResolvedAt: tv(inc.ResolvedAt), ReopenCount: uint64(max(inc.ReopenCount, 0)),
		RootCauseCI: inc.RootCause.CI, UserImpactMinutes: UserImpactMinutes(inc, e.o.Weights, now), Version: version}
	if inc.ProblemID != nil {
		r.ProblemID = *inc.ProblemID
	}
	if inc.MergedInto != nil {
		// Its alerts now count in the incident it was merged into: queries
		// leave out status 'merged', as GET /api/v1/kpi does.
		r.Status = "merged"
	}
	return r
}

func alertRow(inc *triage.Incident, a *triage.Alert, version uint64) AlertRow {
	return AlertRow{IncidentID: inc.ID, Fingerprint: a.Fingerprint, Status: string(a.Status), Severity: a.Severity,
		CI: a.CI, Service: a.Labels["service"], Alertname: a.Labels["alertname"], Count: uint64(max(a.Count, 0)),
		FirstSeen: a.FirstSeen, LastSeen: a.LastSeen, Version: version}
}

// slaRow reads an SLA timeline entry the SLA tracker wrote.
func slaRow(inc *triage.Incident, t triage.TimelineEntry) (SLAEventRow, bool) {
	c, ok := tracker.ParseMessage(t)
	if !ok {
		return SLAEventRow{}, false
	}
	return SLAEventRow{IncidentID: inc.ID, Seq: t.Seq, Time: t.Time, Kind: string(c.Kind), Target: string(c.Target),
		Policy: c.Policy, Fraction: c.Threshold, Priority: inc.Priority, Service: inc.Service}, true
}

func feedbackRow(inc *triage.Incident, t triage.TimelineEntry) FeedbackRow {
	r := FeedbackRow{IncidentID: inc.ID, Seq: t.Seq, Time: t.Time, Service: inc.Service}
	msg := strings.TrimPrefix(t.Message, "score ")
	score, rest, _ := strings.Cut(msg, "/5")
	if n, err := strconv.Atoi(score); err == nil && n >= 1 && n <= 5 {
		r.Score = uint8(n)
	}
	r.Comment = strings.TrimPrefix(rest, ": ")
	return r
}
