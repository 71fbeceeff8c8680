package jira

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/connectors"
)

// Name is the connector's name in the outbox, metrics and timelines, and
// the actor of what it records.
const Name = "jira"

// PropertyKey is the issue entity property holding the incident identity.
const PropertyKey = "triage.incident"

// Identity is the value of the PropertyKey property.
type Identity struct {
	Instance string `json:"instance"`
	Incident string `json:"incident"` // INC-42
	ID       uint64 `json:"id"`
}

func (i Identity) String() string { return i.Instance + "/" + i.Incident }

// Store is the outbox's per-connector storage the inbound side uses.
type Store interface {
	IncidentOf(connector, key string) (uint64, bool, error)
	Meta(connector, key string) ([]byte, error)
	UpdateMeta(connector, key string, fn func(old []byte) ([]byte, error)) error
}

// Connector is the Jira connector. Outbound it is a connectors.Connector;
// inbound see Inbound.
type Connector struct {
	o   Options
	c   *compiled
	cl  *client
	log *slog.Logger

	mu    sync.Mutex
	self  *user // the account Triage acts as, once known
	store Store
}

// New validates the options and builds the connector.
func New(o Options, log *slog.Logger) (*Connector, error) {
	c, errs := o.compile()
	if len(errs) > 0 {
		return nil, fmt.Errorf("jira: %s", strings.Join(errs, "; "))
	}
	cl, err := newClient(&o)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Connector{o: o, c: c, cl: cl, log: log}, nil
}

// Name implements connectors.Connector.
func (j *Connector) Name() string { return Name }

// Bind gives the connector the outbox's storage, for inbound sync and for
// remembering what Jira's state was last seen as.
func (j *Connector) Bind(s Store) {
	j.mu.Lock()
	j.store = s
	j.mu.Unlock()
}

// Wants implements connectors.Filter: what Jira itself caused (inbound
// changes, the connector's own records) is not sent back to Jira.
func (j *Connector) Wants(e triage.TimelineEntry) bool {
	if e.Actor == Name || strings.HasPrefix(e.Actor, Name+":") {
		return false
	}
	switch e.Kind {
	case triage.KindHeld, triage.KindTicket, triage.KindConnectorError, triage.KindAlertResolved:
		return false
	}
	return true
}

// Deliver implements connectors.Connector.
func (j *Connector) Deliver(ctx context.Context, d *connectors.Delivery) error {
	inc, st := d.Incident, d.State
	if st.Ticket == nil {
		if st.Failed != "" && st.FailedConfig == j.c.hash {
			return nil // failed for good under this configuration: already recorded
		}
		if inc.Held || !j.qualifies(inc) {
			return nil // not (yet) worth an issue; a later change may make it so
		}
		if err := j.ensureIssue(ctx, d); err != nil {
			var ce *connectors.Error
			if errors.As(err, &ce) && !ce.Retryable {
				st.Failed, st.FailedConfig, st.Intent = err.Error(), j.c.hash, time.Time{}
			}
			return err
		}
	}
	key := st.Ticket.Key
	if d.Change.Seq != 0 && d.Change.Seq > st.Covered && d.Change.Seq > st.Commented {
		if text := commentText(inc, d.Change); text != "" {
			if err := j.commentOnce(ctx, d, key, text); err != nil {
				return err
			}
		}
	}
	if p := j.o.Priorities[inc.Priority]; p != "" && inc.Priority != st.Priority {
		if err := j.cl.setPriority(ctx, key, p); err != nil {
			return err
		}
		st.Priority = inc.Priority
	}
	return j.syncStatus(ctx, d)
}

// qualifies applies min_priority or the when condition.
func (j *Connector) qualifies(inc *triage.Incident) bool {
	if j.c.when != nil {
		ok, err := connectors.Match(j.c.when, inc)
		if err != nil {
			j.log.Warn("jira: when condition failed; no issue", "incident", inc.Key, "err", err)
		}
		return ok
	}
	return inc.Priority != "" && inc.Priority <= j.o.MinPriority // "P1" < "P2" < ...
}

// route picks the target of a new issue.
func (j *Connector) route(inc *triage.Incident) Route {
	r := Route{Project: j.o.Project, IssueType: j.o.IssueType, Labels: j.o.Labels, Components: j.o.Components}
	for _, cr := range j.c.routes {
		if ok, _ := connectors.Match(cr.when, inc); !ok {
			continue
		}
		if cr.Project != "" {
			r.Project = cr.Project
		}
		if cr.IssueType != "" {
			r.IssueType = cr.IssueType
		}
		r.Labels = append(slices.Clone(r.Labels), cr.Labels...)
		r.Components = append(slices.Clone(r.Components), cr.Components...)
		break
	}
	if inc.Project != "" {
		r.Project = inc.Project
	}
	return r
}

