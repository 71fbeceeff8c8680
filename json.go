package triage

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The AppendJSON methods encode the records the correlation store writes on
// every step without reflection. Their contract is byte identity: each
// appends exactly what json.Marshal returns for the same value (field order,
// omitempty and omitzero, sorted map keys, null for nil maps, slices and
// pointers, time.Time as its MarshalJSON, strings escaped as encoding/json
// escapes them, HTML characters included), so readers cannot tell which
// encoder wrote a record. The only values json.Marshal rejects are times
// that RFC 3339 cannot represent (a year outside 0-9999, a zone offset of
// 24 hours or more); for those the methods return json.Marshal's own error
// and b with its original length. TestAppendJSONCoversEveryField and
// FuzzAppendJSONMatchesMarshal hold them to json.Marshal: a field added to
// one of these types fails the first until its appender writes it. The
// reference is encoding/json as Go builds it by default: built with
// GOEXPERIMENT=jsonv2, json.Marshal writes invalid UTF-8 as a raw U+FFFD
// instead of \ufffd (the same string once decoded), and those tests fail.

// appendTop encodes one top-level value, null for a nil one, and returns
// json.Marshal's error for what it refuses (see appendResult).
func appendTop[T any](b []byte, v *T, enc func(*T, []byte, *any) []byte) ([]byte, error) {
	if v == nil {
		return append(b, "null"...), nil
	}
	var bad any
	n := len(b)
	b = enc(v, b, &bad)
	return appendResult(b, n, bad)
}

// AppendJSON appends the JSON encoding of inc to b, as json.Marshal does.
func (inc *Incident) AppendJSON(b []byte) ([]byte, error) {
	return appendTop(b, inc, (*Incident).appendJSON)
}

// AppendJSON appends the JSON encoding of a to b, as json.Marshal does.
func (a *Alert) AppendJSON(b []byte) ([]byte, error) {
	return appendTop(b, a, (*Alert).appendJSON)
}

// AppendJSON appends the JSON encoding of e to b, as json.Marshal does.
func (e *TimelineEntry) AppendJSON(b []byte) ([]byte, error) {
	return appendTop(b, e, (*TimelineEntry).appendJSON)
}

// AppendJSON appends the JSON encoding of e to b, as json.Marshal does.
func (e *Explanation) AppendJSON(b []byte) ([]byte, error) {
	return appendTop(b, e, (*Explanation).appendJSON)
}

// appendResult finishes an AppendJSON call: on a time json cannot encode
// (bad: the time.Time or *time.Time field) it cuts b back to n bytes and
// returns the error json.Marshal gives for it.
func appendResult(b []byte, n int, bad any) ([]byte, error) {
	if bad == nil {
		return b, nil
	}
	_, err := json.Marshal(bad)
	return b[:n], err
}

