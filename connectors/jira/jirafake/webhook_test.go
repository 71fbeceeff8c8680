package jirafake

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"
)

func waitHooks(t *testing.T, f *fixture) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.s.WaitWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestWebhooks(t *testing.T) {
	hook := newHookRecorder(t)
	hook.fail = 1 // the first delivery is retried
	f := newFixture(t, Cloud, func(o *Options) { o.WebhookURL = hook.url; o.WebhookSecret = "s3cret" })
	key := f.create(map[string]any{"summary": "orders down", "project": map[string]any{"key": "SD"}, "issuetype": map[string]any{"name": "Incident"}})
	f.clock.Advance(time.Minute)
	if err := f.s.TransitionAs("bob", key, "In Progress", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CommentAs(bob.AccountID, key, "on it"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.AssignAs("bob", key, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.EditAs("bob", key, map[string]any{"priority": map[string]any{"name": "Highest"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.TransitionAs("bob", key, "Resolved", "Duplicate"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.TransitionAs("bob", key, "Waiting for customer", ""); err == nil {
		t.Error("an unavailable transition by hand succeeded")
	}
	waitHooks(t, f)

	bodies, sigs := hook.received()
	type event struct {
		Timestamp int64  `json:"timestamp"`
		Event     string `json:"webhookEvent"`
		Type      string `json:"issue_event_type_name"`
		User      struct {
			AccountID string `json:"accountId"`
		} `json:"user"`
		Issue struct {
			Key    string         `json:"key"`
			Fields map[string]any `json:"fields"`
		} `json:"issue"`
		Changelog *struct {
			ID    string `json:"id"`
			Items []struct {
				Field, FromString, ToString string
				From, To                    any
			} `json:"items"`
		} `json:"changelog"`
		Comment *struct {
			Body string `json:"body"`
		} `json:"comment"`
	}
	var evs []event
	for i, b := range bodies {
		m := hmac.New(sha256.New, []byte("s3cret"))
		m.Write(b)
		if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); sigs[i] != want || Sign("s3cret", b) != want {
			t.Errorf("signature %d: %q, want %q", i, sigs[i], want)
		}
		var e event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	want := []struct{ event, typ, changed string }{
		{"jira:issue_created", "issue_created", ""},
		{"jira:issue_updated", "issue_work_started", "status"},
		{"jira:issue_updated", "issue_commented", ""},
		{"comment_created", "", ""},
		{"jira:issue_updated", "issue_assigned", "assignee"},
		{"jira:issue_updated", "issue_updated", "priority"},
		{"jira:issue_updated", "issue_resolved", "resolution,status"},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d", len(evs), len(want))
	}
	for i, w := range want {
		e := evs[i]
		if e.Event != w.event || e.Type != w.typ || e.Issue.Key != key {
			t.Errorf("event %d: %s/%s on %s, want %s/%s", i, e.Event, e.Type, e.Issue.Key, w.event, w.typ)
		}
		changed := ""
		if e.Changelog != nil {
			for j, it := range e.Changelog.Items {
				if j > 0 {
					changed += ","
				}
				changed += it.Field
			}
		}
		if changed != w.changed {
			t.Errorf("event %d changelog %q, want %q", i, changed, w.changed)
		}
	}
	if evs[0].User.AccountID != alice.AccountID || evs[1].User.AccountID != bob.AccountID {
		t.Errorf("actors %s %s", evs[0].User.AccountID, evs[1].User.AccountID)
	}
	if evs[3].Comment == nil || evs[3].Comment.Body != "on it" {
		t.Errorf("comment event %+v", evs[3])
	}
	st := evs[6].Changelog.Items[1]
	if st.FromString != "In Progress" || st.ToString != "Resolved" {
		t.Errorf("status item %+v", st)
	}
	if evs[6].Issue.Fields["resolution"].(map[string]any)["name"] != "Duplicate" {
		t.Errorf("issue in event %v", evs[6].Issue.Fields["resolution"])
	}
	ds := f.s.WebhookDeliveries()
	if len(ds) != len(want) || ds[0].Attempts != 2 || ds[0].Err != "" || ds[0].Status != 200 {
		t.Errorf("deliveries %+v", ds[0])
	}
	// Human actions change the issue as REST would.
	is, _ := f.s.Issue(key)
	if is.Status != "Resolved" || is.Resolution != "Duplicate" || is.Assignee != bob.AccountID || is.Priority != "Highest" || !is.Updated.Equal(f.clock.Now()) {
		t.Errorf("issue after human actions %+v", is)
	}
	if cs := f.s.Comments(key); len(cs) != 1 || cs[0].Author != bob.AccountID {
		t.Errorf("comments %+v", cs)
	}
}

func TestWebhooksDataCenterUnsigned(t *testing.T) {
	hook := newHookRecorder(t)
	f := newFixture(t, DataCenter, func(o *Options) { o.WebhookURL = hook.url })
	key := f.create(map[string]any{"summary": "s"})
	if r := f.call("POST", "/rest/api/2/issue/"+key+"/transitions", map[string]any{"transition": map[string]any{"id": "21"}}); r.status != 204 {
		t.Fatal(r.status)
	}
	waitHooks(t, f)
	bodies, sigs := hook.received()
	if len(bodies) != 2 || sigs[0] != "" {
		t.Fatalf("bodies %d sigs %v", len(bodies), sigs)
	}
	var e struct {
		User      map[string]any `json:"user"`
		Changelog struct {
			Items []map[string]any `json:"items"`
		} `json:"changelog"`
	}
	if err := json.Unmarshal(bodies[1], &e); err != nil {
		t.Fatal(err)
	}
	if e.User["name"] != "alice" || e.Changelog.Items[0]["to"] != "3" || e.Changelog.Items[0]["toString"] != "In Progress" {
		t.Errorf("dc event %s", bodies[1])
	}
}

func TestWebhookCloseStopsDelivery(t *testing.T) {
	f := newFixture(t, Cloud, func(o *Options) { o.WebhookURL = "http://127.0.0.1:1/unreachable" })
	f.create(map[string]any{"summary": "s"})
	done := make(chan struct{})
	go func() {
		f.s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hangs")
	}
	f.create(map[string]any{"summary": "after close"}) // must not block or panic
}
