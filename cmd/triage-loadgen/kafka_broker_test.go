package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/triage-dev/triage/ingest"
	"github.com/triage-dev/triage/internal/app"
	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/testenv"
)

// These tests need a real broker:
//
//	deploy/dev/kafka.sh start && eval "$(deploy/dev/kafka.sh env)"
//	go test -run Broker ./cmd/triage-loadgen/
func requireBrokers(t *testing.T) string {
	t.Helper()
	return testenv.RequireService(t, "KAFKA_BROKERS",
		`a Kafka broker: run deploy/dev/kafka.sh start, then eval "$(deploy/dev/kafka.sh env)"`)
}

func freshTopic(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

// decodeKafkaReport decodes a --output json line strictly.
func decodeKafkaReport(t *testing.T, out string) kafkaReport {
	t.Helper()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want one line of JSON, got %q", out)
	}
	var rep kafkaReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	return rep
}

// readTopic returns every message on topic, partition by partition.
func readTopic(t *testing.T, brokers, topic string) map[int][]kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(strings.Split(brokers, ",")...)}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, md)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	offs, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	all := map[int][]kafka.Message{}
	for _, po := range offs.Topics[topic] {
		all[po.Partition] = nil
		if po.LastOffset == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: strings.Split(brokers, ","), Topic: topic, Partition: po.Partition,
			MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 100 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("reading %s/%d: %v", topic, po.Partition, err)
			}
			all[po.Partition] = append(all[po.Partition], m)
			if m.Offset >= po.LastOffset-1 {
				break
			}
		}
		r.Close()
	}
	return all
}

func TestBrokerGetsDecodableMessages(t *testing.T) {
	brokers := requireBrokers(t)
	for _, tc := range []struct {
		name       string
		format     string
		perMessage int
		partitions int
		messages   int
		ratio      float64
		extra      []string
	}{
		{"webhook payloads of 3 alerts, one partition", formatWebhook, 3, 1, 400, 0.5, nil},
		{"generic events over 3 partitions, paced", formatEvents, 1, 3, 600, 0.8, []string{"--rate", "3000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := freshTopic("loadgen-test-" + tc.format)
			args := append([]string{"--kafka-brokers", brokers, "--kafka-topic", topic, "--format", tc.format,
				"--alerts-per-request", fmt.Sprint(tc.perMessage), "--kafka-partitions", fmt.Sprint(tc.partitions),
				"--requests", fmt.Sprint(tc.messages), "--duplicate-ratio", fmt.Sprint(tc.ratio),
				"--kafka-batch-size", "100", "--output", "json"}, tc.extra...)
			code, out, errOut := runLoadgen(t, nil, args...)
			if code != 0 {
				t.Fatalf("exit %d; stdout %s; stderr %s", code, out, errOut)
			}
			rep := decodeKafkaReport(t, out)
			events := tc.messages * tc.perMessage
			if rep.Messages != int64(tc.messages) || rep.Events != int64(events) || rep.Errors != 0 ||
				rep.Partitions != tc.partitions || !rep.TopicCreated || rep.ExistingMessages != 0 ||
				rep.DuplicateRatio != tc.ratio || rep.MessagesPerS <= 0 || rep.P50Ms <= 0 || rep.E2E != nil {
				t.Errorf("report %s", out)
			}

			all := readTopic(t, brokers, topic)
			if len(all) != tc.partitions {
				t.Fatalf("%d partitions, want %d", len(all), tc.partitions)
			}
			seen := map[string]int{}
			keyPartition := map[string]int{}
			n, decoded := 0, 0
			for p, msgs := range all {
				if len(msgs) == 0 {
					t.Errorf("partition %d got no message", p)
				}
				for _, m := range msgs {
					n++
					evs, err := ingest.DecodeKafkaAlert(m.Value)
					if err != nil {
						t.Fatalf("%s/%d@%d: ingest.DecodeKafkaAlert: %v", topic, p, m.Offset, err)
					}
					if len(evs) != tc.perMessage {
						t.Fatalf("%s/%d@%d: %d events, want %d", topic, p, m.Offset, len(evs), tc.perMessage)
					}
					for i := range evs {
						if err := evs[i].Normalize(time.Now()); err != nil {
							t.Fatalf("%s/%d@%d: %v", topic, p, m.Offset, err)
						}
						seen[evs[i].Fingerprint]++
						decoded++
					}
					if !bytes.Equal(m.Key, []byte(evs[0].Fingerprint)) {
						t.Errorf("%s/%d@%d: key %q, want %s", topic, p, m.Offset, m.Key, evs[0].Fingerprint)
					}
					if q, ok := keyPartition[string(m.Key)]; ok && q != p {
						t.Errorf("key %s on partitions %d and %d", m.Key, q, p)
					}
					keyPartition[string(m.Key)] = p
				}
			}
			unique := int(math.Round(float64(events) * (1 - tc.ratio)))
			if n != tc.messages || decoded != events || len(seen) != unique {
				t.Errorf("topic holds %d messages, %d alerts of which %d distinct: want %d, %d and %d",
					n, decoded, len(seen), tc.messages, events, unique)
			}
			for fp, c := range seen {
				if want := events / unique; c != want {
					t.Errorf("alert %s sent %d times, want %d", fp, c, want)
					break
				}
			}

			// A second run uses the topic as it is.
			code, out, errOut = runLoadgen(t, nil, append(args, "--kafka-partitions", "7")...)
			if rep := decodeKafkaReport(t, out); code != 0 || rep.TopicCreated || rep.Partitions != tc.partitions ||
				rep.ExistingMessages != int64(tc.messages) {
				t.Errorf("second run: exit %d, report %s, stderr %s", code, out, errOut)
			}
		})
	}
}

