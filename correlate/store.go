package correlate

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/triage-dev/triage"
)

var (
	bucketMeta      = []byte("meta")
	bucketEvents    = []byte("events")      // seq → receive time (8 bytes, unix ns) + event JSON
	bucketIncidents = []byte("incidents")   // id → incident JSON (no alerts, timeline)
	bucketLive      = []byte("live")        // id → nothing: incidents the engine holds
	bucketAlerts    = []byte("alerts")      // id + fingerprint → alert JSON, written when new or its details change
	bucketAlertSt   = []byte("alert_state") // id + fingerprint → the alert's changing state, binary (see encodeState)
	bucketTimeline  = []byte("timeline")    // id + seq → entry JSON
	bucketOffsets   = []byte("offsets")     // "topic/partition" → the last applied offset (8 bytes)
	bucketChanges   = []byte("changes")     // timeline seq → incident id (8 bytes) + entry kind: every timeline entry in order, for the outbox

	keyLastID      = []byte("last_incident_id")
	keySchema      = []byte("schema_version")
	keyWALLSN      = []byte("wal_lsn")      // the last write-ahead log record applied
	keyEventSeq    = []byte("event_seq")    // the last event log key handed out
	keyTimelineSeq = []byte("timeline_seq") // the last timeline entry number handed out
)

// storeBuckets are the buckets Records write to, by index (Op.Bucket).
var storeBuckets = [][]byte{bucketMeta, bucketEvents, bucketIncidents, bucketLive, bucketAlerts, bucketAlertSt, bucketTimeline, bucketOffsets, bucketChanges}

const (
	bMeta uint8 = iota
	bEvents
	bIncidents
	bLive
	bAlerts
	bAlertSt
	bTimeline
	bOffsets
	bChanges
)

// schemaVersion 2: the change feed's values hold the entry kind after the
// incident id, which version 1 readers refuse.
const schemaVersion = 2

// Store is the materialised state: the event log and every incident with
// its alerts and timeline, in one bbolt file. It is written by applying
// Records from the write-ahead log (checkpoints), and read concurrently.
type Store struct {
	db *bolt.DB
}

// OpenStore opens or creates the store in dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	path := filepath.Join(dir, "triage.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        2 * time.Second,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		// Map address space for a large file up front: growing the mapping
		// remaps the file under a lock that stalls readers and the
		// checkpoint (a third of its time in a fresh store under load).
		// It is address space, not memory.
		InitialMmapSize: initialMmapSize,
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("opening %s: another triage process holds it: %w", path, err)
		}
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range storeBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySchema); v != nil && binary.BigEndian.Uint64(v) > schemaVersion {
			return fmt.Errorf("schema version %d is newer than this binary's %d", binary.BigEndian.Uint64(v), schemaVersion)
		}
		return meta.Put(keySchema, u64(schemaVersion))
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialising %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// initialMmapSize is the address space bbolt maps up front, where that is
// cheap: not on 32-bit systems, and not on Windows, where bbolt grows the
// file to the mapping's size.
var initialMmapSize = func() int {
	if strconv.IntSize == 32 || runtime.GOOS == "windows" {
		return 0
	}
	return 1 << 30
}()

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Apply writes records in one transaction, durable (fsynced) when it
// returns nil, and remembers the last one's LSN.
func (s *Store) Apply(recs []*Record) error {
	if len(recs) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		buckets := make([]*bolt.Bucket, len(storeBuckets))
		for i, name := range storeBuckets {
			buckets[i] = tx.Bucket(name)
		}
		// Apply in key order: bbolt inserts sorted keys many times faster
		// than random ones. Of several writes of one key (an alert's state
		// at every step it repeated), only the last is applied.
		n := 0
		for _, r := range recs {
			n += len(r.Ops)
		}
		ops := make([]seqOp, 0, n)
		for _, r := range recs {
			for i := range r.Ops {
				ops = append(ops, seqOp{op: &r.Ops[i], seq: len(ops)})
			}
		}
		slices.SortFunc(ops, func(a, b seqOp) int {
			if a.op.Bucket != b.op.Bucket {
				return int(a.op.Bucket) - int(b.op.Bucket)
			}
			if c := bytes.Compare(a.op.Key, b.op.Key); c != 0 {
				return c
			}
			return a.seq - b.seq
		})
		for i, so := range ops {
			op := so.op
			if i+1 < len(ops) && ops[i+1].op.Bucket == op.Bucket && bytes.Equal(ops[i+1].op.Key, op.Key) {
				continue // a later write of the key follows
			}
			b := buckets[op.Bucket]
			var err error
			if op.Delete {
				err = b.Delete(op.Key)
			} else {
				err = b.Put(op.Key, op.Value)
			}
			if err != nil {
				return fmt.Errorf("bucket %s: %w", storeBuckets[op.Bucket], err)
			}
		}
		return buckets[bMeta].Put(keyWALLSN, u64(recs[len(recs)-1].LSN))
	})
	if err != nil {
		return fmt.Errorf("applying %d records: %w", len(recs), err)
	}
	return nil
}

