// Package ingest turns what senders post into triage Events: the
// Alertmanager webhook, Alertmanager's own alert-posting API (which
// Prometheus speaks) and the generic events format, over HTTP.
//
// Decoders never panic on input and report errors a sender can act on.
package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	amtemplate "github.com/prometheus/alertmanager/template"

	"github.com/triage-dev/triage"
)

// Sources as recorded on events.
const (
	SourceAlertmanager = "alertmanager"
	SourcePrometheus   = "prometheus"
	SourceAPI          = "api"
)

// DecodeError is a payload a sender must fix. Reason is a short stable word
// for metrics: empty, utf8, syntax, type, unknown_field, invalid.
type DecodeError struct {
	Reason string
	Msg    string
}

func (e *DecodeError) Error() string { return e.Msg }

func decodeErr(reason, format string, args ...any) error {
	return &DecodeError{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// Decoder decodes what senders post into events. The payloads senders
// usually send, well-formed and of the expected shape, take a fast path
// that does without reflection and shares the recurring strings of labels
// through an Interner; any other payload goes through encoding/json, which
// decides and names what is wrong. Both give the same events, and errors
// come only from encoding/json's path. A Decoder is safe for concurrent use.
type Decoder struct {
	in *Interner
}

// NewDecoder returns a Decoder that shares label names, short label values
// and other short strings through in; with a nil in, every event has its
// own strings.
func NewDecoder(in *Interner) *Decoder { return &Decoder{in: in} }

func (d *Decoder) scanner(body []byte) scanner { return scanner{b: body, in: d.in} }

// WebhookMessage is the Alertmanager webhook payload, version 4
// (Alertmanager's notify/webhook.Message).
type WebhookMessage struct {
	amtemplate.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// DecodeWebhook decodes an Alertmanager webhook payload, as
// Decoder.Webhook does, without sharing strings.
func DecodeWebhook(body []byte) ([]triage.Event, error) { return (&Decoder{}).Webhook(body) }

// Webhook decodes an Alertmanager webhook payload. Unknown fields are
// accepted: Alertmanager may add some in later versions. The events are not
// yet normalised.
func (d *Decoder) Webhook(body []byte) ([]triage.Event, error) {
	if err := checkBody(body); err != nil {
		return nil, err
	}
	s := d.scanner(body)
	if events, ok := s.webhook(); ok {
		return events, nil
	}
	return strictWebhook(body)
}

// strictWebhook decodes a webhook payload that passed checkBody with
// encoding/json.
func strictWebhook(body []byte) ([]triage.Event, error) {
	var m WebhookMessage
	if err := unmarshal(body, &m, false, ""); err != nil {
		return nil, err
	}
	if m.Version != "" && m.Version != "4" {
		return nil, decodeErr("invalid", "version: webhook payload version %q is not supported (want 4)", m.Version)
	}
	if m.Alerts == nil {
		return nil, decodeErr("invalid", "alerts: missing: not an Alertmanager webhook payload")
	}
	events := make([]triage.Event, len(m.Alerts))
	for i, a := range m.Alerts {
		ev := triage.Event{
			Source:       SourceAlertmanager,
			Fingerprint:  a.Fingerprint,
			Status:       triage.AlertStatus(a.Status),
			Labels:       a.Labels,
			Annotations:  a.Annotations,
			StartsAt:     a.StartsAt,
			GeneratorURL: a.GeneratorURL,
		}
		if ev.Status == triage.AlertResolved {
			ev.EndsAt = a.EndsAt
		}
		events[i] = ev
	}
	return events, nil
}

// PostableAlert is one alert of Alertmanager's POST /api/v2/alerts body, the
// format Prometheus sends.
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

// DecodePostableAlerts decodes a POST /api/v2/alerts body, as
// Decoder.PostableAlerts does, without sharing strings.
func DecodePostableAlerts(body []byte) ([]triage.Event, error) {
	return (&Decoder{}).PostableAlerts(body)
}

// PostableAlerts decodes a POST /api/v2/alerts body: a JSON array of
// alerts. As in Alertmanager, an alert whose endsAt has passed is resolved;
// a firing alert's endsAt is when it expires unless sent again.
func (d *Decoder) PostableAlerts(body []byte) ([]triage.Event, error) {
	if err := checkBody(body); err != nil {
		return nil, err
	}
	s := d.scanner(body)
	if events, ok := s.postableAlerts(); ok {
		return events, nil
	}
	return strictPostableAlerts(body)
}

// strictPostableAlerts decodes a POST /api/v2/alerts body that passed
// checkBody with encoding/json.
func strictPostableAlerts(body []byte) ([]triage.Event, error) {
	if b := bytes.TrimLeft(body, " \t\r\n"); b[0] != '[' && json.Valid(body) {
		return nil, decodeErr("type", "body: want a JSON array of alerts, got %s", jsonKind(b[0]))
	}
	var alerts []PostableAlert
	if err := unmarshal(body, &alerts, false, "alerts"); err != nil {
		return nil, err
	}
	events := make([]triage.Event, len(alerts))
	for i, a := range alerts {
		events[i] = triage.Event{
			Source:       SourcePrometheus,
			Labels:       a.Labels,
			Annotations:  a.Annotations,
			StartsAt:     a.StartsAt,
			EndsAt:       a.EndsAt,
			GeneratorURL: a.GeneratorURL,
		}
	}
	return events, nil
}

// DecodeEvents decodes the generic events format, as Decoder.Events does,
// without sharing strings.
func DecodeEvents(body []byte) ([]triage.Event, error) { return (&Decoder{}).Events(body) }

// Events decodes the generic events format: one event object or an array
// of them. Unknown fields are errors.
func (d *Decoder) Events(body []byte) ([]triage.Event, error) {
	if err := checkBody(body); err != nil {
		return nil, err
	}
	s := d.scanner(body)
	if events, ok := s.events(); ok {
		for i := range events {
			if events[i].Source == "" {
				events[i].Source = SourceAPI
			}
		}
		return events, nil
	}
	return strictEvents(body)
}

// strictEvents decodes a generic events body that passed checkBody with
// encoding/json.
func strictEvents(body []byte) ([]triage.Event, error) {
	b := bytes.TrimLeft(body, " \t\r\n")
	var events []triage.Event
	switch {
	case len(b) > 0 && b[0] == '[':
		if err := unmarshal(body, &events, true, "events"); err != nil {
			return nil, err
		}
	case len(b) > 0 && b[0] == '{':
		var ev triage.Event
		if err := unmarshal(body, &ev, true, ""); err != nil {
			return nil, err
		}
		events = []triage.Event{ev}
	case json.Valid(body):
		return nil, decodeErr("type", "body: want a JSON object or an array of objects, got %s", jsonKind(b[0]))
	default:
		var ev triage.Event
		if err := unmarshal(body, &ev, true, ""); err != nil {
			return nil, err // the syntax error
		}
		return nil, decodeErr("syntax", "body: not JSON")
	}
	for i := range events {
		if events[i].Source == "" {
			events[i].Source = SourceAPI
		}
	}
	return events, nil
}

// jsonKind names the kind of a valid JSON value by its first byte.
func jsonKind(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func checkBody(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return decodeErr("empty", "body: empty")
	}
	if !utf8.Valid(body) {
		return decodeErr("utf8", "body: not valid UTF-8")
	}
	return nil
}

// unmarshal decodes exactly one JSON value and turns encoding/json's errors
// into messages that name the field. root names a top-level array's
// elements in messages, e.g. "alerts" for alerts[3].startsAt.
func unmarshal(body []byte, v any, strict bool, root string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		if !errors.As(err, &syn) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			// The value is well-formed but does not fit v: find where.
			if de := locate(body, reflect.TypeOf(v).Elem(), strict, root); de != nil {
				return de
			}
		}
		return jsonError(err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		for end < int64(len(body)) && strings.IndexByte(" \t\r\n", body[end]) >= 0 {
			end++
		}
		// Bytes count from 1, as in encoding/json's syntax errors.
		return decodeErr("syntax", "body: unexpected data after the JSON value at byte %d", end+1)
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tim *time.ParseError
	switch {
	case errors.As(err, &syn):
		return decodeErr("syntax", "body: malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return decodeErr("type", "%s: expected %s, got JSON %s", field, typeName(typ.Type.String()), typ.Value)
	case errors.As(err, &tim):
		return decodeErr("type", "time %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z", clip(tim.Value))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return decodeErr("syntax", "body: truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return decodeErr("unknown_field", "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	// Anything else is a value that does not fit its field.
	return decodeErr("type", "body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func typeName(t string) string {
	switch {
	case t == "time.Time":
		return "an RFC 3339 time string"
	case strings.HasPrefix(t, "map["), strings.HasSuffix(t, "KV"):
		return "an object of strings"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case t == "string", strings.HasSuffix(t, "Status"):
		return "a string"
	}
	return t
}
