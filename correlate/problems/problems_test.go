package problems_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/correlate/problems"
)

// clock is the injected clock of the service and the tracker.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a real correlation service (CMDB-less label grouping, incidents
// resolve as soon as their alerts do and a re-fire opens a new incident)
// and a problem tracker following it, on one data dir.
type env struct {
	t     *testing.T
	dir   string
	clk   *clock
	store *correlate.Store
	svc   *correlate.Service
	stopS func()

	tr    *problems.Tracker
	reg   *prometheus.Registry
	stopT func()
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, dir: t.TempDir(), clk: newClock()}
	e.startService()
	return e
}

func (e *env) startService() {
	t := e.t
	t.Helper()
	st, err := correlate.OpenStore(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := correlate.NewService(correlate.ServiceOptions{
		Store:  st,
		WALDir: correlate.WALDir(e.dir),
		NewEngine: func() *correlate.Engine {
			return correlate.NewEngine(correlate.Options{ResolveAfter: 0, ReopenWindow: 0},
				correlate.NewLabelGrouper([]string{"alertname", "service"}, 10*time.Minute))
		},
		Now:                e.clk.Now,
		CheckpointInterval: 2 * time.Millisecond,
		TickInterval:       time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	e.store, e.svc = st, svc
	stopped := false
	e.stopS = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		_ = st.Close()
	}
	t.Cleanup(func() { e.stopS() })
}

// startTracker runs a tracker on the env's problems.db; edit adjusts its
// options.
func (e *env) startTracker(edit func(*problems.Options)) *problems.Tracker {
	t := e.t
	t.Helper()
	e.reg = prometheus.NewRegistry()
	opts := problems.Options{
		Path: filepath.Join(e.dir, "problems.db"), Source: e.store, Recorder: e.svc,
		PollInterval: 2 * time.Millisecond, MinBackoff: 2 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Now: e.clk.Now, Registry: e.reg,
	}
	if edit != nil {
		edit(&opts)
	}
	tr, err := problems.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = tr.Run(ctx) }()
	e.tr = tr
	stopped := false
	e.stopT = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { e.stopT() })
	return tr
}

func (e *env) send(status triage.AlertStatus, labels ...string) {
	e.t.Helper()
	ev := triage.Event{Status: status, Labels: map[string]string{}}
	for i := 0; i+1 < len(labels); i += 2 {
		ev.Labels[labels[i]] = labels[i+1]
	}
	if err := ev.Normalize(e.clk.Now()); err != nil {
		e.t.Fatal(err)
	}
	if err := e.svc.Submit(context.Background(), []triage.Event{ev}); err != nil {
		e.t.Fatal(err)
	}
}

// recur fires an alert, which opens a new incident, resolves it (and so
// the incident) a minute later, and lets an hour pass. It returns the
// incident's id.
func (e *env) recur(labels ...string) uint64 {
	e.t.Helper()
	e.send(triage.AlertFiring, labels...)
	if err := e.svc.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	incs, err := e.store.Incidents(correlate.IncidentFilter{Limit: 1})
	if err != nil || len(incs) != 1 {
		e.t.Fatalf("newest incident: %v %v", incs, err)
	}
	e.clk.Advance(time.Minute)
	e.send(triage.AlertResolved, labels...)
	e.clk.Advance(time.Hour)
	return incs[0].ID
}

// idle waits until the tracker evaluated every change and recorded every
// link.
func (e *env) idle() {
	e.t.Helper()
	if err := e.svc.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	eventually(e.t, "the tracker is idle", func() bool {
		ok, err := e.tr.Idle()
		if err != nil {
			e.t.Fatal(err)
		}
		return ok
	})
}

func (e *env) incident(id uint64) *triage.Incident {
	e.t.Helper()
	if err := e.svc.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	inc, err := e.store.Incident(id)
	if err != nil {
		e.t.Fatal(err)
	}
	return inc
}

