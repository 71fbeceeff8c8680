package correlate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/triage-dev/triage"
)

// ErrStopped is returned for work submitted after the service stopped.
var ErrStopped = errors.New("correlation service stopped")

// ServiceOptions configure a Service.
type ServiceOptions struct {
	Store *Store
	// NewEngine builds an empty engine; the service calls it at start and
	// again to rebuild state from the store after a failed commit.
	NewEngine func() *Engine
	Now       func() time.Time
	Logger    *slog.Logger
	Registry  prometheus.Registerer
	// MaxBatch caps the events applied and committed in one transaction.
	MaxBatch int
	// TickInterval is how often timers (auto-resolve) run without traffic.
	TickInterval time.Duration
	// EventRetention is how long the event log keeps every received event
	// (for audit and export); 0 keeps no event log. Incidents and alerts,
	// with their counts, are kept either way.
	EventRetention time.Duration
}

// Service owns the Engine and the Store. Submissions from any goroutine are
// applied in arrival order by one goroutine (Run), committed together in
// batches, and acknowledged only once on disk: many concurrent senders
// share one fsync.
type Service struct {
	opts     ServiceOptions
	engine   *Engine
	in       chan *op
	stopped  chan struct{} // closed when Run stops taking work
	finished chan struct{} // closed when Run has returned
	running  atomic.Bool
	m        *serviceMetrics
	log      *slog.Logger
}

type op struct {
	events []triage.Event
	cmd    func(e *Engine, now time.Time) error
	// archived runs after the commit when cmd found no live incident.
	archived func(s *Store, now time.Time) error
	err      error
	done     chan error
}

type serviceMetrics struct {
	events, duplicates, opened, ignored, commitErrors prometheus.Counter
	open, liveAlerts                                  prometheus.Gauge
	commitSeconds, commitEvents                       prometheus.Histogram
}

func newServiceMetrics(reg prometheus.Registerer) *serviceMetrics {
	f := promauto.With(reg)
	return &serviceMetrics{
		events: f.NewCounter(prometheus.CounterOpts{Name: "triage_correlate_events_total",
			Help: "Events applied to the correlation engine."}),
		duplicates: f.NewCounter(prometheus.CounterOpts{Name: "triage_correlate_duplicates_total",
			Help: "Events that repeated a known alert and were deduplicated."}),
		opened: f.NewCounter(prometheus.CounterOpts{Name: "triage_correlate_incidents_opened_total",
			Help: "Incidents opened."}),
		ignored: f.NewCounter(prometheus.CounterOpts{Name: "triage_correlate_ignored_total",
			Help: "Resolved notifications for alerts never seen firing."}),
		commitErrors: f.NewCounter(prometheus.CounterOpts{Name: "triage_store_commit_errors_total",
			Help: "Failed state commits; their senders got an error."}),
		open: f.NewGauge(prometheus.GaugeOpts{Name: "triage_correlate_incidents_open",
			Help: "Incidents not resolved."}),
		liveAlerts: f.NewGauge(prometheus.GaugeOpts{Name: "triage_correlate_alerts_live",
			Help: "Alerts held in memory (their incidents are open or within the reopen window)."}),
		commitSeconds: f.NewHistogram(prometheus.HistogramOpts{Name: "triage_store_commit_duration_seconds",
			Help: "Time to commit one batch durably.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		commitEvents: f.NewHistogram(prometheus.HistogramOpts{Name: "triage_store_commit_events",
			Help: "Events per committed batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
	}
}

// NewService rebuilds the live state from the store and returns a service
// ready to Run.
func NewService(opts ServiceOptions) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 20000
	}
	if opts.TickInterval <= 0 {
		opts.TickInterval = time.Second
	}
	s := &Service{
		opts:     opts,
		in:       make(chan *op, 4096),
		stopped:  make(chan struct{}),
		finished: make(chan struct{}),
		m:        newServiceMetrics(opts.Registry),
		log:      opts.Logger,
	}
	e, err := s.rebuild()
	if err != nil {
		return nil, err
	}
	s.engine = e
	s.m.open.Set(float64(e.OpenIncidents()))
	s.m.liveAlerts.Set(float64(e.LiveAlerts()))
	return s, nil
}

func (s *Service) rebuild() (*Engine, error) {
	e := s.opts.NewEngine()
	if err := s.opts.Store.Restore(e); err != nil {
		return nil, fmt.Errorf("restoring state: %w", err)
	}
	return e, nil
}

// Ready reports whether the service is running and accepting work.
func (s *Service) Ready() bool { return s.running.Load() }

// Submit applies events and returns once they and their effects are
// durable. An error means the events may or may not have been applied;
// resending them is safe (deduplication).
func (s *Service) Submit(ctx context.Context, events []triage.Event) error {
	return s.do(ctx, &op{events: events})
}

