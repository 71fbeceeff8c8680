package problems

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
)

// incidentRecord is what the tracker remembers of an incident it
// evaluated: where its occurrences are, and the problem it is linked to.
type incidentRecord struct {
	At      int64             `json:"at"`                // opened_at, Unix ns
	Keys    map[string]string `json:"keys,omitempty"`    // kind → recurrence key
	Problem uint64            `json:"problem,omitempty"` // 0: not linked
}

// feedBatch is how many changes one transaction evaluates at most.
const feedBatch = 1000

// sweepEvery is how often occurrences too old to matter are deleted.
const sweepEvery = 10 * time.Minute

// Run follows the feed until ctx ends: it evaluates incidents, opens and
// updates problems, and records links on the incidents. Errors reading the
// feed or recording links are logged and retried; Run returns nil when ctx
// ends. Work not done then is done by the next Run. Stop it before the
// service and the store it follows.
func (t *Tracker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { t.linker(ctx) })
	tick := time.NewTicker(t.opts.PollInterval)
	defer tick.Stop()
	for {
		caughtUp, err := t.feed()
		if err != nil {
			t.log.Warn("problems: following the change feed", "err", err)
		}
		if caughtUp {
			if err := t.maybeSweep(); err != nil {
				t.log.Warn("problems: pruning old occurrences", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-tick.C:
		}
	}
}

// feed evaluates new changes, one transaction per batch that also moves
// the cursor. It reports whether it read the whole feed.
func (t *Tracker) feed() (bool, error) {
	for {
		var from uint64
		if err := t.db.View(func(tx *bolt.Tx) error { from = cursor(tx); return nil }); err != nil {
			return false, err
		}
		changes, scanned, err := t.opts.Source.ChangesOf(from, feedBatch, feedKinds)
		if err != nil {
			return false, fmt.Errorf("reading changes after %d: %w", from, err)
		}
		if scanned == from {
			return true, nil
		}
		now := t.opts.Now()
		// Incidents opened more than two windows ago cannot count with
		// any incident evaluated now (those opened within a window of it):
		// skipping them spares reading all history on the first start.
		cutoff := now.Add(-2 * t.opts.Window)
		var evs []*triage.Incident
		seen := map[uint64]bool{}
		last := from
		var readErr error
		for _, ch := range changes {
			kind := ch.Entry.Kind
			if (kind == triage.KindOpened || kind == triage.KindRootCause) && ch.Entry.Time.After(cutoff) && !seen[ch.IncidentID] {
				inc, err := t.opts.Source.IncidentOpeners(ch.IncidentID)
				switch {
				case errors.Is(err, correlate.ErrNotFound):
					t.log.Warn("problems: change of an unknown incident skipped", "incident", triage.IncidentKey(ch.IncidentID))
				case err != nil:
					readErr = fmt.Errorf("reading %s: %w", triage.IncidentKey(ch.IncidentID), err)
				default:
					seen[ch.IncidentID] = true
					// An incident merged into another is part of that one.
					if inc.MergedInto == nil && inc.OpenedAt.After(cutoff) {
						evs = append(evs, inc)
					}
				}
				if readErr != nil {
					break
				}
			}
			last = ch.Entry.Seq
		}
		if readErr == nil {
			last = scanned // past the entries of other kinds too
		}
		if last > from {
			if err := t.apply(evs, last, now); err != nil {
				return false, err
			}
		}
		if readErr != nil {
			return false, readErr
		}
	}
}

// feedKinds are the changes the tracker evaluates an incident on: when it
// opens (its signature) and when its root cause moves (its root CI).
var feedKinds = []string{triage.KindOpened, triage.KindRootCause}

// txWork gathers what one transaction changes.
type txWork struct {
	now      time.Time
	problems map[uint64]*Problem // read or created in the transaction; written at its end
	opened   []*Problem
	links    int
}

// apply evaluates incidents and moves the cursor to last, atomically.
func (t *Tracker) apply(evs []*triage.Incident, last uint64, now time.Time) error {
	w := &txWork{now: now.UTC(), problems: map[uint64]*Problem{}}
	err := t.db.Update(func(tx *bolt.Tx) error {
		for _, inc := range evs {
			if err := t.evaluate(tx, w, inc); err != nil {
				return fmt.Errorf("evaluating %s: %w", inc.Key, err)
			}
		}
		for _, p := range w.problems {
			if err := putProblem(tx, p); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyCursor, u64(last))
	})
	if err != nil {
		return fmt.Errorf("recording evaluations up to change %d: %w", last, err)
	}
	if len(evs) > 0 {
		t.gauges()
	}
	for _, p := range w.opened {
		t.m.opened.Inc()
		t.log.Info("problem opened", "problem", p.Key, "title", p.Title, "incidents", p.Incidents)
	}
	if w.links > 0 {
		t.pokeLinker()
	}
	return nil
}

// evaluate records an incident's occurrences under its keys, links it to
// the open problem of one of them, and opens a problem for each key that
// reached the threshold.
func (t *Tracker) evaluate(tx *bolt.Tx, w *txWork, inc *triage.Incident) error {
	rec, err := getRecord(tx, inc.ID)
	if err != nil {
		return err
	}
	if inc.ProblemID != nil {
		if rec.Problem == 0 {
			rec.Problem = *inc.ProblemID // linked already: it keeps its problem
		}
		// Never hand out an id an incident already carries (a problems
		// file lost and started afresh).
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyLastProblem); len(v) != 8 || binary.BigEndian.Uint64(v) < *inc.ProblemID {
			if err := meta.Put(keyLastProblem, u64(*inc.ProblemID)); err != nil {
				return err
			}
		}
	}
	at := inc.OpenedAt.UnixNano()
	keys := IncidentKeys(inc)
	cur := map[string]string{} // kind → recurrence key
	for _, kind := range t.kinds() {
		if v := keys.get(kind); v != "" {
			cur[kind] = keyString(kind, v)
		}
	}
	occ := tx.Bucket(bucketOccur)
	for kind, old := range rec.Keys {
		if cur[kind] != old || rec.At != at {
			if err := occ.Delete(occKey(old, rec.At, inc.ID)); err != nil {
				return err
			}
		}
	}
	for _, k := range cur {
		if err := occ.Put(occKey(k, at, inc.ID), nil); err != nil {
			return err
		}
	}
	rec.At, rec.Keys = at, cur
	if err := putRecord(tx, inc.ID, rec); err != nil {
		return err
	}
	active := tx.Bucket(bucketActive)
	if rec.Problem == 0 {
		for _, kind := range t.kinds() {
			if v := active.Get([]byte(cur[kind])); cur[kind] != "" && len(v) == 8 {
				if err := t.link(tx, w, inc.ID, binary.BigEndian.Uint64(v)); err != nil {
					return err
				}
				break
			}
		}
	}
	for _, kind := range t.kinds() {
		k := cur[kind]
		if k == "" || active.Get([]byte(k)) != nil {
			continue
		}
		ids, err := t.unlinked(tx, k, at)
		if err != nil {
			return err
		}
		if len(ids) < t.opts.Threshold {
			continue
		}
		if err := t.open(tx, w, kind, keys.get(kind), inc.OpenedAt, ids); err != nil {
			return err
		}
	}
	return nil
}

