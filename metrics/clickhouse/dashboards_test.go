package clickhouse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The Grafana dashboards in deploy/grafana/dashboards are tested here, next
// to the schema they read: every panel query (and template variable query)
// is expanded the way Grafana and the ClickHouse plugin expand it, then run
// on the real server (ClickHouse 18.16 in CI) and, when python3 can import
// chdb, on a current ClickHouse engine, over the same seeded data. Results
// are compared with testdata/dashboards.golden (go test -run Dashboard
// -update-dashboards rewrites it from the server's results) and the key
// figures with hand-computed values.

var updateDashboards = flag.Bool("update-dashboards", false, "rewrite testdata/dashboards.golden from the server's results")

const (
	dashboardsDir = "../../deploy/grafana/dashboards"
	dashboardsDS  = "triage-clickhouse"
	dashboardsGF  = "testdata/dashboards.golden"
)

// The range and interval the queries are expanded with, and the value of
// the service template variable.
var (
	dashFrom     = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dashTo       = time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC)
	dashInterval = 24 * time.Hour
	dashVars     = map[string]string{"service": "orders"}
)

type dashRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashTarget struct {
	RefID      string   `json:"refId"`
	Datasource *dashRef `json:"datasource"`
	QueryType  string   `json:"queryType"`
	EditorType string   `json:"editorType"`
	Format     *int     `json:"format"`
	RawSQL     string   `json:"rawSql"`
}

type dashPanel struct {
	ID         int          `json:"id"`
	Type       string       `json:"type"`
	Title      string       `json:"title"`
	Datasource *dashRef     `json:"datasource"`
	Targets    []dashTarget `json:"targets"`
	Panels     []dashPanel  `json:"panels"` // of a row
}

type dashVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *dashRef        `json:"datasource"`
	Query      json.RawMessage `json:"query"`
}

type dashboard struct {
	UID        string      `json:"uid"`
	Title      string      `json:"title"`
	Panels     []dashPanel `json:"panels"`
	Templating struct {
		List []dashVariable `json:"list"`
	} `json:"templating"`
}

// dashQuery is one query of a dashboard, expanded.
type dashQuery struct {
	Key string // "file / panel title / refId", or "file / $variable"
	Raw string
	SQL string
}

// Format values of the plugin's queries (sqlutil.FormatQueryOption).
const (
	formatTimeSeries = 0
	formatTable      = 1
)

