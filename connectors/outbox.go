package connectors

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	bolt "go.etcd.io/bbolt"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/internal/boltfile"
)

// Source is where the outbox reads changes and incidents: the engine's
// store.
type Source interface {
	Changes(after uint64, limit int) ([]correlate.Change, error)
	OpenSnapshot() ([]triage.Incident, uint64, error)
	Incident(id uint64) (*triage.Incident, error)
}

// Recorder writes what connectors did back onto incidents: the service.
type Recorder interface {
	Note(ctx context.Context, id uint64, kind, actor, text string) error
	SetTicket(ctx context.Context, id uint64, t triage.Ticket, actor string) error
}

// Options configure an Outbox.
type Options struct {
	// Path is the outbox's own bbolt file (data_dir/outbox.db).
	Path       string
	Source     Source
	Recorder   Recorder
	Connectors []Connector
	// Workers is how many incidents each connector works on at once
	// (default 4); one incident's changes are always delivered in order.
	Workers int
	// PollInterval is how often the feed is read (default 250ms).
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the retry delay of one incident
	// (defaults 1s and 5m); the delay doubles with each failure.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one delivery (default 30s).
	Timeout  time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// Outbox queues incident changes durably per connector and delivers them.
type Outbox struct {
	opts  Options
	db    *bolt.DB
	conns []*conn
	log   *slog.Logger
	m     *outboxMetrics
	wake  chan struct{}
}

type conn struct {
	c      Connector
	filter Filter
	qb     []byte // queue bucket: incident id + seq → entry JSON
	sb     []byte // state bucket: incident id → State JSON
	kb     []byte // keys bucket: ticket key → incident id
	mb     []byte // meta bucket: the connector's own keys
	mu     sync.Mutex
	pend   map[uint64]*pending
	wake   chan struct{}
}

type pending struct {
	next     time.Time
	attempts int
	busy     bool
	more     bool // changes were queued since its delivery run began
}

type outboxMetrics struct {
	queued    *prometheus.CounterVec
	delivered *prometheus.CounterVec
	failures  *prometheus.CounterVec
	pending   *prometheus.GaugeVec
	seconds   *prometheus.HistogramVec
}

var bucketCursor = []byte("cursor")

// Open opens (or creates) the outbox file. A connector seen for the first
// time starts at the end of the feed, with the incidents open then queued
// as if just opened, so enabling Jira tickets the open incidents but not
// history.
func Open(opts Options) (*Outbox, error) {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Minute, opts.MinBackoff)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
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
	db, err := boltfile.Open(opts.Path)
	if err != nil {
		return nil, err
	}
	o := &Outbox{opts: opts, db: db, log: opts.Logger, m: newOutboxMetrics(opts.Registry), wake: make(chan struct{}, 1)}
	seen := map[string]bool{}
	for _, c := range opts.Connectors {
		name := c.Name()
		if seen[name] {
			_ = db.Close()
			return nil, fmt.Errorf("two connectors named %q", name)
		}
		seen[name] = true
		cn := &conn{c: c, qb: []byte("q:" + name), sb: []byte("state:" + name), kb: []byte("keys:" + name),
			mb: []byte("meta:" + name), pend: map[uint64]*pending{}, wake: make(chan struct{}, 1)}
		cn.filter, _ = c.(Filter)
		o.conns = append(o.conns, cn)
	}
	if err := o.init(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return o, nil
}

// init creates buckets, starts new connectors at the end of the feed with
// the open incidents backfilled, and loads every queued incident.
func (o *Outbox) init() error {
	open, last, err := o.opts.Source.OpenSnapshot()
	if err != nil {
		return fmt.Errorf("reading open incidents and the change feed: %w", err)
	}
	return o.db.Update(func(tx *bolt.Tx) error {
		cur, err := tx.CreateBucketIfNotExists(bucketCursor)
		if err != nil {
			return err
		}
		for _, c := range o.conns {
			for _, b := range [][]byte{c.qb, c.sb, c.kb, c.mb} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			name := []byte(c.c.Name())
			if cur.Get(name) == nil {
				q := tx.Bucket(c.qb)
				for _, inc := range open {
					e := triage.TimelineEntry{Time: inc.OpenedAt, Kind: triage.KindOpened, Actor: triage.ActorSystem,
						Message: "open when " + c.c.Name() + " was enabled"}
					if c.filter != nil && !c.filter.Wants(e) {
						continue
					}
					js, _ := json.Marshal(&e)
					if err := q.Put(qkey(inc.ID, 0), js); err != nil {
						return err
					}
				}
				if err := cur.Put(name, u64(last)); err != nil {
					return err
				}
				o.log.Info("connector enabled", "connector", c.c.Name(), "from_change", last, "open_incidents", len(open))
			}
			qc := tx.Bucket(c.qb).Cursor()
			for k, _ := qc.First(); k != nil; k, _ = qc.Seek(u64(binary.BigEndian.Uint64(k[:8]) + 1)) {
				c.pend[binary.BigEndian.Uint64(k[:8])] = &pending{}
			}
			o.m.pending.WithLabelValues(c.c.Name()).Set(float64(tx.Bucket(c.qb).Stats().KeyN))
		}
		return nil
	})
}

// Close closes the outbox file. Call it after Run returned.
func (o *Outbox) Close() error { return o.db.Close() }

// Run follows the feed and delivers until ctx is cancelled, then waits for
// deliveries in flight (each bounded by Options.Timeout).
func (o *Outbox) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, c := range o.conns {
		wg.Go(func() { o.dispatch(ctx, c) })
	}
	t := time.NewTicker(o.opts.PollInterval)
	defer t.Stop()
	for {
		if err := o.feed(); err != nil {
			o.log.Warn("outbox: reading the change feed", "err", err)
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
		case <-o.wake:
		}
	}
}

