package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/ingest"
	"github.com/triage-dev/triage/rules"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

type fakeSink struct {
	mu     sync.Mutex
	events []triage.Event
	fail   error
}

func (f *fakeSink) Submit(_ context.Context, evs []triage.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.events = append(f.events, evs...)
	return nil
}

func (f *fakeSink) named(alertname string) []triage.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []triage.Event
	for _, e := range f.events {
		if e.Labels["alertname"] == alertname {
			out = append(out, e)
		}
	}
	return out
}

func newTestPipeline(t testing.TB, sink *fakeSink, tweak func(*PipelineOptions)) *Pipeline {
	t.Helper()
	opts := PipelineOptions{
		NewErrorTemplates: true,
		Spike:             SpikeOptions{Interval: time.Minute, Factor: 3, MinCount: 10},
		Sink:              sink,
		Registry:          prometheus.NewRegistry(),
	}
	if tweak != nil {
		tweak(&opts)
	}
	p, err := NewPipeline(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func record(t time.Time, level, msg string, labels ...string) ingest.LogRecord {
	obj := map[string]any{"@timestamp": t.Format(time.RFC3339Nano), "level": level, "message": msg}
	for i := 0; i+1 < len(labels); i += 2 {
		obj[labels[i]] = labels[i+1]
	}
	b, _ := json.Marshal(obj)
	return ingest.LogRecord{Value: b, Time: t}
}

func TestDecodeFields(t *testing.T) {
	tests := []struct {
		name, value string
		want        Record
		json        bool
	}{
		{"shipper fields", `{"@timestamp": "2026-11-24T10:00:01Z", "level": "ERROR", "msg": "boom", "service": "orders", "pod": "orders-1", "labels": {"team": "a"}, "n": 5}`,
			Record{Message: "boom", Time: t0.Add(time.Second), Level: "error", Labels: map[string]string{"service": "orders", "pod": "orders-1", "team": "a"}}, true},
		{"nested level, log field", `{"log": "disk full", "log": "disk full", "log.level": "", "time": "bad"}`,
			Record{Message: "disk full", Time: t0, Labels: map[string]string{}}, true},
		{"nested object path", `{"message": "x", "log": {"level": "warn"}}`,
			Record{Message: "x", Time: t0, Level: "warning", Labels: map[string]string{}}, true},
		{"plain text", "2026-11-24 oops something failed\n", Record{Message: "2026-11-24 oops something failed", Time: t0, Labels: map[string]string{}}, false},
		{"invalid UTF-8", "bad \xff byte", Record{Message: "bad \uFFFD byte", Time: t0, Labels: map[string]string{}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Decode([]byte(tc.value), DefaultFields, t0)
			if ok != tc.json || got.Message != tc.want.Message || !got.Time.Equal(tc.want.Time) || got.Level != tc.want.Level || fmt.Sprint(got.Labels) != fmt.Sprint(tc.want.Labels) {
				t.Fatalf("Decode = %+v, %v; want %+v, %v", got, ok, tc.want, tc.json)
			}
		})
	}
}

func TestNewErrorTemplateRaisesOneEvent(t *testing.T) {
	sink := &fakeSink{}
	p := newTestPipeline(t, sink, nil)
	var recs []ingest.LogRecord
	for i := 0; i < 5; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		recs = append(recs,
			record(at, "info", fmt.Sprintf("request %d served in %dms", i, 10+i), "service", "orders"),
			record(at, "error", fmt.Sprintf("connection to 10.0.3.%d:5432 refused", i), "service", "orders", "host", "db-1"))
	}
	if err := p.Logs(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	evs := sink.named(AlertNewErrorTemplate)
	if len(evs) != 1 {
		t.Fatalf("%d new-error-template events, want 1 (the info template raises none; repeats none)", len(evs))
	}
	ev := evs[0]
	if ev.Labels["service"] != "orders" || ev.Labels["host"] != "db-1" || ev.Labels["log_template"] == "" || ev.Severity != "warning" {
		t.Fatalf("event labels %v severity %s: the record's labels must be carried so the event binds to a CI", ev.Labels, ev.Severity)
	}
	if !ev.EndsAt.Equal(ev.StartsAt.Add(15 * time.Minute)) {
		t.Fatalf("ends_at %s, want starts_at + the event TTL", ev.EndsAt)
	}
	// A second batch of the same template raises nothing new.
	sink.events = nil
	if err := p.Logs(context.Background(), []ingest.LogRecord{record(t0.Add(time.Minute), "error", "connection to 10.0.3.9:5432 refused", "service", "orders")}); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.named(AlertNewErrorTemplate)); n != 0 {
		t.Fatalf("a known template raised %d events", n)
	}
}

func TestErrorSpikeOverBaseline(t *testing.T) {
	sink := &fakeSink{}
	p := newTestPipeline(t, sink, nil)
	send := func(minute, n int) {
		var recs []ingest.LogRecord
		for i := 0; i < n; i++ {
			at := t0.Add(time.Duration(minute)*time.Minute + time.Duration(i)*time.Second)
			recs = append(recs, record(at, "error", fmt.Sprintf("payment %d failed: upstream timeout", 1000+i), "service", "payments"))
		}
		if err := p.Logs(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	for m := 0; m < 10; m++ {
		send(m, 5) // a steady 5 a minute: the baseline
	}
	if n := len(sink.named(AlertErrorSpike)); n != 0 {
		t.Fatalf("%d spike events on a steady rate", n)
	}
	send(10, 30) // 6× the baseline
	spikes := sink.named(AlertErrorSpike)
	if len(spikes) != 1 {
		t.Fatalf("%d spike events for one spiking minute, want 1", len(spikes))
	}
	if spikes[0].Labels["service"] != "payments" || spikes[0].Severity != "error" {
		t.Fatalf("spike event %+v", spikes[0])
	}
	send(11, 12) // above min_count but not 3× the (now raised) baseline... and a new interval
	send(12, 5)
	if n := len(sink.named(AlertErrorSpike)); n != 1 {
		t.Fatalf("%d spike events after the spike passed, want still 1", n)
	}
}

func TestLogRulesRaiseEvents(t *testing.T) {
	rs, err := rules.Parse("r.yaml", []byte("rules:\n  - name: OOMKilled\n    kind: log\n    if: message contains \"OOMKilled\"\n    severity: critical\n"))
	if err != nil {
		t.Fatal(err)
	}
	sink := &fakeSink{}
	p := newTestPipeline(t, sink, func(o *PipelineOptions) { o.Rules = func() *rules.Set { return rs } })
	if err := p.Logs(context.Background(), []ingest.LogRecord{
		record(t0, "warn", "container orders-7f9 OOMKilled", "pod", "orders-7f9", "service", "orders"),
		record(t0.Add(time.Second), "warn", "container orders-7f9 OOMKilled", "pod", "orders-7f9", "service", "orders"),
		record(t0, "info", "all good", "pod", "orders-7f9"),
	}); err != nil {
		t.Fatal(err)
	}
	evs := sink.named("OOMKilled")
	if len(evs) != 1 || evs[0].Severity != "critical" || evs[0].Labels["pod"] != "orders-7f9" || evs[0].Labels["log_rule"] != "OOMKilled" {
		t.Fatalf("rule events %+v; want one (two matches of one alert in a batch), critical, with the pod label", evs)
	}
}

func TestSubmitErrorIsReturned(t *testing.T) {
	sink := &fakeSink{fail: fmt.Errorf("service stopped")}
	p := newTestPipeline(t, sink, nil)
	if err := p.Logs(context.Background(), []ingest.LogRecord{record(t0, "error", "boom")}); err == nil {
		t.Fatal("a failed submission was not returned: the consumer would commit records whose events are lost")
	}
}

func TestTemplatesSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log-templates.bin")
	sink := &fakeSink{}
	p := newTestPipeline(t, sink, func(o *PipelineOptions) { o.StatePath = path })
	recs := []ingest.LogRecord{record(t0, "error", "disk /dev/sda1 full"), record(t0, "info", "user 42 logged in")}
	if err := p.Logs(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	before := p.Templates(10, false)
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	sink2 := &fakeSink{}
	p2 := newTestPipeline(t, sink2, func(o *PipelineOptions) { o.StatePath = path })
	if err := p2.Logs(context.Background(), []ingest.LogRecord{record(t0.Add(time.Hour), "error", "disk /dev/sdb2 full")}); err != nil {
		t.Fatal(err)
	}
	if n := len(sink2.named(AlertNewErrorTemplate)); n != 0 {
		t.Fatalf("a template known before the restart raised %d new-template events", n)
	}
	after := p2.Templates(10, false)
	if len(after) != len(before) {
		t.Fatalf("%d templates after restart, %d before", len(after), len(before))
	}
}

func TestTemplatesListing(t *testing.T) {
	p := newTestPipeline(t, &fakeSink{}, nil)
	var recs []ingest.LogRecord
	for i := 0; i < 3; i++ {
		recs = append(recs, record(t0, "info", fmt.Sprintf("user %d logged in", i)))
	}
	recs = append(recs, record(t0, "error", "database connection refused"))
	if err := p.Logs(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	all := p.Templates(10, false)
	if len(all) != 2 || all[0].Count != 3 || all[0].Error {
		t.Fatalf("templates %+v; want the 3-record info template first", all)
	}
	errs := p.Templates(10, true)
	if len(errs) != 1 || !errs[0].Error || errs[0].Count != 1 {
		t.Fatalf("error templates %+v", errs)
	}
}

// FuzzDecode: any bytes decode into a record or a plain message, never a
// panic, and the message is valid UTF-8.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"@timestamp": "2026-11-24T10:00:01Z", "level": "ERROR", "msg": "boom", "service": "orders", "labels": {"a": "b"}}`))
	f.Add([]byte(`{"log": {"level": "warn"}, "message": 5}`))
	f.Add([]byte("plain \xff text"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, _ := Decode(data, DefaultFields, t0)
		if !utf8.ValidString(rec.Message) {
			t.Fatalf("message %q is not UTF-8", rec.Message)
		}
		if len(rec.Labels) > triage.MaxLabels {
			t.Fatalf("%d labels", len(rec.Labels))
		}
	})
}

// BenchmarkPipeline: JSON log records of the 8 loghub systems (a level, a
// service, a timestamp each) through decoding, mining, statistics and event
// checks, as the Kafka logs consumer hands them over, in batches of 500.
func BenchmarkPipeline(b *testing.B) {
	var recs []ingest.LogRecord
	for _, sys := range loghubSystems {
		for i, l := range readLoghub(b, sys) {
			level := "info"
			if i%10 == 0 {
				level = "error"
			}
			recs = append(recs, record(t0.Add(time.Duration(len(recs))*10*time.Millisecond), level, l.content, "service", sys))
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for range b.N {
		p := newTestPipeline(b, &fakeSink{}, nil)
		for i := 0; i < len(recs); i += 500 {
			if err := p.Logs(context.Background(), recs[i:min(i+500, len(recs))]); err != nil {
				b.Fatal(err)
			}
		}
		n += len(recs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// Without an error level, an error word in the template makes it an error
// one; an info level never does.
func TestErrorWordsWithoutLevel(t *testing.T) {
	sink := &fakeSink{}
	p := newTestPipeline(t, sink, nil)
	if err := p.Logs(context.Background(), []ingest.LogRecord{
		record(t0, "", "upload 17 failed after 3 retries", "service", "files"),
		record(t0, "info", "retrying after error 42", "service", "files"),
		record(t0, "", "upload 18 finished", "service", "files"),
	}); err != nil {
		t.Fatal(err)
	}
	evs := sink.named(AlertNewErrorTemplate)
	if len(evs) != 1 || evs[0].Annotations["template"] != "upload <NUM> failed after <NUM> retries" {
		t.Fatalf("events %+v; want one, for the levelless template with an error word", evs)
	}
	if errs := p.Templates(10, true); len(errs) != 1 {
		t.Fatalf("error templates %+v, want 1", errs)
	}
}