// seqOp is a write with its place in the records being applied.
type seqOp struct {
	op  *Op
	seq int
}

// Positions are the counters a record builder continues from.
type Positions struct {
	WALLSN, LastID, EventSeq, TimelineSeq uint64
}

// Positions reads the counters as of the last applied record.
func (s *Store) Positions() (Positions, error) {
	var p Positions
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, f := range []struct {
			key []byte
			v   *uint64
		}{{keyWALLSN, &p.WALLSN}, {keyLastID, &p.LastID}, {keyEventSeq, &p.EventSeq}, {keyTimelineSeq, &p.TimelineSeq}} {
			if v := meta.Get(f.key); len(v) == 8 {
				*f.v = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	})
	return p, err
}

// Offsets reads the last applied offset of every source partition.
func (s *Store) Offsets() (map[string]int64, error) {
	out := map[string]int64{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOffsets).ForEach(func(k, v []byte) error {
			if len(v) == 8 {
				out[string(k)] = int64(binary.BigEndian.Uint64(v))
			}
			return nil
		})
	})
	return out, err
}

// HasIncident reports whether the store holds an incident.
func (s *Store) HasIncident(id uint64) (bool, error) {
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketIncidents).Get(u64(id)) != nil
		return nil
	})
	return ok, err
}

// recordBuilder turns the engine's changes into a Record. It owns the key
// counters, so that keys are fixed before the record is logged.
type recordBuilder struct {
	pos Positions
}

// build encodes events received at the given time (nil when the event log
// is off) and the engine's changes. It must run before the engine is
// called again: Changes point into the engine.
func (b *recordBuilder) build(events []triage.Event, received time.Time, ch *Changes, lastID uint64) (*Record, error) {
	// Ops for a new alert: details, state, timeline and change entries; and
	// the incident records with their live marks.
	r := &Record{Ops: make([]Op, 0, len(ch.Offsets)+len(events)+2*len(ch.Incidents)+len(ch.Archived)+
		len(ch.AlertDetails)+len(ch.Alerts)+2*len(ch.Timeline)+4)}
	// The JSON values are encoded one after another into one buffer the
	// record owns (it is kept until checkpointed): one allocation, not one
	// per value.
	arena := make([]byte, 0, 768*len(ch.AlertDetails)+640*(len(ch.Incidents)+len(ch.Archived))+256*len(ch.Timeline))
	for _, o := range ch.Offsets {
		r.Ops = append(r.Ops, Op{Bucket: bOffsets, Key: []byte(o.Partition), Value: u64(uint64(o.Offset))})
	}
	put := func(bucket uint8, k, v []byte) {
		r.Ops = append(r.Ops, Op{Bucket: bucket, Key: k, Value: v})
	}
	// putJSON encodes with the hand-written AppendJSON encoders (the same
	// bytes as json.Marshal, without its reflection and allocations) into
	// the scratch buffer and puts a copy: records are kept until checkpointed.
	putJSON := func(bucket uint8, k []byte, v interface {
		AppendJSON([]byte) ([]byte, error)
	}) error {
		start := len(arena)
		js, err := v.AppendJSON(arena)
		if err != nil {
			return fmt.Errorf("encoding %T: %w", v, err)
		}
		if cap(js) != cap(arena) && start > 0 {
			// It outgrew the estimate and moved: earlier values keep the old
			// array, this one starts a new one.
			js = append(make([]byte, 0, max(2*cap(arena), 4096)), js[start:]...)
			start = 0
		}
		arena = js
		put(bucket, k, arena[start:len(arena):len(arena)])
		return nil
	}
	if len(events) > 0 {
		prefix := u64(uint64(received.UnixNano()))
		for i := range events {
			js, err := json.Marshal(&events[i])
			if err != nil {
				return nil, fmt.Errorf("encoding event: %w", err)
			}
			b.pos.EventSeq++
			put(bEvents, u64(b.pos.EventSeq), append(prefix[:8:8], js...))
		}
		put(bMeta, keyEventSeq, u64(b.pos.EventSeq))
	}
	for _, inc := range ch.Incidents {
		if err := putJSON(bIncidents, u64(inc.ID), inc); err != nil {
			return nil, err
		}
		put(bLive, u64(inc.ID), nil)
	}
	for _, inc := range ch.Archived {
		if err := putJSON(bIncidents, u64(inc.ID), inc); err != nil {
			return nil, err
		}
	}
	for _, a := range ch.AlertDetails {
		if err := putJSON(bAlerts, alertKey(a.IncidentID, a.Fingerprint), a); err != nil {
			return nil, err
		}
	}
	for _, a := range ch.Alerts {
		put(bAlertSt, alertKey(a.IncidentID, a.Fingerprint), encodeState(a))
	}
	if len(ch.Timeline) > 0 {
		for i := range ch.Timeline {
			t := &ch.Timeline[i]
			b.pos.TimelineSeq++
			t.Entry.Seq = b.pos.TimelineSeq
			if err := putJSON(bTimeline, append(u64(t.IncidentID), u64(b.pos.TimelineSeq)...), &t.Entry); err != nil {
				return nil, err
			}
			// The kind lets a follower skip entries without reading them.
			v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(t.Entry.Kind)), t.IncidentID)
			put(bChanges, u64(b.pos.TimelineSeq), append(v, t.Entry.Kind...))
		}
		put(bMeta, keyTimelineSeq, u64(b.pos.TimelineSeq))
	}
	for _, id := range ch.Evicted {
		r.Ops = append(r.Ops, Op{Delete: true, Bucket: bLive, Key: u64(id)})
	}
	if lastID != b.pos.LastID {
		b.pos.LastID = lastID
		put(bMeta, keyLastID, u64(lastID))
	}
	return r, nil
}

