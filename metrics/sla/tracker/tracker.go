package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/metrics/sla"
)

// Source is where the tracker reads incidents and their changes: the
// engine's store.
type Source interface {
	Changes(after uint64, limit int) ([]correlate.Change, error)
	OpenSnapshot() ([]triage.Incident, uint64, error)
	Incident(id uint64) (*triage.Incident, error)
}

// Recorder writes crossings onto incidents' timelines: the correlation
// service. A Note that returns nil is durable. When the Recorder also has
// Sync(context.Context) error, the tracker calls it before each read of
// the feed (see Step).
type Recorder interface {
	Note(ctx context.Context, id uint64, kind, actor, text string) error
}

// syncer is what a Recorder that can make the Source current has.
type syncer interface {
	Sync(ctx context.Context) error
}

// Options configure a Tracker.
type Options struct {
	// Set holds the policies and calendars; required.
	Set *sla.Set
	// Source is the store; required.
	Source Source
	// Recorder is the correlation service; required.
	Recorder Recorder
	// PollInterval is how often Run reads the feed when no crossing is due
	// sooner (default 1s).
	PollInterval time.Duration
	// Now is the clock crossings are evaluated at (default time.Now). Give
	// the service the same clock.
	Now      func() time.Time
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// Tracker writes SLA warnings and breaches onto incident timelines. Its
// state lives in memory and is rebuilt from the store at start.
type Tracker struct {
	opts Options
	log  *slog.Logger
	m    *metrics
	sync syncer // nil when the Recorder cannot sync

	mu      sync.Mutex // one step at a time
	loaded  bool       // the open incidents have been read
	cursor  uint64     // the last change applied
	tracked map[uint64]*incident
	// refresh are incidents to read again in full before the next
	// evaluation: new ones, and ones whose policy may have changed.
	refresh map[uint64]bool
}

// incident is what the tracker knows of one incident.
type incident struct {
	id                uint64
	key               string
	seq               uint64 // the last timeline entry applied
	priority, service string
	policy            *sla.Policy // nil: no policy matches
	cal               *sla.Calendar
	in                sla.Incident
	// firstResolved is the first resolution: the acknowledgement of an
	// incident resolved without one (see reopen).
	firstResolved *time.Time
	// recorded is the highest threshold on the timeline, by target.
	recorded map[sla.Target]float64
	// next is when the next crossing is due; zero when none is ahead.
	next    time.Time
	dirty   bool // changed or failed since the last evaluation
	stopped bool // resolved: forget it after a clean evaluation
}

type metrics struct {
	warnings, breaches *prometheus.CounterVec
	tracked            prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		warnings: f.NewCounterVec(prometheus.CounterOpts{Name: "triage_sla_warnings_total",
			Help: "SLA warnings written onto incident timelines, by policy and target."}, []string{"policy", "target"}),
		breaches: f.NewCounterVec(prometheus.CounterOpts{Name: "triage_sla_breaches_total",
			Help: "SLA breaches written onto incident timelines, by policy and target."}, []string{"policy", "target"}),
		tracked: f.NewGauge(prometheus.GaugeOpts{Name: "triage_sla_tracked_incidents",
			Help: "Open incidents whose SLA the tracker measures (a policy matches them)."}),
	}
}

// New returns a tracker; it reads nothing until its first step.
func New(opts Options) (*Tracker, error) {
	switch {
	case opts.Set == nil:
		return nil, errors.New("sla tracker: Options.Set is required")
	case opts.Source == nil:
		return nil, errors.New("sla tracker: Options.Source is required")
	case opts.Recorder == nil:
		return nil, errors.New("sla tracker: Options.Recorder is required")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	t := &Tracker{opts: opts, log: opts.Logger, m: newMetrics(opts.Registry),
		tracked: map[uint64]*incident{}, refresh: map[uint64]bool{}}
	t.sync, _ = opts.Recorder.(syncer)
	return t, nil
}

// Run steps until ctx is cancelled: every PollInterval, or at the instant
// the next crossing is due when that is sooner. Errors of a step are
// logged and the step is retried; Run returns nil when ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		t.mu.Lock()
		next, err := t.step(ctx)
		t.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			t.log.Warn("sla tracker: step failed; retrying", "err", err)
		}
		wait := t.opts.PollInterval
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(t.opts.Now()), 0))
		}
		timer.Reset(wait)
	}
}

