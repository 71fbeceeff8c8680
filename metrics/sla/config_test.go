package sla

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const exampleConfig = `
calendars:
  - name: eu-business
    time_zone: Europe/Berlin
    days: [mon, tue, wed, thu, fri]
    hours: ["09:00-17:00"]
    holidays: ["2026-12-25", "2026-12-26", {date: "2027-01-01", name: New Year}]
  - name: us-support
    time_zone: America/New_York
    days: [mon-fri, sat]
    hours: ["08:00-12:00,13:00-17:00"]
policies:
  - name: p1-24x7
    priorities: [P1]
    calendar: 24x7
    acknowledge: 15m
    resolve: 4h
    warn_at: [0.75, 0.9]
  - name: standard
    priorities: [P2, P3, P4, P5]
    calendar: eu-business
    acknowledge: 4h
    resolve: 3d
  - name: payments
    services: [payments]
    calendar: us-support
    resolve: 1d12h
    warn_at: []
`

func TestParseExample(t *testing.T) {
	c, err := Parse("sla.yaml", []byte(exampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(*c)
	if err != nil {
		t.Fatal(err)
	}
	eu := s.Calendar("eu-business")
	berlin := eu.Location()
	if name, ok := eu.HolidayAt(at(t, berlin, "2027-01-01 12:00")); !ok || name != "New Year" {
		t.Errorf("HolidayAt new year = %q, %v", name, ok)
	}
	if got := s.Calendar("us-support").BusinessDuration(at(t, berlin, "2026-03-07 00:00"), at(t, berlin, "2026-03-08 00:00")); got != 8*time.Hour {
		t.Errorf("us-support on a Saturday = %v, want 8h", got)
	}
	tests := []struct {
		priority, service string
		want              Policy
	}{
		{"P1", "orders", Policy{Name: "p1-24x7", Priorities: []string{"P1"}, Calendar: "24x7",
			Acknowledge: 15 * time.Minute, Resolve: 4 * time.Hour, WarnAt: []float64{0.75, 0.9}}},
		{"P4", "orders", Policy{Name: "standard", Priorities: []string{"P2", "P3", "P4", "P5"}, Calendar: "eu-business",
			Acknowledge: 4 * time.Hour, Resolve: 72 * time.Hour, WarnAt: DefaultWarnAt}},
		{"P1", "payments", Policy{Name: "payments", Services: []string{"payments"}, Calendar: "us-support",
			Resolve: 36 * time.Hour, WarnAt: []float64{}}},
	}
	for _, tc := range tests {
		p := s.Select(tc.priority, tc.service)
		if p == nil || p.Name != tc.want.Name || !slices.Equal(p.Priorities, tc.want.Priorities) ||
			!slices.Equal(p.Services, tc.want.Services) || p.Calendar != tc.want.Calendar ||
			p.Acknowledge != tc.want.Acknowledge || p.Resolve != tc.want.Resolve ||
			!slices.Equal(p.WarnAt, tc.want.WarnAt) || (p.WarnAt == nil) != (tc.want.WarnAt == nil) {
			t.Errorf("Select(%s, %s) = %+v, want %+v", tc.priority, tc.service, p, tc.want)
		}
	}
	// warn_at: [] means no warnings.
	inc := Incident{OpenedAt: at(t, berlin, "2026-03-02 09:00")}
	for _, st := range Evaluate(s.Select("P1", "payments"), s.Calendar("us-support"), inc, at(t, berlin, "2026-04-30 00:00")) {
		if st.State != Breached || len(st.Warnings) != 0 {
			t.Errorf("payments %s: %s with warnings %v, want breached without warnings", st.Target, st.State, st.Warnings)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"15m", 15 * time.Minute, false},
		{"4h30m", 4*time.Hour + 30*time.Minute, false},
		{"0", 0, false},
		{"3d", 72 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"0d30m", 30 * time.Minute, false},
		{"-1h", -time.Hour, false},
		{"d", 0, true},
		{"3", 0, true},
		{"3x", 0, true},
		{"-1d", 0, true},
		{"1d-1h", 0, true},
		{"1d1d", 0, true},
		{"999999999d", 0, true},
		{"106751d23h47m16s854775807ns", 1<<63 - 1, false},
		{"106751d23h47m16s854775808ns", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestValidationErrors(t *testing.T) {
	const cal = "calendars:\n  - {name: eu, time_zone: Europe/Berlin, days: [mon-fri], hours: [\"09:00-17:00\"]}\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown time zone", `
calendars:
  - name: eu
    time_zone: Europe/Berln
    days: [mon]
    hours: ["09:00-17:00"]
`, []string{`sla.yaml:4: calendars.0.time_zone: unknown time zone "Europe/Berln"`}},
		{"missing and local zones", `
calendars:
  - {name: a, days: [mon], hours: ["09:00-17:00"]}
  - {name: b, time_zone: Local, days: [mon], hours: ["09:00-17:00"]}
`, []string{
			`sla.yaml:3: calendars.0.time_zone: required: an IANA time zone such as Europe/Berlin, or UTC`,
			`sla.yaml:4: calendars.1.time_zone: Local depends on the machine: name the zone, such as Europe/Berlin`}},
		{"bad days", `
calendars:
  - name: eu
    time_zone: UTC
    days:
      - mon
      - funday
      - mon-fry
    hours: ["09:00-17:00"]
`, []string{
			`sla.yaml:7: calendars.0.days.1: "funday" is not a day (mon, tue, wed, thu, fri, sat, sun) or a range such as mon-fri`,
			`sla.yaml:8: calendars.0.days.2: "mon-fry" is not a day (mon, tue, wed, thu, fri, sat, sun) or a range such as mon-fri`}},
		{"bad hours", `
calendars:
  - name: eu
    time_zone: UTC
    days: [mon]
    hours:
      - "9-17"
      - "17:00-09:00"
      - "08:00-24:30"
      - "24:00-24:00"
      - "08:00-12:00,12:60-13:00"
`, []string{
			`sla.yaml:7: calendars.0.hours.0: "9-17" is not a range of hours such as 09:00-17:00`,
			`sla.yaml:8: calendars.0.hours.1: "17:00-09:00" ends before it starts: split a range over midnight into two days' ranges`,
			`sla.yaml:9: calendars.0.hours.2: "08:00-24:30" is not a range of hours such as 09:00-17:00`,
			`sla.yaml:10: calendars.0.hours.3: "24:00-24:00" starts at 24:00: the day ends there`,
			`sla.yaml:11: calendars.0.hours.4: "12:60-13:00" is not a range of hours such as 09:00-17:00`}},
		{"overlapping hours", `
calendars:
  - name: eu
    time_zone: UTC
    days: [mon]
    hours: ["08:00-12:00", "11:00-17:00"]
`, []string{`sla.yaml:6: calendars.0.hours: hour ranges 08:00-12:00 and 11:00-17:00 overlap`}},
		{"no open time", `
calendars:
  - name: eu
    time_zone: UTC
    days: []
    hours: []
`, []string{
			`sla.yaml:5: calendars.0.days: name at least one working day, such as [mon-fri]`,
			`sla.yaml:6: calendars.0.hours: name at least one range of working hours, such as "09:00-17:00"`}},
		{"bad holidays", `
calendars:
  - name: eu
    time_zone: UTC
    days: [mon]
    hours: ["09:00-17:00"]
    holidays:
      - 2026-02-30
      - "2026-12-25"
      - {date: "2026-12-25", name: Christmas}
      - {date: 25.12.2026}
`, []string{
			`sla.yaml:8: calendars.0.holidays.0: "2026-02-30" is not a date such as 2026-12-25`,
			`sla.yaml:10: calendars.0.holidays.2: holiday 2026-12-25 is listed twice`,
			`sla.yaml:11: calendars.0.holidays.3: "25.12.2026" is not a date such as 2026-12-25`}},
		{"calendar names", `
calendars:
  - {name: eu, time_zone: UTC, days: [mon], hours: ["09:00-17:00"]}
  - {name: eu, time_zone: UTC, days: [mon], hours: ["09:00-17:00"]}
  - {name: 24x7, time_zone: UTC, days: [mon], hours: ["09:00-17:00"]}
  - {time_zone: UTC, days: [mon], hours: ["09:00-17:00"]}
`, []string{
			`sla.yaml:4: calendars.1.name: calendar "eu" is defined twice`,
			`sla.yaml:5: calendars.2.name: "24x7" is the built-in always-open calendar: choose another name`,
			`sla.yaml:6: calendars.3.name: required`}},
		{"policies", cal + `
policies:
  - name: a
    priorities: [P1, P6]
    services: [""]
    calendar: us
    acknowledge: -1h
    resolve: 4h
    warn_at: [0.9, 0.75, 1.5, 0]
  - name: a
    calendar: 24x7
  - calendar: eu
    resolve: 1h
`, []string{
			`sla.yaml:6: policies.0.priorities.1: "P6" is not a priority P1..P5`,
			`sla.yaml:7: policies.0.services.0: must not be empty`,
			`sla.yaml:8: policies.0.calendar: unknown calendar "us"`,
			`sla.yaml:9: policies.0.acknowledge: must be positive`,
			`sla.yaml:11: policies.0.warn_at.1: 0.75 must be greater than the threshold before it`,
			`sla.yaml:11: policies.0.warn_at.2: 1.5 is not a fraction between 0 and 1 (exclusive)`,
			`sla.yaml:11: policies.0.warn_at.3: 0 is not a fraction between 0 and 1 (exclusive)`,
			`sla.yaml:12: policies.1.name: policy "a" is defined twice`,
			`sla.yaml:12: policies.1: set acknowledge, resolve or both`,
			`sla.yaml:14: policies.2.name: required`}},
		{"missing calendar", `
policies:
  - name: a
    resolve: 4h
`, []string{`sla.yaml:3: policies.0.calendar: required: a calendar's name, or 24x7`}},
		{"bad duration", `
policies:
  - name: a
    calendar: 24x7
    resolve: 3x
`, []string{`sla.yaml:5: policies.0.resolve: "3x" is not a duration such as 30m, 4h or 3d`}},
		{"unknown key", `
policies:
  - name: a
    calendar: 24x7
    resolve: 4h
    respond: 1h
`, []string{`sla.yaml:6: unknown key respond`}},
		{"unknown holiday key", `
calendars:
  - name: eu
    time_zone: UTC
    days: [mon]
    hours: ["09:00-17:00"]
    holidays: [{date: "2026-12-25", title: Christmas}]
`, []string{`sla.yaml:7: unknown key title (a holiday has date and name)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("sla.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestValidateWithoutNode: Validate and Build name the field without a
// line when there is no YAML, and Validate gives lines from a node.
func TestValidateWithoutNode(t *testing.T) {
	c := Config{Policies: []PolicyConfig{{Name: "a", Calendar: "nope", Resolve: Duration(time.Hour)}}}
	_, err := Build(c)
	var errs Errors
	if !errors.As(err, &errs) || err.Error() != `policies.0.calendar: unknown calendar "nope"` {
		t.Fatalf("Build error = %v", err)
	}
	var node yaml.Node
	if err := yaml.Unmarshal([]byte("policies:\n  - name: a\n    calendar: nope\n    resolve: 1h\n"), &node); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(&node); err == nil || err.Error() != `line 3: policies.0.calendar: unknown calendar "nope"` {
		t.Fatalf("Validate error = %v", err)
	}
	if err := (&Config{}).Validate(nil); err != nil {
		t.Fatalf("empty config: %v", err)
	}
}