// TestBrokerToDaemon produces to a topic a real daemon (in process)
// consumes, and waits for it to apply the messages.
func TestBrokerToDaemon(t *testing.T) {
	brokers := requireBrokers(t)
	topic := freshTopic("loadgen-test-e2e")
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Kafka.Brokers = strings.Split(brokers, ",")
	cfg.Kafka.Group = topic
	cfg.Kafka.Topics = config.KafkaTopics{Alerts: topic, DeadLetter: topic + "-dlq"}
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Config: cfg, Listening: func(a net.Addr) { listening <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon stopped with %v", err)
		}
	})
	var url string
	select {
	case a := <-listening:
		url = "http://" + a.String()
	case err := <-done:
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not start in 30s")
	}

	// The warmup lets the daemon find the topic and join its group first.
	code, out, errOut := runLoadgen(t, nil, "--kafka-brokers", brokers, "--kafka-topic", topic, "--format", "webhook",
		"--alerts-per-request", "2", "--requests", "500", "--duplicate-ratio", "0.5", "--rate", "2000",
		"--warmup-messages", "50", "--url", url, "--apply-timeout", "60s", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d; stdout %s; stderr %s", code, out, errOut)
	}
	rep := decodeKafkaReport(t, out)
	e := rep.E2E
	if e == nil || !e.Complete || e.Messages != 500 || e.Events != 1000 || e.EventsPerS <= 0 ||
		e.DurationS < rep.DurationS || e.FirstAppliedS > e.DurationS {
		t.Fatalf("report %s", out)
	}
	m := e.Metrics
	if m["triage_kafka_messages_consumed_total"] != 500 || m["triage_correlate_events_total"] != 1000 ||
		m["triage_kafka_decode_errors_total"] != 0 || m["process_resident_memory_bytes"] <= 0 ||
		m["triage_correlate_alerts_live"] <= 0 {
		t.Errorf("daemon metrics %v", m)
	}

	// Text output says the same.
	code, out, errOut = runLoadgen(t, nil, "--kafka-brokers", brokers, "--kafka-topic", topic, "--format", "events",
		"--requests", "50", "--url", url)
	if code != 0 || !strings.Contains(out, "applied     50 messages (50 events) in") ||
		!strings.Contains(out, "Kafka → durable incident state") || !strings.Contains(out, "daemon      rss ") {
		t.Errorf("exit %d, stderr %s, report:\n%s", code, errOut, out)
	}
}

// TestBrokerDaemonNotConsuming: a daemon that never applies the messages
// (it consumes another topic) fails the run once --apply-timeout passes.
func TestBrokerDaemonNotConsuming(t *testing.T) {
	brokers := requireBrokers(t)
	srv := fakeConsumer(t, func() int64 { return 3 })
	code, out, errOut := runLoadgen(t, nil, "--kafka-brokers", brokers, "--kafka-topic", freshTopic("loadgen-test-idle"),
		"--requests", "20", "--url", srv.URL, "--token", "tok", "--apply-timeout", "200ms", "--output", "json")
	rep := decodeKafkaReport(t, out)
	if code != 1 || rep.Messages != 20 || rep.E2E == nil || rep.E2E.Complete || rep.E2E.Messages != 0 ||
		!strings.Contains(errOut, "the daemon applied 0 of 20 messages within 200ms") {
		t.Errorf("exit %d, report %s, stderr %s", code, out, errOut)
	}
}