// Step reads the clock, syncs the Recorder when it can, applies the new
// changes of the feed (the first step reads the open incidents first),
// and writes the crossings reached by then that are not recorded yet. It
// returns the errors of reads and of Notes; what failed is retried at the
// next step. Tests drive it with a manual clock; Run calls it.
func (t *Tracker) Step(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := t.step(ctx)
	return err
}

// step is Step; it also returns when the next crossing is due (zero when
// none is ahead).
func (t *Tracker) step(ctx context.Context) (time.Time, error) {
	// The clock is read first: every change made before it (the service
	// stamps changes with the same clock) is in the feed after the sync,
	// so an acknowledgement just before a deadline is never missed.
	now := t.opts.Now()
	if t.sync != nil {
		if err := t.sync.Sync(ctx); err != nil {
			return time.Time{}, fmt.Errorf("syncing the store: %w", err)
		}
	}
	if !t.loaded {
		if err := t.load(); err != nil {
			return time.Time{}, err
		}
	}
	if err := t.follow(); err != nil {
		// Evaluating without the newest changes could write a breach an
		// acknowledgement prevented: wait for the feed.
		return time.Time{}, err
	}
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(t.refresh)) {
		if err := t.reread(id); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(t.refresh, id)
	}
	var next time.Time
	for _, id := range slices.Sorted(maps.Keys(t.tracked)) {
		st := t.tracked[id]
		if t.refresh[id] {
			continue // stale until it is read again
		}
		if st.dirty || (!st.next.IsZero() && !now.Before(st.next)) {
			if err := t.evaluate(ctx, st, now); err != nil {
				errs = append(errs, err)
			}
		}
		if st.stopped && !st.dirty {
			delete(t.tracked, id)
			continue
		}
		if !st.next.IsZero() && (next.IsZero() || st.next.Before(next)) {
			next = st.next
		}
	}
	t.setGauge()
	return next, errors.Join(errs...)
}

// load reads the open incidents and the feed position as of one instant.
func (t *Tracker) load() error {
	open, cursor, err := t.opts.Source.OpenSnapshot()
	if err != nil {
		return fmt.Errorf("reading the open incidents: %w", err)
	}
	t.tracked = map[uint64]*incident{}
	t.refresh = map[uint64]bool{}
	for _, inc := range open {
		t.refresh[inc.ID] = true
	}
	t.cursor = cursor
	t.loaded = true
	t.log.Info("sla tracker: following the change feed", "open_incidents", len(open), "from_change", cursor)
	return nil
}

// follow applies the changes after the cursor.
func (t *Tracker) follow() error {
	const batch = 1000
	for {
		changes, err := t.opts.Source.Changes(t.cursor, batch)
		if err != nil {
			return fmt.Errorf("reading the change feed: %w", err)
		}
		for _, ch := range changes {
			t.apply(ch)
			t.cursor = ch.Entry.Seq
		}
		if len(changes) < batch {
			return nil
		}
	}
}

// refreshKinds are the changes after which an incident is read again:
// its priority, service or opened_at may have changed, or it reopened.
var refreshKinds = map[string]bool{
	triage.KindOpened:          true,
	triage.KindAlertAdded:      true,
	triage.KindSeverityChanged: true,
	triage.KindMerged:          true,
	triage.KindReopened:        true,
	triage.KindPriorityChanged: true,
}