// Restore rebuilds the engine's live state from the store.
func (s *Store) Restore(e *Engine) error {
	return s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyLastID); v != nil {
			e.SetLastID(binary.BigEndian.Uint64(v))
		}
		ib := tx.Bucket(bucketIncidents)
		return tx.Bucket(bucketLive).ForEach(func(k, _ []byte) error {
			var inc triage.Incident
			if err := getJSON(ib, k, &inc); err != nil {
				return err
			}
			alerts, err := readIncidentAlerts(tx, &inc)
			if err != nil {
				return err
			}
			e.Restore(inc, alerts)
			return nil
		})
	})
}

// IncidentFilter selects incidents to list.
type IncidentFilter struct {
	Status   triage.IncidentStatus // empty for all
	BeforeID uint64                // list ids below this; 0 for the newest
	Limit    int
}

// Incidents lists incidents, newest first, without alerts and timeline.
func (s *Store) Incidents(f IncidentFilter) ([]triage.Incident, error) {
	out := []triage.Incident{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketIncidents).Cursor()
		var k, v []byte
		if f.BeforeID > 0 {
			c.Seek(u64(f.BeforeID))
			k, v = c.Prev()
		} else {
			k, v = c.Last()
		}
		for ; k != nil && len(out) < f.Limit; k, v = c.Prev() {
			var inc triage.Incident
			if err := json.Unmarshal(v, &inc); err != nil {
				return fmt.Errorf("decoding incident %x: %w", k, err)
			}
			if f.Status != "" && inc.Status != f.Status {
				continue
			}
			out = append(out, inc)
		}
		return nil
	})
	return out, err
}

// EachIncident calls fn with every incident, oldest first, without alerts
// and timeline; the incident is fn's to keep.
func (s *Store) EachIncident(fn func(*triage.Incident) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIncidents).ForEach(func(k, v []byte) error {
			inc := new(triage.Incident)
			if err := json.Unmarshal(v, inc); err != nil {
				return fmt.Errorf("decoding incident %x: %w", k, err)
			}
			return fn(inc)
		})
	})
}

// EachIncidentJSON calls fn with the JSON record of every incident (no
// alerts, no timeline), oldest first; the bytes are valid only during the
// call. Readers that need a few fields decode only those.
func (s *Store) EachIncidentJSON(fn func([]byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIncidents).ForEach(func(_, v []byte) error { return fn(v) })
	})
}

