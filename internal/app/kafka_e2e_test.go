package app_test

// Kafka ingestion against a real Apache Kafka 4 broker (deploy/dev/kafka.sh):
// 100,000 mixed messages with 1% malformed are consumed by the daemon,
// which is killed with SIGKILL mid-stream and restarted. Every valid event
// must be counted exactly once (offsets are applied with the events, so
// redelivered messages are skipped), and every malformed message must be in
// the dead-letter topic, unchanged, with its reason and origin in headers.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/triage-dev/triage/ingest"
	"github.com/triage-dev/triage/internal/server"
	"github.com/triage-dev/triage/internal/testenv"
)

func TestKafkaExactlyOnceAcrossSIGKILL(t *testing.T) {
	brokers := strings.Split(testenv.RequireService(t, "KAFKA_BROKERS",
		"a Kafka broker: run deploy/dev/kafka.sh start and eval \"$(deploy/dev/kafka.sh env)\""), ",")
	const total, malformedEvery = 100000, 100
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, dlqTopic := "triage-test-alerts-"+suffix, "triage-test-dlq-"+suffix

	// Produce the stream: webhook payloads and generic events, 1% malformed.
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
		AllowAutoTopicCreation: true, BatchSize: 1000, BatchTimeout: 10 * time.Millisecond, Balancer: &kafka.Hash{}}
	defer w.Close()
	var msgs []kafka.Message
	valid, bad := 0, 0
	distinct := map[int]bool{}
	for i := 0; i < total; i++ {
		var v string
		n := i % 500 // 500 distinct alerts, each repeated
		switch {
		case i%malformedEvery == 7:
			v = []string{`{"labels": {"alertname": 5}}`, `not json`, `{"alerts": "x"}`, `[]`}[bad%4]
			bad++
		case i%2 == 0:
			distinct[n] = true
			v = fmt.Sprintf(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"K%d","service":"s%d","instance":"h%d"},"startsAt":"2026-11-24T10:00:00Z"}]}`, n%10, n%5, n)
			valid++
		default:
			distinct[n] = true
			v = fmt.Sprintf(`{"labels":{"alertname":"K%d","service":"s%d","instance":"h%d"},"starts_at":"2026-11-24T10:00:00Z"}`, n%10, n%5, n)
			valid++
		}
		msgs = append(msgs, kafka.Message{Key: []byte(strconv.Itoa(n)), Value: []byte(v)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for start := 0; start < len(msgs); start += 1000 {
		if err := writeRetry(ctx, w, msgs[start:start+1000]); err != nil {
			t.Fatalf("producing: %v", err)
		}
	}

	// And a logs topic, mined (its events are off here: this test counts alerts).
	logsTopic := "triage-test-logs-" + suffix
	lw := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: logsTopic, RequiredAcks: kafka.RequireAll, AllowAutoTopicCreation: true}
	defer lw.Close()
	var logs []kafka.Message
	for i := 0; i < 300; i++ {
		logs = append(logs, kafka.Message{Value: []byte(fmt.Sprintf(`{"message":"GET /orders 500 in %dms","level":"error"}`, i))})
	}
	if err := writeRetry(ctx, lw, logs); err != nil {
		t.Fatalf("producing logs: %v", err)
	}

	dir := t.TempDir()
	cfg := fmt.Sprintf("kafka:\n  brokers: [%s]\n  group: g-%s\n  max_batch: 500\n  topics:\n    alerts: %s\n    logs: %s\n    dead_letter: %s\ncorrelation:\n  window: 1h\n"+
		"logs:\n  new_error_templates: false\n  spike: {factor: 0}\n",
		strings.Join(brokers, ", "), suffix, topic, logsTopic, dlqTopic)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}

	// Kill the daemon once it has consumed part of the stream.
	d := startDaemon(t, dir)
	// Log records are consumed and mined.
	waitMetric(t, client, d, "triage_logs_records_total", func(v float64) bool { return v >= 300 })
	waitMetric(t, client, d, "triage_kafka_messages_consumed_total", func(v float64) bool { return v >= total/4 })
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Wait()

	// Restart: it resumes from the committed offsets and finishes.
	d2 := startDaemon(t, dir)
	deadline := time.Now().Add(90 * time.Second)
	var sum int64
	for {
		counts, _ := readAll(t, client, d2.url)
		sum = 0
		for _, c := range counts {
			sum += c
		}
		if sum >= int64(valid) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // let anything extra arrive before judging
	counts, incidents := readAll(t, client, d2.url)
	sum = 0
	for _, c := range counts {
		sum += c
	}
	if sum != int64(valid) {
		t.Fatalf("alert counts sum to %d, want exactly the %d valid events (logs: %s)", sum, valid, d2.logs)
	}
	if len(counts) != len(distinct) {
		t.Errorf("%d distinct alerts, want %d", len(counts), len(distinct))
	}
	checkOneIncidentPerGroup(t, incidents)

	// Every malformed message is in the dead-letter topic with its reason.
	// (After the kill some may be there twice: at-least-once there.)
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: "dlq-check-" + suffix, GroupTopics: []string{dlqTopic},
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	seen := map[string]bool{}
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	for len(seen) < bad {
		m, err := r.ReadMessage(rctx)
		if err != nil {
			t.Fatalf("dead-letter topic: %d of %d malformed messages found: %v", len(seen), bad, err)
		}
		h := map[string]string{}
		for _, hd := range m.Headers {
			h[hd.Key] = string(hd.Value)
		}
		if h[ingest.HeaderError] == "" || h[ingest.HeaderTopic] != topic || h[ingest.HeaderOffset] == "" || h[ingest.HeaderPartition] == "" {
			t.Fatalf("dead letter without its reason and origin: headers %v", h)
		}
		seen[h[ingest.HeaderPartition]+"/"+h[ingest.HeaderOffset]] = true
	}
}

func writeRetry(ctx context.Context, w *kafka.Writer, msgs []kafka.Message) error {
	for {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond) // the topic is being created
	}
}

func waitMetric(t *testing.T, client *http.Client, d *daemon, name string, ok func(float64) bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if v, found := scrape(client, d.url, name); found && ok(v) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never reached the expected value; daemon log:\n%s", name, d.logs)
}

// scrape sums a metric's series from /metrics.
func scrape(client *http.Client, url, name string) (float64, bool) {
	resp, err := client.Get(url + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	all, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false
	}
	var sum float64
	found := false
	for _, line := range strings.Split(string(all), "\n") {
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			f := strings.Fields(line)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				sum += v
				found = true
			}
		}
	}
	return sum, found
}

// TestKafkaPublishMode: with kafka.publish, events posted over HTTP go to the
// alerts topic (acknowledged by the brokers before the 2xx) and become
// incidents through the consumer, as they would in every process sharing
// the stream.
func TestKafkaPublishMode(t *testing.T) {
	brokers := strings.Split(testenv.RequireService(t, "KAFKA_BROKERS",
		"a Kafka broker: run deploy/dev/kafka.sh start and eval \"$(deploy/dev/kafka.sh env)\""), ",")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "triage-test-publish-" + suffix
	dir := t.TempDir()
	cfg := fmt.Sprintf("kafka:\n  brokers: [%s]\n  group: p-%s\n  publish: true\n  topics:\n    alerts: %s\n    dead_letter: %s-dlq\n",
		strings.Join(brokers, ", "), suffix, topic, topic)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir)
	client := &http.Client{Timeout: 30 * time.Second}
	body := `{"version":"4","status":"firing","alerts":[` +
		`{"status":"firing","labels":{"alertname":"Published","service":"orders","instance":"a"}},` +
		`{"status":"firing","labels":{"alertname":"Published","service":"orders","instance":"b"}}]}`
	var resp *http.Response
	var err error
	for i := 0; i < 50; i++ { // the topic is created on the first write
		resp, err = client.Post(d.url+"/api/v1/alerts", "application/json", strings.NewReader(body))
		if err == nil && resp.StatusCode == http.StatusOK {
			break
		}
		if resp != nil {
			resp.Body.Close()
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("post in publish mode: %v %v; log: %s", err, resp, d.logs)
	}
	resp.Body.Close()
	if v, _ := scrape(client, d.url, "triage_kafka_published_total"); v != 2 {
		t.Fatalf("published %v events, want 2", v)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		counts, incs := readAll(t, client, d.url)
		if len(counts) == 2 && len(incs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the published alerts never became an incident: %d alerts; log: %s", len(counts), d.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if v, _ := scrape(client, d.url, "triage_kafka_messages_consumed_total"); v != 2 {
		t.Fatalf("consumed %v messages, want the 2 published", v)
	}
}

// TestKafkaBrokerRestart: the broker stops mid-stream and comes back; the
// daemon reconnects on its own and loses nothing. It runs a broker of its
// own (deploy/dev/kafka.sh on another port) so as not to disturb others.
func TestKafkaBrokerRestart(t *testing.T) {
	testenv.RequireService(t, "KAFKA_BROKERS", "a Kafka broker: run deploy/dev/kafka.sh start (this test starts its own on port 29092 with the same script)")
	script, err := filepath.Abs("../../deploy/dev/kafka.sh")
	if err != nil {
		t.Fatal(err)
	}
	broker := func(cmd string) {
		t.Helper()
		c := exec.Command("bash", script, cmd)
		c.Env = append(os.Environ(), "KAFKA_PORT=29092")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("kafka.sh %s: %v\n%s", cmd, err, out)
		}
	}
	broker("start")
	t.Cleanup(func() { broker("stop") })
	brokers := []string{"127.0.0.1:29092"}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "triage-test-restart-" + suffix
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
		AllowAutoTopicCreation: true, BatchTimeout: 5 * time.Millisecond, Balancer: &kafka.Hash{}}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	produce := func(from, n int) {
		var msgs []kafka.Message
		for i := from; i < from+n; i++ {
			msgs = append(msgs, kafka.Message{Key: []byte(strconv.Itoa(i % 50)), Value: []byte(fmt.Sprintf(
				`{"labels":{"alertname":"R","service":"s%d","instance":"h%d"}}`, i%5, i%50))})
		}
		if err := writeRetry(ctx, w, msgs); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 2000)

	dir := t.TempDir()
	cfg := fmt.Sprintf("kafka:\n  brokers: [%s]\n  group: r-%s\n  topics:\n    alerts: %s\n    dead_letter: %s-dlq\ncorrelation:\n  window: 1h\n",
		brokers[0], suffix, topic, topic)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	d := startDaemon(t, dir)
	waitMetric(t, client, d, "triage_kafka_messages_consumed_total", func(v float64) bool { return v >= 2000 })

	broker("stop")
	time.Sleep(3 * time.Second) // the daemon sees the broker gone
	broker("start")
	produce(2000, 3000)

	deadline := time.Now().Add(2 * time.Minute)
	for {
		counts, _ := readAll(t, client, d.url)
		var sum int64
		for _, c := range counts {
			sum += c
		}
		if sum == 5000 {
			break
		}
		if sum > 5000 || time.Now().After(deadline) {
			t.Fatalf("after the broker restart: counts sum to %d, want 5000; log:\n%s", sum, tail(d.logs.String(), 30))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestKafkaRebalanceLosesNothing: a second daemon joins the consumer group
// mid-stream, then leaves; every message is applied by one of them.
// Across processes a partition that moves is replayed from its last commit
// (commit_interval: 0 keeps that small), so the test requires no loss and
// reports duplicates rather than forbidding them.
func TestKafkaRebalanceLosesNothing(t *testing.T) {
	brokers := strings.Split(testenv.RequireService(t, "KAFKA_BROKERS",
		"a Kafka broker: run deploy/dev/kafka.sh start and eval \"$(deploy/dev/kafka.sh env)\""), ",")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "triage-test-rebalance-" + suffix
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
		AllowAutoTopicCreation: true, BatchSize: 1000, BatchTimeout: 5 * time.Millisecond, Balancer: &kafka.Hash{}}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	next := 0
	produce := func(n int) {
		var msgs []kafka.Message
		for i := next; i < next+n; i++ {
			msgs = append(msgs, kafka.Message{Key: []byte(strconv.Itoa(i % 400)), Value: []byte(fmt.Sprintf(
				`{"labels":{"alertname":"B%d","service":"s%d","instance":"h%d"}}`, i%4, i%5, i%400))})
		}
		next += n
		if err := writeRetry(ctx, w, msgs); err != nil {
			t.Fatal(err)
		}
	}
	config := func(dir string, kafkaOn bool) {
		cfg := "correlation:\n  window: 1h\n"
		if kafkaOn {
			cfg += fmt.Sprintf("kafka:\n  brokers: [%s]\n  group: rb-%s\n  commit_interval: 0s\n  topics:\n    alerts: %s\n    logs: \"\"\n    dead_letter: %s-dlq\n",
				strings.Join(brokers, ", "), suffix, topic, topic)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	consumed := func(d *daemon) float64 {
		v, _ := scrape(client, d.url, "triage_kafka_messages_consumed_total")
		return v
	}

	dirA, dirB := t.TempDir(), t.TempDir()
	config(dirA, true)
	config(dirB, true)
	produce(4000)
	a := startDaemon(t, dirA)
	waitMetric(t, client, a, "triage_kafka_messages_consumed_total", func(v float64) bool { return v >= 4000 })

	b := startDaemon(t, dirB) // joins: the partitions are shared out again
	deadline := time.Now().Add(90 * time.Second)
	for consumed(b) == 0 { // keep the stream going until B has partitions
		if time.Now().After(deadline) {
			t.Fatalf("the second daemon got no messages after joining; A consumed %v; B's log:\n%s", consumed(a), tail(b.logs.String(), 20))
		}
		produce(200)
		time.Sleep(100 * time.Millisecond)
	}
	produce(4000)
	for consumed(a)+consumed(b) < float64(next) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}

	// B leaves (SIGTERM: a graceful stop), A takes its partitions back.
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = b.cmd.Wait()
	// Read what B applied: start it again without Kafka.
	config(dirB, false)
	b2 := startDaemon(t, dirB)
	countsB, _ := readAll(t, client, b2.url)
	var sumB int64
	for _, c := range countsB {
		sumB += c
	}
	produce(4000)
	var countsA map[string]int64
	deadline = time.Now().Add(90 * time.Second)
	for {
		countsA, _ = readAll(t, client, a.url)
		var sumA int64
		for _, c := range countsA {
			sumA += c
		}
		if sumA+sumB >= int64(next) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var sum int64
	union := map[string]bool{}
	for fp, c := range countsA {
		sum += c
		union[fp] = true
	}
	for fp, c := range countsB {
		sum += c
		union[fp] = true
	}
	if sum < int64(next) || len(union) != 400 {
		t.Fatalf("lost messages: counts sum to %d of %d sent, %d of 400 alerts seen (A %d alerts, B %d)", sum, next, len(union), len(countsA), len(countsB))
	}
	t.Logf("%d messages; applied %d times across the two daemons (%d replayed after partitions moved)", next, sum, sum-int64(next))
}

// TestKafkaLogsCorrelateWithAlerts: error logs of a service on the logs
// topic raise a new-error-template event carrying the record's service
// label; it binds to the service's CI and joins the incident of the
// database the service depends on, which an alert on the alerts topic opened.
func TestKafkaLogsCorrelateWithAlerts(t *testing.T) {
	brokers := strings.Split(testenv.RequireService(t, "KAFKA_BROKERS",
		"a Kafka broker: run deploy/dev/kafka.sh start and eval \"$(deploy/dev/kafka.sh env)\""), ",")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	alerts, logsTopic := "triage-test-la-"+suffix, "triage-test-ll-"+suffix
	dir := t.TempDir()
	files := map[string]string{
		"cmdb.yaml": "cis:\n  - {id: db-orders, type: database, name: orders-db}\n  - {id: svc-orders, type: application, name: orders}\n" +
			"relations:\n  - {from: svc-orders, to: db-orders, type: depends_on}\n",
		"config.yaml": fmt.Sprintf("kafka:\n  brokers: [%s]\n  group: l-%s\n  topics:\n    alerts: %s\n    logs: %s\n    dead_letter: %s-dlq\n"+
			"cmdb: {file: cmdb.yaml}\n", strings.Join(brokers, ", "), suffix, alerts, logsTopic, alerts),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now().UTC()
	aw := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: alerts, RequiredAcks: kafka.RequireAll, AllowAutoTopicCreation: true}
	defer aw.Close()
	if err := writeRetry(ctx, aw, []kafka.Message{{Value: []byte(fmt.Sprintf(
		`{"labels":{"alertname":"PostgresDown","ci":"db-orders"},"severity":"critical","starts_at":%q}`, now.Format(time.RFC3339)))}}); err != nil {
		t.Fatalf("producing the alert: %v", err)
	}
	lw := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: logsTopic, RequiredAcks: kafka.RequireAll, AllowAutoTopicCreation: true}
	defer lw.Close()
	var recs []kafka.Message
	for i := 0; i < 20; i++ {
		recs = append(recs, kafka.Message{Value: []byte(fmt.Sprintf(
			`{"@timestamp":%q,"level":"ERROR","service":"orders","message":"order %d failed: connection to 10.0.3.7:5432 refused"}`,
			now.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), 1000+i))})
	}
	if err := writeRetry(ctx, lw, recs); err != nil {
		t.Fatalf("producing logs: %v", err)
	}
	d := startDaemon(t, dir)
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, incs := readAll(t, client, d.url)
		if len(incs) == 1 && len(incs[0].Alerts) == 2 {
			// The new error template, bound to svc-orders (no spike: a
			// template needs a learned baseline first).
			inc := incs[0]
			got := map[string]string{}
			for _, a := range inc.Alerts {
				if a.Source == "logs" {
					got[a.Labels["alertname"]] = a.CI
				}
			}
			if got["LogNewErrorTemplate"] != "svc-orders" || inc.RootCause.CI != "db-orders" {
				t.Fatalf("incident %+v: want the log event bound to svc-orders in the db-orders incident", inc)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no incident with the alert and the log event: %+v; log: %s", incs, d.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var tpls server.LogTemplateList
	fetchJSON(t, client, d.url+"/api/v1/log-templates?error=true", &tpls)
	if len(tpls.Templates) != 1 || tpls.Templates[0].Count != 20 || !tpls.Templates[0].Error {
		t.Fatalf("log templates %+v; want one error template seen 20 times", tpls.Templates)
	}
}
