package correlate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/internal/testenv"
)

type testService struct {
	*Service
	store *Store
	reg   *prometheus.Registry
	clock *testenv.Clock
	stop  func()
	// startLater runs the service when it was created with start false.
	startLater func()
}

func newTestService(t *testing.T, dir string, opts Options, start bool) *testService {
	t.Helper()
	return newTestServiceWith(t, dir, opts, start, nil)
}

// synced waits until the store shows every acknowledged write, then returns it.
func (ts *testService) synced(t *testing.T) *Store {
	t.Helper()
	if err := ts.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ts.store
}

// newTestServiceWith lets a test change the service before it runs.
func newTestServiceWith(t *testing.T, dir string, opts Options, start bool, tweak func(*Service)) *testService {
	t.Helper()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	clock := testenv.NewClock(t0)
	reg := prometheus.NewRegistry()
	svc, err := NewService(ServiceOptions{
		Store:           st,
		WALDir:          WALDir(dir),
		WALSegmentBytes: 4096, // small segments: rotation and release run in every test
		NewEngine: func() *Engine {
			if opts.Topology != nil {
				return NewEngine(opts, NewCorrelator(opts.Topology, CorrelatorOptions{
					Window: 10 * time.Minute, MaxHops: 3, GroupBy: []string{"alertname", "service"}}))
			}
			return NewEngine(opts, NewLabelGrouper([]string{"alertname", "service"}, 10*time.Minute))
		},
		Now:            clock.Now,
		Registry:       reg,
		TickInterval:   time.Hour, // tests tick by submitting
		EventRetention: 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(svc)
	}
	ts := &testService{Service: svc, store: st, reg: reg, clock: clock}
	var once sync.Once
	var started bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ts.stop = func() {
		once.Do(func() {
			cancel()
			if started {
				<-done
			}
			_ = svc.wal.Close()
			if err := st.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	run := func() {
		started = true
		go func() {
			defer close(done)
			_ = svc.Run(ctx)
		}()
	}
	if start {
		run()
	} else {
		ts.startLater = run
	}
	t.Cleanup(ts.stop)
	return ts
}

func event(labels ...string) triage.Event {
	ev := triage.Event{Labels: map[string]string{}}
	for i := 0; i+1 < len(labels); i += 2 {
		ev.Labels[labels[i]] = labels[i+1]
	}
	return ev
}

func normalized(t *testing.T, now time.Time, evs ...triage.Event) []triage.Event {
	t.Helper()
	for i := range evs {
		if err := evs[i].Normalize(now); err != nil {
			t.Fatal(err)
		}
	}
	return evs
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	opts := Options{ResolveAfter: 5 * time.Minute, ReopenWindow: 30 * time.Minute}

	s := newTestService(t, dir, opts, true)
	if err := s.Submit(ctx, normalized(t, t0,
		event("alertname", "X", "service", "orders", "instance", "a"),
		event("alertname", "X", "service", "orders", "instance", "b"),
		event("alertname", "Y", "service", "payments"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Acknowledge(ctx, 1, "alice"); err != nil {
		t.Fatal(err)
	}
	s.clock.Set(t0.Add(time.Minute))
	resolved := event("alertname", "Y", "service", "payments")
	resolved.Status = triage.AlertResolved
	if err := s.Submit(ctx, normalized(t, s.clock.Now(), resolved)); err != nil {
		t.Fatal(err)
	}
	s.stop()

	// A new process: same data dir, fresh engine rebuilt from the store.
	s2 := newTestService(t, dir, opts, true)
	s2.clock.Set(t0.Add(2 * time.Minute))
	if err := s2.Submit(ctx, normalized(t, s2.clock.Now(),
		event("alertname", "X", "service", "orders", "instance", "a"), // duplicate
		event("alertname", "X", "service", "orders", "instance", "c"), // joins INC-1
		event("alertname", "Z", "service", "orders"))); err != nil {   // new: INC-3, not a reused id
		t.Fatal(err)
	}
	inc, err := s2.synced(t).Incident(1)
	if err != nil {
		t.Fatal(err)
	}
	if inc.AlertCount != 3 || inc.EventCount != 4 || inc.Status != triage.IncidentAcknowledged {
		t.Fatalf("INC-1 after restart: alerts %d events %d status %s, want 3, 4, acknowledged", inc.AlertCount, inc.EventCount, inc.Status)
	}
	incs, err := s2.synced(t).Incidents(IncidentFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(incs) != 3 || incs[0].Key != "INC-3" {
		t.Fatalf("incidents after restart: %d, newest %s; want 3, INC-3", len(incs), incs[0].Key)
	}
	// The auto-resolve timer of INC-2 survived the restart.
	s2.clock.Set(t0.Add(7 * time.Minute))
	if err := s2.Submit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if inc, _ := s2.synced(t).Incident(2); inc.Status != triage.IncidentResolved || !inc.ResolvedAt.Equal(t0.Add(6*time.Minute)) {
		t.Fatalf("INC-2 status %s resolved_at %v, want resolved at 10:06", inc.Status, inc.ResolvedAt)
	}
	kinds := ""
	for _, e := range inc.Timeline {
		kinds += e.Kind + " "
	}
	if kinds != "opened alert_added acknowledged alert_added " {
		t.Fatalf("INC-1 timeline: %s", kinds)
	}
	logged, err := s2.synced(t).Events(0, 100)
	if err != nil || len(logged) != 7 {
		t.Fatalf("event log has %d events (%v), want 7", len(logged), err)
	}
}

func TestConcurrentSubmissionsShareOneCommit(t *testing.T) {
	s := newTestService(t, t.TempDir(), Options{ResolveAfter: time.Minute, ReopenWindow: time.Minute}, false)
	const senders = 50
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for i := 0; i < senders; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Submit(context.Background(), normalized(t, t0, event("alertname", "X", "instance", fmt.Sprint(i))))
		}()
	}
	// Hold the service back until every sender has queued its events.
	for len(s.in) < senders {
		time.Sleep(time.Millisecond)
	}
	s.startLater()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := testutil.CollectAndCount(s.reg, "triage_store_wal_append_duration_seconds"); n != 1 {
		t.Fatalf("wal append histogram series = %d", n)
	}
	commits := histogramCount(t, s.reg, "triage_store_wal_append_duration_seconds")
	if commits != 1 {
		t.Fatalf("%d senders caused %d fsynced appends, want 1 shared", senders, commits)
	}
	if got := testutil.ToFloat64(s.m.events); got != senders {
		t.Fatalf("events applied = %v", got)
	}
}

func TestSubmitAfterStopFails(t *testing.T) {
	s := newTestService(t, t.TempDir(), Options{}, true)
	s.stop()
	err := s.Submit(context.Background(), normalized(t, t0, event("alertname", "X")))
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("submit after stop: %v, want ErrStopped", err)
	}
}

func TestCommentOnEvictedIncident(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, t.TempDir(), Options{ResolveAfter: 0, ReopenWindow: time.Minute}, true)
	ev := event("alertname", "X")
	if err := s.Submit(ctx, normalized(t, t0, ev)); err != nil {
		t.Fatal(err)
	}
	if err := s.Resolve(ctx, 1, "alice", "fixed"); err != nil {
		t.Fatal(err)
	}
	s.clock.Set(t0.Add(time.Hour)) // past the reopen window: evicted at the next step
	if err := s.Submit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if s.engine.LiveAlerts() != 0 {
		t.Fatal("incident not evicted")
	}
	if err := s.Comment(ctx, 1, "bob", "postmortem on Monday"); err != nil {
		t.Fatal(err)
	}
	if err := s.Acknowledge(ctx, 1, "bob"); !errors.Is(err, ErrConflict) {
		t.Fatalf("acknowledge of an archived resolved incident: %v, want ErrConflict", err)
	}
	if err := s.Resolve(ctx, 1, "bob", ""); err != nil {
		t.Fatalf("resolve of an archived resolved incident: %v, want no-op", err)
	}
	if err := s.Acknowledge(ctx, 99, "bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("acknowledge of an unknown incident: %v", err)
	}
	if err := s.Comment(ctx, 99, "bob", "nothing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("comment on unknown incident: %v", err)
	}
	inc, err := s.synced(t).Incident(1)
	if err != nil {
		t.Fatal(err)
	}
	last := inc.Timeline[len(inc.Timeline)-1]
	if last.Kind != triage.KindComment || last.Actor != "bob" || last.Message != "postmortem on Monday" {
		t.Fatalf("last timeline entry %+v", last)
	}
}

// TestBuildRecordJSON: a record holds what json.Marshal makes of the
// incidents, alert details and timeline entries of a step, and each value
// is the record's own: building the next record leaves it as it was.
func TestBuildRecordJSON(t *testing.T) {
	e := NewEngine(defaultOpts(), NewLabelGrouper([]string{"alertname"}, time.Hour))
	var b recordBuilder
	step := func(evs []triage.Event, now time.Time) (*Record, Changes) {
		t.Helper()
		for i := range evs {
			e.Process(&evs[i], now)
		}
		ch := e.Flush()
		rec, err := b.build(nil, now, &ch, e.LastID())
		if err != nil {
			t.Fatal(err)
		}
		return rec, ch
	}
	rec, ch := step(normalized(t, t0,
		event("alertname", "Disk <full> & slow", "instance", "h1", "note", "line\u2028sep"),
		event("alertname", "Disk <full> & slow", "instance", "h2"),
		event("alertname", "B", "severity", "critical")), t0)
	want := map[string]string{}
	add := func(bucket uint8, key []byte, v any) {
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprintf("%d/%x", bucket, key)] = string(js)
	}
	for _, inc := range ch.Incidents {
		add(bIncidents, u64(inc.ID), inc)
	}
	for _, a := range ch.AlertDetails {
		add(bAlerts, alertKey(a.IncidentID, a.Fingerprint), a)
	}
	for _, tc := range ch.Timeline {
		add(bTimeline, append(u64(tc.IncidentID), u64(tc.Entry.Seq)...), &tc.Entry)
	}
	if len(ch.Incidents) != 2 || len(ch.AlertDetails) != 3 || len(ch.Timeline) == 0 {
		t.Fatalf("step changed %d incidents, %d alerts, %d timeline entries", len(ch.Incidents), len(ch.AlertDetails), len(ch.Timeline))
	}
	check := func() {
		t.Helper()
		n := 0
		for _, op := range rec.Ops {
			if op.Bucket != bIncidents && op.Bucket != bAlerts && op.Bucket != bTimeline {
				continue
			}
			n++
			k := fmt.Sprintf("%d/%x", op.Bucket, op.Key)
			if string(op.Value) != want[k] {
				t.Fatalf("%s: record holds\n%s\njson.Marshal\n%s", k, op.Value, want[k])
			}
		}
		if n != len(want) {
			t.Fatalf("record holds %d JSON values, want %d", n, len(want))
		}
	}
	check()
	step(normalized(t, t0.Add(time.Minute),
		event("alertname", "Disk <full> & slow", "instance", "h3", "summary", "a much longer label value than before"),
		event("alertname", "C")), t0.Add(time.Minute))
	check()
}

func TestPruneEvents(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var b recordBuilder
	for i := 0; i < 5; i++ {
		rec, err := b.build(normalized(t, t0, event("alertname", "X")), t0.Add(time.Duration(i)*time.Hour), &Changes{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		rec.LSN = uint64(i + 1)
		if err := st.Apply([]*Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := st.PruneEvents(t0.Add(150*time.Minute), 100)
	if err != nil || n != 3 {
		t.Fatalf("pruned %d (%v), want 3", n, err)
	}
	left, _ := st.Events(0, 10)
	if len(left) != 2 || left[0].Seq != 4 || !left[0].ReceivedAt.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("left %+v", left)
	}
}

func histogramCount(t *testing.T, g prometheus.Gatherer, name string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestAlertDetailsWrittenOnceAndOnChange(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, t.TempDir(), Options{ResolveAfter: time.Minute, ReopenWindow: time.Minute}, true)
	withAnn := func(summary string) triage.Event {
		ev := event("alertname", "X", "service", "orders")
		ev.Annotations = map[string]string{"summary": summary}
		ev.GeneratorURL = "http://prom/graph"
		return ev
	}
	for i := 0; i < 3; i++ {
		if err := s.Submit(ctx, normalized(t, t0, withAnn("first"))); err != nil {
			t.Fatal(err)
		}
	}
	inc, err := s.synced(t).Incident(1)
	if err != nil {
		t.Fatal(err)
	}
	if a := inc.Alerts[0]; a.Count != 3 || a.Annotations["summary"] != "first" || a.GeneratorURL != "http://prom/graph" {
		t.Fatalf("stored alert %+v: want count 3 with its annotations", a)
	}
	if n := len(s.engine.alerts); n != 1 {
		t.Fatalf("%d live alerts", n)
	}
	for _, a := range s.engine.alerts {
		if a.Annotations != nil || a.GeneratorURL != "" {
			t.Fatal("annotations of a written alert are still held in memory")
		}
	}
	if err := s.Submit(ctx, normalized(t, t0, withAnn("second"))); err != nil {
		t.Fatal(err)
	}
	inc, _ = s.synced(t).Incident(1)
	if a := inc.Alerts[0]; a.Count != 4 || a.Annotations["summary"] != "second" {
		t.Fatalf("stored alert %+v: want count 4 and the changed annotation", a)
	}
	if inc.Title != "first" {
		t.Fatalf("title %q: the incident keeps the title it opened with", inc.Title)
	}
}

func TestAlertStateEncoding(t *testing.T) {
	tests := []triage.Alert{
		{Status: triage.AlertFiring, Count: 1, StartsAt: t0, LastSeen: t0.Add(time.Second), Severity: "critical"},
		{Status: triage.AlertResolved, Count: 1 << 40, StartsAt: t0, EndsAt: t0.Add(time.Hour), LastSeen: t0.Add(time.Hour)},
		{Status: triage.AlertFiring},
	}
	for _, a := range tests {
		var got triage.Alert
		if err := decodeState(encodeState(&a), &got); err != nil {
			t.Fatal(err)
		}
		if got.Status != a.Status || got.Count != a.Count || !got.StartsAt.Equal(a.StartsAt) ||
			!got.EndsAt.Equal(a.EndsAt) || !got.LastSeen.Equal(a.LastSeen) || got.Severity != a.Severity {
			t.Errorf("round trip of %+v gave %+v", a, got)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0, 2}, {1, 0, 0x80}} {
		var a triage.Alert
		if err := decodeState(bad, &a); err == nil {
			t.Errorf("decodeState(%v) accepted malformed input", bad)
		}
	}
}

// TestRecoveryFromTheLogAlone: the process dies after acknowledging but
// before any checkpoint; the next start replays the log into the store.
func TestRecoveryFromTheLogAlone(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	opts := Options{ResolveAfter: 5 * time.Minute, ReopenWindow: 30 * time.Minute}
	s := newTestServiceWith(t, dir, opts, true, func(s *Service) { s.noCheckpoint = true })
	for i := 0; i < 20; i++ {
		if err := s.Submit(ctx, normalized(t, t0, event("alertname", "X", "service", "orders", "instance", fmt.Sprint(i%7)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Acknowledge(ctx, 1, "alice"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.store.HasIncident(1); ok {
		t.Fatal("the store has the incident although no checkpoint ran")
	}
	if s.wal.Segments() < 2 {
		t.Fatalf("%d wal segments: the test wants several", s.wal.Segments())
	}
	s.stop()

	s2 := newTestService(t, dir, opts, true)
	if err := s2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	inc, err := s2.synced(t).Incident(1)
	if err != nil {
		t.Fatalf("after replaying the log: %v", err)
	}
	if inc.AlertCount != 7 || inc.EventCount != 20 || inc.Status != triage.IncidentAcknowledged {
		t.Fatalf("replayed INC-1: alerts %d events %d status %s, want 7, 20, acknowledged", inc.AlertCount, inc.EventCount, inc.Status)
	}
	// The replayed state is live: a repeat deduplicates, a new alert joins.
	if err := s2.Submit(ctx, normalized(t, t0, event("alertname", "X", "service", "orders", "instance", "0"),
		event("alertname", "X", "service", "orders", "instance", "new"))); err != nil {
		t.Fatal(err)
	}
	if err := s2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	inc, _ = s2.synced(t).Incident(1)
	if inc.AlertCount != 8 || inc.EventCount != 22 || len(inc.Timeline) != 9 {
		t.Fatalf("INC-1: alerts %d events %d timeline %d, want 8, 22, 9", inc.AlertCount, inc.EventCount, len(inc.Timeline))
	}
	if n := s2.wal.Segments(); n != 1 {
		t.Fatalf("%d wal segments after checkpoints, want 1 (the open one)", n)
	}
	if logged, _ := s2.synced(t).Events(0, 100); len(logged) != 22 {
		t.Fatalf("event log has %d events, want 22", len(logged))
	}
}

func TestRedeliveredMessagesApplyOnce(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	opts := Options{ResolveAfter: time.Minute, ReopenWindow: time.Minute}
	msg := func(part string, off int64, instance string) Message {
		return Message{Partition: part, Offset: off, Events: normalized(t, t0, event("alertname", "X", "instance", instance))}
	}
	s := newTestService(t, dir, opts, true)
	n, err := s.SubmitMessages(ctx, []Message{msg("alerts/0", 0, "a"), msg("alerts/0", 1, "a"), msg("alerts/1", 0, "b")})
	if err != nil || n != 3 {
		t.Fatalf("applied %d (%v), want 3", n, err)
	}
	s.stop()

	// After a restart the consumer resumes from its last commit, which may
	// lag: offsets 1 and 0 come again, with one new message.
	s2 := newTestService(t, dir, opts, true)
	n, err = s2.SubmitMessages(ctx, []Message{msg("alerts/0", 1, "a"), msg("alerts/1", 0, "b"), msg("alerts/1", 1, "b")})
	if err != nil || n != 1 {
		t.Fatalf("applied %d (%v) of a redelivery, want only the 1 new message", n, err)
	}
	inc, err := s2.synced(t).Incident(1)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, a := range inc.Alerts {
		counts[a.Labels["instance"]] = a.Count
	}
	if counts["a"] != 2 || counts["b"] != 2 || inc.EventCount != 4 {
		t.Fatalf("counts %v, events %d: want a=2 b=2, 4 events (each message once)", counts, inc.EventCount)
	}
	if got := testutil.ToFloat64(s2.m.redelivered); got != 2 {
		t.Fatalf("redelivered = %v, want 2", got)
	}
}

func TestMergedIncidentsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	opts := Options{ResolveAfter: 5 * time.Minute, ReopenWindow: 30 * time.Minute, Topology: testTopology(t)}
	web := event("alertname", "HighLatency", "ci", "svc-web")
	cache := event("alertname", "RedisDown", "ci", "cache-orders")
	host := event("alertname", "HostDown", "ci", "host-2")

	s := newTestService(t, dir, opts, true)
	for _, ev := range []triage.Event{web, cache, host} { // host-2 links the two: INC-2 merges into INC-1
		if err := s.Submit(ctx, normalized(t, s.clock.Now(), ev)); err != nil {
			t.Fatal(err)
		}
	}
	s.stop()

	s2 := newTestService(t, dir, opts, true)
	s2.clock.Set(t0.Add(time.Minute))
	if err := s2.Submit(ctx, normalized(t, s2.clock.Now(), cache)); err != nil { // a repeat of a merged alert
		t.Fatal(err)
	}
	st := s2.synced(t)
	inc, err := st.Incident(1)
	if err != nil {
		t.Fatal(err)
	}
	if inc.AlertCount != 3 || len(inc.Alerts) != 3 || inc.EventCount != 4 || inc.RootCause.CI != "host-2" {
		t.Fatalf("INC-1 after restart: %d alerts (%d listed), %d events, root %s; want 3, 3, 4, host-2",
			inc.AlertCount, len(inc.Alerts), inc.EventCount, inc.RootCause.CI)
	}
	for _, a := range inc.Alerts {
		if a.IncidentID != 1 {
			t.Errorf("alert %s listed with incident %d, want 1", a.Labels["alertname"], a.IncidentID)
		}
		if a.Labels["alertname"] == "RedisDown" && a.Count != 2 {
			t.Errorf("the merged alert's count is %d after its repeat, want 2", a.Count)
		}
	}
	merged, err := st.Incident(2)
	if err != nil {
		t.Fatal(err)
	}
	if merged.MergedInto == nil || *merged.MergedInto != 1 || merged.Status != triage.IncidentResolved {
		t.Fatalf("INC-2: merged_into %v status %s", merged.MergedInto, merged.Status)
	}
	if n := s2.engine.OpenIncidents(); n != 1 {
		t.Fatalf("%d open incidents after restart, want 1", n)
	}
}
