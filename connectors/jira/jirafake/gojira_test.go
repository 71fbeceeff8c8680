package jirafake

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	jira "github.com/andygrunwald/go-jira"
)

// These tests drive the fake with the client the connector uses, to prove the shapes match.

func cloudClient(t *testing.T, f *fixture, u User) *jira.Client {
	t.Helper()
	tp := jira.BasicAuthTransport{Username: u.Email, Password: u.APIToken}
	c, err := jira.NewClient(tp.Client(), f.ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func dcClient(t *testing.T, f *fixture, u User) *jira.Client {
	t.Helper()
	tp := jira.PATAuthTransport{Token: u.PAT}
	c, err := jira.NewClient(tp.Client(), f.ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createWithProperties posts an IssueUpdateBean with "properties", which go-jira's Issue type
// lacks, through the client's own request plumbing.
func createWithProperties(t *testing.T, c *jira.Client, summary, fingerprint string) *jira.Issue {
	t.Helper()
	body := map[string]any{
		"fields": map[string]any{
			"project": map[string]any{"key": "SD"}, "issuetype": map[string]any{"name": "Incident"},
			"summary": summary, "priority": map[string]any{"name": "High"}, "labels": []string{"triage"},
		},
		"properties": []any{map[string]any{"key": "triage", "value": map[string]any{"fingerprint": fingerprint}}},
	}
	req, err := c.NewRequest("POST", "rest/api/2/issue", body)
	if err != nil {
		t.Fatal(err)
	}
	out := new(jira.Issue)
	if _, err := c.Do(req, out); err != nil {
		t.Fatalf("create: %v", err)
	}
	return out
}

func TestGoJiraCloud(t *testing.T) {
	f := newFixture(t, Cloud, func(o *Options) { o.IndexDelay = 2 * time.Second })
	c := cloudClient(t, f, alice)

	u, _, err := c.User.GetSelf()
	if err != nil || u.AccountID != alice.AccountID || u.DisplayName != alice.DisplayName {
		t.Fatalf("GetSelf: %+v %v", u, err)
	}

	created := createWithProperties(t, c, "orders 5xx", "fp-1")
	if created.Key != "SD-1" || created.ID != "10000" {
		t.Fatalf("created %+v", created)
	}
	// go-jira's own Create, with a custom field through Unknowns.
	plain, _, err := c.Issue.Create(&jira.Issue{Fields: &jira.IssueFields{
		Project: jira.Project{Key: "OPS"}, Type: jira.IssueType{Name: "Task"}, Summary: "plain",
		Unknowns: map[string]any{"customfield_10050": "fp-plain"},
	}})
	if err != nil || plain.Key != "OPS-1" {
		t.Fatalf("Create: %+v %v", plain, err)
	}

	is, _, err := c.Issue.Get("SD-1", &jira.GetQueryOptions{Properties: "triage"})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	fl := is.Fields
	if fl.Summary != "orders 5xx" || fl.Status.Name != "Open" || fl.Status.StatusCategory.Key != "new" || fl.Priority.Name != "High" ||
		fl.Type.Name != "Incident" || fl.Project.Key != "SD" || fl.Reporter.AccountID != alice.AccountID || fl.Resolution != nil {
		t.Errorf("Get fields %+v", fl)
	}
	if !time.Time(fl.Created).Equal(f.clock.Now()) {
		t.Errorf("created %v, want %v", time.Time(fl.Created), f.clock.Now())
	}
	cf, _, err := c.Issue.GetCustomFields("OPS-1")
	if err != nil || cf["customfield_10050"] != "fp-plain" {
		t.Errorf("GetCustomFields %v %v", cf, err)
	}

	f.clock.Advance(time.Minute)
	cm, _, err := c.Issue.AddComment("SD-1", &jira.Comment{Body: "looking"})
	if err != nil || cm.ID == "" || cm.Body != "looking" || cm.Author.AccountID != alice.AccountID {
		t.Fatalf("AddComment %+v %v", cm, err)
	}

	if _, err := c.Issue.UpdateIssue("SD-1", map[string]any{"fields": map[string]any{"priority": map[string]any{"name": "Highest"}}}); err != nil {
		t.Fatalf("UpdateIssue: %v", err)
	}
	if s, _ := f.s.Issue("SD-1"); s.Priority != "Highest" {
		t.Errorf("priority %q", s.Priority)
	}

	ts, _, err := c.Issue.GetTransitions("SD-1")
	if err != nil {
		t.Fatalf("GetTransitions: %v", err)
	}
	var resolveID string
	for _, tr := range ts {
		if tr.To.StatusCategory.Key == "done" && tr.To.Name == "Resolved" {
			resolveID = tr.ID
			if _, ok := tr.Fields["resolution"]; !ok {
				t.Errorf("resolve transition without the resolution field: %+v", tr)
			}
		}
	}
	if resolveID == "" {
		t.Fatalf("no transition to Resolved in %+v", ts)
	}
	_, err = c.Issue.DoTransitionWithPayload("SD-1", jira.CreateTransitionPayload{
		Transition: jira.TransitionPayload{ID: resolveID},
		Fields:     jira.TransitionPayloadFields{Resolution: &jira.Resolution{Name: "Done"}},
	})
	if err != nil {
		t.Fatalf("DoTransitionWithPayload: %v", err)
	}
	is, _, _ = c.Issue.Get("SD-1", &jira.GetQueryOptions{Expand: "changelog"})
	if is.Fields.Status.Name != "Resolved" || is.Fields.Resolution == nil || is.Fields.Resolution.Name != "Done" || time.Time(is.Fields.Resolutiondate).IsZero() {
		t.Errorf("after resolve: %+v %+v", is.Fields.Status, is.Fields.Resolution)
	}
	if is.Changelog == nil || len(is.Changelog.Histories) != 2 {
		t.Fatalf("changelog %+v", is.Changelog)
	}
	last := is.Changelog.Histories[1]
	if _, err := last.CreatedTime(); err != nil {
		t.Errorf("changelog created %q: %v", last.Created, err)
	}
	var statusItem *jira.ChangelogItems
	for i := range last.Items {
		if last.Items[i].Field == "status" {
			statusItem = &last.Items[i]
		}
	}
	if statusItem == nil || statusItem.FromString != "Open" || statusItem.ToString != "Resolved" {
		t.Errorf("changelog items %+v", last.Items)
	}
	if is.Fields.Comments == nil || len(is.Fields.Comments.Comments) != 1 {
		t.Errorf("comments %+v", is.Fields.Comments)
	}

	// An invalid transition comes back as a *jira.Error carrying Jira's message.
	_, err = c.Issue.DoTransition("SD-1", "11")
	var jerr *jira.Error
	if !errors.As(err, &jerr) || len(jerr.ErrorMessages) != 1 || jerr.ErrorMessages[0] != "Transition id '11' is not valid for this issue." {
		t.Errorf("invalid transition error %v", err)
	}

	// Search is eventually consistent: nothing before IndexDelay.
	jql := `project in (OPS, SD) ORDER BY key ASC`
	for i := 0; i < 3; i++ {
		f.create(map[string]any{"summary": "bulk"})
	}
	issues, _, err := c.Issue.SearchV2JQL(jql, &jira.SearchOptionsV2{Fields: []string{"summary", "status"}})
	// The index has neither the new issues nor SD-1's resolution yet: it shows SD-1 as Open.
	if err != nil || len(issues) != 2 || issues[1].Key != "SD-1" || issues[1].Fields.Status.Name != "Open" {
		t.Fatalf("search before the index caught up: %d %v", len(issues), err)
	}
	f.clock.Advance(3 * time.Second)

	// Pagination by nextPageToken, two at a time, collects all five issues once.
	var keys []string
	opts := &jira.SearchOptionsV2{MaxResults: 2, Fields: []string{"summary"}}
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("pagination does not end")
		}
		req, err := c.NewRequest("GET", "rest/api/2/search/jql?jql="+strings.ReplaceAll(jql, " ", "+")+"&maxResults=2&fields=summary&nextPageToken="+opts.NextPageToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Issues        []jira.Issue `json:"issues"`
			NextPageToken string       `json:"nextPageToken"`
			IsLast        bool         `json:"isLast"`
		}
		if _, err := c.Do(req, &res); err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		// go-jira's SearchV2JQL returns only the issues; check it parses the same page.
		viaClient, _, err := c.Issue.SearchV2JQL(jql, opts)
		if err != nil || len(viaClient) != len(res.Issues) {
			t.Fatalf("SearchV2JQL page %d: %d %v", page, len(viaClient), err)
		}
		for _, is := range viaClient {
			if is.Fields == nil || is.Fields.Summary == "" {
				t.Errorf("issue without summary %+v", is)
			}
			keys = append(keys, is.Key)
		}
		if res.IsLast {
			if res.NextPageToken != "" {
				t.Errorf("last page with a token")
			}
			break
		}
		opts.NextPageToken = res.NextPageToken
	}
	if strings.Join(keys, ",") != "OPS-1,OPS-2,OPS-3,OPS-4,SD-1" {
		t.Errorf("paginated keys %v", keys)
	}

	// Default fields on /search/jql: ids only.
	ids, _, err := c.Issue.SearchV2JQL(`project = SD`, nil)
	if err != nil || len(ids) != 1 || ids[0].ID != "10000" || ids[0].Key != "" || ids[0].Fields != nil {
		t.Errorf("default fields: %+v %v", ids, err)
	}
	// Unbounded queries are refused on Cloud.
	_, _, err = c.Issue.SearchV2JQL(`ORDER BY created DESC`, nil)
	if !errors.As(err, &jerr) || !strings.Contains(jerr.ErrorMessages[0], "Unbounded JQL") {
		t.Errorf("unbounded: %v", err)
	}
	// The removed endpoint.
	_, resp, err := c.Issue.Search(`project = OPS`, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusGone {
		t.Errorf("old search on Cloud: %v", err)
	}
}

func TestGoJiraDataCenter(t *testing.T) {
	f := newFixture(t, DataCenter, nil)
	c := dcClient(t, f, alice)
	for i := 0; i < 5; i++ {
		f.clock.Advance(time.Minute)
		if _, _, err := c.Issue.Create(&jira.Issue{Fields: &jira.IssueFields{
			Project: jira.Project{Key: "OPS"}, Type: jira.IssueType{Name: "Bug"}, Summary: "dc issue", Labels: []string{"triage"},
		}}); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	u, _, err := c.User.GetSelf()
	if err != nil || u.Name != "alice" {
		t.Fatalf("GetSelf %+v %v", u, err)
	}
	issues, resp, err := c.Issue.Search(`labels = triage ORDER BY created ASC`, &jira.SearchOptions{StartAt: 2, MaxResults: 2, Fields: []string{"summary", "status", "assignee"}})
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	if len(issues) != 2 || issues[0].Key != "OPS-3" || issues[1].Key != "OPS-4" || resp.Total != 5 || resp.StartAt != 2 || resp.MaxResults != 2 {
		t.Errorf("page: %d issues, total %d startAt %d", len(issues), resp.Total, resp.StartAt)
	}
	if issues[0].Fields.Status.Name != "To Do" || issues[0].Fields.Assignee != nil {
		t.Errorf("fields %+v", issues[0].Fields)
	}
	var all []string
	if err := c.Issue.SearchPages(`project = OPS ORDER BY key ASC`, &jira.SearchOptions{MaxResults: 2}, func(i jira.Issue) error {
		all = append(all, i.Key)
		return nil
	}); err != nil || len(all) != 5 {
		t.Errorf("SearchPages %v %v", all, err)
	}
	if _, err := c.Issue.UpdateAssignee("OPS-1", &jira.User{Name: "bob"}); err != nil {
		t.Fatalf("UpdateAssignee: %v", err)
	}
	is, _, _ := c.Issue.Get("OPS-1", nil)
	if is.Fields.Assignee == nil || is.Fields.Assignee.Name != "bob" {
		t.Errorf("assignee %+v", is.Fields.Assignee)
	}
	// A JQL error is readable through *jira.Error.
	_, _, err = c.Issue.Search(`nosuchfield = 1`, nil)
	var jerr *jira.Error
	if !errors.As(err, &jerr) || jerr.ErrorMessages[0] != "Field 'nosuchfield' does not exist or you do not have permission to view it." {
		t.Errorf("jql error %v", err)
	}
	// /search/jql does not exist on Data Center.
	if _, resp, _ := c.Issue.SearchV2JQL(`project = OPS`, nil); resp == nil || resp.StatusCode != 404 {
		t.Errorf("search/jql on DC: %v", resp)
	}
}
