package jirafake

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFaultAfterCommitCreateThenSearchFindsOne(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault Fault
	}{
		{"dropped connection", Fault{Method: "POST", PathRegexp: regexp.MustCompile(`^/rest/api/2/issue$`), AfterCommit: true}},
		{"502 after commit", Fault{Method: "POST", PathPrefix: "/rest/api/2/issue", AfterCommit: true, Status: 502}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Cloud, func(o *Options) { o.IndexDelay = 5 * time.Second })
			f.s.Inject(tc.fault)
			body := `{"fields":{"project":{"key":"OPS"},"issuetype":{"name":"Task"},"summary":"orders down"},"properties":[{"key":"triage","value":{"fingerprint":"fp-9"}}]}`
			req, _ := http.NewRequest("POST", f.ts.URL+"/rest/api/2/issue", strings.NewReader(body))
			req.Header.Set("Authorization", f.auth(alice))
			req.Header.Set("Content-Type", "application/json")
			resp, err := f.ts.Client().Do(req)
			if tc.fault.Status == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("expected a transport error, got %d", resp.StatusCode)
				}
			} else {
				if err != nil || resp.StatusCode != tc.fault.Status {
					t.Fatalf("got %v %v", resp, err)
				}
				resp.Body.Close()
			}
			// The issue exists in Jira even though the client never learnt its key.
			if n := len(f.s.Issues()); n != 1 {
				t.Fatalf("issues %d", n)
			}
			// The connector's idempotency search does not see it until the index catches up...
			search := func() response {
				return f.call("POST", "/rest/api/2/search/jql", map[string]any{"jql": `issue.property[triage].fingerprint = "fp-9"`, "fields": []string{"summary"}, "properties": []string{"triage"}})
			}
			if r := search(); r.status != 200 || len(r.body["issues"].([]any)) != 0 {
				t.Fatalf("visible before IndexDelay: %s", r.raw)
			}
			f.clock.Advance(5 * time.Second)
			r := search()
			issues := r.body["issues"].([]any)
			if len(issues) != 1 {
				t.Fatalf("after IndexDelay: %s", r.raw)
			}
			is := issues[0].(map[string]any)
			if is["key"] != "OPS-1" || is["properties"].(map[string]any)["triage"].(map[string]any)["fingerprint"] != "fp-9" {
				t.Errorf("found %v", is)
			}
			// The fault applied once: the next create goes through.
			if k := f.create(map[string]any{"summary": "next"}); k != "OPS-2" {
				t.Errorf("next create %s", k)
			}
			// The faulted create's record (a dropped connection may be
			// recorded after the client's next request).
			var rec *RequestRecord
			for _, r := range f.s.Requests() {
				if r.Method == "POST" && r.Path == "/rest/api/2/issue" {
					rec = &r
					break
				}
			}
			if rec == nil || !rec.Fault || (tc.fault.Status == 0 && !rec.Dropped) {
				t.Errorf("request record %+v", rec)
			}
		})
	}
}

func TestFaultStatusRetryAfterAndCountdown(t *testing.T) {
	f := newFixture(t, Cloud, nil)
	f.s.Inject(Fault{Method: "GET", PathPrefix: "/rest/api/2/myself", Times: 2, Status: 429, RetryAfter: 7})
	f.s.Inject(Fault{PathPrefix: "/rest/api/2/myself", Status: 503, RetryAfter: 3})
	want := []int{429, 429, 503, 200, 200}
	for i, w := range want {
		r := f.call("GET", "/rest/api/2/myself", nil)
		if r.status != w {
			t.Fatalf("call %d: %d, want %d", i, r.status, w)
		}
		switch w {
		case 429:
			if r.header.Get("Retry-After") != "7" || r.messages()[0] != "Rate limit exceeded." {
				t.Errorf("429 %v %s", r.header, r.raw)
			}
		case 503:
			if r.header.Get("Retry-After") != "3" {
				t.Errorf("503 headers %v", r.header)
			}
		}
	}
	// A fault before commit changes nothing.
	f.s.Inject(Fault{Method: "POST", PathPrefix: "/rest/api/2/issue", Status: 500})
	r := f.call("POST", "/rest/api/2/issue", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "s"}})
	if r.status != 500 || len(f.s.Issues()) != 0 {
		t.Errorf("pre-commit fault: %d, %d issues", r.status, len(f.s.Issues()))
	}
	f.s.Inject(Fault{Status: 500, Times: -1})
	for i := 0; i < 3; i++ {
		if r := f.call("GET", "/rest/api/2/serverInfo", nil); r.status != 500 {
			t.Errorf("permanent fault %d", r.status)
		}
	}
	f.s.ClearFaults()
	if r := f.call("GET", "/rest/api/2/serverInfo", nil); r.status != 200 {
		t.Errorf("after ClearFaults %d", r.status)
	}
}

