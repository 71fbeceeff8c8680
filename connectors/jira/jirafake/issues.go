package jirafake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	maxPropertyValue = 32768
	maxPropertyKey   = 255
)

// lookup finds an issue by id or key, keys case-insensitively. The caller holds s.mu.
func (s *Server) lookup(idOrKey string) *issue {
	if n, err := strconv.Atoi(idOrKey); err == nil {
		return s.byID[n]
	}
	return s.byKey[strings.ToUpper(idOrKey)]
}

// commit records the current state of iss for the search index. The caller holds s.mu.
func (s *Server) commit(iss *issue, now time.Time) {
	vs := s.index[iss.id]
	// Only the newest version already visible matters; drop older ones.
	keep := 0
	for i, v := range vs {
		if !v.visibleAt.After(now) {
			keep = i
		}
	}
	if len(vs) > 0 {
		vs = vs[keep:]
	}
	s.index[iss.id] = append(vs, version{visibleAt: now.Add(s.cfg.IndexDelay), state: iss.clone()})
}

// indexed is the state of iss the search index shows at now, nil before it is indexed.
func (s *Server) indexed(iss *issue, now time.Time) *issue {
	var st *issue
	for _, v := range s.index[iss.id] {
		if !v.visibleAt.After(now) {
			st = v.state
		}
	}
	return st
}

// baseLocked is the base URL for links outside a request. The caller holds s.mu.
func (s *Server) baseLocked() string {
	if s.cfg.BaseURL != "" {
		return strings.TrimRight(s.cfg.BaseURL, "/")
	}
	if s.lastBase != "" {
		return s.lastBase
	}
	return "http://jira.invalid"
}

type createResult struct {
	id, key string
}

// create validates and stores a new issue from an IssueUpdateBean.
func (s *Server) create(actor *User, obj map[string]json.RawMessage) (*createResult, *apiError) {
	var fields map[string]json.RawMessage
	if raw, ok := obj["fields"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, badRequest("Can not deserialize instance of java.util.HashMap out of " + jsonTokenOf(raw) + " token")
		}
	}
	var update map[string]json.RawMessage
	if raw, ok := obj["update"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &update); err != nil {
			return nil, badRequest("Can not deserialize instance of java.util.HashMap out of " + jsonTokenOf(raw) + " token")
		}
	}
	props, perr := decodeProperties(obj["properties"])
	if perr != nil {
		return nil, perr
	}
	errs := map[string]string{}
	var p *project
	if raw, ok := fields["project"]; !ok || isNull(raw) {
		errs["project"] = "project is required"
	} else if v, ok := refValue(raw, "key"); !ok {
		errs["project"] = "Could not find valid 'id' or 'key' in project object."
	} else if p = s.cfg.projectByKeyOrID(v); p == nil {
		errs["project"] = "valid project is required"
	}
	if p == nil {
		if _, ok := fields["issuetype"]; !ok {
			errs["issuetype"] = "issue type is required"
		}
		if len(errs) == 0 {
			errs["project"] = "valid project is required"
		}
		return nil, &apiError{status: http.StatusBadRequest, fields: errs}
	}
	now := s.cfg.Now()
	draft := &issue{project: p, status: p.wf.statuses[0], priority: s.cfg.DefaultPriority, reporter: actor, creator: actor,
		custom: map[string]any{}, props: map[string]json.RawMessage{}}
	if raw, ok := fields["issuetype"]; !ok || isNull(raw) {
		errs["issuetype"] = "issue type is required"
	} else if msg := s.applyField(draft, "issuetype", raw, onCreate); msg != "" {
		errs["issuetype"] = msg
	}
	if raw, ok := fields["summary"]; !ok || isNull(raw) {
		errs["summary"] = "You must specify a summary of the issue."
	}
	for _, id := range sortedKeys(fields) {
		if id == "project" || id == "issuetype" {
			continue
		}
		if id == "summary" && isNull(fields[id]) {
			continue
		}
		if msg := s.applyField(draft, id, fields[id], onCreate); msg != "" {
			errs[id] = msg
		}
	}
	for _, id := range sortedKeys(update) {
		if _, msg := s.applyUpdate(draft, id, update[id], false); msg != "" {
			errs[id] = msg
		}
	}
	if len(errs) > 0 {
		return nil, &apiError{status: http.StatusBadRequest, fields: errs}
	}
	var tr *transitionDef
	if raw, ok := obj["transition"]; ok && !isNull(raw) {
		t, terr := s.findTransition(draft, raw)
		if terr != nil {
			return nil, terr
		}
		tr = t
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	draft.id = s.nextIssue
	s.nextIssue++
	s.projNext[p.Key]++
	draft.num = s.projNext[p.Key]
	draft.key = p.Key + "-" + strconv.Itoa(draft.num)
	draft.created, draft.updated, draft.statusAt = now, now, now
	for _, kv := range props {
		draft.props[kv.key] = kv.value
	}
	if tr != nil {
		to, _ := p.wf.status(tr.To)
		moveStatus(draft, to, "", now)
	}
	s.issues = append(s.issues, draft)
	s.byID[draft.id] = draft
	s.byKey[strings.ToUpper(draft.key)] = draft
	s.commit(draft, now)
	s.emitIssue("jira:issue_created", "issue_created", actor, draft, nil, nil, now)
	return &createResult{id: strconv.Itoa(draft.id), key: draft.key}, nil
}

