package jira

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/correlate"
	"github.com/triage-dev/triage/internal/httpx"
)

// Actions are what inbound sync does to incidents: the service.
type Actions interface {
	Acknowledge(ctx context.Context, id uint64, actor string) error
	Resolve(ctx context.Context, id uint64, actor, note string) error
	Reopen(ctx context.Context, id uint64, actor, note string) error
	Comment(ctx context.Context, id uint64, actor, text string) error
	Note(ctx context.Context, id uint64, kind, actor, text string) error
}

// Incidents reads incidents: the store.
type Incidents interface {
	Incident(id uint64) (*triage.Incident, error)
}

// Inbound brings changes people make in Jira back to incidents, from
// webhooks (ServeHTTP) and by polling (Run). Both compare what Jira shows
// with what was last seen of the issue, so a change arriving both ways, or
// one Triage made itself, applies once or not at all.
type Inbound struct {
	j    *Connector
	act  Actions
	incs Incidents
	log  *slog.Logger
	mu   sync.Mutex // one issue update at a time
}

// Inbound returns the connector's inbound side. Bind must have been
// called.
func (j *Connector) Inbound(act Actions, incs Incidents) *Inbound {
	return &Inbound{j: j, act: act, incs: incs, log: j.log}
}

// update is one issue as Jira showed it, from a webhook or a search.
type update struct {
	key        string
	by         *user // who changed it; nil when unknown (polling)
	status     *status
	resolution string
	assignee   *user
	// statusChanged and assigneeChanged say the snapshot may carry a new
	// status or assignee: a webhook whose changelog names the field, or a
	// search result (compared by its updated time).
	statusChanged, assigneeChanged bool
	updated                        time.Time
	comments                       []comment
}

// webhook is the part of Jira's webhook body Triage reads.
type webhook struct {
	Event string `json:"webhookEvent"`
	User  *user  `json:"user"`
	Issue *struct {
		Key    string      `json:"key"`
		Fields issueFields `json:"fields"`
	} `json:"issue"`
	Changelog *struct {
		Items []struct {
			Field   string `json:"field"`
			FieldID string `json:"fieldId"`
		} `json:"items"`
	} `json:"changelog"`
	Comment *comment `json:"comment"`
}

const maxWebhookBody = 1 << 20

// ServeHTTP handles Jira's webhook: POST /api/v1/connectors/jira/webhook.
// The request must carry the shared secret: Jira Cloud's signature header
// (X-Hub-Signature: sha256=HMAC of the body) or, for senders that cannot
// sign, the secret itself in the X-Triage-Webhook-Secret header or the
// `secret` query parameter.
func (in *Inbound) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpx.WriteError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if in.j.o.WebhookSecret == "" {
		httpx.WriteError(w, http.StatusForbidden, "the Jira webhook is off: set jira.webhook_secret_file or webhook_secret_env")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", maxWebhookBody))
		return
	}
	if !in.authentic(r, body) {
		httpx.WriteError(w, http.StatusUnauthorized, "missing or wrong webhook secret or signature")
		return
	}
	var wh webhook
	if err := json.Unmarshal(body, &wh); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "not a Jira webhook body: "+err.Error())
		return
	}
	if wh.Issue == nil || wh.Issue.Key == "" {
		httpx.WriteError(w, http.StatusBadRequest, "not a Jira issue webhook: no issue.key")
		return
	}
	u := update{key: wh.Issue.Key, by: wh.User, status: wh.Issue.Fields.Status, assignee: wh.Issue.Fields.Assignee,
		updated: jiraTime(wh.Issue.Fields.Updated)}
	if wh.Issue.Fields.Resolution != nil {
		u.resolution = wh.Issue.Fields.Resolution.Name
	}
	// Only what this event's changelog names changed; a comment event
	// carries the issue as it was, which says nothing new about its status.
	if wh.Changelog != nil {
		for _, it := range wh.Changelog.Items {
			switch strings.ToLower(cmp.Or(it.FieldID, it.Field)) {
			case "status", "resolution":
				u.statusChanged = true
			case "assignee":
				u.assigneeChanged = true
			}
		}
	}
	if wh.Comment != nil && wh.Comment.ID != "" {
		u.comments = []comment{*wh.Comment}
	}
	applied, err := in.apply(r.Context(), u)
	if err != nil {
		in.log.Warn("jira webhook: not applied", "issue", u.key, "event", wh.Event, "err", err)
		httpx.WriteError(w, http.StatusServiceUnavailable, "not applied, send again: "+err.Error())
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]any{"issue": u.key, "applied": applied})
}

