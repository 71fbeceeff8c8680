package problems_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/correlate/problems"
)

func TestSignature(t *testing.T) {
	opened := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	alert := func(name string, at time.Time) triage.Alert {
		labels := map[string]string{"instance": "h1"}
		if name != "" {
			labels["alertname"] = name
		}
		return triage.Alert{Labels: labels, FirstSeen: at}
	}
	later := opened.Add(time.Minute)
	for _, tc := range []struct {
		name    string
		service string
		alerts  []triage.Alert
		want    string
	}{
		{"one alert", "orders", []triage.Alert{alert("HighErrorRate", opened)}, "HighErrorRate@orders"},
		{"no service", "", []triage.Alert{alert("HostDown", opened)}, "HostDown"},
		{"sorted and deduplicated", "billing",
			[]triage.Alert{alert("HostDown", opened), alert("DiskFull", opened), alert("HostDown", opened)}, "DiskFull+HostDown@billing"},
		{"later alerts do not count", "orders",
			[]triage.Alert{alert("HighErrorRate", opened), alert("Latency", later)}, "HighErrorRate@orders"},
		{"all alerts when none opened it", "orders", []triage.Alert{alert("B", later), alert("A", later)}, "A+B@orders"},
		{"odd characters quoted", "my service", []triage.Alert{alert("a+b", opened), alert("c", opened)}, `"a+b"+c@"my service"`},
		{"no alertname", "orders", []triage.Alert{alert("", opened)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inc := &triage.Incident{OpenedAt: opened, Service: tc.service, Alerts: tc.alerts}
			if got := problems.Signature(inc); got != tc.want {
				t.Fatalf("Signature = %q, want %q", got, tc.want)
			}
		})
	}
	k := problems.IncidentKeys(&triage.Incident{CI: "svc-orders", RootCause: triage.RootCause{CI: "db-orders"}})
	if k.RootCI != "db-orders" {
		t.Fatalf("root CI %q", k.RootCI)
	}
	if k := problems.IncidentKeys(&triage.Incident{CI: "svc-orders"}); k.RootCI != "svc-orders" {
		t.Fatalf("root CI without a root cause %q", k.RootCI)
	}
}

// feed is a Source whose incidents and changes a test writes, with the
// service's SetProblem semantics as the Recorder.
type feed struct {
	mu        sync.Mutex
	incidents map[uint64]*triage.Incident
	changes   []correlate.Change
}

func (f *feed) ChangesOf(after uint64, limit int, kinds []string) ([]correlate.Change, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []correlate.Change
	last, n := after, 0
	for _, c := range f.changes {
		if c.Entry.Seq > after && n < limit {
			n++
			last = c.Entry.Seq
			if kinds == nil || slices.Contains(kinds, c.Entry.Kind) {
				out = append(out, c)
			}
		}
	}
	return out, last, nil
}

func (f *feed) OpenSnapshot() ([]triage.Incident, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return nil, uint64(len(f.changes)), nil
}

func (f *feed) IncidentOpeners(id uint64) (*triage.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inc, ok := f.incidents[id]
	if !ok {
		return nil, correlate.ErrNotFound
	}
	c := *inc
	return &c, nil
}

func (f *feed) SetProblem(_ context.Context, id, problem uint64, actor string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	inc, ok := f.incidents[id]
	if !ok {
		return correlate.ErrNotFound
	}
	if inc.ProblemID != nil && *inc.ProblemID == problem {
		return nil
	}
	inc.ProblemID = &problem
	f.add(id, triage.KindProblem, inc.UpdatedAt)
	return nil
}

func (f *feed) add(id uint64, kind string, at time.Time) {
	f.changes = append(f.changes, correlate.Change{IncidentID: id,
		Entry: triage.TimelineEntry{Seq: uint64(len(f.changes) + 1), Time: at, Kind: kind}})
}

// open adds an incident with a root cause CI, opened at at.
func (f *feed) open(ci string, at time.Time) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := uint64(len(f.incidents) + 1)
	f.incidents[id] = &triage.Incident{ID: id, Key: triage.IncidentKey(id), CI: ci, RootCause: triage.RootCause{CI: ci},
		OpenedAt: at, UpdatedAt: at}
	f.add(id, triage.KindOpened, at)
	return id
}

