package correlate

import (
	"errors"
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/triage-dev/triage"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// harness drives an Engine on a fake clock and keeps its changes in Memory.
type harness struct {
	t   *testing.T
	e   *Engine
	m   *Memory
	now time.Time
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	return &harness{t: t, e: NewEngine(opts, NewLabelGrouper([]string{"alertname", "service"}, 10*time.Minute)),
		m: NewMemory(), now: t0}
}

func defaultOpts() Options {
	return Options{ResolveAfter: 5 * time.Minute, ReopenWindow: 30 * time.Minute}
}

func (h *harness) at(d time.Duration) *harness {
	h.now = t0.Add(d)
	return h
}

func (h *harness) send(status triage.AlertStatus, labels ...string) Result {
	h.t.Helper()
	ev := triage.Event{Status: status, Labels: map[string]string{}}
	for i := 0; i+1 < len(labels); i += 2 {
		ev.Labels[labels[i]] = labels[i+1]
	}
	if err := ev.Normalize(h.now); err != nil {
		h.t.Fatal(err)
	}
	h.e.Tick(h.now)
	r := h.e.Process(&ev, h.now)
	h.m.Apply(h.e.Flush())
	return r
}

func (h *harness) fire(labels ...string) Result { return h.send(triage.AlertFiring, labels...) }

func (h *harness) resolve(labels ...string) Result { return h.send(triage.AlertResolved, labels...) }

// post sends a firing notification of alert X with the given start and end.
func (h *harness) post(start, ends time.Time) Result {
	h.t.Helper()
	ev := &triage.Event{Labels: map[string]string{"alertname": "X"}, StartsAt: start, EndsAt: ends}
	if err := ev.Normalize(h.now); err != nil {
		h.t.Fatal(err)
	}
	h.e.Tick(h.now)
	r := h.e.Process(ev, h.now)
	h.m.Apply(h.e.Flush())
	return r
}

func (h *harness) tick() {
	h.e.Tick(h.now)
	h.m.Apply(h.e.Flush())
}

func (h *harness) incident(id uint64) triage.Incident {
	h.t.Helper()
	for _, inc := range h.m.Incidents() {
		if inc.ID == id {
			return inc
		}
	}
	h.t.Fatalf("no incident %d", id)
	return triage.Incident{}
}

func (h *harness) kinds(id uint64) []string {
	var ks []string
	for _, e := range h.incident(id).Timeline {
		ks = append(ks, e.Kind)
	}
	return ks
}

func TestDeduplicationCountsRepeats(t *testing.T) {
	h := newHarness(t, defaultOpts())
	first := h.fire("alertname", "HighErrorRate", "service", "orders")
	h.at(time.Minute)
	second := h.fire("alertname", "HighErrorRate", "service", "orders")
	h.at(2 * time.Minute)
	third := h.fire("alertname", "HighErrorRate", "service", "orders")
	if !first.NewIncident || !second.Duplicate || !third.Duplicate {
		t.Fatalf("results = %+v %+v %+v, want new then two duplicates", first, second, third)
	}
	inc := h.incident(first.IncidentID)
	if inc.AlertCount != 1 || inc.EventCount != 3 || len(inc.Alerts) != 1 {
		t.Fatalf("alert_count=%d event_count=%d alerts=%d, want 1, 3, 1", inc.AlertCount, inc.EventCount, len(inc.Alerts))
	}
	a := inc.Alerts[0]
	if a.Count != 3 || !a.FirstSeen.Equal(t0) || !a.LastSeen.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("alert count=%d first=%s last=%s", a.Count, a.FirstSeen, a.LastSeen)
	}
	if got := h.kinds(inc.ID); fmt.Sprint(got) != "[opened]" {
		t.Fatalf("timeline = %v: duplicates must not add entries", got)
	}
}

