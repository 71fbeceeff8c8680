package app_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/connectors/jira/jirafake"
	"github.com/triage-dev/triage/internal/config"
)

// serve with a jira section: an alert posted to the API becomes one Jira
// issue recorded on the incident, and a person's comment in Jira comes
// back through the daemon's webhook route.
func TestServeWithJira(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "jira-token")
	secretFile := filepath.Join(dir, "hook-secret")
	if err := os.WriteFile(tokenFile, []byte("bot-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The fake calls the daemon's webhook route, whose address is known
	// only once the daemon listens: a forwarding endpoint bridges the two.
	var target atomic.Pointer[string]
	fwd := httptest.NewServer(forward(&target))
	defer fwd.Close()
	fake := jirafake.New(jirafake.Options{
		Deployment: jirafake.DataCenter,
		Users: []jirafake.User{{Name: "triage", DisplayName: "Triage", PAT: "bot-token"},
			{Name: "alice", DisplayName: "Alice", PAT: "alice-pat"}},
		Projects:      []jirafake.Project{{Key: "OPS"}},
		WebhookURL:    fwd.URL,
		WebhookSecret: "s3cret",
	})
	defer fake.Close()
	js := httptest.NewServer(fake)
	defer js.Close()

	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Store.CheckpointInterval = config.Duration(10 * time.Millisecond)
	cfg.Jira = config.Jira{URL: js.URL, TokenFile: tokenFile, Project: "OPS", MinPriority: "P2",
		WebhookSecretFile: secretFile}
	d := startInproc(t, cfg)
	target.Store(&d.base)

	ev := `{"labels": {"alertname": "DiskFull", "service": "db"}, "severity": "critical", "status": "firing"}`
	if code := d.do("POST", "/api/v1/events", ev, nil); code != 202 && code != 200 {
		t.Fatalf("posting an event: %d", code)
	}
	var inc triage.Incident
	waitUntil(t, "the ticket on the incident", func() bool {
		d.do("GET", "/api/v1/incidents/1", "", &inc)
		return inc.Ticket != nil
	})
	issues := fake.Issues()
	if len(issues) != 1 || inc.Ticket.Key != issues[0].Key || inc.Ticket.System != "jira" {
		t.Fatalf("ticket %+v, issues %+v", inc.Ticket, issues)
	}
	if err := fake.CommentAs("alice", inc.Ticket.Key, "restarting the volume"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "alice's comment on the incident", func() bool {
		d.do("GET", "/api/v1/incidents/1", "", &inc)
		for _, e := range inc.Timeline {
			if e.Kind == triage.KindComment && e.Actor == "jira:Alice" && e.Message == "restarting the volume" {
				return true
			}
		}
		return false
	})
	if m := d.metric(`triage_outbox_delivered_total{connector="jira"}`); m == "" || m == "0" {
		t.Fatalf("outbox delivered metric %q", m)
	}
}

// forward sends every request to the daemon's Jira webhook route.
func forward(target *atomic.Pointer[string]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := target.Load()
		if base == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequest("POST", *base+"/api/v1/connectors/jira/webhook", bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