func jsonTokenOf(raw json.RawMessage) string {
	var v any
	_ = json.Unmarshal(raw, &v)
	if _, ok := v.(float64); ok {
		return "VALUE_NUMBER_INT"
	}
	return jsonTokenName(v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type propKV struct {
	key   string
	value json.RawMessage
}

// decodeProperties reads the "properties" of a create request: [{"key": ..., "value": ...}].
func decodeProperties(raw json.RawMessage) ([]propKV, *apiError) {
	if isNull(raw) {
		return nil, nil
	}
	var list []struct {
		Key   *string         `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, badRequest("Can not deserialize instance of java.util.ArrayList out of " + jsonTokenOf(raw) + " token")
	}
	var out []propKV
	for _, p := range list {
		if p.Key == nil || *p.Key == "" {
			return nil, badRequest("The property key cannot be empty.")
		}
		if msg := validateProperty(*p.Key, p.Value); msg != "" {
			return nil, badRequest(msg)
		}
		out = append(out, propKV{*p.Key, compactJSON(p.Value)})
	}
	return out, nil
}

func validateProperty(key string, value json.RawMessage) string {
	if utf8.RuneCountInString(key) > maxPropertyKey {
		return fmt.Sprintf("The property key is too long. The maximum length is %d characters.", maxPropertyKey)
	}
	if isNull(value) {
		return "The property value cannot be null."
	}
	if len(value) > maxPropertyValue {
		return fmt.Sprintf("The property value is too long. The maximum length is %d characters.", maxPropertyValue)
	}
	return ""
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return append(json.RawMessage(nil), raw...)
	}
	return json.RawMessage(b.Bytes())
}

// moveStatus sets the status and keeps resolution consistent with its category.
func moveStatus(draft *issue, to statusDef, resolution string, now time.Time) {
	from := draft.status
	draft.status = to
	if from.Category != to.Category {
		draft.statusAt = now
	}
	switch {
	case to.Category == "done" && resolution != "":
		draft.resolution = resolution
		draft.resolvedAt = now
	case to.Category == "done" && draft.resolution == "":
		draft.resolution = "Done"
		draft.resolvedAt = now
	case to.Category != "done":
		draft.resolution = ""
		draft.resolvedAt = time.Time{}
	}
}

// change applies a mutation to a copy of the issue and, if it validates, stores it with a
// changelog entry, comments, an index version and webhook events. The caller holds s.mu.
func (s *Server) change(actor *User, iss *issue, eventType string, mutate func(draft *issue) ([]string, *apiError)) *apiError {
	draft := iss.clone()
	comments, err := mutate(draft)
	if err != nil {
		return err
	}
	items := s.diff(iss, draft)
	if len(items) == 0 && len(comments) == 0 {
		return nil
	}
	now := s.cfg.Now()
	draft.updated = now
	var h *history
	if len(items) > 0 {
		h = &history{id: s.nextHist, author: actor, created: now, items: items}
		s.nextHist++
		draft.histories = append(draft.histories, h)
	}
	var added []*comment
	for _, body := range comments {
		c := &comment{id: s.nextCmt, author: actor, body: body, created: now}
		s.nextCmt++
		draft.comments = append(draft.comments, c)
		added = append(added, c)
	}
	*iss = *draft
	s.commit(iss, now)
	switch {
	case h != nil:
		if eventType == "" {
			eventType = "issue_updated"
			if len(items) == 1 && items[0].Field == "assignee" {
				eventType = "issue_assigned"
			}
		}
		var first *comment
		if len(added) > 0 {
			first = added[0]
		}
		s.emitIssue("jira:issue_updated", eventType, actor, iss, h, first, now)
	case len(added) > 0:
		s.emitIssue("jira:issue_updated", "issue_commented", actor, iss, nil, added[0], now)
	}
	for _, c := range added {
		s.emitComment(actor, iss, c, now)
	}
	return nil
}

// edit applies an edit request ({"fields", "update"}) to the issue.
func (s *Server) edit(actor *User, idOrKey string, obj map[string]json.RawMessage) *apiError {
	var fields, update map[string]json.RawMessage
	if raw, ok := obj["fields"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return badRequest("Can not deserialize instance of java.util.HashMap out of " + jsonTokenOf(raw) + " token")
		}
	}
	if raw, ok := obj["update"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &update); err != nil {
			return badRequest("Can not deserialize instance of java.util.HashMap out of " + jsonTokenOf(raw) + " token")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	iss := s.lookup(idOrKey)
	if iss == nil {
		return errIssueNotFound
	}
	return s.change(actor, iss, "", func(draft *issue) ([]string, *apiError) {
		errs := map[string]string{}
		for _, id := range sortedKeys(fields) {
			switch id {
			case "project", "status", "resolution", "resolutiondate", "created", "updated", "creator", "key", "id":
				errs[id] = cannotSet(id)
				continue
			}
			if msg := s.applyField(draft, id, fields[id], onEdit); msg != "" {
				errs[id] = msg
			}
		}
		var comments []string
		for _, id := range sortedKeys(update) {
			cs, msg := s.applyUpdate(draft, id, update[id], true)
			if msg != "" {
				errs[id] = msg
			}
			comments = append(comments, cs...)
		}
		if len(errs) > 0 {
			return nil, &apiError{status: http.StatusBadRequest, fields: errs}
		}
		return comments, nil
	})
}

// transitionScreen reports whether transition t from the issue's status shows a screen with the
// resolution field: in the service management workflow, transitions into a done status from an
// unresolved one do; Jira Software's simplified workflow has no transition screens.
func transitionScreen(iss *issue, t transitionDef) bool {
	to, _ := iss.project.wf.status(t.To)
	return iss.project.Workflow == ServiceManagementWorkflow && to.Category == "done" && iss.status.Category != "done"
}

// findTransition reads {"id": ...} and finds it among the transitions available to iss.
func (s *Server) findTransition(iss *issue, raw json.RawMessage) (*transitionDef, *apiError) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, badRequest("Missing 'transition' identifier")
	}
	idRaw, ok := obj["id"]
	if !ok || isNull(idRaw) {
		return nil, badRequest("Missing 'transition' identifier")
	}
	var id string
	if str, ok := decodeString(idRaw); ok {
		id = str
	} else {
		var n json.Number
		if err := json.Unmarshal(idRaw, &n); err != nil {
			return nil, badRequest("'transition' identifier must be an integer")
		}
		id = n.String()
	}
	if _, err := strconv.Atoi(id); err != nil {
		return nil, badRequest("'transition' identifier must be an integer")
	}
	for _, t := range iss.project.wf.available(iss.status.Name) {
		if t.ID == id {
			return &t, nil
		}
	}
	return nil, badRequest(fmt.Sprintf("Transition id '%s' is not valid for this issue.", id))
}

// doTransition performs a REST transition request.
func (s *Server) doTransition(actor *User, idOrKey string, obj map[string]json.RawMessage) *apiError {
	var fields, update map[string]json.RawMessage
	if raw, ok := obj["fields"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return badRequest("Can not deserialize instance of java.util.HashMap out of " + jsonTokenOf(raw) + " token")
		}
	}
	if raw, ok := obj["update"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &update); err != nil {
			return badRequest("Can not deserialize instance of java.util.HashMap out of " + jsonTokenOf(raw) + " token")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	iss := s.lookup(idOrKey)
	if iss == nil {
		return errIssueNotFound
	}
	raw, ok := obj["transition"]
	if !ok {
		return badRequest("Missing 'transition' identifier")
	}
	t, terr := s.findTransition(iss, raw)
	if terr != nil {
		return terr
	}
	screen := transitionScreen(iss, *t)
	return s.change(actor, iss, t.Event, func(draft *issue) ([]string, *apiError) {
		errs := map[string]string{}
		resolution := ""
		for _, id := range sortedKeys(fields) {
			if id != "resolution" || !screen {
				errs[id] = cannotSet(id)
				continue
			}
			v, ok := refValue(fields[id], "name")
			if !ok {
				errs[id] = "Could not find valid 'id' or 'name' in resolution object."
				continue
			}
			r, ok := s.cfg.resolution(v)
			if !ok {
				errs[id] = fmt.Sprintf("Resolution '%s' is not valid.", v)
				continue
			}
			resolution = r.Name
		}
		var comments []string
		for _, id := range sortedKeys(update) {
			if id != "comment" {
				errs[id] = cannotSet(id)
				continue
			}
			cs, msg := s.applyUpdate(draft, id, update[id], true)
			if msg != "" {
				errs[id] = msg
			}
			comments = append(comments, cs...)
		}
		if len(errs) > 0 {
			return nil, &apiError{status: http.StatusBadRequest, fields: errs}
		}
		to, _ := draft.project.wf.status(t.To)
		moveStatus(draft, to, resolution, s.cfg.Now())
		return comments, nil
	})
}

// addComment adds a comment; the caller holds s.mu.
func (s *Server) addComment(actor *User, iss *issue, body string) (*comment, *apiError) {
	if strings.TrimSpace(body) == "" {
		return nil, fieldError("comment", "Comment body can not be empty!")
	}
	if utf8.RuneCountInString(body) > maxTextArea {
		return nil, fieldError("comment", tooLong)
	}
	if err := s.change(actor, iss, "", func(*issue) ([]string, *apiError) { return []string{body}, nil }); err != nil {
		return nil, err
	}
	return iss.comments[len(iss.comments)-1], nil
}

// ---- REST handlers ----

func (q *request) createIssue() {
	if !q.checkJSONBody() {
		return
	}
	obj, aerr := decodeObject(q.body, "com.atlassian.jira.rest.v2.issue.IssueUpdateBean", "fields", "update", "properties", "historyMetadata", "transition")
	if aerr != nil {
		q.fail(aerr)
		return
	}
	res, aerr := q.s.create(q.user, obj)
	if aerr != nil {
		q.fail(aerr)
		return
	}
	writeJSON(q.w, http.StatusCreated, map[string]any{"id": res.id, "key": res.key, "self": q.base + "/rest/api/2/issue/" + res.id})
}

func (q *request) getIssue(idOrKey string) {
	sel := parseFieldSel(q.query["fields"], "*all")
	props := parsePropSel(q.query["properties"])
	expand := parseExpand(q.query["expand"])
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	iss := q.s.lookup(idOrKey)
	if iss == nil {
		q.fail(errIssueNotFound)
		return
	}
	writeJSON(q.w, http.StatusOK, q.s.issueJSON(iss, sel, props, expand, q.base))
}

func (q *request) editIssue(idOrKey string) {
	if !q.checkJSONBody() {
		return
	}
	if v := q.query.Get("notifyUsers"); v != "" && v != "true" && v != "false" {
		q.fail(badRequest("The value of 'notifyUsers' must be true or false."))
		return
	}
	obj, aerr := decodeObject(q.body, "com.atlassian.jira.rest.v2.issue.IssueUpdateBean", "fields", "update", "properties", "historyMetadata", "transition")
	if aerr != nil {
		q.fail(aerr)
		return
	}
	if aerr := q.s.edit(q.user, idOrKey, obj); aerr != nil {
		q.fail(aerr)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

func (q *request) addComment(idOrKey string) {
	if !q.checkJSONBody() {
		return
	}
	obj, aerr := decodeObject(q.body, "com.atlassian.jira.rest.v2.issue.CommentJsonBean",
		"id", "self", "author", "body", "renderedBody", "updateAuthor", "created", "updated", "visibility", "jsdPublic", "properties", "name")
	if aerr != nil {
		q.fail(aerr)
		return
	}
	body := ""
	if raw, ok := obj["body"]; ok && !isNull(raw) {
		str, ok := decodeString(raw)
		if !ok {
			q.fail(fieldError("comment", "Operation value must be a string"))
			return
		}
		body = str
	}
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	iss := q.s.lookup(idOrKey)
	if iss == nil {
		q.fail(errIssueNotFound)
		return
	}
	c, aerr := q.s.addComment(q.user, iss, body)
	if aerr != nil {
		q.fail(aerr)
		return
	}
	writeJSON(q.w, http.StatusCreated, q.s.commentJSON(iss, c, q.base))
}

func (q *request) listComments(idOrKey string) {
	startAt, ok1 := intParam(q.query.Get("startAt"), 0)
	maxResults, ok2 := intParam(q.query.Get("maxResults"), 5000)
	if !ok1 || !ok2 {
		q.fail(badRequest("startAt and maxResults must be integers"))
		return
	}
	startAt = max(startAt, 0)
	if maxResults < 0 {
		maxResults = 5000
	}
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	iss := q.s.lookup(idOrKey)
	if iss == nil {
		q.fail(errIssueNotFound)
		return
	}
	cs := slices.Clone(iss.comments)
	if ob := q.query.Get("orderBy"); ob == "-created" {
		slices.Reverse(cs)
	}
	page := []any{}
	for i := startAt; i < len(cs) && len(page) < maxResults; i++ {
		page = append(page, q.s.commentJSON(iss, cs[i], q.base))
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"startAt": startAt, "maxResults": maxResults, "total": len(cs), "comments": page})
}

func (q *request) getComment(idOrKey, id string) {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	iss := q.s.lookup(idOrKey)
	if iss == nil {
		q.fail(errIssueNotFound)
		return
	}
	for _, c := range iss.comments {
		if strconv.Itoa(c.id) == id {
			writeJSON(q.w, http.StatusOK, q.s.commentJSON(iss, c, q.base))
			return
		}
	}
	q.fail(&apiError{status: http.StatusNotFound, messages: []string{fmt.Sprintf("Can not find a comment for the id: %s.", id)}})
}

func intParam(v string, def int) (int, bool) {
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

// transitionsJSON lists the transitions available to iss.
func (s *Server) transitionsJSON(iss *issue, base string, withFields bool) []any {
	out := []any{}
	for _, t := range iss.project.wf.available(iss.status.Name) {
		to, _ := iss.project.wf.status(t.To)
		screen := transitionScreen(iss, t)
		tj := map[string]any{
			"id": t.ID, "name": t.Name, "to": statusJSON(to, base),
			"hasScreen": screen, "isGlobal": len(t.From) == 0, "isInitial": false,
			"isAvailable": true, "isConditional": false, "isLooped": false,
		}
		if withFields {
			fields := map[string]any{}
			if screen {
				allowed := []any{}
				for _, r := range s.cfg.Resolutions {
					allowed = append(allowed, resolutionJSON(r, base))
				}
				fields["resolution"] = map[string]any{
					"required": true, "name": "Resolution", "key": "resolution", "hasDefaultValue": false,
					"operations": []string{"set"}, "allowedValues": allowed,
					"schema": map[string]any{"type": "resolution", "system": "resolution"},
				}
			}
			tj["fields"] = fields
		}
		out = append(out, tj)
	}
	return out
}

func (q *request) getTransitions(idOrKey string) {
	expand := parseExpand(q.query["expand"])
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	iss := q.s.lookup(idOrKey)
	if iss == nil {
		q.fail(errIssueNotFound)
		return
	}
	ts := q.s.transitionsJSON(iss, q.base, expand["transitions.fields"])
	if id := q.query.Get("transitionId"); id != "" {
		ts = slices.DeleteFunc(ts, func(t any) bool { return t.(map[string]any)["id"] != id })
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"expand": "transitions", "transitions": ts})
}

func (q *request) doTransition(idOrKey string) {
	if !q.checkJSONBody() {
		return
	}
	obj, aerr := decodeObject(q.body, "com.atlassian.jira.rest.v2.issue.IssueUpdateBean", "fields", "update", "properties", "historyMetadata", "transition")
	if aerr != nil {
		q.fail(aerr)
		return
	}
	if aerr := q.s.doTransition(q.user, idOrKey, obj); aerr != nil {
		q.fail(aerr)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

func (q *request) assign(idOrKey string) {
	if !q.checkJSONBody() {
		return
	}
	obj, aerr := decodeObject(q.body, "com.atlassian.jira.rest.v2.issue.UserBean")
	if aerr != nil {
		q.fail(aerr)
		return
	}
	raw, _ := json.Marshal(obj)
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	iss := q.s.lookup(idOrKey)
	if iss == nil {
		q.fail(errIssueNotFound)
		return
	}
	u, msg := q.s.resolveUser(raw, iss.project)
	if msg != "" {
		q.fail(fieldError("assignee", msg))
		return
	}
	_ = q.s.change(q.user, iss, "issue_assigned", func(d *issue) ([]string, *apiError) {
		d.assignee = u
		return nil, nil
	})
	q.w.WriteHeader(http.StatusNoContent)
}

// ---- entity properties ----

func (q *request) listProperties(idOrKey string) {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	iss := q.s.lookup(idOrKey)
	if iss == nil {
		q.fail(errIssueNotFound)
		return
	}
	keys := []any{}
	for _, k := range sortedKeys(iss.props) {
		keys = append(keys, map[string]any{"self": q.propertySelf(iss, k), "key": k})
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"keys": keys})
}

func (q *request) propertySelf(iss *issue, key string) string {
	return q.base + "/rest/api/2/issue/" + strconv.Itoa(iss.id) + "/properties/" + key
}

func propertyNotFound(key string) *apiError {
	return &apiError{status: http.StatusNotFound, messages: []string{fmt.Sprintf("The property with key '%s' does not exist.", key)}}
}

func (q *request) getProperty(idOrKey, key string) {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	iss := q.s.lookup(idOrKey)
	if iss == nil {
		q.fail(errIssueNotFound)
		return
	}
	v, ok := iss.props[key]
	if !ok {
		q.fail(propertyNotFound(key))
		return
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"key": key, "value": v})
}

func (q *request) setProperty(idOrKey, key string) {
	if !q.checkJSONBody() {
		return
	}
	if !json.Valid(q.body) {
		q.fail(badRequest("The property value must be a valid JSON value."))
		return
	}
	if msg := validateProperty(key, q.body); msg != "" {
		q.fail(badRequest(msg))
		return
	}
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	iss := q.s.lookup(idOrKey)
	if iss == nil {
		q.fail(errIssueNotFound)
		return
	}
	_, existed := iss.props[key]
	if iss.props == nil {
		iss.props = map[string]json.RawMessage{}
	}
	iss.props[key] = compactJSON(q.body)
	q.s.commit(iss, q.s.cfg.Now())
	if existed {
		q.w.WriteHeader(http.StatusOK)
	} else {
		q.w.WriteHeader(http.StatusCreated)
	}
}

func (q *request) deleteProperty(idOrKey, key string) {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	iss := q.s.lookup(idOrKey)
	if iss == nil {
		q.fail(errIssueNotFound)
		return
	}
	if _, ok := iss.props[key]; !ok {
		q.fail(propertyNotFound(key))
		return
	}
	delete(iss.props, key)
	q.s.commit(iss, q.s.cfg.Now())
	q.w.WriteHeader(http.StatusNoContent)
}