func (j *Connector) identity(inc *triage.Incident) Identity {
	return Identity{Instance: j.o.Instance, Incident: inc.Key, ID: inc.ID}
}

// ensureIssue finds the incident's issue or creates it, recording the
// intent durably first.
func (j *Connector) ensureIssue(ctx context.Context, d *connectors.Delivery) error {
	inc, st := d.Incident, d.State
	r := j.route(inc)
	project := r.Project
	if !st.Intent.IsZero() && st.Target != "" {
		project = st.Target // where the earlier, unconfirmed create went
	}
	found, err := j.find(ctx, inc, project)
	if err != nil {
		return err
	}
	if found == nil && !st.Intent.IsZero() {
		// A create may have happened before a crash; the search index may
		// not show it yet. Wait until it must.
		if wait := st.Intent.Add(j.o.IndexLag).Sub(j.o.Now()); wait > 0 {
			return connectors.Retryable(fmt.Errorf("jira: an earlier create of %s may not be searchable yet", inc.Key), wait)
		}
	}
	switch {
	case found == nil:
		// What the description shows is saved with the intent: if the
		// answer is lost, the issue found later is known to show this.
		body, err := j.createBody(inc, r)
		if err != nil {
			return connectors.Permanent(err)
		}
		st.Intent, st.Target, st.Covered, st.Priority = j.o.Now(), r.Project, lastSeq(inc), inc.Priority
		if err := d.Save(); err != nil {
			return connectors.Retryable(fmt.Errorf("saving the intent to create: %w", err), 0)
		}
		cr, err := j.cl.create(ctx, body)
		if err != nil {
			var ce *connectors.Error
			if errors.As(err, &ce) && ce.Retryable && ce.RetryAfter == 0 {
				// No answer or a 5xx: the issue may exist. The index lag
				// counts from now, when the attempt ended.
				st.Intent = j.o.Now()
			} else {
				st.Intent, st.Target = time.Time{}, "" // refused: nothing was created
			}
			return err
		}
		found = &issue{ID: cr.ID, Key: cr.Key}
		j.log.Info("jira issue created", "incident", inc.Key, "issue", cr.Key)
	case !st.Intent.IsZero():
		// Found after an unconfirmed create: Covered and Priority were
		// saved with the intent and describe what that create showed.
		j.log.Info("jira issue found for incident", "incident", inc.Key, "issue", found.Key)
	default:
		// Found without an intent (state lost): assume it shows nothing.
		st.Covered, st.Priority = 0, ""
		j.log.Info("jira issue found for incident", "incident", inc.Key, "issue", found.Key)
	}
	j.rememberProject(found.Key)
	st.Ticket = &triage.Ticket{System: Name, Key: found.Key, URL: strings.TrimRight(j.o.URL, "/") + "/browse/" + found.Key}
	st.RemoteID = found.ID
	st.Intent, st.Target = time.Time{}, ""
	if found.Fields.Status != nil {
		j.remember(found.Key, func(s *seen) { s.Category = found.Fields.Status.StatusCategory.Key })
	} else {
		j.remember(found.Key, func(s *seen) { s.Category = "new" })
	}
	return nil
}

// find searches for the incident's issue: by the identity field when one
// is configured, else by the key in the summary, each hit checked against
// the identity property.
func (j *Connector) find(ctx context.Context, inc *triage.Incident, project string) (*issue, error) {
	id := j.identity(inc)
	var jql, fields string
	if f := j.o.IncidentField; f != "" {
		jql = fmt.Sprintf(`project = %s AND cf[%s] ~ %s`, jqlQuote(project), strings.TrimPrefix(f, "customfield_"), jqlQuote(`"`+id.String()+`"`))
		fields = "status,summary," + f
	} else {
		jql = fmt.Sprintf(`project = %s AND summary ~ %s`, jqlQuote(project), jqlQuote(`"`+inc.Key+`"`))
		fields = "status,summary"
	}
	hits, err := j.cl.search(ctx, jql+" ORDER BY created ASC", fields, PropertyKey, 200)
	if err != nil {
		return nil, err
	}
	for i := range hits {
		h := &hits[i]
		if f := j.o.IncidentField; f != "" && h.Fields.text(f) == id.String() {
			return h, nil
		}
		var got Identity
		if raw, ok := h.Properties[PropertyKey]; ok && json.Unmarshal(raw, &got) == nil && got == id {
			return h, nil
		}
	}
	return nil, nil
}

func jqlQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func (j *Connector) createBody(inc *triage.Incident, r Route) (*createBody, error) {
	summary, err := render(j.c.summary, inc, j.o.TriageURL)
	if err != nil {
		return nil, fmt.Errorf("summary template: %w", err)
	}
	summary = strings.Join(strings.Fields(summary), " ") // one line
	if len([]rune(summary)) > 254 {
		summary = string([]rune(summary)[:253]) + "…"
	}
	desc, err := render(j.c.desc, inc, j.o.TriageURL)
	if err != nil {
		return nil, fmt.Errorf("description template: %w", err)
	}
	if len(desc) > 32000 {
		desc = desc[:32000] + "\n…"
	}
	f := map[string]any{
		"project":   map[string]string{"key": r.Project},
		"issuetype": map[string]string{"name": r.IssueType},
		"summary":   summary,
	}
	if desc != "" {
		f["description"] = desc
	}
	if p := j.o.Priorities[inc.Priority]; p != "" {
		f["priority"] = map[string]string{"name": p}
	}
	if len(r.Labels) > 0 {
		f["labels"] = r.Labels
	}
	if len(r.Components) > 0 {
		cs := make([]map[string]string, len(r.Components))
		for i, c := range r.Components {
			cs[i] = map[string]string{"name": c}
		}
		f["components"] = cs
	}
	for k, v := range j.o.Fields {
		f[k] = v
	}
	id := j.identity(inc)
	if j.o.IncidentField != "" {
		f[j.o.IncidentField] = id.String()
	}
	return &createBody{Fields: f, Properties: []property{{Key: PropertyKey, Value: id}}}, nil
}

func lastSeq(inc *triage.Incident) uint64 {
	var m uint64
	for _, e := range inc.Timeline {
		m = max(m, e.Seq)
	}
	return m
}

// marker ends every comment Triage posts: it names the change, so that a
// comment posted before a crash is found instead of posted twice.
func marker(inc *triage.Incident, seq uint64) string {
	return fmt.Sprintf("(triage %s change %d)", inc.Key, seq)
}

// commentOnce posts a change's comment unless an earlier attempt did.
func (j *Connector) commentOnce(ctx context.Context, d *connectors.Delivery, key, text string) error {
	return j.commentMarked(ctx, d, key, text, "")
}

// commentMarked is commentOnce for a second comment of the same change,
// told apart by what (e.g. "status").
func (j *Connector) commentMarked(ctx context.Context, d *connectors.Delivery, key, text, what string) error {
	st, seq := d.State, d.Change.Seq
	mark := marker(d.Incident, seq)
	if what != "" {
		mark = strings.TrimSuffix(mark, ")") + " " + what + ")"
	}
	if st.InFlight == seq {
		cs, err := j.cl.recentComments(ctx, key, 50)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if strings.HasSuffix(strings.TrimSpace(c.Body), mark) {
				st.InFlight = 0
				if what == "" {
					st.Commented = max(st.Commented, seq)
				}
				return nil
			}
		}
	} else {
		st.InFlight = seq
		if err := d.Save(); err != nil {
			return connectors.Retryable(fmt.Errorf("saving a comment intent: %w", err), 0)
		}
	}
	if err := j.cl.addComment(ctx, key, text+"\n\n"+mark); err != nil {
		return err
	}
	st.InFlight = 0
	if what == "" {
		st.Commented = max(st.Commented, seq)
	}
	return nil
}

// commentText is the comment a change makes, or "" for none.
func commentText(inc *triage.Incident, e triage.TimelineEntry) string {
	var what string
	switch e.Kind {
	case triage.KindAlertAdded, triage.KindAlertRefired, triage.KindRootCause, triage.KindMerged,
		triage.KindSeverityChanged, triage.KindFlapping, triage.KindReleased, triage.KindReopened, triage.KindResolved,
		triage.KindOnHold, triage.KindOffHold, triage.KindProblem, triage.KindPriorityChanged:
		what = e.Message
	case triage.KindAcknowledged:
		what = "acknowledged by " + e.Actor + " in Triage"
	case triage.KindComment:
		what = "comment by " + e.Actor + ": " + e.Message
	case triage.KindOpened:
		return "" // the issue's creation says it
	default:
		if strings.HasPrefix(e.Kind, "sla_") {
			what = e.Message
		}
	}
	if what == "" {
		return ""
	}
	return fmt.Sprintf("Triage, %s: %s", e.Time.UTC().Format("2006-01-02 15:04:05Z"), what)
}

