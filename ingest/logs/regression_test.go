package logs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/ingest"
)

// Regression tests from the review of the log pipeline.

func TestBracketTokenDoesNotPanic(t *testing.T) {
	m, _ := NewMiner(Options{})
	m.Add("json: cannot unmarshal object into Go value of type []string")
	m.Add("[] [ ] []x [1] []1")
	p := newTestPipeline(t, &fakeSink{}, nil)
	if err := p.Logs(context.Background(), []ingest.LogRecord{record(t0, "error", "json: cannot unmarshal object into Go value of type []string")}); err != nil {
		t.Fatal(err)
	}
}

type failOnce struct {
	fakeSink
	calls int
}

func (f *failOnce) Submit(ctx context.Context, evs []triage.Event) error {
	f.calls++
	if f.calls == 1 {
		return errors.New("service busy")
	}
	return f.fakeSink.Submit(ctx, evs)
}

func offsets(recs []ingest.LogRecord, from int64) []ingest.LogRecord {
	for i := range recs {
		recs[i].Topic, recs[i].Partition, recs[i].Offset = "logs", 0, from+int64(i)
	}
	return recs
}

func TestRetriedBatchKeepsItsEvents(t *testing.T) {
	sink := &failOnce{}
	p := newTestPipeline(t, &sink.fakeSink, func(o *PipelineOptions) { o.Sink = sink })
	recs := offsets([]ingest.LogRecord{record(t0, "error", "connection to 10.0.3.1:5432 refused", "service", "orders")}, 0)
	if err := p.Logs(context.Background(), recs); err == nil {
		t.Fatal("the first submission should fail")
	}
	if err := p.Logs(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.named(AlertNewErrorTemplate)); n != 1 {
		t.Errorf("%d new-error-template events after a retried batch, want 1", n)
	}
	if c := p.Templates(1, false)[0].Count; c != 1 {
		t.Errorf("template count %d after one record was retried, want 1", c)
	}
}

func TestRetriedSpikeIsRaised(t *testing.T) {
	sink := &failOnce{calls: 1}
	p := newTestPipeline(t, &sink.fakeSink, func(o *PipelineOptions) { o.Sink = sink })
	off := int64(0)
	batch := func(minute, n int) []ingest.LogRecord {
		var recs []ingest.LogRecord
		for i := 0; i < n; i++ {
			recs = append(recs, record(t0.Add(time.Duration(minute)*time.Minute+time.Duration(i)*time.Second), "error", fmt.Sprintf("payment %d failed", i), "service", "payments"))
		}
		recs = offsets(recs, off)
		off += int64(n)
		return recs
	}
	for m := 0; m < 10; m++ {
		if err := p.Logs(context.Background(), batch(m, 5)); err != nil {
			t.Fatal(err)
		}
	}
	sink.calls = 0
	spike := batch(10, 30)
	_ = p.Logs(context.Background(), spike)
	if err := p.Logs(context.Background(), spike); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.named(AlertErrorSpike)); n != 1 {
		t.Errorf("%d spike events after the spiking batch was retried, want 1", n)
	}
}

func TestTemplateIDsNotReusedAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log-templates.bin")
	s1 := &fakeSink{}
	p1 := newTestPipeline(t, s1, func(o *PipelineOptions) { o.StatePath = path })
	if err := p1.Logs(context.Background(), []ingest.LogRecord{record(t0, "info", "service started")}); err != nil {
		t.Fatal(err)
	}
	if err := p1.Save(); err != nil {
		t.Fatal(err)
	}
	if err := p1.Logs(context.Background(), []ingest.LogRecord{record(t0, "error", "disk /dev/sda1 full", "service", "orders")}); err != nil {
		t.Fatal(err)
	}
	s2 := &fakeSink{} // kill -9 before the next save, restart
	p2 := newTestPipeline(t, s2, func(o *PipelineOptions) { o.StatePath = path })
	if err := p2.Logs(context.Background(), []ingest.LogRecord{record(t0.Add(time.Hour), "error", "certificate expired for payments", "service", "orders")}); err != nil {
		t.Fatal(err)
	}
	a, b := s1.named(AlertNewErrorTemplate)[0], s2.named(AlertNewErrorTemplate)[0]
	if a.Labels["log_template"] == b.Labels["log_template"] || a.Fingerprint == b.Fingerprint {
		t.Errorf("two templates share log_template %s", a.Labels["log_template"])
	}
}

