package jirafake

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// jiraTimeLayout is the timestamp format of Jira's REST API.
const jiraTimeLayout = "2006-01-02T15:04:05.000-0700"

func jiraTime(t time.Time) string { return t.UTC().Format(jiraTimeLayout) }

func nullableTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return jiraTime(t)
}

type sysField struct {
	id, name, schema     string
	navigable, orderable bool
	searchable, sortable bool
	clauses              []string
}

// systemFields are the system fields the fake renders, in /field order.
var systemFields = []sysField{
	{"summary", "Summary", "string", true, true, true, true, []string{"summary"}},
	{"description", "Description", "string", true, true, true, false, []string{"description"}},
	{"issuetype", "Issue Type", "issuetype", true, true, true, true, []string{"issuetype", "type"}},
	{"project", "Project", "project", true, false, true, true, []string{"project"}},
	{"status", "Status", "status", true, false, true, true, []string{"status"}},
	{"statuscategorychangedate", "Status Category Changed", "datetime", true, false, true, true, []string{"statusCategoryChangedDate"}},
	{"priority", "Priority", "priority", true, true, true, true, []string{"priority"}},
	{"resolution", "Resolution", "resolution", true, true, true, true, []string{"resolution"}},
	{"resolutiondate", "Resolved", "datetime", true, false, true, true, []string{"resolutiondate", "resolved"}},
	{"labels", "Labels", "array", true, true, true, true, []string{"labels"}},
	{"components", "Components", "array", true, true, true, true, []string{"component"}},
	{"assignee", "Assignee", "user", true, true, true, true, []string{"assignee"}},
	{"reporter", "Reporter", "user", true, true, true, true, []string{"reporter"}},
	{"creator", "Creator", "user", true, false, true, true, []string{"creator"}},
	{"created", "Created", "datetime", true, false, true, true, []string{"created", "createdDate"}},
	{"updated", "Updated", "datetime", true, false, true, true, []string{"updated", "updatedDate"}},
	{"environment", "Environment", "string", true, true, true, false, []string{"environment"}},
	{"duedate", "Due date", "date", true, true, true, true, []string{"due", "duedate"}},
	{"fixVersions", "Fix versions", "array", true, true, true, true, []string{"fixVersion"}},
	{"issuelinks", "Linked Issues", "array", true, true, false, false, []string{"issueLink"}},
	{"subtasks", "Sub-tasks", "array", true, false, true, false, []string{"subtasks"}},
	{"comment", "Comment", "comments-page", false, true, true, false, []string{"comment"}},
}

func customSchema(f *CustomField) map[string]any {
	num, _ := strconv.Atoi(strings.TrimPrefix(f.ID, "customfield_"))
	s := map[string]any{"customId": num}
	switch f.Type {
	case FieldNumber:
		s["type"], s["custom"] = "number", "com.atlassian.jira.plugin.system.customfieldtypes:float"
	case FieldSelect:
		s["type"], s["custom"] = "option", "com.atlassian.jira.plugin.system.customfieldtypes:select"
	case FieldLabels:
		s["type"], s["items"], s["custom"] = "array", "string", "com.atlassian.jira.plugin.system.customfieldtypes:labels"
	default:
		s["type"], s["custom"] = "string", "com.atlassian.jira.plugin.system.customfieldtypes:textfield"
	}
	return s
}

// fieldSel is a parsed "fields" parameter.
type fieldSel struct {
	all, nav bool
	inc, exc map[string]bool
}

func parseFieldSel(values []string, def string) fieldSel {
	f := fieldSel{inc: map[string]bool{}, exc: map[string]bool{}}
	var tokens []string
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tokens = append(tokens, t)
			}
		}
	}
	if len(tokens) == 0 {
		tokens = []string{def}
	}
	positive := false
	for _, t := range tokens {
		switch {
		case t == "*all":
			f.all, positive = true, true
		case t == "*navigable":
			f.nav, positive = true, true
		case strings.HasPrefix(t, "-"):
			f.exc[t[1:]] = true
		default:
			f.inc[t] = true
			positive = true
		}
	}
	if !positive {
		f.nav = true // "-description" means every navigable field but description
	}
	return f
}

