package correlate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
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
	// WALDir holds the write-ahead log; DataDir/wal in the daemon.
	WALDir string
	// WALSegmentBytes is the size at which the log starts a new segment file.
	WALSegmentBytes int64
	// NewEngine builds an empty engine, which the service fills from the store.
	NewEngine func() *Engine
	Now       func() time.Time
	Logger    *slog.Logger
	Registry  prometheus.Registerer
	// MaxBatch caps the events applied and logged in one step.
	MaxBatch int
	// TickInterval is how often timers (auto-resolve) run without traffic.
	TickInterval time.Duration
	// CheckpointInterval is how long logged records gather before they are
	// applied to the store in one transaction (sooner when a reader waits).
	CheckpointInterval time.Duration
	// EventRetention is how long the event log keeps every received event
	// (for audit and export); 0 keeps no event log. Incidents and alerts,
	// with their counts, are kept either way.
	EventRetention time.Duration
}

// Service owns the Engine, the write-ahead log and the Store. Submissions
// from any goroutine are applied in arrival order by one goroutine (Run);
// each step's writes become one log record. A log writer goroutine writes
// the records queued meanwhile with one write and one fsync (a group
// commit), and only then are their submitters answered: many concurrent
// senders share one small sequential write, and the engine works on the
// next step while the disk syncs the last. A checkpointer goroutine applies
// logged records to the Store in batches; after a crash, the records the
// Store lacks are replayed from the log at start. Readers call Sync to see
// every write acknowledged before their read began.
type Service struct {
	opts     ServiceOptions
	engine   *Engine
	wal      *WAL
	builder  recordBuilder
	in       chan *op
	toWAL    chan *walBatch // steps in order, to the log writer
	ckq      *ckptQueue     // logged records, to the checkpointer
	stopped  chan struct{}  // closed when Run stops taking work
	finished chan struct{}  // closed when Run has returned
	running  atomic.Bool
	m        *serviceMetrics
	log      *slog.Logger

	offsets map[string]int64 // last applied offset by source partition; the Run goroutine's

	logged    atomic.Uint64 // LSN of the last record on disk
	walFailed chan struct{} // closed when the log cannot be written; walErr says why
	walErr    error
	mu        sync.Mutex
	applied   uint64        // LSN of the last record in the Store
	advance   chan struct{} // closed and replaced when applied moves
	syncReq   chan struct{} // a reader waits: checkpoint now
	ckptErr   error         // the checkpointer's last error, nil when healthy

	archivedMu sync.Mutex // serialises changes to archived incidents' records

	noCheckpoint bool // tests: drop records instead of applying them (a crash before any checkpoint)
}

type op struct {
	events []triage.Event
	// msgs, instead of events, come from partitioned sources: each applied
	// at most once, by offset.
	msgs    []Message
	applied int // msgs: events applied (not redelivered)
	cmd     func(e *Engine, now time.Time) error
	// archived is a timeline entry for an incident that only the Store
	// holds (evicted from the engine); its time is set by the step.
	archived *TimelineChange
	// archivedInc is the new record of an incident only the Store holds.
	archivedInc *triage.Incident
	err         error
	done        chan error
}

func (o *op) size() int {
	n := len(o.events)
	for _, m := range o.msgs {
		n += len(m.Events)
	}
	return n
}

