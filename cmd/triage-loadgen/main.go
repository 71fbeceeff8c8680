// Command triage-loadgen posts realistic Prometheus alerts to Triage (or to
// anything that speaks the same endpoints, such as Alertmanager's
// /api/v2/alerts) and reports throughput and latency. With --kafka-brokers
// it produces the same alerts to a Kafka topic instead, one Alertmanager
// webhook payload or one generic event per message, and with --url also
// waits until the Triage daemon consuming that topic has applied them (see
// kafka.go).
//
// The alert population is deterministic: --unique alerts, cycled through in
// order, so the share of duplicates is set by --unique and the run's length,
// and alert i carries the same labels, annotations, startsAt and fingerprint
// every time it is sent. Request bodies are built before the run when they
// fit in --prebuild-mb, so that the generator is not what is measured.
//
// Exit status: 0 when every request got a 2xx (every message was
// acknowledged by the brokers and, with --url, applied by the daemon), 1
// when one did not (unless --allow-errors; a daemon that did not apply
// every message in --apply-timeout is always 1), 2 on a usage error.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const usage = `triage-loadgen posts realistic Prometheus alerts to Triage and reports
throughput and latency.

Usage:
  triage-loadgen [flags]

Examples:
  # Alertmanager webhooks of 50 alerts, 8 senders, 10s, 20000 distinct alerts
  triage-loadgen --format webhook --alerts-per-request 50 --unique 20000
  # Prometheus-style posts at a fixed 500 requests/s, JSON result
  triage-loadgen --format v2 --alerts-per-request 10 --rate 500 --duration 30s --output json
  # 1M alerts of which 90% are duplicates, then the daemon's memory
  triage-loadgen --alerts-per-request 100 --requests 10000 --unique 100000 --metrics
  # how fast the generator alone builds bodies
  triage-loadgen --dry-run --alerts-per-request 50
  # 200000 Kafka messages, one generic event each, half of them duplicates
  triage-loadgen --kafka-brokers 127.0.0.1:9092 --kafka-topic triage.alerts --format events \
    --requests 200000 --duplicate-ratio 0.5
  # the same, then wait until the daemon consuming the topic has applied them
  triage-loadgen --kafka-brokers 127.0.0.1:9092 --kafka-topic triage.alerts --format events \
    --requests 200000 --duplicate-ratio 0.5 --warmup-messages 100 --url http://127.0.0.1:9400

