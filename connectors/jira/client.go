package jira

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gojira "github.com/andygrunwald/go-jira"

	"github.com/triage-dev/triage/connectors"
)

// client wraps go-jira with the error classification the outbox needs:
// every failure comes back as a connectors.Error carrying Jira's own
// messages.
type client struct {
	j   *gojira.Client
	dep string
	now func() time.Time
}

func newClient(o *Options) (*client, error) {
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	authed := *hc
	if o.Deployment == Cloud {
		authed.Transport = &gojira.BasicAuthTransport{Username: o.User, Password: o.Token, Transport: base}
	} else {
		authed.Transport = &gojira.PATAuthTransport{Token: o.Token, Transport: base}
	}
	j, err := gojira.NewClient(&authed, o.URL)
	if err != nil {
		return nil, fmt.Errorf("jira client: %w", err)
	}
	return &client{j: j, dep: o.Deployment, now: o.Now}, nil
}

// do sends one request, decoding a 2xx JSON body into out (when not nil),
// and classifies failures.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	req, err := c.j.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return connectors.Permanent(fmt.Errorf("jira %s %s: %w", method, path, err))
	}
	resp, err := c.j.Do(req, out)
	return c.classify(method, path, resp, err)
}

func (c *client) classify(method, path string, resp *gojira.Response, err error) error {
	if err == nil {
		return nil
	}
	if resp == nil || resp.Response == nil {
		return connectors.Classify(nil, fmt.Errorf("jira %s %s: %w", method, path, err), c.now())
	}
	msg := jiraMessage(resp.Response, err)
	return connectors.Classify(resp.Response, fmt.Errorf("jira %s %s: %d %s", method, path, resp.StatusCode, msg), c.now())
}

// jiraMessage reads Jira's error body ({"errorMessages":[...],
// "errors":{field: message}}) into one line, or falls back to err.
func jiraMessage(resp *http.Response, err error) string {
	var je *gojira.Error
	if !errors.As(err, &je) && resp.Body != nil {
		if e, ok := gojira.NewJiraError(&gojira.Response{Response: resp}, err).(*gojira.Error); ok {
			je = e
		}
	}
	if je == nil {
		return strings.TrimSpace(err.Error())
	}
	parts := slices.Clone(je.ErrorMessages)
	keys := make([]string, 0, len(je.Errors))
	for k := range je.Errors {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, k+": "+je.Errors[k])
	}
	if len(parts) == 0 {
		return http.StatusText(resp.StatusCode)
	}
	return strings.Join(parts, "; ")
}

type createBody struct {
	Fields     map[string]any `json:"fields"`
	Properties []property     `json:"properties,omitempty"`
}

type property struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

type created struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Self string `json:"self"`
}

func (c *client) create(ctx context.Context, b *createBody) (*created, error) {
	var out created
	if err := c.do(ctx, http.MethodPost, "rest/api/2/issue", b, &out); err != nil {
		return nil, err
	}
	if out.Key == "" {
		return nil, connectors.Retryable(errors.New("jira create: no issue key in the answer"), 0)
	}
	return &out, nil
}

// issue is the part of an issue the connector reads.
type issue struct {
	ID         string                     `json:"id"`
	Key        string                     `json:"key"`
	Fields     issueFields                `json:"fields"`
	Properties map[string]json.RawMessage `json:"properties,omitempty"`
}

