package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/ingest"
	"github.com/triage-dev/triage/internal/app"
)

// ReplayOutput is the JSON shape of `triage replay --output json`.
type ReplayOutput struct {
	Summary   ReplaySummary    `json:"summary"`
	Incidents []ReplayIncident `json:"incidents"`
}

// ReplaySummary counts what the replay did.
type ReplaySummary struct {
	Events    int `json:"events"`
	Alerts    int `json:"alerts"`
	Incidents int `json:"incidents"`
	Problems  int `json:"problems"`
	// Compression is 1 - incidents/alerts: the share of alerts nobody had
	// to look at as a separate incident.
	Compression float64        `json:"compression"`
	Duplicates  int            `json:"duplicates"`
	Dropped     int            `json:"dropped"`
	DroppedBy   map[string]int `json:"dropped_by_rule,omitempty"`
	// Merged counts incidents merged into others (not in Incidents).
	Merged int `json:"merged"`
}

// ReplayIncident is one incident the replay made.
type ReplayIncident struct {
	ID              uint64               `json:"id"`
	Key             string               `json:"key"`
	Title           string               `json:"title"`
	Status          string               `json:"status"`
	Priority        string               `json:"priority"`
	Severity        string               `json:"severity,omitempty"`
	CI              string               `json:"ci,omitempty"`
	Service         string               `json:"service,omitempty"`
	AssignmentGroup string               `json:"assignment_group,omitempty"`
	Project         string               `json:"jira_project,omitempty"`
	Held            bool                 `json:"held,omitempty"`
	AlertCount      int                  `json:"alert_count"`
	EventCount      int64                `json:"event_count"`
	OpenedAt        time.Time            `json:"opened_at"`
	ResolvedAt      *time.Time           `json:"resolved_at"`
	Merged          []uint64             `json:"merged,omitempty"`
	Alerts          []ReplayAlert        `json:"alerts"`
	RootCause       triage.RootCause     `json:"root_cause"`
	Explanation     []triage.Explanation `json:"explanation"`
}

// ReplayAlert is one alert of a replayed incident.
type ReplayAlert struct {
	Fingerprint string            `json:"fingerprint"`
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	CI          string            `json:"ci,omitempty"`
	Count       int64             `json:"count"`
	FirstSeen   time.Time         `json:"first_seen"`
	LastSeen    time.Time         `json:"last_seen"`
}

func replayCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgFile := fs.String("config", "", "config file whose correlation settings, CMDB and rules to use; embedded defaults when empty")
	output := fs.String("output", "json", "json or table")
	cmdb := fs.String("cmdb", "", "CMDB file, overrides the config's cmdb.file")
	var ruleFiles stringList
	fs.Var(&ruleFiles, "rules", "rule file or glob, overrides the config's rules.files (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: triage replay [--config FILE] [--cmdb FILE] [--rules GLOB]... [--output json|table] EVENTS.jsonl...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 || (*output != "json" && *output != "table") {
		fs.Usage()
		return 2
	}
	cfg, ok := loadConfig(*cfgFile, stderr)
	if !ok {
		return 1
	}
	if *cmdb != "" {
		cfg.CMDB.File = *cmdb
	}
	if len(ruleFiles) > 0 {
		cfg.Rules.Files = ruleFiles
	}
	setup, err := app.LoadSetup(cfg, false)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var events []triage.Event
	for _, f := range fs.Args() {
		evs, err := readEventFile(f)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		events = append(events, evs...)
	}
	slices.SortStableFunc(events, func(a, b triage.Event) int { return a.Time.Compare(b.Time) })
	mem, st := correlate.ReplayStats(setup.NewEngine(cfg), events)
	out := replayOutput(mem.Incidents(), st)
	if *output == "table" {
		writeReplayTable(stdout, out)
		return 0
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// readEventFile reads one event per line: a generic event or an
// Alertmanager webhook payload (as on the Kafka alerts topic). An event's
// time is its "time", else its end when resolved, else its start.
func readEventFile(path string) ([]triage.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []triage.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 32<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		evs, err := ingest.DecodeKafkaAlert(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		for i := range evs {
			ev := &evs[i]
			t := ev.Time
			if t.IsZero() && ev.Status == triage.AlertResolved {
				t = ev.EndsAt
			}
			if t.IsZero() {
				t = ev.StartsAt
			}
			if t.IsZero() {
				return nil, fmt.Errorf("%s:%d: the event has no time, starts_at or ends_at to replay it at", path, n)
			}
			if err := ev.Normalize(t); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			out = append(out, *ev)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

func replayOutput(incs []triage.Incident, st correlate.Stats) ReplayOutput {
	out := ReplayOutput{Incidents: []ReplayIncident{}, Summary: ReplaySummary{
		Events: st.Events, Duplicates: st.Duplicates, Dropped: st.Dropped, DroppedBy: st.DroppedBy,
	}}
	for _, inc := range incs {
		if inc.MergedInto != nil {
			out.Summary.Merged++
			continue
		}
		ri := ReplayIncident{
			ID: inc.ID, Key: inc.Key, Title: inc.Title, Status: string(inc.Status), Priority: inc.Priority,
			Severity: inc.Severity, CI: inc.CI, Service: inc.Service, AssignmentGroup: inc.AssignmentGroup,
			Project: inc.Project, Held: inc.Held, AlertCount: inc.AlertCount, EventCount: inc.EventCount,
			OpenedAt: inc.OpenedAt, ResolvedAt: inc.ResolvedAt, Merged: inc.Merged,
			RootCause: inc.RootCause, Explanation: inc.Explanation, Alerts: []ReplayAlert{},
		}
		for _, a := range inc.Alerts {
			ri.Alerts = append(ri.Alerts, ReplayAlert{Fingerprint: a.Fingerprint, Status: string(a.Status),
				Labels: a.Labels, CI: a.CI, Count: a.Count, FirstSeen: a.FirstSeen, LastSeen: a.LastSeen})
		}
		out.Summary.Alerts += len(inc.Alerts)
		out.Incidents = append(out.Incidents, ri)
	}
	out.Summary.Incidents = len(out.Incidents)
	if out.Summary.Alerts > 0 {
		out.Summary.Compression = 1 - float64(out.Summary.Incidents)/float64(out.Summary.Alerts)
	}
	return out
}

func writeReplayTable(w io.Writer, out ReplayOutput) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSTATUS\tPRIO\tALERTS\tEVENTS\tROOT CAUSE\tTITLE")
	for _, inc := range out.Incidents {
		rc := inc.RootCause.CI
		if rc == "" {
			rc = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", inc.Key, inc.Status, inc.Priority, inc.AlertCount, inc.EventCount, rc, inc.Title)
	}
	_ = tw.Flush()
	s := out.Summary
	fmt.Fprintf(w, "\n%d events, %d alerts, %d incidents (%d merged), compression %.1f%%, %d duplicates, %d dropped\n",
		s.Events, s.Alerts, s.Incidents, s.Merged, 100*s.Compression, s.Duplicates, s.Dropped)
}

type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*l = append(*l, v)
	return nil
}