func TestGroupingByLabelsWithinWindow(t *testing.T) {
	tests := []struct {
		name    string
		second  []string
		after   time.Duration
		samePlz bool
	}{
		{"same key, other instance", []string{"alertname", "HighErrorRate", "service", "orders", "instance", "b"}, time.Minute, true},
		{"same key at the window's edge", []string{"alertname", "HighErrorRate", "service", "orders", "instance", "b"}, 10 * time.Minute, true},
		{"same key after the window", []string{"alertname", "HighErrorRate", "service", "orders", "instance", "b"}, 11 * time.Minute, false},
		{"other service", []string{"alertname", "HighErrorRate", "service", "payments"}, time.Minute, false},
		{"other alertname", []string{"alertname", "HighLatency", "service", "orders"}, time.Minute, false},
		{"missing group label", []string{"alertname", "HighErrorRate"}, time.Minute, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, defaultOpts())
			a := h.fire("alertname", "HighErrorRate", "service", "orders", "instance", "a")
			h.at(tc.after)
			b := h.fire(tc.second...)
			if same := a.IncidentID == b.IncidentID; same != tc.samePlz {
				t.Fatalf("same incident = %v, want %v (ids %d, %d)", same, tc.samePlz, a.IncidentID, b.IncidentID)
			}
			if tc.samePlz {
				inc := h.incident(a.IncidentID)
				if inc.AlertCount != 2 || inc.Explanation[1].GroupKey == "" || inc.Explanation[1].Reason == "" {
					t.Fatalf("incident %+v: want 2 alerts with an explanation", inc)
				}
			}
		})
	}
}

func TestDuplicatesKeepTheGroupWindowOpen(t *testing.T) {
	h := newHarness(t, defaultOpts())
	a := h.fire("alertname", "X", "service", "s", "instance", "a")
	for m := 8; m <= 40; m += 8 {
		h.at(time.Duration(m) * time.Minute)
		h.fire("alertname", "X", "service", "s", "instance", "a")
	}
	b := h.fire("alertname", "X", "service", "s", "instance", "b")
	if a.IncidentID != b.IncidentID {
		t.Fatalf("an alert of the same group 40m later, with the group notified every 8m, opened incident %d", b.IncidentID)
	}
}

func TestAutoResolveAfterDelay(t *testing.T) {
	h := newHarness(t, defaultOpts())
	r := h.fire("alertname", "X", "service", "s", "instance", "a")
	h.fire("alertname", "X", "service", "s", "instance", "b")
	h.at(time.Minute)
	h.resolve("alertname", "X", "service", "s", "instance", "a")
	if inc := h.incident(r.IncidentID); inc.Status != triage.IncidentOpen || inc.AutoResolveAt != nil {
		t.Fatalf("one alert still fires: status %s auto_resolve_at %v", inc.Status, inc.AutoResolveAt)
	}
	h.at(2 * time.Minute)
	h.resolve("alertname", "X", "service", "s", "instance", "b")
	inc := h.incident(r.IncidentID)
	if inc.AutoResolveAt == nil || !inc.AutoResolveAt.Equal(t0.Add(7*time.Minute)) {
		t.Fatalf("auto_resolve_at = %v, want 10:07", inc.AutoResolveAt)
	}
	h.at(6 * time.Minute)
	h.tick()
	if inc := h.incident(r.IncidentID); inc.Status != triage.IncidentOpen {
		t.Fatalf("resolved before resolve_after passed: %s", inc.Status)
	}
	h.at(20 * time.Minute) // the tick runs late; the incident resolves at its due time
	h.tick()
	inc = h.incident(r.IncidentID)
	if inc.Status != triage.IncidentResolved || !inc.ResolvedAt.Equal(t0.Add(7*time.Minute)) {
		t.Fatalf("status %s resolved_at %v, want resolved at 10:07", inc.Status, inc.ResolvedAt)
	}
	if h.e.OpenIncidents() != 0 {
		t.Fatalf("open incidents = %d", h.e.OpenIncidents())
	}
}

func TestResolveAfterZeroResolvesAtOnce(t *testing.T) {
	h := newHarness(t, Options{ResolveAfter: 0, ReopenWindow: time.Minute})
	r := h.fire("alertname", "X")
	h.at(time.Minute)
	h.resolve("alertname", "X")
	if inc := h.incident(r.IncidentID); inc.Status != triage.IncidentResolved || !inc.ResolvedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("status %s resolved_at %v", inc.Status, inc.ResolvedAt)
	}
}

