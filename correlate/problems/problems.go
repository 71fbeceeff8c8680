// Package problems does ITIL problem management on top of the correlation
// store: incidents that recur open a problem that links them.
//
// A Tracker follows the store's change feed (correlate.Store.Changes) with a
// durable cursor in its own bbolt file. It evaluates an incident when its
// opened change arrives and again on each of its root_cause changes, reading
// the incident as it is then. An incident has up to two recurrence keys (see
// Keys): its root cause CI ("root_ci") and the signature of what alerted
// ("signature"). The tracker keeps, per key, the occurrences (incident id,
// opened_at) of the incidents that had it. When a key has Threshold
// occurrences not yet linked to any problem, opened within Window of each
// other (the window ends at the incident being evaluated), and no open
// problem, a problem opens for the key and links them; while it is open
// (status open or known_error), every later incident with that key links to
// it. An incident keeps the first problem it is linked to; when both of its
// keys could link it, root_ci wins. Resolving a problem frees its key: the
// next Threshold unlinked occurrences open a new problem.
//
// Every decision (cursor, occurrences, problems and the links still to
// record on the incidents) is written in one bbolt transaction per batch of
// changes, and the links are recorded on the incidents afterwards with the
// idempotent Recorder.SetProblem, retried with backoff and removed from the
// durable queue only once recorded. A crash at any point therefore neither
// opens a second problem for a key nor loses a link: the transaction either
// happened (and its links are queued) or did not (and the same changes are
// evaluated again).
package problems

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	bolt "go.etcd.io/bbolt"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/internal/boltfile"
)

// Problem statuses. A known error is a problem whose cause is understood
// and which has a workaround; it still links new incidents.
const (
	StatusOpen       = "open"
	StatusKnownError = "known_error"
	StatusResolved   = "resolved"
)

// Recurrence key kinds (Options.By, Problem.KeyKind).
const (
	ByRootCI    = "root_ci"
	BySignature = "signature"
)

// Actor is the actor of the links the tracker records on incidents.
const Actor = "problems"

// MaxWorkaround is the longest workaround accepted, in bytes.
const MaxWorkaround = 4096

// MaxListedIncidents caps Problem.Incidents: a problem that keeps recurring
// lists its most recent incidents; IncidentCount counts them all.
const MaxListedIncidents = 1000

type sentinel struct {
	msg  string
	base error
}

func (s *sentinel) Error() string { return s.msg }
func (s *sentinel) Unwrap() error { return s.base }

// Errors callers branch on. Each also matches the correlate error of the
// same meaning (errors.Is(err, correlate.ErrNotFound) holds for a missing
// problem), so an API that maps those maps these.
var (
	ErrNotFound error = &sentinel{"problem not found", correlate.ErrNotFound}
	ErrInvalid  error = &sentinel{"invalid problem request", correlate.ErrInvalid}
	ErrConflict error = &sentinel{"problem is in the wrong state", correlate.ErrConflict}
)

// Source is where the tracker reads changes and incidents: the engine's
// store.
type Source interface {
	// ChangesOf reads the feed's entries of some kinds (correlate.Store).
	ChangesOf(after uint64, limit int, kinds []string) ([]correlate.Change, uint64, error)
	OpenSnapshot() ([]triage.Incident, uint64, error)
	// IncidentOpeners reads an incident with the alerts it opened with
	// (correlate.Store): what its signature is made of.
	IncidentOpeners(id uint64) (*triage.Incident, error)
}

// Recorder records a link on an incident: the correlation service. Linking
// an incident to the same problem again must change nothing.
type Recorder interface {
	SetProblem(ctx context.Context, incidentID, problemID uint64, actor string) error
}

