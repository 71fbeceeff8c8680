package correlate

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

	keyLastID = []byte("last_incident_id")
	keySchema = []byte("schema_version")
)

const schemaVersion = 1

// Store is the durable state: the event log and every incident with its
// alerts and timeline, in one bbolt file. A successful Commit is on disk
// (fsynced). Reads run concurrently with the single writer.
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
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("opening %s: another triage process holds it: %w", path, err)
		}
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketEvents, bucketIncidents, bucketLive, bucketAlerts, bucketAlertSt, bucketTimeline} {
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

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Commit writes events received at the given time and the engine's changes
// in one transaction, durable when it returns nil.
func (s *Store) Commit(events []triage.Event, received time.Time, ch *Changes, lastID uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if len(events) > 0 {
			eb := tx.Bucket(bucketEvents)
			prefix := u64(uint64(received.UnixNano()))
			for i := range events {
				seq, err := eb.NextSequence()
				if err != nil {
					return err
				}
				js, err := json.Marshal(&events[i])
				if err != nil {
					return fmt.Errorf("encoding event: %w", err)
				}
				if err := eb.Put(u64(seq), append(prefix[:8:8], js...)); err != nil {
					return err
				}
			}
		}
		if ch == nil {
			return nil
		}
		ib, lb, ab, tb := tx.Bucket(bucketIncidents), tx.Bucket(bucketLive), tx.Bucket(bucketAlerts), tx.Bucket(bucketTimeline)
		sb := tx.Bucket(bucketAlertSt)
		for _, inc := range ch.Incidents {
			if err := putJSON(ib, u64(inc.ID), inc); err != nil {
				return err
			}
			// Only dirty the pages of what changed: each page written costs fsync time.
			if !hasKey(lb, u64(inc.ID)) {
				if err := lb.Put(u64(inc.ID), nil); err != nil {
					return err
				}
			}
		}
		for _, a := range ch.AlertDetails {
			if err := putJSON(ab, alertKey(a.IncidentID, a.Fingerprint), a); err != nil {
				return err
			}
		}
		for _, a := range ch.Alerts {
			if err := sb.Put(alertKey(a.IncidentID, a.Fingerprint), encodeState(a)); err != nil {
				return err
			}
		}
		for i := range ch.Timeline {
			t := &ch.Timeline[i]
			seq, err := tb.NextSequence()
			if err != nil {
				return err
			}
			t.Entry.Seq = seq
			if err := putJSON(tb, append(u64(t.IncidentID), u64(seq)...), &t.Entry); err != nil {
				return err
			}
		}
		for _, id := range ch.Evicted {
			if err := lb.Delete(u64(id)); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyLastID); v == nil || binary.BigEndian.Uint64(v) != lastID {
			return meta.Put(keyLastID, u64(lastID))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("committing state: %w", err)
	}
	return nil
}

// AppendTimeline records an entry on an incident the engine no longer holds.
func (s *Store) AppendTimeline(id uint64, e triage.TimelineEntry) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketIncidents).Get(u64(id)) == nil {
			return fmt.Errorf("%s: %w", triage.IncidentKey(id), ErrNotFound)
		}
		tb := tx.Bucket(bucketTimeline)
		seq, err := tb.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		return putJSON(tb, append(u64(id), u64(seq)...), &e)
	})
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
			alerts, err := readAlerts(tx, inc.ID)
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

// Incident reads one incident in full: alerts, explanation and timeline.
func (s *Store) Incident(id uint64) (*triage.Incident, error) {
	var inc triage.Incident
	err := s.db.View(func(tx *bolt.Tx) error {
		ib := tx.Bucket(bucketIncidents)
		if ib.Get(u64(id)) == nil {
			return fmt.Errorf("%s: %w", triage.IncidentKey(id), ErrNotFound)
		}
		if err := getJSON(ib, u64(id), &inc); err != nil {
			return err
		}
		alerts, err := readAlerts(tx, id)
		if err != nil {
			return err
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
	slices.SortFunc(alerts, func(a, b triage.Alert) int {
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		return strings.Compare(a.Fingerprint, b.Fingerprint)
	})
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

// encodeState writes the fields of an alert that change with every
// notification compactly: repeats rewrite ~40 bytes, not the whole alert.
// Layout: version, status, count, starts_at, ends_at, last_seen (varints,
// times in Unix ns, 0 for none), severity.
func encodeState(a *triage.Alert) []byte {
	b := make([]byte, 0, 48)
	b = append(b, 1)
	if a.Status == triage.AlertResolved {
		b = append(b, 1)
	} else {
		b = append(b, 0)
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
	a.Status = triage.AlertFiring
	if b[1] == 1 {
		a.Status = triage.AlertResolved
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
