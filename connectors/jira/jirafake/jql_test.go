package jirafake

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestJQLSyntaxErrors(t *testing.T) {
	cases := []struct{ jql, want string }{
		{`status = `, "Error in the JQL Query: Expecting either a value, list or function before the end of the query."},
		{`status = OR`, "Error in the JQL Query: Expecting either a value, list or function but got 'OR'. You must surround 'OR' in quotation marks to use it as a value. (line 1, character 10)"},
		{`status Done`, "Error in the JQL Query: Expecting operator but got 'Done'. The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'. (line 1, character 8)"},
		{`status = Done foo`, "Error in the JQL Query: Expecting either 'OR' or 'AND' but got 'foo'. (line 1, character 15)"},
		{`(status = Done`, "Error in the JQL Query: Expecting ')' before the end of the query."},
		{`summary ~ "unterminated`, "Error in the JQL Query: The quoted string 'unterminated' has not been completed. (line 1, character 11)"},
		{`status in Done`, "Error in the JQL Query: Expecting '(' but got 'Done'. (line 1, character 11)"},
		{`status in (Done`, "Error in the JQL Query: Expecting ')' before the end of the query."},
		{`resolution is Done`, "Error in the JQL Query: Expecting 'EMPTY' or 'NULL' but got 'Done'. (line 1, character 15)"},
		{`status = Done ORDER created`, "Error in the JQL Query: Expecting 'BY' but got 'created'. (line 1, character 21)"},
		{`status = Done AND`, "Error in the JQL Query: Expecting a field name before the end of the query."},
		{"project = OPS\nAND = 1", "Error in the JQL Query: Expecting a field name but got '='. (line 2, character 5)"},
	}
	for _, tc := range cases {
		t.Run(tc.jql, func(t *testing.T) {
			_, err := parseJQL(tc.jql)
			if err == nil {
				t.Fatalf("no error")
			}
			if err.Error() != tc.want {
				t.Errorf("got  %q\nwant %q", err.Error(), tc.want)
			}
		})
	}
}

func TestJQLParsesValidQueries(t *testing.T) {
	for _, jql := range []string{
		``, `ORDER BY created DESC`, `project = OPS`, `project = "OPS" AND status != Done OR NOT (labels in (a, "b c"))`,
		`cf[10050] ~ "abc" AND "Impact Score" >= 3`, `issue.property[triage].fingerprint = "fp-1"`, `issue.property["triage"].incident in ("INC-1", INC-2)`,
		`assignee = currentUser() && resolution is EMPTY || resolution is not empty`, `updated >= -5m ORDER BY updated ASC, key DESC`,
		`created > "2025/03/04 10:00" AND created <= '2025-03-05'`, `!(status = Done)`, `key in (OPS-1,OPS-2)`,
	} {
		if _, err := parseJQL(jql); err != nil {
			t.Errorf("%q: %v", jql, err)
		}
	}
}