// syncStatus brings the issue's workflow status to the incident's. It
// works from what the issue's status category was last known to be (its
// own transitions and inbound sync keep that), reading Jira when unknown.
func (j *Connector) syncStatus(ctx context.Context, d *connectors.Delivery) error {
	inc, st := d.Incident, d.State
	key := st.Ticket.Key
	cat, err := j.category(ctx, key)
	if err != nil {
		return err
	}
	switch {
	case inc.Status == triage.IncidentResolved:
		if cat != "done" {
			return j.moveTo(ctx, key, "done", j.o.Transitions.Resolve, j.o.Resolution)
		}
	case cat == "done":
		is, err := j.cl.getIssue(ctx, key, "status,resolution")
		if err != nil {
			return err
		}
		res := ""
		if is.Fields.Resolution != nil {
			res = is.Fields.Resolution.Name
		}
		if is.Fields.Status == nil || is.Fields.Status.StatusCategory.Key != "done" {
			j.remember(key, func(s *seen) { s.Category = "" })
			return connectors.Retryable(fmt.Errorf("jira %s: status changed meanwhile", key), 0)
		}
		if j.o.Reopen == "comment" || slices.ContainsFunc(j.o.KeepResolutions, func(k string) bool { return strings.EqualFold(k, res) }) {
			// Someone closed it on purpose: say it fired again, keep it.
			text := fmt.Sprintf("Triage: %s is open again in Triage; the issue stays %s (%s).", inc.Key, is.Fields.Status.Name, res)
			if err := j.commentMarked(ctx, d, key, text, "status"); err != nil {
				return err
			}
			j.remember(key, func(s *seen) { s.Category = "done-kept" })
			return nil
		}
		if err := j.moveTo(ctx, key, "reopen", j.o.Transitions.Reopen, ""); err != nil {
			return err
		}
		if inc.Status == triage.IncidentAcknowledged && j.o.Transitions.Acknowledge != "" {
			return j.moveTo(ctx, key, "ack", j.o.Transitions.Acknowledge, "")
		}
	case inc.Status == triage.IncidentAcknowledged && cat == "new" && j.o.Transitions.Acknowledge != "":
		return j.moveTo(ctx, key, "ack", j.o.Transitions.Acknowledge, "")
	}
	return nil
}

// category is the issue's status category as last known ("done-kept" for
// a done issue left alone on purpose), read from Jira when unknown.
func (j *Connector) category(ctx context.Context, key string) (string, error) {
	if v, ok := j.recall(key); ok && v.Category != "" {
		return v.Category, nil
	}
	is, err := j.cl.getIssue(ctx, key, "status")
	if err != nil {
		return "", err
	}
	cat := "new"
	if is.Fields.Status != nil {
		cat = is.Fields.Status.StatusCategory.Key
	}
	j.remember(key, func(s *seen) { s.Category = cat })
	return cat, nil
}

// moveTo performs a transition: the named one (by transition or target
// status name) or, unnamed, the first into a done status (goal "done") or
// out of one (goal "reopen"). An issue already where the goal leads is
// left alone.
func (j *Connector) moveTo(ctx context.Context, key, goal, name, resolution string) error {
	ts, err := j.cl.transitions(ctx, key)
	if err != nil {
		return err
	}
	is, err := j.cl.getIssue(ctx, key, "status")
	if err != nil {
		return err
	}
	cur := ""
	curName := ""
	if is.Fields.Status != nil {
		cur, curName = is.Fields.Status.StatusCategory.Key, is.Fields.Status.Name
	}
	if (goal == "done" && cur == "done") || (goal == "reopen" && cur != "done") || (name != "" && strings.EqualFold(curName, name)) {
		return nil
	}
	pick := -1
	for i, t := range ts {
		switch {
		case name != "":
			if strings.EqualFold(t.Name, name) || strings.EqualFold(t.To.Name, name) {
				pick = i
			}
		case goal == "done":
			if t.To.StatusCategory.Key == "done" {
				pick = i
			}
		case goal == "reopen":
			if t.To.StatusCategory.Key != "done" {
				pick = i
			}
		}
		if pick >= 0 {
			break
		}
	}
	if pick < 0 {
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = fmt.Sprintf("%q → %s", t.Name, t.To.Name)
		}
		want := name
		if want == "" {
			want = "any into a done status"
			if goal == "reopen" {
				want = "any out of a done status"
			}
		}
		return connectors.Permanent(fmt.Errorf("jira %s in status %q: no transition %s (available: %s)", key, curName, want, strings.Join(names, ", ")))
	}
	t := ts[pick]
	if _, ok := t.Fields["resolution"]; !ok {
		resolution = "" // not on the transition screen: Jira would refuse it
	}
	if err := j.cl.transition(ctx, key, t.ID, resolution); err != nil {
		return err
	}
	cat, upd := t.To.StatusCategory.Key, time.Time{}
	if after, err := j.cl.getIssue(ctx, key, "status,updated"); err == nil && after.Fields.Status != nil {
		// Jira's own time of this change: snapshots older than it (a late
		// webhook, a lagging search) are not taken for a person's change.
		cat, upd = after.Fields.Status.StatusCategory.Key, jiraTime(after.Fields.Updated)
	}
	j.remember(key, func(s *seen) {
		s.Category = cat
		if upd.After(s.Updated) {
			s.Updated = upd
		}
	})
	return nil
}