// checkLinked checks the incidents are linked to the problem, each with
// exactly one problem entry on its timeline.
func (e *env) checkLinked(problem uint64, ids ...uint64) {
	e.t.Helper()
	for _, id := range ids {
		inc := e.incident(id)
		if inc.ProblemID == nil || *inc.ProblemID != problem {
			e.t.Errorf("%s: problem_id %v, want %d", inc.Key, inc.ProblemID, problem)
		}
		var entries []triage.TimelineEntry
		for _, te := range inc.Timeline {
			if te.Kind == triage.KindProblem {
				entries = append(entries, te)
			}
		}
		if len(entries) != 1 || entries[0].Actor != problems.Actor || entries[0].Message != "linked to problem "+triage.ProblemKey(problem) {
			e.t.Errorf("%s: problem entries %+v, want one by %q", inc.Key, entries, problems.Actor)
		}
	}
}

func (e *env) checkUnlinked(ids ...uint64) {
	e.t.Helper()
	for _, id := range ids {
		if inc := e.incident(id); inc.ProblemID != nil {
			e.t.Errorf("%s: linked to %d, want none", inc.Key, *inc.ProblemID)
		}
	}
}

func (e *env) all() []problems.Problem {
	e.t.Helper()
	all, err := e.tr.All()
	if err != nil {
		e.t.Fatal(err)
	}
	return all
}

func (e *env) metric(name string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if m.GetGauge() != nil {
			return m.GetGauge().GetValue()
		}
		return m.GetCounter().GetValue()
	}
	e.t.Fatalf("no metric %s", name)
	return 0
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var (
	orders  = []string{"alertname", "HighErrorRate", "service", "orders", "instance", "db-orders:9100", "severity", "critical"}
	billing = []string{"alertname", "DiskFull", "service", "billing", "instance", "fs-1:9100"}
)

