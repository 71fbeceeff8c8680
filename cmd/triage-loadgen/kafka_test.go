package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/ingest"
)

func TestKafkaUsageErrors(t *testing.T) {
	k := []string{"--kafka-brokers", "127.0.0.1:9092"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"topic without brokers", []string{"--kafka-topic", "x"}, "--kafka-topic is for Kafka: give --kafka-brokers too"},
		{"apply timeout without brokers", []string{"--apply-timeout", "1s"}, "--apply-timeout is for Kafka"},
		{"warmup messages without brokers", []string{"--warmup-messages", "10"}, "--warmup-messages is for Kafka"},
		{"negative warmup messages", append(k, "--warmup-messages", "-1"), "--warmup-messages: -1"},
		{"empty brokers", []string{"--kafka-brokers", " , "}, "--kafka-brokers: empty"},
		{"broker without port", []string{"--kafka-brokers", "localhost"}, `--kafka-brokers: "localhost" is not host:port`},
		{"broker port 0", []string{"--kafka-brokers", "a:9092,b:0"}, `"b:0" is not host:port`},
		{"broker without host", []string{"--kafka-brokers", ":9092"}, `":9092" is not host:port`},
		{"bad topic", append(k, "--kafka-topic", "alerts/prod"), `--kafka-topic: "alerts/prod" is not a Kafka topic name`},
		{"topic ..", append(k, "--kafka-topic", ".."), "--kafka-topic"},
		{"v2 over Kafka", append(k, "--format", "v2"), "--format v2 is Alertmanager's HTTP API"},
		{"several events per message", append(k, "--format", "events", "--alerts-per-request", "3"), "a Kafka alerts message holds one generic event"},
		{"concurrency", append(k, "--concurrency", "4"), "--concurrency is for HTTP"},
		{"dry run", append(k, "--dry-run"), "--dry-run"},
		{"metrics without url", append(k, "--metrics"), "give its --url"},
		{"acks", append(k, "--kafka-acks", "2"), `--kafka-acks: "2" is not all, one or none`},
		{"negative partitions", append(k, "--kafka-partitions", "-1"), "--kafka-partitions: -1"},
		{"batch size 0", append(k, "--kafka-batch-size", "0"), "--kafka-batch-size: 0"},
		{"linger 0", append(k, "--kafka-linger", "0s"), "--kafka-linger: want a positive duration"},
		{"negative inflight", append(k, "--kafka-max-inflight", "-5"), "--kafka-max-inflight: -5"},
		{"apply timeout 0", append(k, "--apply-timeout", "0s"), "--apply-timeout: want a positive duration"},
		{"ratio needs messages", append(k, "--duplicate-ratio", "0.5"), "--duplicate-ratio needs --requests"},
		{"bad url", append(k, "--url", "localhost:9400"), "--url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runLoadgen(t, nil, tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q: want 2 and %q", code, out, errOut, tc.want)
			}
		})
	}
}

