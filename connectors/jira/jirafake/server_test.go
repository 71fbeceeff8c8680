package jirafake

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAuthentication(t *testing.T) {
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	cases := []struct {
		name, deployment, authz string
		want                    int
	}{
		{"cloud email and token", Cloud, basic("alice@example.com", "tok-alice"), 200},
		{"cloud email case-insensitive", Cloud, basic("Alice@Example.com", "tok-alice"), 200},
		{"cloud wrong token", Cloud, basic("alice@example.com", "tok-bob"), 401},
		{"cloud username instead of email", Cloud, basic("alice", "tok-alice"), 401},
		{"cloud bearer", Cloud, "Bearer pat-alice", 401},
		{"cloud missing", Cloud, "", 401},
		{"cloud garbage", Cloud, "Basic !!!", 401},
		{"dc pat", DataCenter, "Bearer pat-alice", 200},
		{"dc wrong pat", DataCenter, "Bearer nope", 401},
		{"dc empty bearer", DataCenter, "Bearer ", 401},
		{"dc basic name and token", DataCenter, basic("alice", "tok-alice"), 200},
		{"dc missing", DataCenter, "", 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.deployment, nil)
			r := f.callAs(tc.authz, "GET", "/rest/api/2/myself", nil)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.raw)
			}
			if tc.want == 401 {
				if m := r.messages(); len(m) != 1 || !strings.Contains(m[0].(string), "not authenticated") {
					t.Errorf("401 body %s", r.raw)
				}
				return
			}
			if tc.deployment == Cloud && r.body["accountId"] != alice.AccountID {
				t.Errorf("myself %s", r.raw)
			}
			if tc.deployment == DataCenter && r.body["name"] != "alice" {
				t.Errorf("myself %s", r.raw)
			}
		})
	}
}

func TestMetadataEndpoints(t *testing.T) {
	for _, dep := range []string{Cloud, DataCenter} {
		f := newFixture(t, dep, nil)
		info := f.call("GET", "/rest/api/2/serverInfo", nil)
		want := map[string]string{Cloud: "Cloud", DataCenter: "Server"}[dep]
		if info.status != 200 || info.body["deploymentType"] != want {
			t.Errorf("%s serverInfo %s", dep, info.raw)
		}
		var pr []map[string]any
		r := f.call("GET", "/rest/api/2/priority", nil)
		mustUnmarshal(t, r.raw, &pr)
		if len(pr) != 5 || pr[0]["name"] != "Highest" || pr[0]["id"] != "1" || pr[4]["name"] != "Lowest" {
			t.Errorf("priorities %s", r.raw)
		}
		var res []map[string]any
		mustUnmarshal(t, f.call("GET", "/rest/api/2/resolution", nil).raw, &res)
		if len(res) != 4 || res[0]["name"] != "Done" {
			t.Errorf("resolutions %v", res)
		}
		var fields []map[string]any
		mustUnmarshal(t, f.call("GET", "/rest/api/2/field", nil).raw, &fields)
		found := false
		for _, fl := range fields {
			if fl["id"] == "customfield_10050" && fl["custom"] == true && fl["name"] == "Triage Fingerprint" {
				found = true
			}
		}
		if !found {
			t.Errorf("custom field missing from /field")
		}
	}
}