type serviceMetrics struct {
	events, duplicates, opened, ignored, ckptErrors, redelivered prometheus.Counter
	open, liveAlerts, walSegments                                prometheus.Gauge
	walSeconds, ckptSeconds, stepEvents                          prometheus.Histogram
	dropped                                                      *prometheus.CounterVec
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
		dropped: f.NewCounterVec(prometheus.CounterOpts{Name: "triage_rules_dropped_events_total",
			Help: "Events dropped by a drop rule or a suppressing maintenance window, by rule name."}, []string{"rule"}),
		redelivered: f.NewCounter(prometheus.CounterOpts{Name: "triage_correlate_redelivered_messages_total",
			Help: "Source messages skipped because their offset was already applied (redelivery after a crash or rebalance)."}),
		ckptErrors: f.NewCounter(prometheus.CounterOpts{Name: "triage_store_checkpoint_errors_total",
			Help: "Failed checkpoints of the write-ahead log into the store; retried."}),
		open: f.NewGauge(prometheus.GaugeOpts{Name: "triage_correlate_incidents_open",
			Help: "Incidents not resolved."}),
		liveAlerts: f.NewGauge(prometheus.GaugeOpts{Name: "triage_correlate_alerts_live",
			Help: "Alerts held in memory (their incidents are open or within the reopen window)."}),
		walSegments: f.NewGauge(prometheus.GaugeOpts{Name: "triage_store_wal_segments",
			Help: "Write-ahead log segment files not yet released by a checkpoint."}),
		walSeconds: f.NewHistogram(prometheus.HistogramOpts{Name: "triage_store_wal_append_duration_seconds",
			Help: "Time to write and fsync one step's record to the write-ahead log.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		ckptSeconds: f.NewHistogram(prometheus.HistogramOpts{Name: "triage_store_checkpoint_duration_seconds",
			Help: "Time to apply a batch of logged records to the store.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		stepEvents: f.NewHistogram(prometheus.HistogramOpts{Name: "triage_store_step_events",
			Help: "Events logged per write-ahead log sync (the steps of one group commit).", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
	}
}

// NewService replays the write-ahead log into the store, rebuilds the live
// state from the store, and returns a service ready to Run.
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
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = time.Second
	}
	if opts.WALDir == "" {
		return nil, errors.New("correlate: ServiceOptions.WALDir is required")
	}
	s := &Service{
		opts:      opts,
		in:        make(chan *op, 4096),
		toWAL:     make(chan *walBatch, walQueue),
		ckq:       newCkptQueue(maxQueuedBytes, earlyCheckpointBytes),
		walFailed: make(chan struct{}),
		stopped:   make(chan struct{}),
		finished:  make(chan struct{}),
		advance:   make(chan struct{}),
		syncReq:   make(chan struct{}, 1),
		m:         newServiceMetrics(opts.Registry),
		log:       opts.Logger,
	}
	pos, err := opts.Store.Positions()
	if err != nil {
		return nil, fmt.Errorf("reading store positions: %w", err)
	}
	var pending []*Record
	w, err := OpenWAL(opts.WALDir, pos.WALLSN, opts.WALSegmentBytes, func(r *Record) error {
		pending = append(pending, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(pending) > 0 {
		if err := opts.Store.Apply(pending); err != nil {
			w.Close()
			return nil, fmt.Errorf("replaying the write-ahead log: %w", err)
		}
		s.log.Info("replayed the write-ahead log", "records", len(pending), "from", pending[0].LSN, "to", pending[len(pending)-1].LSN)
		if pos, err = opts.Store.Positions(); err != nil {
			w.Close()
			return nil, fmt.Errorf("reading store positions: %w", err)
		}
	}
	if err := w.Release(pos.WALLSN); err != nil {
		s.log.Warn("releasing wal segments", "err", err)
	}
	s.wal = w
	s.builder = recordBuilder{pos: pos}
	if s.offsets, err = opts.Store.Offsets(); err != nil {
		w.Close()
		return nil, fmt.Errorf("reading source offsets: %w", err)
	}
	s.applied = pos.WALLSN
	s.logged.Store(pos.WALLSN)
	e := opts.NewEngine()
	if err := opts.Store.Restore(e); err != nil {
		w.Close()
		return nil, fmt.Errorf("restoring state: %w", err)
	}
	s.engine = e
	s.m.open.Set(float64(e.OpenIncidents()))
	s.m.liveAlerts.Set(float64(e.LiveAlerts()))
	s.m.walSegments.Set(float64(w.Segments()))
	return s, nil
}

// Ready reports whether the service is running, accepting work, and able
// to checkpoint.
func (s *Service) Ready() bool {
	s.mu.Lock()
	healthy := s.ckptErr == nil
	s.mu.Unlock()
	return s.running.Load() && healthy
}

// Message is the events of one message of a partitioned source (a Kafka
// topic partition), at its offset.
type Message struct {
	Partition string // "topic/partition"
	Offset    int64
	Events    []triage.Event
}

// SubmitMessages applies messages and returns once they and the offsets
// are durable. A message at or below the last applied offset of its
// partition is a redelivery (after a crash or a rebalance) and is skipped,
// so that redelivery never counts an event twice. It returns the events
// applied.
func (s *Service) SubmitMessages(ctx context.Context, msgs []Message) (int, error) {
	o := &op{msgs: msgs}
	err := s.do(ctx, o)
	return o.applied, err
}

// Submit applies events and returns once they and their effects are
// durable. An error means the events may or may not have been applied;
// resending them is safe (deduplication).
func (s *Service) Submit(ctx context.Context, events []triage.Event) error {
	return s.do(ctx, &op{events: events})
}

// Acknowledge acknowledges an incident. An incident resolved long ago (no
// longer in the engine) is ErrConflict, as a resolved live one is.
func (s *Service) Acknowledge(ctx context.Context, id uint64, actor string) error {
	err := s.do(ctx, &op{cmd: func(e *Engine, now time.Time) error { return e.Acknowledge(id, actor, now) }})
	if errors.Is(err, ErrNotFound) {
		if ok, herr := s.archived(ctx, id); herr != nil || ok {
			return cmpOr(herr, fmt.Errorf("acknowledge %s: %w: it is resolved", triage.IncidentKey(id), ErrConflict))
		}
	}
	return err
}

// Resolve resolves an incident by hand. Resolving a resolved incident, live
// or archived, changes nothing.
func (s *Service) Resolve(ctx context.Context, id uint64, actor, note string) error {
	err := s.do(ctx, &op{cmd: func(e *Engine, now time.Time) error { return e.Resolve(id, actor, note, now) }})
	if errors.Is(err, ErrNotFound) {
		if ok, herr := s.archived(ctx, id); herr != nil || ok {
			return herr
		}
	}
	return err
}

// Comment adds a comment to an incident's timeline, live or archived.
func (s *Service) Comment(ctx context.Context, id uint64, actor, text string) error {
	err := s.do(ctx, &op{cmd: func(e *Engine, now time.Time) error { return e.Comment(id, actor, text, now) }})
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	if ok, herr := s.archived(ctx, id); herr != nil || !ok {
		return cmpOr(herr, err)
	}
	return s.do(ctx, &op{archived: &TimelineChange{IncidentID: id,
		Entry: triage.TimelineEntry{Kind: triage.KindComment, Actor: actor, Message: text}}})
}

// Note adds a timeline entry of the given kind to an incident, live or
// archived: what a connector did or could not do, an assignment made in a
// ticket system.
func (s *Service) Note(ctx context.Context, id uint64, kind, actor, text string) error {
	err := s.do(ctx, &op{cmd: func(e *Engine, now time.Time) error { return e.Note(id, kind, actor, text, now) }})
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	if ok, herr := s.archived(ctx, id); herr != nil || !ok {
		return cmpOr(herr, err)
	}
	entry := triage.TimelineEntry{Kind: kind, Actor: actor, Message: text}
	if kind == triage.KindSLABreach { // the incident's breach count moves with it
		return s.updateArchived(ctx, id, func(inc *triage.Incident) bool { inc.SLABreaches++; return true }, entry)
	}
	return s.do(ctx, &op{archived: &TimelineChange{IncidentID: id, Entry: entry}})
}

// SetTicket records the incident's issue in a ticket system, live or
// archived, with a timeline entry. Recording the same ticket again changes
// nothing.
func (s *Service) SetTicket(ctx context.Context, id uint64, t triage.Ticket, actor string) error {
	err := s.do(ctx, &op{cmd: func(e *Engine, now time.Time) error { return e.SetTicket(id, t, actor, now) }})
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	return s.updateArchived(ctx, id, func(inc *triage.Incident) bool {
		if inc.Ticket != nil && *inc.Ticket == t {
			return false
		}
		inc.Ticket = &t
		return true
	}, triage.TimelineEntry{Kind: triage.KindTicket, Actor: actor, Message: TicketMessage(t)})
}

// SetProblem links an incident, live or archived, to a problem, with a
// timeline entry. Linking it to the same problem again changes nothing.
func (s *Service) SetProblem(ctx context.Context, id, problem uint64, actor string) error {
	err := s.do(ctx, &op{cmd: func(e *Engine, now time.Time) error { return e.SetProblem(id, problem, actor, now) }})
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	return s.updateArchived(ctx, id, func(inc *triage.Incident) bool {
		if inc.ProblemID != nil && *inc.ProblemID == problem {
			return false
		}
		inc.ProblemID = &problem
		return true
	}, triage.TimelineEntry{Kind: triage.KindProblem, Actor: actor, Message: "linked to problem " + triage.ProblemKey(problem)})
}

// updateArchived changes the record of an incident only the Store holds,
// with a timeline entry; change reports whether there is anything to do.
func (s *Service) updateArchived(ctx context.Context, id uint64, change func(*triage.Incident) bool, entry triage.TimelineEntry) error {
	// One read-modify-write at a time: two concurrent ones (a ticket
	// recorded while feedback arrives) would each lose the other's change.
	s.archivedMu.Lock()
	defer s.archivedMu.Unlock()
	if err := s.Sync(ctx); err != nil {
		return err
	}
	inc, err := s.opts.Store.Incident(id)
	if err != nil {
		return err
	}
	if !change(inc) {
		return nil
	}
	inc.Alerts, inc.Explanation, inc.Timeline = nil, nil, nil
	return s.do(ctx, &op{archivedInc: inc, archived: &TimelineChange{IncidentID: id, Entry: entry}})
}

// Feedback records a satisfaction score (1-5) on an incident, live or
// archived: feedback usually comes after resolution.
func (s *Service) Feedback(ctx context.Context, id uint64, f triage.Feedback) error {
	if f.Score < 1 || f.Score > 5 {
		return fmt.Errorf("score %d: %w", f.Score, ErrInvalid)
	}
	err := s.do(ctx, &op{cmd: func(e *Engine, now time.Time) error { return e.Feedback(id, f, now) }})
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	f.At = s.opts.Now()
	return s.updateArchived(ctx, id, func(inc *triage.Incident) bool {
		inc.Feedback = &f
		return true
	}, triage.TimelineEntry{Kind: triage.KindFeedback, Actor: f.Actor, Message: FeedbackMessage(f)})
}

// Hold puts an incident on hold (on) or takes it off hold.
func (s *Service) Hold(ctx context.Context, id uint64, on bool, actor, note string) error {
	err := s.do(ctx, &op{cmd: func(e *Engine, now time.Time) error { return e.Hold(id, on, actor, note, now) }})
	if errors.Is(err, ErrNotFound) {
		if ok, herr := s.archived(ctx, id); herr != nil || ok {
			return cmpOr(herr, fmt.Errorf("hold %s: %w: it is resolved", triage.IncidentKey(id), ErrConflict))
		}
	}
	return err
}

// Reopen reopens a resolved incident by hand. An incident past its reopen
// window cannot reopen: ErrConflict (a new alert opens a new incident).
func (s *Service) Reopen(ctx context.Context, id uint64, actor, note string) error {
	err := s.do(ctx, &op{cmd: func(e *Engine, now time.Time) error { return e.Reopen(id, actor, note, now) }})
	if errors.Is(err, ErrNotFound) {
		if ok, herr := s.archived(ctx, id); herr != nil || ok {
			return cmpOr(herr, fmt.Errorf("reopen %s: %w: it is past its reopen window", triage.IncidentKey(id), ErrConflict))
		}
	}
	return err
}

func (s *Service) process(events []triage.Event, now time.Time) {
	for i := range events {
		r := s.engine.Process(&events[i], now)
		switch {
		case r.Duplicate:
			s.m.duplicates.Inc()
		case r.NewIncident:
			s.m.opened.Inc()
		case r.Ignored:
			s.m.ignored.Inc()
		case r.Dropped:
			s.m.dropped.WithLabelValues(r.Rule).Inc()
		}
	}
	s.m.events.Add(float64(len(events)))
}

// Reconfigure swaps the topology, rules and grouper of the engine between
// two steps (a CMDB or rules reload). Incidents keep their alerts; the new
// grouper indexes the open ones.
func (s *Service) Reconfigure(ctx context.Context, topo *Topology, rules Rules, g Grouper) error {
	return s.do(ctx, &op{cmd: func(e *Engine, _ time.Time) error {
		e.Reconfigure(topo, rules, g)
		return nil
	}})
}

// archived reports whether the Store holds an incident the engine does not.
// It runs on the caller's goroutine, never the writer's.
func (s *Service) archived(ctx context.Context, id uint64) (bool, error) {
	if err := s.Sync(ctx); err != nil {
		return false, err
	}
	return s.opts.Store.HasIncident(id)
}

func cmpOr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Sync waits until the Store holds every write acknowledged before the
// call, so that a read after it sees them.
func (s *Service) Sync(ctx context.Context) error {
	target := s.logged.Load()
	for {
		s.mu.Lock()
		if s.applied >= target {
			s.mu.Unlock()
			return nil
		}
		wait := s.advance
		s.mu.Unlock()
		select {
		case s.syncReq <- struct{}{}:
		default: // a request is already pending
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.finished:
			s.mu.Lock()
			ok := s.applied >= target
			s.mu.Unlock()
			if ok {
				return nil
			}
			return ErrStopped
		}
	}
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
// already queued, checkpoints everything into the store and returns. Stop
// the producers (HTTP, Kafka) first. It returns an error when the
// write-ahead log cannot be written: the process should then stop, and a
// restart recovers from the log.
func (s *Service) Run(ctx context.Context) (err error) {
	s.running.Store(true)
	ckptDone := make(chan struct{})
	go func() {
		defer close(ckptDone)
		s.checkpointer()
	}()
	walDone := make(chan struct{})
	go func() {
		defer close(walDone)
		s.walWriter()
	}()
	defer func() {
		close(s.toWAL) // the writer logs and answers what it has, then stops
		<-walDone
		select {
		case <-s.walFailed: // also when it failed on the last steps, at shutdown
			if err == nil {
				err = s.walErr
			}
		default:
		}
		s.ckq.close()
		<-ckptDone
		if cerr := s.wal.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the write-ahead log: %w", cerr)
		}
		s.running.Store(false)
		close(s.finished)
	}()
	tick := time.NewTicker(s.opts.TickInterval)
	defer tick.Stop()
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
				if err := s.step(batch); err != nil {
					s.failQueued(err)
					return err
				}
			}
		case <-s.walFailed:
			close(s.stopped)
			s.failQueued(s.walErr)
			return s.walErr
		case o := <-s.in:
			batch = s.collect([]*op{o})
		case <-tick.C:
		}
		if err := s.step(batch); err != nil {
			close(s.stopped)
			s.failQueued(err)
			return err
		}
	}
}