func (in *Inbound) authentic(r *http.Request, body []byte) bool {
	secret := []byte(in.j.o.WebhookSecret)
	if sig := r.Header.Get("X-Hub-Signature"); sig != "" {
		got, err := hex.DecodeString(strings.TrimPrefix(sig, "sha256="))
		if err != nil || !strings.HasPrefix(sig, "sha256=") {
			return false
		}
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		return hmac.Equal(got, m.Sum(nil))
	}
	given := r.Header.Get("X-Triage-Webhook-Secret")
	if given == "" {
		given = r.URL.Query().Get("secret")
	}
	return given != "" && subtle.ConstantTimeCompare([]byte(given), secret) == 1
}

func httpError(w http.ResponseWriter, code int, msg string) {
	httpx.WriteError(w, code, msg)
}

// apply reflects one issue's state on its incident and returns what it
// did. An issue that is not an incident's is ignored.
func (in *Inbound) apply(ctx context.Context, u update) ([]string, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	j := in.j
	j.mu.Lock()
	store := j.store
	j.mu.Unlock()
	if store == nil {
		return nil, errors.New("jira connector not bound to its outbox")
	}
	id, ok, err := store.IncidentOf(Name, u.key)
	if err != nil || !ok {
		return nil, err
	}
	me, err := j.me(ctx)
	if err != nil {
		return nil, err
	}
	mine := func(x *user) bool { return x != nil && me != nil && x.id() == me.id() }
	old, _ := j.recall(u.key)
	var did []string
	actor := Name
	if u.by != nil {
		actor = Name + ":" + u.by.display()
	}
	inc, err := in.incs.Incident(id)
	if err != nil {
		return nil, err
	}
	act := func(what string, err error) error {
		if err == nil {
			did = append(did, what)
			return nil
		}
		if errors.Is(err, correlate.ErrConflict) || errors.Is(err, correlate.ErrNotFound) {
			in.log.Info("jira inbound: change does not apply", "issue", u.key, "incident", inc.Key, "what", what, "err", err)
			return nil
		}
		return err
	}
	// Progress is saved field by field, right after each action, so that a
	// failure half way repeats nothing that was done.
	stale := !u.updated.IsZero() && u.updated.Before(old.Updated)
	newer := func(s *seen) {
		if u.updated.After(s.Updated) {
			s.Updated = u.updated
		}
	}
	if u.status != nil && u.statusChanged && !stale {
		cat := u.status.StatusCategory.Key
		changed := cat != old.Category && !(old.Category == "done-kept" && cat == "done")
		if changed && !mine(u.by) {
			if err := in.applyStatus(ctx, id, inc, u, actor, act); err != nil {
				return did, err
			}
		}
		if changed {
			j.remember(u.key, func(s *seen) { s.Category = cat; newer(s) })
		}
	}
	if u.assigneeChanged && !stale && u.assignee.id() != old.Assignee {
		if !mine(u.by) {
			text := "unassigned in Jira " + u.key
			if u.assignee != nil {
				text = "assigned to " + u.assignee.display() + " in Jira " + u.key
			}
			if err := act("assign", in.act.Note(ctx, id, triage.KindAssigned, actor, text)); err != nil {
				return did, err
			}
			if u.assignee != nil && j.o.AcknowledgeOnAssign && inc.Status == triage.IncidentOpen {
				if err := act("acknowledge", in.act.Acknowledge(ctx, id, actor)); err != nil {
					return did, err
				}
			}
		}
		a := u.assignee.id()
		j.remember(u.key, func(s *seen) { s.Assignee = a; newer(s) })
	}
	cs := slices.Clone(u.comments)
	slices.SortFunc(cs, func(a, b comment) int { return cmp.Compare(commentID(a.ID), commentID(b.ID)) })
	for _, c := range cs {
		n := commentID(c.ID)
		if n == 0 || old.hasComment(n) {
			continue
		}
		if !mine(c.Author) && !strings.Contains(c.Body, "(triage "+inc.Key+" change ") {
			if err := act("comment", in.act.Comment(ctx, id, Name+":"+c.Author.display(), c.Body)); err != nil {
				return did, err
			}
		}
		j.remember(u.key, func(s *seen) { s.addComment(n) })
	}
	return did, nil
}