// seen is what the connector last knew of an issue in Jira: inbound sync
// acts on differences from it, so its own changes are not taken for a
// person's.
type seen struct {
	Category string `json:"category,omitempty"`
	Assignee string `json:"assignee,omitempty"`
	// Updated is Jira's updated time of the newest snapshot acted on: an
	// older one (a late webhook, a stale search index) changes nothing.
	Updated time.Time `json:"updated,omitzero"`
	// Comments are the ids of comments already seen (the newest
	// maxSeenComments); ids at or below Floor are all seen.
	Comments []int64 `json:"comments,omitempty"`
	Floor    int64   `json:"floor,omitempty"`
}

const maxSeenComments = 500

func (s *seen) hasComment(id int64) bool {
	_, ok := slices.BinarySearch(s.Comments, id)
	return id <= s.Floor || ok
}

func (s *seen) addComment(id int64) {
	if s.hasComment(id) {
		return
	}
	i, _ := slices.BinarySearch(s.Comments, id)
	s.Comments = slices.Insert(s.Comments, i, id)
	if len(s.Comments) > maxSeenComments {
		s.Floor = s.Comments[0]
		s.Comments = slices.Delete(s.Comments, 0, 1)
	}
}

// jiraTime reads Jira's timestamps ("2026-11-25T09:00:00.000+0000").
func jiraTime(s string) time.Time {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// rememberProject adds an issue's project to those polling covers (an
// enrich rule may have sent the issue outside the configured projects).
func (j *Connector) rememberProject(key string) {
	project, _, ok := strings.Cut(key, "-")
	j.mu.Lock()
	s := j.store
	j.mu.Unlock()
	if !ok || s == nil {
		return
	}
	err := s.UpdateMeta(Name, "projects", func(old []byte) ([]byte, error) {
		var ps []string
		_ = json.Unmarshal(old, &ps)
		if slices.Contains(ps, project) {
			return old, nil
		}
		return json.Marshal(append(ps, project))
	})
	if err != nil {
		j.log.Warn("jira: recording a project", "project", project, "err", err)
	}
}

// projects are the projects polling covers: the configured ones and
// those issues were created in.
func (j *Connector) projects() []string {
	ps := []string{j.o.Project}
	for _, r := range j.o.Routes {
		if r.Project != "" && !slices.Contains(ps, r.Project) {
			ps = append(ps, r.Project)
		}
	}
	j.mu.Lock()
	s := j.store
	j.mu.Unlock()
	if s != nil {
		var seenPs []string
		if b, err := s.Meta(Name, "projects"); err == nil && b != nil {
			_ = json.Unmarshal(b, &seenPs)
		}
		for _, p := range seenPs {
			if !slices.Contains(ps, p) {
				ps = append(ps, p)
			}
		}
	}
	return ps
}

// recall reads what is known of an issue.
func (j *Connector) recall(key string) (seen, bool) {
	j.mu.Lock()
	s := j.store
	j.mu.Unlock()
	var v seen
	if s == nil {
		return v, false
	}
	b, err := s.Meta(Name, "issue:"+key)
	if err != nil || b == nil {
		return v, false
	}
	return v, json.Unmarshal(b, &v) == nil
}

// remember updates what is known of an issue.
func (j *Connector) remember(key string, fn func(*seen)) {
	j.mu.Lock()
	s := j.store
	j.mu.Unlock()
	if s == nil {
		return
	}
	err := s.UpdateMeta(Name, "issue:"+key, func(old []byte) ([]byte, error) {
		var v seen
		if old != nil {
			_ = json.Unmarshal(old, &v)
		}
		fn(&v)
		return json.Marshal(&v)
	})
	if err != nil {
		j.log.Warn("jira: recording issue state", "issue", key, "err", err)
	}
}

func commentID(id string) int64 {
	n, _ := strconv.ParseInt(id, 10, 64)
	return n
}
