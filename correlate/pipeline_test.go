package correlate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/triage-dev/triage"
)

func TestWALGroupCommit(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, dir, 0, 1<<20)
	appendN(t, w, 1, 2)
	group := []*Record{testRecord(3), testRecord(4), testRecord(5)}
	if err := w.AppendAll(group); err != nil {
		t.Fatal(err)
	}
	for i, r := range group {
		if r.LSN != uint64(3+i) {
			t.Fatalf("record %d of the group got LSN %d, want %d", i, r.LSN, 3+i)
		}
	}
	w.Close()
	// A crash in the middle of the group's write keeps the records before
	// the torn one: cut into the last record.
	segs := segments(t, dir)
	fi, err := os.Stat(segs[len(segs)-1])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(segs[len(segs)-1], fi.Size()-3); err != nil {
		t.Fatal(err)
	}
	w, got := openWAL(t, dir, 0, 1<<20)
	defer w.Close()
	if len(got) != 4 || got[3].LSN != 4 || !bytes.Equal(got[3].Ops[0].Value, testRecord(4).Ops[0].Value) {
		t.Fatalf("after a torn group: %d records, want the 4 intact ones", len(got))
	}
	next := []*Record{testRecord(9), testRecord(10)}
	if err := w.AppendAll(next); err != nil || next[0].LSN != 5 || next[1].LSN != 6 {
		t.Fatalf("appending after the cut: LSNs %d, %d (%v), want 5, 6", next[0].LSN, next[1].LSN, err)
	}
}

func TestCheckpointQueueBackpressure(t *testing.T) {
	q := newCkptQueue(1, 1<<30) // any record fills it
	q.push([]*Record{testRecord(1)})
	pushed := make(chan struct{})
	go func() {
		q.push([]*Record{testRecord(2)})
		close(pushed)
	}()
	select {
	case <-pushed:
		t.Fatal("a push into a full queue returned before the checkpointer took anything")
	case <-time.After(50 * time.Millisecond):
	}
	if recs, closed := q.take(); len(recs) != 1 || closed {
		t.Fatalf("take: %d records (closed %v), want 1", len(recs), closed)
	}
	<-pushed // room made: the writer goes on
	q.close()
	if recs, closed := q.take(); len(recs) != 1 || !closed {
		t.Fatalf("take after close: %d records (closed %v), want 1 and closed", len(recs), closed)
	}
}