// Poke makes the outbox read the feed now rather than at its next poll.
func (o *Outbox) Poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// feed copies new changes into every connector's queue, advancing each
// cursor in the same transaction.
func (o *Outbox) feed() error {
	for {
		var from uint64 = 1<<64 - 1
		if err := o.db.View(func(tx *bolt.Tx) error {
			cur := tx.Bucket(bucketCursor)
			for _, c := range o.conns {
				from = min(from, binary.BigEndian.Uint64(cur.Get([]byte(c.c.Name()))))
			}
			return nil
		}); err != nil {
			return err
		}
		if len(o.conns) == 0 {
			return nil
		}
		const batch = 1000
		changes, err := o.opts.Source.Changes(from, batch)
		if err != nil || len(changes) == 0 {
			return err
		}
		touched := make([]map[uint64]bool, len(o.conns))
		err = o.db.Update(func(tx *bolt.Tx) error {
			cur := tx.Bucket(bucketCursor)
			for i, c := range o.conns {
				touched[i] = map[uint64]bool{}
				name := []byte(c.c.Name())
				at := binary.BigEndian.Uint64(cur.Get(name))
				q := tx.Bucket(c.qb)
				n := 0
				for _, ch := range changes {
					if ch.Entry.Seq <= at {
						continue
					}
					at = ch.Entry.Seq
					// A connector's failure record is never sent anywhere:
					// to its own connector it would fail again (a loop), and
					// two failing connectors would feed each other.
					if ch.Entry.Kind == triage.KindConnectorError {
						continue
					}
					if c.filter != nil && !c.filter.Wants(ch.Entry) {
						continue
					}
					js, err := json.Marshal(&ch.Entry)
					if err != nil {
						return err
					}
					if err := q.Put(qkey(ch.IncidentID, ch.Entry.Seq), js); err != nil {
						return err
					}
					touched[i][ch.IncidentID] = true
					n++
				}
				if err := cur.Put(name, u64(at)); err != nil {
					return err
				}
				o.m.queued.WithLabelValues(c.c.Name()).Add(float64(n))
				o.m.pending.WithLabelValues(c.c.Name()).Set(float64(q.Stats().KeyN))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("queueing changes: %w", err)
		}
		for i, c := range o.conns {
			if len(touched[i]) == 0 {
				continue
			}
			c.mu.Lock()
			for id := range touched[i] {
				if p := c.pend[id]; p != nil {
					p.more = true
				} else {
					c.pend[id] = &pending{}
				}
			}
			c.mu.Unlock()
			c.poke()
		}
		if len(changes) < batch {
			return nil
		}
	}
}

func (c *conn) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// dispatch starts deliveries of due incidents, at most Workers at once.
func (o *Outbox) dispatch(ctx context.Context, c *conn) {
	sem := make(chan struct{}, o.opts.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := o.opts.Now()
		next := now.Add(time.Hour)
		var due []uint64
		c.mu.Lock()
		for id, p := range c.pend {
			switch {
			case p.busy:
			case !p.next.After(now):
				due = append(due, id)
			case p.next.Before(next):
				next = p.next
			}
		}
		c.mu.Unlock()
		for _, id := range due {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			c.mu.Lock()
			c.pend[id].busy = true
			c.mu.Unlock()
			wg.Go(func() {
				defer func() { <-sem; c.poke() }()
				o.drain(ctx, c, id)
			})
		}
		timer.Reset(next.Sub(now))
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-timer.C:
		}
	}
}

// drain delivers one incident's queued changes in order until the queue
// is empty or a delivery fails.
func (o *Outbox) drain(ctx context.Context, c *conn, id uint64) {
	name := c.c.Name()
	for ctx.Err() == nil {
		c.mu.Lock()
		c.pend[id].more = false
		c.mu.Unlock()
		key, entry, st, ok, err := o.head(c, id)
		if err != nil {
			o.log.Error("outbox: reading a queued change", "connector", name, "incident", triage.IncidentKey(id), "err", err)
			o.retry(c, id, 0)
			return
		}
		if !ok {
			c.mu.Lock()
			more := c.pend[id].more
			if !more {
				delete(c.pend, id)
			}
			c.mu.Unlock()
			if more {
				continue
			}
			return
		}
		inc, err := o.opts.Source.Incident(id)
		if errors.Is(err, correlate.ErrNotFound) {
			o.log.Warn("outbox: change of an unknown incident dropped", "connector", name, "incident", triage.IncidentKey(id))
			if err := o.done(c, id, key, st); err != nil {
				o.retry(c, id, 0)
				return
			}
			continue
		}
		if err != nil {
			o.log.Error("outbox: reading an incident", "connector", name, "incident", triage.IncidentKey(id), "err", err)
			o.retry(c, id, 0)
			return
		}
		before := *st
		d := &Delivery{Incident: inc, Change: entry, State: st,
			Save: func() error { return o.saveState(c, id, st, nil) }}
		dctx, cancel := context.WithTimeout(ctx, o.opts.Timeout)
		start := time.Now()
		derr := c.c.Deliver(dctx, d)
		cancel()
		o.m.seconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
		if st.Ticket != nil && (inc.Ticket == nil || *inc.Ticket != *st.Ticket) {
			// The ticket is recorded on the incident before the change
			// leaves the queue: a crash in between repeats the change,
			// which finds the ticket in the state and does not create.
			if err := o.saveState(c, id, st, &before); err != nil {
				o.log.Error("outbox: saving state", "connector", name, "err", err)
			}
			if err := o.opts.Recorder.SetTicket(ctx, id, *st.Ticket, name); err != nil {
				o.log.Warn("outbox: recording a ticket", "connector", name, "incident", triage.IncidentKey(id), "err", err)
				o.retry(c, id, 0)
				return
			}
		}
		if derr == nil {
			o.m.delivered.WithLabelValues(name).Inc()
			if err := o.done(c, id, key, st); err != nil {
				o.log.Error("outbox: removing a delivered change", "connector", name, "err", err)
				o.retry(c, id, 0)
				return
			}
			c.mu.Lock()
			c.pend[id].attempts = 0
			c.mu.Unlock()
			continue
		}
		if ctx.Err() != nil { // stopping: the change stays queued
			_ = o.saveState(c, id, st, &before)
			return
		}
		var ce *Error
		if errors.As(derr, &ce) && !ce.Retryable {
			o.m.failures.WithLabelValues(name, "permanent").Inc()
			o.log.Warn("outbox: change cannot be delivered", "connector", name, "incident", triage.IncidentKey(id), "kind", entry.Kind, "err", derr)
			if err := o.opts.Recorder.Note(ctx, id, triage.KindConnectorError, name,
				fmt.Sprintf("%s: %s not delivered: %v", name, entry.Kind, derr)); err != nil && !errors.Is(err, correlate.ErrNotFound) {
				o.retry(c, id, 0)
				return
			}
			if err := o.done(c, id, key, st); err != nil {
				o.retry(c, id, 0)
				return
			}
			continue
		}
		o.m.failures.WithLabelValues(name, "retry").Inc()
		if err := o.saveState(c, id, st, &before); err != nil {
			o.log.Error("outbox: saving state", "connector", name, "err", err)
		}
		var after time.Duration
		if ce != nil {
			after = ce.RetryAfter
		}
		o.log.Info("outbox: delivery failed, will retry", "connector", name, "incident", triage.IncidentKey(id), "kind", entry.Kind, "err", derr)
		o.retry(c, id, after)
		return
	}
	c.mu.Lock()
	c.pend[id].busy = false
	c.mu.Unlock()
}

// retry schedules an incident's next attempt with exponential backoff, or
// after the remote system's Retry-After when that is longer.
func (o *Outbox) retry(c *conn, id uint64, after time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pend[id]
	p.attempts++
	d := o.opts.MinBackoff << min(p.attempts-1, 20)
	d = min(d, o.opts.MaxBackoff)
	p.next = o.opts.Now().Add(max(d, after))
	p.busy = false
}

// head reads the first queued change of an incident and its state.
func (o *Outbox) head(c *conn, id uint64) (key []byte, e triage.TimelineEntry, st *State, ok bool, err error) {
	st = &State{}
	err = o.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(c.qb).Cursor().Seek(u64(id))
		if k == nil || !bytes.HasPrefix(k, u64(id)) {
			return nil
		}
		key, ok = bytes.Clone(k), true
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("decoding queued change: %w", err)
		}
		if sv := tx.Bucket(c.sb).Get(u64(id)); sv != nil {
			if err := json.Unmarshal(sv, st); err != nil {
				return fmt.Errorf("decoding state: %w", err)
			}
		}
		return nil
	})
	return key, e, st, ok, err
}

