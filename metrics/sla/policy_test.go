package sla

import (
	"math/rand"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestSelect(t *testing.T) {
	s, err := Build(Config{Policies: []PolicyConfig{
		{Name: "p1", Priorities: []string{"P1"}, Calendar: "24x7", Resolve: Duration(time.Hour)},
		{Name: "rest", Priorities: []string{"P2", "P3", "P4", "P5"}, Calendar: "24x7", Resolve: Duration(time.Hour)},
		{Name: "payments-p1", Priorities: []string{"p1"}, Services: []string{"payments"}, Calendar: "24x7", Resolve: Duration(time.Hour)},
		{Name: "payments", Services: []string{"payments", "billing"}, Calendar: "24x7", Resolve: Duration(time.Hour)},
		{Name: "p1-again", Priorities: []string{"P1"}, Calendar: "24x7", Resolve: Duration(time.Hour)},
		{Name: "payments-again", Services: []string{"payments"}, Calendar: "24x7", Resolve: Duration(time.Hour)},
		{Name: "catch-all", Calendar: "24x7", Resolve: Duration(time.Hour)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, priority, service, want string
	}{
		{"priority only", "P1", "orders", "p1"},
		{"priority in a list", "P3", "orders", "rest"},
		{"case-insensitive priority", "p1", "orders", "p1"},
		{"service and priority beat priority", "P1", "payments", "payments-p1"},
		{"service beats priority", "P3", "payments", "payments"},
		{"second service of a list", "P2", "billing", "payments"},
		{"ties go to the first in file order", "P1", "billing", "payments"},
		{"catch-all", "P7", "orders", "catch-all"},
		{"no service", "P2", "", "rest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := s.Select(tc.priority, tc.service)
			if p == nil || p.Name != tc.want {
				t.Fatalf("Select(%q, %q) = %v, want %s", tc.priority, tc.service, p, tc.want)
			}
		})
	}
	s2, _ := Build(Config{Policies: []PolicyConfig{{Name: "p1", Priorities: []string{"P1"}, Calendar: "24x7", Resolve: Duration(time.Hour)}}})
	if p := s2.Select("P2", "orders"); p != nil {
		t.Errorf("Select without a match = %v, want nil", p.Name)
	}
}

// standard is the policy and calendar most tests evaluate: acknowledge in
// 4 business hours, resolve in 3d (72 open hours), Berlin 09:00-17:00.
func standard(t testing.TB) (*Policy, *Calendar, *time.Location) {
	t.Helper()
	s, err := Build(Config{
		Calendars: []CalendarConfig{{Name: "eu", TimeZone: "Europe/Berlin", Days: weekdays, Hours: nineFive, Holidays: []HolidayConfig{{Date: "2026-12-25"}}}},
		Policies: []PolicyConfig{{Name: "standard", Calendar: "eu", Acknowledge: Duration(4 * time.Hour),
			Resolve: Duration(72 * time.Hour)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := s.Select("P3", "orders")
	return p, s.Calendar(p.Calendar), s.Calendar("eu").Location()
}

func TestEvaluate(t *testing.T) {
	p, cal, berlin := standard(t)
	ts := func(s string) time.Time { return at(t, berlin, s) }
	ptr := func(s string) *time.Time { v := ts(s); return &v }
	opened := ts("2026-03-02 09:00")
	type want struct {
		state    State
		elapsed  time.Duration
		deadline string // "" for unknown
		warnings []float64
		paused   bool
	}
	tests := []struct {
		name     string
		inc      Incident
		now      string
		ack, res want
	}{
		{"early", Incident{OpenedAt: opened}, "2026-03-02 11:00",
			want{Pending, 2 * time.Hour, "2026-03-02 13:00", nil, false},
			want{Pending, 2 * time.Hour, "2026-03-12 17:00", nil, false}},
		{"first warning", Incident{OpenedAt: opened}, "2026-03-02 12:00",
			want{Pending, 3 * time.Hour, "2026-03-02 13:00", []float64{0.75}, false},
			want{Pending, 3 * time.Hour, "2026-03-12 17:00", nil, false}},
		{"second warning at its exact instant", Incident{OpenedAt: opened}, "2026-03-02 12:36",
			want{Pending, 216 * time.Minute, "2026-03-02 13:00", []float64{0.75, 0.9}, false},
			want{Pending, 216 * time.Minute, "2026-03-12 17:00", nil, false}},
		{"breached at the deadline", Incident{OpenedAt: opened}, "2026-03-02 13:00",
			want{Breached, 4 * time.Hour, "2026-03-02 13:00", []float64{0.75, 0.9}, false},
			want{Pending, 4 * time.Hour, "2026-03-12 17:00", nil, false}},
		{"acknowledged in time", Incident{OpenedAt: opened, AcknowledgedAt: ptr("2026-03-02 12:30")}, "2026-03-03 10:00",
			want{Met, 210 * time.Minute, "2026-03-02 13:00", []float64{0.75}, false},
			want{Pending, 9 * time.Hour, "2026-03-12 17:00", nil, false}},
		{"acknowledged at the deadline", Incident{OpenedAt: opened, AcknowledgedAt: ptr("2026-03-02 13:00")}, "2026-03-03 10:00",
			want{Met, 4 * time.Hour, "2026-03-02 13:00", []float64{0.75, 0.9}, false},
			want{Pending, 9 * time.Hour, "2026-03-12 17:00", nil, false}},
		{"acknowledgement in the future is not yet", Incident{OpenedAt: opened, AcknowledgedAt: ptr("2026-03-02 12:30")}, "2026-03-02 10:00",
			want{Pending, time.Hour, "2026-03-02 13:00", nil, false},
			want{Pending, time.Hour, "2026-03-12 17:00", nil, false}},
		{"acknowledged after closing, deadline at closing", Incident{OpenedAt: ts("2026-03-02 13:00"), AcknowledgedAt: ptr("2026-03-02 17:30")}, "2026-03-02 18:00",
			want{Breached, 4 * time.Hour, "2026-03-02 17:00", []float64{0.75, 0.9}, false},
			want{Pending, 4 * time.Hour, "2026-03-13 13:00", nil, false}},
		{"resolved without acknowledgement", Incident{OpenedAt: opened, ResolvedAt: ptr("2026-03-02 10:00")}, "2026-03-03 10:00",
			want{Met, time.Hour, "2026-03-02 13:00", nil, false},
			want{Met, time.Hour, "2026-03-12 17:00", nil, false}},
		{"resolved late", Incident{OpenedAt: opened, AcknowledgedAt: ptr("2026-03-02 09:05"), ResolvedAt: ptr("2026-03-13 09:00")}, "2026-03-20 10:00",
			want{Met, 5 * time.Minute, "2026-03-02 13:00", nil, false},
			want{Breached, 72 * time.Hour, "2026-03-12 17:00", []float64{0.75, 0.9}, false}},
		{"on hold", Incident{OpenedAt: opened, AcknowledgedAt: ptr("2026-03-02 09:30"),
			Pauses: []Interval{{From: ts("2026-03-02 11:00")}}}, "2026-03-04 10:00",
			want{Met, 30 * time.Minute, "2026-03-02 13:00", nil, false},
			want{Pending, 2 * time.Hour, "", nil, true}},
		{"back from hold", Incident{OpenedAt: opened, AcknowledgedAt: ptr("2026-03-02 09:30"),
			Pauses: []Interval{{From: ts("2026-03-02 11:00"), To: ts("2026-03-04 09:00")}}}, "2026-03-04 10:00",
			want{Met, 30 * time.Minute, "2026-03-02 13:00", nil, false},
			want{Pending, 3 * time.Hour, "2026-03-16 15:00", nil, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Evaluate(p, cal, tc.inc, ts(tc.now))
			if len(got) != 2 || got[0].Target != Acknowledge || got[1].Target != Resolve {
				t.Fatalf("Evaluate = %+v, want acknowledge and resolve", got)
			}
			for i, w := range []want{tc.ack, tc.res} {
				g := got[i]
				if g.State != w.state || g.Elapsed != w.elapsed || !slices.Equal(g.Warnings, w.warnings) || g.Paused != w.paused {
					t.Errorf("%s: state %s elapsed %v warnings %v paused %v, want %s %v %v %v",
						g.Target, g.State, g.Elapsed, g.Warnings, g.Paused, w.state, w.elapsed, w.warnings, w.paused)
				}
				if wantFrac := float64(w.elapsed) / float64(g.Budget); g.Fraction != wantFrac {
					t.Errorf("%s: fraction %v, want %v", g.Target, g.Fraction, wantFrac)
				}
				switch {
				case w.deadline == "" && !g.Deadline.IsZero():
					t.Errorf("%s: deadline %v, want unknown", g.Target, g.Deadline)
				case w.deadline != "" && !g.Deadline.Equal(ts(w.deadline)):
					t.Errorf("%s: deadline %v, want %s", g.Target, g.Deadline, w.deadline)
				}
			}
		})
	}
}

func TestCrossingsAndNextEvent(t *testing.T) {
	p, cal, berlin := standard(t)
	ts := func(s string) time.Time { return at(t, berlin, s) }
	inc := Incident{OpenedAt: ts("2026-03-02 09:00")}
	got := Crossings(p, cal, inc, ts("2026-03-02 09:00"), ts("2026-03-12 17:00"))
	want := []Crossing{
		{Acknowledge, Warning, 0.75, ts("2026-03-02 12:00")},
		{Acknowledge, Warning, 0.9, ts("2026-03-02 12:36")},
		{Acknowledge, Breach, 1, ts("2026-03-02 13:00")},
		{Resolve, Warning, 0.75, ts("2026-03-10 15:00")}, // 54h: six days and 6h
		{Resolve, Warning, 0.9, ts("2026-03-12 09:48")},  // 64h48m: eight days and 48m
		{Resolve, Breach, 1, ts("2026-03-12 17:00")},     // 72h: nine days
	}
	if !equalCrossings(got, want) {
		t.Fatalf("Crossings =\n%v\nwant\n%v", got, want)
	}
	if c := Crossings(p, cal, inc, ts("2026-03-02 12:00"), ts("2026-03-02 12:36")); !equalCrossings(c, want[1:2]) {
		t.Errorf("Crossings over (12:00, 12:36] = %v, want only the 0.9 warning", c)
	}
	next, ok := NextEvent(p, cal, inc, ts("2026-03-02 12:00"))
	if !ok || !next.Equal(ts("2026-03-02 12:36")) {
		t.Errorf("NextEvent at 12:00 = %v, %v, want 12:36", next, ok)
	}
	acked := inc
	ack := ts("2026-03-02 12:10")
	acked.AcknowledgedAt = &ack
	if next, ok := NextEvent(p, cal, acked, ts("2026-03-02 12:20")); !ok || !next.Equal(ts("2026-03-10 15:00")) {
		t.Errorf("NextEvent after acknowledgement = %v, %v, want the resolve warning", next, ok)
	}
	held := acked
	held.Pauses = []Interval{{From: ts("2026-03-03 09:00")}}
	if next, ok := NextEvent(p, cal, held, ts("2026-03-04 09:00")); ok {
		t.Errorf("NextEvent on hold = %v, want none", next)
	}
}

func equalCrossings(a, b []Crossing) bool {
	return slices.EqualFunc(a, b, func(x, y Crossing) bool {
		return x.Target == y.Target && x.Kind == y.Kind && x.Threshold == y.Threshold && x.At.Equal(y.At)
	})
}

// TestCrossingsExactlyOnce steps now forward in random increments over
// random incidents: the crossings of all steps are those of one big step,
// and following NextEvent finds them too.
func TestCrossingsExactlyOnce(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	s, err := Build(Config{
		Calendars: []CalendarConfig{
			{Name: "eu", TimeZone: "Europe/Berlin", Days: weekdays, Hours: []string{"08:00-12:00,13:00-17:00"}, Holidays: []HolidayConfig{{Date: "2026-03-27"}}},
			{Name: "ny", TimeZone: "America/New_York", Days: allWeek, Hours: allDay, Holidays: []HolidayConfig{{Date: "2026-03-10"}}},
		},
		Policies: []PolicyConfig{
			{Name: "eu", Calendar: "eu", Acknowledge: Duration(4 * time.Hour), Resolve: Duration(40 * time.Hour), WarnAt: []float64{0.5, 0.75, 0.9}},
			{Name: "ny", Calendar: "ny", Acknowledge: Duration(15 * time.Minute), Resolve: Duration(30 * time.Hour)},
			{Name: "24x7", Calendar: "24x7", Resolve: Duration(8 * time.Hour), WarnAt: []float64{}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	rnd := func(span time.Duration) time.Time { return base.Add(time.Duration(r.Int63n(int64(span)))) }
	total := 0
	for i := 0; i < 300; i++ {
		p := &s.Policies()[i%3]
		cal := s.Calendar(p.Calendar)
		inc := Incident{OpenedAt: rnd(20 * 24 * time.Hour)}
		var tt []time.Time
		for range 2 + r.Intn(6) {
			tt = append(tt, inc.OpenedAt.Add(time.Duration(r.Int63n(int64(15*24*time.Hour)))))
		}
		slices.SortFunc(tt, time.Time.Compare)
		for j := 0; j+1 < len(tt); j += 2 {
			pause := Interval{From: tt[j], To: tt[j+1]}
			if j+2 >= len(tt) && r.Intn(3) == 0 {
				pause.To = time.Time{}
			}
			inc.Pauses = append(inc.Pauses, pause)
		}
		if r.Intn(2) == 0 {
			a := inc.OpenedAt.Add(time.Duration(r.Int63n(int64(48 * time.Hour))))
			inc.AcknowledgedAt = &a
		}
		if r.Intn(2) == 0 {
			v := inc.OpenedAt.Add(time.Duration(r.Int63n(int64(20 * 24 * time.Hour))))
			inc.ResolvedAt = &v
		}
		start, end := inc.OpenedAt.Add(-time.Hour), inc.OpenedAt.Add(30*24*time.Hour)
		all := Crossings(p, cal, inc, start, end)
		total += len(all)

		var stepped []Crossing
		for prev := start; prev.Before(end); {
			now := prev.Add(time.Duration(r.Int63n(int64(12*time.Hour))) + 1)
			if now.After(end) {
				now = end
			}
			stepped = append(stepped, Crossings(p, cal, inc, prev, now)...)
			prev = now
		}
		if !equalCrossings(stepped, all) {
			t.Fatalf("incident %d %+v:\nstepped %v\nonce    %v", i, inc, stepped, all)
		}

		// The daemon recomputes NextEvent whenever the incident changes
		// (a hold begins or ends, an acknowledgement): NextEvent cannot
		// foresee those.
		var changes []time.Time
		for _, pz := range inc.Pauses {
			changes = append(changes, pz.From, pz.To)
		}
		for _, v := range []*time.Time{inc.AcknowledgedAt, inc.ResolvedAt} {
			if v != nil {
				changes = append(changes, *v)
			}
		}
		var followed []Crossing
		for prev := start; prev.Before(end); {
			step, fromEvent := end, false
			if next, ok := NextEvent(p, cal, inc, prev); ok && next.Before(end) {
				step, fromEvent = next, true
			}
			for _, c := range changes {
				if c.After(prev) && c.Before(step) {
					step, fromEvent = c, false
				}
			}
			cs := Crossings(p, cal, inc, prev, step)
			if fromEvent && len(cs) == 0 {
				t.Fatalf("incident %d: NextEvent %v has no crossing", i, step)
			}
			followed = append(followed, cs...)
			prev = step
		}
		if !equalCrossings(followed, all) {
			t.Fatalf("incident %d %+v:\nfollowing NextEvent %v\nonce %v", i, inc, followed, all)
		}

		// Evaluate at the end agrees with the crossings.
		for _, st := range Evaluate(p, cal, inc, end) {
			var warned []float64
			breached := false
			for _, c := range all {
				if c.Target != st.Target {
					continue
				}
				if c.Kind == Breach {
					breached = true
				} else {
					warned = append(warned, c.Threshold)
				}
			}
			if breached != (st.State == Breached) || !reflect.DeepEqual(warned, st.Warnings) {
				t.Fatalf("incident %d: Evaluate %+v disagrees with crossings %v", i, st, all)
			}
		}
	}
	if total < 300 {
		t.Errorf("only %d crossings in 300 incidents: the test is too weak", total)
	}
}