// unlinked lists the incidents with key k, opened within the window that
// ends at at, that no problem links.
func (t *Tracker) unlinked(tx *bolt.Tx, k string, at int64) ([]uint64, error) {
	prefix := occPrefix(k)
	lo := max(at-int64(t.opts.Window)+1, 0)
	var ids []uint64
	c := tx.Bucket(bucketOccur).Cursor()
	for ok, _ := c.Seek(append(bytes.Clone(prefix), u64(uint64(lo))...)); ok != nil && bytes.HasPrefix(ok, prefix); ok, _ = c.Next() {
		rest := ok[len(prefix):]
		if len(rest) != 16 {
			return nil, fmt.Errorf("occurrence key %x: malformed", ok)
		}
		if int64(binary.BigEndian.Uint64(rest[:8])) > at {
			break
		}
		id := binary.BigEndian.Uint64(rest[8:])
		rec, err := getRecord(tx, id)
		if err != nil {
			return nil, err
		}
		if rec.Problem == 0 {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// open opens a problem for a key and links the incidents. The problem
// opens when the key reached the threshold: at, the opened_at of the
// incident evaluated, whenever the tracker evaluates it.
func (t *Tracker) open(tx *bolt.Tx, w *txWork, kind, value string, at time.Time, ids []uint64) error {
	meta := tx.Bucket(bucketMeta)
	var id uint64 = 1
	if v := meta.Get(keyLastProblem); len(v) == 8 {
		id = binary.BigEndian.Uint64(v) + 1
	}
	if err := meta.Put(keyLastProblem, u64(id)); err != nil {
		return err
	}
	label := "root CI"
	p := &Problem{ID: id, Key: triage.ProblemKey(id), Status: StatusOpen, KeyKind: kind,
		Incidents: []uint64{}, OpenedAt: at.UTC(), UpdatedAt: w.now}
	if kind == ByRootCI {
		p.RootCI = value
	} else {
		p.Signature, label = value, "signature"
	}
	p.Title = fmt.Sprintf("Recurring: %s (%s), %d incidents in %s", value, label, len(ids), windowText(t.opts.Window))
	w.problems[id] = p
	w.opened = append(w.opened, p)
	if err := tx.Bucket(bucketActive).Put([]byte(keyString(kind, value)), u64(id)); err != nil {
		return err
	}
	for _, inc := range ids {
		if err := t.link(tx, w, inc, id); err != nil {
			return err
		}
	}
	return nil
}

// link links an incident that no problem links to a problem, and queues
// the link to record on the incident.
func (t *Tracker) link(tx *bolt.Tx, w *txWork, incident, problem uint64) error {
	rec, err := getRecord(tx, incident)
	if err != nil {
		return err
	}
	if rec.Problem != 0 {
		return nil
	}
	rec.Problem = problem
	if err := putRecord(tx, incident, rec); err != nil {
		return err
	}
	p := w.problems[problem]
	if p == nil {
		if p, err = getProblem(tx, problem); err != nil {
			return err
		}
		w.problems[problem] = p
	}
	p.addIncident(incident, w.now)
	w.links++
	return tx.Bucket(bucketPending).Put(u64(incident), u64(problem))
}

func windowText(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}

// maybeSweep deletes, at most every sweepEvery, the occurrences and
// incident records too old to count with any incident evaluated from now
// on (opened more than two windows ago).
func (t *Tracker) maybeSweep() error {
	now := t.opts.Now()
	t.mu.Lock()
	due := now.Sub(t.lastSweep) >= sweepEvery
	if due {
		t.lastSweep = now
	}
	t.mu.Unlock()
	if !due {
		return nil
	}
	return t.sweep(now.Add(-2 * t.opts.Window))
}

func (t *Tracker) sweep(cutoff time.Time) error {
	limit := uint64(max(cutoff.UnixNano(), 0))
	n := 0
	err := t.db.Update(func(tx *bolt.Tx) error {
		occ := tx.Bucket(bucketOccur)
		var old [][]byte
		err := occ.ForEach(func(k, _ []byte) error {
			if len(k) >= 16 && binary.BigEndian.Uint64(k[len(k)-16:len(k)-8]) <= limit {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := occ.Delete(k); err != nil {
				return err
			}
		}
		n = len(old)
		ib, pend := tx.Bucket(bucketIncidents), tx.Bucket(bucketPending)
		old = old[:0]
		err = ib.ForEach(func(k, v []byte) error {
			var rec incidentRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decoding record of incident %x: %w", k, err)
			}
			if uint64(max(rec.At, 0)) <= limit && pend.Get(k) == nil {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := ib.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && n > 0 {
		t.log.Debug("problems: pruned old occurrences", "occurrences", n)
	}
	return err
}

// Poke makes the tracker record pending links now rather than after its
// current backoff.
func (t *Tracker) Poke() { t.pokeLinker() }

func (t *Tracker) pokeLinker() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

type link struct{ incident, problem uint64 }

// linker records pending links on their incidents until ctx ends, each
// retried with its own backoff, and removes each once recorded.
func (t *Tracker) linker(ctx context.Context) {
	type retry struct {
		next     time.Time
		attempts int
	}
	retries := map[uint64]*retry{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		links, err := t.pendingLinks()
		now := time.Now()
		next := now.Add(time.Hour)
		if err != nil {
			t.log.Error("problems: reading pending links", "err", err)
			next = now.Add(t.opts.MinBackoff)
		}
		queued := map[uint64]bool{}
		progressed := false
		for _, l := range links {
			queued[l.incident] = true
			r := retries[l.incident]
			if r != nil && r.next.After(now) {
				next = minTime(next, r.next)
				continue
			}
			err := t.opts.Recorder.SetProblem(ctx, l.incident, l.problem, Actor)
			if err != nil && ctx.Err() != nil {
				return // stopping: the link stays queued
			}
			if err != nil && !errors.Is(err, correlate.ErrNotFound) {
				if r == nil {
					r = &retry{}
					retries[l.incident] = r
				}
				r.attempts++
				d := min(t.opts.MinBackoff<<min(r.attempts-1, 20), t.opts.MaxBackoff)
				r.next = time.Now().Add(d)
				next = minTime(next, r.next)
				t.m.linkFailures.Inc()
				t.log.Warn("problems: recording a link failed, will retry", "incident", triage.IncidentKey(l.incident),
					"problem", triage.ProblemKey(l.problem), "attempt", r.attempts, "retry_in", d, "err", err)
				continue
			}
			if err != nil {
				t.log.Warn("problems: link to an unknown incident dropped", "incident", triage.IncidentKey(l.incident), "problem", triage.ProblemKey(l.problem))
			}
			if err == nil {
				// Counted before the link leaves the queue, so that Idle
				// never reports a finished link the metric lacks.
				t.m.links.Inc()
			}
			if derr := t.linked(l); derr != nil {
				t.log.Error("problems: removing a recorded link", "err", derr)
				next = minTime(next, time.Now().Add(t.opts.MinBackoff))
				continue
			}
			delete(retries, l.incident)
			progressed = true
		}
		for id := range retries {
			if !queued[id] {
				delete(retries, id)
			}
		}
		if len(links) == maxLinks && progressed {
			continue // more may be queued
		}
		timer.Reset(max(next.Sub(time.Now()), 0))
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		case <-timer.C:
		}
	}
}

// maxLinks bounds the pending links read at once.
const maxLinks = 1000

func (t *Tracker) pendingLinks() ([]link, error) {
	var out []link
	err := t.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPending).Cursor()
		for k, v := c.First(); k != nil && len(out) < maxLinks; k, v = c.Next() {
			if len(k) != 8 || len(v) != 8 {
				return fmt.Errorf("pending link %x: malformed", k)
			}
			out = append(out, link{binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(v)})
		}
		return nil
	})
	return out, err
}

// linked removes a link recorded on its incident from the queue.
func (t *Tracker) linked(l link) error {
	err := t.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPending)
		if v := b.Get(u64(l.incident)); len(v) == 8 && binary.BigEndian.Uint64(v) == l.problem {
			return b.Delete(u64(l.incident))
		}
		return nil
	})
	if err == nil {
		t.gauges()
	}
	return err
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func getRecord(tx *bolt.Tx, id uint64) (incidentRecord, error) {
	var rec incidentRecord
	v := tx.Bucket(bucketIncidents).Get(u64(id))
	if v == nil {
		return rec, nil
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, fmt.Errorf("decoding record of %s: %w", triage.IncidentKey(id), err)
	}
	return rec, nil
}

func putRecord(tx *bolt.Tx, id uint64, rec incidentRecord) error {
	js, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketIncidents).Put(u64(id), js)
}

// occPrefix is the prefix of a key's occurrences: the key's length, so
// that no key's prefix is another's, then the key.
func occPrefix(k string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(k)))
	return append(b, k...)
}

func occKey(k string, at int64, id uint64) []byte {
	b := occPrefix(k)
	b = binary.BigEndian.AppendUint64(b, uint64(max(at, 0)))
	return binary.BigEndian.AppendUint64(b, id)
}