// done removes a delivered change and saves the state, in one transaction.
func (o *Outbox) done(c *conn, id uint64, key []byte, st *State) error {
	return o.db.Update(func(tx *bolt.Tx) error {
		if err := putState(tx, c, id, st); err != nil {
			return err
		}
		q := tx.Bucket(c.qb)
		if err := q.Delete(key); err != nil {
			return err
		}
		o.m.pending.WithLabelValues(c.c.Name()).Set(float64(q.Stats().KeyN))
		return nil
	})
}

func (o *Outbox) saveState(c *conn, id uint64, st, before *State) error {
	if before != nil && equalState(st, before) {
		return nil
	}
	return o.db.Update(func(tx *bolt.Tx) error { return putState(tx, c, id, st) })
}

func equalState(a, b *State) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func putState(tx *bolt.Tx, c *conn, id uint64, st *State) error {
	js, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := tx.Bucket(c.sb).Put(u64(id), js); err != nil {
		return err
	}
	if st.Ticket != nil && st.Ticket.Key != "" {
		return tx.Bucket(c.kb).Put([]byte(st.Ticket.Key), u64(id))
	}
	return nil
}

func (o *Outbox) conn(name string) (*conn, error) {
	for _, c := range o.conns {
		if c.c.Name() == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no connector %q", name)
}

// State reads a connector's state of an incident; ok is false when there
// is none.
func (o *Outbox) State(connector string, id uint64) (st State, ok bool, err error) {
	c, err := o.conn(connector)
	if err != nil {
		return st, false, err
	}
	err = o.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(c.sb).Get(u64(id))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &st)
	})
	return st, ok, err
}