// IncidentOpeners reads an incident's record with, as its Alerts, the
// alerts first seen when it opened (all of them when none was, or when
// none of those has an alertname), those of incidents merged into it
// included, each with its fingerprint, labels and first-seen time only: what the incident's signature is made of (see
// problems.Signature), read without decoding the rest of every alert.
func (s *Store) IncidentOpeners(id uint64) (*triage.Incident, error) {
	var inc triage.Incident
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := readRecord(tx, id, &inc); err != nil {
			return err
		}
		type raw struct {
			fp []byte
			js []byte // valid during the transaction
		}
		var all []raw
		var openers []triage.Alert
		decode := func(r raw) (triage.Alert, error) {
			var light struct {
				Labels    map[string]string `json:"labels"`
				FirstSeen time.Time         `json:"first_seen"`
			}
			if err := json.Unmarshal(r.js, &light); err != nil {
				return triage.Alert{}, fmt.Errorf("decoding alert %s of %s: %w", r.fp, inc.Key, err)
			}
			return triage.Alert{Fingerprint: string(r.fp), IncidentID: id, Labels: light.Labels, FirstSeen: light.FirstSeen}, nil
		}
		for _, from := range append([]uint64{id}, inc.Merged...) {
			c := tx.Bucket(bucketAlerts).Cursor()
			prefix := u64(from)
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				r := raw{k[8:], v}
				all = append(all, r)
				if !mayBeFirstSeen(v, inc.OpenedAt) {
					continue // most alerts: not decoded at all
				}
				a, err := decode(r)
				if err != nil {
					return err
				}
				if a.FirstSeen.Equal(inc.OpenedAt) {
					openers = append(openers, a)
				}
			}
		}
		inc.Alerts = openers
		// problems.Signature falls back to every alert when those it opened
		// with have no alertname: so does this.
		if !slices.ContainsFunc(openers, func(a triage.Alert) bool { return a.Labels["alertname"] != "" }) {
			inc.Alerts = []triage.Alert{}
			for _, r := range all {
				a, err := decode(r)
				if err != nil {
					return err
				}
				inc.Alerts = append(inc.Alerts, a)
			}
		}
		sortAlerts(inc.Alerts)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &inc, nil
}

// mayBeFirstSeen reports whether an alert's JSON record can have first_seen
// at: whether any "first_seen" string in it (the field, or a label or
// annotation of that name) holds that time. The field is always among
// them, so false means it is not at.
func mayBeFirstSeen(js []byte, at time.Time) bool {
	const key = `"first_seen":"`
	for rest := js; ; {
		i := bytes.Index(rest, []byte(key))
		if i < 0 {
			return false
		}
		rest = rest[i+len(key):]
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			return false
		}
		if t, err := time.Parse(time.RFC3339Nano, string(rest[:end])); err == nil && t.Equal(at) {
			return true
		}
		rest = rest[end:]
	}
}

// readRecord reads an incident's record (no alerts, no timeline).
func readRecord(tx *bolt.Tx, id uint64, inc *triage.Incident) error {
	ib := tx.Bucket(bucketIncidents)
	if ib.Get(u64(id)) == nil {
		return fmt.Errorf("%s: %w", triage.IncidentKey(id), ErrNotFound)
	}
	return getJSON(ib, u64(id), inc)
}

// Incident reads one incident in full: alerts, explanation and timeline.
func (s *Store) Incident(id uint64) (*triage.Incident, error) {
	var inc triage.Incident
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := readRecord(tx, id, &inc); err != nil {
			return err
		}
		alerts, err := readIncidentAlerts(tx, &inc)
		if err != nil {
			return err
		}
		for i := range alerts {
			alerts[i].IncidentID = id // alerts of merged incidents are stored under theirs
		}
		inc.Alerts = alerts
		inc.Explanation = make([]triage.Explanation, len(alerts))
		for i := range alerts {
			inc.Explanation[i] = alerts[i].Joined
		}
		inc.Timeline = []triage.TimelineEntry{}
		c := tx.Bucket(bucketTimeline).Cursor()
		prefix := u64(id)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var e triage.TimelineEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decoding timeline of %s: %w", inc.Key, err)
			}
			inc.Timeline = append(inc.Timeline, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &inc, nil
}

// Change is one timeline entry in the order the engine made it: the feed
// connectors read (see Changes).
type Change struct {
	IncidentID uint64
	Entry      triage.TimelineEntry // Entry.Seq orders changes across incidents
}

// Changes reads up to limit timeline entries, of every incident, with a
// sequence number above after, in order. Connectors follow this feed with
// a cursor: an entry is in it once the checkpoint that wrote it is durable.
func (s *Store) Changes(after uint64, limit int) ([]Change, error) {
	out, _, err := s.ChangesOf(after, limit, nil)
	return out, err
}