// Options configure a Tracker.
type Options struct {
	// Path is the tracker's own bbolt file (data_dir/problems.db).
	Path     string
	Source   Source
	Recorder Recorder
	// Threshold is how many incidents with one key, within Window, open a
	// problem (default 3).
	Threshold int
	// Window is the span those incidents' opened_at fall in (default 30
	// days).
	Window time.Duration
	// By lists the recurrence keys used, ByRootCI and/or BySignature
	// (default both). root_ci is preferred whatever the order.
	By []string
	// PollInterval is how often the feed is read (default 1s).
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the delay before a failed link is
	// tried again (defaults 1s and 1m); it doubles with each failure.
	MinBackoff, MaxBackoff time.Duration
	// Now is the clock of problem times and of pruning (default time.Now).
	Now      func() time.Time
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// Problem is a recurring cause of incidents.
type Problem struct {
	ID uint64 `json:"id"`
	// Key is the human form of ID, e.g. PRB-7.
	Key    string `json:"key"`
	Title  string `json:"title"`
	Status string `json:"status"`
	// KnownError is set while the cause is known and a workaround exists;
	// a resolved problem keeps it as a record.
	KnownError bool   `json:"known_error"`
	Workaround string `json:"workaround"`
	// RootCI or Signature is the recurrence key the problem opened for,
	// KeyKind says which (ByRootCI or BySignature); the other is empty.
	RootCI    string `json:"root_ci"`
	Signature string `json:"signature"`
	KeyKind   string `json:"key_kind"`
	// Incidents are the ids of the linked incidents, oldest first (at most
	// MaxListedIncidents, the most recent); IncidentCount counts them all.
	Incidents     []uint64 `json:"incidents"`
	IncidentCount int      `json:"incident_count"`
	// OpenedAt is when the key reached the threshold: the opened_at of the
	// incident that made it reach it. UpdatedAt and ResolvedAt are the
	// tracker's clock when it last changed and when it was resolved.
	OpenedAt   time.Time  `json:"opened_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	ResolvedAt *time.Time `json:"resolved_at"`
	// Version grows by one with every change of the problem: exporters keep
	// the highest.
	Version uint64 `json:"version"`
}

// recurrenceKey is the key the problem opened for, as the tracker indexes it.
func (p *Problem) recurrenceKey() string {
	if p.KeyKind == ByRootCI {
		return keyString(ByRootCI, p.RootCI)
	}
	return keyString(BySignature, p.Signature)
}

// Filter selects problems to list.
type Filter struct {
	// Status is open, known_error or resolved; empty or "all" for all.
	Status string
	// Limit defaults to 100 and is at most 1000.
	Limit, Offset int
}

// Patch changes a problem; nil fields stay as they are.
type Patch struct {
	// Status open reopens a resolved problem (or turns a known error back
	// into an open problem), known_error marks it a known error, resolved
	// resolves it.
	Status *string `json:"status"`
	// KnownError true makes an open problem a known error; false turns a
	// known error back into an open problem.
	KnownError *bool   `json:"known_error"`
	Workaround *string `json:"workaround"`
}

// Tracker opens and updates problems from the incidents of a Source.
type Tracker struct {
	opts Options
	db   *bolt.DB
	log  *slog.Logger
	m    *metrics
	wake chan struct{} // the linker has links to record

	mu        sync.Mutex
	lastSweep time.Time
}

var (
	bucketMeta      = []byte("meta")
	bucketProblems  = []byte("problems")  // problem id → Problem JSON
	bucketActive    = []byte("active")    // recurrence key → id of its open or known_error problem
	bucketOccur     = []byte("occur")     // len(key) u32 + key + opened_at u64 + incident id u64 → nothing
	bucketIncidents = []byte("incidents") // incident id → incidentRecord JSON
	bucketPending   = []byte("pending")   // incident id → problem id: links not yet recorded on the incident

	keyCursor      = []byte("cursor")          // the last change evaluated
	keyLastProblem = []byte("last_problem_id") // the last problem id handed out
)

type metrics struct {
	open         prometheus.Gauge
	opened       prometheus.Counter
	links        prometheus.Counter
	linkFailures prometheus.Counter
	pending      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		open: f.NewGauge(prometheus.GaugeOpts{Name: "triage_problems_open",
			Help: "Problems not resolved (open or known error)."}),
		opened: f.NewCounter(prometheus.CounterOpts{Name: "triage_problems_opened_total",
			Help: "Problems opened for recurring incidents."}),
		links: f.NewCounter(prometheus.CounterOpts{Name: "triage_problem_links_total",
			Help: "Incidents linked to a problem (recorded on the incident)."}),
		linkFailures: f.NewCounter(prometheus.CounterOpts{Name: "triage_problem_link_failures_total",
			Help: "Failed attempts to record a link on an incident; retried."}),
		pending: f.NewGauge(prometheus.GaugeOpts{Name: "triage_problem_links_pending",
			Help: "Links decided and not yet recorded on their incidents."}),
	}
}

// Open opens (or creates) the tracker's file. A tracker started for the
// first time reads the feed from its beginning, so the incidents of the
// last two windows already in the store count.
func Open(opts Options) (*Tracker, error) {
	if opts.Source == nil || opts.Recorder == nil {
		return nil, errors.New("problems: Options.Source and Options.Recorder are required")
	}
	if opts.Path == "" {
		return nil, errors.New("problems: Options.Path is required")
	}
	if opts.Threshold <= 0 {
		opts.Threshold = 3
	}
	if opts.Window <= 0 {
		opts.Window = 30 * 24 * time.Hour
	}
	if len(opts.By) == 0 {
		opts.By = []string{ByRootCI, BySignature}
	}
	for _, b := range opts.By {
		if b != ByRootCI && b != BySignature {
			return nil, fmt.Errorf("problems: by: %q is not %s or %s", b, ByRootCI, BySignature)
		}
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(time.Minute, opts.MinBackoff)
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
	t := &Tracker{opts: opts, db: db, log: opts.Logger, m: newMetrics(opts.Registry), wake: make(chan struct{}, 1)}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketProblems, bucketActive, bucketOccur, bucketIncidents, bucketPending} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialising %s: %w", opts.Path, err)
	}
	t.gauges()
	return t, nil
}

// Close closes the tracker's file. Call it after Run returned.
func (t *Tracker) Close() error { return t.db.Close() }

// gauges sets the gauges from the committed state (bucket statistics do
// not see a write transaction's own changes).
func (t *Tracker) gauges() {
	_ = t.db.View(func(tx *bolt.Tx) error {
		t.m.open.Set(float64(tx.Bucket(bucketActive).Stats().KeyN))
		t.m.pending.Set(float64(tx.Bucket(bucketPending).Stats().KeyN))
		return nil
	})
}

// ParseRef accepts a problem id ("7") or key ("PRB-7", any case). Its
// error wraps ErrInvalid.
func ParseRef(s string) (uint64, error) {
	num := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "PRB-")
	id, err := strconv.ParseUint(num, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%w: problem reference %q: want a number or PRB-<number>", ErrInvalid, s)
	}
	return id, nil
}

// Get reads one problem; a missing one is ErrNotFound.
func (t *Tracker) Get(id uint64) (*Problem, error) {
	var p *Problem
	err := t.db.View(func(tx *bolt.Tx) error {
		var err error
		p, err = getProblem(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// List lists the problems the filter selects, newest first, and how many
// it selects in all (ignoring Limit and Offset).
func (t *Tracker) List(f Filter) ([]Problem, int, error) {
	switch f.Status {
	case "", "all":
		f.Status = ""
	case StatusOpen, StatusKnownError, StatusResolved:
	default:
		return nil, 0, fmt.Errorf("%w: status %q: want open, known_error, resolved or all", ErrInvalid, f.Status)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	if f.Offset < 0 {
		return nil, 0, fmt.Errorf("%w: offset %d is negative", ErrInvalid, f.Offset)
	}
	out := []Problem{}
	total := 0
	err := t.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketProblems).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if f.Status != "" && !bytes.Contains(v, []byte(`"status":"`+f.Status+`"`)) {
				continue // cheap pre-check; decoded below
			}
			var p Problem
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decoding problem %x: %w", k, err)
			}
			if f.Status != "" && p.Status != f.Status {
				continue
			}
			total++
			if total > f.Offset && len(out) < f.Limit {
				out = append(out, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// All lists every problem, oldest first: what exporters copy (each with
// its Version).
func (t *Tracker) All() ([]Problem, error) {
	var out []Problem
	err := t.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProblems).ForEach(func(k, v []byte) error {
			var p Problem
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decoding problem %x: %w", k, err)
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

// Update changes a problem by hand and returns it as it is now: mark it a
// known error with a workaround, resolve it, reopen it. A request that
// changes nothing returns the problem unchanged (same Version). Invalid
// requests are ErrInvalid; reopening a problem whose key has another
// problem open is ErrConflict. The change is durable when Update returns.
func (t *Tracker) Update(ctx context.Context, id uint64, patch Patch, actor string) (*Problem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := patch.validate(); err != nil {
		return nil, err
	}
	var out *Problem
	var changed bool
	err := t.db.Update(func(tx *bolt.Tx) error {
		p, err := getProblem(tx, id)
		if err != nil {
			return err
		}
		before := *p
		if patch.Workaround != nil {
			p.Workaround = *patch.Workaround
		}
		if patch.KnownError != nil {
			p.KnownError = *patch.KnownError
		}
		status := p.Status
		switch {
		case patch.Status != nil:
			status = *patch.Status
		case patch.KnownError != nil && p.Status != StatusResolved:
			status = StatusOpen
			if *patch.KnownError {
				status = StatusKnownError
			}
		}
		switch {
		case status == StatusKnownError:
			p.KnownError = true
		case status == StatusOpen && patch.Status != nil:
			p.KnownError = false
		}
		key := p.recurrenceKey()
		active := tx.Bucket(bucketActive)
		now := t.opts.Now().UTC()
		switch {
		case p.Status == StatusResolved && status != StatusResolved:
			if v := active.Get([]byte(key)); len(v) == 8 && binary.BigEndian.Uint64(v) != id {
				return fmt.Errorf("%w: reopening %s: %s is open for the same recurrence (%s)",
					ErrConflict, p.Key, triage.ProblemKey(binary.BigEndian.Uint64(v)), key)
			}
			if err := active.Put([]byte(key), u64(id)); err != nil {
				return err
			}
			p.ResolvedAt = nil
		case p.Status != StatusResolved && status == StatusResolved:
			if v := active.Get([]byte(key)); len(v) == 8 && binary.BigEndian.Uint64(v) == id {
				if err := active.Delete([]byte(key)); err != nil {
					return err
				}
			}
			p.ResolvedAt = &now
		}
		p.Status = status
		if p.Status == before.Status && p.KnownError == before.KnownError && p.Workaround == before.Workaround {
			out = p
			return nil
		}
		changed = true
		p.UpdatedAt = now
		p.Version++
		out = p
		return putProblem(tx, p)
	})
	if err != nil {
		return nil, err
	}
	if changed {
		t.gauges()
		t.log.Info("problem updated", "problem", out.Key, "status", out.Status, "known_error", out.KnownError, "actor", actor)
	}
	return out, nil
}

func (p *Patch) validate() error {
	if p.Status == nil && p.KnownError == nil && p.Workaround == nil {
		return fmt.Errorf("%w: nothing to change: give status, known_error or workaround", ErrInvalid)
	}
	if p.Status != nil {
		switch *p.Status {
		case StatusOpen, StatusKnownError, StatusResolved:
		default:
			return fmt.Errorf("%w: status %q: want open, known_error or resolved", ErrInvalid, *p.Status)
		}
		if p.KnownError != nil && (*p.Status == StatusKnownError && !*p.KnownError || *p.Status == StatusOpen && *p.KnownError) {
			return fmt.Errorf("%w: status %s contradicts known_error %t", ErrInvalid, *p.Status, *p.KnownError)
		}
	}
	if p.Workaround != nil {
		if len(*p.Workaround) > MaxWorkaround {
			return fmt.Errorf("%w: workaround: %d bytes, at most %d allowed", ErrInvalid, len(*p.Workaround), MaxWorkaround)
		}
		if !utf8.ValidString(*p.Workaround) {
			return fmt.Errorf("%w: workaround: not valid UTF-8", ErrInvalid)
		}
	}
	return nil
}

// Pending is the number of links decided and not yet recorded on their
// incidents.
func (t *Tracker) Pending() (int, error) {
	var n int
	err := t.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketPending).Stats().KeyN
		return nil
	})
	return n, err
}

// Idle reports whether the tracker has evaluated the whole feed and
// recorded every link it decided.
func (t *Tracker) Idle() (bool, error) {
	_, last, err := t.opts.Source.OpenSnapshot()
	if err != nil {
		return false, err
	}
	idle := false
	err = t.db.View(func(tx *bolt.Tx) error {
		idle = cursor(tx) >= last && tx.Bucket(bucketPending).Stats().KeyN == 0
		return nil
	})
	return idle, err
}

func getProblem(tx *bolt.Tx, id uint64) (*Problem, error) {
	v := tx.Bucket(bucketProblems).Get(u64(id))
	if v == nil {
		return nil, fmt.Errorf("%s: %w", triage.ProblemKey(id), ErrNotFound)
	}
	var p Problem
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", triage.ProblemKey(id), err)
	}
	return &p, nil
}

func putProblem(tx *bolt.Tx, p *Problem) error {
	js, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", p.Key, err)
	}
	return tx.Bucket(bucketProblems).Put(u64(p.ID), js)
}

func cursor(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(keyCursor); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// addIncident records a link on the problem's side.
func (p *Problem) addIncident(id uint64, now time.Time) {
	if !slices.Contains(p.Incidents, id) {
		p.Incidents = append(p.Incidents, id)
		slices.Sort(p.Incidents)
		if len(p.Incidents) > MaxListedIncidents {
			p.Incidents = slices.Delete(p.Incidents, 0, len(p.Incidents)-MaxListedIncidents)
		}
		p.IncidentCount++
	}
	p.UpdatedAt = now
	p.Version++
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