Flags:
`

// options are the command line, validated.
type options struct {
	baseURL        string
	format         string
	perRequest     int
	concurrency    int
	duration       time.Duration
	durationSet    bool
	requests       int64
	rate           float64
	unique         int
	duplicateRatio float64
	token          string
	warmup         time.Duration
	timeout        time.Duration
	output         string
	seed           uint64
	dryRun         bool
	allowErrors    bool
	metrics        bool
	prebuildMB     int
	kafka          kafkaOptions
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("triage-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.baseURL, "url", "http://127.0.0.1:9400", "base URL of the daemon; with --kafka-brokers, given only to wait for the daemon consuming the topic")
	fs.StringVar(&o.format, "format", formatWebhook,
		"payload and endpoint: webhook (POST /api/v1/alerts, Alertmanager webhook), v2 (POST /api/v2/alerts, as Prometheus sends), events (POST /api/v1/events); with --kafka-brokers, webhook or events, one per message")
	fs.IntVar(&o.perRequest, "alerts-per-request", 1, "alerts in each request or Kafka message (one Alertmanager group for webhook)")
	fs.IntVar(&o.concurrency, "concurrency", 8, "concurrent senders (and kept-alive connections)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to measure (after --warmup); with --requests, a time limit only when set")
	fs.Int64Var(&o.requests, "requests", 0, "measure this many requests (Kafka messages) instead of a duration")
	fs.Float64Var(&o.rate, "rate", 0, "requests (Kafka messages) per second over all senders, on an open-loop schedule; 0 sends flat out")
	fs.IntVar(&o.unique, "unique", 10000, "distinct alerts cycled through (rounded up to a multiple of --alerts-per-request)")
	fs.Float64Var(&o.duplicateRatio, "duplicate-ratio", 0, "with --requests, set --unique so that this share (0 to 1) of the measured alerts are duplicates")
	fs.StringVar(&o.token, "token", getenv("TRIAGE_AUTH_TOKEN"), "bearer token (default $TRIAGE_AUTH_TOKEN)")
	fs.DurationVar(&o.warmup, "warmup", 0, "send for this long before measuring (see also --warmup-messages)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout (with Kafka: of each produce request and topic operation)")
	fs.StringVar(&o.output, "output", "text", "report format: text or json (one line)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the alert population: the same seed gives the same alerts")
	fs.BoolVar(&o.dryRun, "dry-run", false, "only build request bodies (no cache), and report how fast")
	fs.BoolVar(&o.allowErrors, "allow-errors", false, "exit 0 even when requests failed")
	fs.BoolVar(&o.metrics, "metrics", false, "scrape the daemon's /metrics before and after the run and report memory and live alerts")
	fs.IntVar(&o.prebuildMB, "prebuild-mb", 512, "build every distinct body before the run when they fit in this many MiB; 0 builds each request's body when sent")
	brokers := kafkaFlags(fs, &o.kafka)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.durationSet = set["duration"]
	if err := o.kafka.parse(*brokers, set, &o); err != nil {
		return o, err
	}
	if o.duplicateRatio != 0 {
		if set["unique"] {
			return o, errors.New("--duplicate-ratio and --unique are alternatives: give one")
		}
		if o.requests <= 0 {
			return o, errors.New("--duplicate-ratio needs --requests (the number of alerts sent must be known)")
		}
		if o.duplicateRatio < 0 || o.duplicateRatio >= 1 {
			return o, fmt.Errorf("--duplicate-ratio: %v is not in [0, 1)", o.duplicateRatio)
		}
		u := math.Ceil(float64(o.requests) * float64(o.perRequest) * (1 - o.duplicateRatio))
		o.unique = int(min(u, math.MaxInt32))
	}
	return o, o.validate()
}

func (o *options) validate() error {
	u, err := url.Parse(o.baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url: %q is not an http(s) base URL", o.baseURL)
	}
	o.baseURL = strings.TrimRight(o.baseURL, "/")
	if _, ok := formatPaths[o.format]; !ok {
		return fmt.Errorf("--format: %q is not webhook, v2 or events", o.format)
	}
	switch {
	case o.perRequest < 1:
		return fmt.Errorf("--alerts-per-request: %d, want at least 1", o.perRequest)
	case o.concurrency < 1:
		return fmt.Errorf("--concurrency: %d, want at least 1", o.concurrency)
	case o.requests < 0:
		return fmt.Errorf("--requests: %d, want at least 0", o.requests)
	case o.requests == 0 && o.duration <= 0:
		return errors.New("--duration: want a positive duration (or give --requests)")
	case o.rate < 0 || math.IsNaN(o.rate) || math.IsInf(o.rate, 0):
		return fmt.Errorf("--rate: %v, want 0 (flat out) or a positive number", o.rate)
	case o.unique < 1:
		return fmt.Errorf("--unique: %d, want at least 1", o.unique)
	case o.warmup < 0:
		return errors.New("--warmup: want 0 or a positive duration")
	case o.timeout <= 0:
		return errors.New("--timeout: want a positive duration")
	case o.output != "text" && o.output != "json":
		return fmt.Errorf("--output: %q is not text or json", o.output)
	case o.prebuildMB < 0:
		return errors.New("--prebuild-mb: want 0 or more")
	}
	if o.kafka.enabled() {
		return o.kafka.validate(o)
	}
	return nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "triage-loadgen: %v\n", err)
		return 2
	}
	if o.kafka.enabled() {
		return runKafka(ctx, o, stdout, stderr)
	}
	pop := newPopulation(o.format, o.perRequest, o.unique, o.seed, time.Now())
	r := &runner{opts: o, pop: pop, endpoint: o.baseURL + formatPaths[o.format]}

	if o.dryRun {
		rep := r.dryRun(ctx)
		writeDryRun(stdout, o, rep)
		return 0
	}

	r.prepare(stderr)
	r.client = newClient(o.concurrency, o.timeout)
	defer r.client.CloseIdleConnections()

	var before map[string]float64
	if o.metrics {
		if before, err = scrapeMetrics(ctx, r.client, o.baseURL, o.token); err != nil {
			fmt.Fprintf(stderr, "triage-loadgen: metrics before the run: %v\n", err)
		}
	}
	if o.warmup > 0 {
		r.runPhase(ctx, phase{until: time.Now().Add(o.warmup)})
	}
	ph := phase{record: true}
	if o.requests > 0 {
		ph.limit = o.requests
	}
	if o.requests == 0 || o.durationSet {
		ph.until = time.Now().Add(o.duration)
	}
	res := r.runPhase(ctx, ph)
	rep := r.report(res)
	if o.metrics {
		after, err := scrapeMetrics(context.WithoutCancel(ctx), r.client, o.baseURL, o.token)
		if err != nil {
			fmt.Fprintf(stderr, "triage-loadgen: metrics after the run: %v\n", err)
		} else {
			rep.Metrics = metricsReport(before, after)
		}
	}
	if o.output == "json" {
		b, _ := json.Marshal(rep)
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		writeText(stdout, o, r, res, rep)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "triage-loadgen: interrupted; the figures cover the requests sent until then")
	}
	if rep.Errors > 0 && !o.allowErrors {
		return 1
	}
	return 0
}

// runner sends one run's requests.
type runner struct {
	opts     options
	pop      *population
	endpoint string
	client   *http.Client
	cache    [][]byte // body of each group, when prebuilt
	sizeHint int      // capacity for bodies built per request
	prebuilt time.Duration
	// seq numbers requests across phases; request k sends group k mod groups.
	seq atomic.Int64
}

func newClient(concurrency int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil, // a load test measures the target, not a proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			WriteBufferSize:     64 << 10,
		},
	}
}

// prepare builds every group's body when they fit in --prebuild-mb.
func (r *runner) prepare(stderr io.Writer) {
	first, _ := r.pop.appendBody(nil, 0)
	r.sizeHint = len(first) + len(first)/4
	estimate := int64(len(first)) * int64(r.pop.groups)
	if estimate > int64(r.opts.prebuildMB)<<20 {
		if r.opts.prebuildMB > 0 {
			fmt.Fprintf(stderr, "triage-loadgen: %d distinct bodies (~%.0f MiB) exceed --prebuild-mb %d; building each body when sent\n",
				r.pop.groups, float64(estimate)/(1<<20), r.opts.prebuildMB)
		}
		return
	}
	start := time.Now()
	r.cache = make([][]byte, r.pop.groups)
	parallel(r.pop.groups, func(g int) {
		r.cache[g], _ = r.pop.appendBody(make([]byte, 0, r.sizeHint), int64(g))
	})
	r.prebuilt = time.Since(start)
}

// parallel calls f(i) for i in [0, n), on as many goroutines as there are
// processors.
func parallel(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				f(int(i))
			}
		})
	}
	wg.Wait()
}

// body returns request k's body and alert count. A body built here is the
// caller's; a prebuilt one is shared and must not be written.
func (r *runner) body(k int64) ([]byte, int) {
	if r.cache != nil {
		return r.cache[k%int64(len(r.cache))], r.pop.perGroup
	}
	return r.pop.appendBody(make([]byte, 0, r.sizeHint), k)
}

// phase is a stretch of sending: warmup (not recorded) or the measurement.
type phase struct {
	record bool
	until  time.Time // stop starting requests then; zero for no time limit
	limit  int64     // stop after this many requests; 0 for no limit
}

// result is what senders counted; results of senders merge.
type result struct {
	lat        histogram
	elapsed    time.Duration
	requests   int64 // completed, whatever the outcome
	ok         int64 // 2xx
	status4xx  int64
	status5xx  int64
	statusElse int64 // 1xx, 3xx
	transport  int64 // no response: refused, reset, timeout
	alertsSent int64
	alertsOK   int64 // in 2xx responses: acknowledged, durable
	bytesSent  int64
	late       int64 // paced requests sent more than lateThreshold after due
	maxLag     time.Duration
	samples    map[string]int64 // error messages, by count
}

const maxSamples = 8

func (res *result) sample(msg string, n int64) { addSample(&res.samples, msg, n) }

// addSample counts an error message, keeping at most maxSamples distinct ones.
func addSample(samples *map[string]int64, msg string, n int64) {
	if *samples == nil {
		*samples = map[string]int64{}
	}
	if _, ok := (*samples)[msg]; ok || len(*samples) < maxSamples {
		(*samples)[msg] += n
	}
}

func (res *result) merge(o *result) {
	res.lat.merge(&o.lat)
	res.requests += o.requests
	res.ok += o.ok
	res.status4xx += o.status4xx
	res.status5xx += o.status5xx
	res.statusElse += o.statusElse
	res.transport += o.transport
	res.alertsSent += o.alertsSent
	res.alertsOK += o.alertsOK
	res.bytesSent += o.bytesSent
	res.late += o.late
	res.maxLag = max(res.maxLag, o.maxLag)
	for m, n := range o.samples {
		res.sample(m, n)
	}
}

func (res *result) errors() int64 {
	return res.status4xx + res.status5xx + res.statusElse + res.transport
}

// runPhase runs --concurrency senders until the phase ends or ctx is done,
// and waits for their last responses.
func (r *runner) runPhase(ctx context.Context, ph phase) *result {
	start := time.Now()
	pc := pacer{start: start, rate: r.opts.rate}
	var claimed atomic.Int64
	results := make([]result, r.opts.concurrency)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { r.sender(ctx, ph, pc, &claimed, &results[i]) })
	}
	wg.Wait()
	total := &result{elapsed: time.Since(start)}
	for i := range results {
		total.merge(&results[i])
	}
	return total
}

func (r *runner) sender(ctx context.Context, ph phase, pc pacer, claimed *atomic.Int64, res *result) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for ctx.Err() == nil {
		n := claimed.Add(1) - 1
		if ph.limit > 0 && n >= ph.limit {
			return
		}
		due := time.Now()
		if pc.rate > 0 {
			due = pc.due(n)
		}
		if !ph.until.IsZero() && !due.Before(ph.until) {
			return
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		}
		r.send(ctx, r.seq.Add(1)-1, due, pc.rate > 0, res)
	}
}

// send posts request k and counts the outcome. A paced request's latency
// runs from its due time.
func (r *runner) send(ctx context.Context, k int64, due time.Time, paced bool, res *result) {
	body, alerts := r.body(k)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, bytes.NewReader(body))
	if err != nil {
		res.transport++
		res.sample(err.Error(), 1)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "triage-loadgen")
	if r.opts.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.opts.token)
	}
	start := time.Now()
	resp, err := r.client.Do(req)
	var msg []byte
	if err == nil {
		if resp.StatusCode/100 != 2 {
			msg, _ = io.ReadAll(io.LimitReader(resp.Body, 300))
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	end := time.Now()
	if err != nil && ctx.Err() != nil {
		return // interrupted: not the target's fault
	}
	from := start
	if paced {
		from = due
		if lag := start.Sub(due); lag > 0 {
			res.maxLag = max(res.maxLag, lag)
			if lag > lateThreshold {
				res.late++
			}
		}
	}
	res.lat.record(end.Sub(from))
	res.requests++
	res.alertsSent += int64(alerts)
	res.bytesSent += int64(len(body))
	switch {
	case err != nil:
		res.transport++
		res.sample("transport: "+err.Error(), 1)
	case resp.StatusCode/100 == 2:
		res.ok++
		res.alertsOK += int64(alerts)
	default:
		switch resp.StatusCode / 100 {
		case 4:
			res.status4xx++
		case 5:
			res.status5xx++
		default:
			res.statusElse++
		}
		res.sample(fmt.Sprintf("%d: %s", resp.StatusCode, strings.TrimSpace(string(msg))), 1)
	}
}

// report is the result as printed; --output json prints it on one line.
type report struct {
	Format           string  `json:"format"`
	AlertsPerRequest int     `json:"alerts_per_request"`
	Concurrency      int     `json:"concurrency"`
	Rate             float64 `json:"rate"`
	DurationS        float64 `json:"duration_s"`
	Requests         int64   `json:"requests"`
	Alerts           int64   `json:"alerts"`
	RPS              float64 `json:"rps"`
	AlertsPerS       float64 `json:"alerts_per_s"`
	P50Ms            float64 `json:"p50_ms"`
	P90Ms            float64 `json:"p90_ms"`
	P99Ms            float64 `json:"p99_ms"`
	P999Ms           float64 `json:"p999_ms"`
	MaxMs            float64 `json:"max_ms"`
	Errors           int64   `json:"errors"`

	Unique          int                `json:"unique"`
	DuplicateRatio  float64            `json:"duplicate_ratio"`
	Status2xx       int64              `json:"status_2xx"`
	Status4xx       int64              `json:"status_4xx"`
	Status5xx       int64              `json:"status_5xx"`
	StatusOther     int64              `json:"status_other"`
	TransportErrors int64              `json:"transport_errors"`
	Late            int64              `json:"late,omitempty"`
	MaxLagMs        float64            `json:"max_lag_ms,omitempty"`
	Metrics         map[string]float64 `json:"metrics,omitempty"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func round(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}