func (f fieldSel) wants(id string, navigable bool) bool {
	if f.exc[id] {
		return false
	}
	if f.inc[id] {
		return true
	}
	if f.all {
		return true
	}
	return f.nav && navigable
}

// onlyIDs reports whether the selection asks for no field beyond the issue id and key.
func (f fieldSel) onlyIDs() bool {
	if f.all || f.nav {
		return false
	}
	for k := range f.inc {
		if k != "id" && k != "key" {
			return false
		}
	}
	return true
}

// propSel is a parsed "properties" parameter.
type propSel struct {
	all  bool
	keys []string
	exc  map[string]bool
}

func parsePropSel(values []string) propSel {
	p := propSel{exc: map[string]bool{}}
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			switch t = strings.TrimSpace(t); {
			case t == "":
			case t == "*all":
				p.all = true
			case strings.HasPrefix(t, "-"):
				p.exc[t[1:]] = true
			default:
				p.keys = append(p.keys, t)
			}
		}
	}
	return p
}

func (p propSel) any() bool { return p.all || len(p.keys) > 0 }

func (p propSel) render(props map[string]json.RawMessage) map[string]any {
	out := map[string]any{}
	for k, v := range props {
		if (p.all || slices.Contains(p.keys, k)) && !p.exc[k] {
			out[k] = v
		}
	}
	return out
}

func avatarURLs(base, id string) map[string]string {
	u := base + "/secure/useravatar?ownerId=" + url.QueryEscape(id)
	return map[string]string{"48x48": u, "24x24": u + "&size=small", "16x16": u + "&size=xsmall", "32x32": u + "&size=medium"}
}

// userJSON renders a user as the deployment does: accountId on Cloud, name and key on Data Center.
func (s *Server) userJSON(u *User, base string, self bool) map[string]any {
	if u == nil {
		return nil
	}
	out := map[string]any{
		"displayName": u.DisplayName,
		"active":      true,
		"timeZone":    "UTC",
	}
	if u.Email != "" {
		out["emailAddress"] = u.Email
	}
	if s.cfg.cloud {
		out["self"] = base + "/rest/api/2/user?accountId=" + url.QueryEscape(u.AccountID)
		out["accountId"] = u.AccountID
		out["accountType"] = "atlassian"
		out["avatarUrls"] = avatarURLs(base, u.AccountID)
	} else {
		out["self"] = base + "/rest/api/2/user?username=" + url.QueryEscape(u.Name)
		out["name"] = u.Name
		out["key"] = u.Name
		out["avatarUrls"] = avatarURLs(base, u.Name)
	}
	if self {
		out["locale"] = "en_US"
		out["groups"] = map[string]any{"size": 1, "items": []any{}}
		out["applicationRoles"] = map[string]any{"size": 1, "items": []any{}}
		out["expand"] = "groups,applicationRoles"
	}
	return out
}

func statusJSON(st statusDef, base string) map[string]any {
	cat := statusCategories[st.Category]
	return map[string]any{
		"self":        base + "/rest/api/2/status/" + st.ID,
		"description": "",
		"iconUrl":     base + "/images/icons/statuses/generic.png",
		"name":        st.Name,
		"id":          st.ID,
		"statusCategory": map[string]any{
			"self":      base + "/rest/api/2/statuscategory/" + strconv.Itoa(cat.id),
			"id":        cat.id,
			"key":       st.Category,
			"colorName": cat.colorName,
			"name":      cat.name,
		},
	}
}

func priorityJSON(p Priority, base string) map[string]any {
	return map[string]any{
		"self":    base + "/rest/api/2/priority/" + p.ID,
		"iconUrl": base + "/images/icons/priorities/" + strings.ToLower(p.Name) + ".svg",
		"name":    p.Name,
		"id":      p.ID,
	}
}

