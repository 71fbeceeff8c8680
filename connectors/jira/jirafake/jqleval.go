package jirafake

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

type fieldKind int

const (
	kUnknown fieldKind = iota
	kProject
	kKey
	kStatus
	kStatusCategory
	kResolution
	kPriority
	kIssueType
	kLabels
	kComponent
	kAssignee
	kReporter
	kCreator
	kSummary
	kDescription
	kComment
	kText
	kCreated
	kUpdated
	kResolved
	kCustom
	kProperty
)

var fieldKinds = map[string]fieldKind{
	"project": kProject, "key": kKey, "issuekey": kKey, "id": kKey, "status": kStatus,
	"statuscategory": kStatusCategory, "resolution": kResolution, "priority": kPriority,
	"issuetype": kIssueType, "type": kIssueType, "labels": kLabels, "component": kComponent,
	"assignee": kAssignee, "reporter": kReporter, "creator": kCreator, "summary": kSummary,
	"description": kDescription, "comment": kComment, "text": kText, "created": kCreated,
	"createddate": kCreated, "updated": kUpdated, "updateddate": kUpdated, "resolved": kResolved,
	"resolutiondate": kResolved,
}

type opSet int

const (
	opsEquality opSet = iota // = != in, not in, is, is not
	opsOrdered               // equality plus > >= < <=
	opsText                  // ~ !~ is, is not
	opsTextOnly              // ~
)

func kindOps(k fieldKind, cf *CustomField) opSet {
	switch k {
	case kSummary, kDescription, kComment:
		return opsText
	case kText:
		return opsTextOnly
	case kCreated, kUpdated, kResolved, kPriority, kProperty:
		return opsOrdered
	case kCustom:
		switch cf.Type {
		case FieldText:
			return opsText
		case FieldNumber:
			return opsOrdered
		}
	}
	return opsEquality
}

func opAllowed(set opSet, op string) bool {
	switch set {
	case opsText:
		return op == "~" || op == "!~" || op == "is" || op == "is not"
	case opsTextOnly:
		return op == "~"
	case opsOrdered:
		return op != "~" && op != "!~"
	default:
		return op == "=" || op == "!=" || op == "in" || op == "not in" || op == "is" || op == "is not"
	}
}

// resolvedClause is a clause checked against the site's configuration.
type resolvedClause struct {
	kind  fieldKind
	cf    *CustomField
	want  []string // canonical values; "" stands for EMPTY
	times []time.Time
	nums  []float64
	texts []string
	// indexed is false for an entity property no app indexes: the clause matches nothing.
	indexed bool
}

// evalCtx is what a query is checked and evaluated with.
type evalCtx struct {
	s    *Server // s.mu held
	now  time.Time
	user *User
}

// resolve checks fields, operators and values of every clause and sort key, collecting Jira's
// messages.
func (q *jqlQuery) resolve(ctx *evalCtx) *jqlError {
	var msgs []string
	var walk func(e jqlExpr)
	walk = func(e jqlExpr) {
		switch x := e.(type) {
		case *andExpr:
			walk(x.l)
			walk(x.r)
		case *orExpr:
			walk(x.l)
			walk(x.r)
		case *notExpr:
			walk(x.e)
		case *jqlClause:
			msgs = append(msgs, ctx.resolveClause(x)...)
		}
	}
	if q.where != nil {
		walk(q.where)
	}
	for i := range q.order {
		k := &q.order[i]
		kind, cf := ctx.fieldKind(k.field, k.cfID)
		switch {
		case kind == kUnknown:
			msgs = append(msgs, fmt.Sprintf("Field '%s' does not exist or you do not have permission to view it.", k.field))
		case kind == kDescription || kind == kComment || kind == kText || kind == kLabels || kind == kProperty || (kind == kCustom && cf.Type == FieldLabels):
			msgs = append(msgs, fmt.Sprintf("Not able to sort using field '%s'.", k.field))
		}
	}
	if len(msgs) > 0 {
		return &jqlError{messages: msgs}
	}
	return nil
}

