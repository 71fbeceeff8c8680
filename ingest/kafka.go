package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
)

// SourceKafka is the source recorded on events from Kafka messages that do
// not name one.
const SourceKafka = "kafka"

// MessageSink takes the events of partitioned messages and returns once
// they and the offsets are durable, applying each message at most once.
type MessageSink interface {
	SubmitMessages(ctx context.Context, msgs []correlate.Message) (int, error)
}

// KafkaOptions configure a KafkaConsumer.
type KafkaOptions struct {
	Brokers []string
	Group   string
	// Topic holds alerts: each message one Alertmanager webhook payload or
	// one generic event.
	Topic string
	// DeadLetterTopic receives undecodable messages unchanged, with headers
	// giving the reason and where they came from.
	DeadLetterTopic string
	// MaxBatch caps the messages applied and committed together; it also
	// bounds the messages in flight.
	MaxBatch int
	// BatchWait is how long a batch waits for more messages.
	BatchWait time.Duration
	Sink      MessageSink
	Now       func() time.Time
	Logger    *slog.Logger
	Registry  prometheus.Registerer
	// Dialer, when set, is used for TLS and SASL.
	Dialer *kafka.Dialer
	// CommitInterval is how often offsets are committed to Kafka; 0 after
	// every batch. Events are durable, with their offsets, before that:
	// after a crash, what was not committed comes again and is skipped, so
	// this only trades commit round trips against redelivered messages.
	CommitInterval time.Duration
}

// KafkaConsumer consumes the alerts topic as a member of a consumer group.
// A message's offset is committed only after its events are durable and
// undecodable messages are in the dead-letter topic; redelivered messages
// are skipped by offset in the sink, so a crash or a rebalance never
// counts an event twice.
type KafkaConsumer struct {
	opts KafkaOptions
	m    *kafkaMetrics
	dec  *Decoder // shares label strings across messages
	// uncommitted holds, by partition, the last message made durable but not
	// yet committed to Kafka; commits go out once per CommitInterval.
	uncommitted map[int]kafka.Message
	pending     int // messages in uncommitted batches
	lastCommit  time.Time
}

type kafkaMetrics struct {
	consumed, decodeErrors, deadLettered, commitErrors *prometheus.CounterVec
	lag                                                *prometheus.GaugeVec
	batch                                              prometheus.Histogram
	commitLag                                          prometheus.Gauge
}