func TestRefireAfterResolutionCancelsAutoResolve(t *testing.T) {
	h := newHarness(t, defaultOpts())
	r := h.fire("alertname", "X")
	h.at(time.Minute)
	h.resolve("alertname", "X")
	h.at(2 * time.Minute)
	h.fire("alertname", "X")
	h.at(time.Hour)
	h.tick()
	inc := h.incident(r.IncidentID)
	if inc.Status != triage.IncidentOpen || inc.AutoResolveAt != nil || inc.FiringCount != 1 {
		t.Fatalf("status %s auto_resolve_at %v firing %d", inc.Status, inc.AutoResolveAt, inc.FiringCount)
	}
	if got := fmt.Sprint(h.kinds(r.IncidentID)); got != "[opened alert_resolved alert_refired]" {
		t.Fatalf("timeline %s", got)
	}
}

func TestReopenWithinWindowElseNewIncident(t *testing.T) {
	h := newHarness(t, Options{ResolveAfter: 0, ReopenWindow: 30 * time.Minute})
	r := h.fire("alertname", "X")
	h.at(time.Minute)
	h.resolve("alertname", "X")
	h.at(20 * time.Minute)
	again := h.fire("alertname", "X")
	if again.IncidentID != r.IncidentID {
		t.Fatalf("re-fire within the reopen window opened incident %d", again.IncidentID)
	}
	inc := h.incident(r.IncidentID)
	if inc.Status != triage.IncidentOpen || inc.ReopenCount != 1 || inc.ResolvedAt != nil {
		t.Fatalf("status %s reopen_count %d resolved_at %v", inc.Status, inc.ReopenCount, inc.ResolvedAt)
	}
	h.at(21 * time.Minute)
	h.resolve("alertname", "X")
	h.at(52 * time.Minute) // 31m after the second resolution
	late := h.fire("alertname", "X")
	if late.IncidentID == r.IncidentID || !late.NewIncident {
		t.Fatalf("re-fire after the reopen window joined incident %d", late.IncidentID)
	}
	if old := h.incident(r.IncidentID); old.Status != triage.IncidentResolved || old.AlertCount != 1 {
		t.Fatalf("old incident changed: %s, %d alerts", old.Status, old.AlertCount)
	}
	if n := len(h.incident(late.IncidentID).Alerts); n != 1 {
		t.Fatalf("new incident has %d alerts", n)
	}
}

func TestNewAlertDoesNotJoinResolvedIncident(t *testing.T) {
	h := newHarness(t, Options{ResolveAfter: 0, ReopenWindow: time.Hour})
	r := h.fire("alertname", "X", "service", "s", "instance", "a")
	h.at(time.Minute)
	h.resolve("alertname", "X", "service", "s", "instance", "a")
	h.at(2 * time.Minute)
	b := h.fire("alertname", "X", "service", "s", "instance", "b")
	if b.IncidentID == r.IncidentID {
		t.Fatal("a new alert joined a resolved incident")
	}
}

func TestManualLifecycle(t *testing.T) {
	h := newHarness(t, defaultOpts())
	r := h.fire("alertname", "X", "severity", "warning")
	id := r.IncidentID
	h.at(time.Minute)
	if err := h.e.Acknowledge(id, "alice", h.now); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Acknowledge(id, "bob", h.now.Add(time.Second)); err != nil {
		t.Fatalf("second acknowledge: %v", err)
	}
	if err := h.e.Comment(id, "alice", "looking", h.now); err != nil {
		t.Fatal(err)
	}
	h.m.Apply(h.e.Flush())
	inc := h.incident(id)
	if inc.Status != triage.IncidentAcknowledged || !inc.AcknowledgedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("status %s acknowledged_at %v", inc.Status, inc.AcknowledgedAt)
	}
	h.at(2 * time.Minute)
	if err := h.e.Resolve(id, "alice", "restarted the pod", h.now); err != nil {
		t.Fatal(err)
	}
	h.m.Apply(h.e.Flush())
	if err := h.e.Acknowledge(id, "bob", h.now); !errors.Is(err, ErrConflict) {
		t.Fatalf("acknowledge of a resolved incident: %v, want ErrConflict", err)
	}
	if err := h.e.Acknowledge(999, "bob", h.now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("acknowledge of an unknown incident: %v, want ErrNotFound", err)
	}
	// The alert still fires: its repeats do not reopen what a person resolved...
	h.at(3 * time.Minute)
	h.fire("alertname", "X", "severity", "warning")
	if inc := h.incident(id); inc.Status != triage.IncidentResolved {
		t.Fatalf("a repeat of a still-firing alert reopened a hand-resolved incident")
	}
	want := "[opened acknowledged comment resolved]"
	if got := fmt.Sprint(h.kinds(id)); got != want {
		t.Fatalf("timeline %s, want %s", got, want)
	}
	tl := h.incident(id).Timeline
	if tl[1].Actor != "alice" || tl[3].Actor != "alice" || tl[3].Message != "resolved by alice: restarted the pod" {
		t.Fatalf("timeline entries %+v", tl)
	}
}