func TestJQLDates(t *testing.T) {
	now := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2025/03/01 08:30", time.Date(2025, 3, 1, 8, 30, 0, 0, time.UTC), true},
		{"2025-03-01 08:30", time.Date(2025, 3, 1, 8, 30, 0, 0, time.UTC), true},
		{"2025-03-01", time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), true},
		{"2025/03/01", time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), true},
		{"-5m", now.Add(-5 * time.Minute), true},
		{"-1h", now.Add(-time.Hour), true},
		{"-2d", now.Add(-48 * time.Hour), true},
		{"1w 2d", now.Add(9 * 24 * time.Hour), true},
		{"yesterday", time.Time{}, false},
		{"2025-13-01", time.Time{}, false},
		{"-5x", time.Time{}, false},
	}
	for _, tc := range cases {
		got, ok := parseJQLDate(tc.in, now)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("%q: %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTextMatch(t *testing.T) {
	cases := []struct {
		doc, q string
		want   bool
	}{
		{"Orders API 5xx above 5%", "orders", true},
		{"Orders API 5xx above 5%", "ORDERS api", true},
		{"Orders API 5xx above 5%", "api orders", true},
		{"Orders API 5xx above 5%", "payments", false},
		{"Orders API 5xx above 5%", "ord*", true},
		{"Orders API 5xx above 5%", "ord", false},
		{"Orders API 5xx above 5%", `"api 5xx"`, true},
		{"Orders API 5xx above 5%", `"5xx api"`, false},
		{"triage-fp:abc123 seen", "abc123", true},
		{"", "x", false},
		{"x", "", false},
	}
	for _, tc := range cases {
		if got := textMatch(tc.doc, tc.q); got != tc.want {
			t.Errorf("textMatch(%q, %q) = %v", tc.doc, tc.q, got)
		}
	}
}

// searchKeys runs a Data Center search and returns the keys found, or the error messages.
func searchKeys(f *fixture, jql string) ([]string, []string) {
	r := f.call("GET", "/rest/api/2/search?fields=summary&maxResults=100&jql="+url.QueryEscape(jql), nil)
	if r.status != 200 {
		var msgs []string
		for _, m := range r.messages() {
			msgs = append(msgs, m.(string))
		}
		if len(msgs) == 0 {
			msgs = []string{string(r.raw)}
		}
		return nil, msgs
	}
	var keys []string
	for _, is := range r.body["issues"].([]any) {
		keys = append(keys, is.(map[string]any)["key"].(string))
	}
	return keys, nil
}

func TestJQLEvaluation(t *testing.T) {
	f := newFixture(t, DataCenter, nil)
	// OPS-1: open, High, labels a,b, assigned bob, fingerprint property, created at T.
	f.create(map[string]any{"summary": "Orders API errors", "description": "5xx above threshold", "priority": map[string]any{"name": "High"},
		"labels": []string{"a", "b"}, "assignee": map[string]any{"name": "bob"}, "customfield_10050": "fp-orders", "customfield_10051": 3,
		"customfield_10052": map[string]any{"value": "critical"}, "components": []any{map[string]any{"name": "db"}}})
	f.call("PUT", "/rest/api/2/issue/OPS-1/properties/triage", map[string]any{"fingerprint": "fp-1", "incident": "INC-1", "n": 5})
	f.clock.Advance(time.Hour)
	// OPS-2: done, Low, no labels, unassigned, created T+1h.
	f.create(map[string]any{"summary": "Payments latency", "priority": map[string]any{"name": "Low"}, "customfield_10051": 10})
	f.call("POST", "/rest/api/2/issue/OPS-2/transitions", map[string]any{"transition": map[string]any{"id": "31"}})
	f.clock.Advance(time.Hour)
	// SD-1: service desk, created T+2h, comment mentions orders.
	f.create(map[string]any{"project": map[string]any{"key": "SD"}, "issuetype": map[string]any{"name": "Incident"}, "summary": "Customer cannot pay", "labels": []string{"b"}})
	f.call("POST", "/rest/api/2/issue/SD-1/comment", map[string]any{"body": "related to orders outage"})

	cases := []struct {
		jql  string
		want string // keys in order, comma separated; or "ERR:" + substring
	}{
		{`project = OPS`, "OPS-2,OPS-1"},
		{`project = OPS ORDER BY key ASC`, "OPS-1,OPS-2"},
		{`project in (OPS, SD) ORDER BY created ASC`, "OPS-1,OPS-2,SD-1"},
		{`project = "Service Desk"`, "SD-1"},
		{`key = OPS-2`, "OPS-2"},
		{`issuekey in (OPS-1, SD-1) ORDER BY key`, "OPS-1,SD-1"},
		{`status = "To Do"`, "OPS-1"},
		{`status != Done ORDER BY key`, "OPS-1,SD-1"},
		{`status = Open`, "SD-1"},
		{`statusCategory = Done`, "OPS-2"},
		{`statusCategory != done ORDER BY key`, "OPS-1,SD-1"},
		{`resolution = Unresolved ORDER BY key`, "OPS-1,SD-1"},
		{`resolution is EMPTY ORDER BY key`, "OPS-1,SD-1"},
		{`resolution is not EMPTY`, "OPS-2"},
		{`resolution = Done`, "OPS-2"},
		{`resolution != Done`, ""}, // Jira leaves out unresolved issues from a negative clause
		{`priority = High`, "OPS-1"},
		{`priority > Medium`, "OPS-1"},
		{`priority in (High, Low) ORDER BY priority DESC`, "OPS-1,OPS-2"},
		{`priority in (High, Low) ORDER BY priority ASC`, "OPS-2,OPS-1"},
		{`labels = b ORDER BY key`, "OPS-1,SD-1"},
		{`labels in (a) AND labels = b`, "OPS-1"},
		{`labels != a`, "SD-1"},
		{`labels is EMPTY`, "OPS-2"},
		{`component = db`, "OPS-1"},
		{`assignee = bob`, "OPS-1"},
		{`assignee is EMPTY ORDER BY key`, "OPS-2,SD-1"},
		{`assignee != bob`, ""},
		{`assignee = currentUser()`, ""},
		{`reporter = currentUser() ORDER BY key`, "OPS-1,OPS-2,SD-1"},
		{`summary ~ orders`, "OPS-1"},
		{`summary ~ "ORDERS api"`, "OPS-1"},
		{`summary ~ "\"api errors\""`, "OPS-1"},
		{`summary !~ orders ORDER BY key`, "OPS-2,SD-1"},
		{`description ~ threshold`, "OPS-1"},
		{`comment ~ outage`, "SD-1"},
		{`text ~ orders ORDER BY key`, "OPS-1,SD-1"},
		{`text ~ "fp-orders"`, "OPS-1"},
		{`cf[10050] ~ "fp-orders"`, "OPS-1"},
		{`"Triage Fingerprint" ~ "fp-orders"`, "OPS-1"},
		{`cf[10051] >= 5`, "OPS-2"},
		{`"Impact Score" < 5`, "OPS-1"},
		{`Severity = critical`, "OPS-1"},
		{`issue.property[triage].fingerprint = "fp-1"`, "OPS-1"},
		{`issue.property[triage].fingerprint = "fp-2"`, ""},
		{`issue.property[triage].incident in (INC-1, INC-9)`, "OPS-1"},
		{`issue.property[triage].n = 5`, ""}, // not indexed: matches nothing, as on Jira
		{`created >= "2025-03-04 11:00" ORDER BY created`, "OPS-2,SD-1"},
		{`created < "2025/03/04 11:00"`, "OPS-1"},
		{`created >= -90m ORDER BY key`, "OPS-2,SD-1"},
		{`updated > -1h`, "SD-1"},
		{`resolved >= "2025-03-04"`, "OPS-2"},
		{`NOT project = OPS`, "SD-1"},
		{`project = OPS AND (priority = Low OR labels = a) ORDER BY key`, "OPS-1,OPS-2"},
		{`project = OPS && !(priority = Low)`, "OPS-1"},
		{`project = NOPE`, "ERR:The value 'NOPE' does not exist for the field 'project'."},
		{`foo = bar`, "ERR:Field 'foo' does not exist or you do not have permission to view it."},
		{`cf[99999] = 1`, "ERR:Field 'cf[99999]' does not exist or you do not have permission to view it."},
		{`status ~ Done`, "ERR:The operator '~' is not supported by the 'status' field."},
		{`summary = orders`, "ERR:The operator '=' is not supported by the 'summary' field."},
		{`status = Nope`, "ERR:The value 'Nope' does not exist for the field 'status'."},
		{`key = OPS-99`, "ERR:An issue with key 'OPS-99' does not exist for field 'key'."},
		{`key = nonsense`, "ERR:The issue key 'nonsense' for field 'key' is invalid."},
		{`created > tomorrow`, "ERR:Date value 'tomorrow' for field 'created' is invalid."},
		{`assignee = nobody`, "ERR:The value 'nobody' does not exist for the field 'assignee'."},
		{`project = OPS ORDER BY description`, "ERR:Not able to sort using field 'description'."},
		{`project = OPS ORDER BY nosuch`, "ERR:Field 'nosuch' does not exist"},
		{`assignee = membersOf(x)`, "ERR:Unable to find JQL function 'membersOf()'."},
	}
	for _, tc := range cases {
		t.Run(tc.jql, func(t *testing.T) {
			keys, errs := searchKeys(f, tc.jql)
			if strings.HasPrefix(tc.want, "ERR:") {
				if len(errs) == 0 || !strings.Contains(errs[0], strings.TrimPrefix(tc.want, "ERR:")) {
					t.Errorf("got %v %v, want error %q", keys, errs, tc.want)
				}
				return
			}
			if errs != nil {
				t.Fatalf("error %v", errs)
			}
			if got := strings.Join(keys, ","); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	// Several bad fields are all reported, as Jira does.
	_, errs := searchKeys(f, `foo = 1 AND bar = 2`)
	if len(errs) != 2 {
		t.Errorf("errors %v", errs)
	}
	if !slices.Contains(errs, "Field 'bar' does not exist or you do not have permission to view it.") {
		t.Errorf("errors %v", errs)
	}
}

// FuzzJQL checks that no query, however broken, panics the parser or the evaluator.
func FuzzJQL(f *testing.F) {
	for _, s := range []string{`project = OPS`, `(a = "b`, `cf[`, `issue.property[`, `issue.property[x].y in (1,`, `NOT NOT !`, `a in f(`, `ORDER BY`, `'\`, "status = \xff", `created > -99999999999m`, `priority > x ORDER BY cf[1] desc,`} {
		f.Add(s)
	}
	fx := &fixture{}
	c := newClock()
	fx.s = New(baseOptions(Cloud, c))
	defer fx.s.Close()
	if _, err := fx.s.create(&fx.s.cfg.Users[0], mustObj(`{"fields":{"project":{"key":"OPS"},"issuetype":{"name":"Task"},"summary":"x","labels":["a"]}}`)); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, jql string) {
		fx.s.mu.Lock()
		defer fx.s.mu.Unlock()
		_, _ = fx.s.run(&fx.s.cfg.Users[0], &searchParams{jql: jql}, false)
	})
}

func mustObj(s string) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal([]byte(s), &m)
	return m
}