func (inc *Incident) appendJSON(b []byte, bad *any) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, inc.ID, 10)
	b = append(b, `,"key":`...)
	b = appendString(b, inc.Key)
	b = append(b, `,"title":`...)
	b = appendString(b, inc.Title)
	b = append(b, `,"status":`...)
	b = appendString(b, string(inc.Status))
	b = append(b, `,"priority":`...)
	b = appendString(b, inc.Priority)
	if inc.PriorityReason != "" {
		b = append(b, `,"priority_reason":`...)
		b = appendString(b, inc.PriorityReason)
	}
	b = append(b, `,"severity":`...)
	b = appendString(b, inc.Severity)
	b = append(b, `,"ci":`...)
	b = appendString(b, inc.CI)
	b = append(b, `,"service":`...)
	b = appendString(b, inc.Service)
	b = append(b, `,"group_key":`...)
	b = appendString(b, inc.GroupKey)
	b = append(b, `,"labels":`...)
	b = appendStringMap(b, inc.Labels)
	b = append(b, `,"alert_count":`...)
	b = strconv.AppendInt(b, int64(inc.AlertCount), 10)
	b = append(b, `,"firing_count":`...)
	b = strconv.AppendInt(b, int64(inc.FiringCount), 10)
	b = append(b, `,"event_count":`...)
	b = strconv.AppendInt(b, inc.EventCount, 10)
	b = append(b, `,"opened_at":`...)
	b = appendTime(b, &inc.OpenedAt, bad)
	b = append(b, `,"acknowledged_at":`...)
	b = appendTimePtr(b, inc.AcknowledgedAt, bad)
	b = append(b, `,"resolved_at":`...)
	b = appendTimePtr(b, inc.ResolvedAt, bad)
	if inc.AutoResolveAt != nil {
		b = append(b, `,"auto_resolve_at":`...)
		b = appendTimePtr(b, inc.AutoResolveAt, bad)
	}
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, &inc.UpdatedAt, bad)
	b = append(b, `,"reopen_count":`...)
	b = strconv.AppendInt(b, int64(inc.ReopenCount), 10)
	b = append(b, `,"root_cause":`...)
	b = inc.RootCause.appendJSON(b)
	b = append(b, `,"ticket":`...)
	if inc.Ticket == nil {
		b = append(b, "null"...)
	} else {
		b = inc.Ticket.appendJSON(b)
	}
	b = append(b, `,"problem_id":`...)
	if inc.ProblemID == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendUint(b, *inc.ProblemID, 10)
	}
	if inc.AssignmentGroup != "" {
		b = append(b, `,"assignment_group":`...)
		b = appendString(b, inc.AssignmentGroup)
	}
	if inc.Project != "" {
		b = append(b, `,"jira_project":`...)
		b = appendString(b, inc.Project)
	}
	if inc.Held {
		b = append(b, `,"held":true`...)
	}
	if inc.OnHold {
		b = append(b, `,"on_hold":true`...)
	}
	if inc.SLABreaches != 0 {
		b = append(b, `,"sla_breaches":`...)
		b = strconv.AppendInt(b, int64(inc.SLABreaches), 10)
	}
	if inc.Feedback != nil {
		b = append(b, `,"feedback":`...)
		b = inc.Feedback.appendJSON(b, bad)
	}
	if inc.MergedInto != nil {
		b = append(b, `,"merged_into":`...)
		b = strconv.AppendUint(b, *inc.MergedInto, 10)
	}
	if len(inc.Merged) > 0 {
		b = append(b, `,"merged":[`...)
		for i, id := range inc.Merged {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, id, 10)
		}
		b = append(b, ']')
	}
	b = append(b, `,"alerts":`...)
	if inc.Alerts == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range inc.Alerts {
			if i > 0 {
				b = append(b, ',')
			}
			b = inc.Alerts[i].appendJSON(b, bad)
		}
		b = append(b, ']')
	}
	b = append(b, `,"explanation":`...)
	if inc.Explanation == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range inc.Explanation {
			if i > 0 {
				b = append(b, ',')
			}
			b = inc.Explanation[i].appendJSON(b, bad)
		}
		b = append(b, ']')
	}
	b = append(b, `,"timeline":`...)
	if inc.Timeline == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range inc.Timeline {
			if i > 0 {
				b = append(b, ',')
			}
			b = inc.Timeline[i].appendJSON(b, bad)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (a *Alert) appendJSON(b []byte, bad *any) []byte {
	b = append(b, `{"fingerprint":`...)
	b = appendString(b, a.Fingerprint)
	b = append(b, `,"incident_id":`...)
	b = strconv.AppendUint(b, a.IncidentID, 10)
	if a.Source != "" {
		b = append(b, `,"source":`...)
		b = appendString(b, a.Source)
	}
	b = append(b, `,"status":`...)
	b = appendString(b, string(a.Status))
	if a.Severity != "" {
		b = append(b, `,"severity":`...)
		b = appendString(b, a.Severity)
	}
	if a.CI != "" {
		b = append(b, `,"ci":`...)
		b = appendString(b, a.CI)
	}
	b = append(b, `,"labels":`...)
	b = appendStringMap(b, a.Labels)
	if len(a.Annotations) > 0 {
		b = append(b, `,"annotations":`...)
		b = appendStringMap(b, a.Annotations)
	}
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, a.Count, 10)
	b = append(b, `,"starts_at":`...)
	b = appendTime(b, &a.StartsAt, bad)
	if !a.EndsAt.IsZero() {
		b = append(b, `,"ends_at":`...)
		b = appendTime(b, &a.EndsAt, bad)
	}
	b = append(b, `,"first_seen":`...)
	b = appendTime(b, &a.FirstSeen, bad)
	b = append(b, `,"last_seen":`...)
	b = appendTime(b, &a.LastSeen, bad)
	if a.GeneratorURL != "" {
		b = append(b, `,"generator_url":`...)
		b = appendString(b, a.GeneratorURL)
	}
	if a.Expired {
		b = append(b, `,"expired":true`...)
	}
	if a.Flapping {
		b = append(b, `,"flapping":true`...)
	}
	if a.Binding != nil {
		b = append(b, `,"binding":`...)
		b = a.Binding.appendJSON(b)
	}
	if a.Routing != nil {
		b = append(b, `,"routing":`...)
		b = a.Routing.appendJSON(b)
	}
	if a.Maintenance != "" {
		b = append(b, `,"maintenance":`...)
		b = appendString(b, a.Maintenance)
	}
	b = append(b, `,"joined":`...)
	b = a.Joined.appendJSON(b, bad)
	return append(b, '}')
}

func (e *Explanation) appendJSON(b []byte, bad *any) []byte {
	b = append(b, `{"fingerprint":`...)
	b = appendString(b, e.Fingerprint)
	b = append(b, `,"reason":`...)
	b = appendString(b, e.Reason)
	if e.Rule != "" {
		b = append(b, `,"rule":`...)
		b = appendString(b, e.Rule)
	}
	if e.GroupKey != "" {
		b = append(b, `,"group_key":`...)
		b = appendString(b, e.GroupKey)
	}
	if len(e.Path) > 0 {
		b = append(b, `,"path":[`...)
		for i, p := range e.Path {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, p)
		}
		b = append(b, ']')
	}
	b = append(b, `,"at":`...)
	b = appendTime(b, &e.At, bad)
	return append(b, '}')
}