func TestNewOccurrenceReopensHandResolvedIncident(t *testing.T) {
	h := newHarness(t, defaultOpts())
	ev := func(start time.Time) *triage.Event {
		e := &triage.Event{Labels: map[string]string{"alertname": "X"}, StartsAt: start}
		if err := e.Normalize(h.now); err != nil {
			t.Fatal(err)
		}
		return e
	}
	r := h.e.Process(ev(t0), h.now)
	h.at(time.Minute)
	if err := h.e.Resolve(r.IncidentID, "alice", "", h.now); err != nil {
		t.Fatal(err)
	}
	h.at(2 * time.Minute)
	h.e.Process(ev(t0), h.now) // same occurrence
	h.m.Apply(h.e.Flush())
	if inc := h.incident(r.IncidentID); inc.Status != triage.IncidentResolved {
		t.Fatal("the same occurrence reopened the incident")
	}
	h.e.Process(ev(t0.Add(2*time.Minute)), h.now) // a new occurrence
	h.m.Apply(h.e.Flush())
	if inc := h.incident(r.IncidentID); inc.Status != triage.IncidentOpen || inc.ReopenCount != 1 {
		t.Fatalf("a new occurrence did not reopen: %s", inc.Status)
	}
}

func TestSeverityRaisesPriority(t *testing.T) {
	h := newHarness(t, defaultOpts())
	r := h.fire("alertname", "X", "service", "s", "instance", "a", "severity", "warning")
	if inc := h.incident(r.IncidentID); inc.Priority != "P3" || inc.Severity != triage.SeverityWarning {
		t.Fatalf("priority %s severity %s", inc.Priority, inc.Severity)
	}
	h.fire("alertname", "X", "service", "s", "instance", "b", "severity", "critical")
	h.fire("alertname", "X", "service", "s", "instance", "c", "severity", "info")
	inc := h.incident(r.IncidentID)
	if inc.Priority != "P1" || inc.Severity != triage.SeverityCritical {
		t.Fatalf("priority %s severity %s, want P1 critical", inc.Priority, inc.Severity)
	}
	if got := fmt.Sprint(h.kinds(r.IncidentID)); got != "[opened alert_added severity_changed alert_added]" {
		t.Fatalf("timeline %s", got)
	}
}

func TestResolvedForUnknownAlertIsIgnored(t *testing.T) {
	h := newHarness(t, defaultOpts())
	if r := h.resolve("alertname", "X"); !r.Ignored || r.IncidentID != 0 {
		t.Fatalf("result %+v", r)
	}
	if n := len(h.m.Incidents()); n != 0 {
		t.Fatalf("%d incidents", n)
	}
}

func TestStaleResolvedNotificationIgnored(t *testing.T) {
	h := newHarness(t, defaultOpts())
	start := t0.Add(time.Hour)
	h.at(time.Hour)
	e := &triage.Event{Labels: map[string]string{"alertname": "X"}, StartsAt: start}
	_ = e.Normalize(h.now)
	r := h.e.Process(e, h.now)
	old := &triage.Event{Labels: map[string]string{"alertname": "X"}, Status: triage.AlertResolved,
		StartsAt: t0, EndsAt: t0.Add(time.Minute)}
	_ = old.Normalize(h.now)
	h.e.Process(old, h.now)
	h.m.Apply(h.e.Flush())
	if inc := h.incident(r.IncidentID); inc.FiringCount != 1 || inc.Alerts[0].Status != triage.AlertFiring {
		t.Fatalf("a resolution that ended before the alert started resolved it")
	}
}