// ChangesOf is Changes for a follower that needs some kinds of entries
// only: it looks at up to limit entries above after, returns those of the
// given kinds (all when kinds is nil), and the sequence number of the last
// entry it looked at (after when none), where the follower's cursor moves.
// Entries of other kinds are not read.
func (s *Store) ChangesOf(after uint64, limit int, kinds []string) ([]Change, uint64, error) {
	var out []Change
	last := after
	err := s.db.View(func(tx *bolt.Tx) error {
		tl := tx.Bucket(bucketTimeline)
		c := tx.Bucket(bucketChanges).Cursor()
		n := 0
		for k, v := c.Seek(u64(after + 1)); k != nil && n < limit; k, v = c.Next() {
			if len(k) != 8 || len(v) < 8 {
				return fmt.Errorf("change key %x: malformed", k)
			}
			n++
			last = binary.BigEndian.Uint64(k)
			// Entries written before the kind was indexed have none: read them.
			if kind := v[8:]; kinds != nil && len(kind) > 0 && !slices.ContainsFunc(kinds, func(k string) bool { return k == string(kind) }) {
				continue
			}
			ch := Change{IncidentID: binary.BigEndian.Uint64(v)}
			js := tl.Get(append(v[:8:8], k...))
			if js == nil {
				return fmt.Errorf("change %d of %s: no timeline entry", last, triage.IncidentKey(ch.IncidentID))
			}
			if err := json.Unmarshal(js, &ch.Entry); err != nil {
				return fmt.Errorf("decoding change %d: %w", last, err)
			}
			if kinds != nil && !slices.Contains(kinds, ch.Entry.Kind) {
				continue
			}
			out = append(out, ch)
		}
		return nil
	})
	if err != nil {
		return nil, after, err
	}
	return out, last, nil
}

// LiveIncidents calls fn with every incident the engine holds (open, or
// resolved within the reopen window), without alerts and timeline.
func (s *Store) LiveIncidents(fn func(*triage.Incident) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		ib := tx.Bucket(bucketIncidents)
		return tx.Bucket(bucketLive).ForEach(func(k, _ []byte) error {
			inc := new(triage.Incident)
			if err := getJSON(ib, k, inc); err != nil {
				return err
			}
			return fn(inc)
		})
	})
}

// OpenSnapshot lists the open and acknowledged incidents and the newest
// change, as of one instant: a connector enabled now backfills exactly
// those incidents and follows the feed after that change.
func (s *Store) OpenSnapshot() ([]triage.Incident, uint64, error) {
	var open []triage.Incident
	var seq uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketChanges).Cursor().Last(); len(k) == 8 {
			seq = binary.BigEndian.Uint64(k)
		}
		ib := tx.Bucket(bucketIncidents)
		return tx.Bucket(bucketLive).ForEach(func(k, _ []byte) error {
			var inc triage.Incident
			if err := getJSON(ib, k, &inc); err != nil {
				return err
			}
			if inc.Status != triage.IncidentResolved && inc.MergedInto == nil {
				open = append(open, inc)
			}
			return nil
		})
	})
	return open, seq, err
}

// LastChange is the sequence number of the newest change in the Store.
func (s *Store) LastChange() (uint64, error) {
	var seq uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketChanges).Cursor().Last(); len(k) == 8 {
			seq = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return seq, err
}

// StoredEvent is one entry of the event log.
type StoredEvent struct {
	Seq        uint64
	ReceivedAt time.Time
	Event      triage.Event
}

// Events reads up to limit logged events with a sequence number above after.
func (s *Store) Events(after uint64, limit int) ([]StoredEvent, error) {
	var out []StoredEvent
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			se := StoredEvent{Seq: binary.BigEndian.Uint64(k), ReceivedAt: time.Unix(0, int64(binary.BigEndian.Uint64(v[:8])))}
			if err := json.Unmarshal(v[8:], &se.Event); err != nil {
				return fmt.Errorf("decoding event %d: %w", se.Seq, err)
			}
			out = append(out, se)
		}
		return nil
	})
	return out, err
}

// PruneEvents deletes up to max logged events received before cutoff and
// returns how many it deleted.
func (s *Store) PruneEvents(cutoff time.Time, max int) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.First(); k != nil && n < max; k, v = c.First() {
			if int64(binary.BigEndian.Uint64(v[:8])) >= cutoff.UnixNano() {
				break
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("pruning events: %w", err)
	}
	return n, nil
}

