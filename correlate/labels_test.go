package correlate

import (
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage"
)

func TestPackedLabelsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		var b strings.Builder
		chars := []rune("aZ_9 =,\"{}ü\x00\n")
		for range r.IntN(300) { // lengths past one varint byte too
			b.WriteRune(chars[r.IntN(len(chars))])
		}
		return b.String()
	}
	for i := range 500 {
		m := map[string]string{}
		for range r.IntN(12) {
			m[word()] = word()
		}
		p := packLabels(m)
		if got := p.unpack(); !maps.Equal(got, m) {
			t.Fatalf("case %d: unpack(pack(%q)) = %q", i, m, got)
		}
		for k, v := range m {
			if got := p.get(k); got != v {
				t.Fatalf("case %d: get(%q) = %q, want %q", i, k, got, v)
			}
		}
		if _, ok := m["absent-label"]; !ok && p.get("absent-label") != "" {
			t.Fatalf("case %d: an absent label has a value", i)
		}
	}
	if packLabels(nil) != "" || len(packedLabels("").unpack()) != 0 {
		t.Fatal("no labels should pack to nothing")
	}
}

// Once its details are written an alert keeps its labels packed; what
// reads them later (the grouper on a reopen, a details rewrite, timeline
// messages) still sees them.
func TestShedLabelsStillGroupAndWrite(t *testing.T) {
	e := NewEngine(Options{ResolveAfter: time.Minute, ReopenWindow: time.Hour},
		NewLabelGrouper([]string{"alertname", "service"}, 10*time.Minute))
	ev := func(inst, summary string) *triage.Event {
		x := triage.Event{Labels: map[string]string{"alertname": "Disk", "service": "db", "instance": inst},
			Annotations: map[string]string{"summary": summary}}
		if err := x.Normalize(t0); err != nil {
			t.Fatal(err)
		}
		return &x
	}
	first := ev("a", "disk full")
	e.Process(first, t0)
	e.Flush()
	e.Flush() // the details were written: they leave memory
	a := e.alerts[first.Fingerprint]
	if a.Labels != nil || a.packed == "" || a.label("instance") != "a" {
		t.Fatalf("after its details were written: labels %v, packed %q; want only packed labels", a.Labels, a.packed)
	}
	// A changed summary writes the details again, labels included.
	e.Process(ev("a", "disk very full"), t0.Add(time.Second))
	ch := e.Flush()
	if len(ch.AlertDetails) != 1 || !maps.Equal(ch.AlertDetails[0].Labels, first.Labels) {
		t.Fatalf("details written again: %+v, want the labels %v", ch.AlertDetails, first.Labels)
	}
	e.Flush()
	// Resolved and reopened by hand, the incident takes its group's alerts
	// again: the grouper reads the alert's labels back.
	if err := e.Resolve(1, "alice", "", t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := e.Reopen(1, "alice", "", t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	e.Flush()
	if r := e.Process(ev("b", "disk full"), t0.Add(4*time.Second)); r.IncidentID != 1 || r.NewIncident {
		t.Fatalf("a new alert of the reopened incident's group went to %+v, want INC-1", r)
	}
	if n := e.alerts[first.Fingerprint].name(); n != "Disk" {
		t.Fatalf("name from packed labels = %q", n)
	}
}