func TestCreateValidation(t *testing.T) {
	long := strings.Repeat("x", 256)
	cases := []struct {
		name   string
		body   any
		status int
		field  string // expected key in errors
		msg    string // substring of the message
	}{
		{"ok", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s"}}, 201, "", ""},
		{"project by id", map[string]any{"fields": map[string]any{"project": map[string]any{"id": "10000"}, "issuetype": map[string]any{"id": "10002"}, "summary": "s"}}, 201, "", ""},
		{"missing summary", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}}}, 400, "summary", "You must specify a summary of the issue."},
		{"blank summary", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "  "}}, 400, "summary", "You must specify a summary"},
		{"multi-line summary", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "a\nb"}}, 400, "summary", "newline"},
		{"long summary", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": long}}, 400, "summary", "less than 255"},
		{"summary not a string", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": 5}}, 400, "summary", "must be a string"},
		{"missing project", map[string]any{"fields": map[string]any{"issuetype": map[string]any{"name": "Task"}, "summary": "s"}}, 400, "project", "project is required"},
		{"bad project", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "NOPE"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s"}}, 400, "project", "valid project is required"},
		{"bad issue type", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Epic"}, "summary": "s"}}, 400, "issuetype", "valid issue type is required"},
		{"issue type of another project", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "SD"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s"}}, 400, "issuetype", "valid issue type"},
		{"bad priority", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s", "priority": map[string]any{"name": "P1"}}}, 400, "priority", "The priority selected is invalid."},
		{"label with space", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s", "labels": []string{"ok", "not ok"}}}, 400, "labels", "contains spaces"},
		{"labels not array", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s", "labels": "x"}}, 400, "labels", "data was not an array"},
		{"unknown component", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s", "components": []any{map[string]any{"name": "web"}}}}, 400, "components", "Component name 'web' is not valid"},
		{"unknown custom field", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s", "customfield_99999": "x"}}, 400, "customfield_99999", "Field 'customfield_99999' cannot be set. It is not on the appropriate screen, or unknown."},
		{"status not settable", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s", "status": map[string]any{"name": "Done"}}}, 400, "status", "cannot be set"},
		{"resolution not on create screen", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s", "resolution": map[string]any{"name": "Done"}}}, 400, "resolution", "cannot be set"},
		{"number field wrong type", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s", "customfield_10051": "high"}}, 400, "customfield_10051", "must be a number"},
		{"select bad option", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s", "customfield_10052": map[string]any{"value": "fatal"}}}, 400, "customfield_10052", "Option value 'fatal' is not valid"},
		{"unknown assignee", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s", "assignee": map[string]any{"accountId": "nobody"}}}, 400, "assignee", "does not exist"},
		{"description too long", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s", "description": strings.Repeat("d", 32768)}}, 400, "description", "32,767"},
		{"unknown top-level property", map[string]any{"fields": map[string]any{}, "bogus": 1}, 400, "", `Unrecognized field "bogus"`},
		{"malformed json", `{"fields": {`, 400, "", "Unexpected"},
		{"empty body", ``, 400, "", "No content to map"},
		{"array body", `[]`, 400, "", "START_ARRAY"},
		{"fields not object", `{"fields": []}`, 400, "", "START_ARRAY"},
		{"property too big", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s"}, "properties": []any{map[string]any{"key": "k", "value": strings.Repeat("v", 40000)}}}, 400, "", "too long"},
		{"property without key", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s"}, "properties": []any{map[string]any{"value": 1}}}, 400, "", "key"},
	}
	f := newFixture(t, Cloud, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.s.Issues())
			r := f.call("POST", "/rest/api/2/issue", tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if tc.status != 201 {
				if len(f.s.Issues()) != before {
					t.Errorf("a failed create stored an issue")
				}
				if _, ok := r.body["errorMessages"]; !ok {
					t.Errorf("no errorMessages in %s", r.raw)
				}
			}
			if tc.field != "" {
				got, _ := r.fieldErrors()[tc.field].(string)
				if !strings.Contains(got, tc.msg) {
					t.Errorf("errors[%s] = %q, want %q (%s)", tc.field, got, tc.msg, r.raw)
				}
			} else if tc.msg != "" {
				m := r.messages()
				if len(m) == 0 || !strings.Contains(m[0].(string), tc.msg) {
					t.Errorf("errorMessages %v, want %q", m, tc.msg)
				}
			}
		})
	}
}

func TestCreateAndGet(t *testing.T) {
	f := newFixture(t, Cloud, nil)
	r := f.call("POST", "/rest/api/2/issue", map[string]any{
		"fields": map[string]any{
			"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Incident"},
			"summary": "orders 5xx", "description": "details", "priority": map[string]any{"name": "High"},
			"labels": []string{"triage", "alert"}, "components": []any{map[string]any{"name": "db"}},
			"customfield_10050": "fp-1", "customfield_10051": 7.5, "customfield_10052": map[string]any{"value": "critical"},
			"customfield_10053": []string{"orders"}, "assignee": map[string]any{"accountId": bob.AccountID},
		},
		"properties": []any{map[string]any{"key": "triage", "value": map[string]any{"incident": "INC-1"}}},
	})
	if r.status != 201 || r.body["key"] != "OPS-1" || r.body["id"] != "10000" || !strings.HasSuffix(r.body["self"].(string), "/rest/api/2/issue/10000") {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if k := f.create(map[string]any{"summary": "second"}); k != "OPS-2" {
		t.Errorf("second key %s", k)
	}
	if k := f.create(map[string]any{"project": map[string]any{"key": "SD"}, "issuetype": map[string]any{"name": "Incident"}, "summary": "sd"}); k != "SD-1" {
		t.Errorf("per-project numbering: %s", k)
	}

	g := f.call("GET", "/rest/api/2/issue/ops-1?properties=triage&expand=names,changelog", nil)
	if g.status != 200 {
		t.Fatalf("get %d %s", g.status, g.raw)
	}
	fields := g.body["fields"].(map[string]any)
	checks := map[string]any{
		"summary": "orders 5xx", "description": "details", "created": "2025-03-04T10:00:00.000+0000", "updated": "2025-03-04T10:00:00.000+0000",
		"resolution": nil, "resolutiondate": nil, "customfield_10050": "fp-1", "customfield_10051": 7.5,
	}
	for k, v := range checks {
		if fields[k] != v {
			t.Errorf("fields.%s = %v, want %v", k, fields[k], v)
		}
	}
	st := fields["status"].(map[string]any)
	if st["name"] != "To Do" || st["statusCategory"].(map[string]any)["key"] != "new" {
		t.Errorf("status %v", st)
	}
	if fields["priority"].(map[string]any)["name"] != "High" || fields["assignee"].(map[string]any)["accountId"] != bob.AccountID {
		t.Errorf("priority/assignee %v %v", fields["priority"], fields["assignee"])
	}
	if fields["reporter"].(map[string]any)["accountId"] != alice.AccountID {
		t.Errorf("reporter %v", fields["reporter"])
	}
	if l := fields["labels"].([]any); len(l) != 2 || l[0] != "alert" || l[1] != "triage" {
		t.Errorf("labels %v (Jira keeps them sorted)", l)
	}
	if fields["customfield_10052"].(map[string]any)["value"] != "critical" {
		t.Errorf("select %v", fields["customfield_10052"])
	}
	if g.body["properties"].(map[string]any)["triage"].(map[string]any)["incident"] != "INC-1" {
		t.Errorf("properties %v", g.body["properties"])
	}
	if g.body["names"].(map[string]any)["customfield_10050"] != "Triage Fingerprint" {
		t.Errorf("names %v", g.body["names"])
	}
	if cm := fields["comment"].(map[string]any); cm["total"] != 0.0 {
		t.Errorf("comment %v", cm)
	}

	// fields selection
	sel := f.call("GET", "/rest/api/2/issue/OPS-1?fields=summary,status", nil)
	if fs := sel.body["fields"].(map[string]any); len(fs) != 2 {
		t.Errorf("fields=summary,status gave %v", fs)
	}
	nav := f.call("GET", "/rest/api/2/issue/10000?fields=*navigable,-description", nil).body["fields"].(map[string]any)
	if _, ok := nav["comment"]; ok {
		t.Errorf("*navigable includes comment")
	}
	if _, ok := nav["description"]; ok {
		t.Errorf("-description ignored")
	}

	nf := f.call("GET", "/rest/api/2/issue/OPS-99", nil)
	if nf.status != 404 || nf.messages()[0] != "Issue does not exist or you do not have permission to see it." {
		t.Errorf("404: %d %s", nf.status, nf.raw)
	}
}

func TestEditIssue(t *testing.T) {
	f := newFixture(t, Cloud, nil)
	key := f.create(map[string]any{"summary": "s", "labels": []string{"a"}})
	f.clock.Advance(90e9)
	r := f.call("PUT", "/rest/api/2/issue/"+key+"?notifyUsers=false", map[string]any{
		"fields": map[string]any{"priority": map[string]any{"name": "Highest"}, "summary": "s2"},
		"update": map[string]any{"labels": []any{map[string]any{"add": "b"}, map[string]any{"remove": "a"}}, "comment": []any{map[string]any{"add": map[string]any{"body": "via update"}}}},
	})
	if r.status != 204 {
		t.Fatalf("edit %d %s", r.status, r.raw)
	}
	is, _ := f.s.Issue(key)
	if is.Priority != "Highest" || is.Summary != "s2" || len(is.Labels) != 1 || is.Labels[0] != "b" || is.Comments != 1 {
		t.Errorf("after edit %+v", is)
	}
	if !is.Updated.Equal(f.clock.Now()) {
		t.Errorf("updated %v", is.Updated)
	}
	g := f.call("GET", "/rest/api/2/issue/"+key+"?expand=changelog", nil)
	hs := g.body["changelog"].(map[string]any)["histories"].([]any)
	if len(hs) != 1 {
		t.Fatalf("histories %v", hs)
	}
	fieldsChanged := map[string]bool{}
	for _, it := range hs[0].(map[string]any)["items"].([]any) {
		fieldsChanged[it.(map[string]any)["field"].(string)] = true
	}
	for _, want := range []string{"summary", "priority", "labels"} {
		if !fieldsChanged[want] {
			t.Errorf("changelog lacks %s: %v", want, fieldsChanged)
		}
	}
	bad := []struct {
		name  string
		body  any
		field string
	}{
		{"resolution", map[string]any{"fields": map[string]any{"resolution": map[string]any{"name": "Done"}}}, "resolution"},
		{"project", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "SD"}}}, "project"},
		{"summary empty", map[string]any{"fields": map[string]any{"summary": ""}}, "summary"},
		{"label space", map[string]any{"update": map[string]any{"labels": []any{map[string]any{"add": "a b"}}}}, "labels"},
		{"unknown field", map[string]any{"fields": map[string]any{"foo": 1}}, "foo"},
	}
	for _, b := range bad {
		r := f.call("PUT", "/rest/api/2/issue/"+key, b.body)
		if r.status != 400 || r.fieldErrors()[b.field] == nil {
			t.Errorf("%s: %d %s", b.name, r.status, r.raw)
		}
	}
	if after, _ := f.s.Issue(key); after.Summary != "s2" {
		t.Errorf("failed edits changed the issue: %+v", after)
	}
	if r := f.call("PUT", "/rest/api/2/issue/OPS-77", map[string]any{"fields": map[string]any{}}); r.status != 404 {
		t.Errorf("edit missing issue: %d", r.status)
	}
}

func TestComments(t *testing.T) {
	f := newFixture(t, Cloud, nil)
	key := f.create(map[string]any{"summary": "s"})
	for i, body := range []string{"first", "second", "third"} {
		f.clock.Advance(1e9)
		r := f.call("POST", "/rest/api/2/issue/"+key+"/comment", map[string]any{"body": body})
		if r.status != 201 || r.body["body"] != body || r.body["author"].(map[string]any)["accountId"] != alice.AccountID || r.body["id"] != []string{"10000", "10001", "10002"}[i] {
			t.Fatalf("comment %d %s", r.status, r.raw)
		}
	}
	r := f.call("GET", "/rest/api/2/issue/"+key+"/comment?startAt=1&maxResults=1&orderBy=-created", nil)
	cs := r.body["comments"].([]any)
	if r.body["total"] != 3.0 || len(cs) != 1 || cs[0].(map[string]any)["body"] != "second" {
		t.Errorf("page %s", r.raw)
	}
	cases := []struct {
		name string
		body any
		want string
	}{
		{"too long", map[string]any{"body": strings.Repeat("c", 32768)}, "32,767"},
		{"empty", map[string]any{"body": ""}, "can not be empty"},
		{"missing", map[string]any{}, "can not be empty"},
	}
	for _, tc := range cases {
		r := f.call("POST", "/rest/api/2/issue/"+key+"/comment", tc.body)
		if r.status != 400 || !strings.Contains(r.fieldErrors()["comment"].(string), tc.want) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}
	if r := f.call("POST", "/rest/api/2/issue/"+key+"/comment", map[string]any{"body": "x", "bogus": true}); r.status != 400 {
		t.Errorf("unknown comment property: %d", r.status)
	}
	if n := len(f.s.Comments(key)); n != 3 {
		t.Errorf("comments stored %d", n)
	}
}

func TestTransitions(t *testing.T) {
	f := newFixture(t, Cloud, nil)
	ops := f.create(map[string]any{"summary": "s"})
	tr := f.call("GET", "/rest/api/2/issue/"+ops+"/transitions", nil)
	names := []string{}
	for _, x := range tr.body["transitions"].([]any) {
		m := x.(map[string]any)
		names = append(names, m["name"].(string)+"->"+m["to"].(map[string]any)["name"].(string))
	}
	if strings.Join(names, ",") != "In Progress->In Progress,Done->Done" {
		t.Errorf("software transitions from To Do: %v", names)
	}
	// The simplified workflow's Done transition has no screen: resolution cannot be set.
	if r := f.call("POST", "/rest/api/2/issue/"+ops+"/transitions", map[string]any{"transition": map[string]any{"id": "31"}, "fields": map[string]any{"resolution": map[string]any{"name": "Done"}}}); r.status != 400 || r.fieldErrors()["resolution"] == nil {
		t.Errorf("resolution on a screenless transition: %d %s", r.status, r.raw)
	}
	f.clock.Advance(60e9)
	if r := f.call("POST", "/rest/api/2/issue/"+ops+"/transitions", map[string]any{"transition": map[string]any{"id": "31"}}); r.status != 204 {
		t.Fatalf("done: %d %s", r.status, r.raw)
	}
	is, _ := f.s.Issue(ops)
	if is.Status != "Done" || is.StatusCategory != "done" || is.Resolution != "Done" || !is.ResolutionDate.Equal(f.clock.Now()) {
		t.Errorf("after Done %+v", is)
	}
	if r := f.call("POST", "/rest/api/2/issue/"+ops+"/transitions", map[string]any{"transition": map[string]any{"id": 11}}); r.status != 204 {
		t.Fatalf("reopen: %d %s", r.status, r.raw)
	}
	if is, _ := f.s.Issue(ops); is.Resolution != "" || !is.ResolutionDate.IsZero() || is.Status != "To Do" {
		t.Errorf("reopen kept the resolution: %+v", is)
	}

	sd := f.create(map[string]any{"project": map[string]any{"key": "SD"}, "issuetype": map[string]any{"name": "Incident"}, "summary": "s"})
	bad := []struct {
		name, id, want string
	}{
		{"not available", "781", "Transition id '781' is not valid for this issue."},
		{"unknown", "9999", "Transition id '9999' is not valid for this issue."},
		{"not an integer", "abc", "'transition' identifier must be an integer"},
	}
	for _, b := range bad {
		r := f.call("POST", "/rest/api/2/issue/"+sd+"/transitions", map[string]any{"transition": map[string]any{"id": b.id}})
		if r.status != 400 || len(r.messages()) == 0 || r.messages()[0] != b.want {
			t.Errorf("%s: %d %s", b.name, r.status, r.raw)
		}
	}
	exp := f.call("GET", "/rest/api/2/issue/"+sd+"/transitions?expand=transitions.fields", nil)
	var resolve map[string]any
	for _, x := range exp.body["transitions"].([]any) {
		if m := x.(map[string]any); m["id"] == "761" {
			resolve = m
		}
	}
	if resolve == nil || resolve["hasScreen"] != true || resolve["fields"].(map[string]any)["resolution"] == nil {
		t.Fatalf("resolve transition %v", resolve)
	}
	if r := f.call("POST", "/rest/api/2/issue/"+sd+"/transitions", map[string]any{"transition": map[string]any{"id": "761"}, "fields": map[string]any{"resolution": map[string]any{"name": "Won't Do"}},
		"update": map[string]any{"comment": []any{map[string]any{"add": map[string]any{"body": "closing"}}}}}); r.status != 204 {
		t.Fatalf("resolve: %d %s", r.status, r.raw)
	}
	if is, _ := f.s.Issue(sd); is.Status != "Resolved" || is.Resolution != "Won't Do" || is.Comments != 1 {
		t.Errorf("after resolve %+v", is)
	}
	// Resolved -> Closed keeps the resolution.
	if r := f.call("POST", "/rest/api/2/issue/"+sd+"/transitions", map[string]any{"transition": map[string]any{"id": "771"}}); r.status != 204 {
		t.Fatalf("close: %d %s", r.status, r.raw)
	}
	if is, _ := f.s.Issue(sd); is.Status != "Closed" || is.Resolution != "Won't Do" {
		t.Errorf("after close %+v", is)
	}
}

func TestAssign(t *testing.T) {
	for _, dep := range []string{Cloud, DataCenter} {
		f := newFixture(t, dep, nil)
		key := f.create(map[string]any{"summary": "s"})
		body := map[string]any{"accountId": bob.AccountID}
		if dep == DataCenter {
			body = map[string]any{"name": "bob"}
		}
		if r := f.call("PUT", "/rest/api/2/issue/"+key+"/assignee", body); r.status != 204 {
			t.Fatalf("%s assign: %d %s", dep, r.status, r.raw)
		}
		want := map[string]string{Cloud: bob.AccountID, DataCenter: "bob"}[dep]
		if is, _ := f.s.Issue(key); is.Assignee != want {
			t.Errorf("%s assignee %q", dep, is.Assignee)
		}
		nullBody := map[string]any{"accountId": nil}
		if dep == DataCenter {
			nullBody = map[string]any{"name": nil}
		}
		if r := f.call("PUT", "/rest/api/2/issue/"+key+"/assignee", nullBody); r.status != 204 {
			t.Errorf("%s unassign %d", dep, r.status)
		}
		if is, _ := f.s.Issue(key); is.Assignee != "" {
			t.Errorf("%s unassign left %q", dep, is.Assignee)
		}
		if r := f.call("PUT", "/rest/api/2/issue/"+key+"/assignee", map[string]any{"accountId": "ghost", "name": "ghost"}); r.status != 400 {
			t.Errorf("%s unknown user %d", dep, r.status)
		}
	}
}

func TestEntityProperties(t *testing.T) {
	f := newFixture(t, Cloud, nil)
	key := f.create(map[string]any{"summary": "s"})
	p := "/rest/api/2/issue/" + key + "/properties/triage"
	if r := f.call("GET", p, nil); r.status != 404 {
		t.Errorf("absent property %d", r.status)
	}
	if r := f.call("PUT", p, map[string]any{"fingerprint": "abc"}); r.status != 201 {
		t.Errorf("create property %d %s", r.status, r.raw)
	}
	if r := f.call("PUT", p, map[string]any{"fingerprint": "def"}); r.status != 200 {
		t.Errorf("update property %d", r.status)
	}
	g := f.call("GET", p, nil)
	if g.status != 200 || g.body["key"] != "triage" || g.body["value"].(map[string]any)["fingerprint"] != "def" {
		t.Errorf("get property %s", g.raw)
	}
	l := f.call("GET", "/rest/api/2/issue/"+key+"/properties", nil)
	if keys := l.body["keys"].([]any); len(keys) != 1 || keys[0].(map[string]any)["key"] != "triage" {
		t.Errorf("keys %s", l.raw)
	}
	if r := f.call("PUT", p, `{"v":"`+strings.Repeat("x", 33000)+`"}`); r.status != 400 {
		t.Errorf("oversize property %d", r.status)
	}
	if r := f.call("PUT", p, `{not json`); r.status != 400 {
		t.Errorf("invalid json property %d", r.status)
	}
	if r := f.call("DELETE", p, nil); r.status != 204 {
		t.Errorf("delete %d", r.status)
	}
	if r := f.call("DELETE", p, nil); r.status != 404 {
		t.Errorf("delete again %d", r.status)
	}
}

func TestRequestHygiene(t *testing.T) {
	f := newFixture(t, Cloud, func(o *Options) { o.MaxBodyBytes = 1 << 20 })
	big := `{"fields":{"summary":"` + strings.Repeat("x", 2<<20) + `"}}`
	if r := f.call("POST", "/rest/api/2/issue", big); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("big body %d", r.status)
	}
	req, _ := http.NewRequest("POST", f.ts.URL+"/rest/api/2/issue", strings.NewReader("a=b"))
	req.Header.Set("Authorization", f.auth(alice))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("form post %d, want 403 XSRF", resp.StatusCode)
	}
	if r := f.call("DELETE", "/rest/api/2/issue", nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("wrong method %d", r.status)
	}
	if r := f.call("GET", "/rest/api/2/nothing/here", nil); r.status != 404 {
		t.Errorf("unknown path %d", r.status)
	}
	if r := f.call("GET", "/rest/api/latest/myself", nil); r.status != 200 {
		t.Errorf("latest alias %d", r.status)
	}
	// Hostile inputs never crash the server.
	for _, body := range []string{`{"fields":null}`, `{"fields":{"project":[]}}`, `{"fields":{"project":{"key":5},"issuetype":"Task","summary":"x"}}`,
		`{"fields":{"project":{"key":"OPS"},"issuetype":{"name":"Task"},"summary":"x","labels":[1,2]}}`, `{"properties":{"k":1}}`, "\xff\xfe", `{"update":{"labels":[{"add":"a","remove":"b"}]}}`,
		`{"fields":{"project":{"key":"OPS"},"issuetype":{"name":"Task"},"summary":"x","components":[null]}}`, `{"fields":{"project":{"key":"OPS"},"issuetype":{"name":"Task"},"summary":"x","customfield_10052":{"id":null}}}`} {
		if r := f.call("POST", "/rest/api/2/issue", body); r.status != 400 {
			t.Errorf("%q: %d %s", body, r.status, r.raw)
		}
	}
	for _, path := range []string{"/rest/api/2/issue/%25ZZ", "/rest/api/2/issue/OPS-1/properties/", "/rest/api/2/issue//comment", "/rest/api/2/search/jql?jql=" + "%22"} {
		if r := f.call("GET", path, nil); r.status >= 500 {
			t.Errorf("%s: %d", path, r.status)
		}
	}
}

// FuzzRequestBodies checks that no body sent to the write endpoints panics the server or gets a
// 5xx.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{`{"fields":{"project":{"key":"OPS"},"issuetype":{"name":"Task"},"summary":"x"}}`,
		`{"fields":{"labels":["a"],"customfield_10052":{"value":"info"}},"update":{"labels":[{"add":"b"}],"comment":[{"add":{"body":"c"}}]}}`,
		`{"transition":{"id":"21"},"fields":{"resolution":{"name":"Done"}}}`, `{"body":"hello"}`, `{"accountId":null}`, `null`, `[`, `{"properties":[{"key":"k","value":{"a":[1,2]}}]}`} {
		f.Add(s)
	}
	c := newClock()
	s := New(baseOptions(Cloud, c))
	defer s.Close()
	if _, err := s.create(&s.cfg.Users[0], mustObj(`{"fields":{"project":{"key":"SD"},"issuetype":{"name":"Incident"},"summary":"x"}}`)); err != nil {
		f.Fatal(err)
	}
	authz := "Basic " + base64.StdEncoding.EncodeToString([]byte(alice.Email+":"+alice.APIToken))
	f.Fuzz(func(t *testing.T, body string) {
		for _, ep := range []struct{ method, path string }{
			{"POST", "/rest/api/2/issue"}, {"PUT", "/rest/api/2/issue/SD-1"}, {"POST", "/rest/api/2/issue/SD-1/transitions"},
			{"POST", "/rest/api/2/issue/SD-1/comment"}, {"PUT", "/rest/api/2/issue/SD-1/assignee"}, {"PUT", "/rest/api/2/issue/SD-1/properties/p"},
			{"POST", "/rest/api/2/search/jql"},
		} {
			req := httptest.NewRequest(ep.method, ep.path, strings.NewReader(body))
			req.Header.Set("Authorization", authz)
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Errorf("%s %s %q: %d %s", ep.method, ep.path, body, w.Code, w.Body)
			}
		}
	})
}