// apply takes one change of the feed.
func (t *Tracker) apply(ch correlate.Change) {
	id := ch.IncidentID
	if t.refresh[id] {
		return // the read covers it
	}
	st := t.tracked[id]
	if st == nil {
		// Only an opening or a reopening makes an incident the tracker
		// does not hold an open one.
		if ch.Entry.Kind == triage.KindOpened || ch.Entry.Kind == triage.KindReopened {
			t.refresh[id] = true
		}
		return
	}
	if ch.Entry.Seq <= st.seq {
		return // already in what was read
	}
	if refreshKinds[ch.Entry.Kind] {
		t.refresh[id] = true
		return
	}
	st.apply(ch.Entry)
}

// reread reads an incident in full and rebuilds what the tracker knows of
// it, keeping the crossings it recorded meanwhile.
func (t *Tracker) reread(id uint64) error {
	inc, err := t.opts.Source.Incident(id)
	if errors.Is(err, correlate.ErrNotFound) {
		delete(t.tracked, id)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", triage.IncidentKey(id), err)
	}
	old := t.tracked[id]
	if inc.MergedInto != nil {
		delete(t.tracked, id)
		return nil
	}
	st := rebuild(inc)
	if old != nil {
		for tg, f := range old.recorded {
			st.recorded[tg] = max(st.recorded[tg], f)
		}
	}
	st.policy = t.opts.Set.Select(st.priority, st.service)
	if st.policy != nil {
		st.cal = t.opts.Set.Calendar(st.policy.Calendar)
	}
	if old != nil && policyName(old.policy) != policyName(st.policy) {
		t.log.Info("sla tracker: policy changed", "incident", inc.Key, "priority", st.priority,
			"service", st.service, "from", policyName(old.policy), "to", policyName(st.policy))
	}
	t.tracked[id] = st
	return nil
}

func policyName(p *sla.Policy) string {
	if p == nil {
		return ""
	}
	return p.Name
}

// rebuild derives an incident's SLA inputs from its record and timeline.
func rebuild(inc *triage.Incident) *incident {
	st := &incident{id: inc.ID, key: inc.Key, priority: inc.Priority, service: inc.Service,
		in: sla.Incident{OpenedAt: inc.OpenedAt}, recorded: map[sla.Target]float64{}, dirty: true}
	for _, e := range inc.Timeline {
		st.apply(e)
	}
	// The record is authoritative where the timeline is silent.
	if st.in.AcknowledgedAt == nil && inc.AcknowledgedAt != nil {
		at := *inc.AcknowledgedAt
		st.in.AcknowledgedAt = &at
	}
	if inc.Status == triage.IncidentResolved && st.in.ResolvedAt == nil && inc.ResolvedAt != nil {
		at := *inc.ResolvedAt
		st.in.ResolvedAt = &at
		st.stopped = true
	}
	return st
}

// apply takes one timeline entry of the incident, in order.
func (st *incident) apply(e triage.TimelineEntry) {
	st.seq = max(st.seq, e.Seq)
	at := e.Time
	switch e.Kind {
	case triage.KindAcknowledged:
		if st.in.AcknowledgedAt == nil {
			st.in.AcknowledgedAt = &at
		}
	case triage.KindResolved:
		if st.in.ResolvedAt != nil {
			return
		}
		st.endHold(at)
		st.in.ResolvedAt = &at
		if st.firstResolved == nil {
			st.firstResolved = &at
		}
		st.stopped = true
	case triage.KindReopened:
		if st.in.ResolvedAt == nil {
			return
		}
		// The clocks resume where they stopped: the resolved time is a
		// pause, and a resolution without acknowledgement counts as one.
		if st.in.AcknowledgedAt == nil {
			ack := *st.in.ResolvedAt
			if st.firstResolved != nil {
				ack = *st.firstResolved
			}
			st.in.AcknowledgedAt = &ack
		}
		st.in.Pauses = append(st.in.Pauses, sla.Interval{From: *st.in.ResolvedAt, To: at})
		st.in.ResolvedAt = nil
		st.stopped = false
	case triage.KindOnHold:
		if st.in.ResolvedAt == nil && !st.onHold() {
			st.in.Pauses = append(st.in.Pauses, sla.Interval{From: at})
		}
	case triage.KindOffHold:
		st.endHold(at)
	case triage.KindSLAWarning, triage.KindSLABreach:
		if c, ok := ParseMessage(e); ok {
			st.recorded[c.Target] = max(st.recorded[c.Target], c.Threshold)
		}
		return // changes no input
	default:
		return
	}
	st.dirty = true
}

