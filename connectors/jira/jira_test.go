package jira_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/connectors"
	"github.com/triage-dev/triage/connectors/jira"
	"github.com/triage-dev/triage/connectors/jira/jirafake"
	"github.com/triage-dev/triage/internal/svctest"
)

const (
	botEmail = "triage-bot@example.com"
	botToken = "bot-token"
	secret   = "hook-secret"
)

// rig is a correlation service, a fake Jira, the connector with its
// outbox, and Triage's webhook endpoint the fake calls.
type rig struct {
	t       *testing.T
	svc     *svctest.Service
	fake    *jirafake.Server
	jiraURL string
	hook    *httptest.Server
	conn    *jira.Connector
	in      *jira.Inbound
	box     *connectors.Outbox
	stopBox func()
	opts    jira.Options
	backoff time.Duration
}

type rigOptions struct {
	deployment string
	webhooks   bool
	backoff    time.Duration
	tweak      func(*jira.Options)
}

func newRig(t *testing.T, ro rigOptions) *rig {
	t.Helper()
	if ro.deployment == "" {
		ro.deployment = jirafake.Cloud
	}
	if ro.backoff == 0 {
		ro.backoff = 5 * time.Millisecond
	}
	r := &rig{t: t, svc: svctest.Start(t, ""), backoff: ro.backoff}
	// The webhook endpoint exists before the fake so the fake can call it;
	// it serves the inbound side once the connector is built.
	var inbound http.Handler
	r.hook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if inbound == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		inbound.ServeHTTP(w, req)
	}))
	t.Cleanup(r.hook.Close)
	fo := jirafake.Options{
		Deployment: ro.deployment,
		Users: []jirafake.User{
			{DisplayName: "Triage Bot", Email: botEmail, APIToken: botToken, PAT: botToken},
			{DisplayName: "Alice Ops", Email: "alice@example.com", APIToken: "alice-token", PAT: "alice-token"},
		},
		Projects: []jirafake.Project{{Key: "OPS", Name: "Operations"}, {Key: "DBA", Name: "Databases"},
			{Key: "SUP", Name: "Support", Workflow: jirafake.ServiceManagementWorkflow}},
		IndexDelay: 100 * time.Millisecond,
	}
	if ro.webhooks {
		fo.WebhookURL = r.hook.URL + "/api/v1/connectors/jira/webhook"
		fo.WebhookSecret = secret
	}
	r.fake = jirafake.New(fo)
	t.Cleanup(r.fake.Close)
	js := httptest.NewServer(r.fake)
	t.Cleanup(js.Close)
	r.jiraURL = js.URL
	r.opts = jira.Options{
		URL: js.URL, Deployment: ro.deployment, User: botEmail, Token: botToken,
		Project: "OPS", MinPriority: "P3", IndexLag: 500 * time.Millisecond,
		WebhookSecret: secret, AcknowledgeOnAssign: true,
	}
	if ro.tweak != nil {
		ro.tweak(&r.opts)
	}
	r.start()
	inbound = r.in
	return r
}

// start builds the connector and runs its outbox (again, after stop: a
// restart of the daemon's connector side on the same files).
func (r *rig) start() {
	t := r.t
	t.Helper()
	c, err := jira.New(r.opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	box, err := connectors.Open(connectors.Options{
		Path: filepath.Join(r.svc.Dir, "outbox.db"), Source: r.svc.Store, Recorder: r.svc.Service,
		Connectors: []connectors.Connector{c}, PollInterval: 5 * time.Millisecond,
		MinBackoff: r.backoff, MaxBackoff: r.backoff * 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Bind(box)
	r.conn, r.box, r.in = c, box, c.Inbound(r.svc.Service, r.svc.Store)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = box.Run(ctx) }()
	stopped := false
	r.stopBox = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			_ = box.Close()
		}
	}
	t.Cleanup(r.stopBox)
}

