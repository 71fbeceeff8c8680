package main

// Kafka mode (--kafka-brokers): the same alert population, produced to the
// alerts topic, one Alertmanager webhook payload (--format webhook) or one
// generic event (--format events) per message, as ingest.DecodeKafkaAlert
// reads them. One producer (a kafka-go Writer, asynchronous, batching per
// partition) is handed messages flat out, or at --rate messages/s on the
// same open-loop schedule as HTTP mode, with at most --kafka-max-inflight
// messages not yet acknowledged by the brokers. Warmup messages
// (--warmup-messages, --warmup) are part of the alert cycle, as in HTTP
// mode, and are not measured.
//
// With --url, the Triage daemon consuming the topic is watched too: its
// triage_kafka_messages_consumed_total{topic=...} counts the messages
// whose events and offsets it has made durable (written and fsynced to
// its write-ahead log; the offset commit to Kafka may follow up to
// kafka.commit_interval later). The generator polls that counter (see
// pollFirst) until it has grown by every acknowledged message, and reports
// Kafka → durable incident state: the measured
// messages' events divided by the time from the first message handed to
// the producer to the poll that saw the last one applied. The warmup is
// waited for in the same way before the measurement starts, so that the
// daemon has found the topic and joined its consumer group by then.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// kafkaOptions are the command line of Kafka mode.
type kafkaOptions struct {
	brokers      []string
	topic        string
	partitions   int
	acks         string
	batchSize    int
	linger       time.Duration
	maxInflight  int
	applyTimeout time.Duration
	warmup       int64 // messages
	// follow is set by --url: wait for the daemon to apply the messages.
	follow bool
}

func (k *kafkaOptions) enabled() bool { return len(k.brokers) > 0 }

// kafkaOnlyFlags mean nothing without --kafka-brokers.
var kafkaOnlyFlags = []string{"kafka-topic", "kafka-partitions", "kafka-acks", "kafka-batch-size", "kafka-linger",
	"kafka-max-inflight", "apply-timeout", "warmup-messages"}

// kafkaBatchBytes caps a produce request to one partition: the broker's
// default message.max.bytes.
const kafkaBatchBytes = 1 << 20

// kafkaChunk is the most messages handed to the writer in one call.
const kafkaChunk = 1000

// How often the daemon's /metrics is read while it applies the messages. A
// read costs the daemon a millisecond or two of CPU, so it is read often
// only where it matters: every pollFirst until the first message is
// applied, every pollSlow while messages are still produced, then (the
// number to wait for known) close to when its progress so far says it
// will be done, and every pollFine at the end, which is therefore known
// within pollFine.
const (
	pollFirst = 50 * time.Millisecond
	pollSlow  = 200 * time.Millisecond
	pollFine  = 10 * time.Millisecond
)

var kafkaAcks = map[string]kafka.RequiredAcks{"all": kafka.RequireAll, "one": kafka.RequireOne, "none": kafka.RequireNone}

// kafkaFlags defines Kafka mode's flags; it returns --kafka-brokers, which
// parse splits.
func kafkaFlags(fs *flag.FlagSet, k *kafkaOptions) *string {
	brokers := fs.String("kafka-brokers", "", "produce to Kafka instead of posting over HTTP: the brokers, host:port[,host:port...]")
	fs.StringVar(&k.topic, "kafka-topic", "triage.alerts", "Kafka: the alerts topic, created when missing")
	fs.IntVar(&k.partitions, "kafka-partitions", 1, "Kafka: partitions of the topic when it is created (0: the broker's num.partitions); an existing topic is used as it is")
	fs.StringVar(&k.acks, "kafka-acks", "all", "Kafka: acknowledgement each produce request waits for: all (in-sync replicas), one (the leader) or none")
	fs.IntVar(&k.batchSize, "kafka-batch-size", 1000, "Kafka: most messages in one produce request to a partition")
	fs.DurationVar(&k.linger, "kafka-linger", 5*time.Millisecond, "Kafka: how long a batch that is not full waits for more messages")
	fs.IntVar(&k.maxInflight, "kafka-max-inflight", 0, "Kafka: most messages handed to the producer and not yet acknowledged (0: 4 batches per partition)")
	fs.Int64Var(&k.warmup, "warmup-messages", 0, "Kafka: produce this many messages before measuring, not counted (with --warmup, whichever ends first); with --url, wait until the daemon applied them, so that its group join is not measured")
	fs.DurationVar(&k.applyTimeout, "apply-timeout", 2*time.Minute, "Kafka with --url: how long to wait, after the last acknowledgement, for the daemon to apply every message")
	return brokers
}