func (e *TimelineEntry) appendJSON(b []byte, bad *any) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"time":`...)
	b = appendTime(b, &e.Time, bad)
	b = append(b, `,"kind":`...)
	b = appendString(b, e.Kind)
	b = append(b, `,"actor":`...)
	b = appendString(b, e.Actor)
	if e.Message != "" {
		b = append(b, `,"message":`...)
		b = appendString(b, e.Message)
	}
	if e.Fingerprint != "" {
		b = append(b, `,"fingerprint":`...)
		b = appendString(b, e.Fingerprint)
	}
	return append(b, '}')
}

func (f *Feedback) appendJSON(b []byte, bad *any) []byte {
	b = append(b, `{"score":`...)
	b = strconv.AppendInt(b, int64(f.Score), 10)
	if f.Comment != "" {
		b = append(b, `,"comment":`...)
		b = appendString(b, f.Comment)
	}
	b = append(b, `,"actor":`...)
	b = appendString(b, f.Actor)
	b = append(b, `,"at":`...)
	b = appendTime(b, &f.At, bad)
	return append(b, '}')
}

func (r *RootCause) appendJSON(b []byte) []byte {
	b = append(b, `{"ci":`...)
	b = appendString(b, r.CI)
	b = append(b, `,"reason":`...)
	b = appendString(b, r.Reason)
	return append(b, '}')
}

func (t *Ticket) appendJSON(b []byte) []byte {
	b = append(b, `{"system":`...)
	b = appendString(b, t.System)
	b = append(b, `,"key":`...)
	b = appendString(b, t.Key)
	b = append(b, `,"url":`...)
	b = appendString(b, t.URL)
	return append(b, '}')
}

func (bd *Binding) appendJSON(b []byte) []byte {
	b = append(b, `{"ci":`...)
	b = appendString(b, bd.CI)
	b = append(b, `,"label":`...)
	b = appendString(b, bd.Label)
	b = append(b, `,"value":`...)
	b = appendString(b, bd.Value)
	b = append(b, `,"via":`...)
	b = appendString(b, bd.Via)
	return append(b, '}')
}

func (r *Routing) appendJSON(b []byte) []byte {
	// Every field is omitempty: each one written starts with a comma, and
	// the first comma becomes the opening brace.
	n := len(b)
	if r.Severity != "" {
		b = append(b, `,"severity":`...)
		b = appendString(b, r.Severity)
	}
	if r.Priority != "" {
		b = append(b, `,"priority":`...)
		b = appendString(b, r.Priority)
	}
	if r.Service != "" {
		b = append(b, `,"service":`...)
		b = appendString(b, r.Service)
	}
	if r.AssignmentGroup != "" {
		b = append(b, `,"assignment_group":`...)
		b = appendString(b, r.AssignmentGroup)
	}
	if r.Project != "" {
		b = append(b, `,"jira_project":`...)
		b = appendString(b, r.Project)
	}
	if len(b) == n {
		return append(b, "{}"...)
	}
	b[n] = '{'
	return append(b, '}')
}

// appendTime appends t as time.Time.MarshalJSON does. A time it cannot
// encode is left in *bad (the first one wins) for the caller to report;
// the bytes appended for it are then meaningless.
func appendTime(b []byte, t *time.Time, bad *any) []byte {
	b = append(b, '"')
	out, err := t.AppendText(b)
	if err != nil { // out is nil
		if *bad == nil {
			*bad = *t
		}
		return b
	}
	return append(out, '"')
}

// appendTimePtr appends a *time.Time field: null, or the time. On a time
// it cannot encode it leaves the pointer in *bad: json.Marshal's error
// names the field's type.
func appendTimePtr(b []byte, t *time.Time, bad *any) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	var tbad any
	b = appendTime(b, t, &tbad)
	if tbad != nil && *bad == nil {
		*bad = t
	}
	return b
}

// appendStringMap appends m as encoding/json does: null for nil, keys in
// byte order.
func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	type kv struct{ k, v string }
	var buf [16]kv // labels rarely exceed it; keeps the sort off the heap
	kvs := buf[:0]
	for k, v := range m {
		kvs = append(kvs, kv{k, v})
	}
	slices.SortFunc(kvs, func(x, y kv) int { return strings.Compare(x.k, y.k) })
	b = append(b, '{')
	for i := range kvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, kvs[i].k)
		b = append(b, ':')
		b = appendString(b, kvs[i].v)
	}
	return append(b, '}')
}

// jsonSafe marks the ASCII bytes encoding/json copies into a string as
// they are: printable ones other than the quote, the backslash and the
// HTML characters <, > and &.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string exactly as encoding/json
// does (see appendString).
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }

// appendString appends s as a JSON string exactly as encoding/json does
// (with its default HTML escaping): control characters as \n, \r, \t, \b,
// \f or \u00XX, <, > and & as \u003c, \u003e and \u0026, U+2028 and U+2029
// as \u2028 and \u2029, and each byte of invalid UTF-8 as \ufffd.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
