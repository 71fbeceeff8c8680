package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/ingest"
	"github.com/triage-dev/triage/rules"
)

// Alert names of the events the pipeline raises.
const (
	AlertNewErrorTemplate = "LogNewErrorTemplate"
	AlertErrorSpike       = "LogErrorSpike"
)

// Fields name the JSON fields of a log record, tried in order.
type Fields struct {
	Message []string
	Time    []string
	Level   []string
	// Labels are top-level string fields copied as labels (an object
	// named "labels" is copied too); they bind the events to CIs.
	Labels []string
}

// DefaultFields suit the common shippers (Fluent Bit, Vector, Logstash,
// Promtail JSON).
var DefaultFields = Fields{
	Message: []string{"message", "msg", "log"},
	Time:    []string{"@timestamp", "timestamp", "time", "ts"},
	Level:   []string{"level", "severity", "lvl", "log.level"},
	Labels:  []string{"service", "app", "host", "hostname", "instance", "pod", "namespace", "container", "job", "env", "cluster", "node", "ci"},
}

// SpikeOptions configure error spike detection: per error template and
// service, records are counted per Interval; a count of at least MinCount
// and above Factor times the learned baseline (an average over past
// intervals, empty ones included) raises a spike. Factor 0 turns it off.
type SpikeOptions struct {
	Interval time.Duration
	Factor   float64
	MinCount int
}

// PipelineOptions configure a Pipeline.
type PipelineOptions struct {
	Miner  Options
	Fields Fields
	// NewErrorTemplates raises an event for each new template seen at
	// error level or with an error word in it.
	NewErrorTemplates bool
	Spike             SpikeOptions
	// EventTTL is how long a raised event stays firing unless raised again.
	EventTTL time.Duration
	// Rules returns the rule set in use (its log rules apply); nil for none.
	Rules func() *rules.Set
	// Sink takes the events; they are durable when Submit returns.
	Sink ingest.Sink
	// StatePath keeps the mined templates across restarts ("" for none).
	StatePath string
	Now       func() time.Time
	Logger    *slog.Logger
	Registry  prometheus.Registerer
}

// Pipeline mines templates from log records and raises events that
// correlate with alerts: new error templates, error spikes and log rule
// matches, carrying the record's labels so they bind to CIs. It is the
// LogSink of the Kafka logs consumer. Safe for concurrent use.
type Pipeline struct {
	opts PipelineOptions
	mu   sync.Mutex
	mine *Miner
	tpl  map[uint64]*tplStat
	spk  map[spikeKey]*spikeState
	m    pipelineMetrics
	// done is the last offset processed per topic/partition, and pending
	// the events of processed records not yet submitted: a batch retried
	// after a failed submission is not mined twice and loses no event.
	done    map[string]int64
	pending []triage.Event
}

type tplStat struct {
	first, last time.Time
	errorish    bool
	errorWord   bool // its text has an error word (checked once, wordChecked)
	wordChecked bool
	lastMinute  counter // all services, for the API's rate
}

// counter counts events per interval and learns a baseline: an
// exponentially weighted average of past intervals' counts.
type counter struct {
	start time.Time
	n     int
	base  float64
	seen  int     // intervals folded into base
	capAt float64 // when set, the current interval folds in at most this (a spike)
}

const baselineAlpha = 0.2

func (c *counter) add(t time.Time, every time.Duration) {
	b := t.Truncate(every)
	switch {
	case c.start.IsZero():
		c.start = b
	case b.After(c.start):
		// Fold the finished interval and the empty ones after it.
		gaps := int(b.Sub(c.start) / every)
		n := float64(c.n)
		if c.capAt > 0 && n > c.capAt {
			n = c.capAt
		}
		c.capAt = 0
		c.fold(n)
		for i := 1; i < gaps && i < 64; i++ {
			c.fold(0)
		}
		c.start, c.n = b, 0
	case b.Before(c.start):
		return // late record: counted in no interval
	}
	c.n++
}

func (c *counter) fold(n float64) {
	if c.seen == 0 {
		c.base = n
	} else {
		c.base = baselineAlpha*n + (1-baselineAlpha)*c.base
	}
	c.seen++
}

type spikeKey struct {
	tpl     uint64
	service string
}