// applyStatus reflects a status a person set in Jira on the incident.
func (in *Inbound) applyStatus(ctx context.Context, id uint64, inc *triage.Incident, u update, actor string,
	act func(string, error) error) error {
	cat := u.status.StatusCategory.Key
	target := in.j.c.statuses[strings.ToLower(u.status.Name)]
	if target == "" {
		switch cat {
		case "done":
			target = string(triage.IncidentResolved)
		case "indeterminate":
			target = string(triage.IncidentAcknowledged)
		default:
			target = string(triage.IncidentOpen)
		}
	}
	where := fmt.Sprintf("in Jira %s (%s", u.key, u.status.Name)
	if u.resolution != "" && cat == "done" {
		where += ", " + u.resolution
	}
	where += ")"
	resolved := inc.Status == triage.IncidentResolved
	switch target {
	case string(triage.IncidentResolved):
		if !resolved {
			return act("resolve", in.act.Resolve(ctx, id, actor, where))
		}
	case string(triage.IncidentAcknowledged):
		if resolved {
			if err := act("reopen", in.act.Reopen(ctx, id, actor, where)); err != nil {
				return err
			}
		}
		if inc.Status != triage.IncidentAcknowledged {
			return act("acknowledge", in.act.Acknowledge(ctx, id, actor))
		}
	default:
		if resolved {
			return act("reopen", in.act.Reopen(ctx, id, actor, where))
		}
	}
	return nil
}

// me is the account Triage acts as in Jira, read once.
func (j *Connector) me(ctx context.Context) (*user, error) {
	j.mu.Lock()
	me := j.self
	j.mu.Unlock()
	if me != nil {
		return me, nil
	}
	me, err := j.cl.myself(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the Jira account Triage acts as: %w", err)
	}
	j.mu.Lock()
	j.self = me
	j.mu.Unlock()
	return me, nil
}

// Run polls Jira every PollInterval for issues updated since the last poll
// (with a margin) and applies them, until ctx is cancelled. It does
// nothing when polling is off.
func (in *Inbound) Run(ctx context.Context) error {
	iv := in.j.o.PollInterval
	if iv <= 0 {
		return nil
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	// The last successful poll is kept, so that a restart after a long
	// stop catches up on everything since (not just the last hour).
	last := time.Time{}
	in.j.mu.Lock()
	store := in.j.store
	in.j.mu.Unlock()
	if store != nil {
		if b, err := store.Meta(Name, "poll:last"); err == nil && b != nil {
			_ = last.UnmarshalText(b)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		start := in.j.o.Now()
		if err := in.Poll(ctx, last); err != nil {
			in.log.Warn("jira poll failed", "err", err)
			continue
		}
		last = start
		if store != nil {
			b, _ := start.MarshalText()
			if err := store.UpdateMeta(Name, "poll:last", func([]byte) ([]byte, error) { return b, nil }); err != nil {
				in.log.Warn("jira poll: saving the poll time", "err", err)
			}
		}
	}
}

// Poll applies every issue of the connector's projects updated since
// `since` (the last hour when zero), with two minutes of margin for clock
// skew and Jira's minute-precision JQL.
func (in *Inbound) Poll(ctx context.Context, since time.Time) error {
	mins := 60
	if !since.IsZero() {
		mins = int(in.j.o.Now().Sub(since).Minutes()) + 2
	}
	var projects []string
	for _, p := range in.j.projects() {
		projects = append(projects, jqlQuote(p))
	}
	jql := fmt.Sprintf("project in (%s) AND updated >= -%dm ORDER BY updated ASC", strings.Join(projects, ", "), mins)
	issues, err := in.j.cl.search(ctx, jql, "status,resolution,assignee,comment,updated", "", 5000)
	if err != nil {
		return fmt.Errorf("jira poll: %w", err)
	}
	for _, is := range issues {
		u := update{key: is.Key, status: is.Fields.Status, assignee: is.Fields.Assignee,
			statusChanged: true, assigneeChanged: true, updated: jiraTime(is.Fields.Updated)}
		if is.Fields.Resolution != nil {
			u.resolution = is.Fields.Resolution.Name
		}
		if is.Fields.Comment != nil {
			u.comments = is.Fields.Comment.Comments
		}
		if _, err := in.apply(ctx, u); err != nil {
			return fmt.Errorf("jira poll: %s: %w", is.Key, err)
		}
	}
	return nil
}