func TestFaultDelayLetsClientTimeOut(t *testing.T) {
	f := newFixture(t, Cloud, nil)
	f.s.Inject(Fault{Method: "POST", PathPrefix: "/rest/api/2/issue", Delay: time.Second, AfterCommit: true})
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	body := `{"fields":{"project":{"key":"OPS"},"issuetype":{"name":"Task"},"summary":"slow"}}`
	req, _ := http.NewRequestWithContext(ctx, "POST", f.ts.URL+"/rest/api/2/issue", strings.NewReader(body))
	req.Header.Set("Authorization", f.auth(alice))
	req.Header.Set("Content-Type", "application/json")
	_, err := f.ts.Client().Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a client timeout, got %v", err)
	}
	if n := len(f.s.Issues()); n != 1 {
		t.Errorf("the slow create was not committed: %d", n)
	}
	// Without AfterCommit, a client that gives up during the delay leaves Jira untouched.
	f.s.Inject(Fault{Method: "POST", PathPrefix: "/rest/api/2/issue", Delay: time.Second})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel2()
	req2, _ := http.NewRequestWithContext(ctx2, "POST", f.ts.URL+"/rest/api/2/issue", strings.NewReader(body))
	req2.Header.Set("Authorization", f.auth(alice))
	req2.Header.Set("Content-Type", "application/json")
	if _, err := f.ts.Client().Do(req2); err == nil {
		t.Fatal("want a client timeout")
	}
	time.Sleep(time.Second)
	if n := len(f.s.Issues()); n != 1 {
		t.Errorf("an abandoned request was processed: %d issues", n)
	}
}

func TestRateLimit(t *testing.T) {
	for _, dep := range []string{Cloud, DataCenter} {
		f := newFixture(t, dep, func(o *Options) { o.RateLimit = RateLimit{PerSecond: 2, Burst: 3} })
		for i := 0; i < 3; i++ {
			r := f.call("GET", "/rest/api/2/myself", nil)
			if r.status != 200 || r.header.Get("X-RateLimit-Limit") != "3" {
				t.Fatalf("%s call %d: %d %v", dep, i, r.status, r.header)
			}
		}
		r := f.call("GET", "/rest/api/2/myself", nil)
		if r.status != 429 || r.header.Get("Retry-After") != "1" || r.header.Get("X-RateLimit-Remaining") != "0" || r.header.Get("X-RateLimit-Reset") != "2025-03-04T10:00Z" {
			t.Fatalf("%s over the limit: %d %v %s", dep, r.status, r.header, r.raw)
		}
		if dep == Cloud && r.header.Get("RateLimit-Reason") != "jira-burst-based" {
			t.Errorf("reason header %v", r.header)
		}
		if dep == DataCenter && r.header.Get("X-RateLimit-FillRate") != "2" {
			t.Errorf("fill rate header %v", r.header)
		}
		// Another user has their own bucket.
		if r := f.callAs(f.auth(bob), "GET", "/rest/api/2/myself", nil); r.status != 200 {
			t.Errorf("%s bob limited: %d", dep, r.status)
		}
		f.clock.Advance(500 * time.Millisecond)
		if r := f.call("GET", "/rest/api/2/myself", nil); r.status != 200 {
			t.Errorf("%s after refill: %d", dep, r.status)
		}
	}
}