// IncidentOf finds the incident whose ticket has the given key.
func (o *Outbox) IncidentOf(connector, key string) (uint64, bool, error) {
	c, err := o.conn(connector)
	if err != nil {
		return 0, false, err
	}
	var id uint64
	err = o.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(c.kb).Get([]byte(key)); len(v) == 8 {
			id = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return id, id != 0, err
}

// Meta reads a connector's own durable value (e.g. inbound sync marks);
// nil when unset.
func (o *Outbox) Meta(connector, key string) ([]byte, error) {
	c, err := o.conn(connector)
	if err != nil {
		return nil, err
	}
	var v []byte
	err = o.db.View(func(tx *bolt.Tx) error {
		v = bytes.Clone(tx.Bucket(c.mb).Get([]byte(key)))
		return nil
	})
	return v, err
}

// UpdateMeta changes a connector's own durable value atomically: fn gets
// the current value (nil when unset) and returns the new one (nil deletes).
func (o *Outbox) UpdateMeta(connector, key string, fn func(old []byte) ([]byte, error)) error {
	c, err := o.conn(connector)
	if err != nil {
		return err
	}
	return o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(c.mb)
		v, err := fn(bytes.Clone(b.Get([]byte(key))))
		if err != nil {
			return err
		}
		if v == nil {
			return b.Delete([]byte(key))
		}
		return b.Put([]byte(key), v)
	})
}