// parse takes --kafka-brokers and rejects flags that do not fit the mode.
func (k *kafkaOptions) parse(brokers string, set map[string]bool, o *options) error {
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			k.brokers = append(k.brokers, b)
		}
	}
	if !k.enabled() {
		if set["kafka-brokers"] {
			return errors.New("--kafka-brokers: empty; want host:port[,host:port...]")
		}
		for _, f := range kafkaOnlyFlags {
			if set[f] {
				return fmt.Errorf("--%s is for Kafka: give --kafka-brokers too", f)
			}
		}
		return nil
	}
	switch {
	case set["concurrency"]:
		return errors.New("--concurrency is for HTTP: with --kafka-brokers one producer batches (see --kafka-batch-size and --kafka-max-inflight)")
	case o.dryRun:
		return errors.New("--dry-run only builds bodies, it sends nothing: leave out --kafka-brokers")
	case o.metrics && !set["url"]:
		return errors.New("--metrics with --kafka-brokers reads the daemon that consumes the topic: give its --url")
	}
	k.follow = set["url"]
	return nil
}

// topicName is what Kafka accepts as a topic name.
var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func (k *kafkaOptions) validate(o *options) error {
	for _, b := range k.brokers {
		host, port, err := net.SplitHostPort(b)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			return fmt.Errorf("--kafka-brokers: %q is not host:port", b)
		}
	}
	if !topicName.MatchString(k.topic) || k.topic == "." || k.topic == ".." {
		return fmt.Errorf("--kafka-topic: %q is not a Kafka topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_', '-')", k.topic)
	}
	switch o.format {
	case formatV2:
		return errors.New("--format v2 is Alertmanager's HTTP API: a Kafka alerts message is one webhook payload or one generic event; use --format webhook or events")
	case formatEvents:
		if o.perRequest != 1 {
			return fmt.Errorf("--alerts-per-request %d with --format events: a Kafka alerts message holds one generic event; use --format webhook for several alerts per message", o.perRequest)
		}
	}
	if _, ok := kafkaAcks[k.acks]; !ok {
		return fmt.Errorf("--kafka-acks: %q is not all, one or none", k.acks)
	}
	switch {
	case k.partitions < 0:
		return fmt.Errorf("--kafka-partitions: %d, want 0 (the broker's default) or more", k.partitions)
	case k.batchSize < 1:
		return fmt.Errorf("--kafka-batch-size: %d, want at least 1", k.batchSize)
	case k.linger <= 0:
		return errors.New("--kafka-linger: want a positive duration")
	case k.maxInflight < 0:
		return fmt.Errorf("--kafka-max-inflight: %d, want 0 (4 batches per partition) or more", k.maxInflight)
	case k.applyTimeout <= 0:
		return errors.New("--apply-timeout: want a positive duration")
	case k.warmup < 0:
		return fmt.Errorf("--warmup-messages: %d, want 0 or more", k.warmup)
	}
	return nil
}

// kafkaRunner produces one run's messages.
type kafkaRunner struct {
	opts       options
	r          *runner  // the population and its prebuilt bodies; r.seq numbers messages
	keys       [][]byte // key of each group, when bodies are prebuilt
	client     *kafka.Client
	w          *kafka.Writer
	win        *window
	partitions int
	created    bool
	existing   int64 // messages on the topic before the run
	chunk      int

	mu  sync.Mutex
	cur *kafkaResult // the phase the writer's completions count into
}

// kafkaResult is one phase of producing. Completions write it under the
// runner's mu; the producing goroutine writes the rest.
type kafkaResult struct {
	lat       histogram // hand-off (or scheduled time, paced) to acknowledgement
	first     time.Time // first message handed to the writer
	lastDone  time.Time // last completion
	handed    int64
	acked     int64
	failed    int64
	bytesAck  int64
	late      int64
	maxLag    time.Duration
	samples   map[string]int64
	completed int64
}

func (res *kafkaResult) elapsed() time.Duration {
	if res.first.IsZero() || res.lastDone.Before(res.first) {
		return 0
	}
	return res.lastDone.Sub(res.first)
}