func TestSteadyRateIsNoSpike(t *testing.T) {
	sink := &fakeSink{}
	p := newTestPipeline(t, sink, nil) // factor 3, min_count 10
	for m := 0; m < 10; m++ {
		var recs []ingest.LogRecord
		for i := 0; i < 12; i++ {
			recs = append(recs, record(t0.Add(time.Duration(m)*time.Minute+time.Duration(i)*time.Second), "error", fmt.Sprintf("payment %d failed", i), "service", "payments"))
		}
		if err := p.Logs(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(sink.named(AlertErrorSpike)); n != 0 {
		t.Errorf("%d spike events on a steady 12/min", n)
	}
}

func TestFutureTimestampDoesNotStallSpikes(t *testing.T) {
	sink := &fakeSink{}
	p := newTestPipeline(t, sink, func(o *PipelineOptions) { o.Now = func() time.Time { return t0.Add(10*time.Minute + 30*time.Second) } })
	send := func(at time.Time, n int) {
		var recs []ingest.LogRecord
		for i := 0; i < n; i++ {
			recs = append(recs, record(at.Add(time.Duration(i)*time.Second), "error", fmt.Sprintf("payment %d failed", i), "service", "payments"))
		}
		if err := p.Logs(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	for m := 0; m < 10; m++ {
		send(t0.Add(time.Duration(m)*time.Minute), 5)
	}
	send(t0.Add(24*time.Hour), 1) // a producer with a clock a day ahead
	send(t0.Add(10*time.Minute), 50)
	if n := len(sink.named(AlertErrorSpike)); n != 1 {
		t.Errorf("%d spike events for 10× the baseline after one future-dated record, want 1", n)
	}
}

func TestOutOfRangeTimeStillRaises(t *testing.T) {
	sink := &fakeSink{}
	p := newTestPipeline(t, sink, nil)
	bad := ingest.LogRecord{Time: t0, Value: []byte(`{"@timestamp":"1969-12-31T23:59:59Z","level":"error","message":"disk /dev/sda1 full","service":"orders"}`)}
	if err := p.Logs(context.Background(), []ingest.LogRecord{bad}); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.named(AlertNewErrorTemplate)); n != 1 {
		t.Errorf("%d new-error-template events, want 1 (at the Kafka time)", n)
	}
}

func TestEmptyMatchingMaskRefused(t *testing.T) {
	if _, err := NewMiner(Options{Masks: []Mask{{Name: "ID", Regex: `[0-9]*`}}}); err == nil {
		t.Fatal("a mask matching the empty string was accepted")
	}
}

func TestSpikeIsOneServiceAlertAndLasts(t *testing.T) {
	sink := &fakeSink{}
	p := newTestPipeline(t, sink, nil)
	send := func(minute, n int) {
		var recs []ingest.LogRecord
		for i := 0; i < n; i++ {
			recs = append(recs, record(t0.Add(time.Duration(minute)*time.Minute+time.Duration(i)*time.Second), "error",
				fmt.Sprintf("payment %d failed", i), "service", "payments", "pod", fmt.Sprintf("payments-%d", (i+minute)%3)))
		}
		if err := p.Logs(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	for m := 0; m < 10; m++ {
		send(m, 5)
	}
	for m := 10; m < 16; m++ {
		send(m, 30) // a storm of 6× for six minutes
	}
	sp := sink.named(AlertErrorSpike)
	var last time.Time
	for _, e := range sp {
		if e.Fingerprint != sp[0].Fingerprint || e.Labels["pod"] != "" {
			t.Fatalf("spike events %v and %v: want one service-level alert", sp[0].Labels, e.Labels)
		}
		if e.EndsAt.After(last) {
			last = e.EndsAt
		}
	}
	if end := t0.Add(16 * time.Minute); len(sp) == 0 || last.Before(end) {
		t.Errorf("%d spike events ending %s; the storm lasts until %s", len(sp), last.Format("15:04"), end.Format("15:04"))
	}
}
