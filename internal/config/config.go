// Package config is Triage's configuration file: YAML, snake_case keys,
// strict decoding (an unknown key is an error), defaults overlaid by the
// file, and validation whose errors point at file:line.
package config

import (
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/triage-dev/triage/internal/yamlfile"
	"github.com/triage-dev/triage/metrics/sla"
)

// Config is the whole configuration. See the README for every key.
type Config struct {
	Listen      string      `yaml:"listen"`
	DataDir     string      `yaml:"data_dir"`
	Auth        Auth        `yaml:"auth"`
	HTTP        HTTP        `yaml:"http"`
	Correlation Correlation `yaml:"correlation"`
	CMDB        CMDB        `yaml:"cmdb"`
	Rules       Rules       `yaml:"rules"`
	Store       Store       `yaml:"store"`
	Kafka       Kafka       `yaml:"kafka"`
	Logs        Logs        `yaml:"logs"`
	Jira        Jira        `yaml:"jira"`
	Webhooks    []Webhook   `yaml:"webhooks"`
	Outbox      Outbox      `yaml:"outbox"`
	SLA         sla.Config  `yaml:"sla"`
	XLA         XLA         `yaml:"xla"`
	Problems    Problems    `yaml:"problems"`
	ClickHouse  ClickHouse  `yaml:"clickhouse"`
	Log         Log         `yaml:"log"`
}

// Logs configures log mining of the Kafka logs topic (kafka.topics.logs).
type Logs struct {
	// Fields name the JSON fields of a log record, tried in order.
	MessageFields []string `yaml:"message_fields"`
	TimeFields    []string `yaml:"time_fields"`
	LevelFields   []string `yaml:"level_fields"`
	LabelFields   []string `yaml:"label_fields"`
	// MaxTemplates caps the templates held; the least recently seen go.
	MaxTemplates int `yaml:"max_templates"`
	// Masks replace matches of a regular expression by <NAME> before
	// mining, for variable parts the built-in masks do not know.
	Masks []LogMask `yaml:"masks"`
	// NewErrorTemplates raises an event for each new error template.
	NewErrorTemplates bool     `yaml:"new_error_templates"`
	Spike             LogSpike `yaml:"spike"`
	// EventTTL is how long a log event stays firing unless raised again.
	EventTTL Duration `yaml:"event_ttl"`
}

// LogMask is a user mask.
type LogMask struct {
	Name  string `yaml:"name"`
	Regex string `yaml:"regex"`
}

// LogSpike configures error spike events; factor 0 turns them off.
type LogSpike struct {
	Interval Duration `yaml:"interval"`
	Factor   float64  `yaml:"factor"`
	MinCount int      `yaml:"min_count"`
}

// Kafka configures the Kafka consumers. Without brokers, Kafka is off.
type Kafka struct {
	Brokers []string    `yaml:"brokers"`
	Group   string      `yaml:"group"`
	Topics  KafkaTopics `yaml:"topics"`
	// MaxBatch caps the messages read before they are applied and committed.
	MaxBatch int `yaml:"max_batch"`
	// BatchWait is how long a batch waits for more messages.
	BatchWait Duration  `yaml:"batch_wait"`
	TLS       KafkaTLS  `yaml:"tls"`
	SASL      KafkaSASL `yaml:"sasl"`
	// CommitInterval is how often offsets are committed to Kafka; 0 commits
	// after every batch (use 0 when several processes share the group, so
	// that a partition moving between them replays as little as possible).
	CommitInterval Duration `yaml:"commit_interval"`
	// Publish writes events received over HTTP to the alerts topic instead
	// of applying them in place: every process consuming the topic shares
	// the stream.
	Publish bool `yaml:"publish"`
}