// Acknowledge acknowledges an incident.
func (s *Service) Acknowledge(ctx context.Context, id uint64, actor string) error {
	return s.do(ctx, &op{cmd: func(e *Engine, now time.Time) error { return e.Acknowledge(id, actor, now) }})
}

// Resolve resolves an incident by hand.
func (s *Service) Resolve(ctx context.Context, id uint64, actor, note string) error {
	return s.do(ctx, &op{cmd: func(e *Engine, now time.Time) error { return e.Resolve(id, actor, note, now) }})
}

// Comment adds a comment to an incident's timeline, live or not.
func (s *Service) Comment(ctx context.Context, id uint64, actor, text string) error {
	o := &op{cmd: func(e *Engine, now time.Time) error { return e.Comment(id, actor, text, now) }}
	o.archived = func(st *Store, now time.Time) error {
		return st.AppendTimeline(id, triage.TimelineEntry{Time: now, Kind: triage.KindComment, Actor: actor, Message: text})
	}
	return s.do(ctx, o)
}

func (s *Service) do(ctx context.Context, o *op) error {
	o.done = make(chan error, 1)
	select {
	case <-s.stopped:
		return ErrStopped
	default:
	}
	select {
	case s.in <- o:
	case <-s.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-o.done:
		return err
	case <-s.finished:
		select {
		case err := <-o.done:
			return err
		default:
			return ErrStopped // queued after the last drain: not applied
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run applies submissions until ctx is cancelled, then finishes what was
// already queued and returns. Stop the producers (HTTP, Kafka) first.
func (s *Service) Run(ctx context.Context) error {
	s.running.Store(true)
	defer s.running.Store(false)
	defer close(s.finished)
	tick := time.NewTicker(s.opts.TickInterval)
	defer tick.Stop()
	lastPrune := s.opts.Now()
	for {
		var batch []*op
		select {
		case <-ctx.Done():
			close(s.stopped)
			s.running.Store(false)
			for {
				batch = s.collect(nil)
				if len(batch) == 0 {
					return nil
				}
				s.step(batch)
			}
		case o := <-s.in:
			batch = s.collect([]*op{o})
		case <-tick.C:
		}
		s.step(batch)
		if s.opts.EventRetention > 0 && s.opts.Now().Sub(lastPrune) >= time.Minute {
			lastPrune = s.opts.Now()
			s.prune(lastPrune)
		}
	}
}

// collect adds whatever is queued, up to MaxBatch events, without waiting.
func (s *Service) collect(batch []*op) []*op {
	n := 0
	for _, o := range batch {
		n += len(o.events)
	}
	for n < s.opts.MaxBatch {
		select {
		case o := <-s.in:
			batch = append(batch, o)
			n += len(o.events)
		default:
			return batch
		}
	}
	return batch
}

func (s *Service) step(batch []*op) {
	now := s.opts.Now()
	s.engine.Tick(now)
	var events []triage.Event
	for _, o := range batch {
		for i := range o.events {
			r := s.engine.Process(&o.events[i], now)
			switch {
			case r.Duplicate:
				s.m.duplicates.Inc()
			case r.NewIncident:
				s.m.opened.Inc()
			case r.Ignored:
				s.m.ignored.Inc()
			}
		}
		s.m.events.Add(float64(len(o.events)))
		events = append(events, o.events...)
		if o.cmd != nil {
			o.err = o.cmd(s.engine, now)
		}
	}
	ch := s.engine.Flush()
	if len(events) > 0 || !ch.Empty() {
		start := time.Now()
		logged := events
		if s.opts.EventRetention <= 0 {
			logged = nil
		}
		err := s.opts.Store.Commit(logged, now, &ch, s.engine.LastID())
		s.m.commitSeconds.Observe(time.Since(start).Seconds())
		s.m.commitEvents.Observe(float64(len(events)))
		if err != nil {
			s.m.commitErrors.Inc()
			s.log.Error("commit failed; rebuilding state from the store", "err", err, "events", len(events))
			if e, rerr := s.rebuild(); rerr == nil {
				s.engine = e
			} else {
				s.log.Error("rebuilding state failed", "err", rerr)
			}
			for _, o := range batch {
				o.done <- err
			}
			return
		}
	}
	s.m.open.Set(float64(s.engine.OpenIncidents()))
	s.m.liveAlerts.Set(float64(s.engine.LiveAlerts()))
	for _, o := range batch {
		if o.archived != nil && errors.Is(o.err, ErrNotFound) {
			o.err = o.archived(s.opts.Store, now)
		}
		o.done <- o.err
	}
}

func (s *Service) prune(now time.Time) {
	n, err := s.opts.Store.PruneEvents(now.Add(-s.opts.EventRetention), 50000)
	if err != nil {
		s.log.Warn("pruning the event log failed", "err", err)
		return
	}
	if n > 0 {
		s.log.Debug("pruned the event log", "events", n)
	}
}