func (st *incident) onHold() bool {
	n := len(st.in.Pauses)
	return n > 0 && st.in.Pauses[n-1].To.IsZero()
}

func (st *incident) endHold(at time.Time) {
	if st.onHold() {
		st.in.Pauses[len(st.in.Pauses)-1].To = at
	}
}

// thresholdEpsilon absorbs the rounding of thresholds written as
// percentages.
const thresholdEpsilon = 1e-6

// evaluate writes the crossings of st reached by now and not recorded,
// the highest per target, and sets when the next one is due.
func (t *Tracker) evaluate(ctx context.Context, st *incident, now time.Time) error {
	st.dirty = false
	st.next = time.Time{}
	if st.policy == nil || st.cal == nil {
		return nil
	}
	var due []sla.Crossing
	for _, c := range sla.Crossings(st.policy, st.cal, st.in, time.Time{}, now) {
		if c.Threshold <= st.recorded[c.Target]+thresholdEpsilon {
			continue
		}
		// Crossings are ordered by instant, then threshold: a later one
		// of the same target supersedes an earlier one.
		if i := slices.IndexFunc(due, func(d sla.Crossing) bool { return d.Target == c.Target }); i >= 0 {
			if c.Threshold > due[i].Threshold {
				due[i] = c
			}
			continue
		}
		due = append(due, c)
	}
	var errs []error
	if len(due) > 0 {
		deadlines := map[sla.Target]time.Time{}
		for _, s := range sla.Evaluate(st.policy, st.cal, st.in, now) {
			deadlines[s.Target] = s.Deadline
		}
		for _, c := range due {
			if err := t.record(ctx, st, c, deadlines[c.Target]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		st.dirty = true // retried at the next step
	}
	if next, ok := sla.NextEvent(st.policy, st.cal, st.in, now); ok {
		st.next = next
	}
	return errors.Join(errs...)
}

// record writes one crossing and marks it recorded once it is durable.
func (t *Tracker) record(ctx context.Context, st *incident, c sla.Crossing, deadline time.Time) error {
	kind, counter := triage.KindSLAWarning, t.m.warnings
	if c.Kind == sla.Breach {
		kind, counter = triage.KindSLABreach, t.m.breaches
	}
	msg := FormatMessage(c, st.policy, st.cal, deadline)
	if err := t.opts.Recorder.Note(ctx, st.id, kind, Actor, msg); err != nil {
		if errors.Is(err, correlate.ErrNotFound) {
			// Gone from the store: nothing left to record on.
			st.stopped = true
			return nil
		}
		return fmt.Errorf("recording %s on %s: %w", kind, st.key, err)
	}
	st.recorded[c.Target] = max(st.recorded[c.Target], c.Threshold)
	counter.WithLabelValues(st.policy.Name, string(c.Target)).Inc()
	t.log.Info("sla tracker: "+kind, "incident", st.key, "policy", st.policy.Name, "target", c.Target,
		"threshold", c.Threshold, "at", c.At, "message", msg)
	return nil
}

func (t *Tracker) setGauge() {
	n := 0
	for _, st := range t.tracked {
		if st.policy != nil && !st.stopped {
			n++
		}
	}
	t.m.tracked.Set(float64(n))
}