func resolutionJSON(r Resolution, base string) map[string]any {
	return map[string]any{
		"self":        base + "/rest/api/2/resolution/" + r.ID,
		"id":          r.ID,
		"description": "",
		"name":        r.Name,
	}
}

func issueTypeJSON(t issueTypeDef, base string) map[string]any {
	return map[string]any{
		"self":        base + "/rest/api/2/issuetype/" + t.ID,
		"id":          t.ID,
		"description": "",
		"iconUrl":     base + "/images/icons/issuetypes/task.svg",
		"name":        t.Name,
		"subtask":     false,
	}
}

func (s *Server) projectJSON(p *project, base string) map[string]any {
	typ := "software"
	if p.Workflow == ServiceManagementWorkflow {
		typ = "service_desk"
	}
	return map[string]any{
		"self":           base + "/rest/api/2/project/" + p.ID,
		"id":             p.ID,
		"key":            p.Key,
		"name":           p.Name,
		"projectTypeKey": typ,
		"simplified":     false,
		"avatarUrls":     avatarURLs(base, p.Key),
	}
}

func componentID(p *project, i int) string {
	pid, _ := strconv.Atoi(p.ID)
	return strconv.Itoa(pid*10 + 100000 + i)
}

func componentJSON(p *project, i int, name, base string) map[string]any {
	id := componentID(p, i)
	return map[string]any{"self": base + "/rest/api/2/component/" + id, "id": id, "name": name}
}

func (s *Server) commentJSON(iss *issue, c *comment, base string) map[string]any {
	out := map[string]any{
		"self":         base + "/rest/api/2/issue/" + strconv.Itoa(iss.id) + "/comment/" + strconv.Itoa(c.id),
		"id":           strconv.Itoa(c.id),
		"author":       s.userJSON(c.author, base, false),
		"body":         c.body,
		"updateAuthor": s.userJSON(c.author, base, false),
		"created":      jiraTime(c.created),
		"updated":      jiraTime(c.created),
	}
	if s.cfg.cloud {
		out["jsdPublic"] = true
	}
	return out
}

func (s *Server) itemJSON(it changeItem) map[string]any {
	out := map[string]any{
		"field":      it.Field,
		"fieldtype":  it.FieldType,
		"from":       it.From,
		"fromString": it.FromString,
		"to":         it.To,
		"toString":   it.ToString,
	}
	if s.cfg.cloud && it.FieldID != "" {
		out["fieldId"] = it.FieldID
	}
	return out
}

func (s *Server) historyJSON(h *history, base string) map[string]any {
	items := []any{}
	for _, it := range h.items {
		items = append(items, s.itemJSON(it))
	}
	return map[string]any{
		"id":      strconv.Itoa(h.id),
		"author":  s.userJSON(h.author, base, false),
		"created": jiraTime(h.created),
		"items":   items,
	}
}

func (s *Server) changelogJSON(iss *issue, base string) map[string]any {
	hs := []any{}
	for _, h := range iss.histories {
		hs = append(hs, s.historyJSON(h, base))
	}
	return map[string]any{"startAt": 0, "maxResults": len(hs), "total": len(hs), "histories": hs}
}