// readIncidentAlerts reads the alerts of an incident and of the incidents
// merged into it, in the order they joined. Each keeps the IncidentID it
// is stored under.
func readIncidentAlerts(tx *bolt.Tx, inc *triage.Incident) ([]triage.Alert, error) {
	alerts, err := readAlerts(tx, inc.ID)
	if err != nil || len(inc.Merged) == 0 {
		return alerts, err
	}
	for _, id := range inc.Merged {
		more, err := readAlerts(tx, id)
		if err != nil {
			return nil, err
		}
		alerts = append(alerts, more...)
	}
	sortAlerts(alerts)
	return alerts, nil
}

func sortAlerts(alerts []triage.Alert) {
	slices.SortFunc(alerts, func(a, b triage.Alert) int {
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		return strings.Compare(a.Fingerprint, b.Fingerprint)
	})
}

func readAlerts(tx *bolt.Tx, id uint64) ([]triage.Alert, error) {
	alerts := []triage.Alert{}
	c := tx.Bucket(bucketAlerts).Cursor()
	sb := tx.Bucket(bucketAlertSt)
	prefix := u64(id)
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var a triage.Alert
		if err := json.Unmarshal(v, &a); err != nil {
			return nil, fmt.Errorf("decoding alert %s of %s: %w", k[8:], triage.IncidentKey(id), err)
		}
		if st := sb.Get(k); st != nil {
			if err := decodeState(st, &a); err != nil {
				return nil, fmt.Errorf("decoding state of alert %s of %s: %w", k[8:], triage.IncidentKey(id), err)
			}
		}
		alerts = append(alerts, a)
	}
	// Alerts are keyed by fingerprint; list them in the order they joined.
	sortAlerts(alerts)
	return alerts, nil
}

func hasKey(b *bolt.Bucket, k []byte) bool {
	found, _ := b.Cursor().Seek(k)
	return bytes.Equal(found, k)
}

func alertKey(id uint64, fp string) []byte {
	return append(u64(id), fp...)
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	js, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %T: %w", v, err)
	}
	return b.Put(k, js)
}

func getJSON(b *bolt.Bucket, k []byte, v any) error {
	if err := json.Unmarshal(b.Get(k), v); err != nil {
		return fmt.Errorf("decoding %T %x: %w", v, k, err)
	}
	return nil
}

// stateFlapping is the flag of a flapping alert in the status byte.
const stateFlapping = 0x10

// encodeState writes the fields of an alert that change with every
// notification compactly: repeats rewrite ~40 bytes, not the whole alert.
// Layout: version, status (0 firing, 1 resolved, 2 expired; | stateFlapping), count,
// starts_at, ends_at, last_seen (varints, times in Unix ns, 0 for none),
// severity.
func encodeState(a *triage.Alert) []byte {
	b := make([]byte, 0, 48)
	b = append(b, 1)
	switch {
	case a.Status == triage.AlertResolved && a.Expired:
		b = append(b, 2)
	case a.Status == triage.AlertResolved:
		b = append(b, 1)
	default:
		b = append(b, 0)
	}
	if a.Flapping {
		b[1] |= stateFlapping
	}
	b = binary.AppendVarint(b, a.Count)
	for _, t := range []time.Time{a.StartsAt, a.EndsAt, a.LastSeen} {
		b = binary.AppendVarint(b, unixNano(t))
	}
	return append(b, a.Severity...)
}

var errBadState = errors.New("malformed alert state")

func decodeState(b []byte, a *triage.Alert) error {
	if len(b) < 2 || b[0] != 1 {
		return errBadState
	}
	a.Status, a.Expired = triage.AlertFiring, false
	a.Flapping = b[1]&stateFlapping != 0
	switch b[1] &^ stateFlapping {
	case 0:
	case 1:
		a.Status = triage.AlertResolved
	case 2:
		a.Status, a.Expired = triage.AlertResolved, true
	default:
		return errBadState
	}
	b = b[2:]
	var vals [4]int64
	for i := range vals {
		v, n := binary.Varint(b)
		if n <= 0 {
			return errBadState
		}
		vals[i], b = v, b[n:]
	}
	a.Count = vals[0]
	a.StartsAt, a.EndsAt, a.LastSeen = fromUnixNano(vals[1]), fromUnixNano(vals[2]), fromUnixNano(vals[3])
	a.Severity = string(b)
	return nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
