package jirafake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
)

// searchParams are the parameters common to the search endpoints.
type searchParams struct {
	jql        string
	startAt    int
	maxResults int
	hasMax     bool
	fields     []string
	expand     []string
	properties []string
	reconcile  map[int]bool
	token      string
}

func writeJQLError(w http.ResponseWriter, msgs []string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": msgs, "errors": map[string]string{}, "warningMessages": []string{}})
}

// run evaluates the query against the search index; the caller holds s.mu.
func (s *Server) run(user *User, p *searchParams, requireBound bool) ([]*issue, *jqlError) {
	q, err := parseJQL(p.jql)
	if err != nil {
		return nil, err
	}
	if requireBound && q.where == nil {
		return nil, &jqlError{messages: []string{"Unbounded JQL queries are not allowed here. Please add a search restriction to your query."}}
	}
	now := s.cfg.Now()
	ctx := &evalCtx{s: s, now: now, user: user}
	if err := q.resolve(ctx); err != nil {
		return nil, err
	}
	var out []*issue
	for _, iss := range s.issues {
		st := s.indexed(iss, now)
		if p.reconcile[iss.id] {
			st = iss
		}
		if st != nil && ctx.match(q.where, st) {
			out = append(out, st)
		}
	}
	ctx.sort(q, out)
	return out, nil
}

func (q *request) searchGet() {
	p := &searchParams{jql: q.query.Get("jql"), fields: q.query["fields"], expand: q.query["expand"], properties: q.query["properties"]}
	var ok1, ok2 bool
	p.startAt, ok1 = intParam(q.query.Get("startAt"), 0)
	p.maxResults, ok2 = intParam(q.query.Get("maxResults"), 50)
	if !ok1 || !ok2 {
		q.fail(badRequest("The value of 'startAt' and 'maxResults' must be integers."))
		return
	}
	q.search(p)
}

func (q *request) searchPost() {
	if !q.checkJSONBody() {
		return
	}
	obj, aerr := decodeObject(q.body, "com.atlassian.jira.rest.v2.search.SearchRequestBean",
		"jql", "startAt", "maxResults", "fields", "expand", "properties", "fieldsByKeys", "validateQuery")
	if aerr != nil {
		q.fail(aerr)
		return
	}
	var body struct {
		JQL        string   `json:"jql"`
		StartAt    *int     `json:"startAt"`
		MaxResults *int     `json:"maxResults"`
		Fields     []string `json:"fields"`
		Expand     []string `json:"expand"`
		Properties []string `json:"properties"`
	}
	raw, _ := json.Marshal(obj)
	if err := json.Unmarshal(raw, &body); err != nil {
		q.fail(badRequest("Can not deserialize the search request: " + err.Error()))
		return
	}
	p := &searchParams{jql: body.JQL, maxResults: 50, fields: []string{strings.Join(body.Fields, ",")},
		expand: []string{strings.Join(body.Expand, ",")}, properties: []string{strings.Join(body.Properties, ",")}}
	if body.StartAt != nil {
		p.startAt = *body.StartAt
	}
	if body.MaxResults != nil {
		p.maxResults = *body.MaxResults
	}
	q.search(p)
}

// search answers Data Center's /search: startAt, maxResults, total.
func (q *request) search(p *searchParams) {
	if len(parsePropSel(p.properties).keys) > 5 {
		q.fail(badRequest("You can request at most 5 properties."))
		return
	}
	p.startAt = max(p.startAt, 0)
	if p.maxResults < 0 {
		p.maxResults = 50
	}
	p.maxResults = min(p.maxResults, q.s.cfg.SearchMaxResults)
	sel := parseFieldSel(p.fields, "*navigable")
	props := parsePropSel(p.properties)
	expand := parseExpand(p.expand)
	perIssue := map[string]bool{"changelog": expand["changelog"], "transitions": expand["transitions"]}
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	list, jerr := q.s.run(q.user, p, false)
	if jerr != nil {
		writeJQLError(q.w, jerr.messages)
		return
	}
	issues := []any{}
	var lastFields map[string]any
	for i := p.startAt; i < len(list) && len(issues) < p.maxResults; i++ {
		ij := q.s.issueJSON(list[i], sel, props, perIssue, q.base)
		lastFields, _ = ij["fields"].(map[string]any)
		issues = append(issues, ij)
	}
	out := map[string]any{"expand": "schema,names", "startAt": p.startAt, "maxResults": p.maxResults, "total": len(list), "issues": issues}
	if expand["names"] {
		if lastFields == nil {
			lastFields = q.s.renderFields(&issue{project: &project{wf: &softwareWorkflow}}, sel, q.base)
		}
		out["names"] = q.s.fieldNames(lastFields)
	}
	writeJSON(q.w, http.StatusOK, out)
}