type spikeState struct {
	counter
	raised time.Time // interval a spike was raised for
	streak int       // consecutive intervals with a spike
}

// spikeWarmup is how many intervals a baseline learns before spikes count;
// spikeAdapt is how many spiking intervals in a row make a level the norm.
const (
	spikeWarmup = 5
	spikeAdapt  = 30
)

// spikeLabels are the labels a spike event keeps: the service's, not one
// record's pod or host.
var spikeLabels = []string{"service", "app", "namespace", "cluster", "env", "job"}

type pipelineMetrics struct {
	records, undecodable, submitErrors, failed prometheus.Counter
	events                                     *prometheus.CounterVec
	templates                                  prometheus.GaugeFunc
}

// NewPipeline builds a pipeline, restoring mined templates from StatePath.
func NewPipeline(opts PipelineOptions) (*Pipeline, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.EventTTL <= 0 {
		opts.EventTTL = 15 * time.Minute
	}
	if opts.Spike.Interval <= 0 {
		opts.Spike.Interval = time.Minute
	}
	if opts.Fields.Message == nil {
		opts.Fields = DefaultFields
	}
	m, err := NewMiner(opts.Miner)
	if err != nil {
		return nil, err
	}
	if opts.Sink == nil {
		return nil, errors.New("log pipeline: no sink for its events")
	}
	p := &Pipeline{opts: opts, mine: m, tpl: make(map[uint64]*tplStat), spk: make(map[spikeKey]*spikeState), done: make(map[string]int64)}
	if opts.StatePath != "" {
		data, err := os.ReadFile(opts.StatePath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("reading log templates: %w", err)
		default:
			if err := m.UnmarshalBinary(data); err != nil {
				// Templates are learned again; the file is replaced at the next save.
				opts.Logger.Error("log templates unreadable; mining from scratch", "path", opts.StatePath, "err", err)
				if m, err = NewMiner(opts.Miner); err != nil {
					return nil, err
				}
				p.mine = m
				// Ids above any the lost state can have handed out: an id
				// names its template in the log_template label of alerts.
				m.nextID = uint64(opts.Now().UnixNano())
			} else {
				// Templates made after the last save (before a crash) had
				// ids from here: skip past them.
				m.nextID += idReserve
			}
		}
	}
	f := promauto.With(opts.Registry)
	p.m = pipelineMetrics{
		records: f.NewCounter(prometheus.CounterOpts{Name: "triage_logs_records_total", Help: "Log records mined."}),
		undecodable: f.NewCounter(prometheus.CounterOpts{Name: "triage_logs_plain_records_total",
			Help: "Log records that were not JSON objects: their whole value was mined as the message."}),
		failed: f.NewCounter(prometheus.CounterOpts{Name: "triage_logs_failed_records_total",
			Help: "Log records skipped because mining them failed (logged with their offset)."}),
		submitErrors: f.NewCounter(prometheus.CounterOpts{Name: "triage_logs_submit_errors_total",
			Help: "Failed submissions of log events (the consumer retries the batch)."}),
		events: f.NewCounterVec(prometheus.CounterOpts{Name: "triage_logs_events_total",
			Help: "Events raised from logs, by kind (new_error_template, error_spike, rule)."}, []string{"kind"}),
	}
	p.m.templates = f.NewGaugeFunc(prometheus.GaugeOpts{Name: "triage_logs_templates", Help: "Log templates held."},
		func() float64 { p.mu.Lock(); defer p.mu.Unlock(); return float64(p.mine.Len()) })
	return p, nil
}

// idReserve is how far ids jump at a restart: more templates than can be
// made between two saves (30 s).
const idReserve = 1 << 20

// maxMinedBytes bounds the part of a message that is mined: a stack trace
// or a JSON blob sent as one message must not make a huge template.
const maxMinedBytes = 4096

// Record is one decoded log record.
type Record struct {
	Message string
	Time    time.Time
	Level   string // normalised severity, "" when the record has none
	Labels  map[string]string
}