// runKafka is Kafka mode's run.
func runKafka(ctx context.Context, o options, stdout, stderr io.Writer) int {
	k := &kafkaRunner{opts: o, r: &runner{opts: o, pop: newPopulation(o.format, o.perRequest, o.unique, o.seed, time.Now())}}
	if first, _ := k.r.pop.appendBody(nil, 0); len(first) > kafkaBatchBytes-1024 {
		fmt.Fprintf(stderr, "triage-loadgen: a message of %d bytes is more than a produce request may carry (%d); lower --alerts-per-request\n",
			len(first), kafkaBatchBytes)
		return 2
	}
	if err := k.connect(ctx); err != nil {
		fmt.Fprintf(stderr, "triage-loadgen: %v\n", err)
		return 1
	}
	defer k.w.Close()
	k.prepare(stderr)

	var d *daemonWatch
	var before map[string]float64
	if o.kafka.follow {
		d = newDaemonWatch(o)
		var err error
		if before, err = d.scrape(ctx); err != nil {
			fmt.Fprintf(stderr, "triage-loadgen: reading the daemon's metrics (--url): %v\n", err)
			return 1
		}
		if k.existing > 0 {
			fmt.Fprintf(stderr, "triage-loadgen: topic %s already holds %d messages; if the daemon has not consumed them yet they count as applied: use a fresh topic for an exact figure\n",
				o.kafka.topic, k.existing)
		}
	}
	if o.warmup > 0 || o.kafka.warmup > 0 {
		ph := phase{limit: o.kafka.warmup}
		if o.warmup > 0 {
			ph.until = time.Now().Add(o.warmup)
		}
		res := k.runPhase(ctx, ph)
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "triage-loadgen: interrupted during the warmup")
			return 1
		}
		if d != nil {
			// The daemon joins its group and finds the topic before the measurement.
			ap := d.follow(ctx, before[d.consumed], res.acked, o.kafka.applyTimeout)
			if !ap.complete {
				fmt.Fprintf(stderr, "triage-loadgen: the daemon applied %.0f of the %d warmup messages in %s: is it consuming topic %s (kafka.topics.alerts)?%s\n",
					ap.last-before[d.consumed], res.acked, o.kafka.applyTimeout, o.kafka.topic, errSuffix(ap.err))
				return 1
			}
			var err error
			if before, err = d.scrape(ctx); err != nil {
				fmt.Fprintf(stderr, "triage-loadgen: reading the daemon's metrics (--url): %v\n", err)
				return 1
			}
		}
	}
	ph := phase{record: true}
	if o.requests > 0 {
		ph.limit = o.requests
	}
	if o.requests == 0 || o.durationSet {
		ph.until = time.Now().Add(o.duration)
	}

	var applied chan applyResult
	target := make(chan int64, 1)
	if d != nil {
		applied = make(chan applyResult, 1)
		go func() { applied <- d.followUntil(ctx, before[d.consumed], target, o.kafka.applyTimeout) }()
	}
	res := k.runPhase(ctx, ph)
	// When interrupted, completions may still come: they wait (the deferred
	// Close waits for them after this).
	k.mu.Lock()
	defer k.mu.Unlock()
	rep := k.report(res)
	if d != nil {
		target <- res.acked
		ap := <-applied
		rep.E2E = k.e2eReport(res, ap)
		if after, err := d.scrape(context.WithoutCancel(ctx)); err == nil {
			rep.E2E.Metrics = d.metricsReport(before, after)
		}
		if !ap.complete && ctx.Err() == nil {
			fmt.Fprintf(stderr, "triage-loadgen: the daemon applied %d of %d messages within %s of the last acknowledgement: is it consuming topic %s (kafka.topics.alerts)?%s\n",
				rep.E2E.Messages, res.acked, o.kafka.applyTimeout, o.kafka.topic, errSuffix(ap.err))
		}
	}
	if o.output == "json" {
		b, _ := json.Marshal(rep)
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		k.writeText(stdout, res, rep)
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "triage-loadgen: interrupted; the figures cover the messages produced until then")
	case rep.E2E != nil && !rep.E2E.Complete:
		return 1
	}
	if rep.Errors > 0 && !o.allowErrors {
		return 1
	}
	return 0
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (last error reading its metrics: " + err.Error() + ")"
}

// prepare prebuilds bodies and keys when they fit in --prebuild-mb.
func (k *kafkaRunner) prepare(stderr io.Writer) {
	k.r.prepare(stderr)
	if k.r.cache != nil {
		k.keys = make([][]byte, k.r.pop.groups)
		parallel(len(k.keys), func(g int) { k.keys[g] = k.r.pop.key(g) })
	}
}

// key returns the message key of group g: the fingerprint of its first
// alert, so that one alert's notifications keep their order on one
// partition (as ingest.KafkaPublisher keys events).
func (p *population) key(g int) []byte {
	a := p.alert(g * p.perGroup)
	fp := a.fingerprint
	if fp == "" {
		fp = a.labelSet().Fingerprint().String()
	}
	return []byte(fp)
}