// The third recurrence opens one problem that links all three incidents,
// preferring the root CI when the signature reaches the threshold too; a
// fourth links to it; a different alert does not.
func TestThresholdOpensOneProblem(t *testing.T) {
	e := newEnv(t)
	e.startTracker(nil)
	i1, i2 := e.recur(orders...), e.recur(orders...)
	e.idle()
	if all := e.all(); len(all) != 0 {
		t.Fatalf("problems after 2 incidents: %+v", all)
	}
	opened := e.clk.Now()
	i3 := e.recur(orders...)
	e.idle()
	all := e.all()
	if len(all) != 1 {
		t.Fatalf("problems: %+v", all)
	}
	p := all[0]
	if p.ID != 1 || p.Key != "PRB-1" || p.Status != problems.StatusOpen || p.KeyKind != problems.ByRootCI ||
		p.RootCI != "db-orders" || p.Signature != "" || p.IncidentCount != 3 || !slices.Equal(p.Incidents, []uint64{i1, i2, i3}) ||
		p.Title != "Recurring: db-orders (root CI), 3 incidents in 30 days" || p.ResolvedAt != nil || !p.OpenedAt.Equal(opened) {
		t.Fatalf("problem: %+v", p)
	}
	e.checkLinked(1, i1, i2, i3)

	i4 := e.recur(orders...)
	d1 := e.recur(billing...)
	d2 := e.recur(billing...)
	e.idle()
	got, err := e.tr.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	if got.IncidentCount != 4 || !slices.Equal(got.Incidents, []uint64{i1, i2, i3, i4}) || got.Version <= p.Version || got.UpdatedAt.Before(p.UpdatedAt) {
		t.Fatalf("after a 4th incident: %+v (was %+v)", got, p)
	}
	e.checkLinked(1, i4)
	e.checkUnlinked(d1, d2)
	if all := e.all(); len(all) != 1 {
		t.Fatalf("problems: %+v", all)
	}
	for name, want := range map[string]float64{"triage_problems_open": 1, "triage_problems_opened_total": 1, "triage_problem_links_total": 4} {
		if got := e.metric(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// Incidents of one alert on different CIs recur by signature.
func TestSignatureRecurrence(t *testing.T) {
	e := newEnv(t)
	e.startTracker(nil)
	var ids []uint64
	for _, host := range []string{"h1", "h2", "h3"} {
		ids = append(ids, e.recur("alertname", "HighErrorRate", "service", "orders", "instance", host+":8080"))
	}
	e.idle()
	all := e.all()
	if len(all) != 1 || all[0].KeyKind != problems.BySignature || all[0].Signature != "HighErrorRate@orders" || all[0].RootCI != "" ||
		all[0].Title != "Recurring: HighErrorRate@orders (signature), 3 incidents in 30 days" {
		t.Fatalf("problems: %+v", all)
	}
	e.checkLinked(1, ids...)
}

// Occurrences older than the window do not count.
func TestWindowExpiry(t *testing.T) {
	e := newEnv(t)
	e.startTracker(nil)
	const day = 24 * time.Hour
	old1 := e.recur(orders...)
	e.clk.Advance(10 * day)
	old2 := e.recur(orders...)
	e.clk.Advance(35 * day) // old1 is 45 days back, old2 35
	i3 := e.recur(orders...)
	e.idle()
	if all := e.all(); len(all) != 0 {
		t.Fatalf("problems with two incidents out of the window: %+v", all)
	}
	e.clk.Advance(5 * day)
	i4 := e.recur(orders...)
	e.clk.Advance(5 * day)
	i5 := e.recur(orders...)
	e.idle()
	all := e.all()
	if len(all) != 1 || !slices.Equal(all[0].Incidents, []uint64{i3, i4, i5}) {
		t.Fatalf("problems: %+v", all)
	}
	e.checkLinked(1, i3, i4, i5)
	e.checkUnlinked(old1, old2)
}

// A resolved problem frees its key: later recurrences open a new problem,
// and the old one cannot reopen while the new one is open.
func TestResolvedProblemThenRecurrence(t *testing.T) {
	e := newEnv(t)
	e.startTracker(nil)
	for range 3 {
		e.recur(orders...)
	}
	e.idle()
	ctx := context.Background()
	resolved := problems.StatusResolved
	p, err := e.tr.Update(ctx, 1, problems.Patch{Status: &resolved}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != problems.StatusResolved || p.ResolvedAt == nil || !p.ResolvedAt.Equal(e.clk.Now()) {
		t.Fatalf("resolved: %+v", p)
	}
	if got := e.metric("triage_problems_open"); got != 0 {
		t.Errorf("open problems %v", got)
	}
	i4 := e.recur(orders...)
	e.idle()
	if all := e.all(); len(all) != 1 {
		t.Fatalf("one recurrence after resolution opened a problem: %+v", all)
	}
	e.checkUnlinked(i4)
	i5, i6 := e.recur(orders...), e.recur(orders...)
	e.idle()
	all := e.all()
	if len(all) != 2 || all[1].ID != 2 || all[1].Status != problems.StatusOpen || !slices.Equal(all[1].Incidents, []uint64{i4, i5, i6}) {
		t.Fatalf("problems: %+v", all)
	}
	e.checkLinked(2, i4, i5, i6)

	open := problems.StatusOpen
	if _, err := e.tr.Update(ctx, 1, problems.Patch{Status: &open}, "alice"); !errors.Is(err, problems.ErrConflict) || !errors.Is(err, correlate.ErrConflict) {
		t.Fatalf("reopening PRB-1 while PRB-2 is open: %v", err)
	}
	if _, err := e.tr.Update(ctx, 2, problems.Patch{Status: &resolved}, "alice"); err != nil {
		t.Fatal(err)
	}
	p, err = e.tr.Update(ctx, 1, problems.Patch{Status: &open}, "alice")
	if err != nil || p.Status != problems.StatusOpen || p.ResolvedAt != nil {
		t.Fatalf("reopened: %+v %v", p, err)
	}
	i7 := e.recur(orders...)
	e.idle()
	e.checkLinked(1, i7)
	list, total, err := e.tr.List(problems.Filter{Status: problems.StatusResolved})
	if err != nil || total != 1 || len(list) != 1 || list[0].ID != 2 {
		t.Fatalf("resolved problems: %+v %d %v", list, total, err)
	}
}

// A problem marked a known error keeps linking; bad requests are
// ErrInvalid with a message.
func TestKnownErrorAndValidation(t *testing.T) {
	e := newEnv(t)
	e.startTracker(nil)
	for range 3 {
		e.recur(orders...)
	}
	e.idle()
	ctx := context.Background()
	before, err := e.tr.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	yes, wa := true, "fail over to the replica: make failover-orders"
	p, err := e.tr.Update(ctx, 1, problems.Patch{KnownError: &yes, Workaround: &wa}, "dba")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != problems.StatusKnownError || !p.KnownError || p.Workaround != wa || p.Version != before.Version+1 {
		t.Fatalf("known error: %+v", p)
	}
	same, err := e.tr.Update(ctx, 1, problems.Patch{Workaround: &wa}, "dba")
	if err != nil || same.Version != p.Version {
		t.Fatalf("an update that changes nothing: %+v %v", same, err)
	}
	i4 := e.recur(orders...)
	e.idle()
	e.checkLinked(1, i4)
	if got, _ := e.tr.Get(1); got.Status != problems.StatusKnownError || got.IncidentCount != 4 {
		t.Fatalf("known error after a recurrence: %+v", got)
	}
	list, total, err := e.tr.List(problems.Filter{Status: problems.StatusKnownError})
	if err != nil || total != 1 || len(list) != 1 {
		t.Fatalf("known errors: %+v %d %v", list, total, err)
	}
	no := false
	if p, err := e.tr.Update(ctx, 1, problems.Patch{KnownError: &no}, "dba"); err != nil || p.Status != problems.StatusOpen || p.KnownError {
		t.Fatalf("not a known error any more: %+v %v", p, err)
	}

	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name  string
		patch problems.Patch
		want  string
	}{
		{"unknown status", problems.Patch{Status: str("closed")}, `status "closed"`},
		{"long workaround", problems.Patch{Workaround: str(strings.Repeat("x", problems.MaxWorkaround+1))}, "workaround: 4097 bytes"},
		{"invalid utf-8", problems.Patch{Workaround: str("\xff")}, "UTF-8"},
		{"empty", problems.Patch{}, "nothing to change"},
		{"contradiction", problems.Patch{Status: str(problems.StatusKnownError), KnownError: &no}, "contradicts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.tr.Update(ctx, 1, tc.patch, "dba")
			if !errors.Is(err, problems.ErrInvalid) || !errors.Is(err, correlate.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrInvalid with %q", err, tc.want)
			}
		})
	}
	if _, err := e.tr.Update(ctx, 99, problems.Patch{Status: str(problems.StatusResolved)}, "dba"); !errors.Is(err, problems.ErrNotFound) {
		t.Fatalf("update of a missing problem: %v", err)
	}
	if _, err := e.tr.Get(99); !errors.Is(err, problems.ErrNotFound) || !errors.Is(err, correlate.ErrNotFound) || !strings.Contains(err.Error(), "PRB-99") {
		t.Fatalf("get of a missing problem: %v", err)
	}
	if _, _, err := e.tr.List(problems.Filter{Status: "closed"}); !errors.Is(err, problems.ErrInvalid) {
		t.Fatalf("list by an unknown status: %v", err)
	}
}

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{{"7", 7}, {"PRB-7", 7}, {"prb-12", 12}, {"", 0}, {"PRB-", 0}, {"0", 0}, {"INC-7", 0}, {"-1", 0}, {"7x", 0}} {
		got, err := problems.ParseRef(tc.in)
		if tc.want == 0 {
			if !errors.Is(err, problems.ErrInvalid) {
				t.Errorf("ParseRef(%q) = %d, %v; want ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRef(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// List pages newest first and counts every match.
func TestListPaging(t *testing.T) {
	e := newEnv(t)
	e.startTracker(func(o *problems.Options) { o.Threshold = 1; o.By = []string{problems.ByRootCI} })
	for _, host := range []string{"a", "b", "c", "d", "e"} {
		e.recur("alertname", "X", "instance", host)
	}
	e.idle()
	list, total, err := e.tr.List(problems.Filter{Limit: 2, Offset: 1})
	if err != nil || total != 5 || len(list) != 2 || list[0].ID != 4 || list[1].ID != 3 {
		t.Fatalf("page: %+v %d %v", list, total, err)
	}
	if list[0].Title != "Recurring: d (root CI), 1 incidents in 30 days" {
		t.Fatalf("title %q", list[0].Title)
	}
}

// A tracker stopped halfway (and the service restarted meanwhile) takes
// up where it stopped: one problem, every incident linked once.
func TestRestartInTheMiddle(t *testing.T) {
	e := newEnv(t)
	e.startTracker(nil)
	i1, i2 := e.recur(orders...), e.recur(orders...)
	e.idle()
	e.stopT()
	i3 := e.recur(orders...)
	e.stopS()
	e.startService()
	i4 := e.recur(orders...)
	e.startTracker(nil)
	e.idle()
	all := e.all()
	if len(all) != 1 || !slices.Equal(all[0].Incidents, []uint64{i1, i2, i3, i4}) || all[0].IncidentCount != 4 {
		t.Fatalf("problems: %+v", all)
	}
	e.checkLinked(1, i1, i2, i3, i4)
	i5 := e.recur(orders...)
	e.idle()
	e.checkLinked(1, i5)
	if all := e.all(); len(all) != 1 {
		t.Fatalf("problems: %+v", all)
	}
}

// flaky records links through the service, failing on demand: before the
// link (the service is busy) or after it (the answer was lost).
type flaky struct {
	rec      problems.Recorder
	mu       sync.Mutex
	failNext int  // calls left to fail before recording
	lost     int  // calls left to record and then fail
	down     bool // fail every call
	calls    int
}

func (f *flaky) SetProblem(ctx context.Context, inc, problem uint64, actor string) error {
	f.mu.Lock()
	f.calls++
	down, before, after := f.down, f.failNext > 0, f.lost > 0
	if before {
		f.failNext--
	} else if after {
		f.lost--
	}
	f.mu.Unlock()
	if down || before {
		return errors.New("service busy")
	}
	if err := f.rec.SetProblem(ctx, inc, problem, actor); err != nil {
		return err
	}
	if after {
		return context.DeadlineExceeded
	}
	return nil
}

// A crash between opening a problem and recording its links: the links
// stay queued and a restarted tracker records them, with no second problem.
func TestCrashBetweenProblemAndLinks(t *testing.T) {
	e := newEnv(t)
	rec := &flaky{rec: e.svc, down: true}
	e.startTracker(func(o *problems.Options) { o.Recorder = rec })
	ids := []uint64{e.recur(orders...), e.recur(orders...), e.recur(orders...)}
	eventually(t, "the problem opened with its links queued", func() bool {
		n, err := e.tr.Pending()
		return err == nil && n == 3
	})
	eventually(t, "link attempts", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.calls >= 3
	})
	e.checkUnlinked(ids...)
	if all := e.all(); len(all) != 1 || all[0].IncidentCount != 3 {
		t.Fatalf("problems: %+v", all)
	}
	if e.metric("triage_problem_link_failures_total") < 3 || e.metric("triage_problem_links_pending") != 3 {
		t.Errorf("failures %v, pending %v", e.metric("triage_problem_link_failures_total"), e.metric("triage_problem_links_pending"))
	}
	e.stopT() // the crash
	e.startTracker(nil)
	e.idle()
	e.checkLinked(1, ids...)
	if all := e.all(); len(all) != 1 {
		t.Fatalf("problems: %+v", all)
	}
}

// Failed links are retried with backoff until recorded, and a link whose
// answer was lost is recorded once however often it is repeated.
func TestLinksRetried(t *testing.T) {
	e := newEnv(t)
	rec := &flaky{rec: e.svc, failNext: 4, lost: 3}
	e.startTracker(func(o *problems.Options) { o.Recorder = rec })
	ids := []uint64{e.recur(orders...), e.recur(orders...), e.recur(orders...)}
	e.idle()
	e.checkLinked(1, ids...)
	rec.mu.Lock()
	calls := rec.calls
	rec.mu.Unlock()
	if calls < 3+4+3 {
		t.Fatalf("only %d calls: the failures were not exercised", calls)
	}
	if got := e.metric("triage_problem_links_total"); got != 3 {
		t.Errorf("links %v, want 3", got)
	}
}

// Evaluating the same changes again (as after a crash before the cursor
// moved) changes nothing.
func TestReevaluationIsHarmless(t *testing.T) {
	e := newEnv(t)
	e.startTracker(nil)
	ids := []uint64{e.recur(orders...), e.recur(orders...), e.recur(orders...), e.recur(orders...)}
	e.idle()
	before := e.all()
	e.stopT()
	tr, err := problems.Open(problems.Options{Path: filepath.Join(e.dir, "problems.db"), Source: e.store, Recorder: e.svc})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.RewindCursor(0); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	e.startTracker(nil)
	e.idle()
	if c, _ := e.tr.Cursor(); c == 0 {
		t.Fatal("the feed was not read again")
	}
	after := e.all()
	if len(after) != 1 || after[0].Version != before[0].Version || after[0].IncidentCount != 4 {
		t.Fatalf("after re-evaluation: %+v, before %+v", after, before)
	}
	e.checkLinked(1, ids...)
}
