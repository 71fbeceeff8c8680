package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time_zone must not depend on the host's zoneinfo
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	exprparser "github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/internal/yamlfile"
)

// Limits on rule files, so that a broken or hostile file cannot exhaust
// memory at load or CPU per event.
const (
	MaxFileBytes = 1 << 20 // one rule file
	MaxRules     = 10000   // all files together
	MaxExprBytes = 4096    // one if expression
	MaxExprNodes = 1000    // AST nodes of one if expression
	MaxNameBytes = 128     // a rule name
	// MemoryBudget bounds what one evaluation of an expression may
	// allocate, in expr's units (roughly elements of arrays and ranges);
	// an evaluation over it fails and counts as no match. expr's default
	// is 1e6.
	MemoryBudget = 100_000
	maxProblems  = 100 // reported per load; the rest are counted
)

// fileDoc is the top level of a rule file.
type fileDoc struct {
	Rules yaml.Node `yaml:"rules"`
}

// rawRule holds every key a rule may have, as nodes (zero when absent):
// the kind decides which keys are valid and how each is read.
type rawRule struct {
	Name     yaml.Node `yaml:"name"`
	Kind     yaml.Node `yaml:"kind"`
	If       yaml.Node `yaml:"if"`
	Reason   yaml.Node `yaml:"reason"`
	Set      yaml.Node `yaml:"set"`
	By       yaml.Node `yaml:"by"`
	Window   yaml.Node `yaml:"window"`
	CI       yaml.Node `yaml:"ci"`
	Action   yaml.Node `yaml:"action"`
	Start    yaml.Node `yaml:"start"`
	End      yaml.Node `yaml:"end"`
	Schedule yaml.Node `yaml:"schedule"`
	Duration yaml.Node `yaml:"duration"`
	TimeZone yaml.Node `yaml:"time_zone"`
	Severity yaml.Node `yaml:"severity"`
}

// ruleNodes are the keys of a rule, nil when absent.
type ruleNodes struct {
	Name, Kind, If, Reason, Set, By, Window, CI, Action, Start, End, Schedule, Duration, TimeZone, Severity *yaml.Node
}

func ptr(n *yaml.Node) *yaml.Node {
	if n.Kind == 0 {
		return nil
	}
	return n
}

func (r *rawRule) nodes() *ruleNodes {
	return &ruleNodes{Name: ptr(&r.Name), Kind: ptr(&r.Kind), If: ptr(&r.If), Reason: ptr(&r.Reason),
		Set: ptr(&r.Set), By: ptr(&r.By), Window: ptr(&r.Window), CI: ptr(&r.CI), Action: ptr(&r.Action),
		Start: ptr(&r.Start), End: ptr(&r.End), Schedule: ptr(&r.Schedule), Duration: ptr(&r.Duration),
		TimeZone: ptr(&r.TimeZone), Severity: ptr(&r.Severity)}
}

// kindOfKey names the kind each kind-specific key belongs to.
var kindOfKey = map[string]string{
	"reason": KindDrop,
	"set":    KindEnrich,
	"by":     KindGroup, "window": KindGroup,
	"ci": KindMaintenance, "action": KindMaintenance, "start": KindMaintenance, "end": KindMaintenance,
	"schedule": KindMaintenance, "duration": KindMaintenance, "time_zone": KindMaintenance,
	"severity": KindLog,
}

// ruleKeys are the keys a rule may have.
var ruleKeys = map[string]struct{}{"name": {}, "kind": {}, "if": {}, "reason": {}, "set": {}, "by": {}, "window": {},
	"ci": {}, "action": {}, "start": {}, "end": {}, "schedule": {}, "duration": {}, "time_zone": {}, "severity": {}}

var kinds = []string{KindDrop, KindEnrich, KindGroup, KindCorrelate, KindMaintenance, KindLog}

// present lists the kind-specific keys the rule has, in file-format order.
func (r *ruleNodes) present() []string {
	var keys []string
	for _, k := range []struct {
		key string
		n   *yaml.Node
	}{{"reason", r.Reason}, {"set", r.Set}, {"by", r.By}, {"window", r.Window}, {"ci", r.CI},
		{"action", r.Action}, {"start", r.Start}, {"end", r.End}, {"schedule", r.Schedule},
		{"duration", r.Duration}, {"time_zone", r.TimeZone}, {"severity", r.Severity}} {
		if k.n != nil {
			keys = append(keys, k.key)
		}
	}
	return keys
}