// NewKafkaConsumer registers the consumer's metrics.
func NewKafkaConsumer(opts KafkaOptions) *KafkaConsumer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 5000
	}
	if opts.BatchWait <= 0 {
		opts.BatchWait = 50 * time.Millisecond
	}

	f := promauto.With(opts.Registry)
	dec := NewDecoder(NewInterner(DefaultInternerCapacity))
	return &KafkaConsumer{opts: opts, uncommitted: map[int]kafka.Message{}, dec: dec, m: &kafkaMetrics{
		consumed: f.NewCounterVec(prometheus.CounterOpts{Name: "triage_kafka_messages_consumed_total",
			Help: "Kafka messages consumed and committed, by topic."}, []string{"topic"}),
		decodeErrors: f.NewCounterVec(prometheus.CounterOpts{Name: "triage_kafka_decode_errors_total",
			Help: "Kafka messages that could not be decoded, by topic and reason."}, []string{"topic", "reason"}),
		deadLettered: f.NewCounterVec(prometheus.CounterOpts{Name: "triage_kafka_dead_lettered_total",
			Help: "Kafka messages written to the dead-letter topic, by source topic."}, []string{"topic"}),
		commitErrors: f.NewCounterVec(prometheus.CounterOpts{Name: "triage_kafka_commit_errors_total",
			Help: "Failed offset commits (the messages come again and are skipped by offset)."}, []string{"topic"}),
		lag: f.NewGaugeVec(prometheus.GaugeOpts{Name: "triage_kafka_consumer_lag",
			Help: "Messages behind the partition's high-water mark at the last batch."}, []string{"topic", "partition"}),
		commitLag: f.NewGauge(prometheus.GaugeOpts{Name: "triage_kafka_commit_lag_messages",
			Help: "Messages made durable but whose offsets are not yet committed to Kafka (replayed, and skipped, after a crash)."}),
		batch: f.NewHistogram(prometheus.HistogramOpts{Name: "triage_kafka_batch_messages",
			Help: "Messages per applied and committed batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
	}}
}

// Run consumes until ctx is cancelled. When the brokers go away it keeps
// trying, with backoff, and resumes from the committed offsets; it returns
// only when ctx ends or the sink stops.
func (c *KafkaConsumer) Run(ctx context.Context) error {
	o := c.opts
	dlq := &kafka.Writer{
		Addr:                   kafka.TCP(o.Brokers...),
		Topic:                  o.DeadLetterTopic,
		RequiredAcks:           kafka.RequireAll,
		AllowAutoTopicCreation: true,
		BatchTimeout:           5 * time.Millisecond,
		Transport:              transport(o.Dialer),
	}
	defer dlq.Close()
	return c.keepRunning(ctx, o.Topic, func(ctx context.Context) error { return c.consume(ctx, dlq) })
}

// keepRunning runs f again, with backoff, each time it fails, until ctx
// ends or the sink stops: a broker outage never stops the daemon.
func (c *KafkaConsumer) keepRunning(ctx context.Context, topic string, f func(context.Context) error) error {
	backoff := time.Second
	for {
		start := time.Now()
		err := f(ctx)
		if ctx.Err() != nil || errors.Is(err, correlate.ErrStopped) {
			return nil
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second // it ran fine for a while
		}
		c.opts.Logger.Warn("kafka: consumer stopped; starting again", "topic", topic, "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// consume runs one reader until it fails or ctx ends.
func (c *KafkaConsumer) consume(ctx context.Context, dlq *kafka.Writer) error {
	o := c.opts
	if err := c.waitTopic(ctx, o.Topic); err != nil {
		return err
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        o.Brokers,
		GroupID:        o.Group,
		GroupTopics:    []string{o.Topic},
		Dialer:         o.Dialer,
		MinBytes:       1,
		MaxBytes:       16 << 20,
		MaxWait:        250 * time.Millisecond,
		QueueCapacity:  o.MaxBatch,
		CommitInterval: 0, // commits are made by this consumer, after the events are durable
		StartOffset:    kafka.FirstOffset,
		// Notice topics created, and partitions added, after the start.
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 2 * time.Second,
		ErrorLogger:            kafka.LoggerFunc(func(f string, a ...any) { o.Logger.Warn("kafka reader: " + fmt.Sprintf(f, a...)) }),
	})
	defer r.Close()
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.commit(cctx, r)
	}()
	for {
		batch, err := c.fetch(ctx, r)
		if err != nil {
			return fmt.Errorf("reading %s: %w", o.Topic, err)
		}
		if err := c.handle(ctx, r, dlq, batch); err != nil {
			return err
		}
	}
}

// waitTopic returns once topic exists (a group reader that starts before
// its topic does may never pick it up), or with ctx's error.
func (c *KafkaConsumer) waitTopic(ctx context.Context, topic string) error {
	d := c.opts.Dialer
	if d == nil {
		d = &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true}
	}
	logged := false
	for {
		for _, b := range c.opts.Brokers {
			conn, err := d.DialContext(ctx, "tcp", b)
			if err != nil {
				continue
			}
			parts, err := conn.ReadPartitions(topic)
			conn.Close()
			if err == nil && len(parts) > 0 {
				if logged {
					c.opts.Logger.Info("kafka: topic is there now", "topic", topic)
				}
				return nil
			}
			break
		}
		if !logged {
			c.opts.Logger.Warn("kafka: waiting for the topic to exist (or the brokers to answer)", "topic", topic)
			logged = true
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func transport(d *kafka.Dialer) kafka.RoundTripper {
	if d == nil {
		return nil
	}
	return &kafka.Transport{TLS: d.TLS, SASL: d.SASLMechanism}
}

// fetch waits for one message, then gathers more for up to BatchWait.
func (c *KafkaConsumer) fetch(ctx context.Context, r *kafka.Reader) ([]kafka.Message, error) {
	first, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	batch := []kafka.Message{first}
	wctx, cancel := context.WithTimeout(ctx, c.opts.BatchWait)
	defer cancel()
	for len(batch) < c.opts.MaxBatch {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			break // the wait is over; what was fetched stays queued in the reader
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// handle makes a batch durable, dead-letters what cannot be decoded, and
// only then commits the offsets.
func (c *KafkaConsumer) handle(ctx context.Context, r *kafka.Reader, dlq *kafka.Writer, batch []kafka.Message) error {
	now := c.opts.Now()
	msgs := make([]correlate.Message, 0, len(batch))
	var dead []kafka.Message
	lag := map[int]int64{}
	for _, km := range batch {
		events, err := c.dec.KafkaAlert(km.Value)
		if err == nil {
			err = normalize(events, SourceKafka, now)
		}
		if err != nil {
			reason := "invalid"
			var de *DecodeError
			if errors.As(err, &de) {
				reason = de.Reason
			}
			c.m.decodeErrors.WithLabelValues(km.Topic, reason).Inc()
			dead = append(dead, deadLetter(km, err))
			// The message still advances its partition's offset.
			events = nil
		}
		msgs = append(msgs, correlate.Message{
			Partition: km.Topic + "/" + strconv.Itoa(km.Partition),
			Offset:    km.Offset,
			Events:    events,
		})
		lag[km.Partition] = km.HighWaterMark - km.Offset - 1
	}
	if len(dead) > 0 {
		if err := c.retry(ctx, "writing to the dead-letter topic", func() error { return dlq.WriteMessages(ctx, dead...) }); err != nil {
			return err
		}
		c.m.deadLettered.WithLabelValues(c.opts.Topic).Add(float64(len(dead)))
	}
	if err := c.retry(ctx, "storing events", func() error {
		_, err := c.opts.Sink.SubmitMessages(ctx, msgs)
		return err
	}); err != nil {
		return err
	}
	for _, km := range batch {
		if last, ok := c.uncommitted[km.Partition]; !ok || km.Offset > last.Offset {
			c.uncommitted[km.Partition] = km
		}
	}
	c.pending += len(batch)
	c.m.commitLag.Set(float64(c.pending))
	if time.Since(c.lastCommit) >= c.opts.CommitInterval {
		c.commit(ctx, r)
	}
	c.m.consumed.WithLabelValues(c.opts.Topic).Add(float64(len(batch)))
	c.m.batch.Observe(float64(len(batch)))
	for p, l := range lag {
		c.m.lag.WithLabelValues(c.opts.Topic, strconv.Itoa(p)).Set(float64(max(l, 0)))
	}
	return nil
}

// commit commits the durable offsets. A failure is not fatal: uncommitted
// messages come again and are skipped by offset.
func (c *KafkaConsumer) commit(ctx context.Context, r *kafka.Reader) {
	if len(c.uncommitted) == 0 {
		return
	}
	msgs := make([]kafka.Message, 0, len(c.uncommitted))
	for _, m := range c.uncommitted {
		msgs = append(msgs, m)
	}
	c.lastCommit = time.Now()
	if err := r.CommitMessages(ctx, msgs...); err != nil {
		c.m.commitErrors.WithLabelValues(c.opts.Topic).Inc()
		c.opts.Logger.Warn("kafka: committing offsets", "topic", c.opts.Topic, "err", err)
		return
	}
	clear(c.uncommitted)
	c.pending = 0
	c.m.commitLag.Set(0)
}

// retry runs f until it succeeds, ctx ends or the sink has stopped, with
// capped exponential backoff.
func (c *KafkaConsumer) retry(ctx context.Context, what string, f func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := f()
		if err == nil || errors.Is(err, correlate.ErrStopped) || ctx.Err() != nil {
			return err
		}
		c.opts.Logger.Warn("kafka: "+what+" failed; retrying", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// Dead-letter headers.
const (
	HeaderError     = "triage-error"
	HeaderTopic     = "triage-source-topic"
	HeaderPartition = "triage-source-partition"
	HeaderOffset    = "triage-source-offset"
)

func deadLetter(km kafka.Message, err error) kafka.Message {
	headers := append([]kafka.Header{}, km.Headers...)
	headers = append(headers,
		kafka.Header{Key: HeaderError, Value: []byte(err.Error())},
		kafka.Header{Key: HeaderTopic, Value: []byte(km.Topic)},
		kafka.Header{Key: HeaderPartition, Value: []byte(strconv.Itoa(km.Partition))},
		kafka.Header{Key: HeaderOffset, Value: []byte(strconv.FormatInt(km.Offset, 10))},
	)
	return kafka.Message{Key: km.Key, Value: km.Value, Headers: headers}
}

// DecodeKafkaAlert decodes an alerts-topic message, as Decoder.KafkaAlert
// does, without sharing strings.
func DecodeKafkaAlert(value []byte) ([]triage.Event, error) { return (&Decoder{}).KafkaAlert(value) }

// KafkaAlert decodes an alerts-topic message: one Alertmanager webhook
// payload (an object with "alerts") or one generic event, told apart by
// shape. A generic event is parsed once; a webhook payload is recognised at
// its first key that events do not have. The events are not yet normalised.
func (d *Decoder) KafkaAlert(value []byte) ([]triage.Event, error) {
	if err := checkBody(value); err != nil {
		return nil, err
	}
	if err := kafkaShape(value); err != nil {
		return nil, err
	}
	// The fast path: an event stops at its first key that is not an
	// event's, which a webhook payload's "alerts" is not; a payload with
	// "alerts" is the webhook payload encoding/json's path would take.
	s := d.scanner(value)
	var ev triage.Event
	if s.event(&ev) && s.end() {
		if ev.Source == "" {
			ev.Source = SourceKafka
		}
		return []triage.Event{ev}, nil
	}
	s = d.scanner(value)
	if events, ok := s.webhook(); ok {
		return events, nil
	}
	return strictKafkaAlert(value)
}

// kafkaShape checks that a message is a JSON object, as both of its
// formats are.
func kafkaShape(value []byte) error {
	if b := bytes.TrimLeft(value, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return decodeErr("type", "message: want a JSON object (a webhook payload or an event)")
	}
	return nil
}

// strictKafkaAlert decodes an alerts-topic message that passed checkBody
// and starts with '{' with encoding/json.
func strictKafkaAlert(value []byte) ([]triage.Event, error) {
	var ev triage.Event
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	err := dec.Decode(&ev)
	if err == nil && !dec.More() {
		if ev.Source == "" {
			ev.Source = SourceKafka
		}
		return []triage.Event{ev}, nil
	}
	if hasTopLevelKey(value, "alerts") {
		return strictWebhook(value)
	}
	// The slow path names the bad field.
	events, err := strictEvents(value)
	for i := range events {
		if events[i].Source == SourceAPI {
			events[i].Source = SourceKafka
		}
	}
	return events, err
}

// hasTopLevelKey reports whether a JSON object has key at its top level.
func hasTopLevelKey(b []byte, key string) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		if k, _ := t.(string); k == key {
			return true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}

// LogRecord is one message of the logs topic, raw: the log pipeline (the
// template miner) decodes it.
type LogRecord struct {
	Topic     string
	Partition int
	Offset    int64
	Time      time.Time
	Value     []byte
}

// LogSink takes log records (the log pipeline, ingest/logs). The consumer
// commits their offsets once Logs has returned nil.
type LogSink interface {
	Logs(ctx context.Context, records []LogRecord) error
}

// RunLogs consumes the logs topic, in the consumer group "<group>-logs",
// into sink until ctx ends, committing offsets once the sink has taken the
// records (at least once).
func (c *KafkaConsumer) RunLogs(ctx context.Context, topic string, sink LogSink) error {
	return c.keepRunning(ctx, topic, func(ctx context.Context) error { return c.consumeLogs(ctx, topic, sink) })
}

func (c *KafkaConsumer) consumeLogs(ctx context.Context, topic string, sink LogSink) error {
	o := c.opts
	if err := c.waitTopic(ctx, topic); err != nil {
		return err
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        o.Brokers,
		GroupID:        o.Group + "-logs", // its own group: no rebalance with the alerts consumer
		GroupTopics:    []string{topic},
		Dialer:         o.Dialer,
		MinBytes:       1,
		MaxBytes:       16 << 20,
		MaxWait:        250 * time.Millisecond,
		QueueCapacity:  o.MaxBatch,
		CommitInterval: o.CommitInterval, // records are not durable here: commits only pace redelivery
		StartOffset:    kafka.FirstOffset,
		// Notice topics created, and partitions added, after the start.
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 2 * time.Second,
		ErrorLogger:            kafka.LoggerFunc(func(f string, a ...any) { o.Logger.Warn("kafka logs reader: " + fmt.Sprintf(f, a...)) }),
	})
	defer r.Close()
	for {
		batch, err := c.fetch(ctx, r)
		if err != nil {
			return fmt.Errorf("reading %s: %w", topic, err)
		}
		recs := make([]LogRecord, len(batch))
		for i, m := range batch {
			recs[i] = LogRecord{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Time: m.Time, Value: m.Value}
		}
		if err := c.retry(ctx, "handing log records on", func() error { return sink.Logs(ctx, recs) }); err != nil {
			return err
		}
		if err := r.CommitMessages(ctx, batch...); err != nil && ctx.Err() == nil {
			c.m.commitErrors.WithLabelValues(topic).Inc()
		}
		c.m.consumed.WithLabelValues(topic).Add(float64(len(batch)))
	}
}

// KafkaPublisher is a Sink that writes events to the alerts topic instead
// of applying them, so that several Triage processes share one stream. It
// returns once the brokers acknowledged every event (all in-sync replicas).
// Events are keyed by fingerprint: one alert's notifications stay in order
// on one partition.
type KafkaPublisher struct {
	w         *kafka.Writer
	published prometheus.Counter
}

// NewKafkaPublisher writes to topic on brokers.
func NewKafkaPublisher(brokers []string, topic string, dialer *kafka.Dialer, reg prometheus.Registerer) *KafkaPublisher {
	return &KafkaPublisher{
		w: &kafka.Writer{
			Addr:                   kafka.TCP(brokers...),
			Topic:                  topic,
			RequiredAcks:           kafka.RequireAll,
			Balancer:               &kafka.Hash{},
			AllowAutoTopicCreation: true,
			BatchTimeout:           2 * time.Millisecond,
			Transport:              transport(dialer),
		},
		published: promauto.With(reg).NewCounter(prometheus.CounterOpts{Name: "triage_kafka_published_total",
			Help: "Events written to the alerts topic in publish mode."}),
	}
}

// Submit implements Sink.
func (p *KafkaPublisher) Submit(ctx context.Context, events []triage.Event) error {
	msgs := make([]kafka.Message, len(events))
	for i := range events {
		js, err := json.Marshal(&events[i])
		if err != nil {
			return fmt.Errorf("encoding event: %w", err)
		}
		msgs[i] = kafka.Message{Key: []byte(events[i].Fingerprint), Value: js}
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publishing to %s: %w", p.w.Topic, err)
	}
	p.published.Add(float64(len(events)))
	return nil
}

// Close flushes and closes the writer.
func (p *KafkaPublisher) Close() error { return p.w.Close() }
