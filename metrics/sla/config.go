package sla

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/triage-dev/triage/internal/yamlfile"
)

// Config is the sla section of the configuration file:
//
//	calendars:
//	  - name: eu-business
//	    time_zone: Europe/Berlin
//	    days: [mon-fri]                  # or [mon, tue, wed, thu, fri]
//	    hours: ["08:00-12:00", "13:00-17:00"]   # or ["08:00-12:00,13:00-17:00"]
//	    holidays: ["2026-12-25", {date: "2027-01-01", name: New Year}]
//	policies:
//	  - name: p1-24x7
//	    priorities: [P1]                 # empty: any priority
//	    services: []                     # empty: any service
//	    calendar: 24x7                   # built in: always open
//	    acknowledge: 15m
//	    resolve: 4h
//	    warn_at: [0.75, 0.9]             # the default
type Config struct {
	Calendars []CalendarConfig `yaml:"calendars"`
	Policies  []PolicyConfig   `yaml:"policies"`
}

// CalendarConfig is one calendar. Hours apply to every day of Days;
// holidays close a whole local date.
type CalendarConfig struct {
	Name string `yaml:"name"`
	// TimeZone is an IANA zone name such as Europe/Berlin, or UTC.
	TimeZone string `yaml:"time_zone"`
	// Days are mon..sun (or monday..sunday), and ranges such as mon-fri.
	Days []string `yaml:"days"`
	// Hours are HH:MM-HH:MM ranges, several per item separated by commas;
	// 24:00 ends a range at midnight.
	Hours    []string        `yaml:"hours"`
	Holidays []HolidayConfig `yaml:"holidays"`
}

// HolidayConfig is a holiday: "2026-12-25" or {date: "2026-12-25", name: Christmas}.
type HolidayConfig struct {
	Date string `yaml:"date"`
	Name string `yaml:"name"`
}

// UnmarshalYAML accepts a date or a mapping with date and name.
func (h *HolidayConfig) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*h = HolidayConfig{Date: n.Value}
		return nil
	case yaml.MappingNode:
		var out HolidayConfig
		var errs []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			var dst *string
			switch k.Value {
			case "date":
				dst = &out.Date
			case "name":
				dst = &out.Name
			default:
				errs = append(errs, fmt.Sprintf("line %d: unknown key %s (a holiday has date and name)", k.Line, k.Value))
				continue
			}
			if v.Kind != yaml.ScalarNode {
				errs = append(errs, fmt.Sprintf("line %d: holiday %s must be a string", v.Line, k.Value))
				continue
			}
			*dst = v.Value
		}
		if len(errs) > 0 {
			return &yaml.TypeError{Errors: errs}
		}
		*h = out
		return nil
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a date such as 2026-12-25 or {date: 2026-12-25, name: Christmas}", n.Line)}}
}

// PolicyConfig is one policy; see Policy.
type PolicyConfig struct {
	Name        string    `yaml:"name"`
	Priorities  []string  `yaml:"priorities"`
	Services    []string  `yaml:"services"`
	Calendar    string    `yaml:"calendar"`
	Acknowledge Duration  `yaml:"acknowledge"`
	Resolve     Duration  `yaml:"resolve"`
	WarnAt      []float64 `yaml:"warn_at"`
}

// Duration is an amount of open time: a Go duration ("15m", "4h30m") with
// an optional leading number of days ("3d", "1d12h"), a day being 24 hours
// of open time (not a working day), or "0".
type Duration time.Duration

// ParseDuration parses the Duration syntax.
func ParseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	var days time.Duration
	if m := daysPrefix.FindStringSubmatch(s); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > int64(maxDuration/(24*time.Hour)) {
			return 0, fmt.Errorf("%q is too long", s)
		}
		days, s = time.Duration(n)*24*time.Hour, m[2]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || (days > 0 && d < 0) || d > maxDuration-days {
		return 0, errors.New("not a duration")
	}
	return days + d, nil
}

const maxDuration = time.Duration(1<<63 - 1)

var daysPrefix = regexp.MustCompile(`^([0-9]+)d(.*)$`)

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration such as 30m, 4h or 3d", n.Line)}}
	}
	v, err := ParseDuration(s)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration such as 30m, 4h or 3d", n.Line, s)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// FieldError is one problem of a Config, at a dotted key path relative to
// the section ("calendars.0.time_zone") and, when Validate had the YAML
// node, its line.
type FieldError struct {
	Path string
	Line int
	Msg  string
}

func (e FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Path, e.Msg)
	}
	return e.Path + ": " + e.Msg
}