// move moves an incident's root cause.
func (f *feed) move(id uint64, ci string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.incidents[id].RootCause.CI = ci
	f.add(id, triage.KindRootCause, at)
}

func (f *feed) problemOf(id uint64) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.incidents[id].ProblemID; p != nil {
		return *p
	}
	return 0
}

// A root cause that moves takes the incident's occurrence along: it counts
// for its new CI and no longer for its old one.
func TestRootCauseMoves(t *testing.T) {
	f := &feed{incidents: map[uint64]*triage.Incident{}}
	clk := newClock()
	tr, err := problems.Open(problems.Options{Path: filepath.Join(t.TempDir(), "problems.db"), Source: f, Recorder: f,
		By: []string{problems.ByRootCI}, PollInterval: 2 * time.Millisecond, MinBackoff: time.Millisecond, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = tr.Run(ctx) }()
	defer func() { cancel(); <-done; _ = tr.Close() }()
	idle := func() {
		t.Helper()
		eventually(t, "idle", func() bool { ok, err := tr.Idle(); return err == nil && ok })
	}
	at := clk.Now()
	step := func() time.Time { at = at.Add(time.Hour); return at }
	a1, a2 := f.open("a", step()), f.open("a", step())
	x := f.open("b", step())
	idle()
	if all, _ := tr.All(); len(all) != 0 {
		t.Fatalf("problems: %+v", all)
	}
	f.move(x, "a", step())
	idle()
	all, _ := tr.All()
	if len(all) != 1 || all[0].RootCI != "a" || !slices.Equal(all[0].Incidents, []uint64{a1, a2, x}) {
		t.Fatalf("problems: %+v", all)
	}
	for _, id := range []uint64{a1, a2, x} {
		if f.problemOf(id) != 1 {
			t.Fatalf("%s not linked", triage.IncidentKey(id))
		}
	}
	b1, b2 := f.open("b", step()), f.open("b", step())
	idle()
	if all, _ := tr.All(); len(all) != 1 {
		t.Fatalf("b counted the incident that moved away: %+v", all)
	}
	// An incident linked to a problem keeps it when its root cause moves.
	f.move(x, "b", step())
	b3 := f.open("b", step())
	idle()
	all, _ = tr.All()
	if len(all) != 2 || all[1].RootCI != "b" || !slices.Equal(all[1].Incidents, []uint64{b1, b2, b3}) {
		t.Fatalf("problems: %+v", all)
	}
	if f.problemOf(x) != 1 {
		t.Fatalf("%s relinked to %d", triage.IncidentKey(x), f.problemOf(x))
	}
	p, _ := tr.Get(1)
	if p.IncidentCount != 3 {
		t.Fatalf("PRB-1: %+v", p)
	}
}

// Occurrences too old to count with any new incident are deleted.
func TestOldOccurrencesPruned(t *testing.T) {
	f := &feed{incidents: map[uint64]*triage.Incident{}}
	clk := newClock()
	tr, err := problems.Open(problems.Options{Path: filepath.Join(t.TempDir(), "problems.db"), Source: f, Recorder: f,
		Window: time.Hour, PollInterval: 2 * time.Millisecond, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = tr.Run(ctx) }()
	defer func() { cancel(); <-done; _ = tr.Close() }()
	count := func(want int) {
		t.Helper()
		eventually(t, fmt.Sprintf("%d occurrences", want), func() bool {
			ok, err := tr.Idle()
			n, err2 := tr.Occurrences()
			return err == nil && err2 == nil && ok && n == want
		})
	}
	f.open("a", clk.Now())
	f.open("a", clk.Now())
	count(2) // no alerts: root_ci keys only
	clk.Advance(3 * time.Hour)
	f.open("a", clk.Now())
	count(1)
	if all, _ := tr.All(); len(all) != 0 {
		t.Fatalf("problems: %+v", all)
	}
}