// rmtRef finds the tables a query reads and whether it reads them with FINAL.
var rmtRef = regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_.]*)(\s+FINAL\b)?`)

// loadDashboardQueries reads every dashboard, checks its panels, and returns
// its queries expanded for the test range.
func loadDashboardQueries(t *testing.T) []dashQuery {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	want := []string{"kpi-overview.json", "noise-reduction.json", "problems.json", "service.json", "sla-xla.json"}
	if !slices.Equal(names, want) {
		t.Fatalf("dashboards %v, want %v", names, want)
	}
	tables := map[string]bool{}
	for _, q := range Statements("x", AllFeatures) {
		if m := regexp.MustCompile(`CREATE TABLE IF NOT EXISTS x\.(\w+)`).FindStringSubmatch(q); m != nil {
			tables[m[1]] = true
		}
	}
	var out []dashQuery
	uids, keys := map[string]string{}, map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: no uid or title", name)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s: uid %q also used by %s", name, d.UID, other)
		}
		uids[d.UID] = name
		add := func(key, raw string) {
			t.Helper()
			if keys[key] {
				t.Errorf("%s: two queries with this title and refId", key)
			}
			keys[key] = true
			for _, m := range rmtRef.FindAllStringSubmatch(raw, -1) {
				if tables[m[1]] && m[2] == "" {
					t.Errorf("%s: reads %s without FINAL (ReplacingMergeTree: see Migrations)", key, m[1])
				}
			}
			sql, err := expandGrafanaQuery(raw, dashFrom, dashTo, dashInterval, dashVars)
			if err != nil {
				t.Errorf("%s: %v", key, err)
				return
			}
			out = append(out, dashQuery{Key: key, Raw: raw, SQL: sql})
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			key := name + " / $" + v.Name
			if v.Datasource == nil || v.Datasource.UID != dashboardsDS {
				t.Errorf("%s: datasource %+v, want uid %s", key, v.Datasource, dashboardsDS)
			}
			// The plugin takes a variable query as a string or as an object
			// with rawSql (CHVariableSupport).
			var raw string
			if err := json.Unmarshal(v.Query, &raw); err != nil {
				var obj struct {
					RawSQL string `json:"rawSql"`
				}
				if err := json.Unmarshal(v.Query, &obj); err != nil {
					t.Errorf("%s: query: %v", key, err)
				}
				raw = obj.RawSQL
			}
			if strings.TrimSpace(raw) == "" {
				t.Errorf("%s: no query", key)
				continue
			}
			add(key, raw)
		}
		var walk func([]dashPanel)
		walk = func(panels []dashPanel) {
			for _, p := range panels {
				if p.Type == "row" {
					walk(p.Panels)
					continue
				}
				key := name + " / " + p.Title
				if p.Title == "" {
					t.Errorf("%s: panel %d has no title", name, p.ID)
				}
				if p.Datasource == nil || p.Datasource.UID != dashboardsDS || p.Datasource.Type != "grafana-clickhouse-datasource" {
					t.Errorf("%s: datasource %+v, want the ClickHouse plugin's uid %s", key, p.Datasource, dashboardsDS)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: no query", key)
				}
				for _, tg := range p.Targets {
					tkey := key + " / " + tg.RefID
					if tg.Datasource == nil || tg.Datasource.UID != dashboardsDS {
						t.Errorf("%s: datasource %+v, want uid %s", tkey, tg.Datasource, dashboardsDS)
					}
					if tg.QueryType != "sql" || tg.EditorType != "sql" {
						t.Errorf("%s: queryType %q editorType %q, want sql (raw SQL)", tkey, tg.QueryType, tg.EditorType)
					}
					switch {
					case tg.Format == nil:
						t.Errorf("%s: no format", tkey)
					case p.Type == "timeseries" && *tg.Format != formatTimeSeries:
						t.Errorf("%s: format %d in a time series panel, want %d (time series)", tkey, *tg.Format, formatTimeSeries)
					case p.Type != "timeseries" && *tg.Format != formatTable:
						t.Errorf("%s: format %d in a %s panel, want %d (table)", tkey, *tg.Format, p.Type, formatTable)
					}
					if strings.TrimSpace(tg.RawSQL) == "" {
						t.Errorf("%s: empty rawSql", tkey)
						continue
					}
					if p.Type == "timeseries" && !strings.Contains(tg.RawSQL, " AS time,") {
						t.Errorf("%s: a time series query must return its bucket as the column time", tkey)
					}
					add(tkey, tg.RawSQL)
				}
			}
		}
		walk(d.Panels)
	}
	return out
}

// expandGrafanaQuery does to raw what Grafana and the ClickHouse plugin do
// before the query reaches ClickHouse:
//
//  1. Grafana's frontend replaces the dashboard's template variables
//     ($var, ${var}, ${var:fmt}, [[var]]); the plugin's format function
//     passes a single value through unquoted (CHDatasource.format). Names
//     Grafana does not know, such as the plugin's $__ macros, are left.
//  2. The plugin's backend expands its macros with sqlutil.Interpolate
//     (grafana-plugin-sdk-go data/sqlutil/macros.go): for each macro
//     name, every match of `\$__name\b` takes as arguments the text
//     between the first '(' after it and the matching ')', unless a ')'
//     comes first, and the whole match is replaced by the macro's
//     expansion (pkg/macros/macros.go of grafana/clickhouse-datasource).
//
// Being stricter than the plugin, it fails on a macro the plugin does not
// document, on an argument-less macro that would swallow the text up to a
// later parenthesis (write "($__toTime)" before a '('), and on anything
// left unexpanded.
func expandGrafanaQuery(raw string, from, to time.Time, interval time.Duration, vars map[string]string) (string, error) {
	var verr error
	sql := grafanaVarRE.ReplaceAllStringFunc(raw, func(m string) string {
		sm := grafanaVarRE.FindStringSubmatch(m)
		name := sm[1] + sm[2] + sm[3]
		if strings.HasPrefix(name, "__") {
			return m // Grafana's and the plugin's own
		}
		v, ok := vars[name]
		if !ok {
			verr = fmt.Errorf("unknown template variable %s", m)
		}
		return v
	})
	if verr != nil {
		return "", verr
	}
	names := make([]string, 0, len(pluginMacros))
	for name := range pluginMacros {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		macro := pluginMacros[name]
		for _, m := range macroMatches(sql, name) {
			args := strings.Split(m.args, ",")
			for i := range args {
				args[i] = strings.TrimSpace(args[i])
			}
			if macro.nargs == 0 && m.parens {
				return "", fmt.Errorf("$__%s is followed by %q: the plugin would replace all of it (put the macro in parentheses)", name, m.text)
			}
			if macro.nargs > 0 && len(args) != macro.nargs {
				return "", fmt.Errorf("%s: expected %d arguments, received %d", m.text, macro.nargs, len(args))
			}
			sql = strings.ReplaceAll(sql, m.text, macro.expand(from, to, interval, args))
		}
	}
	if i := strings.Index(sql, "$"); i >= 0 {
		return "", fmt.Errorf("unexpanded %q (only the plugin's documented macros are expanded)", sql[i:min(len(sql), i+30)])
	}
	return sql, nil
}

var grafanaVarRE = regexp.MustCompile(`\$(\w+)|\[\[(\w+)(?::\w+)?\]\]|\$\{(\w+)(?::[^}]*)?\}`)

type macroMatch struct {
	text   string // what is replaced
	args   string
	parens bool // an argument list followed the name
}

// macroMatches finds the uses of $__name as sqlutil's getMacroMatches does.
func macroMatches(sql, name string) []macroMatch {
	re := regexp.MustCompile(`\$__` + regexp.QuoteMeta(name) + `\b`)
	var out []macroMatch
	for _, loc := range re.FindAllStringIndex(sql, -1) {
		rest := sql[loc[0]:]
		depth, argStart, end := 0, -1, -1
	scan:
		for i, r := range rest {
			switch r {
			case '(':
				depth++
				if argStart < 0 {
					argStart = i + 1
				}
			case ')':
				if depth == 0 {
					break scan // ")" before any "(": no arguments
				}
				depth--
				if depth == 0 {
					end = i + 1
					break scan
				}
			}
		}
		m := macroMatch{text: sql[loc[0]:loc[1]]}
		if end > 0 {
			m.text, m.args, m.parens = rest[:end], rest[argStart:end-1], true
		}
		out = append(out, m)
	}
	return out
}

type pluginMacro struct {
	nargs  int
	expand func(from, to time.Time, interval time.Duration, args []string) string
}

func chDateTime(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
func chDateTime64(t time.Time) string {
	return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", t.UnixMilli())
}
func chDate(t time.Time) string { return fmt.Sprintf("toDate('%s')", t.Format("2006-01-02")) }

// pluginMacros are the macros of the ClickHouse plugin
// (grafana/clickhouse-datasource pkg/macros/macros.go, the Macros map; the
// table in its README documents them), with the same expansions.
var pluginMacros = map[string]pluginMacro{
	"fromTime":    {0, func(f, _ time.Time, _ time.Duration, _ []string) string { return chDateTime(f) }},
	"toTime":      {0, func(_, t time.Time, _ time.Duration, _ []string) string { return chDateTime(t) }},
	"fromTime_ms": {0, func(f, _ time.Time, _ time.Duration, _ []string) string { return chDateTime64(f) }},
	"toTime_ms":   {0, func(_, t time.Time, _ time.Duration, _ []string) string { return chDateTime64(t) }},
	"timeFilter": {1, func(f, t time.Time, _ time.Duration, a []string) string {
		return fmt.Sprintf("%s >= %s AND %s <= %s", a[0], chDateTime(f), a[0], chDateTime(t))
	}},
	"timeFilter_ms": {1, func(f, t time.Time, _ time.Duration, a []string) string {
		return fmt.Sprintf("%s >= %s AND %s <= %s", a[0], chDateTime64(f), a[0], chDateTime64(t))
	}},
	"dateFilter": {1, func(f, t time.Time, _ time.Duration, a []string) string {
		return fmt.Sprintf("%s >= %s AND %s <= %s", a[0], chDate(f), a[0], chDate(t))
	}},
	"dateTimeFilter": {2, dateTimeFilter},
	"dt":             {2, dateTimeFilter},
	"timeInterval": {1, func(_, _ time.Time, iv time.Duration, a []string) string {
		return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", a[0], int(math.Max(iv.Seconds(), 1)))
	}},
	"timeInterval_ms": {1, func(_, _ time.Time, iv time.Duration, a []string) string {
		return fmt.Sprintf("toStartOfInterval(toDateTime64(%s, 3), INTERVAL %d millisecond)", a[0], int(math.Max(float64(iv.Milliseconds()), 1)))
	}},
	"interval_s": {0, func(_, _ time.Time, iv time.Duration, _ []string) string {
		return strconv.Itoa(int(math.Max(iv.Seconds(), 1)))
	}},
}

func dateTimeFilter(f, t time.Time, _ time.Duration, a []string) string {
	return fmt.Sprintf("(%s >= %s AND %s <= %s) AND (%s >= %s AND %s <= %s)",
		a[0], chDate(f), a[0], chDate(t), a[1], chDateTime(f), a[1], chDateTime(t))
}

func TestExpandGrafanaQuery(t *testing.T) {
	from, to := time.Unix(1415792726, 0), time.Unix(1447328726, 0)
	for _, tc := range []struct {
		name, raw, want, err string
	}{
		// The output examples of the plugin's README.
		{"timeFilter", "WHERE $__timeFilter(time)", "WHERE time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)", ""},
		{"fromTime toTime", "x BETWEEN $__fromTime AND $__toTime", "x BETWEEN toDateTime(1415792726) AND toDateTime(1447328726)", ""},
		{"interval_s", "intDiv(x, $__interval_s) * $__interval_s", "intDiv(x, 20) * 20", ""},
		{"timeInterval", "$__timeInterval(column)", "toStartOfInterval(toDateTime(column), INTERVAL 20 second)", ""},
		{"timeFilter_ms", "$__timeFilter_ms(t)", "t >= fromUnixTimestamp64Milli(1415792726000) AND t <= fromUnixTimestamp64Milli(1447328726000)", ""},
		{"dateFilter", "$__dateFilter(d)", "d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')", ""},
		{"variables", "s = '${service}' AND s = '$service' AND s = '[[service]]' AND '${service:raw}' != ''",
			"s = 'orders' AND s = 'orders' AND s = 'orders' AND 'orders' != ''", ""},
		{"nested parentheses", "$__timeFilter(toDateTime(x))", "toDateTime(x) >= toDateTime(1415792726) AND toDateTime(x) <= toDateTime(1447328726)", ""},
		{"swallowing", "x <= $__toTime AND (y = 1)", "", "would replace all of it"},
		{"guarded", "x <= ($__toTime) AND (y = 1)", "x <= (toDateTime(1447328726)) AND (y = 1)", ""},
		{"argument count", "$__timeFilter(a, b)", "", "expected 1 arguments"},
		{"undocumented macro", "$__timeFrom(x)", "", "unexpanded"},
		{"unknown variable", "${nope}", "", "unknown template variable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expandGrafanaQuery(tc.raw, from, to, 20*time.Second, map[string]string{"service": "orders"})
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestDashboardsStatic checks every dashboard and query without a server.
func TestDashboardsStatic(t *testing.T) {
	qs := loadDashboardQueries(t)
	if len(qs) < 40 {
		t.Errorf("only %d queries in the dashboards", len(qs))
	}
}

// Seeded data: 10 incidents opened in [dashFrom, dashTo), one opened before
// and resolved in it, one after it. Each incident in the range has 4 alerts
// of 8, 6, 4 and 2 notifications: 40 alerts, 200 events.
type seedIncident struct {
	id                uint64
	service, priority string
	opened            time.Time
	ack, res          time.Duration // 0: not acknowledged / resolved
	reopens           uint64
	problem           uint64
	rootCI            string
	impact            float64
}

func day(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, time.UTC) }

var seedIncidents = []seedIncident{
	{1, "orders", "P1", day(1, 10, 0), 60 * time.Second, time.Hour, 0, 7, "db-orders", 30},
	{2, "orders", "P2", day(1, 14, 0), 120 * time.Second, 2 * time.Hour, 1, 7, "db-orders", 45},
	{3, "payments", "P1", day(2, 10, 0), 180 * time.Second, 30 * time.Minute, 0, 8, "gw-payments", 20},
	{4, "payments", "P3", day(3, 10, 0), 240 * time.Second, 90 * time.Minute, 0, 0, "lb-payments", 10},
	{5, "orders", "P2", day(3, 16, 0), 300 * time.Second, 0, 0, 7, "db-orders", 15},
	{6, "search", "P4", day(4, 10, 0), 0, 0, 0, 0, "", 0},
	{7, "search", "P3", day(5, 10, 0), 60 * time.Second, time.Hour, 1, 9, "idx-search", 10},
	{8, "orders", "P1", day(6, 10, 0), 120 * time.Second, 30 * time.Minute, 0, 7, "db-orders", 25},
	{9, "payments", "P2", day(6, 12, 0), 180 * time.Second, time.Hour, 0, 8, "gw-payments", 5},
	{10, "search", "P4", day(7, 10, 0), 360 * time.Second, 2 * time.Hour, 0, 0, "", 0},
	{11, "orders", "P2", day(1, 0, 0).Add(-4 * time.Hour), 5 * time.Minute, 6 * time.Hour, 0, 0, "db-orders", 360},
	{12, "orders", "P1", day(9, 10, 0), 60 * time.Second, 10 * time.Minute, 0, 0, "db-orders", 10},
}

var seedAlertnames = []string{"HighErrorRate", "HighLatency", "DiskFull", "PodCrashLooping"}

// dashboardSeed returns the batches written, in order: first versions of
// the versioned rows, the final state, the final state again (a retried
// batch) and the first versions again (late): reads must see the final
// state once.
func dashboardSeed() []Batch {
	first, final := Batch{}, Batch{}
	for _, s := range seedIncidents {
		inc := IncidentRow{ID: s.id, Key: fmt.Sprintf("INC-%d", s.id), Title: s.service + " degraded", Status: "open",
			Priority: s.priority, Severity: "critical", CI: "svc-" + s.service, Service: s.service, AssignmentGroup: s.service + "-oncall",
			AlertCount: 1, EventCount: 1, OpenedAt: s.opened, RootCauseCI: s.rootCI, Version: 1}
		first.Incidents = append(first.Incidents, inc)
		inc.Version = 5
		inc.ReopenCount, inc.ProblemID, inc.UserImpactMinutes = s.reopens, s.problem, s.impact
		if s.ack > 0 {
			inc.Status, inc.AcknowledgedAt = "acknowledged", s.opened.Add(s.ack)
		}
		if s.res > 0 {
			inc.Status, inc.ResolvedAt = "resolved", s.opened.Add(s.res)
		}
		nAlerts, perAlert := 4, []int{8, 6, 4, 2}
		if s.id > 10 {
			nAlerts, perAlert = 1, []int{3}
		}
		for k := range nAlerts {
			fp := fmt.Sprintf("fp-%d-%d", s.id, k)
			a := AlertRow{IncidentID: s.id, Fingerprint: fp, Status: "firing", Severity: "critical", CI: "svc-" + s.service,
				Service: s.service, Alertname: seedAlertnames[k], Count: 1, FirstSeen: s.opened.Add(time.Duration(k-6) * 10 * time.Second),
				Version: 1}
			first.Alerts = append(first.Alerts, a)
			a.Count, a.Version, a.LastSeen = uint64(perAlert[k]), 5, a.FirstSeen.Add(time.Duration(perAlert[k]-1)*time.Minute)
			if s.res > 0 {
				a.Status = "resolved"
			}
			final.Alerts = append(final.Alerts, a)
			for n := range perAlert[k] {
				at := a.FirstSeen.Add(time.Duration(n) * time.Minute)
				source := "alertmanager"
				if n%2 == 1 {
					source = "kafka"
				}
				final.Events = append(final.Events, EventRow{Received: at, Time: at, Seq: uint64(len(final.Events) + 1), Source: source,
					Fingerprint: fp, Status: "firing", Severity: "critical", Alertname: a.Alertname, Service: s.service, CI: a.CI,
					LabelKeys: []string{"alertname", "service"}, LabelValues: []string{a.Alertname, s.service}})
			}
		}
		inc.AlertCount, inc.EventCount = uint64(nAlerts), 0
		for _, n := range perAlert[:nAlerts] {
			inc.EventCount += uint64(n)
		}
		final.Incidents = append(final.Incidents, inc)
		final.Changes = append(final.Changes, ChangeRow{IncidentID: s.id, Seq: 1, Time: s.opened, Kind: "opened", Actor: "triage", Message: "opened"})
	}
	// An incident merged into another: every figure leaves it out.
	merged := IncidentRow{ID: 13, Key: "INC-13", Title: "orders degraded", Status: "open", Priority: "P1", Severity: "critical",
		Service: "orders", AlertCount: 3, EventCount: 9, OpenedAt: day(2, 11, 0), Version: 1}
	first.Incidents = append(first.Incidents, merged)
	merged.Status, merged.Version = "merged", 2
	merged.AcknowledgedAt, merged.ResolvedAt, merged.ReopenCount = day(2, 11, 5), day(2, 11, 30), 1
	final.Incidents = append(final.Incidents, merged)
	sla := func(id, seq uint64, at time.Time, policy, target, kind string, fraction float64) {
		s := seedIncidents[id-1]
		final.SLAEvents = append(final.SLAEvents, SLAEventRow{IncidentID: id, Seq: seq, Time: at, Policy: policy, Target: target, Kind: kind,
			Fraction: fraction, BusinessSeconds: uint64(at.Sub(s.opened).Seconds()), Priority: s.priority, Service: s.service})
	}
	sla(1, 2, day(1, 10, 0).Add(45*time.Second), "critical", "acknowledge", "warning", 0.75)
	sla(2, 2, day(1, 15, 30), "standard", "resolve", "warning", 0.75)
	sla(2, 3, day(1, 15, 56), "standard", "resolve", "breach", 1)
	sla(3, 2, day(2, 10, 2), "critical", "acknowledge", "breach", 1)
	sla(5, 2, day(3, 17, 0), "standard", "resolve", "warning", 0.5)
	sla(5, 3, day(3, 18, 0), "standard", "resolve", "breach", 1)
	sla(7, 2, day(5, 10, 45), "standard", "resolve", "warning", 0.75)
	sla(11, 2, day(1, 0, 0).Add(-time.Hour), "standard", "resolve", "breach", 1) // before the range; 11 resolves in it
	fb := func(id, seq uint64, at time.Time, score uint8) {
		final.Feedback = append(final.Feedback, FeedbackRow{IncidentID: id, Seq: seq, Time: at, Score: score,
			Comment: "score " + strconv.Itoa(int(score)), Service: seedIncidents[id-1].service})
	}
	fb(1, 10, day(1, 12, 0), 5)
	fb(2, 10, day(1, 17, 0), 2)
	fb(2, 12, day(2, 9, 0), 4) // replaces the 2: the last feedback of an incident counts
	fb(3, 10, day(2, 11, 0), 3)
	fb(7, 10, day(5, 12, 0), 5)
	fb(12, 10, day(9, 12, 0), 1) // after the range
	prob := func(id uint64, status string, known bool, root string, n uint64, opened time.Time) {
		p := ProblemRow{ID: id, Key: fmt.Sprintf("PRB-%d", id), Title: root + " recurring", Status: "open", RootCI: root,
			Signature: "sig-" + root, IncidentCount: 1, OpenedAt: opened, UpdatedAt: opened, Version: 1}
		first.Problems = append(first.Problems, p)
		p.Status, p.KnownError, p.IncidentCount, p.UpdatedAt, p.Version = status, known, n, opened.Add(48*time.Hour), 3
		if known {
			p.Workaround = "fail over to the replica"
		}
		final.Problems = append(final.Problems, p)
	}
	prob(7, "known_error", true, "db-orders", 4, day(1, 16, 0))
	prob(8, "open", false, "gw-payments", 2, day(2, 12, 0))
	prob(9, "resolved", false, "idx-search", 1, time.Date(2026, 10, 20, 9, 0, 0, 0, time.UTC))
	return []Batch{first, final, final, first}
}

// The key figures, computed by hand from seedIncidents (see
// deploy/grafana/README.md for the definitions).
var dashboardFigures = map[string]string{
	// ack delays of the 9 incidents acknowledged in the range: 60 120 180 240 300 60 120 180 360
	"kpi-overview.json / MTTA / A": "180",
	// resolve delays of the 9 resolved in it (11 included): 3600 7200 1800 5400 3600 1800 3600 7200 21600
	"kpi-overview.json / MTTR / A":             "6200",
	"kpi-overview.json / Incidents opened / A": "10",
	// resolved in the range: 1 2 3 4 7 8 9 10 11; breached: 2 3 11
	"kpi-overview.json / SLA compliance / A": "0.666667",
	"kpi-overview.json / Reopen rate / A":    "0.2",
	"kpi-overview.json / Open problems / A":  "2",
	// 10 incidents, 40 alerts, 200 events
	"kpi-overview.json / Alert → incident compression / A": "0.75",
	"kpi-overview.json / Event → incident compression / A": "0.95",
	"kpi-overview.json / Noise reduction / A":              "95",
	"kpi-overview.json / Incident volume / A": "2026-11-01 00:00:00\t2\n2026-11-02 00:00:00\t1\n2026-11-03 00:00:00\t2\n" +
		"2026-11-04 00:00:00\t1\n2026-11-05 00:00:00\t1\n2026-11-06 00:00:00\t2\n2026-11-07 00:00:00\t1",
	"sla-xla.json / SLA compliance / A": "0.666667",
	"sla-xla.json / SLA compliance by service / A": "orders\t4\t2\t0.5\n" +
		"payments\t3\t1\t0.666667\nsearch\t2\t0\t1",
	"sla-xla.json / SLA warnings and breaches by policy and priority / A": "critical\tP1\t1\t1\n" +
		"standard\tP2\t2\t2\nstandard\tP3\t1\t0",
	"sla-xla.json / User-impact minutes by service / A": "orders\t4\t115\npayments\t3\t35\nsearch\t3\t10",
	// last scores of 1, 2, 3, 7: 5 4 3 5
	"sla-xla.json / Satisfaction / A":                    "4.25",
	"sla-xla.json / Satisfaction by service / A":         "orders\t2\t4.5\npayments\t1\t3\nsearch\t1\t5",
	"noise-reduction.json / Events / A":                  "200",
	"noise-reduction.json / Alerts / A":                  "40",
	"noise-reduction.json / Duplicate notifications / A": "160",
	"noise-reduction.json / Top noisy alertnames / A": "HighErrorRate\t80\t10\nHighLatency\t60\t10\n" +
		"DiskFull\t40\t10\nPodCrashLooping\t20\t10",
	"problems.json / Problems by status / A":    "known_error\t1\nopen\t1\nresolved\t1",
	"problems.json / Known errors / A":          "1",
	"problems.json / Recurring root CIs / A":    "db-orders\t4\t1\ngw-payments\t2\t1",
	"problems.json / Incidents per problem / A": "PRB-7\tdb-orders recurring\tknown_error\t4\nPRB-8\tgw-payments recurring\topen\t2\nPRB-9\tidx-search recurring\tresolved\t1",
	"service.json / $service":                   "orders\npayments\nsearch",
	// orders: acknowledged 1 2 5 8 (60 120 300 120), resolved 1 2 8 11 (3600 7200 1800 21600)
	"service.json / MTTA / A":                         "150",
	"service.json / MTTR / A":                         "8550",
	"service.json / Open at the end of the range / A": "INC-5\torders degraded\tP2\tacknowledged\t2026-11-03 16:00:00\tdb-orders",
}

// TestDashboardQueries runs every dashboard query on the ClickHouse server
// over the seeded data.
func TestDashboardQueries(t *testing.T) {
	qs := loadDashboardQueries(t)
	addr, _, db := testDB(t)
	w := openWriter(t, addr, db, nil, 0)
	ctx := context.Background()
	for _, b := range dashboardSeed() {
		if err := w.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// Like Grafana's datasource: the database is the connection's default
	// (defaultDatabase), the queries name bare tables.
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db},
		DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := map[string]string{}
	for _, q := range qs {
		res, err := runDashboardQuery(ctx, conn, q.SQL)
		if err != nil {
			t.Errorf("%s on ClickHouse %s: %v\n%s", q.Key, w.ServerVersion(), err, q.SQL)
			continue
		}
		got[q.Key] = res
	}
	t.Logf("%d dashboard queries on ClickHouse %s", len(got), w.ServerVersion())
	checkDashboardResults(t, "ClickHouse "+w.ServerVersion().String(), qs, got, *updateDashboards)
}

func checkDashboardResults(t *testing.T, engine string, qs []dashQuery, got map[string]string, update bool) {
	t.Helper()
	for key, want := range dashboardFigures {
		if g, ok := got[key]; !ok {
			t.Errorf("%s: no result for %s", engine, key)
		} else if g != want {
			t.Errorf("%s: %s:\ngot\n%s\nwant\n%s", engine, key, g, want)
		}
	}
	var golden strings.Builder
	for _, q := range qs {
		fmt.Fprintf(&golden, "== %s\n%s\n\n", q.Key, got[q.Key])
	}
	if update {
		if err := os.WriteFile(dashboardsGF, []byte(golden.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(dashboardsGF)
	if err != nil {
		t.Fatalf("%v (run go test -run TestDashboardQueries -update-dashboards with CLICKHOUSE_ADDR set)", err)
	}
	want := parseGolden(string(b))
	for _, q := range qs {
		w, ok := want[q.Key]
		switch {
		case !ok:
			t.Errorf("%s: %s is not in %s (-update-dashboards)", engine, q.Key, dashboardsGF)
		case got[q.Key] != w:
			t.Errorf("%s: %s:\ngot\n%s\nwant (%s)\n%s", engine, q.Key, got[q.Key], dashboardsGF, w)
		}
	}
	if len(want) != len(qs) {
		t.Errorf("%s has %d results, the dashboards %d queries (-update-dashboards)", dashboardsGF, len(want), len(qs))
	}
}

func parseGolden(s string) map[string]string {
	out := map[string]string{}
	for _, block := range strings.Split(s, "\n== ") {
		block = strings.TrimPrefix(block, "== ")
		key, body, _ := strings.Cut(block, "\n")
		if key != "" {
			out[key] = strings.TrimRight(body, "\n")
		}
	}
	return out
}

// runDashboardQuery returns q's result as text: a line per row, cells
// separated by tabs and normalized (see cell).
func runDashboardQuery(ctx context.Context, conn driver.Conn, q string) (string, error) {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var lines []string
	types := rows.ColumnTypes()
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return "", err
		}
		cells := make([]string, len(dest))
		for i, d := range dest {
			cells[i] = cell(reflect.ValueOf(d))
		}
		lines = append(lines, strings.Join(cells, "\t"))
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return strings.Join(lines, "\n"), nil
}

// cell formats a value the same way for both engines: numbers rounded to 6
// decimals, NaN and infinities as NULL (JSON has no such numbers), times as
// UTC "2006-01-02 15:04:05".
func cell(v reflect.Value) string {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return "NULL"
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return number(float64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return number(float64(v.Uint()))
	case reflect.Float32, reflect.Float64:
		return number(v.Float())
	case reflect.String:
		return v.String()
	}
	if t, ok := v.Interface().(time.Time); ok {
		return t.UTC().Format(time.DateTime)
	}
	return fmt.Sprint(v.Interface())
}

func number(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "NULL"
	}
	return strconv.FormatFloat(math.Round(f*1e6)/1e6, 'f', -1, 64)
}

// TestDashboardQueriesOnCurrentEngine runs every dashboard query on a
// current ClickHouse engine (chdb) over the same seeded data, inserted with
// SQL VALUES, when python3 can import chdb.
func TestDashboardQueriesOnCurrentEngine(t *testing.T) {
	qs := loadDashboardQueries(t)
	if testing.Short() {
		t.Skip("skipping chdb check in -short mode")
	}
	if err := exec.Command("python3", "-c", "import chdb").Run(); err != nil {
		t.Skipf("skipping: python3 cannot import chdb (%v); pip install chdb to run the dashboards on a current ClickHouse engine", err)
	}
	const db = "triage_dashboards"
	// No TTL: the seed's fixed dates must not expire as the calendar moves
	// on (TestDDLOnCurrentEngine checks the TTL itself).
	setup := Statements(db, Features{})
	for _, b := range dashboardSeed() {
		ins, err := valuesInserts(db, b)
		if err != nil {
			t.Fatal(err)
		}
		setup = append(setup, ins...)
	}
	type query struct {
		Key string `json:"key"`
		SQL string `json:"sql"`
	}
	in := struct {
		Database string   `json:"database"`
		Setup    []string `json:"setup"`
		Queries  []query  `json:"queries"`
	}{Database: db, Setup: setup}
	for _, q := range qs {
		in.Queries = append(in.Queries, query{q.Key, q.SQL})
	}
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboards.json")
	if err := os.WriteFile(file, js, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", filepath.Join("testdata", "chdb_dashboards.py"), file)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chdb: %v\n%s", err, stderr.String())
	}
	var res struct {
		Version string `json:"version"`
		Results []struct {
			Key   string  `json:"key"`
			Rows  [][]any `json:"rows"`
			Error string  `json:"error"`
		} `json:"results"`
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("chdb output: %v\n%s", err, out)
	}
	engine := "ClickHouse " + res.Version + " (chdb)"
	got := map[string]string{}
	for _, r := range res.Results {
		if r.Error != "" {
			t.Errorf("%s on %s: %s", r.Key, engine, r.Error)
			continue
		}
		lines := make([]string, len(r.Rows))
		for i, row := range r.Rows {
			cells := make([]string, len(row))
			for j, c := range row {
				switch c := c.(type) {
				case nil:
					cells[j] = "NULL"
				case json.Number:
					f, err := c.Float64()
					if err != nil {
						t.Fatalf("%s: %v", r.Key, err)
					}
					cells[j] = number(f)
				default:
					cells[j] = fmt.Sprint(c)
				}
			}
			lines[i] = strings.Join(cells, "\t")
		}
		got[r.Key] = strings.Join(lines, "\n")
	}
	t.Logf("%d dashboard queries on %s", len(got), engine)
	checkDashboardResults(t, engine, qs, got, false)
}

// valuesInserts renders b as INSERT ... VALUES statements, one per table,
// from the same row functions the Writer uses.
func valuesInserts(db string, b Batch) ([]string, error) {
	var out []string
	for _, tbl := range b.tables() {
		if tbl.rows == 0 {
			continue
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "INSERT INTO %s.%s (%s) VALUES ", db, tbl.name, strings.Join(tbl.columns, ", "))
		for i := range tbl.rows {
			var row sqlRow
			if err := tbl.row(&row, i); err != nil {
				return nil, err
			}
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(" + strings.Join(row, ", ") + ")")
		}
		out = append(out, sb.String())
	}
	return out, nil
}

// sqlRow is an appender that renders values as SQL literals.
type sqlRow []string

func (r *sqlRow) Append(vs ...any) error {
	for _, v := range vs {
		s, err := sqlLiteral(v)
		if err != nil {
			return err
		}
		*r = append(*r, s)
	}
	return nil
}

var sqlQuoter = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

func sqlLiteral(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return "'" + sqlQuoter.Replace(v) + "'", nil
	case time.Time:
		return "'" + v.UTC().Format(time.DateTime) + "'", nil
	case uint8, uint64:
		return fmt.Sprint(v), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case []string:
		parts := make([]string, len(v))
		for i, s := range v {
			parts[i] = "'" + sqlQuoter.Replace(s) + "'"
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	}
	return "", errors.New("no SQL literal for " + reflect.TypeOf(v).String())
}