func (r *rig) incident(id uint64) *triage.Incident {
	r.t.Helper()
	if err := r.svc.Sync(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	inc, err := r.svc.Store.Incident(id)
	if err != nil {
		r.t.Fatal(err)
	}
	return inc
}

// settled waits until the outbox has nothing queued.
func (r *rig) settled() {
	r.t.Helper()
	svctest.Eventually(r.t, "the outbox to drain", func() bool {
		_ = r.svc.Sync(context.Background())
		r.box.Poke()
		idle, err := r.box.Idle()
		return err == nil && idle
	})
}

func (r *rig) issues() []jirafake.IssueSnapshot { return r.fake.Issues() }

var markRE = regexp.MustCompile(`\(triage (INC-\d+) change (\d+)\)\s*$`)

// commentMarks lists the change numbers of Triage's comments, in order.
func (r *rig) commentMarks(key string) []uint64 {
	var out []uint64
	for _, c := range r.fake.Comments(key) {
		if m := markRE.FindStringSubmatch(c.Body); m != nil {
			n, _ := strconv.ParseUint(m[2], 10, 64)
			out = append(out, n)
		}
	}
	return out
}

func timelineHas(inc *triage.Incident, kind, actorPrefix string) *triage.TimelineEntry {
	for i := range inc.Timeline {
		e := &inc.Timeline[i]
		if e.Kind == kind && strings.HasPrefix(e.Actor, actorPrefix) {
			return e
		}
	}
	return nil
}

// Under 500s, a 429 with Retry-After, a timeout, a create and a comment
// whose answers are lost after Jira applied them, one incident still ends
// with exactly one issue, every comment once and in order, and the issue
// resolved.
func TestExactlyOneIssueAndCommentsOnceUnderFaults(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.fake.Inject(jirafake.Fault{Method: "POST", PathPrefix: "/rest/api/2/issue", Times: 1, Status: 500, AfterCommit: true})
	r.fake.Inject(jirafake.Fault{Method: "GET", PathPrefix: "/rest/api/2/search", Times: 1, Status: 503})
	r.fake.Inject(jirafake.Fault{Method: "POST", PathPrefix: "/rest/api/2/issue/OPS-1/comment", Times: 1, Status: 429, RetryAfter: 1})
	r.fake.Inject(jirafake.Fault{Method: "POST", PathPrefix: "/rest/api/2/issue/OPS-1/comment", Times: 1, AfterCommit: true})
	r.fake.Inject(jirafake.Fault{Method: "POST", PathPrefix: "/rest/api/2/issue/OPS-1/comment", Times: 1, Status: 502})

	r.svc.Fire(t, "alertname", "HighErrorRate", "service", "orders", "severity", "critical", "instance", "a")
	svctest.Eventually(t, "the ticket recorded", func() bool { return r.incident(1).Ticket != nil })
	r.svc.Fire(t, "alertname", "HighErrorRate", "service", "orders", "severity", "critical", "instance", "b")
	if err := r.svc.Comment(context.Background(), 1, "alice", "rolling back"); err != nil {
		t.Fatal(err)
	}
	r.svc.Fire(t, "alertname", "HighErrorRate", "service", "orders", "severity", "critical", "instance", "c")
	for _, i := range []string{"a", "b", "c"} {
		r.svc.ResolveAlert(t, "alertname", "HighErrorRate", "service", "orders", "severity", "critical", "instance", i)
	}
	r.settled()

	issues := r.issues()
	if len(issues) != 1 {
		t.Fatalf("%d issues, want exactly 1: %+v", len(issues), issues)
	}
	is := issues[0]
	inc := r.incident(1)
	if inc.Ticket == nil || inc.Ticket.Key != is.Key || inc.Ticket.URL != r.jiraURL+"/browse/"+is.Key {
		t.Fatalf("incident ticket %+v, issue %s", inc.Ticket, is.Key)
	}
	if is.StatusCategory != "done" {
		t.Fatalf("issue status %s (%s), want done", is.Status, is.StatusCategory)
	}
	if is.Priority != "Highest" {
		t.Fatalf("issue priority %q, want Highest (P1)", is.Priority)
	}
	// Every change after the ticket that makes a comment did, once, in
	// order: the second and third alerts, the comment, the resolution.
	var want []uint64
	after := false
	for _, e := range inc.Timeline {
		switch {
		case e.Kind == triage.KindTicket:
			after = true
		case after && (e.Kind == triage.KindAlertAdded || e.Kind == triage.KindComment || e.Kind == triage.KindResolved):
			want = append(want, e.Seq)
		}
	}
	got := r.commentMarks(is.Key)
	if fmt.Sprint(got) != fmt.Sprint(want) || len(want) != 4 {
		t.Fatalf("comments for changes %v, want %v (4: two alerts, a comment, the resolution)", got, want)
	}
	// One post per comment, plus the 429 and the 502; the comment whose
	// answer was lost is found by its marker, not posted again.
	if n := r.fake.CountRequests("POST", "/rest/api/2/issue/"+is.Key+"/comment"); n != len(want)+2 {
		t.Fatalf("%d comment requests, want %d", n, len(want)+2)
	}
	if timelineHas(inc, triage.KindConnectorError, "") != nil {
		t.Fatalf("a retryable failure was recorded as permanent: %+v", inc.Timeline)
	}
}

// A create whose answer is lost, followed by the connector side stopping
// (the daemon killed) before any retry: after a restart the issue is found
// by search, not created again.
func TestCrashBetweenCreateAndRecord(t *testing.T) {
	r := newRig(t, rigOptions{backoff: time.Hour}) // no retry before the "kill"
	r.fake.Inject(jirafake.Fault{Method: "POST", PathPrefix: "/rest/api/2/issue", Times: 1, AfterCommit: true})
	r.svc.Fire(t, "alertname", "DiskFull", "service", "db", "severity", "critical")
	svctest.Eventually(t, "the issue created in Jira", func() bool { return len(r.issues()) == 1 })
	r.stopBox()
	if inc := r.incident(1); inc.Ticket != nil {
		t.Fatalf("ticket recorded although the answer was lost: %+v", inc.Ticket)
	}
	r.backoff = 5 * time.Millisecond
	r.start()
	r.settled()
	if n := len(r.issues()); n != 1 {
		t.Fatalf("%d issues after the restart, want 1", n)
	}
	inc := r.incident(1)
	if inc.Ticket == nil || inc.Ticket.Key != r.issues()[0].Key {
		t.Fatalf("ticket %+v", inc.Ticket)
	}
}

// What a person does in Jira reaches the incident once, by webhook, and
// what Triage does itself is not echoed back.
func TestInboundWebhook(t *testing.T) {
	r := newRig(t, rigOptions{webhooks: true})
	r.svc.Fire(t, "alertname", "Latency", "service", "api", "severity", "critical")
	r.settled()
	key := r.issues()[0].Key
	alice := "alice@example.com"
	if err := r.fake.CommentAs(alice, key, "I am on it"); err != nil {
		t.Fatal(err)
	}
	if err := r.fake.AssignAs(alice, key, alice); err != nil {
		t.Fatal(err)
	}
	svctest.Eventually(t, "the comment and assignment on the incident", func() bool {
		inc := r.incident(1)
		return timelineHas(inc, triage.KindComment, "jira:Alice Ops") != nil &&
			timelineHas(inc, triage.KindAssigned, "jira:Alice Ops") != nil && inc.Status == triage.IncidentAcknowledged
	})
	if err := r.fake.TransitionAs(alice, key, "Done", "Done"); err != nil {
		t.Fatal(err)
	}
	svctest.Eventually(t, "the incident resolved from Jira", func() bool {
		return r.incident(1).Status == triage.IncidentResolved
	})
	if err := r.fake.TransitionAs(alice, key, "To Do", ""); err != nil {
		t.Fatal(err)
	}
	svctest.Eventually(t, "the incident reopened from Jira", func() bool {
		return r.incident(1).Status == triage.IncidentOpen
	})
	r.settled()
	time.Sleep(200 * time.Millisecond) // let any echo arrive
	inc := r.incident(1)
	n := 0
	for _, e := range inc.Timeline {
		if e.Kind == triage.KindComment && e.Actor == "jira:Alice Ops" {
			n++
		}
		if strings.HasPrefix(e.Actor, "jira:Triage Bot") {
			t.Errorf("Triage's own change echoed back: %+v", e)
		}
	}
	if n != 1 {
		t.Fatalf("alice's comment recorded %d times", n)
	}
	// Alice's comment was not sent back to Jira as a Triage comment.
	echoes := 0
	for _, c := range r.fake.Comments(key) {
		if strings.Contains(c.Body, "I am on it") {
			echoes++
		}
	}
	if echoes != 1 {
		t.Fatalf("alice's comment is %d times in Jira, want 1 (no echo): %+v", echoes, r.fake.Comments(key))
	}
	if st, _ := r.fake.Issue(key); st.StatusCategory == "done" {
		t.Fatalf("Triage moved the issue back to done after alice reopened it")
	}
}

// A re-fire after someone closed the issue as Won't Do comments instead of
// reopening it.
func TestRefireRespectsWontDo(t *testing.T) {
	r := newRig(t, rigOptions{webhooks: true})
	r.svc.Fire(t, "alertname", "Noisy", "service", "batch", "severity", "critical")
	r.settled()
	key := r.issues()[0].Key
	if err := r.fake.TransitionAs("alice@example.com", key, "Done", "Won't Do"); err != nil {
		t.Fatal(err)
	}
	svctest.Eventually(t, "resolved from Jira", func() bool { return r.incident(1).Status == triage.IncidentResolved })
	r.svc.ResolveAlert(t, "alertname", "Noisy", "service", "batch", "severity", "critical")
	r.svc.Fire(t, "alertname", "Noisy", "service", "batch", "severity", "critical")
	svctest.Eventually(t, "the incident reopened by the re-fire", func() bool { return r.incident(1).Status == triage.IncidentOpen })
	r.settled()
	is, _ := r.fake.Issue(key)
	if is.StatusCategory != "done" || is.Resolution != "Won't Do" {
		t.Fatalf("issue %s/%s, want it left done as Won't Do", is.Status, is.Resolution)
	}
	found := false
	for _, c := range r.fake.Comments(key) {
		if strings.Contains(c.Body, "open again in Triage; the issue stays Done (Won't Do)") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no comment about the re-fire: %+v", r.fake.Comments(key))
	}
}

// A create Jira refuses for good is recorded on the incident with Jira's
// message, once, and not retried for the incident's later changes.
func TestPermanentCreateFailureRecorded(t *testing.T) {
	r := newRig(t, rigOptions{tweak: func(o *jira.Options) {
		o.Fields = map[string]any{"customfield_99999": "x"}
	}})
	r.svc.Fire(t, "alertname", "A", "service", "s", "severity", "critical")
	r.svc.Fire(t, "alertname", "A", "service", "s", "severity", "critical", "instance", "2")
	r.settled()
	inc := r.incident(1)
	e := timelineHas(inc, triage.KindConnectorError, jira.Name)
	if e == nil || !strings.Contains(e.Message, "customfield_99999") {
		t.Fatalf("no connector error with Jira's message on the timeline: %+v", inc.Timeline)
	}
	creates := 0
	for _, q := range r.fake.Requests() {
		if q.Method == "POST" && q.Path == "/rest/api/2/issue" {
			creates++
		}
	}
	if creates != 1 || len(r.issues()) != 0 {
		t.Fatalf("%d create requests and %d issues, want 1 and 0", creates, len(r.issues()))
	}
}

// Without webhooks, polling with JQL finds what people did, once.
func TestInboundPolling(t *testing.T) {
	for _, dep := range []string{jirafake.Cloud, jirafake.DataCenter} {
		t.Run(dep, func(t *testing.T) {
			r := newRig(t, rigOptions{deployment: dep})
			r.svc.Fire(t, "alertname", "Latency", "service", "api", "severity", "critical")
			r.settled()
			key := r.issues()[0].Key
			if err := r.fake.CommentAs("alice@example.com", key, "checking the LB"); err != nil {
				t.Fatal(err)
			}
			if err := r.fake.TransitionAs("alice@example.com", key, "Done", "Done"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(150 * time.Millisecond) // the search index delay
			for range 2 {
				if err := r.in.Poll(context.Background(), time.Time{}); err != nil {
					t.Fatal(err)
				}
			}
			inc := r.incident(1)
			if inc.Status != triage.IncidentResolved {
				t.Fatalf("status %s after polling, want resolved", inc.Status)
			}
			n := 0
			for _, e := range inc.Timeline {
				if e.Kind == triage.KindComment && strings.HasPrefix(e.Actor, "jira:") {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d comments from Jira, want 1: %+v", n, inc.Timeline)
			}
			searched := false
			for _, q := range r.fake.Requests() {
				if (dep == jirafake.Cloud && q.Path == "/rest/api/2/search/jql") || (dep == jirafake.DataCenter && q.Path == "/rest/api/2/search") {
					searched = true
				}
			}
			if !searched {
				t.Fatalf("the %s search endpoint was not used", dep)
			}
		})
	}
}

// The webhook refuses requests without the secret or a valid signature.
func TestWebhookSecret(t *testing.T) {
	r := newRig(t, rigOptions{})
	for _, tc := range []struct {
		name   string
		header map[string]string
		query  string
		want   int
	}{
		{"none", nil, "", http.StatusUnauthorized},
		{"wrong secret", map[string]string{"X-Triage-Webhook-Secret": "nope"}, "", http.StatusUnauthorized},
		{"bad signature", map[string]string{"X-Hub-Signature": "sha256=00"}, "", http.StatusUnauthorized},
		{"secret header", map[string]string{"X-Triage-Webhook-Secret": secret}, "", http.StatusAccepted},
		{"secret query", nil, "?secret=" + secret, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/api/v1/connectors/jira/webhook"+tc.query,
				strings.NewReader(`{"webhookEvent":"jira:issue_updated","issue":{"key":"OPS-404","fields":{}}}`))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			r.in.ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tc.want)
			}
		})
	}
	req := httptest.NewRequest("POST", "/x?secret="+secret, strings.NewReader(`{"issue":`))
	w := httptest.NewRecorder()
	r.in.ServeHTTP(w, req)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "not a Jira webhook body") {
		t.Fatalf("malformed body: %d %s", w.Code, w.Body)
	}
}