// collect adds whatever is queued, up to MaxBatch events, without waiting.
func (s *Service) collect(batch []*op) []*op {
	n := 0
	for _, o := range batch {
		n += o.size()
	}
	for n < s.opts.MaxBatch {
		select {
		case o := <-s.in:
			batch = append(batch, o)
			n += o.size()
		default:
			return batch
		}
	}
	return batch
}

func (s *Service) failQueued(err error) {
	for _, o := range s.collect(nil) {
		o.done <- err
	}
}

// walBatch is one step for the log writer: its record (nil when the step
// changed nothing) and the submissions to answer once it is on disk.
type walBatch struct {
	rec    *Record
	ops    []*op
	events int // events applied, for the step-size metric
}

// walQueue bounds the steps waiting for the log writer: when the disk
// falls behind, Run waits, and so do the senders (backpressure).
const walQueue = 64

// step applies a batch at one instant and hands its writes, as one record,
// to the log writer, which answers the batch once the record is on disk.
// An error is fatal: the engine is ahead of the log.
func (s *Service) step(batch []*op) error {
	now := s.opts.Now()
	s.engine.Tick(now)
	var events []triage.Event
	var offsets []SourceOffset
	for _, o := range batch {
		s.process(o.events, now)
		events = append(events, o.events...)
		for _, m := range o.msgs {
			if last, ok := s.offsets[m.Partition]; ok && m.Offset <= last {
				s.m.redelivered.Inc()
				continue
			}
			s.offsets[m.Partition] = m.Offset
			offsets = append(offsets, SourceOffset{m.Partition, m.Offset})
			s.process(m.Events, now)
			o.applied += len(m.Events)
			events = append(events, m.Events...)
		}
		if o.cmd != nil {
			o.err = o.cmd(s.engine, now)
		}
	}
	ch := s.engine.Flush()
	ch.Offsets = offsets
	for _, o := range batch {
		if o.archived != nil {
			o.archived.Entry.Time = now
			ch.Timeline = append(ch.Timeline, *o.archived)
		}
		if o.archivedInc != nil {
			o.archivedInc.UpdatedAt = now
			ch.Archived = append(ch.Archived, o.archivedInc)
		}
	}
	wb := &walBatch{ops: batch, events: len(events)}
	if s.opts.EventRetention <= 0 {
		events = nil
	}
	if len(events) > 0 || !ch.Empty() {
		rec, err := s.builder.build(events, now, &ch, s.engine.LastID())
		if err != nil {
			err = fmt.Errorf("logging a step: %w", err)
			s.log.Error("cannot encode a step for the write-ahead log; stopping", "err", err)
			for _, o := range batch {
				o.done <- err
			}
			return err
		}
		wb.rec = rec
	}
	s.m.open.Set(float64(s.engine.OpenIncidents()))
	s.m.liveAlerts.Set(float64(s.engine.LiveAlerts()))
	if wb.rec == nil && len(batch) == 0 {
		return nil
	}
	// Even a step that wrote nothing is answered through the writer, after
	// the steps before it: a submission is never answered before one that
	// came earlier is durable.
	select {
	case s.toWAL <- wb:
		return nil
	case <-s.walFailed:
		for _, o := range batch {
			o.done <- s.walErr
		}
		return s.walErr
	}
}

