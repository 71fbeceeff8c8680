package correlate

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/triage-dev/triage"
)

// The change feed lists every timeline entry of every incident once, in
// the order they were made, and survives a restart.
// fourChanges runs a service in dir that opens INC-1 and INC-2, comments
// on INC-1 and acknowledges INC-2: four entries on the change feed.
func fourChanges(t *testing.T, dir string) (*testService, *Store) {
	t.Helper()
	ctx := context.Background()
	s := newTestService(t, dir, Options{ResolveAfter: 0, ReopenWindow: time.Hour}, true)
	if err := s.Submit(ctx, normalized(t, t0, event("alertname", "A", "service", "x"), event("alertname", "B", "service", "y"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Comment(ctx, 1, "alice", "looking"); err != nil {
		t.Fatal(err)
	}
	if err := s.Acknowledge(ctx, 2, "bob"); err != nil {
		t.Fatal(err)
	}
	return s, s.synced(t)
}

func TestChangeFeedInOrderAcrossIncidents(t *testing.T) {
	dir := t.TempDir()
	s, st := fourChanges(t, dir)
	all, err := st.Changes(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	type ic struct {
		id   uint64
		kind string
	}
	var got []ic
	for i, c := range all {
		if i > 0 && c.Entry.Seq <= all[i-1].Entry.Seq {
			t.Fatalf("change %d has seq %d after %d", i, c.Entry.Seq, all[i-1].Entry.Seq)
		}
		got = append(got, ic{c.IncidentID, c.Entry.Kind})
	}
	want := []ic{{1, triage.KindOpened}, {2, triage.KindOpened}, {1, triage.KindComment}, {2, triage.KindAcknowledged}}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("changes %v, want %v", got, want)
		}
	}
	// A cursor resumes after the last entry it saw.
	rest, err := st.Changes(all[1].Entry.Seq, 100)
	if err != nil || len(rest) != 2 || rest[0].Entry.Kind != triage.KindComment {
		t.Fatalf("after seq %d: %+v, %v", all[1].Entry.Seq, rest, err)
	}
	last, err := st.LastChange()
	if err != nil || last != all[3].Entry.Seq {
		t.Fatalf("LastChange %d, %v; want %d", last, err, all[3].Entry.Seq)
	}
	s.stop()
	s2 := newTestService(t, dir, Options{ResolveAfter: 0, ReopenWindow: time.Hour}, true)
	again, err := s2.synced(t).Changes(0, 100)
	if err != nil || len(again) != len(all) {
		t.Fatalf("after restart: %d changes, %v; want %d", len(again), err, len(all))
	}
}

func TestSetTicketLiveAndArchived(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, t.TempDir(), Options{ResolveAfter: 0, ReopenWindow: time.Minute}, true)
	if err := s.Submit(ctx, normalized(t, t0, event("alertname", "A"), event("alertname", "B"))); err != nil {
		t.Fatal(err)
	}
	tk := triage.Ticket{System: "jira", Key: "OPS-1", URL: "http://jira/browse/OPS-1"}
	for range 2 { // the second is a no-op
		if err := s.SetTicket(ctx, 1, tk, "jira"); err != nil {
			t.Fatal(err)
		}
	}
	// Incident 2 resolves and leaves the engine before its ticket is recorded.
	if err := s.Resolve(ctx, 2, "alice", ""); err != nil {
		t.Fatal(err)
	}
	s.clock.Set(t0.Add(time.Hour))
	if err := s.Submit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	tk2 := triage.Ticket{System: "jira", Key: "OPS-2"}
	if err := s.SetTicket(ctx, 2, tk2, "jira"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTicket(ctx, 99, tk2, "jira"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ticket of an unknown incident: %v", err)
	}
	st := s.synced(t)
	for id, want := range map[uint64]triage.Ticket{1: tk, 2: tk2} {
		inc, err := st.Incident(id)
		if err != nil {
			t.Fatal(err)
		}
		if inc.Ticket == nil || *inc.Ticket != want {
			t.Fatalf("incident %d ticket %+v, want %+v", id, inc.Ticket, want)
		}
		n := 0
		for _, e := range inc.Timeline {
			if e.Kind == triage.KindTicket {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("incident %d has %d ticket entries, want 1", id, n)
		}
		if id == 2 && inc.Status != triage.IncidentResolved {
			t.Fatalf("archived incident status %s after its ticket was recorded", inc.Status)
		}
	}
	// The archived incident stays archived across a restart (not live again).
	if live, err := st.Incidents(IncidentFilter{Limit: 10, Status: triage.IncidentOpen}); err != nil || len(live) != 1 {
		t.Fatalf("open incidents %v, %v", live, err)
	}
}

func TestReopenByHand(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, t.TempDir(), Options{ResolveAfter: 0, ReopenWindow: 10 * time.Minute}, true)
	ev := event("alertname", "A", "service", "x")
	if err := s.Submit(ctx, normalized(t, t0, ev)); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(ctx, 1, "jira:alice", ""); err != nil { // open: no-op
		t.Fatal(err)
	}
	if err := s.Resolve(ctx, 1, "jira:bob", "fixed"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(ctx, 1, "jira:alice", "not fixed"); err != nil {
		t.Fatal(err)
	}
	inc, err := s.synced(t).Incident(1)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Status != triage.IncidentOpen || inc.ResolvedAt != nil || inc.ReopenCount != 1 {
		t.Fatalf("after reopen: status %s resolved_at %v reopens %d", inc.Status, inc.ResolvedAt, inc.ReopenCount)
	}
	last := inc.Timeline[len(inc.Timeline)-1]
	if last.Kind != triage.KindReopened || last.Actor != "jira:alice" || last.Message != "reopened by jira:alice: not fixed" {
		t.Fatalf("last entry %+v", last)
	}
	// A reopened incident takes its alerts' repeats again.
	if err := s.Submit(ctx, normalized(t, t0, event("alertname", "A", "service", "x"))); err != nil {
		t.Fatal(err)
	}
	if got := s.engine.OpenIncidents(); got != 1 {
		t.Fatalf("open incidents %d, want 1", got)
	}
	// Past the reopen window it is archived and cannot reopen.
	if err := s.Resolve(ctx, 1, "jira:bob", ""); err != nil {
		t.Fatal(err)
	}
	s.clock.Set(t0.Add(time.Hour))
	if err := s.Submit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(ctx, 1, "jira:alice", ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("reopen of an archived incident: %v, want ErrConflict", err)
	}
	if err := s.Note(ctx, 1, triage.KindAssigned, "jira:alice", "assigned to carol"); err != nil {
		t.Fatalf("note on an archived incident: %v", err)
	}
}

func TestSetProblemAndHold(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, t.TempDir(), Options{ResolveAfter: 0, ReopenWindow: time.Minute}, true)
	if err := s.Submit(ctx, normalized(t, t0, event("alertname", "A"), event("alertname", "B"))); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.SetProblem(ctx, 1, 7, "problems"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Hold(ctx, 1, true, "alice", "waiting for the vendor"); err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(ctx, 1, true, "alice", ""); err != nil { // no-op
		t.Fatal(err)
	}
	if err := s.Hold(ctx, 1, false, "alice", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(ctx, 2, true, "bob", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Resolve(ctx, 2, "bob", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(ctx, 2, true, "bob", ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("hold of a resolved incident: %v", err)
	}
	s.clock.Set(t0.Add(time.Hour)) // incident 2 leaves the engine
	if err := s.Submit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetProblem(ctx, 2, 7, "problems"); err != nil {
		t.Fatal(err)
	}
	st := s.synced(t)
	kinds := func(inc *triage.Incident) (out []string) {
		for _, e := range inc.Timeline {
			out = append(out, e.Kind)
		}
		return out
	}
	one, _ := st.Incident(1)
	if one.ProblemID == nil || *one.ProblemID != 7 || one.OnHold {
		t.Fatalf("incident 1 problem %v on hold %v", one.ProblemID, one.OnHold)
	}
	want := []string{triage.KindOpened, triage.KindProblem, triage.KindOnHold, triage.KindOffHold}
	if got := kinds(one); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("incident 1 timeline %v, want %v", got, want)
	}
	two, _ := st.Incident(2)
	if two.ProblemID == nil || *two.ProblemID != 7 || two.OnHold || two.Status != triage.IncidentResolved {
		t.Fatalf("incident 2: problem %v on hold %v status %s (resolving clears the hold)", two.ProblemID, two.OnHold, two.Status)
	}
}