func TestSearchJQLConsistencyAndReconcile(t *testing.T) {
	f := newFixture(t, Cloud, func(o *Options) { o.IndexDelay = 10 * time.Second })
	key := f.create(map[string]any{"summary": "first"})
	get := f.call("GET", "/rest/api/2/issue/"+key, nil)
	if get.status != 200 {
		t.Fatalf("GET is not immediately consistent: %d", get.status)
	}
	q := "/rest/api/2/search/jql?fields=summary&jql=" + url.QueryEscape("project = OPS")
	if r := f.call("GET", q, nil); len(r.body["issues"].([]any)) != 0 || r.body["isLast"] != true {
		t.Errorf("visible too early: %s", r.raw)
	}
	if r := f.call("GET", q+"&reconcileIssues="+get.body["id"].(string), nil); len(r.body["issues"].([]any)) != 1 {
		t.Errorf("reconcileIssues ignored: %s", r.raw)
	}
	f.clock.Advance(10 * time.Second)
	f.call("PUT", "/rest/api/2/issue/"+key, map[string]any{"fields": map[string]any{"summary": "renamed"}})
	r := f.call("GET", q, nil)
	is := r.body["issues"].([]any)
	if len(is) != 1 || is[0].(map[string]any)["fields"].(map[string]any)["summary"] != "first" {
		t.Errorf("index should still show the old summary: %s", r.raw)
	}
	if r := f.call("GET", "/rest/api/2/search/jql?jql="+url.QueryEscape(`summary ~ renamed`), nil); len(r.body["issues"].([]any)) != 0 {
		t.Errorf("new summary searchable too early")
	}
	f.clock.Advance(10 * time.Second)
	if r := f.call("GET", "/rest/api/2/search/jql?jql="+url.QueryEscape(`summary ~ renamed`), nil); len(r.body["issues"].([]any)) != 1 {
		t.Errorf("new summary not searchable after the delay: %s", r.raw)
	}
	bad := []struct{ path, want string }{
		{"/rest/api/2/search/jql?jql=project+%3D+OPS&maxResults=0", "maxResults"},
		{"/rest/api/2/search/jql?jql=project+%3D+OPS&nextPageToken=garbage", "next page token"},
		{"/rest/api/2/search/jql?jql=", "Unbounded"},
		{"/rest/api/2/search/jql?jql=" + url.QueryEscape("project = OPS AND"), "Error in the JQL Query"},
	}
	for _, b := range bad {
		r := f.call("GET", b.path, nil)
		if r.status != 400 || len(r.messages()) == 0 || !strings.Contains(r.messages()[0].(string), b.want) {
			t.Errorf("%s: %d %s", b.path, r.status, r.raw)
		}
	}
	if r := f.call("POST", "/rest/api/2/search/jql", map[string]any{"jql": "project = OPS", "startAt": 5}); r.status != 400 {
		t.Errorf("unknown body property startAt: %d", r.status)
	}
	if r := f.call("GET", "/rest/api/2/search?jql=project+%3D+OPS", nil); r.status != http.StatusGone || !strings.Contains(r.messages()[0].(string), "/rest/api/3/search/jql") {
		t.Errorf("old search on cloud: %d %s", r.status, r.raw)
	}
}

func TestConcurrentUse(t *testing.T) {
	hook := newHookRecorder(t)
	f := newFixture(t, Cloud, func(o *Options) { o.IndexDelay = time.Millisecond; o.WebhookURL = hook.url })
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				r := f.call("POST", "/rest/api/2/issue", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}, "issuetype": map[string]any{"name": "Task"}, "summary": "c"}})
				if r.status != 201 {
					t.Errorf("create %d", r.status)
					return
				}
				key := r.body["key"].(string)
				f.call("POST", "/rest/api/2/issue/"+key+"/comment", map[string]any{"body": "x"})
				f.call("GET", "/rest/api/2/search/jql?fields=*all&jql=project+%3D+OPS", nil)
				_ = f.s.TransitionAs("bob", key, "Done", "")
				_ = f.s.Issues()
			}
		}(g)
	}
	wg.Wait()
	if n := len(f.s.Issues()); n != 80 {
		t.Errorf("issues %d", n)
	}
	keys := map[string]bool{}
	for _, is := range f.s.Issues() {
		if keys[is.Key] {
			t.Errorf("duplicate key %s", is.Key)
		}
		keys[is.Key] = true
	}
}

// hookRecorder is a webhook receiver.
type hookRecorder struct {
	mu     sync.Mutex
	url    string
	bodies [][]byte
	sigs   []string
	fail   int // answer 500 to this many requests first
}

func newHookRecorder(t *testing.T) *hookRecorder {
	h := &hookRecorder{}
	srv := newHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.fail > 0 {
			h.fail--
			w.WriteHeader(500)
			return
		}
		h.bodies = append(h.bodies, bytes.Clone(b))
		h.sigs = append(h.sigs, r.Header.Get("X-Hub-Signature"))
	}))
	h.url = srv
	return h
}

func (h *hookRecorder) received() ([][]byte, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.bodies...), append([]string(nil), h.sigs...)
}