// walWriter logs the steps Run hands it, in order. It writes every step
// queued meanwhile with one write and one fsync, marks them logged, queues
// their records for the checkpointer and answers their submissions. After
// a failure it answers every later step with the error: the process must
// stop (Run returns it), and a restart recovers what is on disk.
func (s *Service) walWriter() {
	var group []*walBatch
	var recs []*Record
	var failed error
	for wb := range s.toWAL {
		group = append(group[:0], wb)
	drain:
		for len(group) < walQueue {
			select {
			case more, ok := <-s.toWAL:
				if !ok {
					break drain
				}
				group = append(group, more)
			default:
				break drain
			}
		}
		recs = recs[:0]
		events := 0
		for _, g := range group {
			if g.rec != nil {
				recs = append(recs, g.rec)
			}
			events += g.events
		}
		if failed == nil && len(recs) > 0 {
			start := time.Now()
			err := s.wal.AppendAll(recs)
			s.m.walSeconds.Observe(time.Since(start).Seconds())
			if err != nil {
				failed = fmt.Errorf("logging a step: %w", err)
				s.log.Error("cannot write the write-ahead log; stopping", "err", failed)
				s.walErr = failed
				close(s.walFailed)
			} else {
				s.m.stepEvents.Observe(float64(events))
				s.ckq.push(recs) // waits when the checkpointer lags far behind: backpressure
				s.logged.Store(recs[len(recs)-1].LSN)
			}
		}
		for _, g := range group {
			for _, o := range g.ops {
				if failed != nil {
					o.done <- failed
				} else {
					o.done <- o.err
				}
			}
		}
		clear(group) // let the answered steps go
	}
}