func (q *request) searchJQLGet() {
	p := &searchParams{jql: q.query.Get("jql"), token: q.query.Get("nextPageToken"), fields: q.query["fields"],
		expand: q.query["expand"], properties: q.query["properties"]}
	if v := q.query.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			q.fail(badRequest(fmt.Sprintf("The value '%s' of 'maxResults' is not a valid integer.", v)))
			return
		}
		p.maxResults, p.hasMax = n, true
	}
	p.reconcile = map[int]bool{}
	for _, v := range q.query["reconcileIssues"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			n, err := strconv.Atoi(f)
			if err != nil {
				q.fail(badRequest(fmt.Sprintf("The value '%s' of 'reconcileIssues' is not a valid issue id.", f)))
				return
			}
			p.reconcile[n] = true
		}
	}
	q.searchJQL(p)
}

func (q *request) searchJQLPost() {
	if !q.checkJSONBody() {
		return
	}
	obj, aerr := decodeObject(q.body, "com.atlassian.jira.rest.v2.search.SearchAndReconcileRequestBean",
		"jql", "nextPageToken", "maxResults", "fields", "expand", "properties", "fieldsByKeys", "failFast", "reconcileIssues")
	if aerr != nil {
		q.fail(aerr)
		return
	}
	var body struct {
		JQL             string   `json:"jql"`
		NextPageToken   string   `json:"nextPageToken"`
		MaxResults      *int     `json:"maxResults"`
		Fields          []string `json:"fields"`
		Expand          string   `json:"expand"`
		Properties      []string `json:"properties"`
		ReconcileIssues []int    `json:"reconcileIssues"`
	}
	raw, _ := json.Marshal(obj)
	if err := json.Unmarshal(raw, &body); err != nil {
		q.fail(badRequest("Invalid request payload. Refer to the REST API documentation and try again."))
		return
	}
	p := &searchParams{jql: body.JQL, token: body.NextPageToken, fields: []string{strings.Join(body.Fields, ",")},
		expand: []string{body.Expand}, properties: []string{strings.Join(body.Properties, ",")}, reconcile: map[int]bool{}}
	if body.MaxResults != nil {
		p.maxResults, p.hasMax = *body.MaxResults, true
	}
	if len(body.ReconcileIssues) > 50 {
		q.fail(badRequest("You can reconcile at most 50 issues."))
		return
	}
	for _, id := range body.ReconcileIssues {
		p.reconcile[id] = true
	}
	q.searchJQL(p)
}

type pageToken struct {
	Offset int    `json:"o"`
	Query  uint64 `json:"q"`
}

func jqlHash(jql string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(jql))
	return h.Sum64()
}

// searchJQL answers Cloud's /search/jql: nextPageToken and isLast, ids only by default.
func (q *request) searchJQL(p *searchParams) {
	if !p.hasMax {
		p.maxResults = 50
	}
	if p.maxResults < 1 || p.maxResults > 5000 {
		q.fail(badRequest("The maxResults parameter must be between 1 and 5000."))
		return
	}
	if len(parsePropSel(p.properties).keys) > 5 {
		q.fail(badRequest("You can request at most 5 properties."))
		return
	}
	if len(p.reconcile) > 50 {
		q.fail(badRequest("You can reconcile at most 50 issues."))
		return
	}
	offset := 0
	if p.token != "" {
		var t pageToken
		raw, err := base64.RawURLEncoding.DecodeString(p.token)
		if err != nil || json.Unmarshal(raw, &t) != nil || t.Query != jqlHash(p.jql) || t.Offset < 0 {
			q.fail(badRequest("The provided next page token is invalid or expired."))
			return
		}
		offset = t.Offset
	}
	sel := parseFieldSel(p.fields, "id")
	if !sel.onlyIDs() {
		// Atlassian returns fewer issues per page when fields are requested.
		p.maxResults = min(p.maxResults, 100)
	}
	props := parsePropSel(p.properties)
	expand := parseExpand(p.expand)
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	list, jerr := q.s.run(q.user, p, true)
	if jerr != nil {
		writeJQLError(q.w, jerr.messages)
		return
	}
	issues := []any{}
	end := min(offset+p.maxResults, len(list))
	for i := offset; i < end; i++ {
		ij := q.s.issueJSON(list[i], sel, props, expand, q.base)
		if sel.onlyIDs() {
			delete(ij, "fields")
			delete(ij, "expand")
			delete(ij, "self")
			if !sel.inc["key"] {
				delete(ij, "key")
			}
		}
		issues = append(issues, ij)
	}
	out := map[string]any{"issues": issues, "isLast": end >= len(list)}
	if end < len(list) {
		raw, _ := json.Marshal(pageToken{Offset: end, Query: jqlHash(p.jql)})
		out["nextPageToken"] = base64.RawURLEncoding.EncodeToString(raw)
	}
	writeJSON(q.w, http.StatusOK, out)
}