func TestExpiryFromEndsAt(t *testing.T) {
	h := newHarness(t, Options{ResolveAfter: 0, ReopenWindow: time.Hour})
	post := func(endsAt time.Time) Result { return h.post(t0, endsAt) }
	r := post(t0.Add(4 * time.Minute))
	h.at(3 * time.Minute)
	post(t0.Add(7 * time.Minute)) // re-sent: expiry extended
	h.at(5 * time.Minute)
	h.tick()
	if inc := h.incident(r.IncidentID); inc.Status != triage.IncidentOpen {
		t.Fatalf("expired at the first ends_at although re-sent: %s", inc.Status)
	}
	h.at(8 * time.Minute)
	h.tick()
	inc := h.incident(r.IncidentID)
	if inc.Status != triage.IncidentResolved || !inc.ResolvedAt.Equal(t0.Add(7*time.Minute)) {
		t.Fatalf("status %s resolved_at %v, want resolved at the last ends_at", inc.Status, inc.ResolvedAt)
	}
	if a := inc.Alerts[0]; a.Status != triage.AlertResolved || !a.EndsAt.Equal(t0.Add(7*time.Minute)) {
		t.Fatalf("alert %s ends_at %s", a.Status, a.EndsAt)
	}
}

func TestEvictionFreesMemoryAfterReopenWindow(t *testing.T) {
	h := newHarness(t, Options{ResolveAfter: 0, ReopenWindow: 10 * time.Minute})
	for i := 0; i < 100; i++ {
		h.fire("alertname", "X", "instance", fmt.Sprint(i))
	}
	h.at(time.Minute)
	for i := 0; i < 100; i++ {
		h.resolve("alertname", "X", "instance", fmt.Sprint(i))
	}
	if h.e.LiveAlerts() != 100 {
		t.Fatalf("live alerts %d before the reopen window passed", h.e.LiveAlerts())
	}
	h.at(12 * time.Minute)
	h.e.Tick(h.now)
	ch := h.e.Flush()
	if h.e.LiveAlerts() != 0 || len(ch.Evicted) != 1 {
		t.Fatalf("live alerts %d, evicted %d after the reopen window", h.e.LiveAlerts(), len(ch.Evicted))
	}
}

func TestCIFromLabels(t *testing.T) {
	tests := []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"ci": "db-orders", "instance": "10.0.0.1:9100"}, "db-orders"},
		{map[string]string{"instance": "10.0.0.1:9100", "service": "orders"}, "10.0.0.1"},
		{map[string]string{"instance": "[::1]:9100"}, "::1"},
		{map[string]string{"instance": "node-a"}, "node-a"},
		{map[string]string{"pod": "orders-7f9", "service": "orders"}, "orders-7f9"},
		{map[string]string{"alertname": "X"}, ""},
	}
	e := NewEngine(Options{}, NewLabelGrouper([]string{"alertname"}, time.Minute))
	for _, tc := range tests {
		if got := e.ciOf(tc.labels); got != tc.want {
			t.Errorf("ciOf(%v) = %q, want %q", tc.labels, got, tc.want)
		}
	}
}

func TestLateFiringCopyDoesNotReopen(t *testing.T) {
	h := newHarness(t, Options{ResolveAfter: 0, ReopenWindow: time.Hour})
	start := t0.Add(-time.Minute)
	send := func(status triage.AlertStatus, ends time.Time) Result {
		// As webhook payloads arrive: no send time, so Time is the receive time.
		ev := &triage.Event{Status: status, Labels: map[string]string{"alertname": "X"}, StartsAt: start, EndsAt: ends}
		if err := ev.Normalize(h.now); err != nil {
			t.Fatal(err)
		}
		h.e.Tick(h.now)
		r := h.e.Process(ev, h.now)
		h.m.Apply(h.e.Flush())
		return r
	}
	r := send(triage.AlertFiring, time.Time{})
	h.at(90 * time.Second)
	send(triage.AlertResolved, t0.Add(90*time.Second))
	h.at(125 * time.Second) // the second Alertmanager of an HA pair, late
	send(triage.AlertFiring, time.Time{})
	if inc := h.incident(r.IncidentID); inc.Status != triage.IncidentResolved || inc.ReopenCount != 0 {
		t.Fatalf("a late copy of the resolved occurrence reopened the incident: %s", inc.Status)
	}
}