// Decode reads a JSON log record with the given fields; a value that is not
// a JSON object is a plain message. fallback is the time when the record
// has none.
func Decode(value []byte, f Fields, fallback time.Time) (Record, bool) {
	rec := Record{Time: fallback, Labels: map[string]string{}}
	var obj map[string]any
	if t := bytes.TrimSpace(value); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &obj) != nil {
		rec.Message = strings.ToValidUTF8(strings.TrimRight(string(value), "\r\n"), "\uFFFD")
		return rec, false
	}
	str := func(keys []string) string {
		for _, k := range keys {
			if v, ok := lookup(obj, k).(string); ok && v != "" {
				return v
			}
		}
		return ""
	}
	rec.Message = str(f.Message)
	if ts := str(f.Time); ts != "" {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil && t.Year() >= 1970 && t.Year() < 2200 {
			rec.Time = t
		}
	}
	rec.Level = triage.NormalizeSeverity(str(f.Level))
	for _, k := range f.Labels {
		if v, ok := obj[k].(string); ok && v != "" && len(rec.Labels) < triage.MaxLabels-4 {
			rec.Labels[k] = v
		}
	}
	if ls, ok := obj["labels"].(map[string]any); ok {
		for k, v := range ls {
			if s, ok := v.(string); ok && s != "" && len(rec.Labels) < triage.MaxLabels-4 {
				rec.Labels[k] = s
			}
		}
	}
	return rec, true
}

// lookup finds a key, or a dotted path into nested objects (log.level).
func lookup(obj map[string]any, key string) any {
	if v, ok := obj[key]; ok {
		return v
	}
	head, rest, ok := strings.Cut(key, ".")
	if !ok {
		return nil
	}
	if sub, ok := obj[head].(map[string]any); ok {
		return lookup(sub, rest)
	}
	return nil
}

// errorWords mark a template as an error one even without a level.
var errorWords = []string{"error", "exception", "fail", "fatal", "panic", "critical", "refused", "denied",
	"timeout", "timed out", "oomkilled", "out of memory", "unreachable", "abort", "traceback"}

// errorish reports whether a record is an error one: by its level, else
// by an error word in its template. The word check runs once per template:
// templates only generalise, so a word can leave the text, never join it.
func (p *Pipeline) errorish(st *tplStat, level string, text func() string) bool {
	switch level {
	case triage.SeverityError, triage.SeverityCritical:
		return true
	case triage.SeverityInfo:
		return false // an info record is not an error however it reads
	}
	if !st.wordChecked {
		st.errorWord, st.wordChecked = hasErrorWord(text()), true
	}
	return st.errorWord
}

func hasErrorWord(template string) bool {
	t := strings.ToLower(template)
	for _, w := range errorWords {
		if strings.Contains(t, w) {
			return true
		}
	}
	return false
}

// Logs implements ingest.LogSink: mines the records and submits the events
// they raise. It returns once the events are durable, so the consumer
// commits the records' offsets only then.
func (p *Pipeline) Logs(ctx context.Context, records []ingest.LogRecord) error {
	p.mu.Lock()
	p.pending = append(p.pending, p.process(records)...)
	events := p.pending
	p.mu.Unlock()
	if len(events) == 0 {
		return nil
	}
	if err := p.opts.Sink.Submit(ctx, events); err != nil {
		p.m.submitErrors.Inc()
		return fmt.Errorf("submitting %d log events: %w", len(events), err)
	}
	p.mu.Lock()
	p.pending = p.pending[len(events):] // what was submitted; later additions stay
	if len(p.pending) == 0 {
		p.pending = nil
	}
	p.mu.Unlock()
	return nil
}

// process mines records not processed before and returns their events.
// The caller holds p.mu.
func (p *Pipeline) process(records []ingest.LogRecord) []triage.Event {
	var rs *rules.Set
	if p.opts.Rules != nil {
		rs = p.opts.Rules()
	}
	byFP := map[string]int{}
	var out []triage.Event
	emit := func(kind string, ev triage.Event) {
		if err := ev.Normalize(ev.Time); err != nil {
			p.opts.Logger.Warn("log event not raised", "kind", kind, "err", err)
			return
		}
		p.m.events.WithLabelValues(kind).Inc()
		if i, ok := byFP[ev.Fingerprint]; ok {
			out[i] = ev // one per alert per batch: the latest
			return
		}
		byFP[ev.Fingerprint] = len(out)
		out = append(out, ev)
	}
	for _, r := range records {
		if r.Topic != "" {
			part := r.Topic + "/" + strconv.Itoa(r.Partition)
			if last, ok := p.done[part]; ok && r.Offset <= last {
				continue // a retried batch: mined already, its events are pending
			}
			p.done[part] = r.Offset
		}
		p.one(r, rs, emit)
	}
	p.prune()
	return out
}

