package app_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/triage-dev/triage/internal/testenv"
)

// TestKafkaThroughput measures Kafka → durable incident state with the real
// broker: N messages are produced first, then the daemon (a real process)
// consumes them, and the time from its start until every message is
// committed to its state is reported. A measurement, not an assertion:
// it runs only with TRIAGE_KAFKA_BENCH=N (e.g. 200000).
//
//	TRIAGE_KAFKA_BENCH=200000 go test -run KafkaThroughput -v ./internal/app/
func TestKafkaThroughput(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TRIAGE_KAFKA_BENCH"))
	if n <= 0 {
		t.Skip("a measurement: set TRIAGE_KAFKA_BENCH=<messages> to run it")
	}
	brokers := strings.Split(testenv.RequireService(t, "KAFKA_BROKERS", "a Kafka broker: deploy/dev/kafka.sh start"), ",")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "triage-bench-" + suffix
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireOne,
		AllowAutoTopicCreation: true, BatchSize: 5000, BatchBytes: 8 << 20, BatchTimeout: 20 * time.Millisecond, Balancer: &kafka.Hash{}}
	defer w.Close()
	ctx := context.Background()
	const unique = 20000 // a storm: most messages repeat a known alert
	batch := make([]kafka.Message, 0, 5000)
	for i := 0; i < n; i++ {
		k := i % unique
		v := fmt.Sprintf(`{"labels":{"alertname":"Alert%d","service":"svc%d","instance":"10.0.%d.%d:9100","job":"node","severity":"warning"},"annotations":{"summary":"something is wrong"},"starts_at":"2026-11-24T10:00:00Z"}`,
			k%30, k%50, k/250, k%250)
		batch = append(batch, kafka.Message{Key: []byte(strconv.Itoa(k)), Value: []byte(v)})
		if len(batch) == cap(batch) || i == n-1 {
			if err := writeRetry(ctx, w, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("kafka:\n  brokers: [%s]\n  group: b-%s\n  topics:\n    alerts: %s\n    dead_letter: %s-dlq\ncorrelation:\n  window: 1h\n",
		strings.Join(brokers, ", "), suffix, topic, topic)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	start := time.Now()
	d := startDaemon(t, dir)
	ready := time.Since(start)
	// The steady rate: from the first committed batch (the group is joined)
	// to the last.
	var firstAt time.Time
	var firstN float64
	waitMetric(t, client, d, "triage_kafka_messages_consumed_total", func(v float64) bool {
		if firstAt.IsZero() && v > 0 {
			firstAt, firstN = time.Now(), v
		}
		return v >= float64(n)
	})
	took := time.Since(start)
	steady := (float64(n) - firstN) / time.Since(firstAt).Seconds()
	rss, _ := scrape(client, d.url, "process_resident_memory_bytes")
	heap, _ := scrape(client, d.url, "go_memstats_heap_inuse_bytes")
	t.Logf("%d messages consumed into durable state in %s (daemon start %s, group joined after %s): %.0f events/s overall, %.0f events/s steady; RSS %.0f MiB, heap in use %.0f MiB",
		n, took.Round(time.Millisecond), ready.Round(time.Millisecond), firstAt.Sub(start).Round(time.Millisecond),
		float64(n)/took.Seconds(), steady, rss/(1<<20), heap/(1<<20))
}