func (k *kafkaRunner) key(seq int64) []byte {
	g := int(seq % int64(k.r.pop.groups))
	if k.keys != nil {
		return k.keys[g]
	}
	return k.r.pop.key(g)
}

// connect makes sure the topic exists and sets up the writer.
func (k *kafkaRunner) connect(ctx context.Context) error {
	o := k.opts.kafka
	k.client = &kafka.Client{Addr: kafka.TCP(o.brokers...), Timeout: k.opts.timeout}
	var err error
	if k.partitions, k.created, err = ensureTopic(ctx, k.client, o.topic, o.partitions, k.opts.timeout); err != nil {
		return err
	}
	if k.existing, err = topicMessages(ctx, k.client, o.topic, k.partitions); err != nil {
		return err
	}
	inflight := o.maxInflight
	if inflight == 0 {
		inflight = 4 * o.batchSize * k.partitions
	}
	k.opts.kafka.maxInflight = inflight
	k.win = newWindow(inflight)
	k.chunk = min(kafkaChunk, inflight)
	k.w = &kafka.Writer{
		Addr:         kafka.TCP(o.brokers...),
		Topic:        o.topic,
		Balancer:     &kafka.Hash{},
		BatchSize:    o.batchSize,
		BatchBytes:   kafkaBatchBytes,
		BatchTimeout: o.linger,
		RequiredAcks: kafkaAcks[o.acks],
		Async:        true,
		Completion:   k.completed,
		ReadTimeout:  k.opts.timeout,
		WriteTimeout: k.opts.timeout,
	}
	return nil
}

// ensureTopic creates topic when it is missing, with partitions (0: the
// broker's default) and the broker's default replication, and waits until
// every partition has a leader. It returns the topic's partitions.
func ensureTopic(ctx context.Context, c *kafka.Client, topic string, partitions int, timeout time.Duration) (int, bool, error) {
	deadline := time.Now().Add(timeout)
	created := false
	for {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return 0, false, fmt.Errorf("reading the metadata of topic %s from %s: %w", topic, c.Addr, err)
		}
		var terr error = kafka.UnknownTopicOrPartition
		var parts []kafka.Partition
		for _, t := range md.Topics {
			if t.Name == topic {
				terr, parts = t.Error, t.Partitions
			}
		}
		switch {
		case terr == nil && len(parts) > 0 && allLed(parts):
			return len(parts), created, nil
		case errors.Is(terr, kafka.UnknownTopicOrPartition) && !created:
			n := partitions
			if n == 0 {
				n = -1 // the broker's num.partitions
			}
			resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{
				Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: n, ReplicationFactor: -1}}})
			if err != nil {
				return 0, false, fmt.Errorf("creating topic %s: %w", topic, err)
			}
			if err := resp.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
				return 0, false, fmt.Errorf("creating topic %s: %w", topic, err)
			} else if err == nil {
				created = true
			}
		case terr != nil && !errors.Is(terr, kafka.UnknownTopicOrPartition) && !errors.Is(terr, kafka.LeaderNotAvailable):
			return 0, false, fmt.Errorf("topic %s: %w", topic, terr)
		}
		if time.Now().After(deadline) {
			return 0, false, fmt.Errorf("topic %s: no leader for every partition after %s", topic, timeout)
		}
		select {
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func allLed(parts []kafka.Partition) bool {
	for _, p := range parts {
		if p.Error != nil || p.Leader.Host == "" {
			return false
		}
	}
	return true
}

// topicMessages returns how many messages the topic's partitions hold.
func topicMessages(ctx context.Context, c *kafka.Client, topic string, partitions int) (int64, error) {
	reqs := make([]kafka.OffsetRequest, 0, 2*partitions)
	for p := range partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return 0, fmt.Errorf("reading the offsets of topic %s: %w", topic, err)
	}
	var n int64
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return 0, fmt.Errorf("reading the offsets of topic %s, partition %d: %w", topic, po.Partition, po.Error)
		}
		n += max(po.LastOffset-po.FirstOffset, 0)
	}
	return n, nil
}

// window bounds the messages handed to the writer and not yet completed:
// the asynchronous writer would queue without limit.
type window struct {
	mu    sync.Mutex
	max   int
	used  int
	freed chan struct{} // closed, and replaced, at every release
}

func newWindow(max int) *window { return &window{max: max, freed: make(chan struct{})} }

// acquire takes n slots, waiting for them; an empty window gives any n.
func (w *window) acquire(ctx context.Context, n int) error {
	return w.wait(ctx, func() bool {
		if w.used == 0 || w.used+n <= w.max {
			w.used += n
			return true
		}
		return false
	})
}