type issueFields struct {
	Summary    string       `json:"summary"`
	Status     *status      `json:"status"`
	Resolution *named       `json:"resolution"`
	Priority   *named       `json:"priority"`
	Assignee   *user        `json:"assignee"`
	Updated    string       `json:"updated"`
	Comment    *commentPage `json:"comment"`
	// All holds every field as sent, for custom fields.
	All map[string]json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the known fields and keeps all of them raw.
func (f *issueFields) UnmarshalJSON(b []byte) error {
	type known issueFields
	if err := json.Unmarshal(b, (*known)(f)); err != nil {
		return err
	}
	return json.Unmarshal(b, &f.All)
}

// text reads a field as a string ("" when absent or not a string).
func (f *issueFields) text(id string) string {
	var s string
	_ = json.Unmarshal(f.All[id], &s)
	return s
}

type status struct {
	Name           string `json:"name"`
	StatusCategory struct {
		Key string `json:"key"`
	} `json:"statusCategory"`
}

type named struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

type user struct {
	AccountID    string `json:"accountId,omitempty"`
	Name         string `json:"name,omitempty"`
	Key          string `json:"key,omitempty"`
	DisplayName  string `json:"displayName,omitempty"`
	EmailAddress string `json:"emailAddress,omitempty"`
}

// id is the user's stable identity: the account id on Cloud, the user
// name (or key) on Data Center.
func (u *user) id() string {
	if u == nil {
		return ""
	}
	switch {
	case u.AccountID != "":
		return u.AccountID
	case u.Name != "":
		return u.Name
	}
	return u.Key
}

func (u *user) display() string {
	if u == nil {
		return "someone"
	}
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.id()
}

type comment struct {
	ID      string `json:"id"`
	Body    string `json:"body"`
	Author  *user  `json:"author"`
	Created string `json:"created"`
}

type commentPage struct {
	StartAt    int       `json:"startAt"`
	MaxResults int       `json:"maxResults"`
	Total      int       `json:"total"`
	Comments   []comment `json:"comments"`
}

func (c *client) getIssue(ctx context.Context, key, fields string) (*issue, error) {
	var out issue
	if err := c.do(ctx, http.MethodGet, "rest/api/2/issue/"+key+"?fields="+fields, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *client) addComment(ctx context.Context, key, body string) error {
	return c.do(ctx, http.MethodPost, "rest/api/2/issue/"+key+"/comment", map[string]string{"body": body}, &comment{})
}

// recentComments reads the newest comments of an issue, newest first.
func (c *client) recentComments(ctx context.Context, key string, n int) ([]comment, error) {
	var page commentPage
	path := fmt.Sprintf("rest/api/2/issue/%s/comment?orderBy=-created&maxResults=%d", key, n)
	if err := c.do(ctx, http.MethodGet, path, nil, &page); err != nil {
		return nil, err
	}
	return page.Comments, nil
}

func (c *client) setPriority(ctx context.Context, key, name string) error {
	body := map[string]any{"fields": map[string]any{"priority": map[string]string{"name": name}}}
	return c.do(ctx, http.MethodPut, "rest/api/2/issue/"+key, body, nil)
}

func (c *client) transitions(ctx context.Context, key string) ([]gojira.Transition, error) {
	ts, resp, err := c.j.Issue.GetTransitionsWithContext(ctx, key)
	if err != nil {
		return nil, c.classify(http.MethodGet, "rest/api/2/issue/"+key+"/transitions", resp, err)
	}
	return ts, nil
}

func (c *client) transition(ctx context.Context, key, id, resolution string) error {
	payload := map[string]any{"transition": map[string]string{"id": id}}
	if resolution != "" {
		payload["fields"] = map[string]any{"resolution": map[string]string{"name": resolution}}
	}
	resp, err := c.j.Issue.DoTransitionWithPayloadWithContext(ctx, key, payload)
	if resp != nil && resp.Body != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	return c.classify(http.MethodPost, "rest/api/2/issue/"+key+"/transitions", resp, err)
}

func (c *client) myself(ctx context.Context) (*user, error) {
	var u user
	if err := c.do(ctx, http.MethodGet, "rest/api/2/myself", nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

type searchPage struct {
	Issues        []issue `json:"issues"`
	Total         int     `json:"total"`
	StartAt       int     `json:"startAt"`
	MaxResults    int     `json:"maxResults"`
	NextPageToken string  `json:"nextPageToken"`
	IsLast        bool    `json:"isLast"`
}

// search runs a JQL query through every page: search/jql with page
// tokens on Cloud, search with startAt on Data Center. It stops after max
// issues.
func (c *client) search(ctx context.Context, jql, fields, properties string, max int) ([]issue, error) {
	var out []issue
	token, start := "", 0
	for len(out) < max {
		q := "jql=" + urlQuery(jql) + "&fields=" + urlQuery(fields) + "&maxResults=100"
		if properties != "" {
			q += "&properties=" + urlQuery(properties)
		}
		var path string
		if c.dep == Cloud {
			path = "rest/api/2/search/jql?" + q
			if token != "" {
				path += "&nextPageToken=" + urlQuery(token)
			}
		} else {
			path = fmt.Sprintf("rest/api/2/search?%s&startAt=%d", q, start)
		}
		var page searchPage
		if err := c.do(ctx, http.MethodGet, path, nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Issues...)
		if c.dep == Cloud {
			if page.NextPageToken == "" || page.IsLast || len(page.Issues) == 0 {
				break
			}
			token = page.NextPageToken
		} else {
			start += len(page.Issues)
			if len(page.Issues) == 0 || start >= page.Total {
				break
			}
		}
	}
	return out, nil
}

func urlQuery(s string) string { return url.QueryEscape(s) }
