package jirafake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	maxSummary  = 255
	maxTextArea = 32767
	maxLabel    = 255
	maxTextCF   = 255
)

func cannotSet(field string) string {
	return fmt.Sprintf("Field '%s' cannot be set. It is not on the appropriate screen, or unknown.", field)
}

const tooLong = "The entered text is too long. It exceeds the allowed limit of 32,767 characters."

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

func decodeString(raw json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// refValue reads the "id" or one of names of a reference object such as {"name": "High"}. Ids
// may be JSON strings or numbers.
func refValue(raw json.RawMessage, names ...string) (string, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return "", false
	}
	for _, k := range append([]string{"id"}, names...) {
		v, ok := obj[k]
		if !ok || isNull(v) {
			continue
		}
		if s, ok := decodeString(v); ok && s != "" {
			return s, true
		}
		var n json.Number
		if err := json.Unmarshal(v, &n); err == nil {
			return n.String(), true
		}
	}
	return "", false
}

func validateSummary(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "You must specify a summary of the issue."
	case strings.ContainsAny(s, "\r\n"):
		return "The summary is invalid because it contains newline characters."
	case utf8.RuneCountInString(s) > maxSummary:
		return "Summary must be less than 255 characters."
	}
	return ""
}

func validateLabel(l string) string {
	switch {
	case l == "":
		return "The label '' is invalid: a label cannot be empty."
	case strings.ContainsAny(l, " \t\r\n"):
		return fmt.Sprintf("The label '%s' contains spaces which is invalid.", l)
	case utf8.RuneCountInString(l) > maxLabel:
		return fmt.Sprintf("The label '%s' exceeds the maximum length for a single label of 255 characters.", l)
	}
	return ""
}

func decodeLabels(raw json.RawMessage) ([]string, string) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || (list == nil && !isNull(raw)) {
		return nil, "data was not an array"
	}
	var out []string
	for _, item := range list {
		l, ok := decodeString(item)
		if !ok {
			return nil, "Operation value must be a string"
		}
		if msg := validateLabel(l); msg != "" {
			return nil, msg
		}
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out, ""
}

// resolveUser reads a user reference: {"accountId"} or {"id"} on Cloud, {"name"} or {"key"} on
// Data Center. "-1" means automatic (the project lead). null unassigns.
func (s *Server) resolveUser(raw json.RawMessage, p *project) (*User, string) {
	if isNull(raw) {
		return nil, ""
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, "expected Object for user"
	}
	keys := []string{"name", "key"}
	if s.cfg.cloud {
		keys = []string{"accountId", "id"}
	}
	var id string
	present := false
	for _, k := range keys {
		if v, ok := obj[k]; ok {
			present = true
			if str, ok := decodeString(v); ok && str != "" {
				id = str
				break
			}
		}
	}
	if id == "" {
		if present {
			return nil, "" // an explicit null id unassigns
		}
		if s.cfg.cloud {
			return nil, "Specify the user by accountId; name and key are not available in GDPR strict mode."
		}
		return nil, "expected 'name' or 'key' for user"
	}
	if id == "-1" {
		if p != nil {
			return s.cfg.user(p.Lead), ""
		}
		return nil, ""
	}
	var u *User
	for i := range s.cfg.Users {
		c := &s.cfg.Users[i]
		if (s.cfg.cloud && c.AccountID == id) || (!s.cfg.cloud && c.Name == id) {
			u = c
		}
	}
	if u == nil {
		return nil, fmt.Sprintf("User '%s' does not exist.", id)
	}
	return u, ""
}

// fieldCtx tells applyField where the value comes from.
type fieldCtx int

const (
	onCreate fieldCtx = iota
	onEdit
)

// applyField validates one value of "fields" and sets it on draft. It returns Jira's error
// message for the field, or "".
func (s *Server) applyField(draft *issue, id string, raw json.RawMessage, ctx fieldCtx) string {
	switch id {
	case "summary":
		str, ok := decodeString(raw)
		if isNull(raw) {
			str, ok = "", true
		}
		if !ok {
			return "Operation value must be a string"
		}
		if msg := validateSummary(str); msg != "" {
			return msg
		}
		draft.summary = str
	case "description":
		if isNull(raw) {
			draft.description = ""
			return ""
		}
		str, ok := decodeString(raw)
		if !ok {
			return "Operation value must be a string"
		}
		if utf8.RuneCountInString(str) > maxTextArea {
			return tooLong
		}
		draft.description = str
	case "priority":
		v, ok := refValue(raw, "name")
		if !ok {
			return "Could not find valid 'id' or 'name' in priority object."
		}
		p, ok := s.cfg.priority(v)
		if !ok {
			return "The priority selected is invalid."
		}
		draft.priority = p.Name
	case "labels":
		l, msg := decodeLabels(raw)
		if msg != "" {
			return msg
		}
		draft.labels = l
	case "components":
		comps, msg := s.decodeComponents(raw, draft.project)
		if msg != "" {
			return msg
		}
		draft.components = comps
	case "assignee", "reporter":
		u, msg := s.resolveUser(raw, draft.project)
		if msg != "" {
			return msg
		}
		if id == "assignee" {
			draft.assignee = u
		} else {
			if u == nil {
				return "Reporter is required."
			}
			draft.reporter = u
		}
	case "issuetype":
		v, ok := refValue(raw, "name")
		if !ok {
			return "Could not find valid 'id' or 'name' in issuetype object."
		}
		t, ok := s.cfg.issueType(v)
		if !ok || !containsFold(draft.project.IssueTypes, t.Name) {
			return "valid issue type is required"
		}
		draft.issueType = t
	default:
		f, ok := s.cfg.custom[id]
		if !ok {
			return cannotSet(id)
		}
		v, msg := decodeCustom(f, raw)
		if msg != "" {
			return msg
		}
		if v == nil {
			delete(draft.custom, id)
		} else {
			if draft.custom == nil {
				draft.custom = map[string]any{}
			}
			draft.custom[id] = v
		}
	}
	return ""
}