// Load reads, validates and compiles rule files. Each pattern is a path or
// a filepath.Glob pattern; a path that does not exist is an error, a glob
// that matches nothing is not. Files are read in sorted order, each once;
// rule order is file order, then position in the file. Every problem of
// every file is reported, as yamlfile.Errors.
func Load(patterns []string) (*Set, error) {
	var files []string
	var errs yamlfile.Errors
	for _, p := range patterns {
		if !strings.ContainsAny(p, `*?[\`) {
			files = append(files, filepath.Clean(p))
			continue
		}
		m, err := filepath.Glob(p)
		if err != nil {
			errs = append(errs, yamlfile.Error{File: p, Msg: fmt.Sprintf("bad glob pattern: %v", err)})
		}
		for _, f := range m {
			if fi, err := os.Stat(f); err == nil && fi.IsDir() {
				continue // rules/* may match a subdirectory
			}
			files = append(files, filepath.Clean(f))
		}
	}
	slices.Sort(files)
	files = slices.Compact(files)

	s := &Set{}
	h := sha256.New()
	seen := map[string]Info{}
	for _, f := range files {
		data, err := readFile(f)
		if err != nil {
			errs = append(errs, yamlfile.Error{File: f, Msg: err.Error()})
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
		h.Write(data)
		fs, err := Parse(f, data)
		if err != nil {
			var fe yamlfile.Errors
			if !errors.As(err, &fe) {
				fe = yamlfile.Errors{{File: f, Msg: err.Error()}}
			}
			errs = append(errs, fe...)
			continue
		}
		for _, r := range fs.all {
			if first, dup := seen[r.Name]; dup {
				errs = append(errs, yamlfile.Error{File: r.File, Line: r.Line,
					Msg: fmt.Sprintf("rule %q: duplicate name, first defined at %s:%d", r.Name, first.File, first.Line)})
				continue
			}
			seen[r.Name] = r.Info
			s.add(r)
		}
	}
	if len(s.all) > MaxRules {
		errs = append(errs, yamlfile.Error{Msg: fmt.Sprintf("%d rules: at most %d allowed", len(s.all), MaxRules)})
	}
	if len(errs) > 0 {
		return nil, capProblems(errs)
	}
	s.hash = hex.EncodeToString(h.Sum(nil)[:8])
	return s, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("is a directory, not a rule file")
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxFileBytes)
	}
	return data, nil
}

func (s *Set) add(r *rule) {
	s.all = append(s.all, r)
	switch r.Kind {
	case KindDrop:
		s.drop = append(s.drop, r)
	case KindEnrich:
		s.enrich = append(s.enrich, r)
	case KindGroup:
		s.group = append(s.group, r)
	case KindCorrelate:
		s.correlate = append(s.correlate, r)
	case KindMaintenance:
		s.maint = append(s.maint, r)
	case KindLog:
		s.log = append(s.log, r)
	}
}

func capProblems(errs yamlfile.Errors) yamlfile.Errors {
	if n := len(errs); n > maxProblems {
		errs = append(errs[:maxProblems:maxProblems], yamlfile.Error{Msg: fmt.Sprintf("and %d more problems", n-maxProblems)})
	}
	return errs
}

// Parse validates and compiles the rules of one file; file names it in
// messages. Every problem is reported, as yamlfile.Errors.
func Parse(file string, data []byte) (*Set, error) {
	if len(data) > MaxFileBytes {
		return nil, yamlfile.Errors{{File: file, Msg: fmt.Sprintf("rule file of %d bytes: at most %d allowed", len(data), MaxFileBytes)}}
	}
	var doc fileDoc
	root, err := yamlfile.Decode(file, data, &doc)
	if err != nil {
		return nil, err
	}
	p := parser{file: file, root: root, names: map[string]int{}}
	s := &Set{}
	seq := resolve(&doc.Rules)
	switch {
	case seq.Kind == 0 || seq.Tag == "!!null":
	case seq.Kind != yaml.SequenceNode:
		p.errorf(yamlfile.LineOf(root, "rules"), "rules: want a list of rules")
	case len(seq.Content) > MaxRules:
		p.errorf(yamlfile.LineOf(root, "rules"), "%d rules: at most %d allowed", len(seq.Content), MaxRules)
	default:
		for i, n := range seq.Content {
			if n = resolve(n); n.Kind != yaml.MappingNode {
				p.errorf(n.Line, "rules[%d]: want a rule: a mapping with name, kind and if", i)
				continue
			}
			if r := p.rule(i, n); r != nil {
				s.add(r)
			}
		}
	}
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b yamlfile.Error) int { return a.Line - b.Line })
		return nil, capProblems(p.errs)
	}
	sum := sha256.Sum256(append([]byte(file+"\x00"), data...))
	s.hash = hex.EncodeToString(sum[:8])
	return s, nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// mappingKeys lists the keys of a mapping node with the line of each,
// including those merged in with <<. It looks at no more than maxKeys
// entries: merges of merges could otherwise hold exponentially many.
func mappingKeys(n *yaml.Node) (keys []string, lines []int) {
	seen := 0
	var walk func(n *yaml.Node, depth int)
	walk = func(n *yaml.Node, depth int) {
		if n = resolve(n); n == nil || n.Kind != yaml.MappingNode || depth > 8 {
			return
		}
		for j := 0; j+1 < len(n.Content) && seen < maxKeys; j += 2 {
			seen++
			k, v := n.Content[j], resolve(n.Content[j+1])
			if k.Value != "<<" {
				keys, lines = append(keys, k.Value), append(lines, k.Line)
				continue
			}
			if v != nil && v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					walk(m, depth+1)
				}
			} else {
				walk(v, depth+1)
			}
		}
	}
	walk(n, 0)
	return keys, lines
}

const maxKeys = 256

type parser struct {
	file  string
	root  *yaml.Node
	names map[string]int // rule name → line
	errs  yamlfile.Errors
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, yamlfile.Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// ruleParse collects the problems of one rule.
type ruleParse struct {
	*parser
	idx    int
	prefix string
	bad    bool
}

func (rp *ruleParse) line(key string) int {
	return yamlfile.LineOf(rp.root, "rules."+strconv.Itoa(rp.idx)+"."+key)
}

// errorf reports a problem at the line of key, a dotted path inside the
// rule ("" for the rule's own line).
func (rp *ruleParse) errorf(key, format string, args ...any) {
	rp.bad = true
	msg := fmt.Sprintf(format, args...)
	path := "rules." + strconv.Itoa(rp.idx)
	if key != "" {
		msg = key + ": " + msg
		path += "." + key
	}
	rp.parser.errorf(yamlfile.LineOf(rp.root, path), "%s%s", rp.prefix, msg)
}

// errorAt reports a problem at the line of path inside the rule.
func (rp *ruleParse) errorAt(path, format string, args ...any) {
	rp.bad = true
	line := yamlfile.LineOf(rp.root, "rules."+strconv.Itoa(rp.idx)+"."+path)
	rp.parser.errorf(line, "%s%s", rp.prefix, fmt.Sprintf(format, args...))
}

// str reads a scalar as a string; null is "".
func (rp *ruleParse) str(key string, n *yaml.Node) (string, bool) {
	if n = resolve(n); n == nil {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		rp.errorf(key, "want a string")
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	return n.Value, true
}

// strList reads a sequence of non-empty, distinct strings.
func (rp *ruleParse) strList(key, what string, n *yaml.Node) []string {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		rp.errorf(key, "want a list of %ss, e.g. [a, b]", what)
		return nil
	}
	var out []string
	for i, e := range n.Content {
		ek := key + "." + strconv.Itoa(i)
		e = resolve(e)
		if e.Kind != yaml.ScalarNode || e.Tag == "!!null" || e.Value == "" {
			rp.errorf(ek, "want a non-empty %s", what)
			continue
		}
		if slices.Contains(out, e.Value) {
			rp.errorf(ek, "%q is listed twice", e.Value)
			continue
		}
		out = append(out, e.Value)
	}
	if len(out) == 0 && len(n.Content) == 0 {
		rp.errorf(key, "at least one %s is required", what)
	}
	return out
}

// duration reads a duration; ok is false after a reported problem.
func (rp *ruleParse) duration(key string, n *yaml.Node) (time.Duration, bool) {
	s, ok := rp.str(key, n)
	if !ok {
		return 0, false
	}
	if s == "0" {
		return 0, true
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		rp.errorf(key, "%q is not a duration such as 90s, 10m or 1h30m", s)
		return 0, false
	}
	return d, true
}

var (
	projectKey = regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)
	priority   = regexp.MustCompile(`^P[1-5]$`)
	cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)
	// cronCheckFrom is where a schedule is checked to fire at all.
	cronCheckFrom = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
)

// knownSeverity reports whether NormalizeSeverity recognises s rather than
// defaulting it to warning.
func knownSeverity(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "warning", "warn", "minor", "medium", "p3":
		return true
	}
	return triage.NormalizeSeverity(s) != triage.SeverityWarning && s != ""
}

// timeLayouts are accepted for start and end without a UTC offset; they are
// read in the rule's time_zone.
var timeLayouts = []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04"}

func (rp *ruleParse) time(key string, n *yaml.Node, loc *time.Location) time.Time {
	s, ok := rp.str(key, n)
	if !ok {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t
	}
	for _, l := range timeLayouts {
		if w, err := time.Parse(l, s); err == nil {
			return inZone(w, loc)
		}
	}
	rp.errorf(key, "%q is not a time such as 2026-11-29T02:00:00Z or 2026-11-29T02:00 (in time_zone)", s)
	return time.Time{}
}

// rule validates and compiles one rule, or returns nil after reporting
// its problems.
func (p *parser) rule(i int, n *yaml.Node) *rule {
	var in rawRule
	_ = n.Decode(&in) // every field is a node: cannot fail
	raw := in.nodes()
	rp := &ruleParse{parser: p, idx: i, prefix: fmt.Sprintf("rules[%d]: ", i)}
	r := &rule{}
	r.File = p.file
	r.Line = n.Line

	name, ok := rp.str("name", raw.Name)
	switch {
	case !ok:
	case name == "":
		rp.errorf("", "name is required")
	case len(name) > MaxNameBytes || !utf8.ValidString(name) || strings.ContainsFunc(name, isControl):
		rp.errorf("name", "want at most %d bytes of printable UTF-8", MaxNameBytes)
	default:
		rp.prefix = fmt.Sprintf("rule %q: ", name)
		r.Name = name
		if first, dup := p.names[name]; dup {
			rp.errorf("name", "duplicate name, first defined at %s:%d", p.file, first)
		} else {
			p.names[name] = r.Line
		}
	}

	keys, lines := mappingKeys(n)
	for j, k := range keys {
		if _, known := ruleKeys[k]; !known {
			rp.bad = true
			p.errorf(lines[j], "%sunknown key %s", rp.prefix, k)
		}
	}

	kind, ok := rp.str("kind", raw.Kind)
	switch {
	case !ok:
	case kind == "":
		rp.errorf("", "kind is required: one of %s", strings.Join(kinds, ", "))
	case !slices.Contains(kinds, kind):
		rp.errorf("kind", "unknown kind %q: want one of %s", kind, strings.Join(kinds, ", "))
	default:
		r.Kind = kind
		for _, k := range raw.present() {
			if want := kindOfKey[k]; want != kind {
				rp.errorf(k, "not valid in a %s rule (only in %s rules)", kind, want)
			}
		}
	}

	// The condition.
	src, ok := rp.str("if", raw.If)
	switch {
	case !ok:
	case raw.If == nil || strings.TrimSpace(src) == "":
		if kind == KindDrop || kind == KindEnrich || kind == KindCorrelate || kind == KindLog {
			rp.errorf("", "if is required in a %s rule", kind)
		} else if raw.If != nil {
			rp.errorf("if", "empty expression: leave if out to match every alert")
		}
	case len(src) > MaxExprBytes:
		rp.errorf("if", "expression of %d bytes: at most %d allowed", len(src), MaxExprBytes)
	default:
		prog, err := compile(src, kind)
		if err != nil {
			msg := exprMessage(err)
			if kind != KindCorrelate && strings.Contains(msg, "unknown name incident") {
				msg += "; incident is only known in correlate rules"
			}
			rp.errorf("if", "%s", msg)
		}
		r.prog = prog
		if kind == KindCorrelate && err == nil {
			r.keys = equalityKeys(src)
		}
	}

	switch r.Kind {
	case KindDrop:
		r.reason, _ = rp.str("reason", raw.Reason)
	case KindEnrich:
		rp.enrich(r, raw.Set)
	case KindGroup:
		if raw.By == nil {
			rp.errorf("", "by is required in a group rule: the labels to group by")
		} else {
			r.by = slices.Clip(rp.strList("by", "label name", raw.By))
		}
		if raw.Window != nil {
			var ok bool
			if r.window, ok = rp.duration("window", raw.Window); ok && r.window < 0 {
				rp.errorf("window", "%s is negative", raw.Window.Value)
			}
		}
	case KindMaintenance:
		rp.maintenance(r, raw)
	case KindLog:
		r.severity = triage.SeverityWarning
		if raw.Severity != nil {
			if sev, ok := rp.str("severity", raw.Severity); ok {
				if !knownSeverity(sev) {
					rp.errorf("severity", "%q is not critical, error, warning or info", sev)
				}
				r.severity = triage.NormalizeSeverity(sev)
			}
		}
	}
	if rp.bad {
		return nil
	}
	return r
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func (rp *ruleParse) enrich(r *rule, n *yaml.Node) {
	if n = resolve(n); n == nil {
		rp.errorf("", "set is required in an enrich rule")
		return
	}
	if n.Kind != yaml.MappingNode {
		rp.errorf("set", "want a mapping of labels, severity, priority, service, assignment_group or jira_project")
		return
	}
	var in struct {
		Labels          yaml.Node `yaml:"labels"`
		Severity        yaml.Node `yaml:"severity"`
		Priority        yaml.Node `yaml:"priority"`
		Service         yaml.Node `yaml:"service"`
		AssignmentGroup yaml.Node `yaml:"assignment_group"`
		JiraProject     yaml.Node `yaml:"jira_project"`
	}
	keys, lines := mappingKeys(n)
	for j, k := range keys {
		switch k {
		case "labels", "severity", "priority", "service", "assignment_group", "jira_project":
		default:
			rp.bad = true
			rp.parser.errorf(lines[j], "%sset: unknown key %s", rp.prefix, k)
		}
	}
	_ = n.Decode(&in) // every field is a node: cannot fail
	set := struct{ Labels, Severity, Priority, Service, AssignmentGroup, JiraProject *yaml.Node }{
		ptr(&in.Labels), ptr(&in.Severity), ptr(&in.Priority), ptr(&in.Service), ptr(&in.AssignmentGroup), ptr(&in.JiraProject)}
	if set.Labels == nil && set.Severity == nil && set.Priority == nil && set.Service == nil &&
		set.AssignmentGroup == nil && set.JiraProject == nil {
		rp.errorf("set", "set nothing: want labels, severity, priority, service, assignment_group or jira_project")
	}
	if ln := resolve(set.Labels); ln != nil {
		if ln.Kind != yaml.MappingNode || ln.Decode(&r.labels) != nil {
			rp.errorf("set.labels", "want a mapping of label names to values")
		}
		for k, v := range r.labels {
			if k == "" || len(k) > 256 || !utf8.ValidString(k) {
				rp.errorf("set.labels", "invalid label name %q", k)
			}
			if len(v) > triage.MaxLabelBytes {
				rp.errorf("set.labels."+k, "value of %d bytes: at most %d allowed", len(v), triage.MaxLabelBytes)
			}
		}
	}
	if s, ok := rp.str("set.severity", set.Severity); ok && set.Severity != nil {
		if !knownSeverity(s) {
			rp.errorf("set.severity", "%q is not a known severity: want critical, error, warning or info", s)
		}
		r.severity = triage.NormalizeSeverity(s)
	}
	if s, ok := rp.str("set.priority", set.Priority); ok && set.Priority != nil {
		r.routing.Priority = strings.ToUpper(s)
		if !priority.MatchString(r.routing.Priority) {
			rp.errorf("set.priority", "%q is not a priority P1..P5", s)
		}
	}
	if s, ok := rp.str("set.jira_project", set.JiraProject); ok && set.JiraProject != nil {
		r.routing.Project = s
		if !projectKey.MatchString(s) {
			rp.errorf("set.jira_project", "%q is not a Jira project key (capital letter, then capitals, digits or _)", s)
		}
	}
	for _, f := range []struct {
		key string
		n   *yaml.Node
		dst *string
	}{{"set.service", set.Service, &r.routing.Service}, {"set.assignment_group", set.AssignmentGroup, &r.routing.AssignmentGroup}} {
		if s, ok := rp.str(f.key, f.n); ok && f.n != nil {
			if s == "" {
				rp.errorf(f.key, "empty")
			}
			*f.dst = s
		}
	}
}

func (rp *ruleParse) maintenance(r *rule, raw *ruleNodes) {
	if raw.CI == nil && raw.If == nil {
		rp.errorf("", "a maintenance rule needs ci, if or both: without a scope it would match every alert")
	}
	if raw.CI != nil {
		r.cis = rp.strList("ci", "CI id", raw.CI)
		for j := range r.cis {
			r.ciLines = append(r.ciLines, yamlfile.LineOf(rp.root, fmt.Sprintf("rules.%d.ci.%d", rp.idx, j)))
		}
	}
	if s, ok := rp.str("action", raw.Action); ok {
		switch s {
		case "", "suppress":
		case "annotate":
			r.annotate = true
		default:
			rp.errorf("action", "%q is not suppress or annotate", s)
		}
	}
	loc := time.UTC
	if tz, ok := rp.str("time_zone", raw.TimeZone); ok && raw.TimeZone != nil {
		l, err := time.LoadLocation(tz)
		switch {
		case tz == "" || tz == "Local" || err != nil:
			rp.errorf("time_zone", "unknown time zone %q: want an IANA name such as Europe/Berlin or UTC", tz)
		default:
			loc = l
		}
	}
	oneOff := raw.Start != nil || raw.End != nil
	switch {
	case raw.Schedule != nil && oneOff:
		rp.errorf("schedule", "a window is either recurring (schedule, duration) or one-off (start, end), not both")
	case raw.Schedule != nil:
		spec, _ := rp.str("schedule", raw.Schedule)
		if sched, err := parseCron(spec); err != nil {
			rp.errorf("schedule", "invalid cron expression %q: %v", spec, err)
		} else {
			r.sched, r.loc = sched, loc
		}
		if raw.Duration == nil {
			rp.errorf("", "duration is required with schedule: how long each window lasts")
		} else if d, ok := rp.duration("duration", raw.Duration); ok && d <= 0 {
			rp.errorf("duration", "must be positive")
		} else {
			r.dur = d
		}
	case oneOff:
		if raw.Start == nil || raw.End == nil {
			rp.errorf("", "a one-off window needs both start and end")
			break
		}
		r.start = rp.time("start", raw.Start, loc)
		r.end = rp.time("end", raw.End, loc)
		if !r.start.IsZero() && !r.end.IsZero() && !r.end.After(r.start) {
			rp.errorf("end", "%s is not after start %s", r.end.Format(time.RFC3339), r.start.Format(time.RFC3339))
		}
		if raw.Duration != nil {
			rp.errorf("duration", "only with schedule: a one-off window ends at end")
		}
	default:
		rp.errorf("", "a maintenance rule needs start and end, or schedule and duration")
	}
}

func parseCron(spec string) (s *cron.SpecSchedule, err error) {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, errors.New("set time_zone instead of a TZ= prefix")
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%v", r)
		}
	}()
	sched, err := cronParser.Parse(spec)
	if err != nil {
		return nil, err
	}
	s, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return nil, errors.New("want 5 fields: minute hour day-of-month month day-of-week")
	}
	s.Location = time.UTC // stands in for the wall clock of time_zone
	if s.Next(cronCheckFrom).IsZero() {
		return nil, errors.New("it never fires")
	}
	return s, nil
}

// compile compiles an if expression against the typed environment of its
// kind. It does not panic, whatever the source.
func compile(src string, kind string) (prog *vm.Program, err error) {
	defer func() {
		if r := recover(); r != nil {
			prog, err = nil, fmt.Errorf("cannot compile: %v", r)
		}
	}()
	// Compiled against the struct, not a pointer, expr resolves field
	// paths at compile time (OpLoadField); Admit and the others pass a
	// pointer, which FetchField dereferences, so the env is not copied.
	var env any = admitEnv{}
	switch kind {
	case KindCorrelate:
		env = correlateEnv{}
	case KindLog:
		env = LogEnv{}
	}
	var nested nestedPredicates
	prog, err = expr.Compile(src, expr.Env(env), expr.AsBool(), expr.MaxNodes(MaxExprNodes),
		expr.DisableBuiltin("now"), expr.Timezone("UTC"), expr.Patch(&nested))
	if err == nil && nested.found {
		return nil, errors.New("a predicate inside a predicate (e.g. any(..., all(...))): " +
			"their costs multiply, so rules may not nest them")
	}
	return prog, err
}

// nestedPredicates finds a predicate (the closure of all, any, filter,
// map, count, ...) inside another. The expr VM bounds memory, not steps:
// one loop is bounded by the memory budget, a loop in a loop is not.
type nestedPredicates struct{ found bool }

func (v *nestedPredicates) Visit(n *ast.Node) {
	p, ok := (*n).(*ast.PredicateNode)
	if !ok || v.found {
		return
	}
	var inner predicateCounter
	ast.Walk(&p.Node, &inner)
	v.found = inner.n > 0
}

type predicateCounter struct{ n int }

func (c *predicateCounter) Visit(n *ast.Node) {
	if _, ok := (*n).(*ast.PredicateNode); ok {
		c.n++
	}
}

// envNames replaces the Go types of the environment in expr's messages
// with the names rules use.
var envNames = strings.NewReplacer("rules.LogEnv", "the log record", "type rules.alertEnv", "alert", "type rules.ciEnv", "ci",
	"type rules.incidentEnv", "incident", "rules.alertEnv", "alert", "rules.ciEnv", "ci",
	"rules.incidentEnv", "incident", "rules.admitEnv", "the environment", "rules.correlateEnv", "the environment")

// exprMessage is expr's error on one line, with the position in the
// expression.
func exprMessage(err error) string {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return strings.ReplaceAll(err.Error(), "\n", " ")
	}
	msg := envNames.Replace(strings.ReplaceAll(fe.Message, "\n", " "))
	switch {
	case fe.Line > 1:
		return fmt.Sprintf("%s (line %d, column %d of the expression)", msg, fe.Line, fe.Column+1)
	case fe.Line == 1:
		return fmt.Sprintf("%s (column %d)", msg, fe.Column+1)
	}
	return msg
}

// CheckCIs reports maintenance windows scoped to CI ids for which known
// returns false, as yamlfile.Errors; nil when all are known. `triage
// check` and reload call it with the CMDB.
func (s *Set) CheckCIs(known func(id string) bool) error {
	if s == nil {
		return nil
	}
	var errs yamlfile.Errors
	for _, r := range s.maint {
		for j, id := range r.cis {
			if !known(id) {
				errs = append(errs, yamlfile.Error{File: r.File, Line: r.ciLines[j],
					Msg: fmt.Sprintf("rule %q: ci: %q is not a CI of the CMDB", r.Name, id)})
			}
		}
	}
	if len(errs) > 0 {
		return capProblems(errs)
	}
	return nil
}

// equalityKeys finds the labels X that a correlate condition requires to
// be equal on both sides, `alert.labels.X == incident.labels.X`, as
// top-level && terms. The correlator then only tries the rule against
// incidents whose common label X has the alert's value. Empty when there
// is no such term.
func equalityKeys(src string) []string {
	tree, err := exprparser.Parse(src)
	if err != nil {
		return nil
	}
	var keys []string
	var find func(n ast.Node)
	find = func(n ast.Node) {
		b, ok := n.(*ast.BinaryNode)
		if !ok {
			return
		}
		switch b.Operator {
		case "&&", "and":
			find(b.Left)
			find(b.Right)
		case "==":
			l, lok := labelOf(b.Left)
			r, rok := labelOf(b.Right)
			if lok && rok && l.label == r.label && l.root != r.root && !slices.Contains(keys, l.label) {
				keys = append(keys, l.label)
			}
		}
	}
	find(tree.Node)
	return keys
}

type labelRef struct{ root, label string }

// labelOf matches alert.labels.X, alert.labels["X"] and the same on incident.
func labelOf(n ast.Node) (labelRef, bool) {
	m, ok := n.(*ast.MemberNode)
	if !ok || m.Optional {
		return labelRef{}, false
	}
	prop, ok := m.Property.(*ast.StringNode)
	if !ok {
		return labelRef{}, false
	}
	inner, ok := m.Node.(*ast.MemberNode)
	if !ok {
		return labelRef{}, false
	}
	field, ok := inner.Property.(*ast.StringNode)
	if !ok || field.Value != "labels" {
		return labelRef{}, false
	}
	id, ok := inner.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "alert" && id.Value != "incident" {
		return labelRef{}, false
	}
	return labelRef{root: id.Value, label: prop.Value}, true
}