// one mines one record; a record the miner cannot take is counted and
// skipped rather than stopping the consumer on it for ever.
func (p *Pipeline) one(r ingest.LogRecord, rs *rules.Set, emit func(string, triage.Event)) {
	defer func() {
		if v := recover(); v != nil {
			p.m.failed.Inc()
			p.opts.Logger.Error("log record skipped: mining it failed", "topic", r.Topic, "partition", r.Partition,
				"offset", r.Offset, "panic", fmt.Sprint(v))
		}
	}()
	rec, ok := Decode(r.Value, p.opts.Fields, r.Time)
	if !ok {
		p.m.undecodable.Inc()
	}
	now := p.opts.Now()
	if rec.Time.IsZero() || rec.Time.After(now.Add(time.Minute)) {
		rec.Time = now // a clock far ahead must not stall the rate counters
	}
	p.m.records.Inc()
	if strings.TrimSpace(rec.Message) == "" {
		return
	}
	id, isNew := p.mine.Add(truncate(rec.Message, maxMinedBytes))
	// The template's text is built only when something needs it.
	text := ""
	textOf := func() string {
		if text == "" {
			tpl, _ := p.mine.Template(id)
			text = tpl.Text
		}
		return text
	}
	st := p.tpl[id]
	if st == nil {
		st = &tplStat{first: rec.Time}
		p.tpl[id] = st
	}
	if rec.Time.After(st.last) {
		st.last = rec.Time
	}
	st.lastMinute.add(rec.Time, time.Minute)
	isErr := p.errorish(st, rec.Level, textOf)
	st.errorish = st.errorish || isErr
	service := rec.Labels["service"]
	if service == "" {
		service = rec.Labels["app"]
	}
	if isNew && isErr && p.opts.NewErrorTemplates {
		emit("new_error_template", p.event(AlertNewErrorTemplate, triage.SeverityWarning, rec, id, textOf(),
			"new error log template: "+textOf()))
	}
	if st.errorish && p.opts.Spike.Factor > 0 {
		if ev, ok := p.spike(id, service, rec, textOf); ok {
			emit("error_spike", ev)
		}
	}
	if rs.HasLogRules() {
		env := &rules.LogEnv{Message: rec.Message, Level: rec.Level, Template: textOf(), TemplateID: int(id),
			Labels: rec.Labels, Service: service}
		for _, m := range rs.MatchLog(env) {
			ev := p.event(m.Rule, m.Severity, rec, id, textOf(), truncate(rec.Message, 1024))
			ev.Labels["log_rule"] = m.Rule
			emit("rule", ev)
		}
	}
}

// spike counts an error record and reports a spike event, at most one per
// template, service and interval.
func (p *Pipeline) spike(id uint64, service string, rec Record, text func() string) (triage.Event, bool) {
	k := spikeKey{id, service}
	s := p.spk[k]
	if s == nil {
		s = &spikeState{}
		p.spk[k] = s
	}
	o := p.opts.Spike
	s.add(rec.Time, o.Interval)
	threshold := o.Factor * max(s.base, 1)
	// A spike needs a learned baseline (spikeWarmup intervals): a template
	// that is steady from the start, or after a restart, is not a spike.
	if s.seen < spikeWarmup || s.n < o.MinCount || float64(s.n) <= threshold || !s.raised.Before(s.start) {
		return triage.Event{}, false
	}
	if s.raised.Equal(s.start.Add(-o.Interval)) {
		s.streak++
	} else {
		s.streak = 1
	}
	s.raised = s.start
	if s.streak < spikeAdapt {
		// A spike does not become its own baseline, so a storm stays a
		// spike; a level that lasts spikeAdapt intervals becomes the norm.
		s.capAt = max(s.base, 1)
	}
	// One alert per template and service: service-level labels only, not
	// the pod or host of whichever record crossed the threshold.
	svc := Record{Time: rec.Time, Labels: map[string]string{}}
	for _, k := range spikeLabels {
		if v := rec.Labels[k]; v != "" {
			svc.Labels[k] = v
		}
	}
	ev := p.event(AlertErrorSpike, triage.SeverityError, svc, id, text(),
		fmt.Sprintf("%d records of an error template in %s, baseline %.1f: %s", s.n, o.Interval, s.base, text()))
	ev.EndsAt = rec.Time.Add(2 * o.Interval)
	return ev, true
}