// KafkaTLS configures TLS to the brokers.
type KafkaTLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// KafkaSASL configures SASL authentication: PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512. The password comes from password_file or the
// TRIAGE_KAFKA_PASSWORD environment variable.
type KafkaSASL struct {
	Mechanism    string `yaml:"mechanism"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// KafkaTopics names the topics.
type KafkaTopics struct {
	Alerts     string `yaml:"alerts"`
	Logs       string `yaml:"logs"`
	DeadLetter string `yaml:"dead_letter"`
}

// Enabled reports whether Kafka is configured.
func (k Kafka) Enabled() bool { return len(k.Brokers) > 0 }

// Auth configures the bearer token required on the API and ingest endpoints.
type Auth struct {
	// Token is the token itself; prefer TokenFile or the TRIAGE_AUTH_TOKEN
	// environment variable so that it stays out of the config file.
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// AllowUnauthenticated lets serve listen beyond loopback without a token.
	AllowUnauthenticated bool `yaml:"allow_unauthenticated"`
}

// HTTP configures the HTTP server.
type HTTP struct {
	MaxBodyBytes        int64 `yaml:"max_body_bytes"`
	MaxEventsPerRequest int   `yaml:"max_events_per_request"`
	// Pprof serves Go's runtime profiles at /debug/pprof/ (behind the
	// bearer token, like the API), for profiling a running daemon.
	Pprof bool `yaml:"pprof"`
}

// Correlation configures deduplication, grouping and the incident lifecycle.
type Correlation struct {
	Window       Duration `yaml:"window"`
	GroupBy      []string `yaml:"group_by"`
	ResolveAfter Duration `yaml:"resolve_after"`
	// ResolveTimeout is Alertmanager's resolve_timeout for /api/v2/alerts
	// posted without endsAt.
	ResolveTimeout Duration `yaml:"resolve_timeout"`
	ReopenWindow   Duration `yaml:"reopen_window"`
	CILabels       []string `yaml:"ci_labels"`
	// MaxHops is how far apart two CIs may be in the topology for their
	// alerts to share an incident (0: the same CI only).
	MaxHops int `yaml:"max_hops"`
	// Relations are the CMDB relation types failures travel along.
	Relations []string `yaml:"relations"`
	// MinAlerts holds a new incident until it has this many alerts.
	MinAlerts int `yaml:"min_alerts"`
	// MaxIncidentAge stops an incident from absorbing new alerts once it
	// has been open this long (0: no limit).
	MaxIncidentAge Duration `yaml:"max_incident_age"`
	// Flapping marks an alert that changes state Changes times within
	// Window; its changes then neither resolve nor reopen its incident.
	Flapping Flapping `yaml:"flapping"`
	// Priority is the impact × urgency matrix; without a matrix an
	// incident's priority follows its severity.
	Priority PriorityMatrix `yaml:"priority"`
}

// PriorityMatrix configures ITIL priorities (see correlate.PriorityMatrix).
type PriorityMatrix struct {
	TierAttribute string                       `yaml:"tier_attribute"`
	Tiers         map[string]string            `yaml:"tiers"`
	Services      map[string]int               `yaml:"services"`
	Urgency       map[string]string            `yaml:"urgency"`
	Matrix        map[string]map[string]string `yaml:"matrix"`
}

// Flapping configures flap detection; Changes 0 turns it off.
type Flapping struct {
	Changes int      `yaml:"changes"`
	Window  Duration `yaml:"window"`
}

// CMDB configures the topology. Without a file, the topology is the one
// last imported with PUT /api/v1/cmdb (kept in the data directory).
type CMDB struct {
	File string `yaml:"file"`
	// ReloadInterval is how often the file is checked for changes (0: only
	// on SIGHUP).
	ReloadInterval Duration `yaml:"reload_interval"`
}

// Rules configures the rule files: paths or globs.
type Rules struct {
	Files []string `yaml:"files"`
	// ReloadInterval is how often the files are checked for changes (0:
	// only on SIGHUP).
	ReloadInterval Duration `yaml:"reload_interval"`
}

// Store configures the embedded state store.
type Store struct {
	EventRetention     Duration `yaml:"event_retention"`
	MaxBatch           int      `yaml:"max_batch"`
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Default is the configuration serve runs on without a file.
func Default() *Config {
	return &Config{
		Listen:  "127.0.0.1:9400",
		DataDir: "./triage-data",
		HTTP:    HTTP{MaxBodyBytes: 16 << 20, MaxEventsPerRequest: 20000},
		Correlation: Correlation{
			Window:         Duration(10 * time.Minute),
			GroupBy:        []string{"alertname", "service"},
			ResolveAfter:   Duration(5 * time.Minute),
			ResolveTimeout: Duration(5 * time.Minute),
			ReopenWindow:   Duration(30 * time.Minute),
			CILabels:       []string{"ci", "instance", "host", "hostname", "node", "device", "pod", "service", "job"},
			MaxHops:        3,
			Relations:      []string{"depends_on", "runs_on", "connected_to"},
			MinAlerts:      1,
			Flapping:       Flapping{Changes: 0, Window: Duration(10 * time.Minute)},
		},
		CMDB:  CMDB{ReloadInterval: Duration(10 * time.Second)},
		Rules: Rules{ReloadInterval: Duration(10 * time.Second)},
		Kafka: Kafka{Group: "triage", MaxBatch: 5000, BatchWait: Duration(50 * time.Millisecond), CommitInterval: Duration(time.Second),
			Topics: KafkaTopics{Alerts: "triage.alerts", Logs: "triage.logs", DeadLetter: "triage.dlq"}},
		Store: Store{EventRetention: 0, MaxBatch: 20000, CheckpointInterval: Duration(time.Second)},
		Logs: Logs{
			MessageFields:     []string{"message", "msg", "log"},
			TimeFields:        []string{"@timestamp", "timestamp", "time", "ts"},
			LevelFields:       []string{"level", "severity", "lvl", "log.level"},
			LabelFields:       []string{"service", "app", "host", "hostname", "instance", "pod", "namespace", "container", "job", "env", "cluster", "node", "ci"},
			MaxTemplates:      10000,
			NewErrorTemplates: true,
			Spike:             LogSpike{Interval: Duration(time.Minute), Factor: 3, MinCount: 20},
			EventTTL:          Duration(15 * time.Minute),
		},
		Problems:   Problems{Enabled: true, Threshold: 3, Window: Duration(30 * 24 * time.Hour), By: []string{"root_ci", "signature"}},
		ClickHouse: ClickHouse{Database: "triage", BatchRows: 50000, Interval: Duration(time.Second)},
		Log:        Log{Level: "info", Format: "text"},
	}
}

// Error is one problem at a position of the config file.
type Error = yamlfile.Error

// Errors is every problem found in a config file.
type Errors = yamlfile.Errors

// fieldError is a validation problem at a dotted key path.
type fieldError struct {
	path string
	msg  string
}

// Validate checks values and cross-references. Paths are relative to the
// config file's directory when they are not absolute.
func (c *Config) Validate() []fieldError {
	var errs []fieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, fieldError{path, fmt.Sprintf(format, args...)})
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen", "%q is not host:port: %v", c.Listen, err)
	}
	if c.DataDir == "" {
		add("data_dir", "must not be empty")
	}
	if c.Auth.Token != "" && c.Auth.TokenFile != "" {
		add("auth.token_file", "set either auth.token or auth.token_file, not both")
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		add("http.max_body_bytes", "%d is below the minimum of 1024", c.HTTP.MaxBodyBytes)
	}
	if c.HTTP.MaxEventsPerRequest < 1 {
		add("http.max_events_per_request", "must be at least 1")
	}
	k := c.Correlation
	if k.Window <= 0 {
		add("correlation.window", "must be positive")
	}
	if len(k.GroupBy) == 0 {
		add("correlation.group_by", "must name at least one label")
	}
	for i, l := range k.GroupBy {
		if !labelName.MatchString(l) {
			add(fmt.Sprintf("correlation.group_by.%d", i), "%q is not a label name", l)
		}
	}
	for i, l := range k.CILabels {
		if !labelName.MatchString(l) {
			add(fmt.Sprintf("correlation.ci_labels.%d", i), "%q is not a label name", l)
		}
	}
	if k.ResolveAfter < 0 {
		add("correlation.resolve_after", "must not be negative")
	}
	if k.ResolveTimeout < 0 {
		add("correlation.resolve_timeout", "must not be negative (0: never)")
	}
	if k.ReopenWindow < 0 {
		add("correlation.reopen_window", "must not be negative")
	}
	if k.MaxHops < 0 || k.MaxHops > 10 {
		add("correlation.max_hops", "must be between 0 and 10")
	}
	for i, r := range k.Relations {
		switch r {
		case "depends_on", "runs_on", "connected_to", "member_of":
		default:
			add(fmt.Sprintf("correlation.relations.%d", i), "%q is not depends_on, runs_on, connected_to or member_of", r)
		}
	}
	if k.MinAlerts < 1 {
		add("correlation.min_alerts", "must be at least 1")
	}
	if k.MaxIncidentAge < 0 {
		add("correlation.max_incident_age", "must not be negative (0: no limit)")
	}
	if k.Flapping.Changes < 0 || k.Flapping.Changes == 1 {
		add("correlation.flapping.changes", "must be 0 (off) or at least 2")
	}
	if k.Flapping.Changes > 0 && k.Flapping.Window <= 0 {
		add("correlation.flapping.window", "must be positive")
	}
	if c.CMDB.ReloadInterval < 0 {
		add("cmdb.reload_interval", "must not be negative (0: only on SIGHUP)")
	}
	if c.Rules.ReloadInterval < 0 {
		add("rules.reload_interval", "must not be negative (0: only on SIGHUP)")
	}
	if c.Store.EventRetention < 0 {
		add("store.event_retention", "must not be negative (0 keeps no event log)")
	}
	if c.Store.CheckpointInterval < Duration(10*time.Millisecond) || c.Store.CheckpointInterval > Duration(time.Minute) {
		add("store.checkpoint_interval", "must be between 10ms and 1m")
	}
	if c.Store.MaxBatch < 1 {
		add("store.max_batch", "must be at least 1")
	}
	if kc := c.Kafka; kc.Enabled() {
		for i, b := range kc.Brokers {
			if _, _, err := net.SplitHostPort(b); err != nil {
				add(fmt.Sprintf("kafka.brokers.%d", i), "%q is not host:port", b)
			}
		}
		if kc.Group == "" {
			add("kafka.group", "must not be empty")
		}
		if kc.Topics.Alerts == "" && kc.Topics.Logs == "" {
			add("kafka.topics", "name an alerts or a logs topic")
		}
		if kc.Publish && kc.Topics.Alerts == "" {
			add("kafka.publish", "needs topics.alerts")
		}
		if kc.Topics.DeadLetter == "" {
			add("kafka.topics.dead_letter", "must not be empty: undecodable messages go there")
		}
		if kc.MaxBatch < 1 || kc.MaxBatch > 100000 {
			add("kafka.max_batch", "must be between 1 and 100000")
		}
		if kc.BatchWait <= 0 {
			add("kafka.batch_wait", "must be positive")
		}
		if kc.CommitInterval < 0 {
			add("kafka.commit_interval", "must not be negative (0: after every batch)")
		}
		if (kc.TLS.CertFile == "") != (kc.TLS.KeyFile == "") {
			add("kafka.tls.cert_file", "cert_file and key_file go together")
		}
		switch strings.ToUpper(kc.SASL.Mechanism) {
		case "":
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
			if kc.SASL.Username == "" {
				add("kafka.sasl.username", "required with a SASL mechanism")
			}
		default:
			add("kafka.sasl.mechanism", "%q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", kc.SASL.Mechanism)
		}
	}
	lg := c.Logs
	if len(lg.MessageFields) == 0 {
		add("logs.message_fields", "must name at least one field")
	}
	if lg.MaxTemplates < 100 || lg.MaxTemplates > 10_000_000 {
		add("logs.max_templates", "must be between 100 and 10000000")
	}
	for i, m := range lg.Masks {
		if !maskName.MatchString(m.Name) {
			add(fmt.Sprintf("logs.masks.%d.name", i), "%q is not a mask name (letters, digits, _)", m.Name)
		}
		switch re, err := regexp.Compile(m.Regex); {
		case err != nil:
			add(fmt.Sprintf("logs.masks.%d.regex", i), "not a regular expression: %v", err)
		case re.MatchString(""):
			add(fmt.Sprintf("logs.masks.%d.regex", i), "%q matches the empty string: it would mask between every character", m.Regex)
		}
	}
	if lg.Spike.Interval <= 0 {
		add("logs.spike.interval", "must be positive")
	}
	if lg.Spike.Factor < 0 || math.IsNaN(lg.Spike.Factor) || math.IsInf(lg.Spike.Factor, 0) {
		add("logs.spike.factor", "must not be negative (0: no spike events)")
	}
	if lg.Spike.MinCount < 1 {
		add("logs.spike.min_count", "must be at least 1")
	}
	if lg.EventTTL <= 0 {
		add("logs.event_ttl", "must be positive")
	}
	c.validateConnectors(add)
	c.validateITIL(add)
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format", "%q is not text or json", c.Log.Format)
	}
	return errs
}

// labelName accepts what ingest accepts: any non-empty UTF-8 name (e.g.
// service.name, as Prometheus 3 allows).
var labelName = regexp.MustCompile(`^\PC{1,256}$`)

var maskName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Load reads, decodes and validates a config file. Every error it returns
// is an Errors value with file:line positions.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	return Parse(path, data)
}

// Parse decodes and validates config data read from file (used in messages
// and to resolve relative paths).
func Parse(file string, data []byte) (*Config, error) {
	c := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err == nil {
		if errs := notYet(file, &root); len(errs) > 0 {
			return nil, errs
		}
	}
	rootp, err := yamlfile.Decode(file, data, c)
	if err != nil {
		return nil, err
	}
	root = *rootp
	var errs Errors
	for _, fe := range c.Validate() {
		errs = append(errs, Error{File: file, Line: yamlfile.LineOf(&root, fe.path), Msg: fe.path + ": " + fe.msg})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	dir := filepath.Dir(file)
	c.DataDir = resolve(dir, c.DataDir)
	c.Auth.TokenFile = resolve(dir, c.Auth.TokenFile)
	c.CMDB.File = resolve(dir, c.CMDB.File)
	for i, f := range c.Rules.Files {
		c.Rules.Files[i] = resolve(dir, f)
	}
	for i := range c.Webhooks {
		c.Webhooks[i].SecretFile = resolve(dir, c.Webhooks[i].SecretFile)
	}
	for _, p := range []*string{&c.Kafka.TLS.CAFile, &c.Kafka.TLS.CertFile, &c.Kafka.TLS.KeyFile, &c.Kafka.SASL.PasswordFile,
		&c.Jira.TokenFile, &c.Jira.WebhookSecretFile, &c.ClickHouse.PasswordFile} {
		*p = resolve(dir, *p)
	}
	if c.Auth.TokenFile != "" {
		if _, err := os.Stat(c.Auth.TokenFile); err != nil {
			return nil, Errors{{File: file, Line: yamlfile.LineOf(&root, "auth.token_file"), Msg: "auth.token_file: " + err.Error()}}
		}
	}
	return c, nil
}

func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// planned are the keys of the design's config that this version does not
// implement yet: a clearer error than "unknown key".
var planned = map[string]string{}

func notYet(file string, root *yaml.Node) Errors {
	var errs Errors
	for key, what := range planned {
		if line := yamlfile.LineOf(root, key); line > 0 && yamlfile.PathAt(root, line) == key {
			errs = append(errs, Error{File: file, Line: line,
				Msg: fmt.Sprintf("%s: %s is not in this version of Triage yet; remove the key", key, what)})
		}
	}
	slices.SortFunc(errs, func(a, b Error) int { return a.Line - b.Line })
	return errs
}

// Duration is a time.Duration written as "90s", "10m", "1h30m" or "0".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		// A TypeError lets the decoder go on and report every problem.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration such as 90s or 10m", n.Line)}}
	}
	if s == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration such as 90s, 10m or 1h30m", n.Line, s)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Secret is a string that never prints.
type Secret string

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// MarshalYAML hides the value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON hides the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// ResolveToken returns the API bearer token: auth.token, else the contents of
// auth.token_file, else the TRIAGE_AUTH_TOKEN environment variable; empty
// when none is set.
func (a Auth) ResolveToken(getenv func(string) string) (Secret, error) {
	switch {
	case a.Token != "":
		return a.Token, nil
	}
	t, err := ReadSecret(a.TokenFile, "TRIAGE_AUTH_TOKEN", getenv)
	if err != nil {
		return "", fmt.Errorf("auth.token_file: %w", err)
	}
	if t == "" && a.TokenFile != "" {
		return "", fmt.Errorf("auth.token_file %s is empty", a.TokenFile)
	}
	return Secret(t), nil
}

// ReadSecret reads a secret, trimmed: the content of file when it is set,
// else the environment variable env (either may be empty: ""). Every
// secret of the config (tokens, passwords, webhook secrets) is read here,
// never from the config itself, and never logged.
func ReadSecret(file, env string, getenv func(string) string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading secret: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case env != "":
		return strings.TrimSpace(getenv(env)), nil
	}
	return "", nil
}