func TestApplyLastWriteOfAKeyWins(t *testing.T) {
	st, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put := func(k, v string) Op { return Op{Bucket: bAlerts, Key: []byte(k), Value: []byte(v)} }
	del := func(k string) Op { return Op{Delete: true, Bucket: bAlerts, Key: []byte(k)} }
	recs := []*Record{
		{LSN: 1, Ops: []Op{put("a", "1"), put("b", "1"), put("c", "1")}},
		{LSN: 2, Ops: []Op{del("a"), put("b", "2"), put("b", "3")}},
		{LSN: 3, Ops: []Op{put("a", "4"), del("c"), put("d", "1")}},
		{LSN: 4, Ops: []Op{del("d")}},
	}
	if err := st.Apply(recs); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "4", "b": "3"}
	got := map[string]string{}
	err = st.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAlerts).ForEach(func(k, v []byte) error {
			got[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || got["a"] != want["a"] || got["b"] != want["b"] {
		t.Fatalf("after applying: %v, want %v", got, want)
	}
	if pos, err := st.Positions(); err != nil || pos.WALLSN != 4 {
		t.Fatalf("WAL LSN %d (%v), want 4", pos.WALLSN, err)
	}
}

// A log that cannot be written fails every submission waiting for it, and
// the service stops: nothing is acknowledged that is not on disk.
func TestWALFailureFailsWaitingSendersAndStops(t *testing.T) {
	s := newTestService(t, t.TempDir(), Options{ResolveAfter: time.Minute, ReopenWindow: time.Minute}, false)
	runErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.wal.f.Close(); err != nil { // every write now fails
		t.Fatal(err)
	}
	go func() { runErr <- s.Run(ctx) }()
	const senders = 8
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Submit(ctx, normalized(t, t0, event("alertname", "X", "instance", string(rune('a'+i)))))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil {
			t.Fatal("a submission was acknowledged although the log could not be written")
		}
	}
	select {
	case err := <-runErr:
		if err == nil || !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Run returned %v, want the write error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after the log failed")
	}
	if err := s.Submit(context.Background(), normalized(t, t0, event("alertname", "Y"))); !errors.Is(err, ErrStopped) {
		t.Fatalf("submit after the failure: %v, want ErrStopped", err)
	}
}

func TestChangesOfSkipsOtherKinds(t *testing.T) {
	_, st := fourChanges(t, t.TempDir())
	all, err := st.Changes(0, 100)
	if err != nil || len(all) != 4 {
		t.Fatalf("feed: %d changes (%v), want 4", len(all), err)
	}
	got, last, err := st.ChangesOf(0, 100, []string{triage.KindComment})
	if err != nil || len(got) != 1 || got[0].Entry.Kind != triage.KindComment || got[0].IncidentID != 1 {
		t.Fatalf("comments: %+v (%v), want the one comment on INC-1", got, err)
	}
	if last != all[3].Entry.Seq {
		t.Fatalf("cursor after a full read = %d, want the last entry %d", last, all[3].Entry.Seq)
	}
	// The limit counts entries looked at: the cursor stops at the second.
	got, last, err = st.ChangesOf(0, 2, []string{triage.KindComment})
	if err != nil || len(got) != 0 || last != all[1].Entry.Seq {
		t.Fatalf("limit 2: %+v, cursor %d (%v); want none and %d", got, last, err, all[1].Entry.Seq)
	}
	got, last, err = st.ChangesOf(all[3].Entry.Seq, 10, nil)
	if err != nil || len(got) != 0 || last != all[3].Entry.Seq {
		t.Fatalf("at the end: %+v, cursor %d (%v); want none and the same cursor", got, last, err)
	}
	// Entries written before the kind was indexed (an id only) are read
	// and filtered by their decoded kind.
	err = st.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketChanges)
		for _, c := range all {
			if err := b.Put(u64(c.Entry.Seq), u64(c.IncidentID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err = st.ChangesOf(0, 100, []string{triage.KindAcknowledged})
	if err != nil || len(got) != 1 || got[0].IncidentID != 2 || got[0].Entry.Kind != triage.KindAcknowledged {
		t.Fatalf("legacy entries: %+v (%v), want the acknowledgement of INC-2", got, err)
	}
}

func TestIncidentOpeners(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, t.TempDir(), Options{ResolveAfter: time.Hour, ReopenWindow: time.Hour}, true)
	first := normalized(t, t0, event("alertname", "A", "service", "x", "instance", "1"))
	if err := s.Submit(ctx, first); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(time.Minute)
	if err := s.Submit(ctx, normalized(t, t0, event("alertname", "A", "service", "x", "instance", "2"),
		event("alertname", "A", "service", "x", "instance", "3"))); err != nil {
		t.Fatal(err)
	}
	st := s.synced(t)
	full, err := st.Incident(1)
	if err != nil || len(full.Alerts) != 3 {
		t.Fatalf("INC-1: %v alerts (%v), want 3", full, err)
	}
	inc, err := st.IncidentOpeners(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(inc.Alerts) != 1 || inc.Alerts[0].Fingerprint != first[0].Fingerprint ||
		inc.Alerts[0].Labels["instance"] != "1" || !inc.Alerts[0].FirstSeen.Equal(inc.OpenedAt) {
		t.Fatalf("openers of INC-1: %+v, want only the alert on instance 1", inc.Alerts)
	}
	if inc.Key != "INC-1" || inc.AlertCount != 3 {
		t.Fatalf("record: %s with %d alerts, want INC-1 with 3", inc.Key, inc.AlertCount)
	}
	if _, err := st.IncidentOpeners(99); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown incident: %v, want ErrNotFound", err)
	}
}

// Segments are zero-filled ahead of the records; after a crash the zeros
// end the replay like a torn end, in the last segment and in older ones.
func TestWALPreallocatedTail(t *testing.T) {
	dir := t.TempDir()
	w, _ := openWAL(t, dir, 0, 1<<20)
	appendN(t, w, 1, 5)
	segs := segments(t, dir)
	fi, err := os.Stat(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < preallocChunk {
		t.Fatalf("open segment is %d bytes, want at least the %d zero-filled ahead", fi.Size(), preallocChunk)
	}
	// A crash now: the file keeps its zeros. A second process opens it.
	w2, got := openWAL(t, dir, 0, 1<<20)
	if len(got) != 5 || got[4].LSN != 5 {
		t.Fatalf("after a crash with a zero-filled tail: %d records, want 5", len(got))
	}
	appendN(t, w2, 6, 2)
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	w.f = nil // the crashed writer's file is gone with it
	if fi, err = os.Stat(segs[0]); err != nil || fi.Size() >= preallocChunk {
		t.Fatalf("closed segment is %d bytes (%v): its zeros should be cut", fi.Size(), err)
	}
	_, got = openWAL(t, dir, 0, 1<<20)
	if len(got) != 7 || got[6].LSN != 7 {
		t.Fatalf("after reopening: %d records, want 7", len(got))
	}

	// An older segment ending in zeros (a crash right after a rollover) is
	// intact; one with data after its zeros is damaged.
	dir = t.TempDir()
	w, _ = openWAL(t, dir, 0, 200)
	appendN(t, w, 1, 6)
	w.Close()
	segs = segments(t, dir)
	if len(segs) < 2 {
		t.Fatalf("%d segments, want rotation", len(segs))
	}
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	w, got = openWAL(t, dir, 0, 200)
	w.Close()
	if len(got) != 6 {
		t.Fatalf("older segment with a zero tail: %d records, want 6", len(got))
	}
	f, err = os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{7}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := OpenWAL(dir, 0, 200, func(*Record) error { return nil }); !errors.Is(err, ErrWALCorrupt) {
		t.Fatalf("older segment with data after its zeros: %v, want ErrWALCorrupt", err)
	}
}

func TestMayBeFirstSeen(t *testing.T) {
	at := t0.Add(90 * time.Second)
	other := t0.Add(time.Hour)
	js := func(a triage.Alert) []byte {
		b, err := a.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		a    triage.Alert
		want bool
	}{
		{"the field", triage.Alert{Fingerprint: "f", FirstSeen: at, LastSeen: at}, true},
		{"another time", triage.Alert{Fingerprint: "f", FirstSeen: other, LastSeen: at}, false},
		{"the same instant in another zone", triage.Alert{Fingerprint: "f", FirstSeen: at.In(time.FixedZone("X", 3600))}, true},
		{"a label of that name first, then the field", triage.Alert{Fingerprint: "f", FirstSeen: at,
			Labels: map[string]string{"first_seen": other.Format(time.RFC3339Nano)}}, true},
		{"only a label holds the time", triage.Alert{Fingerprint: "f", FirstSeen: other,
			Labels: map[string]string{"first_seen": at.Format(time.RFC3339Nano)}}, true}, // decoded, then rejected
		{"a label with a quote", triage.Alert{Fingerprint: "f", FirstSeen: other,
			Labels: map[string]string{"first_seen": `"first_seen":"x`}}, false},
	} {
		if got := mayBeFirstSeen(js(tc.a), at); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Values outgrowing the record's estimated buffer stay whole and separate.
func TestBuildRecordArenaGrowth(t *testing.T) {
	e := NewEngine(defaultOpts(), NewLabelGrouper([]string{"alertname"}, time.Hour))
	var evs []triage.Event
	for i := range 20 {
		ev := triage.Event{Labels: map[string]string{"alertname": "A", "i": strconv.Itoa(i)},
			Annotations: map[string]string{"summary": strings.Repeat("x", 100*i)}}
		if err := ev.Normalize(t0); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	for i := range evs {
		e.Process(&evs[i], t0)
	}
	ch := e.Flush()
	var b recordBuilder
	rec, err := b.build(nil, t0, &ch, e.LastID())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, op := range rec.Ops {
		if op.Bucket != bAlerts {
			continue
		}
		n++
		var a triage.Alert
		if err := json.Unmarshal(op.Value, &a); err != nil {
			t.Fatalf("alert record %q: %v", op.Key, err)
		}
		want, _ := json.Marshal(&a)
		if !bytes.Equal(op.Value, want) || len(op.Value) != cap(op.Value) {
			t.Fatalf("alert record %q is not whole or not its own (len %d, cap %d)", op.Key, len(op.Value), cap(op.Value))
		}
	}
	if n != 20 {
		t.Fatalf("%d alert records, want 20", n)
	}
}

// Enough queued records start a checkpoint before its interval is up,
// without a reader asking for one.
func TestCheckpointEarlyBySize(t *testing.T) {
	s := newTestServiceWith(t, t.TempDir(), Options{ResolveAfter: time.Hour, ReopenWindow: time.Hour}, true, func(s *Service) {
		s.opts.CheckpointInterval = time.Hour
		s.ckq.early = 1 // any record
	})
	if err := s.Submit(context.Background(), normalized(t, t0, event("alertname", "X"))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pos, err := s.store.Positions()
		if err != nil {
			t.Fatal(err)
		}
		if pos.WALLSN > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint within 10s although the queue passed its early size")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