// Idle reports whether every connector has read the whole feed and has
// nothing queued: everything the store holds has been delivered (or
// recorded as undeliverable).
func (o *Outbox) Idle() (bool, error) {
	_, last, err := o.opts.Source.OpenSnapshot()
	if err != nil {
		return false, err
	}
	idle := true
	err = o.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketCursor)
		for _, c := range o.conns {
			if binary.BigEndian.Uint64(cur.Get([]byte(c.c.Name()))) < last || tx.Bucket(c.qb).Stats().KeyN > 0 {
				idle = false
			}
		}
		return nil
	})
	return idle, err
}

// Pending is the number of changes queued for a connector.
func (o *Outbox) Pending(connector string) (int, error) {
	c, err := o.conn(connector)
	if err != nil {
		return 0, err
	}
	var n int
	err = o.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(c.qb).Stats().KeyN
		return nil
	})
	return n, err
}

func qkey(id, seq uint64) []byte { return append(u64(id), u64(seq)...) }

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func newOutboxMetrics(reg prometheus.Registerer) *outboxMetrics {
	f := promauto.With(reg)
	return &outboxMetrics{
		queued: f.NewCounterVec(prometheus.CounterOpts{Name: "triage_outbox_queued_total",
			Help: "Incident changes queued for a connector."}, []string{"connector"}),
		delivered: f.NewCounterVec(prometheus.CounterOpts{Name: "triage_outbox_delivered_total",
			Help: "Incident changes a connector delivered."}, []string{"connector"}),
		failures: f.NewCounterVec(prometheus.CounterOpts{Name: "triage_outbox_failures_total",
			Help: "Failed deliveries, by whether they are retried or dropped and recorded on the incident."}, []string{"connector", "kind"}),
		pending: f.NewGaugeVec(prometheus.GaugeOpts{Name: "triage_outbox_pending",
			Help: "Incident changes queued and not yet delivered."}, []string{"connector"}),
		seconds: f.NewHistogramVec(prometheus.HistogramOpts{Name: "triage_outbox_delivery_seconds",
			Help: "Time one delivery took.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"connector"}),
	}
}
