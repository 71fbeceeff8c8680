package tracker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/internal/testenv"
	"github.com/triage-dev/triage/metrics/sla"
)

// t0 is a Tuesday.
var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// harness is a real correlation service on a temporary store and a
// tracker following it, both on one manual clock.
type harness struct {
	t     *testing.T
	dir   string
	clock *testenv.Clock
	set   *sla.Set
	store *correlate.Store
	svc   *correlate.Service
	stop  func()
	// rec is what trackers record through; the service unless a test
	// wraps it.
	rec Recorder
	tr  *Tracker
	reg *prometheus.Registry
}

func newHarness(t *testing.T, cfg sla.Config, start time.Time) *harness {
	t.Helper()
	set, err := sla.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: t.TempDir(), clock: testenv.NewClock(start), set: set}
	h.startService()
	h.rec = h.svc
	h.newTracker()
	t.Cleanup(func() { h.stop() })
	return h
}

// startService opens the store and runs a service on it, as the daemon
// does (a minimal copy of the connectors' test starter).
func (h *harness) startService() {
	h.t.Helper()
	st, err := correlate.OpenStore(h.dir)
	if err != nil {
		h.t.Fatal(err)
	}
	svc, err := correlate.NewService(correlate.ServiceOptions{
		Store:  st,
		WALDir: correlate.WALDir(h.dir),
		NewEngine: func() *correlate.Engine {
			return correlate.NewEngine(correlate.Options{ResolveAfter: 24 * time.Hour, ReopenWindow: 24 * time.Hour},
				correlate.NewLabelGrouper([]string{"alertname", "service"}, 10*time.Minute))
		},
		Now:          h.clock.Now,
		Registry:     prometheus.NewRegistry(),
		TickInterval: time.Hour, // the tests tick by submitting
	})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	h.store, h.svc = st, svc
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Error(err)
			}
			if err := st.Close(); err != nil {
				h.t.Error(err)
			}
		})
	}
}

// restartService stops the service and the store and starts them again
// on the same directory, as after a restart of the daemon.
func (h *harness) restartService() {
	h.t.Helper()
	h.stop()
	h.startService()
	h.rec = h.svc
}

// newTracker replaces the tracker with a new one (a restart of the
// tracker alone: its memory is lost).
func (h *harness) newTracker() {
	h.t.Helper()
	h.reg = prometheus.NewRegistry()
	tr, err := New(Options{Set: h.set, Source: h.store, Recorder: h.rec, Now: h.clock.Now, Registry: h.reg})
	if err != nil {
		h.t.Fatal(err)
	}
	h.tr = tr
}

// at moves the clock to t0+d.
func (h *harness) at(d time.Duration) { h.clock.Set(t0.Add(d)) }

func (h *harness) step() {
	h.t.Helper()
	if err := h.tr.Step(context.Background()); err != nil {
		h.t.Fatalf("Step at %s: %v", h.clock.Now().Format(time.DateTime), err)
	}
}