// ckptQueue holds logged records until the checkpointer applies them. The
// log writer never waits for a checkpoint in progress, only when the queue
// holds more than its byte budget.
type ckptQueue struct {
	mu     sync.Mutex
	room   *sync.Cond // broadcast when records are taken
	recs   []*Record
	bytes  int64
	max    int64 // the writer waits beyond it
	early  int64 // a checkpoint starts before its interval at it
	closed bool
	wake   chan struct{} // records arrived or the queue closed
}

// maxQueuedBytes bounds the records waiting for a checkpoint.
const maxQueuedBytes = 256 << 20

func newCkptQueue(max, early int64) *ckptQueue {
	q := &ckptQueue{max: max, early: early, wake: make(chan struct{}, 1)}
	q.room = sync.NewCond(&q.mu)
	return q
}

func (q *ckptQueue) push(recs []*Record) {
	q.mu.Lock()
	for q.bytes >= q.max {
		q.room.Wait()
	}
	q.recs = append(q.recs, recs...)
	for _, r := range recs {
		q.bytes += r.size()
	}
	q.mu.Unlock()
	q.signal()
}

func (q *ckptQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default: // a wake-up is pending
	}
}

// due reports whether the records queued should be checkpointed before the
// interval is up: there are enough of them, or the queue closed.
func (q *ckptQueue) due() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes >= q.early || q.closed
}