func (ctx *evalCtx) fieldKind(name, cfID string) (fieldKind, *CustomField) {
	if cfID != "" {
		if f, ok := ctx.s.cfg.custom[cfID]; ok {
			return kCustom, f
		}
		return kUnknown, nil
	}
	if k, ok := fieldKinds[strings.ToLower(name)]; ok {
		return k, nil
	}
	if f := ctx.s.cfg.customByName(name); f != nil {
		return kCustom, f
	}
	return kUnknown, nil
}

var issueKeyRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*-[0-9]+$`)

func (ctx *evalCtx) resolveClause(c *jqlClause) []string {
	cfg := ctx.s.cfg
	r := &resolvedClause{indexed: true}
	c.resolved = r
	if c.isProp {
		r.kind = kProperty
		r.indexed = cfg.propertyIndexed(c.propKey, c.propPath)
	} else {
		r.kind, r.cf = ctx.fieldKind(c.field, c.cfID)
	}
	if r.kind == kUnknown {
		return []string{fmt.Sprintf("Field '%s' does not exist or you do not have permission to view it.", c.field)}
	}
	if !opAllowed(kindOps(r.kind, r.cf), c.op) {
		return []string{fmt.Sprintf("The operator '%s' is not supported by the '%s' field.", strings.ToUpper(c.op), c.field)}
	}
	var msgs []string
	noValue := func(v jqlValue) {
		msgs = append(msgs, fmt.Sprintf("The value '%s' does not exist for the field '%s'.", v.text, c.field))
	}
	for _, v := range c.values {
		if v.empty {
			if c.op == "~" || c.op == "!~" {
				msgs = append(msgs, fmt.Sprintf("The field '%s' does not support searching for EMPTY values.", c.field))
			}
			r.want = append(r.want, "")
			r.times = append(r.times, time.Time{})
			continue
		}
		if v.fn != "" {
			switch {
			case v.fn == "currentuser" && (r.kind == kAssignee || r.kind == kReporter || r.kind == kCreator):
				r.want = append(r.want, ctx.user.AccountID)
			case v.fn == "now" && (r.kind == kCreated || r.kind == kUpdated || r.kind == kResolved):
				r.times = append(r.times, ctx.now)
			case v.fn == "currentuser" || v.fn == "now":
				msgs = append(msgs, fmt.Sprintf("The field '%s' does not support the function '%s'.", c.field, v.text))
			default:
				msgs = append(msgs, fmt.Sprintf("Unable to find JQL function '%s'.", v.text))
			}
			continue
		}
		switch r.kind {
		case kProject:
			p := cfg.projectByKeyOrID(v.text)
			if p == nil {
				for _, q := range cfg.projects {
					if strings.EqualFold(q.Name, v.text) {
						p = q
					}
				}
			}
			if p == nil {
				noValue(v)
				continue
			}
			r.want = append(r.want, p.ID)
		case kKey:
			if n, err := strconv.Atoi(v.text); err == nil {
				r.want = append(r.want, strconv.Itoa(n))
				continue
			}
			if !issueKeyRe.MatchString(v.text) {
				msgs = append(msgs, fmt.Sprintf("The issue key '%s' for field '%s' is invalid.", v.text, c.field))
				continue
			}
			iss := ctx.s.lookup(v.text)
			if iss == nil {
				msgs = append(msgs, fmt.Sprintf("An issue with key '%s' does not exist for field '%s'.", v.text, c.field))
				continue
			}
			r.want = append(r.want, strconv.Itoa(iss.id))
		case kStatus:
			name := ""
			for _, p := range cfg.projects {
				for _, st := range p.wf.statuses {
					if strings.EqualFold(st.Name, v.text) || st.ID == v.text {
						name = strings.ToLower(st.Name)
					}
				}
			}
			if name == "" {
				noValue(v)
				continue
			}
			r.want = append(r.want, name)
		case kStatusCategory:
			key := ""
			for k, sc := range statusCategories {
				if strings.EqualFold(k, v.text) || strings.EqualFold(sc.name, v.text) || strconv.Itoa(sc.id) == v.text {
					key = k
				}
			}
			if key == "" {
				noValue(v)
				continue
			}
			r.want = append(r.want, key)
		case kResolution:
			if strings.EqualFold(v.text, "unresolved") {
				r.want = append(r.want, "")
				continue
			}
			res, ok := cfg.resolution(v.text)
			if !ok {
				noValue(v)
				continue
			}
			r.want = append(r.want, strings.ToLower(res.Name))
		case kPriority:
			p, ok := cfg.priority(v.text)
			if !ok {
				noValue(v)
				continue
			}
			r.want = append(r.want, strings.ToLower(p.Name))
		case kIssueType:
			t, ok := cfg.issueType(v.text)
			if !ok {
				noValue(v)
				continue
			}
			r.want = append(r.want, strings.ToLower(t.Name))
		case kLabels:
			r.want = append(r.want, strings.ToLower(v.text))
		case kComponent:
			found := false
			for _, p := range cfg.projects {
				if containsFold(p.Components, v.text) {
					found = true
				}
			}
			if !found {
				noValue(v)
				continue
			}
			r.want = append(r.want, strings.ToLower(v.text))
		case kAssignee, kReporter, kCreator:
			u := cfg.user(v.text)
			if u == nil {
				noValue(v)
				continue
			}
			r.want = append(r.want, u.AccountID)
		case kSummary, kDescription, kComment, kText:
			r.texts = append(r.texts, v.text)
		case kCreated, kUpdated, kResolved:
			t, ok := parseJQLDate(v.text, ctx.now)
			if !ok {
				msgs = append(msgs, fmt.Sprintf("Date value '%s' for field '%s' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.", v.text, c.field))
				continue
			}
			r.times = append(r.times, t)
		case kProperty:
			r.want = append(r.want, v.text)
			r.texts = append(r.texts, v.text)
		case kCustom:
			switch r.cf.Type {
			case FieldNumber:
				n, err := strconv.ParseFloat(v.text, 64)
				if err != nil {
					msgs = append(msgs, fmt.Sprintf("The value '%s' for field '%s' is invalid. It must be a number.", v.text, c.field))
					continue
				}
				r.nums = append(r.nums, n)
			case FieldSelect:
				if !containsFold(r.cf.Options, v.text) {
					msgs = append(msgs, fmt.Sprintf("The option '%s' for field '%s' does not exist.", v.text, c.field))
					continue
				}
				r.want = append(r.want, strings.ToLower(v.text))
			case FieldLabels:
				r.want = append(r.want, strings.ToLower(v.text))
			default:
				r.texts = append(r.texts, v.text)
			}
		}
	}
	return msgs
}

var relDateRe = regexp.MustCompile(`^([+-]?)((?:\d+[wdhm]\s*)+)$`)
var relPartRe = regexp.MustCompile(`(\d+)([wdhm])`)

// parseJQLDate reads Jira's date formats, absolute in the user's zone (UTC) or relative to now.
func parseJQLDate(s string, now time.Time) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006/01/02 15:04", "2006-01-02 15:04", "2006/01/02", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, true
		}
	}
	m := relDateRe.FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		return time.Time{}, false
	}
	var d time.Duration
	for _, part := range relPartRe.FindAllStringSubmatch(m[2], -1) {
		n, err := strconv.Atoi(part[1])
		if err != nil || n > 1_000_000 {
			return time.Time{}, false
		}
		unit := map[string]time.Duration{"w": 7 * 24 * time.Hour, "d": 24 * time.Hour, "h": time.Hour, "m": time.Minute}[part[2]]
		d += time.Duration(n) * unit
	}
	if m[1] == "-" {
		d = -d
	}
	return now.Add(d), true
}

// ---- evaluation ----

func (ctx *evalCtx) match(e jqlExpr, iss *issue) bool {
	switch x := e.(type) {
	case nil:
		return true
	case *andExpr:
		return ctx.match(x.l, iss) && ctx.match(x.r, iss)
	case *orExpr:
		return ctx.match(x.l, iss) || ctx.match(x.r, iss)
	case *notExpr:
		return !ctx.match(x.e, iss)
	case *jqlClause:
		return ctx.matchClause(x, iss)
	}
	return false
}

// have lists the canonical values of an equality field; empty means EMPTY.
func (ctx *evalCtx) have(r *resolvedClause, iss *issue) []string {
	lower := func(l []string) []string {
		out := make([]string, len(l))
		for i, s := range l {
			out[i] = strings.ToLower(s)
		}
		return out
	}
	user := func(u *User) []string {
		if u == nil {
			return nil
		}
		return []string{u.AccountID}
	}
	switch r.kind {
	case kProject:
		return []string{iss.project.ID}
	case kKey:
		return []string{strconv.Itoa(iss.id)}
	case kStatus:
		return []string{strings.ToLower(iss.status.Name)}
	case kStatusCategory:
		return []string{iss.status.Category}
	case kResolution:
		if iss.resolution == "" {
			return nil
		}
		return []string{strings.ToLower(iss.resolution)}
	case kPriority:
		if iss.priority == "" {
			return nil
		}
		return []string{strings.ToLower(iss.priority)}
	case kIssueType:
		return []string{strings.ToLower(iss.issueType.Name)}
	case kLabels:
		return lower(iss.labels)
	case kComponent:
		return lower(iss.components)
	case kAssignee:
		return user(iss.assignee)
	case kReporter:
		return user(iss.reporter)
	case kCreator:
		return user(iss.creator)
	case kCustom:
		switch v := iss.custom[r.cf.ID].(type) {
		case string:
			return []string{strings.ToLower(v)}
		case []string:
			return lower(v)
		}
	}
	return nil
}

func (ctx *evalCtx) matchClause(c *jqlClause, iss *issue) bool {
	r := c.resolved
	if r == nil || !r.indexed {
		return false
	}
	switch r.kind {
	case kSummary, kDescription, kComment, kText:
		return ctx.matchText(c, r, iss)
	case kCustom:
		switch r.cf.Type {
		case FieldText:
			return ctx.matchText(c, r, iss)
		case FieldNumber:
			v, ok := iss.custom[r.cf.ID].(float64)
			return matchOrdered(c.op, ok, func(i int) int { return cmp.Compare(v, r.nums[i]) }, len(r.nums), r.want)
		}
	case kCreated, kUpdated, kResolved:
		t := iss.created
		if r.kind == kUpdated {
			t = iss.updated
		} else if r.kind == kResolved {
			t = iss.resolvedAt
		}
		return matchOrdered(c.op, !t.IsZero(), func(i int) int { return t.Compare(r.times[i]) }, len(r.times), timesEmpty(r.times))
	case kPriority:
		if c.op == ">" || c.op == ">=" || c.op == "<" || c.op == "<=" {
			rank := ctx.s.cfg.priorityRank(iss.priority)
			return matchOrdered(c.op, iss.priority != "", func(i int) int {
				// a higher priority has a lower rank and compares greater
				return cmp.Compare(ctx.s.cfg.priorityRank(r.want[i]), rank)
			}, len(r.want), nil)
		}
	case kProperty:
		return ctx.matchProperty(c, r, iss)
	}
	return matchEquality(c.op, ctx.have(r, iss), r.want)
}

func timesEmpty(ts []time.Time) []string {
	var out []string
	for _, t := range ts {
		if t.IsZero() {
			out = append(out, "")
		}
	}
	return out
}

// matchEquality applies = != in, not in, is, is not. Like Jira, a negative clause never matches
// an issue where the field is empty ("assignee != bob" leaves out unassigned issues).
func matchEquality(op string, have, want []string) bool {
	wantEmpty := slices.Contains(want, "")
	hit := false
	for _, h := range have {
		if slices.Contains(want, h) {
			hit = true
		}
	}
	switch op {
	case "=", "in", "is":
		return hit || (wantEmpty && len(have) == 0)
	case "!=", "not in", "is not":
		if len(have) == 0 {
			return false
		}
		return !hit
	}
	return false
}

// matchOrdered applies a comparison operator; compare(i) compares the issue's value with the
// clause's i-th value. present is false when the issue's field is empty.
func matchOrdered(op string, present bool, compare func(i int) int, n int, empties []string) bool {
	switch op {
	case "is":
		return !present
	case "is not":
		return present
	}
	if !present {
		return (op == "=" || op == "in") && len(empties) > 0
	}
	if n == 0 {
		return (op == "!=" || op == "not in") && len(empties) > 0
	}
	any := false
	for i := 0; i < n; i++ {
		c := compare(i)
		var ok bool
		switch op {
		case "=", "in":
			ok = c == 0
		case "!=", "not in":
			ok = c != 0
		case ">":
			ok = c > 0
		case ">=":
			ok = c >= 0
		case "<":
			ok = c < 0
		case "<=":
			ok = c <= 0
		}
		if op == "!=" || op == "not in" {
			if !ok {
				return false
			}
			any = true
			continue
		}
		if ok {
			return true
		}
	}
	return any && (op == "!=" || op == "not in")
}

func (ctx *evalCtx) matchText(c *jqlClause, r *resolvedClause, iss *issue) bool {
	var docs []string
	switch r.kind {
	case kSummary:
		docs = []string{iss.summary}
	case kDescription:
		docs = []string{iss.description}
	case kComment:
		for _, cm := range iss.comments {
			docs = append(docs, cm.body)
		}
	case kText:
		docs = []string{iss.summary, iss.description}
		for _, cm := range iss.comments {
			docs = append(docs, cm.body)
		}
		for _, f := range ctx.s.cfg.CustomFields {
			if f.Type == FieldText {
				docs = append(docs, customString(&f, iss.custom[f.ID]))
			}
		}
	case kCustom:
		docs = []string{customString(r.cf, iss.custom[r.cf.ID])}
	}
	present := false
	for _, d := range docs {
		if d != "" {
			present = true
		}
	}
	switch c.op {
	case "is":
		return !present
	case "is not":
		return present
	}
	hit := false
	for _, q := range r.texts {
		for _, d := range docs {
			if textMatch(d, q) {
				hit = true
			}
		}
	}
	if c.op == "!~" {
		return present && !hit
	}
	return hit
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '*'
	})
}

// textMatch is the fake's text search: every term of q must be a word of doc (a trailing "*"
// matches a prefix), case-insensitively; a phrase in double quotes inside q must appear as
// consecutive words.
func textMatch(doc, q string) bool {
	dw := strings.FieldsFunc(strings.ToLower(doc), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	matched := false
	for i, part := range strings.Split(q, "\"") {
		ws := words(part)
		if len(ws) == 0 {
			continue
		}
		matched = true
		if i%2 == 1 { // inside quotes: a phrase
			if !containsPhrase(dw, ws) {
				return false
			}
			continue
		}
		for _, w := range ws {
			if !containsWord(dw, w) {
				return false
			}
		}
	}
	return matched
}

func containsWord(doc []string, w string) bool {
	prefix := strings.HasSuffix(w, "*")
	w = strings.TrimRight(w, "*")
	if w == "" {
		return false
	}
	for _, d := range doc {
		if d == w || (prefix && strings.HasPrefix(d, w)) {
			return true
		}
	}
	return false
}

func containsPhrase(doc, phrase []string) bool {
	for i := 0; i+len(phrase) <= len(doc); i++ {
		ok := true
		for j, w := range phrase {
			if doc[i+j] != strings.TrimRight(w, "*") {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// propertyValues extracts the scalar values at path of a property's JSON value.
func propertyValues(raw json.RawMessage, path string) []any {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil
	}
	if path != "" {
		for _, seg := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[seg]
		}
	}
	var out []any
	var flat func(any)
	flat = func(x any) {
		switch y := x.(type) {
		case []any:
			for _, e := range y {
				flat(e)
			}
		case map[string]any, nil:
		default:
			out = append(out, y)
		}
	}
	flat(v)
	return out
}

func (ctx *evalCtx) matchProperty(c *jqlClause, r *resolvedClause, iss *issue) bool {
	raw, ok := iss.props[c.propKey]
	var vals []any
	if ok {
		vals = propertyValues(raw, c.propPath)
	}
	switch c.op {
	case "is":
		return len(vals) == 0
	case "is not":
		return len(vals) > 0
	}
	if len(vals) == 0 {
		return (c.op == "=" || c.op == "in") && slices.Contains(r.want, "")
	}
	compare := func(v any, w string) (int, bool) {
		switch x := v.(type) {
		case float64:
			n, err := strconv.ParseFloat(w, 64)
			if err != nil {
				return 0, false
			}
			return cmp.Compare(x, n), true
		case bool:
			if strconv.FormatBool(x) == strings.ToLower(w) {
				return 0, true
			}
			return 1, true
		case string:
			return strings.Compare(x, w), true
		}
		return 0, false
	}
	for _, v := range vals {
		for _, w := range r.want {
			if w == "" {
				continue
			}
			c0, ok := compare(v, w)
			if !ok {
				continue
			}
			var hit bool
			switch c.op {
			case "=", "in":
				hit = c0 == 0
			case ">":
				hit = c0 > 0
			case ">=":
				hit = c0 >= 0
			case "<":
				hit = c0 < 0
			case "<=":
				hit = c0 <= 0
			case "!=", "not in":
				hit = c0 == 0
			}
			if hit && (c.op == "!=" || c.op == "not in") {
				return false
			}
			if hit {
				return true
			}
		}
	}
	return c.op == "!=" || c.op == "not in"
}

// ---- ordering ----

func (ctx *evalCtx) sort(q *jqlQuery, list []*issue) {
	cfg := ctx.s.cfg
	cmpKey := func(k sortKey, a, b *issue) int {
		kind, cf := ctx.fieldKind(k.field, k.cfID)
		switch kind {
		case kKey:
			if c := strings.Compare(a.project.Key, b.project.Key); c != 0 {
				return c
			}
			return cmp.Compare(a.num, b.num)
		case kProject:
			return strings.Compare(a.project.Key, b.project.Key)
		case kCreated:
			return a.created.Compare(b.created)
		case kUpdated:
			return a.updated.Compare(b.updated)
		case kResolved:
			return a.resolvedAt.Compare(b.resolvedAt)
		case kPriority:
			// DESC lists the highest priority first.
			return cmp.Compare(cfg.priorityRank(b.priority), cfg.priorityRank(a.priority))
		case kStatus:
			return strings.Compare(a.status.Name, b.status.Name)
		case kStatusCategory:
			return cmp.Compare(statusCategories[a.status.Category].id, statusCategories[b.status.Category].id)
		case kResolution:
			return strings.Compare(a.resolution, b.resolution)
		case kIssueType:
			return strings.Compare(a.issueType.Name, b.issueType.Name)
		case kSummary:
			return strings.Compare(strings.ToLower(a.summary), strings.ToLower(b.summary))
		case kAssignee, kReporter, kCreator:
			name := func(i *issue) string {
				u := i.assignee
				if kind == kReporter {
					u = i.reporter
				} else if kind == kCreator {
					u = i.creator
				}
				if u == nil {
					return ""
				}
				return strings.ToLower(u.DisplayName)
			}
			return strings.Compare(name(a), name(b))
		case kCustom:
			av, bv := a.custom[cf.ID], b.custom[cf.ID]
			if an, ok := av.(float64); ok {
				bn, _ := bv.(float64)
				return cmp.Compare(an, bn)
			}
			return strings.Compare(customString(cf, av), customString(cf, bv))
		}
		return 0
	}
	slices.SortStableFunc(list, func(a, b *issue) int {
		for _, k := range q.order {
			c := cmpKey(k, a, b)
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		// Without an order, and between equal keys, the newest issue comes first.
		return cmp.Compare(b.id, a.id)
	})
}