func (s *Server) decodeComponents(raw json.RawMessage, p *project) ([]string, string) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || (list == nil && !isNull(raw)) {
		return nil, "data was not an array"
	}
	var out []string
	for _, item := range list {
		name, msg := s.componentRef(item, p)
		if msg != "" {
			return nil, msg
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, ""
}

func (s *Server) componentRef(raw json.RawMessage, p *project) (string, string) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return "", "expected Object"
	}
	if v, ok := obj["name"]; ok {
		name, _ := decodeString(v)
		for _, c := range p.Components {
			if strings.EqualFold(c, name) {
				return c, ""
			}
		}
		return "", fmt.Sprintf("Component name '%s' is not valid", name)
	}
	id, _ := refValue(raw)
	for i, c := range p.Components {
		if componentID(p, i) == id {
			return c, ""
		}
	}
	return "", fmt.Sprintf("Component with id '%s' does not exist.", id)
}

// decodeCustom validates a custom field value; nil means cleared.
func decodeCustom(f *CustomField, raw json.RawMessage) (any, string) {
	if isNull(raw) {
		return nil, ""
	}
	switch f.Type {
	case FieldNumber:
		var n float64
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, "Operation value must be a number"
		}
		return n, ""
	case FieldSelect:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return nil, "Could not find valid 'id' or 'value' in the Parent Option object."
		}
		if v, ok := obj["value"]; ok {
			val, _ := decodeString(v)
			for _, o := range f.Options {
				if o == val {
					return o, ""
				}
			}
			return nil, fmt.Sprintf("Option value '%s' is not valid", val)
		}
		id, _ := refValue(raw)
		for i, o := range f.Options {
			if strconv.Itoa(10000+i) == id {
				return o, ""
			}
		}
		return nil, fmt.Sprintf("Option id '%s' is not valid", id)
	case FieldLabels:
		l, msg := decodeLabels(raw)
		if msg != "" {
			return nil, msg
		}
		if len(l) == 0 {
			return nil, ""
		}
		return l, ""
	default:
		str, ok := decodeString(raw)
		if !ok {
			return nil, "Operation value must be a string"
		}
		if utf8.RuneCountInString(str) > maxTextCF {
			return nil, "The entered text is too long. It exceeds the allowed limit of 255 characters."
		}
		if str == "" {
			return nil, ""
		}
		return str, ""
	}
}

// applyUpdate applies one "update" entry: a list of {"set"|"add"|"remove": value} operations.
// Comments added are returned for the caller to store.
func (s *Server) applyUpdate(draft *issue, id string, raw json.RawMessage, allowComment bool) ([]string, string) {
	var ops []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ops); err != nil {
		return nil, "data was not an array"
	}
	var comments []string
	for _, op := range ops {
		if len(op) != 1 {
			return nil, "Operation must contain exactly one of 'set', 'add', 'remove' or 'edit'"
		}
		for verb, val := range op {
			msg := ""
			switch {
			case id == "comment":
				if !allowComment || verb != "add" {
					return nil, cannotSet(id)
				}
				var c struct {
					Body *string `json:"body"`
				}
				if err := json.Unmarshal(val, &c); err != nil || c.Body == nil || strings.TrimSpace(*c.Body) == "" {
					return nil, "Comment body can not be empty!"
				}
				if utf8.RuneCountInString(*c.Body) > maxTextArea {
					return nil, tooLong
				}
				comments = append(comments, *c.Body)
			case verb == "set":
				msg = s.applyField(draft, id, val, onEdit)
			case id == "labels" && (verb == "add" || verb == "remove"):
				l, ok := decodeString(val)
				if !ok {
					return nil, "Operation value must be a string"
				}
				if verb == "add" {
					if msg = validateLabel(l); msg == "" && !slices.Contains(draft.labels, l) {
						draft.labels = append(draft.labels, l)
						slices.Sort(draft.labels)
					}
				} else {
					draft.labels = slices.DeleteFunc(draft.labels, func(x string) bool { return x == l })
				}
			case id == "components" && (verb == "add" || verb == "remove"):
				var name string
				name, msg = s.componentRef(val, draft.project)
				if msg == "" {
					if verb == "add" && !slices.Contains(draft.components, name) {
						draft.components = append(draft.components, name)
					} else if verb == "remove" {
						draft.components = slices.DeleteFunc(draft.components, func(x string) bool { return x == name })
					}
				}
			default:
				if _, ok := s.cfg.custom[id]; !ok && !slices.Contains([]string{"summary", "description", "priority", "assignee", "reporter", "issuetype"}, id) {
					return nil, cannotSet(id)
				}
				return nil, fmt.Sprintf("Operation '%s' is not supported for field '%s'", verb, id)
			}
			if msg != "" {
				return nil, msg
			}
		}
	}
	return comments, ""
}