// take returns every queued record, and whether the queue is closed.
func (q *ckptQueue) take() ([]*Record, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	recs := q.recs
	q.recs, q.bytes = nil, 0
	q.room.Broadcast()
	return recs, q.closed
}

func (q *ckptQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// checkpointer applies logged records to the store until the queue
// closes. It gathers records for CheckpointInterval (or until a reader
// waits in Sync, or earlyCheckpointBytes of records) so that one bbolt transaction
// covers many steps: an alert repeated a hundred times is written once. It
// retries failures and releases log segments the store no longer needs.
func (s *Service) checkpointer() {
	var lastPrune time.Time
	tick := time.NewTicker(s.opts.CheckpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ckq.wake:
			if !s.ckq.due() {
				continue
			}
		case <-tick.C:
		case <-s.syncReq: // a reader waits: write now
		}
		recs, closed := s.ckq.take()
		if s.noCheckpoint {
			recs = nil
		}
		s.checkpoint(recs)
		if closed {
			return
		}
		if s.opts.EventRetention > 0 && time.Since(lastPrune) >= time.Minute {
			lastPrune = time.Now()
			s.prune(s.opts.Now())
		}
	}
}

// earlyCheckpointBytes is how much a checkpoint gathers at most before its
// interval is up. A checkpoint rewrites every store page its records touch,
// and under load most records touch the pages of the same open incidents:
// checkpointing by size rather than by count of records keeps those
// rewrites, and the disk traffic that slows the log's syncs, to one per
// interval.
const earlyCheckpointBytes = 64 << 20