func TestSameOccurrenceAfterExpiryRefires(t *testing.T) {
	h := newHarness(t, Options{ResolveAfter: 0, ReopenWindow: time.Hour})
	post := func(ends time.Time) { h.post(t0, ends) }
	post(t0.Add(4 * time.Minute))
	h.at(10 * time.Minute) // Prometheus was away: the alert expired at 10:04
	h.tick()
	if inc := h.incident(1); inc.Status != triage.IncidentResolved || !inc.Alerts[0].Expired {
		t.Fatalf("not expired: %s", inc.Status)
	}
	post(t0.Add(14 * time.Minute)) // back, still firing: same start
	if inc := h.incident(1); inc.Status != triage.IncidentOpen || inc.Alerts[0].Expired {
		t.Fatalf("the same occurrence sent again after an expiry did not reopen: %s", inc.Status)
	}
}

func TestShorterEndsAtBringsExpiryForward(t *testing.T) {
	h := newHarness(t, Options{ResolveAfter: 0, ReopenWindow: time.Hour})
	post := func(ends time.Time) { h.post(t0, ends) }
	post(t0.Add(20 * time.Minute))
	h.at(time.Minute)
	post(t0.Add(5 * time.Minute))
	h.at(6 * time.Minute)
	h.tick()
	if inc := h.incident(1); inc.Status != triage.IncidentResolved || !inc.ResolvedAt.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("status %s resolved_at %v: want expiry at the shorter ends_at 10:05", inc.Status, inc.ResolvedAt)
	}
}

// restored builds a fresh engine from what the harness's Memory holds, as
// the store does at start.
func (h *harness) restored() *harness {
	e := NewEngine(h.e.opts, NewLabelGrouper([]string{"alertname", "service"}, 10*time.Minute))
	for _, inc := range h.m.Incidents() {
		e.Restore(inc, inc.Alerts)
	}
	return &harness{t: h.t, e: e, m: h.m, now: h.now}
}

func TestGroupingSameAfterRestore(t *testing.T) {
	run := func(restart bool) uint64 {
		h := newHarness(t, Options{ResolveAfter: 5 * time.Minute, ReopenWindow: time.Hour})
		h.fire("alertname", "X", "service", "s", "instance", "a") // INC-1 holds the key
		h.at(20 * time.Minute)
		h.fire("alertname", "X", "service", "s", "instance", "b") // window passed: INC-2
		h.at(21 * time.Minute)
		h.fire("alertname", "X", "service", "s", "instance", "a") // INC-1 notified again
		if err := h.e.Resolve(2, "alice", "", h.now); err != nil {
			t.Fatal(err)
		}
		h.m.Apply(h.e.Flush())
		if restart {
			h = h.restored()
		}
		h.at(22 * time.Minute)
		return h.fire("alertname", "X", "service", "s", "instance", "c").IncidentID
	}
	live, after := run(false), run(true)
	if live != after {
		t.Fatalf("the same alert joins INC-%d live but INC-%d after a restart", live, after)
	}
	if live != 1 {
		t.Fatalf("joined INC-%d, want INC-1: it is open and its group was notified a minute ago", live)
	}
}

// The per-alert memory budget (≤ 1 KiB with labels) depends on alertState
// staying in the 416-byte allocation class: a field added carelessly moves
// every alert up a class.
func TestAlertStateSize(t *testing.T) {
	if n := unsafe.Sizeof(alertState{}); n > 416 {
		t.Fatalf("alertState is %d bytes: it left the 416-byte size class; pack fields or move rare ones behind a pointer", n)
	}
}