// A Jira Service Management workflow works with only the acknowledge
// transition named: resolve and reopen find their transitions by status
// category. Routes pick the project.
func TestServiceManagementWorkflowAndRoutes(t *testing.T) {
	r := newRig(t, rigOptions{tweak: func(o *jira.Options) {
		o.Routes = []jira.Route{{When: `incident.service == "shop"`, Project: "SUP", IssueType: "Incident", Labels: []string{"shop"}}}
		o.Transitions.Acknowledge = "In Progress"
	}})
	ctx := context.Background()
	r.svc.Fire(t, "alertname", "CheckoutErrors", "service", "shop", "severity", "critical")
	r.settled()
	is := r.issues()
	if len(is) != 1 || is[0].Project != "SUP" || is[0].IssueType != "Incident" || is[0].Status != "Open" || len(is[0].Labels) != 1 {
		t.Fatalf("issues %+v, want one Open Incident in SUP labelled shop", is)
	}
	key := is[0].Key
	if err := r.svc.Acknowledge(ctx, 1, "bob"); err != nil {
		t.Fatal(err)
	}
	r.settled()
	if st, _ := r.fake.Issue(key); st.Status != "In Progress" {
		t.Fatalf("after acknowledge: %s, want In Progress", st.Status)
	}
	r.svc.ResolveAlert(t, "alertname", "CheckoutErrors", "service", "shop", "severity", "critical")
	r.settled()
	if st, _ := r.fake.Issue(key); st.Status != "Resolved" || st.StatusCategory != "done" {
		t.Fatalf("after resolve: %s (%s), want Resolved", st.Status, st.StatusCategory)
	}
	r.svc.Fire(t, "alertname", "CheckoutErrors", "service", "shop", "severity", "critical")
	r.settled()
	if st, _ := r.fake.Issue(key); st.StatusCategory == "done" {
		t.Fatalf("after the re-fire: %s, want reopened", st.Status)
	}
	if len(r.issues()) != 1 {
		t.Fatalf("%d issues, want 1", len(r.issues()))
	}
	// Without the route, polling still covers SUP: issues were made there.
	r.stopBox()
	r.opts.Routes = nil
	r.start()
	if err := r.fake.CommentAs("alice@example.com", key, "from the support desk"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond) // the search index delay
	if err := r.in.Poll(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if timelineHas(r.incident(1), triage.KindComment, "jira:") == nil {
		t.Fatal("a comment in an issue outside the configured projects was not polled")
	}
}

// Review regressions.

// Credentials failing for a while (401) delay the issue; they do not
// cancel it.
func TestTransientAuthFailureIsRetried(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.fake.Inject(jirafake.Fault{Method: "GET", PathPrefix: "/rest/api/2/search", Times: 2, Status: 401})
	r.svc.Fire(t, "alertname", "A", "service", "s", "severity", "critical")
	r.settled()
	if n := len(r.issues()); n != 1 {
		t.Fatalf("%d issues after a transient 401, want 1", n)
	}
	if e := timelineHas(r.incident(1), triage.KindConnectorError, ""); e != nil {
		t.Fatalf("a 401 was recorded as permanent: %+v", e)
	}
}

// The route changing between an unconfirmed create and its retry does not
// make a second issue in the new route's project.
func TestRouteChangeAfterUnconfirmedCreate(t *testing.T) {
	r := newRig(t, rigOptions{tweak: func(o *jira.Options) {
		o.Routes = []jira.Route{{When: "incident.alert_count > 1", Project: "DBA"}}
	}})
	r.fake.Inject(jirafake.Fault{Method: "POST", PathPrefix: "/rest/api/2/issue", Times: 1, Status: 504, AfterCommit: true})
	r.svc.Fire(t, "alertname", "A", "service", "s", "severity", "critical", "instance", "1")
	svctest.Eventually(t, "the unconfirmed create", func() bool { return len(r.issues()) == 1 })
	r.svc.Fire(t, "alertname", "A", "service", "s", "severity", "critical", "instance", "2")
	r.settled()
	is := r.issues()
	if len(is) != 1 || is[0].Project != "OPS" {
		t.Fatalf("issues %+v, want the one OPS issue", is)
	}
	// The second alert joined after the create: it is commented, not lost.
	if got := r.commentMarks(is[0].Key); len(got) != 1 {
		t.Fatalf("comments %v, want the second alert's", got)
	}
}

// A comment event carries the issue as it was; Triage's own resolution
// comment arriving after its transition must not reopen the incident.
func TestOwnCommentEventDoesNotReopen(t *testing.T) {
	r := newRig(t, rigOptions{webhooks: true})
	r.svc.Fire(t, "alertname", "A", "service", "s", "severity", "critical")
	r.settled()
	r.svc.ResolveAlert(t, "alertname", "A", "service", "s", "severity", "critical")
	r.settled()
	if err := r.fake.WaitWebhooks(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := r.in.Poll(context.Background(), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	inc := r.incident(1)
	if inc.Status != triage.IncidentResolved || timelineHas(inc, triage.KindReopened, "") != nil {
		t.Fatalf("incident %s, timeline %+v: reopened by its own echo", inc.Status, inc.Timeline)
	}
}

// Comments whose webhooks arrive out of order are both applied, once.
func TestOutOfOrderCommentWebhooks(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.svc.Fire(t, "alertname", "A", "service", "s", "severity", "critical")
	r.settled()
	key := r.issues()[0].Key
	post := func(id, author, body string) {
		t.Helper()
		js := fmt.Sprintf(`{"webhookEvent":"comment_created","issue":{"key":%q,"fields":{"status":{"name":"To Do","statusCategory":{"key":"new"}}}},
			"comment":{"id":%q,"body":%q,"author":{"accountId":%q,"displayName":%q}}}`, key, id, body, author, author)
		req := httptest.NewRequest("POST", "/hook?secret="+secret, strings.NewReader(js))
		w := httptest.NewRecorder()
		r.in.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			t.Fatalf("webhook: %d %s", w.Code, w.Body)
		}
	}
	post("20001", "bob", "second")
	post("20000", "carol", "first")
	post("20001", "bob", "second") // a redelivery
	n := 0
	for _, e := range r.incident(1).Timeline {
		if e.Kind == triage.KindComment {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d comments on the incident, want 2", n)
	}
}

// The last successful poll is kept across restarts.
func TestPollTimeKept(t *testing.T) {
	r := newRig(t, rigOptions{tweak: func(o *jira.Options) { o.PollInterval = 5 * time.Millisecond }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.in.Run(ctx) }()
	svctest.Eventually(t, "a poll recorded", func() bool {
		b, err := r.box.Meta(jira.Name, "poll:last")
		return err == nil && b != nil
	})
	cancel()
	<-done
	b, _ := r.box.Meta(jira.Name, "poll:last")
	var last time.Time
	if err := last.UnmarshalText(b); err != nil || time.Since(last) > time.Minute {
		t.Fatalf("poll:last %q (%v)", b, err)
	}
}
