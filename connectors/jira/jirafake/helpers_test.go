package jirafake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// clock is an injected clock tests advance by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var (
	alice = User{AccountID: "5b10a2844c20165700ede21g", Name: "alice", DisplayName: "Alice Ops", Email: "alice@example.com", APIToken: "tok-alice", PAT: "pat-alice"}
	bob   = User{AccountID: "5b10ac8d82e05b22cc7d4ef5", Name: "bob", DisplayName: "Bob Oncall", Email: "bob@example.com", APIToken: "tok-bob", PAT: "pat-bob"}
)

func baseOptions(deployment string, c *clock) Options {
	return Options{
		Deployment: deployment,
		Users:      []User{alice, bob},
		Projects: []Project{
			{Key: "OPS", Name: "Operations", Components: []string{"db", "api"}},
			{Key: "SD", Name: "Service Desk", Workflow: ServiceManagementWorkflow, IssueTypes: []string{"Incident", "Service Request"}},
		},
		CustomFields: []CustomField{
			{ID: "customfield_10050", Name: "Triage Fingerprint", Type: FieldText},
			{ID: "customfield_10051", Name: "Impact Score", Type: FieldNumber},
			{ID: "customfield_10052", Name: "Severity", Type: FieldSelect, Options: []string{"critical", "warning", "info"}},
			{ID: "customfield_10053", Name: "Services", Type: FieldLabels},
		},
		IndexedProperties: []IndexedProperty{{Key: "triage", Path: "fingerprint"}, {Key: "triage", Path: "incident"}},
		Now:               c.Now,
	}
}

// fixture is a running fake with a clock.
type fixture struct {
	t     *testing.T
	s     *Server
	ts    *httptest.Server
	clock *clock
	cloud bool
}

func newFixture(t *testing.T, deployment string, mod func(*Options)) *fixture {
	t.Helper()
	c := newClock()
	o := baseOptions(deployment, c)
	if mod != nil {
		mod(&o)
	}
	s := New(o)
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return &fixture{t: t, s: s, ts: ts, clock: c, cloud: deployment != DataCenter}
}

// auth returns the Authorization header value for u on this deployment.
func (f *fixture) auth(u User) string {
	if f.cloud {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(u.Email+":"+u.APIToken))
	}
	return "Bearer " + u.PAT
}

type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r response) messages() []any {
	m, _ := r.body["errorMessages"].([]any)
	return m
}

func (r response) fieldErrors() map[string]any {
	m, _ := r.body["errors"].(map[string]any)
	return m
}

// call sends a request as alice; body may be a string (sent raw) or a value (JSON-encoded).
func (f *fixture) call(method, path string, body any) response {
	return f.callAs(f.auth(alice), method, path, body)
}

func (f *fixture) callAs(authz, method, path string, body any) response {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, f.ts.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// create makes an issue as alice and returns its key.
func (f *fixture) create(fields map[string]any) string {
	f.t.Helper()
	if _, ok := fields["project"]; !ok {
		fields["project"] = map[string]any{"key": "OPS"}
	}
	if _, ok := fields["issuetype"]; !ok {
		fields["issuetype"] = map[string]any{"name": "Task"}
	}
	r := f.call("POST", "/rest/api/2/issue", map[string]any{"fields": fields})
	if r.status != http.StatusCreated {
		f.t.Fatalf("create: %d %s", r.status, r.raw)
	}
	return r.body["key"].(string)
}

func mustUnmarshal(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("unmarshal %s: %v", raw, err)
	}
}

func newHTTPServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