func TestKafkaOptions(t *testing.T) {
	parse := func(args ...string) options {
		t.Helper()
		o, err := parseFlags(args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := parse("--kafka-brokers", " 127.0.0.1:9092, [::1]:9093 ,", "--format", "events", "--requests", "1000",
		"--duplicate-ratio", "0.75")
	k := o.kafka
	if strings.Join(k.brokers, " ") != "127.0.0.1:9092 [::1]:9093" || !k.enabled() || k.follow {
		t.Errorf("brokers %q, follow %v", k.brokers, k.follow)
	}
	if k.topic != "triage.alerts" || k.partitions != 1 || k.acks != "all" || k.batchSize != 1000 ||
		k.linger != 5*time.Millisecond || k.maxInflight != 0 || k.applyTimeout != 2*time.Minute {
		t.Errorf("defaults %+v", k)
	}
	if o.unique != 250 {
		t.Errorf("unique %d, want 250 (a quarter of 1000 messages of one alert)", o.unique)
	}
	if o := parse("--kafka-brokers", "b:1", "--url", "http://127.0.0.1:1", "--metrics"); !o.kafka.follow {
		t.Error("--url does not make Kafka mode follow the daemon")
	}
	if o := parse("--url", "http://127.0.0.1:1"); o.kafka.enabled() || o.kafka.follow {
		t.Error("HTTP mode took a Kafka setting")
	}
}

// kafkaTestRunner is a runner that builds messages without a broker.
func kafkaTestRunner(t *testing.T, format string, perMessage, unique int, prebuild bool) *kafkaRunner {
	t.Helper()
	o, err := parseFlags([]string{"--kafka-brokers", "127.0.0.1:9092", "--format", format,
		"--alerts-per-request", fmt.Sprint(perMessage), "--unique", fmt.Sprint(unique)}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !prebuild {
		o.prebuildMB = 0
	}
	k := &kafkaRunner{opts: o, r: &runner{opts: o, pop: newPopulation(o.format, o.perRequest, o.unique, o.seed, testBase)}}
	k.prepare(io.Discard)
	if (k.r.cache != nil) != prebuild || (k.keys != nil) != prebuild {
		t.Fatalf("prebuilt %v, want %v", k.r.cache != nil, prebuild)
	}
	return k
}

func TestKafkaMessagesDecode(t *testing.T) {
	for _, tc := range []struct {
		name       string
		format     string
		perMessage int
		prebuild   bool
	}{
		{"webhook of one alert", formatWebhook, 1, true},
		{"webhook of five alerts", formatWebhook, 5, true},
		{"webhook built per message", formatWebhook, 5, false},
		{"event", formatEvents, 1, true},
		{"event built per message", formatEvents, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const messages, unique = 60, 100 // 300 alerts at most, 100 distinct
			k := kafkaTestRunner(t, tc.format, tc.perMessage, unique, tc.prebuild)
			due := make([]time.Time, messages)
			msgs := k.messages(0, due)
			seen := map[string]int{}
			events := 0
			for i, m := range msgs {
				if m.WriterData != &due[i] {
					t.Fatalf("message %d does not carry its due time", i)
				}
				evs, err := ingest.DecodeKafkaAlert(m.Value)
				if err != nil {
					t.Fatalf("message %d: ingest.DecodeKafkaAlert: %v\n%s", i, err, m.Value)
				}
				if len(evs) != tc.perMessage {
					t.Fatalf("message %d: %d events, want %d", i, len(evs), tc.perMessage)
				}
				for j := range evs {
					if err := evs[j].Normalize(testBase); err != nil {
						t.Fatalf("message %d, event %d: %v", i, j, err)
					}
					if evs[j].Status != triage.AlertFiring || len(evs[j].Labels) != numLabels {
						t.Errorf("message %d, event %d: status %q, labels %v", i, j, evs[j].Status, evs[j].Labels)
					}
					seen[evs[j].Fingerprint]++
					events++
				}
				if string(m.Key) != evs[0].Fingerprint {
					t.Errorf("message %d: key %q, want the first alert's fingerprint %s", i, m.Key, evs[0].Fingerprint)
				}
			}
			if events != messages*tc.perMessage {
				t.Errorf("%d events, want %d", events, messages*tc.perMessage)
			}
			if want := min(events, unique); len(seen) != want {
				t.Errorf("%d distinct alerts, want %d", len(seen), want)
			}
			// The population cycles: message k and k+groups are the same.
			groups := int64(k.r.pop.groups)
			again := k.messages(groups, make([]time.Time, 1))
			if string(again[0].Value) != string(msgs[0].Value) || string(again[0].Key) != string(msgs[0].Key) {
				t.Errorf("message %d differs from message 0", groups)
			}
		})
	}
}

func TestKafkaTooLargeMessage(t *testing.T) {
	code, _, errOut := runLoadgen(t, nil, "--kafka-brokers", "127.0.0.1:1", "--alerts-per-request", "2000",
		"--unique", "2000", "--requests", "1")
	if code != 2 || !strings.Contains(errOut, "more than a produce request may carry") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestKafkaBrokerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	code, out, errOut := runLoadgen(t, nil, "--kafka-brokers", addr, "--requests", "10")
	if code != 1 || out != "" || !strings.Contains(errOut, "reading the metadata of topic triage.alerts from "+addr) {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestParseMetricsSelectsALabel(t *testing.T) {
	text := `triage_kafka_messages_consumed_total{topic="alerts"} 10
triage_kafka_messages_consumed_total{topic="logs"} 1000
triage_kafka_messages_consumed_total{topic="alerts-2"} 7
triage_kafka_decode_errors_total{reason="syntax",topic="alerts"} 2
triage_kafka_decode_errors_total{reason="type",topic="alerts",} 3
triage_kafka_decode_errors_total{reason="type",topic="xalerts"} 50
`
	m, err := parseMetrics(strings.NewReader(text), []string{
		`triage_kafka_messages_consumed_total{topic="alerts"}`, "triage_kafka_messages_consumed_total",
		`triage_kafka_decode_errors_total{topic="alerts"}`, `triage_kafka_decode_errors_total{topic="none"}`})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{`triage_kafka_messages_consumed_total{topic="alerts"}`: 10,
		"triage_kafka_messages_consumed_total": 1017, `triage_kafka_decode_errors_total{topic="alerts"}`: 5}
	if len(m) != len(want) {
		t.Errorf("got %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

// fakeConsumer serves /metrics of a daemon that has applied applied()
// messages of topic "alerts".
func fakeConsumer(t *testing.T, applied func() int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "triage_kafka_messages_consumed_total{topic=\"alerts\"} %d\n", applied())
		fmt.Fprintf(w, "triage_kafka_messages_consumed_total{topic=\"logs\"} 99999\nprocess_resident_memory_bytes 1.2e+08\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func testWatch(url string) *daemonWatch {
	o := options{baseURL: url, token: "tok", timeout: 5 * time.Second, kafka: kafkaOptions{topic: "alerts"}}
	return newDaemonWatch(o)
}

func TestFollowUntilEveryMessageIsApplied(t *testing.T) {
	var polls atomic.Int64
	// 100 messages applied before; then 50 more per poll.
	srv := fakeConsumer(t, func() int64 { return 100 + 50*max(polls.Add(1)-2, 0) })
	d := testWatch(srv.URL)
	target := make(chan int64, 1)
	done := make(chan applyResult, 1)
	start := time.Now()
	go func() { done <- d.followUntil(context.Background(), 100, target, 10*time.Second) }()
	time.Sleep(3 * pollFirst)
	target <- 400
	res := <-done
	if !res.complete || res.last < 500 || res.err != nil {
		t.Fatalf("result %+v: want complete at 500 or more", res)
	}
	if res.firstAt.IsZero() || res.firstAt.Before(start) || res.at.Before(res.firstAt) {
		t.Errorf("first applied %v, all applied %v", res.firstAt, res.at)
	}
	// The logs topic's series is not counted.
	if res.last > 10000 {
		t.Errorf("counter %v includes another topic", res.last)
	}
}

func TestFollowUntilTimesOut(t *testing.T) {
	srv := fakeConsumer(t, func() int64 { return 7 })
	d := testWatch(srv.URL)
	start := time.Now()
	res := d.follow(context.Background(), 5, 10, 100*time.Millisecond)
	if res.complete || res.last != 7 || res.firstAt.IsZero() {
		t.Errorf("result %+v: want 2 of 10 applied, incomplete", res)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > 5*time.Second {
		t.Errorf("took %v, want about the 100ms timeout", took)
	}

	// A daemon that does not answer: the error is kept for the message.
	d = testWatch("http://" + closedAddr(t))
	res = d.follow(context.Background(), 0, 1, 50*time.Millisecond)
	if res.complete || res.err == nil || !strings.Contains(errSuffix(res.err), "connection refused") {
		t.Errorf("result %+v: want incomplete with the connection error", res)
	}
}

func TestPollAfter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name       string
		res        applyResult
		firstValue float64
		want       int64
		now        time.Time
		wait       time.Duration
	}{
		{"nothing applied yet", applyResult{base: 10, last: 10}, 0, -1, t0, pollFirst},
		{"still producing", applyResult{base: 10, last: 50, firstAt: t0}, 50, -1, t0.Add(time.Second), pollSlow},
		{"no progress since the first", applyResult{base: 10, last: 50, firstAt: t0}, 50, 1000, t0.Add(time.Second), pollSlow},
		// 1000 messages/s, 100 to go: 70 ms.
		{"close", applyResult{base: 0, last: 900, firstAt: t0}, 100, 1000, t0.Add(800 * time.Millisecond), 70 * time.Millisecond},
		{"far", applyResult{base: 0, last: 200, firstAt: t0}, 100, 100000, t0.Add(100 * time.Millisecond), pollSlow},
		{"due", applyResult{base: 0, last: 999, firstAt: t0}, 0, 1000, t0.Add(time.Second), pollFine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pollAfter(tc.res, tc.firstValue, tc.want, tc.now); got != tc.wait {
				t.Errorf("pollAfter = %v, want %v", got, tc.wait)
			}
		})
	}
}

func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestWindow(t *testing.T) {
	w := newWindow(10)
	ctx := context.Background()
	if err := w.acquire(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if err := w.acquire(ctx, 4); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- w.acquire(ctx, 3) }()
	select {
	case err := <-got:
		t.Fatalf("acquired past the limit (%v)", err)
	case <-time.After(20 * time.Millisecond):
	}
	w.release(3)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := w.acquire(cctx, 5); err == nil {
		t.Fatal("acquired past the limit")
	}
	if err := w.drain(cctx); err == nil {
		t.Fatal("drained a window in use")
	}
	w.release(10)
	if err := w.drain(ctx); err != nil {
		t.Fatal(err)
	}
	// An empty window takes more than its size at once.
	if err := w.acquire(ctx, 25); err != nil {
		t.Fatal(err)
	}
}