// fire sends one alert and returns the id of its incident.
func (h *harness) fire(alertname, service, severity string) uint64 {
	h.t.Helper()
	ev := triage.Event{Labels: map[string]string{"alertname": alertname, "service": service}, Severity: severity}
	if err := ev.Normalize(h.clock.Now()); err != nil {
		h.t.Fatal(err)
	}
	if err := h.svc.Submit(context.Background(), []triage.Event{ev}); err != nil {
		h.t.Fatal(err)
	}
	if err := h.svc.Sync(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	incs, err := h.store.Incidents(correlate.IncidentFilter{Limit: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, inc := range incs {
		if inc.Labels["alertname"] == alertname && inc.Service == service {
			return inc.ID
		}
	}
	h.t.Fatalf("no incident for %s/%s", alertname, service)
	return 0
}

// entries are the SLA entries on an incident's timeline.
func (h *harness) entries(id uint64) []triage.TimelineEntry {
	h.t.Helper()
	if err := h.svc.Sync(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	inc, err := h.store.Incident(id)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []triage.TimelineEntry
	for _, e := range inc.Timeline {
		if e.Kind == triage.KindSLAWarning || e.Kind == triage.KindSLABreach {
			out = append(out, e)
		}
	}
	return out
}

// expect checks the SLA entries of an incident: their kinds and messages.
func (h *harness) expect(id uint64, want ...string) {
	h.t.Helper()
	got := h.entries(id)
	var gs []string
	for _, e := range got {
		if e.Actor != Actor {
			h.t.Errorf("entry by %q, want %q", e.Actor, Actor)
		}
		gs = append(gs, e.Kind+" "+e.Message)
	}
	if strings.Join(gs, "\n") != strings.Join(want, "\n") {
		h.t.Fatalf("at %s, SLA entries of %s:\n%s\nwant:\n%s", h.clock.Now().Format(time.DateTime),
			triage.IncidentKey(id), strings.Join(gs, "\n"), strings.Join(want, "\n"))
	}
}

func (h *harness) must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

// p1 is a P1 policy measured around the clock: acknowledge in 15m,
// resolve in 4h, one warning at 75%.
var p1 = sla.Config{Policies: []sla.PolicyConfig{{Name: "p1-24x7", Priorities: []string{"P1"}, Calendar: "24x7",
	Acknowledge: sla.Duration(15 * time.Minute), Resolve: sla.Duration(4 * time.Hour), WarnAt: []float64{0.75}}}}

const (
	ackWarning = "sla_warning SLA warning: acknowledge target 15m 75% used (policy p1-24x7, calendar 24x7), due Tue 2026-11-24 10:15 UTC"
	ackBreach  = "sla_breach SLA breach: acknowledge target 15m breached at Tue 2026-11-24 10:15 UTC (policy p1-24x7, calendar 24x7)"
)

func TestWarningThenBreach(t *testing.T) {
	h := newHarness(t, p1, t0)
	id := h.fire("HighErrorRate", "orders", "critical")
	h.step()
	h.at(11 * time.Minute)
	h.step()
	h.expect(id)
	h.at(11*time.Minute + 15*time.Second)
	h.step()
	h.expect(id, ackWarning)
	h.step()
	h.at(14 * time.Minute)
	h.step()
	h.expect(id, ackWarning)
	h.at(15 * time.Minute)
	h.step()
	h.expect(id, ackWarning, ackBreach)
	h.at(time.Hour)
	h.step()
	h.step()
	h.expect(id, ackWarning, ackBreach)

	inc, err := h.store.Incident(id)
	h.must(err)
	if inc.SLABreaches != 1 {
		t.Errorf("sla_breaches = %d, want 1", inc.SLABreaches)
	}
	for _, c := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"warnings", h.tr.m.warnings.WithLabelValues("p1-24x7", "acknowledge"), 1},
		{"breaches", h.tr.m.breaches.WithLabelValues("p1-24x7", "acknowledge"), 1},
		{"resolve warnings", h.tr.m.warnings.WithLabelValues("p1-24x7", "resolve"), 0},
		{"tracked", h.tr.m.tracked, 1},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if n, err := testutil.GatherAndCount(h.reg, "triage_sla_warnings_total", "triage_sla_breaches_total", "triage_sla_tracked_incidents"); err != nil || n != 4 {
		t.Errorf("registered series = %d (%v), want 4", n, err)
	}
}

func TestAcknowledged(t *testing.T) {
	tests := []struct {
		name string
		ack  time.Duration
		want []string
	}{
		{"before the warning", 10 * time.Minute, nil},
		{"after the warning, before the deadline", 12 * time.Minute, []string{ackWarning}},
		{"at the deadline", 15 * time.Minute, []string{ackWarning}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, p1, t0)
			id := h.fire("HighErrorRate", "orders", "critical")
			for _, d := range []time.Duration{0, 5 * time.Minute, 11*time.Minute + 15*time.Second, 12 * time.Minute, 14 * time.Minute} {
				if d < tc.ack {
					h.at(d)
					h.step()
				}
			}
			h.at(tc.ack)
			h.must(h.svc.Acknowledge(context.Background(), id, "alice"))
			h.step()
			for _, d := range []time.Duration{15 * time.Minute, time.Hour} {
				h.at(d)
				h.step()
			}
			h.expect(id, tc.want...)
		})
	}
}

func TestHoldPausesTheClock(t *testing.T) {
	h := newHarness(t, p1, t0)
	id := h.fire("HighErrorRate", "orders", "critical")
	h.step()
	h.at(5 * time.Minute)
	h.must(h.svc.Hold(context.Background(), id, true, "alice", "waiting for the vendor"))
	h.at(15 * time.Minute)
	h.step() // 5m used
	h.expect(id)
	h.at(25 * time.Minute)
	h.must(h.svc.Hold(context.Background(), id, false, "alice", ""))
	h.step()
	h.at(31 * time.Minute)
	h.step() // 11m used
	h.expect(id)
	h.at(31*time.Minute + 15*time.Second)
	h.step()
	warning := "sla_warning SLA warning: acknowledge target 15m 75% used (policy p1-24x7, calendar 24x7), due Tue 2026-11-24 10:35 UTC"
	h.expect(id, warning)
	h.at(34*time.Minute + 59*time.Second)
	h.step()
	h.expect(id, warning)
	h.at(35 * time.Minute)
	h.step()
	h.expect(id, warning,
		"sla_breach SLA breach: acknowledge target 15m breached at Tue 2026-11-24 10:35 UTC (policy p1-24x7, calendar 24x7)")
}

func TestBusinessHours(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	cfg := sla.Config{
		Calendars: []sla.CalendarConfig{{Name: "eu-business", TimeZone: "Europe/Berlin", Days: []string{"mon-fri"}, Hours: []string{"09:00-17:00"}}},
		Policies: []sla.PolicyConfig{{Name: "standard", Calendar: "eu-business",
			Resolve: sla.Duration(4 * time.Hour), WarnAt: []float64{0.75}}},
	}
	friday := time.Date(2026, 11, 27, 16, 0, 0, 0, berlin)
	h := newHarness(t, cfg, friday)
	id := h.fire("DiskFull", "billing", "warning")
	h.step()
	for _, at := range []time.Time{
		friday.Add(59 * time.Minute),
		friday.Add(2 * time.Hour),
		time.Date(2026, 11, 28, 12, 0, 0, 0, berlin), // Saturday
		time.Date(2026, 11, 30, 10, 59, 0, 0, berlin),
	} {
		h.clock.Set(at)
		h.step()
		h.expect(id)
	}
	warning := "sla_warning SLA warning: resolve target 4h 75% used (policy standard, calendar eu-business), due Mon 2026-11-30 12:00 CET"
	h.clock.Set(time.Date(2026, 11, 30, 11, 0, 0, 0, berlin))
	h.step()
	h.expect(id, warning)
	h.clock.Set(time.Date(2026, 11, 30, 11, 59, 59, 0, berlin))
	h.step()
	h.expect(id, warning)
	h.clock.Set(time.Date(2026, 11, 30, 12, 0, 0, 0, berlin))
	h.step()
	h.expect(id, warning,
		"sla_breach SLA breach: resolve target 4h breached at Mon 2026-11-30 12:00 CET (policy standard, calendar eu-business)")
}

func TestRestart(t *testing.T) {
	t.Run("tracker", func(t *testing.T) {
		h := newHarness(t, p1, t0)
		id := h.fire("HighErrorRate", "orders", "critical")
		h.step()
		h.at(12 * time.Minute)
		h.step()
		h.expect(id, ackWarning)
		h.newTracker()
		h.step()
		h.at(13 * time.Minute)
		h.step()
		h.expect(id, ackWarning)
		h.at(15 * time.Minute)
		h.step()
		h.step()
		h.expect(id, ackWarning, ackBreach)
		h.newTracker()
		h.at(20 * time.Minute)
		h.step()
		h.expect(id, ackWarning, ackBreach)
		if got := testutil.ToFloat64(h.tr.m.tracked); got != 1 {
			t.Errorf("tracked = %v after a restart, want 1", got)
		}
	})
	t.Run("daemon", func(t *testing.T) {
		h := newHarness(t, p1, t0)
		id := h.fire("HighErrorRate", "orders", "critical")
		h.step()
		h.at(5 * time.Minute)
		h.must(h.svc.Hold(context.Background(), id, true, "alice", ""))
		h.at(7 * time.Minute)
		h.must(h.svc.Hold(context.Background(), id, false, "alice", ""))
		h.at(14 * time.Minute)
		h.step() // 12m used
		h.expect(id, "sla_warning SLA warning: acknowledge target 15m 75% used (policy p1-24x7, calendar 24x7), due Tue 2026-11-24 10:17 UTC")
		h.restartService()
		h.newTracker()
		h.at(15 * time.Minute)
		h.step()
		h.at(17 * time.Minute)
		h.step()
		h.step()
		h.expect(id, "sla_warning SLA warning: acknowledge target 15m 75% used (policy p1-24x7, calendar 24x7), due Tue 2026-11-24 10:17 UTC",
			"sla_breach SLA breach: acknowledge target 15m breached at Tue 2026-11-24 10:17 UTC (policy p1-24x7, calendar 24x7)")
	})
}

// flaky fails the first Note it gets; it keeps the service's Sync.
type flaky struct {
	*correlate.Service
	calls atomic.Int32
}

func (f *flaky) Note(ctx context.Context, id uint64, kind, actor, text string) error {
	if f.calls.Add(1) == 1 {
		return errors.New("service unavailable")
	}
	return f.Service.Note(ctx, id, kind, actor, text)
}

func TestNoteFailsOnce(t *testing.T) {
	h := newHarness(t, p1, t0)
	f := &flaky{Service: h.svc}
	h.rec = f
	h.newTracker()
	id := h.fire("HighErrorRate", "orders", "critical")
	h.step()
	h.at(11*time.Minute + 15*time.Second)
	if err := h.tr.Step(context.Background()); err == nil || !strings.Contains(err.Error(), "service unavailable") {
		t.Fatalf("Step with a failing Note = %v, want its error", err)
	}
	h.expect(id)
	h.step()
	h.expect(id, ackWarning)
	h.at(12 * time.Minute)
	h.step()
	h.step()
	h.expect(id, ackWarning)
	if n := f.calls.Load(); n != 2 {
		t.Errorf("Note called %d times, want 2", n)
	}
}

func TestLateStart(t *testing.T) {
	// A tracker that starts after an incident passed its warning and its
	// deadline writes the breach alone.
	h := newHarness(t, p1, t0)
	id := h.fire("HighErrorRate", "orders", "critical")
	h.at(20 * time.Minute)
	h.step()
	h.step()
	h.expect(id, ackBreach)
}

func TestResolvedAfterTheDeadline(t *testing.T) {
	// The incident resolves after its deadline but before the tracker's
	// next step: the breach is still written, once, and the incident is
	// forgotten.
	h := newHarness(t, p1, t0)
	id := h.fire("HighErrorRate", "orders", "critical")
	h.step()
	h.at(10 * time.Minute)
	h.step()
	h.at(16 * time.Minute)
	h.must(h.svc.Resolve(context.Background(), id, "alice", "restarted"))
	h.at(17 * time.Minute)
	h.step()
	h.at(5 * time.Hour)
	h.step()
	h.expect(id, ackBreach)
	if got := testutil.ToFloat64(h.tr.m.tracked); got != 0 {
		t.Errorf("tracked = %v after the resolution, want 0", got)
	}
	if len(h.tr.tracked) != 0 {
		t.Errorf("the tracker still holds %d incidents", len(h.tr.tracked))
	}
}

func TestPriorityRaised(t *testing.T) {
	// Re-selected policy: a P3 raised to P1 after 20 minutes has passed
	// the P1 acknowledge deadline; the breach alone is written at once.
	cfg := sla.Config{Policies: []sla.PolicyConfig{
		{Name: "p1-24x7", Priorities: []string{"P1"}, Calendar: "24x7", Acknowledge: sla.Duration(15 * time.Minute), WarnAt: []float64{0.75}},
		{Name: "p3-24x7", Priorities: []string{"P3"}, Calendar: "24x7", Acknowledge: sla.Duration(time.Hour), WarnAt: []float64{0.75}},
	}}
	h := newHarness(t, cfg, t0)
	id := h.fire("Latency", "orders", "warning")
	h.step()
	h.at(15 * time.Minute)
	h.step()
	h.expect(id)
	h.at(20 * time.Minute)
	if h.fire("Latency", "orders", "critical") != id {
		t.Fatal("the re-sent alert opened another incident")
	}
	h.step()
	h.expect(id, "sla_breach SLA breach: acknowledge target 15m breached at Tue 2026-11-24 10:15 UTC (policy p1-24x7, calendar 24x7)")
	h.at(time.Hour)
	h.step()
	h.expect(id, "sla_breach SLA breach: acknowledge target 15m breached at Tue 2026-11-24 10:15 UTC (policy p1-24x7, calendar 24x7)")
	if got := testutil.ToFloat64(h.tr.m.breaches.WithLabelValues("p1-24x7", "acknowledge")); got != 1 {
		t.Errorf("breaches = %v, want 1", got)
	}
}

func TestReopenResumesTheResolveClock(t *testing.T) {
	cfg := sla.Config{Policies: []sla.PolicyConfig{{Name: "p1-24x7", Priorities: []string{"P1"}, Calendar: "24x7",
		Acknowledge: sla.Duration(15 * time.Minute), Resolve: sla.Duration(time.Hour), WarnAt: []float64{0.75}}}}
	h := newHarness(t, cfg, t0)
	acked := h.fire("HighErrorRate", "orders", "critical")
	unacked := h.fire("HighErrorRate", "payments", "critical")
	h.step()
	h.at(5 * time.Minute)
	h.must(h.svc.Acknowledge(context.Background(), acked, "alice"))
	h.must(h.svc.Resolve(context.Background(), unacked, "bob", "false alarm"))
	h.at(30 * time.Minute)
	h.must(h.svc.Resolve(context.Background(), acked, "alice", "rolled back"))
	h.step()
	h.at(2 * time.Hour)
	h.step()
	h.expect(acked)
	h.expect(unacked)
	h.must(h.svc.Reopen(context.Background(), acked, "alice", "not fixed"))
	h.must(h.svc.Reopen(context.Background(), unacked, "bob", "it was real"))
	h.step()
	// 30m of the hour used before the resolution; the warning (45m) comes
	// 15 minutes after the reopening, the breach 30 minutes after it.
	h.at(2*time.Hour + 14*time.Minute)
	h.step()
	h.expect(acked)
	h.at(2*time.Hour + 15*time.Minute)
	h.step()
	warning := "sla_warning SLA warning: resolve target 1h 75% used (policy p1-24x7, calendar 24x7), due Tue 2026-11-24 12:30 UTC"
	h.expect(acked, warning)
	h.at(2*time.Hour + 30*time.Minute)
	h.step()
	h.expect(acked, warning,
		"sla_breach SLA breach: resolve target 1h breached at Tue 2026-11-24 12:30 UTC (policy p1-24x7, calendar 24x7)")
	// Resolved after 5m without an acknowledgement: the resolution was
	// the response; the acknowledge clock does not run again. Its resolve
	// clock resumed at 5m: warning at 2h40m, breach at 2h55m.
	h.at(2*time.Hour + 55*time.Minute)
	h.step()
	h.expect(unacked,
		"sla_breach SLA breach: resolve target 1h breached at Tue 2026-11-24 12:55 UTC (policy p1-24x7, calendar 24x7)")
}

func TestRun(t *testing.T) {
	set, err := sla.Build(p1)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, p1, t0)
	id := h.fire("HighErrorRate", "orders", "critical")
	tr, err := New(Options{Set: set, Source: h.store, Recorder: h.svc, Now: h.clock.Now, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	h.at(15 * time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for len(h.entries(id)) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("Run wrote no breach")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // more steps: nothing more is written
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	h.expect(id, ackBreach)
}

func TestNewNeedsItsParts(t *testing.T) {
	set, _ := sla.Build(p1)
	for _, o := range []Options{{}, {Set: set}, {Set: set, Source: &correlate.Store{}}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) = nil error", o)
		}
	}
}

func TestRestartOnHold(t *testing.T) {
	// The last hold is still open when the tracker starts: the clock
	// stays paused until the off_hold entry.
	h := newHarness(t, p1, t0)
	id := h.fire("HighErrorRate", "orders", "critical")
	h.step()
	h.at(10 * time.Minute)
	h.must(h.svc.Hold(context.Background(), id, true, "alice", ""))
	h.newTracker()
	h.at(time.Hour)
	h.step()
	h.expect(id)
	h.must(h.svc.Hold(context.Background(), id, false, "alice", ""))
	h.step()
	h.at(time.Hour + time.Minute + 15*time.Second)
	h.step()
	h.at(time.Hour + 5*time.Minute)
	h.step()
	h.expect(id, "sla_warning SLA warning: acknowledge target 15m 75% used (policy p1-24x7, calendar 24x7), due Tue 2026-11-24 11:05 UTC",
		"sla_breach SLA breach: acknowledge target 15m breached at Tue 2026-11-24 11:05 UTC (policy p1-24x7, calendar 24x7)")
}