func (w *window) release(n int) {
	w.mu.Lock()
	w.used -= n
	close(w.freed)
	w.freed = make(chan struct{})
	w.mu.Unlock()
}

// drain waits until every slot is released.
func (w *window) drain(ctx context.Context) error {
	return w.wait(ctx, func() bool { return w.used == 0 })
}

// wait calls done, under the lock, each time slots are released until it
// reports true.
func (w *window) wait(ctx context.Context, done func() bool) error {
	for {
		w.mu.Lock()
		if done() {
			w.mu.Unlock()
			return nil
		}
		ch := w.freed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// runPhase hands messages to the writer until the phase ends or ctx is
// done, and waits for their acknowledgements.
func (k *kafkaRunner) runPhase(ctx context.Context, ph phase) *kafkaResult {
	res := &kafkaResult{}
	k.mu.Lock()
	k.cur = res
	k.mu.Unlock()
	pc := pacer{start: time.Now(), rate: k.opts.rate}
	limit := int64(math.MaxInt64)
	if ph.limit > 0 {
		limit = ph.limit
	}
	if pc.rate > 0 && !ph.until.IsZero() {
		limit = min(limit, pc.dueBy(ph.until.Add(-1))) // due before the end
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var n int64
	for n < limit && ctx.Err() == nil {
		want := min(int64(k.chunk), limit-n)
		if pc.rate > 0 {
			if wait := time.Until(pc.due(n)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					continue
				case <-timer.C:
				}
			}
			want = max(1, min(want, pc.dueBy(time.Now())-n))
		} else if !ph.until.IsZero() && !time.Now().Before(ph.until) {
			break
		}
		if err := k.win.acquire(ctx, int(want)); err != nil {
			break
		}
		k.send(ctx, n, int(want), pc, res)
		n += want
	}
	res.handed = n
	if k.win.drain(ctx) != nil {
		// Interrupted: give the messages handed a moment to be acknowledged;
		// those that are not count as errors.
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = k.win.drain(gctx)
		cancel()
	}
	return res
}

// send hands messages n to n+count-1 of the phase to the writer.
func (k *kafkaRunner) send(ctx context.Context, n int64, count int, pc pacer, res *kafkaResult) {
	due := make([]time.Time, count)
	msgs := k.messages(k.r.seq.Add(int64(count))-int64(count), due)
	now := time.Now()
	for i := range due {
		if pc.rate <= 0 {
			due[i] = now
			continue
		}
		due[i] = pc.due(n + int64(i))
		if lag := now.Sub(due[i]); lag > 0 {
			res.maxLag = max(res.maxLag, lag)
			if lag > lateThreshold {
				res.late++
			}
		}
	}
	if res.first.IsZero() {
		res.first = now
	}
	if err := k.w.WriteMessages(ctx, msgs...); err != nil {
		k.completed(msgs, err) // none was queued
	}
}

// messages builds messages seq to seq+len(due)-1 of the run; the writer
// hands each one's WriterData, a pointer to its element of due, back to
// completed.
func (k *kafkaRunner) messages(seq int64, due []time.Time) []kafka.Message {
	msgs := make([]kafka.Message, len(due))
	for i := range msgs {
		body, _ := k.r.body(seq + int64(i))
		msgs[i] = kafka.Message{Key: k.key(seq + int64(i)), Value: body, WriterData: &due[i]}
	}
	return msgs
}

// completed is the writer's Completion: msgs were acknowledged, or failed
// with err.
func (k *kafkaRunner) completed(msgs []kafka.Message, err error) {
	now := time.Now()
	k.mu.Lock()
	res := k.cur
	var size int64
	for i := range msgs {
		if due, ok := msgs[i].WriterData.(*time.Time); ok {
			res.lat.record(now.Sub(*due))
		}
		size += int64(len(msgs[i].Value))
	}
	n := int64(len(msgs))
	if err != nil {
		res.failed += n
		addSample(&res.samples, err.Error(), n)
	} else {
		res.acked += n
		res.bytesAck += size
	}
	res.completed += n
	res.lastDone = now
	k.mu.Unlock()
	k.win.release(len(msgs))
}

// kafkaReport is Kafka mode's result; --output json prints it on one line.
type kafkaReport struct {
	Target           string  `json:"target"` // "kafka"
	Format           string  `json:"format"`
	Topic            string  `json:"topic"`
	Partitions       int     `json:"partitions"`
	TopicCreated     bool    `json:"topic_created"`
	ExistingMessages int64   `json:"existing_messages"`
	Acks             string  `json:"acks"`
	BatchSize        int     `json:"batch_size"`
	LingerMs         float64 `json:"linger_ms"`
	MaxInflight      int     `json:"max_inflight"`
	AlertsPerMessage int     `json:"alerts_per_message"`
	Rate             float64 `json:"rate"`
	// Producing: from the first message handed to the writer to the last
	// acknowledgement; Messages and Events were acknowledged.
	DurationS    float64 `json:"duration_s"`
	Messages     int64   `json:"messages"`
	Events       int64   `json:"events"`
	MessagesPerS float64 `json:"messages_per_s"`
	EventsPerS   float64 `json:"events_per_s"`
	MBPerS       float64 `json:"mb_per_s"`
	P50Ms        float64 `json:"p50_ms"`
	P90Ms        float64 `json:"p90_ms"`
	P99Ms        float64 `json:"p99_ms"`
	P999Ms       float64 `json:"p999_ms"`
	MaxMs        float64 `json:"max_ms"`
	Errors       int64   `json:"errors"`

	Unique         int        `json:"unique"`
	DuplicateRatio float64    `json:"duplicate_ratio"`
	Late           int64      `json:"late,omitempty"`
	MaxLagMs       float64    `json:"max_lag_ms,omitempty"`
	E2E            *e2eReport `json:"e2e,omitempty"`
}

// e2eReport is Kafka → durable incident state, with --url.
type e2eReport struct {
	// Complete: the daemon applied every acknowledged message in time.
	Complete bool `json:"complete"`
	// Messages the daemon applied (its consumed counter's growth) and the
	// events they carry.
	Messages int64 `json:"messages"`
	Events   int64 `json:"events"`
	// DurationS runs from the first message handed to the writer to the
	// poll that saw every message applied (or the timeout).
	DurationS    float64 `json:"duration_s"`
	MessagesPerS float64 `json:"messages_per_s"`
	EventsPerS   float64 `json:"events_per_s"`
	// FirstAppliedS: from the first hand-off to the poll that saw the
	// first message applied. BacklogS: from the last acknowledgement to
	// the poll that saw every message applied.
	FirstAppliedS float64 `json:"first_applied_s"`
	BacklogS      float64 `json:"backlog_s"`
	// Metrics: the daemon's gauges after, and counters' growth during, the
	// measurement.
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

func (k *kafkaRunner) report(res *kafkaResult) kafkaReport {
	o := k.opts
	secs := res.elapsed().Seconds()
	rep := kafkaReport{
		Target: "kafka", Format: o.format, Topic: o.kafka.topic, Partitions: k.partitions, TopicCreated: k.created,
		ExistingMessages: k.existing, Acks: o.kafka.acks, BatchSize: o.kafka.batchSize,
		LingerMs: ms(o.kafka.linger), MaxInflight: k.opts.kafka.maxInflight, AlertsPerMessage: o.perRequest,
		Rate: o.rate, DurationS: round(secs, 3), Messages: res.acked, Events: res.acked * int64(o.perRequest),
		P50Ms: ms(res.lat.quantile(0.50)), P90Ms: ms(res.lat.quantile(0.90)), P99Ms: ms(res.lat.quantile(0.99)),
		P999Ms: ms(res.lat.quantile(0.999)), MaxMs: ms(res.lat.max),
		Errors: res.failed + (res.handed - res.completed), // not completed: interrupted
		Unique: k.r.pop.unique, DuplicateRatio: round(k.r.duplicateRatio(), 4),
		Late: res.late, MaxLagMs: ms(res.maxLag),
	}
	if secs > 0 {
		rep.MessagesPerS = round(float64(rep.Messages)/secs, 1)
		rep.EventsPerS = round(float64(rep.Events)/secs, 1)
		rep.MBPerS = round(float64(res.bytesAck)/1e6/secs, 1)
	}
	return rep
}

func (k *kafkaRunner) e2eReport(res *kafkaResult, ap applyResult) *e2eReport {
	e := &e2eReport{Complete: ap.complete, Messages: int64(ap.last - ap.base)}
	e.Events = e.Messages * int64(k.opts.perRequest)
	end := ap.at
	if !res.first.IsZero() && end.After(res.first) {
		secs := end.Sub(res.first).Seconds()
		e.DurationS = round(secs, 3)
		e.MessagesPerS = round(float64(e.Messages)/secs, 1)
		e.EventsPerS = round(float64(e.Events)/secs, 1)
		if !ap.firstAt.IsZero() {
			e.FirstAppliedS = round(ap.firstAt.Sub(res.first).Seconds(), 3)
		}
		if ap.complete && !res.lastDone.IsZero() {
			e.BacklogS = round(max(0, end.Sub(res.lastDone).Seconds()), 3)
		}
	}
	return e
}

func (k *kafkaRunner) writeText(w io.Writer, res *kafkaResult, rep kafkaReport) {
	o := k.opts
	topic := "existing"
	if rep.TopicCreated {
		topic = "created"
	}
	fmt.Fprintf(w, "target      Kafka %s, topic %s (%d partition(s), %s, %d messages before the run)\n",
		strings.Join(o.kafka.brokers, ","), o.kafka.topic, rep.Partitions, topic, rep.ExistingMessages)
	pace := "flat out"
	if o.rate > 0 {
		pace = fmt.Sprintf("paced at %g messages/s", o.rate)
	}
	bodies := "bodies built per message"
	if k.r.cache != nil {
		bodies = fmt.Sprintf("%d distinct bodies prebuilt in %s", len(k.r.cache), k.r.prebuilt.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "load        %s, %d alert(s)/message, %s, %d distinct alerts (%s)\n", o.format, o.perRequest, pace, rep.Unique, bodies)
	fmt.Fprintf(w, "producer    acks %s, batches of up to %d messages or %d KiB, %s linger, at most %d messages unacknowledged\n",
		o.kafka.acks, o.kafka.batchSize, kafkaBatchBytes>>10, o.kafka.linger, rep.MaxInflight)
	if o.warmup > 0 || o.kafka.warmup > 0 {
		var what []string
		if o.kafka.warmup > 0 {
			what = append(what, fmt.Sprintf("%d messages", o.kafka.warmup))
		}
		if o.warmup > 0 {
			what = append(what, o.warmup.String())
		}
		applied := ""
		if o.kafka.follow {
			applied = "; applied by the daemon before measuring"
		}
		fmt.Fprintf(w, "warmup      %s, not counted%s\n", strings.Join(what, " or "), applied)
	}
	fmt.Fprintf(w, "produced    %d messages (%d events) acknowledged in %.2fs: %.1f messages/s, %.1f events/s, %.1f MB/s; %.1f%% of the run's alerts were duplicates\n",
		rep.Messages, rep.Events, rep.DurationS, rep.MessagesPerS, rep.EventsPerS, rep.MBPerS, 100*rep.DuplicateRatio)
	from := "from hand-off to the producer"
	if o.rate > 0 {
		from = "from each message's scheduled time"
	}
	fmt.Fprintf(w, "latency     p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s (%s to the brokers' acknowledgement)\n",
		fmtDur(res.lat.quantile(0.5)), fmtDur(res.lat.quantile(0.9)), fmtDur(res.lat.quantile(0.99)),
		fmtDur(res.lat.quantile(0.999)), fmtDur(res.lat.max), fmtDur(res.lat.mean()), from)
	fmt.Fprintf(w, "errors      %d messages not acknowledged\n", rep.Errors)
	writeSamples(w, res.samples)
	if o.rate > 0 {
		writePacing(w, paceNote{rate: o.rate, sent: res.handed, elapsed: res.elapsed(), late: res.late, maxLag: res.maxLag,
			unit: "messages/s", what: "messages", busy: "the producer's window was full or the generator busy",
			remedy: "raise --kafka-max-inflight"})
	}
	e := rep.E2E
	if e == nil {
		return
	}
	if e.Complete {
		fmt.Fprintf(w, "applied     %d messages (%d events) in %.2fs from the first produce: %.1f events/s Kafka → durable incident state (first applied after %.2fs, all %.2fs after the last acknowledgement)\n",
			e.Messages, e.Events, e.DurationS, e.EventsPerS, e.FirstAppliedS, e.BacklogS)
	} else {
		fmt.Fprintf(w, "applied     INCOMPLETE: %d of %d messages within %s of the last acknowledgement (%.1f events/s until then)\n",
			e.Messages, rep.Messages, o.kafka.applyTimeout, e.EventsPerS)
	}
	if e.Metrics != nil {
		fmt.Fprintf(w, "daemon      rss %s  heap in use %s  heap live %s  live alerts %s  (during run: events applied +%s, duplicates +%s, decode errors +%s)\n",
			fmtBytes(e.Metrics, "process_resident_memory_bytes"), fmtBytes(e.Metrics, "go_memstats_heap_inuse_bytes"),
			fmtBytes(e.Metrics, "go_gc_heap_live_bytes"), fmtNum(e.Metrics, "triage_correlate_alerts_live"),
			fmtNum(e.Metrics, "triage_correlate_events_total"), fmtNum(e.Metrics, "triage_correlate_duplicates_total"),
			fmtNum(e.Metrics, "triage_kafka_decode_errors_total"))
	}
}

// daemonWatch reads the /metrics of the daemon consuming the topic.
type daemonWatch struct {
	client     *http.Client
	url, token string
	// consumed and decodeErrors select the topic's series.
	consumed, decodeErrors string
}

// Metrics read from the daemon in Kafka mode: gauges as they are after
// the run, counters as their growth during it.
var (
	kafkaGauges   = []string{"process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "go_gc_heap_live_bytes", "triage_correlate_alerts_live", "triage_correlate_incidents_open"}
	kafkaCounters = []string{"triage_correlate_events_total", "triage_correlate_duplicates_total", "triage_correlate_incidents_opened_total"}
)

func newDaemonWatch(o options) *daemonWatch {
	sel := `{topic="` + o.kafka.topic + `"}`
	return &daemonWatch{client: newClient(2, o.timeout), url: o.baseURL, token: o.token,
		consumed: "triage_kafka_messages_consumed_total" + sel, decodeErrors: "triage_kafka_decode_errors_total" + sel}
}

func (d *daemonWatch) scrape(ctx context.Context) (map[string]float64, error) {
	names := append([]string{d.consumed, d.decodeErrors}, kafkaGauges...)
	return scrape(ctx, d.client, d.url, d.token, append(names, kafkaCounters...))
}

// metricsReport names the topic's series without their selector.
func (d *daemonWatch) metricsReport(before, after map[string]float64) map[string]float64 {
	m := map[string]float64{}
	for _, n := range kafkaGauges {
		if v, ok := after[n]; ok {
			m[n] = v
		}
	}
	for _, n := range append([]string{d.consumed, d.decodeErrors}, kafkaCounters...) {
		if v, ok := after[n]; ok || n == d.consumed || n == d.decodeErrors { // absent: none yet
			base, _, _ := strings.Cut(n, "{")
			m[base] = v - before[n]
		}
	}
	return m
}

// applyResult is what following the daemon's consumed counter saw.
type applyResult struct {
	base, last float64   // the counter at the start, and at the last poll that answered
	firstAt    time.Time // the first poll that saw it grow
	at         time.Time // the poll that saw every message applied, or the last poll
	complete   bool
	err        error // the last failed poll's
}

// follow polls until the consumed counter has grown by n from base, or
// timeout.
func (d *daemonWatch) follow(ctx context.Context, base float64, n int64, timeout time.Duration) applyResult {
	target := make(chan int64, 1)
	target <- n
	return d.followUntil(ctx, base, target, timeout)
}

// followUntil polls the consumed counter from now on (see pollFirst). The
// number of messages to wait for arrives on target (once producing has
// ended); it returns when the counter has grown by that much from base,
// when timeout has passed since the number arrived, or when ctx ends.
func (d *daemonWatch) followUntil(ctx context.Context, base float64, target <-chan int64, timeout time.Duration) applyResult {
	res := applyResult{base: base, last: base}
	want := int64(-1)
	var deadline time.Time
	var firstValue float64 // the counter at firstAt
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		m, err := scrape(ctx, d.client, d.url, d.token, []string{d.consumed})
		now := time.Now()
		res.at = now
		if err != nil {
			if ctx.Err() != nil {
				return res
			}
			res.err = err
		} else {
			res.last = m[d.consumed]
			if res.last > base && res.firstAt.IsZero() {
				res.firstAt, firstValue = now, res.last
			}
			if want >= 0 && res.last-base >= float64(want) {
				res.complete = true
				return res
			}
		}
		if want >= 0 && !now.Before(deadline) {
			return res
		}
		var tc <-chan int64
		if want < 0 {
			tc = target
		}
		timer.Reset(pollAfter(res, firstValue, want, now))
		select {
		case <-ctx.Done():
			return res
		case want = <-tc:
			deadline = time.Now().Add(timeout)
			timer.Stop() // poll now; Reset drops a pending expiry (Go 1.23 timers)
		case <-timer.C:
		}
	}
}

// pollAfter is how long to wait before the next poll (see pollFirst):
// until 70% of the time the rest should take at the rate seen since the
// first message was applied.
func pollAfter(res applyResult, firstValue float64, want int64, now time.Time) time.Duration {
	switch {
	case res.firstAt.IsZero():
		return pollFirst
	case want < 0:
		return pollSlow
	}
	rate := (res.last - firstValue) / now.Sub(res.firstAt).Seconds()
	if rate <= 0 {
		return pollSlow
	}
	rest := (float64(want) - (res.last - res.base)) / rate
	return min(max(time.Duration(0.7*rest*float64(time.Second)), pollFine), pollSlow)
}