func (p *Pipeline) event(alertname, severity string, rec Record, id uint64, text, summary string) triage.Event {
	labels := make(map[string]string, len(rec.Labels)+3)
	for k, v := range rec.Labels {
		if len(v) <= triage.MaxLabelBytes && utf8.ValidString(v) && k != "" && len(k) <= 256 {
			labels[k] = v // an oversize label must not cost the whole event
		}
	}
	labels["alertname"] = alertname
	labels["log_template"] = strconv.FormatUint(id, 10)
	return triage.Event{
		Source:      "logs",
		Status:      triage.AlertFiring,
		Severity:    severity,
		Labels:      labels,
		Annotations: map[string]string{"summary": truncate(summary, 1024), "template": truncate(text, 4096)},
		StartsAt:    rec.Time,
		EndsAt:      rec.Time.Add(p.opts.EventTTL),
		Time:        rec.Time,
	}
}

// prune drops the statistics of templates the miner evicted, so memory
// stays bounded by MaxTemplates.
func (p *Pipeline) prune() {
	if len(p.tpl) <= 2*max(p.mine.Len(), 1000) && len(p.spk) <= 4*max(p.mine.Len(), 1000) {
		return
	}
	for id := range p.tpl {
		if _, ok := p.mine.Template(id); !ok {
			delete(p.tpl, id)
		}
	}
	for k := range p.spk {
		if _, ok := p.mine.Template(k.tpl); !ok {
			delete(p.spk, k)
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// TemplateStat is one template as GET /api/v1/log-templates shows it.
type TemplateStat struct {
	ID        uint64    `json:"id"`
	Template  string    `json:"template"`
	Count     uint64    `json:"count"`
	Error     bool      `json:"error"`
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	// PerMinute is the learned records per minute (all services).
	PerMinute float64 `json:"per_minute"`
}

// Templates lists templates by count, most frequent first, at most limit;
// errorsOnly keeps the error ones.
func (p *Pipeline) Templates(limit int, errorsOnly bool) []TemplateStat {
	p.mu.Lock()
	defer p.mu.Unlock()
	all := p.mine.Templates()
	out := make([]TemplateStat, 0, min(limit, len(all)))
	for _, t := range all {
		ts := TemplateStat{ID: t.ID, Template: t.Text, Count: t.Count}
		if st := p.tpl[t.ID]; st != nil {
			ts.Error, ts.FirstSeen, ts.LastSeen = st.errorish, st.first, st.last
			ts.PerMinute = st.lastMinute.base
		}
		if errorsOnly && !ts.Error {
			continue
		}
		out = append(out, ts)
	}
	slices.SortStableFunc(out, func(a, b TemplateStat) int {
		switch {
		case a.Count > b.Count:
			return -1
		case a.Count < b.Count:
			return 1
		}
		return 0
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Save writes the mined templates to StatePath, atomically.
func (p *Pipeline) Save() error {
	if p.opts.StatePath == "" {
		return nil
	}
	p.mu.Lock()
	data, err := p.mine.MarshalBinary()
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encoding log templates: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.opts.StatePath), ".log-templates-*")
	if err != nil {
		return fmt.Errorf("saving log templates: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p.opts.StatePath)
	}
	if err == nil {
		var d *os.File
		if d, err = os.Open(filepath.Dir(p.opts.StatePath)); err == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("saving log templates: %w", err)
	}
	return nil
}

// Run saves the templates every interval and once more when ctx ends.
// Templates learned after the last save are learned again after a crash.
func (p *Pipeline) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := p.Save(); err != nil {
				p.opts.Logger.Error("saving log templates", "err", err)
			}
			return
		case <-t.C:
			if err := p.Save(); err != nil {
				p.opts.Logger.Error("saving log templates", "err", err)
			}
		}
	}
}