// fieldValue renders one field of iss; ok is false for an unknown field id.
func (s *Server) fieldValue(iss *issue, id, base string) (any, bool) {
	switch id {
	case "summary":
		return iss.summary, true
	case "description", "environment":
		if id == "environment" || iss.description == "" {
			return nil, true
		}
		return iss.description, true
	case "issuetype":
		return issueTypeJSON(iss.issueType, base), true
	case "project":
		return s.projectJSON(iss.project, base), true
	case "status":
		return statusJSON(iss.status, base), true
	case "statuscategorychangedate":
		return jiraTime(iss.statusAt), true
	case "priority":
		p, ok := s.cfg.priority(iss.priority)
		if !ok {
			return nil, true
		}
		return priorityJSON(p, base), true
	case "resolution":
		r, ok := s.cfg.resolution(iss.resolution)
		if iss.resolution == "" || !ok {
			return nil, true
		}
		return resolutionJSON(r, base), true
	case "resolutiondate":
		return nullableTime(iss.resolvedAt), true
	case "labels":
		return append([]string{}, iss.labels...), true
	case "components":
		out := []any{}
		for _, c := range iss.components {
			i := slices.Index(iss.project.Components, c)
			out = append(out, componentJSON(iss.project, i, c, base))
		}
		return out, true
	case "assignee":
		return s.userJSON(iss.assignee, base, false), true
	case "reporter":
		return s.userJSON(iss.reporter, base, false), true
	case "creator":
		return s.userJSON(iss.creator, base, false), true
	case "created":
		return jiraTime(iss.created), true
	case "updated":
		return jiraTime(iss.updated), true
	case "duedate":
		return nil, true
	case "fixVersions", "issuelinks", "subtasks":
		return []any{}, true
	case "comment":
		cs := []any{}
		for _, c := range iss.comments {
			cs = append(cs, s.commentJSON(iss, c, base))
		}
		return map[string]any{"comments": cs, "maxResults": len(cs), "total": len(cs), "startAt": 0}, true
	}
	if f, ok := s.cfg.custom[id]; ok {
		return customValueJSON(f, iss.custom[id], base), true
	}
	return nil, false
}

func customValueJSON(f *CustomField, v any, base string) any {
	if v == nil {
		return nil
	}
	switch f.Type {
	case FieldSelect:
		name, _ := v.(string)
		i := slices.Index(f.Options, name)
		id := strconv.Itoa(10000 + i)
		return map[string]any{"self": base + "/rest/api/2/customFieldOption/" + id, "value": name, "id": id}
	case FieldLabels:
		l, _ := v.([]string)
		return append([]string{}, l...)
	}
	return v
}

// renderFields renders the fields of iss that sel asks for.
func (s *Server) renderFields(iss *issue, sel fieldSel, base string) map[string]any {
	out := map[string]any{}
	for _, f := range systemFields {
		if f.id == "statuscategorychangedate" && !s.cfg.cloud {
			continue
		}
		if sel.wants(f.id, f.navigable) {
			v, _ := s.fieldValue(iss, f.id, base)
			out[f.id] = v
		}
	}
	for _, f := range s.cfg.CustomFields {
		if sel.wants(f.ID, true) {
			v, _ := s.fieldValue(iss, f.ID, base)
			out[f.ID] = v
		}
	}
	return out
}

func (s *Server) fieldNames(fields map[string]any) map[string]string {
	names := map[string]string{}
	for id := range fields {
		for _, f := range systemFields {
			if f.id == id {
				names[id] = f.name
			}
		}
		if f, ok := s.cfg.custom[id]; ok {
			names[id] = f.Name
		}
	}
	return names
}

const issueExpand = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"

// issueJSON renders an issue as GET /issue and search results do.
func (s *Server) issueJSON(iss *issue, sel fieldSel, props propSel, expand map[string]bool, base string) map[string]any {
	fields := s.renderFields(iss, sel, base)
	out := map[string]any{
		"expand": issueExpand,
		"id":     strconv.Itoa(iss.id),
		"self":   base + "/rest/api/2/issue/" + strconv.Itoa(iss.id),
		"key":    iss.key,
		"fields": fields,
	}
	if props.any() {
		out["properties"] = props.render(iss.props)
	}
	if expand["changelog"] {
		out["changelog"] = s.changelogJSON(iss, base)
	}
	if expand["names"] {
		out["names"] = s.fieldNames(fields)
	}
	if expand["transitions"] {
		out["transitions"] = s.transitionsJSON(iss, base, false)
	}
	return out
}

func parseExpand(values []string) map[string]bool {
	out := map[string]bool{}
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out[t] = true
			}
		}
	}
	return out
}