// Errors is every problem of a Config, one per line when printed.
type Errors []FieldError

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Validate checks every value and reference of the section and returns
// an Errors, or nil. node is the section's YAML node (or a document whose
// root is the section), used to give each error its line; it may be nil.
func (c *Config) Validate(node *yaml.Node) error {
	_, errs := c.build()
	if len(errs) == 0 {
		return nil
	}
	for i := range errs {
		errs[i].Line = yamlfile.LineOf(node, errs[i].Path)
	}
	return errs
}

// Build validates the section and returns its calendars and policies.
// Policies get their priorities in upper case and DefaultWarnAt when they
// name no thresholds.
func Build(c Config) (*Set, error) {
	s, errs := c.build()
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// Parse decodes and validates data holding an sla section as its whole
// document, strictly (unknown keys are errors). Errors are
// yamlfile.Errors: file:line: message.
func Parse(file string, data []byte) (*Config, error) {
	var c Config
	root, err := yamlfile.Decode(file, data, &c)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(root); err != nil {
		var out yamlfile.Errors
		for _, e := range err.(Errors) {
			out = append(out, yamlfile.Error{File: file, Line: e.Line, Msg: e.Path + ": " + e.Msg})
		}
		return nil, out
	}
	return &c, nil
}

func (c *Config) build() (*Set, Errors) {
	var errs Errors
	add := func(path, format string, args ...any) {
		errs = append(errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	s := &Set{calendars: map[string]*Calendar{AlwaysOpen: alwaysOpen}}
	for i, cc := range c.Calendars {
		path := fmt.Sprintf("calendars.%d", i)
		switch _, dup := s.calendars[cc.Name]; {
		case cc.Name == "":
			add(path+".name", "required")
		case cc.Name == AlwaysOpen:
			add(path+".name", "%q is the built-in always-open calendar: choose another name", AlwaysOpen)
		case dup:
			add(path+".name", "calendar %q is defined twice", cc.Name)
		}
		if cal := buildCalendar(cc, path, add); cal != nil && cc.Name != "" && s.calendars[cc.Name] == nil {
			s.calendars[cc.Name] = cal
		}
	}
	names := map[string]bool{}
	for i, pc := range c.Policies {
		path := fmt.Sprintf("policies.%d", i)
		switch {
		case pc.Name == "":
			add(path+".name", "required")
		case names[pc.Name]:
			add(path+".name", "policy %q is defined twice", pc.Name)
		}
		names[pc.Name] = true
		p := Policy{Name: pc.Name, Services: pc.Services, Calendar: pc.Calendar,
			Acknowledge: time.Duration(pc.Acknowledge), Resolve: time.Duration(pc.Resolve), WarnAt: pc.WarnAt}
		for j, pr := range pc.Priorities {
			if !priority.MatchString(pr) {
				add(fmt.Sprintf("%s.priorities.%d", path, j), "%q is not a priority P1..P5", pr)
			}
			p.Priorities = append(p.Priorities, strings.ToUpper(pr))
		}
		for j, sv := range pc.Services {
			if strings.TrimSpace(sv) == "" {
				add(fmt.Sprintf("%s.services.%d", path, j), "must not be empty")
			}
		}
		switch {
		case pc.Calendar == "":
			add(path+".calendar", "required: a calendar's name, or %s", AlwaysOpen)
		case !calendarDefined(c, pc.Calendar):
			add(path+".calendar", "unknown calendar %q", pc.Calendar)
		}
		if pc.Acknowledge < 0 {
			add(path+".acknowledge", "must be positive")
		}
		if pc.Resolve < 0 {
			add(path+".resolve", "must be positive")
		}
		if pc.Acknowledge == 0 && pc.Resolve == 0 {
			add(path, "set acknowledge, resolve or both")
		}
		for j, f := range pc.WarnAt {
			switch {
			case !(f > 0 && f < 1):
				add(fmt.Sprintf("%s.warn_at.%d", path, j), "%v is not a fraction between 0 and 1 (exclusive)", f)
			case j > 0 && f <= pc.WarnAt[j-1]:
				add(fmt.Sprintf("%s.warn_at.%d", path, j), "%v must be greater than the threshold before it", f)
			}
		}
		if p.WarnAt == nil {
			p.WarnAt = DefaultWarnAt
		}
		s.policies = append(s.policies, p)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// calendarDefined reports whether a policy may name the calendar; a
// calendar with errors of its own still counts, so that it is reported
// once.
func calendarDefined(c *Config, name string) bool {
	if name == AlwaysOpen {
		return true
	}
	for _, cc := range c.Calendars {
		if cc.Name == name {
			return true
		}
	}
	return false
}

var priority = regexp.MustCompile(`^[Pp][1-5]$`)

// buildCalendar reports the problems of one calendar through add and
// returns it when it has none.
func buildCalendar(cc CalendarConfig, path string, add func(path, format string, args ...any)) *Calendar {
	ok := true
	fail := func(p, format string, args ...any) {
		ok = false
		add(p, format, args...)
	}
	var loc *time.Location
	switch {
	case cc.TimeZone == "":
		fail(path+".time_zone", "required: an IANA time zone such as Europe/Berlin, or UTC")
	case cc.TimeZone == "Local":
		fail(path+".time_zone", "Local depends on the machine: name the zone, such as Europe/Berlin")
	default:
		var err error
		if loc, err = time.LoadLocation(cc.TimeZone); err != nil {
			fail(path+".time_zone", "unknown time zone %q", cc.TimeZone)
		}
	}
	var days []time.Weekday
	if len(cc.Days) == 0 {
		fail(path+".days", "name at least one working day, such as [mon-fri]")
	}
	for i, s := range cc.Days {
		ds, err := parseDays(s)
		if err != nil {
			fail(fmt.Sprintf("%s.days.%d", path, i), "%v", err)
		}
		days = append(days, ds...)
	}
	var hours []Range
	if len(cc.Hours) == 0 {
		fail(path+".hours", "name at least one range of working hours, such as \"09:00-17:00\"")
	}
	for i, s := range cc.Hours {
		rs, err := parseRanges(s)
		if err != nil {
			fail(fmt.Sprintf("%s.hours.%d", path, i), "%v", err)
		}
		hours = append(hours, rs...)
	}
	if ok {
		if _, err := normalizeRanges(hours); err != nil {
			fail(path+".hours", "%v", err)
		}
	}
	var hols []Holiday
	seen := map[string]bool{}
	for i, h := range cc.Holidays {
		p := fmt.Sprintf("%s.holidays.%d", path, i)
		t, err := time.Parse(time.DateOnly, h.Date)
		switch {
		case err != nil:
			fail(p, "%q is not a date such as 2026-12-25", h.Date)
		case seen[h.Date]:
			fail(p, "holiday %s is listed twice", h.Date)
		default:
			hols = append(hols, Holiday{Year: t.Year(), Month: t.Month(), Day: t.Day(), Name: h.Name})
		}
		seen[h.Date] = true
	}
	if !ok || cc.Name == AlwaysOpen { // the caller reports the name
		return nil
	}
	cal, err := NewCalendar(cc.Name, loc, days, hours, hols)
	if err != nil { // not expected after the checks above
		add(path, "%v", err)
		return nil
	}
	return cal
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// parseDays parses "mon" or a range "mon-fri" (which may wrap: "fri-mon").
func parseDays(s string) ([]time.Weekday, error) {
	lo, hi, isRange := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "-")
	a, ok := dayNames[strings.TrimSpace(lo)]
	b := a
	if isRange {
		var okb bool
		b, okb = dayNames[strings.TrimSpace(hi)]
		ok = ok && okb
	}
	if !ok {
		return nil, fmt.Errorf("%q is not a day (mon, tue, wed, thu, fri, sat, sun) or a range such as mon-fri", s)
	}
	var out []time.Weekday
	for d := a; ; d = (d + 1) % 7 {
		out = append(out, d)
		if d == b {
			return out, nil
		}
	}
}

// parseRanges parses "09:00-17:00" or "08:00-12:00,13:00-17:00".
func parseRanges(s string) ([]Range, error) {
	var out []Range
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		from, to, ok := strings.Cut(part, "-")
		a, erra := parseClock(strings.TrimSpace(from))
		b, errb := parseClock(strings.TrimSpace(to))
		switch {
		case !ok || erra != nil || errb != nil:
			return nil, fmt.Errorf("%q is not a range of hours such as 09:00-17:00", part)
		case a >= 24*60:
			return nil, fmt.Errorf("%q starts at 24:00: the day ends there", part)
		case a >= b:
			return nil, fmt.Errorf("%q ends before it starts: split a range over midnight into two days' ranges", part)
		}
		out = append(out, Range{a, b})
	}
	return out, nil
}

var clock = regexp.MustCompile(`^([0-9]{1,2}):([0-9]{2})$`)

// parseClock parses H:MM or HH:MM, 00:00 to 24:00, into minutes.
func parseClock(s string) (int, error) {
	m := clock.FindStringSubmatch(s)
	if m == nil {
		return 0, errors.New("bad time")
	}
	h, _ := strconv.Atoi(m[1])
	mm, _ := strconv.Atoi(m[2])
	if h > 24 || mm > 59 || (h == 24 && mm != 0) {
		return 0, errors.New("bad time")
	}
	return h*60 + mm, nil
}