// diff lists the changelog items from old to new, in Jira's order.
func (s *Server) diff(old, nw *issue) []changeItem {
	var items []changeItem
	text := func(field string, a, b string) {
		if a == b {
			return
		}
		it := changeItem{Field: field, FieldType: "jira", FieldID: field}
		if a != "" {
			it.FromString = strp(a)
		}
		if b != "" {
			it.ToString = strp(b)
		}
		items = append(items, it)
	}
	text("summary", old.summary, nw.summary)
	text("description", old.description, nw.description)
	if old.issueType.ID != nw.issueType.ID {
		items = append(items, changeItem{Field: "issuetype", FieldType: "jira", FieldID: "issuetype",
			From: strp(old.issueType.ID), FromString: strp(old.issueType.Name), To: strp(nw.issueType.ID), ToString: strp(nw.issueType.Name)})
	}
	if old.priority != nw.priority {
		it := changeItem{Field: "priority", FieldType: "jira", FieldID: "priority"}
		if p, ok := s.cfg.priority(old.priority); ok {
			it.From, it.FromString = strp(p.ID), strp(p.Name)
		}
		if p, ok := s.cfg.priority(nw.priority); ok {
			it.To, it.ToString = strp(p.ID), strp(p.Name)
		}
		items = append(items, it)
	}
	if !slices.Equal(old.labels, nw.labels) {
		items = append(items, changeItem{Field: "labels", FieldType: "jira", FieldID: "labels",
			FromString: strp(strings.Join(old.labels, " ")), ToString: strp(strings.Join(nw.labels, " "))})
	}
	for _, c := range old.components {
		if !slices.Contains(nw.components, c) {
			id := componentID(old.project, slices.Index(old.project.Components, c))
			items = append(items, changeItem{Field: "Component", FieldType: "jira", FieldID: "components", From: strp(id), FromString: strp(c)})
		}
	}
	for _, c := range nw.components {
		if !slices.Contains(old.components, c) {
			id := componentID(nw.project, slices.Index(nw.project.Components, c))
			items = append(items, changeItem{Field: "Component", FieldType: "jira", FieldID: "components", To: strp(id), ToString: strp(c)})
		}
	}
	user := func(field string, a, b *User) {
		if a == b {
			return
		}
		it := changeItem{Field: field, FieldType: "jira", FieldID: field}
		if a != nil {
			it.From, it.FromString = strp(s.cfg.userID(a)), strp(a.DisplayName)
		}
		if b != nil {
			it.To, it.ToString = strp(s.cfg.userID(b)), strp(b.DisplayName)
		}
		items = append(items, it)
	}
	user("assignee", old.assignee, nw.assignee)
	user("reporter", old.reporter, nw.reporter)
	for _, f := range s.cfg.CustomFields {
		a, b := customString(&f, old.custom[f.ID]), customString(&f, nw.custom[f.ID])
		if a == b {
			continue
		}
		it := changeItem{Field: f.Name, FieldType: "custom", FieldID: f.ID}
		if a != "" {
			it.FromString = strp(a)
		}
		if b != "" {
			it.ToString = strp(b)
		}
		if f.Type == FieldSelect {
			if a != "" {
				it.From = strp(strconv.Itoa(10000 + slices.Index(f.Options, a)))
			}
			if b != "" {
				it.To = strp(strconv.Itoa(10000 + slices.Index(f.Options, b)))
			}
		}
		items = append(items, it)
	}
	if old.resolution != nw.resolution {
		it := changeItem{Field: "resolution", FieldType: "jira", FieldID: "resolution"}
		if r, ok := s.cfg.resolution(old.resolution); ok && old.resolution != "" {
			it.From, it.FromString = strp(r.ID), strp(r.Name)
		}
		if r, ok := s.cfg.resolution(nw.resolution); ok && nw.resolution != "" {
			it.To, it.ToString = strp(r.ID), strp(r.Name)
		}
		items = append(items, it)
	}
	if old.status.ID != nw.status.ID {
		items = append(items, changeItem{Field: "status", FieldType: "jira", FieldID: "status",
			From: strp(old.status.ID), FromString: strp(old.status.Name), To: strp(nw.status.ID), ToString: strp(nw.status.Name)})
	}
	return items
}

// customString is a custom field value as text, for changelogs and text search.
func customString(f *CustomField, v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []string:
		return strings.Join(x, " ")
	}
	return fmt.Sprint(v)
}
