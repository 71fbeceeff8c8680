package jirafake

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// IssueSnapshot is the current state of an issue, for assertions.
type IssueSnapshot struct {
	ID, Key, Project, IssueType string
	Summary, Description        string
	Status                      string
	// StatusCategory is "new", "indeterminate" or "done".
	StatusCategory string
	Resolution     string // "" when unresolved
	ResolutionDate time.Time
	Priority       string
	Labels         []string
	Components     []string
	// CustomFields holds set custom fields by id: string (text, select), float64, []string.
	CustomFields map[string]any
	Properties   map[string]json.RawMessage
	// Assignee and Reporter are user ids as the deployment names them (accountId or name).
	Assignee, Reporter string
	Created, Updated   time.Time
	Comments           int
}

// CommentSnapshot is a comment, for assertions.
type CommentSnapshot struct {
	ID      string
	Author  string // accountId or name
	Body    string
	Created time.Time
}

func (s *Server) snapshot(iss *issue) IssueSnapshot {
	custom := maps.Clone(iss.custom)
	for k, v := range custom {
		if l, ok := v.([]string); ok {
			custom[k] = slices.Clone(l)
		}
	}
	props := map[string]json.RawMessage{}
	for k, v := range iss.props {
		props[k] = slices.Clone(v)
	}
	return IssueSnapshot{
		ID: strconv.Itoa(iss.id), Key: iss.key, Project: iss.project.Key, IssueType: iss.issueType.Name,
		Summary: iss.summary, Description: iss.description,
		Status: iss.status.Name, StatusCategory: iss.status.Category,
		Resolution: iss.resolution, ResolutionDate: iss.resolvedAt, Priority: iss.priority,
		Labels: slices.Clone(iss.labels), Components: slices.Clone(iss.components),
		CustomFields: custom, Properties: props,
		Assignee: s.cfg.userID(iss.assignee), Reporter: s.cfg.userID(iss.reporter),
		Created: iss.created, Updated: iss.updated, Comments: len(iss.comments),
	}
}

// Issues returns every issue in creation order.
func (s *Server) Issues() []IssueSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]IssueSnapshot, 0, len(s.issues))
	for _, iss := range s.issues {
		out = append(out, s.snapshot(iss))
	}
	return out
}

// Issue returns the issue with the given key or id.
func (s *Server) Issue(key string) (IssueSnapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	iss := s.lookup(key)
	if iss == nil {
		return IssueSnapshot{}, false
	}
	return s.snapshot(iss), true
}

// Comments returns the comments of an issue, oldest first; nil if there is no such issue.
func (s *Server) Comments(key string) []CommentSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	iss := s.lookup(key)
	if iss == nil {
		return nil
	}
	out := []CommentSnapshot{}
	for _, c := range iss.comments {
		out = append(out, CommentSnapshot{ID: strconv.Itoa(c.id), Author: s.cfg.userID(c.author), Body: c.body, Created: c.created})
	}
	return out
}

// Requests returns every request received so far, in order of completion.
func (s *Server) Requests() []RequestRecord {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return slices.Clone(s.requests)
}

// CountRequests counts requests by method whose path starts with pathPrefix.
func (s *Server) CountRequests(method, pathPrefix string) int {
	n := 0
	for _, r := range s.Requests() {
		if (method == "" || strings.EqualFold(r.Method, method)) && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

// ---- human actions: what another Jira user does in the UI ----

func (s *Server) actor(userID string) (*User, error) {
	u := s.cfg.user(userID)
	if u == nil {
		return nil, fmt.Errorf("jirafake: no user %q", userID)
	}
	return u, nil
}

// TransitionAs moves the issue to the status named toStatus through a transition available from
// its current status, as userID would in the UI. resolution applies when toStatus is a done
// status ("" means Done); the UI's transition screens are not enforced.
func (s *Server) TransitionAs(userID, key, toStatus, resolution string) error {
	u, err := s.actor(userID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	iss := s.lookup(key)
	if iss == nil {
		return errIssueNotFound
	}
	var t *transitionDef
	for _, tr := range iss.project.wf.available(iss.status.Name) {
		if strings.EqualFold(tr.To, toStatus) {
			t = &tr
			break
		}
	}
	if t == nil {
		return fmt.Errorf("jirafake: no transition from %q to %q on %s", iss.status.Name, toStatus, iss.key)
	}
	if resolution != "" {
		r, ok := s.cfg.resolution(resolution)
		if !ok {
			return fmt.Errorf("jirafake: no resolution %q", resolution)
		}
		resolution = r.Name
	}
	if aerr := s.change(u, iss, t.Event, func(d *issue) ([]string, *apiError) {
		to, _ := d.project.wf.status(t.To)
		moveStatus(d, to, resolution, s.cfg.Now())
		return nil, nil
	}); aerr != nil {
		return aerr
	}
	return nil
}

// CommentAs adds a comment by userID.
func (s *Server) CommentAs(userID, key, body string) error {
	u, err := s.actor(userID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	iss := s.lookup(key)
	if iss == nil {
		return errIssueNotFound
	}
	if _, aerr := s.addComment(u, iss, body); aerr != nil {
		return aerr
	}
	return nil
}

// AssignAs assigns the issue to assigneeID ("" unassigns), as userID.
func (s *Server) AssignAs(userID, key, assigneeID string) error {
	u, err := s.actor(userID)
	if err != nil {
		return err
	}
	var to *User
	if assigneeID != "" {
		if to = s.cfg.user(assigneeID); to == nil {
			return fmt.Errorf("jirafake: no user %q", assigneeID)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	iss := s.lookup(key)
	if iss == nil {
		return errIssueNotFound
	}
	if aerr := s.change(u, iss, "issue_assigned", func(d *issue) ([]string, *apiError) {
		d.assignee = to
		return nil, nil
	}); aerr != nil {
		return aerr
	}
	return nil
}

// EditAs edits fields as userID would in the UI, with the REST edit's validation: fields holds
// values as the REST API takes them, e.g. {"priority": {"name": "High"}, "summary": "..."}.
func (s *Server) EditAs(userID, key string, fields map[string]any) error {
	u, err := s.actor(userID)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(map[string]any{"fields": fields})
	if err != nil {
		return fmt.Errorf("jirafake: encoding fields: %w", err)
	}
	obj, aerr := decodeObject(raw, "IssueUpdateBean")
	if aerr != nil {
		return aerr
	}
	if aerr := s.edit(u, key, obj); aerr != nil {
		return aerr
	}
	return nil
}