func (s *Service) checkpoint(batch []*Record) {
	if len(batch) == 0 {
		return
	}
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		err := s.opts.Store.Apply(batch)
		s.m.ckptSeconds.Observe(time.Since(start).Seconds())
		s.mu.Lock()
		s.ckptErr = err
		if err == nil {
			s.applied = batch[len(batch)-1].LSN
			close(s.advance)
			s.advance = make(chan struct{})
		}
		s.mu.Unlock()
		if err == nil {
			break
		}
		s.m.ckptErrors.Inc()
		s.log.Error("checkpoint failed; retrying (the write-ahead log keeps everything)", "err", err, "retry_in", backoff)
		time.Sleep(backoff)
		backoff = min(2*backoff, 10*time.Second)
	}
	if err := s.wal.Release(batch[len(batch)-1].LSN); err != nil {
		s.log.Warn("releasing wal segments", "err", err)
	}
	s.m.walSegments.Set(float64(s.wal.Segments()))
}

// prune deletes logged events older than the retention, in transactions of
// bounded size, until none is left.
func (s *Service) prune(now time.Time) {
	const chunk = 20000
	total := 0
	for {
		n, err := s.opts.Store.PruneEvents(now.Add(-s.opts.EventRetention), chunk)
		total += n
		if err != nil {
			s.log.Warn("pruning the event log failed", "err", err)
			return
		}
		if n < chunk {
			break
		}
	}
	if total > 0 {
		s.log.Debug("pruned the event log", "events", total)
	}
}

// WALDir is where the daemon keeps the write-ahead log of a data dir.
func WALDir(dataDir string) string { return filepath.Join(dataDir, "wal") }