func (r *runner) report(res *result) report {
	secs := res.elapsed.Seconds()
	rep := report{
		Format: r.opts.format, AlertsPerRequest: r.opts.perRequest, Concurrency: r.opts.concurrency,
		Rate: r.opts.rate, DurationS: round(secs, 3),
		Requests: res.requests, Alerts: res.alertsOK,
		P50Ms: ms(res.lat.quantile(0.50)), P90Ms: ms(res.lat.quantile(0.90)), P99Ms: ms(res.lat.quantile(0.99)),
		P999Ms: ms(res.lat.quantile(0.999)), MaxMs: ms(res.lat.max),
		Errors: res.errors(),
		Unique: r.pop.unique, DuplicateRatio: round(r.duplicateRatio(), 4),
		Status2xx: res.ok, Status4xx: res.status4xx, Status5xx: res.status5xx, StatusOther: res.statusElse,
		TransportErrors: res.transport,
		Late:            res.late, MaxLagMs: ms(res.maxLag),
	}
	if secs > 0 {
		rep.RPS = round(float64(res.requests)/secs, 1)
		rep.AlertsPerS = round(float64(res.alertsOK)/secs, 1)
	}
	return rep
}

// duplicateRatio is the share of the run's alerts (warmup included) that
// repeat an alert sent earlier in the run.
func (r *runner) duplicateRatio() float64 {
	sent := r.seq.Load()
	if sent == 0 {
		return 0
	}
	distinct := min(sent, int64(r.pop.groups))
	return 1 - float64(distinct)/float64(sent)
}

func writeText(w io.Writer, o options, r *runner, res *result, rep report) {
	pacing := "flat out"
	if o.rate > 0 {
		pacing = fmt.Sprintf("paced at %g req/s", o.rate)
	}
	bodies := "bodies built per request"
	if r.cache != nil {
		bodies = fmt.Sprintf("%d distinct bodies prebuilt in %s", len(r.cache), r.prebuilt.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "target      POST %s (%s)\n", r.endpoint, o.format)
	fmt.Fprintf(w, "load        %d alerts/request, %d senders, %s, %d distinct alerts (%s)\n",
		o.perRequest, o.concurrency, pacing, r.pop.unique, bodies)
	if o.warmup > 0 {
		fmt.Fprintf(w, "warmup      %s, not counted\n", o.warmup)
	}
	fmt.Fprintf(w, "requests    %d in %.2fs: %.1f req/s, %.1f MB/s sent\n",
		res.requests, rep.DurationS, rep.RPS, float64(res.bytesSent)/1e6/max(rep.DurationS, 1e-9))
	fmt.Fprintf(w, "alerts      %d acknowledged: %.1f alerts/s; %.1f%% of the run's alerts were duplicates\n",
		res.alertsOK, rep.AlertsPerS, 100*rep.DuplicateRatio)
	from := ""
	if o.rate > 0 {
		from = " (from each request's scheduled time)"
	}
	fmt.Fprintf(w, "latency     p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s%s\n",
		fmtDur(res.lat.quantile(0.5)), fmtDur(res.lat.quantile(0.9)), fmtDur(res.lat.quantile(0.99)),
		fmtDur(res.lat.quantile(0.999)), fmtDur(res.lat.max), fmtDur(res.lat.mean()), from)
	fmt.Fprintf(w, "responses   2xx %d  4xx %d  5xx %d  other %d  transport errors %d\n",
		res.ok, res.status4xx, res.status5xx, res.statusElse, res.transport)
	writeSamples(w, res.samples)
	if o.rate > 0 {
		writePacing(w, paceNote{rate: o.rate, sent: res.requests, elapsed: res.elapsed, late: res.late, maxLag: res.maxLag,
			unit: "req/s", what: "requests", busy: "every sender was busy", remedy: "raise --concurrency"})
	}
	if rep.Metrics != nil {
		fmt.Fprintf(w, "daemon      rss %s  heap in use %s  live alerts %s  (during run: events received +%s, duplicates +%s)\n",
			fmtBytes(rep.Metrics, "process_resident_memory_bytes"), fmtBytes(rep.Metrics, "go_memstats_heap_inuse_bytes"),
			fmtNum(rep.Metrics, "triage_correlate_alerts_live"),
			fmtNum(rep.Metrics, "triage_ingest_events_received_total"), fmtNum(rep.Metrics, "triage_correlate_duplicates_total"))
	}
}

// writeSamples prints error messages, the most frequent first.
func writeSamples(w io.Writer, samples map[string]int64) {
	msgs := make([]string, 0, len(samples))
	for m := range samples {
		msgs = append(msgs, m)
	}
	sort.Slice(msgs, func(i, j int) bool { return samples[msgs[i]] > samples[msgs[j]] })
	for _, m := range msgs {
		fmt.Fprintf(w, "  %7d × %s\n", samples[m], m)
	}
}

// paceNote is what writePacing says about an open-loop run.
type paceNote struct {
	rate         float64 // target, in unit
	sent         int64
	elapsed      time.Duration
	late         int64
	maxLag       time.Duration
	unit, what   string // "req/s", "requests"
	busy, remedy string // why a start is late, what avoids it
}

func writePacing(w io.Writer, p paceNote) {
	achieved := float64(p.sent) / max(p.elapsed.Seconds(), 1e-9)
	switch {
	case achieved < 0.95*p.rate:
		fmt.Fprintf(w, "pacing      COULD NOT KEEP UP: target %g %s, achieved %.1f; %d %s started more than %s late (max %s); %s or lower --rate\n",
			p.rate, p.unit, achieved, p.late, p.what, lateThreshold, fmtDur(p.maxLag), p.remedy)
	case p.late > 0:
		fmt.Fprintf(w, "pacing      on schedule overall (%.1f of %g %s), but %d %s (%.1f%%) started more than %s late, max %s, when %s; their latency counts from the scheduled time (%s to avoid it)\n",
			achieved, p.rate, p.unit, p.late, p.what, 100*float64(p.late)/float64(max(p.sent, 1)), lateThreshold, fmtDur(p.maxLag), p.busy, p.remedy)
	default:
		fmt.Fprintf(w, "pacing      kept up: max start lag %s\n", fmtDur(p.maxLag))
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
}

func fmtBytes(m map[string]float64, name string) string {
	v, ok := m[name]
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", v/(1<<20))
}

func fmtNum(m map[string]float64, name string) string {
	v, ok := m[name]
	if !ok {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// Metrics read from the daemon: gauges as they are after the run, counters
// as their increase during it.
var (
	scrapedGauges   = []string{"process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "triage_correlate_alerts_live"}
	scrapedCounters = []string{"triage_ingest_events_received_total", "triage_correlate_duplicates_total"}
)

func metricsReport(before, after map[string]float64) map[string]float64 {
	m := map[string]float64{}
	for _, n := range scrapedGauges {
		if v, ok := after[n]; ok {
			m[n] = v
		}
	}
	for _, n := range scrapedCounters {
		if v, ok := after[n]; ok {
			m[n] = v - before[n]
		}
	}
	return m
}

// scrapeMetrics reads the wanted metrics from baseURL/metrics in the
// Prometheus text format, summing the series of each.
func scrapeMetrics(ctx context.Context, c *http.Client, baseURL, token string) (map[string]float64, error) {
	return scrape(ctx, c, baseURL, token, append(scrapedGauges[:len(scrapedGauges):len(scrapedGauges)], scrapedCounters...))
}

// scrape reads names (see parseMetrics) from baseURL/metrics.
func scrape(ctx context.Context, c *http.Client, baseURL, token string, names []string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body, names)
}

// parseMetrics sums, for each of names, the series of that name. A name
// may select series by one label, as in name{topic="alerts"}: its key in
// the result is the name as given.
func parseMetrics(r io.Reader, names []string) (map[string]float64, error) {
	want := map[string][]string{} // metric name → the keys wanting its series
	for _, n := range names {
		base, _, _ := strings.Cut(n, "{")
		want[base] = append(want[base], n)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		labels := ""
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			if j := strings.LastIndexByte(line, '}'); j >= 0 {
				labels, rest = line[i:j+1], line[j+1:]
			}
		}
		keys := want[name]
		if len(keys) == 0 {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		for _, k := range keys {
			if sel := k[len(name):]; sel == "" || hasLabel(labels, sel) {
				m[k] += v
			}
		}
	}
	return m, sc.Err()
}

// hasLabel reports whether labels, a series' {a="b",...}, hold the one
// pair of sel, {name="value"}. Values are compared as written, escapes
// and all.
func hasLabel(labels, sel string) bool {
	pair := strings.TrimSuffix(strings.TrimPrefix(sel, "{"), "}")
	if pair == "" || len(labels) < 2 {
		return false
	}
	inner := "," + labels[1:len(labels)-1] + ","
	return strings.Contains(inner, ","+pair+",")
}

// dryRunReport is what --dry-run measures: building bodies, no sending.
type dryRunReport struct {
	Format           string  `json:"format"`
	AlertsPerRequest int     `json:"alerts_per_request"`
	Concurrency      int     `json:"concurrency"`
	DryRun           bool    `json:"dry_run"`
	DurationS        float64 `json:"duration_s"`
	Bodies           int64   `json:"bodies"`
	Alerts           int64   `json:"alerts"`
	BodiesPerS       float64 `json:"bodies_per_s"`
	AlertsPerS       float64 `json:"alerts_per_s"`
	MBPerS           float64 `json:"mb_per_s"`
	AvgBodyBytes     int64   `json:"avg_body_bytes"`
}

// dryRun builds bodies as the per-request path does (no prebuilt cache),
// with --concurrency builders, for --duration or --requests bodies.
func (r *runner) dryRun(ctx context.Context) dryRunReport {
	first, _ := r.pop.appendBody(nil, 0)
	r.sizeHint = len(first) + len(first)/4
	var until time.Time
	if r.opts.requests == 0 || r.opts.durationSet {
		until = time.Now().Add(r.opts.duration)
	}
	var claimed, bodies, alerts, size atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range r.opts.concurrency {
		wg.Go(func() {
			var n, a, s int64
			for ctx.Err() == nil {
				k := claimed.Add(1) - 1
				if r.opts.requests > 0 && k >= r.opts.requests {
					break
				}
				if !until.IsZero() && k%16 == 0 && !time.Now().Before(until) {
					break
				}
				b, na := r.body(k)
				n, a, s = n+1, a+int64(na), s+int64(len(b))
			}
			bodies.Add(n)
			alerts.Add(a)
			size.Add(s)
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	rep := dryRunReport{Format: r.opts.format, AlertsPerRequest: r.opts.perRequest, Concurrency: r.opts.concurrency,
		DryRun: true, DurationS: round(secs, 3), Bodies: bodies.Load(), Alerts: alerts.Load()}
	if secs > 0 {
		rep.BodiesPerS = round(float64(rep.Bodies)/secs, 1)
		rep.AlertsPerS = round(float64(rep.Alerts)/secs, 1)
		rep.MBPerS = round(float64(size.Load())/1e6/secs, 1)
	}
	if rep.Bodies > 0 {
		rep.AvgBodyBytes = size.Load() / rep.Bodies
	}
	return rep
}

func writeDryRun(w io.Writer, o options, rep dryRunReport) {
	if o.output == "json" {
		b, _ := json.Marshal(rep)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintf(w, "dry run     %s, %d alerts/request, %d builders, bodies built per request (no cache, no sending)\n",
		o.format, o.perRequest, o.concurrency)
	fmt.Fprintf(w, "built       %d bodies (avg %d bytes) in %.2fs: %.1f bodies/s, %.1f alerts/s, %.1f MB/s\n",
		rep.Bodies, rep.AvgBodyBytes, rep.DurationS, rep.BodiesPerS, rep.AlertsPerS, rep.MBPerS)
}
