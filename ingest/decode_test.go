package ingest_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/ingest"
)

// now is the test clock: after every startsAt of the fixtures, after the
// resolved alerts' endsAt and before the firing Prometheus alert's endsAt.
var now = time.Date(2026, 11, 24, 23, 58, 0, 0, time.UTC)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// amFingerprint is the fingerprint Alertmanager computes for labels.
func amFingerprint(labels map[string]string) string {
	ls := model.LabelSet{}
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

// sameEvents compares events with times compared as instants.
func sameEvents(a, b []triage.Event) bool {
	utc := func(evs []triage.Event) []triage.Event {
		if evs == nil {
			return nil
		}
		out := make([]triage.Event, len(evs))
		for i, ev := range evs {
			ev.StartsAt, ev.EndsAt, ev.Time = ev.StartsAt.UTC(), ev.EndsAt.UTC(), ev.Time.UTC()
			out[i] = ev
		}
		return out
	}
	return reflect.DeepEqual(utc(a), utc(b))
}

type decoder struct {
	name   string
	decode func([]byte) ([]triage.Event, error)
	// valid is a small body the decoder accepts.
	valid string
}

var decoders = []decoder{
	{"DecodeWebhook", ingest.DecodeWebhook, `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"}}]}`},
	{"DecodePostableAlerts", ingest.DecodePostableAlerts, `[{"labels":{"alertname":"A"}}]`},
	{"DecodeEvents", ingest.DecodeEvents, `{"labels":{"alertname":"A"}}`},
}

// errCase is one bad body and what the error must say.
type errCase struct {
	name   string
	body   string
	reason string
	// contains are substrings of the message, e.g. the field it names.
	contains []string
}

func checkDecodeError(t *testing.T, events []triage.Event, err error, tc errCase) {
	t.Helper()
	if err == nil {
		t.Fatalf("decoded %d events, want a %q error", len(events), tc.reason)
	}
	if events != nil {
		t.Errorf("events = %v alongside an error, want nil", events)
	}
	var de *ingest.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %T %q is not a *ingest.DecodeError", err, err)
	}
	if de.Reason != tc.reason {
		t.Errorf("Reason = %q, want %q (message %q)", de.Reason, tc.reason, de.Msg)
	}
	for _, s := range tc.contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message %q does not contain %q", err.Error(), s)
		}
	}
}

// TestDecodeBadBodies covers what every decoder rejects the same way.
func TestDecodeBadBodies(t *testing.T) {
	for _, d := range decoders {
		// Sanity: the valid body decodes, so the cases below fail for
		// the reason they name.
		if _, err := d.decode([]byte(d.valid)); err != nil {
			t.Fatalf("%s(%s): %v", d.name, d.valid, err)
		}
		cases := []errCase{
			{"empty", ``, "empty", []string{"body", "empty"}},
			{"whitespace", " \t\r\n  \n", "empty", []string{"body", "empty"}},
			{"invalid UTF-8 in a string", strings.Replace(d.valid, `"A"`, "\"A\xff\xfe\"", 1), "utf8", []string{"UTF-8"}},
			{"invalid UTF-8 outside strings", d.valid + "\xc3", "utf8", []string{"UTF-8"}},
			{"latin-1 body", "\xe9", "utf8", []string{"UTF-8"}},
			{"malformed", `{"labels": {"alertname": "A",}}`, "syntax", []string{"malformed JSON at byte"}},
			{"not JSON", `alertname=A`, "syntax", []string{"body"}},
			{"single quotes", `{'labels': {}}`, "syntax", []string{"malformed JSON"}},
			{"truncated", d.valid[:len(d.valid)-2], "syntax", []string{"truncated JSON"}},
			{"truncated in a string", d.valid[:len(d.valid)/2], "syntax", []string{"body"}},
			{"trailing value", d.valid + ` {"labels":{}}`, "syntax", []string{"unexpected data after the JSON value at byte " + strconv.Itoa(len(d.valid)+2)}},
			{"two values without space", d.valid + d.valid, "syntax", []string{"unexpected data after the JSON value at byte " + strconv.Itoa(len(d.valid)+1)}},
			{"trailing garbage", d.valid + "\n]", "syntax", []string{"unexpected data"}},
			{"trailing comment", d.valid + " // sent by curl", "syntax", []string{"unexpected data"}},
		}
		for _, tc := range cases {
			t.Run(d.name+"/"+tc.name, func(t *testing.T) {
				events, err := d.decode([]byte(tc.body))
				checkDecodeError(t, events, err, tc)
			})
		}
		t.Run(d.name+"/trailing whitespace is fine", func(t *testing.T) {
			if _, err := d.decode([]byte("\n  " + d.valid + " \r\n\t")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDecodeWebhookFixture(t *testing.T) {
	events, err := ingest.DecodeWebhook(readFixture(t, "alertmanager-webhook.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []triage.Event{
		{
			Source:      ingest.SourceAlertmanager,
			Fingerprint: "dee2a1c3a314faa4",
			Status:      triage.AlertFiring,
			Labels: map[string]string{"alertname": "HighErrorRate", "instance": "orders-1:8080", "job": "orders",
				"service": "orders", "severity": "critical"},
			Annotations: map[string]string{"description": "orders-1 returns 7.2% errors",
				"runbook_url": "https://runbooks.example.com/orders/high-error-rate", "summary": "5xx rate above 5% on orders"},
			StartsAt: mustTime(t, "2026-11-24T23:54:38Z"),
			// endsAt "0001-01-01T00:00:00Z" of a firing alert is dropped.
			GeneratorURL: "http://prometheus.example.com:9090/graph?g0.expr=sum+by+%28service%29+%28rate%28http_requests_total%7Bcode%3D~%225..%22%7D%5B5m%5D%29%29&g0.tab=1",
		},
		{
			Source:      ingest.SourceAlertmanager,
			Fingerprint: "0339c6b2fad40bd1",
			Status:      triage.AlertResolved,
			Labels: map[string]string{"alertname": "HighErrorRate", "instance": "orders-2:8080", "job": "orders",
				"service": "orders", "severity": "critical"},
			Annotations:  map[string]string{"description": "orders-2 returns 6.1% errors", "summary": "5xx rate above 5% on orders"},
			StartsAt:     mustTime(t, "2026-11-24T23:54:38Z"),
			EndsAt:       mustTime(t, "2026-11-25T00:03:38Z"),
			GeneratorURL: "http://prometheus.example.com:9090/graph?g0.expr=x&g0.tab=1",
		},
	}
	if !sameEvents(events, want) {
		t.Fatalf("events:\n got %+v\nwant %+v", events, want)
	}

	// The fixture is a real Alertmanager v0.31.1 notification: its
	// fingerprints are the ones Triage computes from the same labels.
	for i, ev := range events {
		if got := triage.Fingerprint(ev.Labels); got != ev.Fingerprint {
			t.Errorf("alert %d: triage.Fingerprint = %s, Alertmanager sent %s", i, got, ev.Fingerprint)
		}
	}

	// Normalising keeps what Alertmanager said and fills the rest.
	for i := range events {
		ev := events[i]
		if err := ev.Normalize(now); err != nil {
			t.Fatalf("alert %d: Normalize: %v", i, err)
		}
		if ev.Fingerprint != want[i].Fingerprint || ev.Status != want[i].Status {
			t.Errorf("alert %d: after Normalize fingerprint %s status %s, want %s %s",
				i, ev.Fingerprint, ev.Status, want[i].Fingerprint, want[i].Status)
		}
		if ev.Severity != triage.SeverityCritical {
			t.Errorf("alert %d: severity %q, want critical from the severity label", i, ev.Severity)
		}
		if !ev.Time.Equal(now) {
			t.Errorf("alert %d: time %s, want the receive time %s", i, ev.Time, now)
		}
	}
}

func TestDecodeWebhookTruncated(t *testing.T) {
	// Alertmanager with max_alerts: 1 sent one of two alerts and says so.
	events, err := ingest.DecodeWebhook(readFixture(t, "alertmanager-webhook-truncated.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	ev := events[0]
	if ev.Fingerprint != "2f08ef1aec098508" || ev.Labels["instance"] != "db-billing-1:9100" || ev.GeneratorURL != "" {
		t.Errorf("event = %+v", ev)
	}
	if !ev.StartsAt.Equal(mustTime(t, "2026-11-25T00:01:50.123Z")) {
		t.Errorf("startsAt = %s, want the fractional seconds kept", ev.StartsAt)
	}
	if got := triage.Fingerprint(ev.Labels); got != ev.Fingerprint {
		t.Errorf("triage.Fingerprint = %s, Alertmanager sent %s", got, ev.Fingerprint)
	}
}

func TestDecodeWebhook(t *testing.T) {
	cases := []struct {
		name string
		body string
		want []triage.Event
	}{
		{
			name: "no alerts",
			body: `{"version":"4","status":"resolved","alerts":[]}`,
			want: []triage.Event{},
		},
		{
			name: "version may be absent",
			body: `{"alerts":[{"status":"firing","labels":{"a":"b"}}]}`,
			want: []triage.Event{{Source: "alertmanager", Status: "firing", Labels: map[string]string{"a": "b"}}},
		},
		{
			name: "firing drops a real endsAt too",
			body: `{"version":"4","alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"2026-11-24T23:00:00Z","endsAt":"2026-11-25T00:00:00Z"}]}`,
			want: []triage.Event{{Source: "alertmanager", Status: "firing", Labels: map[string]string{"a": "b"},
				StartsAt: time.Date(2026, 11, 24, 23, 0, 0, 0, time.UTC)}},
		},
		{
			name: "resolved keeps endsAt with its zone",
			body: `{"version":"4","alerts":[{"status":"resolved","labels":{"a":"b"},"endsAt":"2026-11-25T01:00:00+01:00"}]}`,
			want: []triage.Event{{Source: "alertmanager", Status: "resolved", Labels: map[string]string{"a": "b"},
				EndsAt: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}},
		},
		{
			name: "unknown fields are accepted, later Alertmanagers may add some",
			body: `{"version":"4","newField":{"x":[1,2]},"alerts":[{"status":"firing","labels":{"a":"b"},"silencedBy":["x"]}]}`,
			want: []triage.Event{{Source: "alertmanager", Status: "firing", Labels: map[string]string{"a": "b"}}},
		},
		{
			name: "null times are zero",
			body: `{"alerts":[{"status":"resolved","labels":{"a":"b"},"startsAt":null,"endsAt":null}]}`,
			want: []triage.Event{{Source: "alertmanager", Status: "resolved", Labels: map[string]string{"a": "b"}}},
		},
		{
			name: "a status that is not firing or resolved is left for Normalize",
			body: `{"alerts":[{"status":"pending","labels":{"a":"b"},"endsAt":"2026-11-25T00:00:00Z"}]}`,
			want: []triage.Event{{Source: "alertmanager", Status: "pending", Labels: map[string]string{"a": "b"}}},
		},
		{
			name: "unicode label values",
			body: `{"alerts":[{"status":"firing","labels":{"alertname":"Überlast","region":"東京"}}]}`,
			want: []triage.Event{{Source: "alertmanager", Status: "firing", Labels: map[string]string{"alertname": "Überlast", "region": "東京"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ingest.DecodeWebhook([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !sameEvents(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeWebhookErrors(t *testing.T) {
	alert := func(fields string) string {
		return `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"}},{"status":"firing",` + fields + `}]}`
	}
	cases := []errCase{
		{"array instead of object", `[{"labels":{"a":"b"}}]`, "type", []string{"body: expected an object, got JSON array"}},
		{"string instead of object", `"alerts"`, "type", []string{"body: expected an object, got JSON string"}},
		{"number instead of object", `4`, "type", []string{"body: expected an object"}},
		{"null", `null`, "invalid", []string{"alerts: missing"}},
		{"missing alerts", `{"version":"4","status":"firing","receiver":"triage"}`, "invalid", []string{"alerts: missing"}},
		{"alerts null", `{"version":"4","alerts":null}`, "invalid", []string{"alerts: missing"}},
		{"version 3", `{"version":"3","alerts":[]}`, "invalid", []string{"version", `"3"`, "want 4"}},
		{"version 5", `{"version":"5","alerts":[]}`, "invalid", []string{"version", `"5"`}},
		{"version as number", `{"version":4,"alerts":[]}`, "type", []string{"version: expected a string, got JSON number 4"}},
		{"alerts as object", `{"version":"4","alerts":{"labels":{}}}`, "type", []string{"alerts: expected an array, got JSON object"}},
		{"alert as string", `{"version":"4","alerts":["HighErrorRate"]}`, "type", []string{"alerts[0]: expected an object, got JSON string"}},
		{"labels as array", alert(`"labels":["alertname","A"]`), "type", []string{"alerts[1].labels: expected an object of strings, got JSON array"}},
		{"label value as number", alert(`"labels":{"alertname":"A","code":500}`), "type", []string{"alerts[1].labels.code: expected a string, got JSON number 500"}},
		{"label value as null object", alert(`"labels":{"alertname":{}}`), "type", []string{"alerts[1].labels.alertname: expected a string, got JSON object"}},
		{"annotation value as bool", alert(`"labels":{"a":"b"},"annotations":{"summary":true}`), "type", []string{"alerts[1].annotations.summary: expected a string, got JSON boolean"}},
		{"status as number", alert(`"labels":{"a":"b"},"status":1`), "type", []string{"alerts[1].status: expected a string"}},
		{"startsAt as number", alert(`"labels":{"a":"b"},"startsAt":1764028800`), "type", []string{"alerts[1].startsAt: expected an RFC 3339 time string, got JSON number 1764028800"}},
		{"startsAt as object", alert(`"labels":{"a":"b"},"startsAt":{"seconds":1}`), "type", []string{"alerts[1].startsAt: expected an RFC 3339 time string, got JSON object"}},
		{"startsAt without zone", alert(`"labels":{"a":"b"},"startsAt":"2026-11-24T23:54:38"`), "type", []string{"alerts[1].startsAt", `"2026-11-24T23:54:38" is not an RFC 3339 time`}},
		{"endsAt in words", alert(`"labels":{"a":"b"},"endsAt":"yesterday"`), "type", []string{"alerts[1].endsAt", `"yesterday"`}},
		{"endsAt month 13", alert(`"labels":{"a":"b"},"endsAt":"2026-13-01T00:00:00Z"`), "type", []string{"alerts[1].endsAt"}},
		{"fingerprint as number", alert(`"labels":{"a":"b"},"fingerprint":123`), "type", []string{"alerts[1].fingerprint: expected a string"}},
		{"truncatedAlerts negative", `{"version":"4","truncatedAlerts":-1,"alerts":[]}`, "type", []string{"truncatedAlerts: expected a non-negative integer, got JSON number -1"}},
		{"truncatedAlerts as string", `{"version":"4","truncatedAlerts":"2","alerts":[]}`, "type", []string{"truncatedAlerts: expected a non-negative integer, got JSON string"}},
		{"groupLabels as array", `{"version":"4","groupLabels":[],"alerts":[]}`, "type", []string{"groupLabels: expected an object of strings"}},
		{"huge key is clipped", alert(`"labels":{"` + strings.Repeat("k", 5000) + `":1}`), "type", []string{"alerts[1].labels.kkkk", "…: expected a string"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events, err := ingest.DecodeWebhook([]byte(tc.body))
			checkDecodeError(t, events, err, tc)
			if len(err.Error()) > 400 {
				t.Errorf("message is %d bytes long, want it short", len(err.Error()))
			}
		})
	}
}

func TestDecodePostableAlertsFixture(t *testing.T) {
	events, err := ingest.DecodePostableAlerts(readFixture(t, "prometheus-alerts.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []triage.Event{
		{
			Source: ingest.SourcePrometheus,
			Labels: map[string]string{"alertname": "HighErrorRate", "instance": "orders-1:8080", "job": "orders",
				"prometheus": "monitoring/k8s", "service": "orders", "severity": "critical"},
			Annotations:  map[string]string{"description": "orders-1 returns 7.2% errors", "summary": "5xx rate above 5% on orders"},
			StartsAt:     mustTime(t, "2026-11-24T23:54:38.123Z"),
			EndsAt:       mustTime(t, "2026-11-25T00:00:38.123Z"),
			GeneratorURL: "http://prometheus.example.com:9090/graph?g0.expr=sum+by+%28service%29+%28rate%28http_requests_total%7Bcode%3D~%225..%22%7D%5B5m%5D%29%29&g0.tab=1",
		},
		{
			Source: ingest.SourcePrometheus,
			Labels: map[string]string{"alertname": "DiskFull", "instance": "db-billing-1:9100", "job": "node",
				"prometheus": "monitoring/k8s", "service": "billing", "severity": "warning"},
			Annotations:  map[string]string{"summary": "Disk almost full on db-billing-1"},
			StartsAt:     mustTime(t, "2026-11-24T23:40:08Z"),
			EndsAt:       mustTime(t, "2026-11-24T23:57:08Z"),
			GeneratorURL: "http://prometheus.example.com:9090/graph?g0.expr=node_filesystem_avail_bytes+%2F+node_filesystem_size_bytes+%3C+0.05&g0.tab=1",
		},
	}
	if !sameEvents(events, want) {
		t.Fatalf("events:\n got %+v\nwant %+v", events, want)
	}

	// As in Alertmanager: an endsAt in the future is an expiry (firing),
	// one in the past means resolved. Fingerprints are Alertmanager's.
	wantStatus := []triage.AlertStatus{triage.AlertFiring, triage.AlertResolved}
	wantSeverity := []string{triage.SeverityCritical, triage.SeverityWarning}
	for i := range events {
		ev := events[i]
		if err := ev.Normalize(now); err != nil {
			t.Fatalf("alert %d: %v", i, err)
		}
		if ev.Status != wantStatus[i] {
			t.Errorf("alert %d: status %s, want %s", i, ev.Status, wantStatus[i])
		}
		if ev.Severity != wantSeverity[i] {
			t.Errorf("alert %d: severity %s, want %s", i, ev.Severity, wantSeverity[i])
		}
		if fp := amFingerprint(ev.Labels); ev.Fingerprint != fp {
			t.Errorf("alert %d: fingerprint %s, want Alertmanager's %s", i, ev.Fingerprint, fp)
		}
		if !ev.EndsAt.Equal(want[i].EndsAt) {
			t.Errorf("alert %d: Normalize changed endsAt to %s", i, ev.EndsAt)
		}
	}
}

func TestDecodePostableAlerts(t *testing.T) {
	cases := []struct {
		name string
		body string
		want []triage.Event
	}{
		{"empty array", `[]`, []triage.Event{}},
		{"leading whitespace", "\n\t [ {\"labels\":{\"a\":\"b\"}} ]", []triage.Event{{Source: "prometheus", Labels: map[string]string{"a": "b"}}}},
		{
			"unknown fields are accepted",
			`[{"labels":{"a":"b"},"status":{"state":"active"},"receivers":["x"]}]`,
			[]triage.Event{{Source: "prometheus", Labels: map[string]string{"a": "b"}}},
		},
		{
			"fingerprint in the body is not taken",
			`[{"labels":{"a":"b"},"fingerprint":"0123456789abcdef"}]`,
			[]triage.Event{{Source: "prometheus", Labels: map[string]string{"a": "b"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ingest.DecodePostableAlerts([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !sameEvents(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodePostableAlertsErrors(t *testing.T) {
	cases := []errCase{
		{"object instead of array", `{"labels":{"a":"b"}}`, "type", []string{"body: want a JSON array of alerts, got an object"}},
		{"webhook payload", `{"version":"4","alerts":[]}`, "type", []string{"want a JSON array"}},
		{"null", `null`, "type", []string{"want a JSON array of alerts, got null"}},
		{"string", `"[]"`, "type", []string{"want a JSON array of alerts, got a string"}},
		{"malformed object", `{"labels":{"a":"b"},}`, "syntax", []string{"malformed JSON at byte 21"}},
		{"alert as number", `[{"labels":{"a":"b"}}, 7]`, "type", []string{"alerts[1]: expected an object, got JSON number 7"}},
		{"labels as array", `[{"labels":["a","b"]}]`, "type", []string{"alerts[0].labels: expected an object of strings, got JSON array"}},
		{"label value as number", `[{"labels":{"alertname":"A","code":503}}]`, "type", []string{"alerts[0].labels.code: expected a string, got JSON number 503"}},
		{"startsAt as number", `[{"labels":{"a":"b"},"startsAt":1764028800}]`, "type", []string{"alerts[0].startsAt: expected an RFC 3339 time string"}},
		{"endsAt bad", `[{"labels":{"a":"b"},"endsAt":"2026-11-24 23:57:08"}]`, "type", []string{"alerts[0].endsAt", `"2026-11-24 23:57:08" is not an RFC 3339 time`}},
		{"generatorURL as object", `[{"labels":{"a":"b"},"generatorURL":{}}]`, "type", []string{"alerts[0].generatorURL: expected a string"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events, err := ingest.DecodePostableAlerts([]byte(tc.body))
			checkDecodeError(t, events, err, tc)
		})
	}
}

func TestDecodeEventsFixtures(t *testing.T) {
	t.Run("array", func(t *testing.T) {
		events, err := ingest.DecodeEvents(readFixture(t, "events.json"))
		if err != nil {
			t.Fatal(err)
		}
		want := []triage.Event{
			{
				Source:      "zabbix",
				Status:      triage.AlertFiring,
				Severity:    "high",
				Labels:      map[string]string{"alertname": "LinkDown", "device": "sw-core-1", "interface": "xe-0/0/1"},
				Annotations: map[string]string{"summary": "Link xe-0/0/1 down on sw-core-1"},
				StartsAt:    mustTime(t, "2026-11-24T23:50:00Z"),
				Time:        mustTime(t, "2026-11-24T23:50:05Z"),
			},
			{
				Source:       ingest.SourceAPI,
				Fingerprint:  "zbx-48213",
				Status:       triage.AlertResolved,
				Labels:       map[string]string{"alertname": "HighLatency", "service": "checkout", "severity": "warning"},
				StartsAt:     mustTime(t, "2026-11-24T23:40:00Z"),
				EndsAt:       mustTime(t, "2026-11-24T23:55:00Z"),
				GeneratorURL: "https://zabbix.example.com/tr_events.php?eventid=48213",
			},
		}
		if !sameEvents(events, want) {
			t.Fatalf("events:\n got %+v\nwant %+v", events, want)
		}
		for i := range events {
			if err := events[i].Normalize(now); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
		}
		// A sender's time is kept; a missing one is the receive time.
		if !events[0].Time.Equal(want[0].Time) || !events[1].Time.Equal(now) {
			t.Errorf("times %s, %s", events[0].Time, events[1].Time)
		}
		if events[0].Severity != triage.SeverityCritical || events[1].Severity != triage.SeverityWarning {
			t.Errorf("severities %q, %q: want high normalised to critical, warning from the label", events[0].Severity, events[1].Severity)
		}
		if events[0].Fingerprint != amFingerprint(want[0].Labels) || events[1].Fingerprint != "zbx-48213" {
			t.Errorf("fingerprints %q, %q: want computed, then the sender's", events[0].Fingerprint, events[1].Fingerprint)
		}
	})
	t.Run("single object", func(t *testing.T) {
		events, err := ingest.DecodeEvents(readFixture(t, "event.json"))
		if err != nil {
			t.Fatal(err)
		}
		want := []triage.Event{{
			Source:      ingest.SourceAPI,
			Labels:      map[string]string{"alertname": "HighErrorRate", "service": "orders"},
			Annotations: map[string]string{"summary": "5xx rate above 5% on orders"},
		}}
		if !sameEvents(events, want) {
			t.Fatalf("events:\n got %+v\nwant %+v", events, want)
		}
		ev := events[0]
		if err := ev.Normalize(now); err != nil {
			t.Fatal(err)
		}
		// The fingerprint Alertmanager computes for the same labels,
		// so that an alert sent both ways is one alert.
		wantFP := model.LabelSet{"alertname": "HighErrorRate", "service": "orders"}.Fingerprint().String()
		if ev.Fingerprint != wantFP {
			t.Errorf("fingerprint %s, want %s", ev.Fingerprint, wantFP)
		}
		if ev.Status != triage.AlertFiring || ev.Severity != "" || !ev.Time.Equal(now) {
			t.Errorf("after Normalize: %+v", ev)
		}
	})
}

func TestDecodeEvents(t *testing.T) {
	cases := []struct {
		name string
		body string
		want []triage.Event
	}{
		{"empty array", `[]`, []triage.Event{}},
		{"object", `{"labels":{"a":"b"}}`, []triage.Event{{Source: "api", Labels: map[string]string{"a": "b"}}}},
		{"array of one", `[{"labels":{"a":"b"}}]`, []triage.Event{{Source: "api", Labels: map[string]string{"a": "b"}}}},
		{"leading whitespace before an object", " \r\n{\"labels\":{\"a\":\"b\"}}", []triage.Event{{Source: "api", Labels: map[string]string{"a": "b"}}}},
		{"source kept", `{"source":"zabbix","labels":{"a":"b"}}`, []triage.Event{{Source: "zabbix", Labels: map[string]string{"a": "b"}}}},
		{
			"every field",
			`{"source":"s","fingerprint":"f","status":"resolved","severity":"info","labels":{"a":"b"},"annotations":{"c":"d"},` +
				`"starts_at":"2026-11-24T23:00:00Z","ends_at":"2026-11-24T23:30:00Z","time":"2026-11-24T23:31:00Z","generator_url":"http://x"}`,
			[]triage.Event{{Source: "s", Fingerprint: "f", Status: "resolved", Severity: "info", Labels: map[string]string{"a": "b"},
				Annotations: map[string]string{"c": "d"}, StartsAt: time.Date(2026, 11, 24, 23, 0, 0, 0, time.UTC),
				EndsAt: time.Date(2026, 11, 24, 23, 30, 0, 0, time.UTC), Time: time.Date(2026, 11, 24, 23, 31, 0, 0, time.UTC),
				GeneratorURL: "http://x"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ingest.DecodeEvents([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !sameEvents(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeEventsErrors(t *testing.T) {
	cases := []errCase{
		{"string", `"HighErrorRate"`, "type", []string{"body: want a JSON object or an array of objects, got a string"}},
		{"number", `42`, "type", []string{"got a number"}},
		{"null", `null`, "type", []string{"got null"}},
		{"boolean", `true`, "type", []string{"got a boolean"}},
		{"bare word", `firing`, "syntax", []string{"malformed JSON at byte 2"}},
		{"unknown field", `{"labels":{"a":"b"},"priority":"P1"}`, "unknown_field", []string{"body: unknown field \"priority\""}},
		{"Alertmanager's camelCase", `{"labels":{"a":"b"},"startsAt":"2026-11-24T23:00:00Z"}`, "unknown_field", []string{`unknown field "startsAt"`}},
		{"unknown field in the second event", `[{"labels":{"a":"b"}},{"labels":{"a":"b"},"extra":1}]`, "unknown_field", []string{`events[1]: unknown field "extra"`}},
		{"event as number", `[{"labels":{"a":"b"}},1]`, "type", []string{"events[1]: expected an object, got JSON number 1"}},
		{"labels as array", `{"labels":["a"]}`, "type", []string{"labels: expected an object of strings, got JSON array"}},
		{"label value as number", `[{"labels":{"alertname":"A","port":8080}}]`, "type", []string{"events[0].labels.port: expected a string, got JSON number 8080"}},
		{"status as number", `{"labels":{"a":"b"},"status":1}`, "type", []string{"status: expected a string"}},
		{"starts_at as number", `{"labels":{"a":"b"},"starts_at":1764028800}`, "type", []string{"starts_at: expected an RFC 3339 time string, got JSON number"}},
		{"time not RFC 3339", `{"labels":{"a":"b"},"time":"Tue, 24 Nov 2026 23:58:00 GMT"}`, "type", []string{"time:", "is not an RFC 3339 time"}},
		{"ends_at bad in array", `[{"labels":{"a":"b"}},{"labels":{"a":"b"},"ends_at":"soon"}]`, "type", []string{`events[1].ends_at: "soon"`}},
		{"annotations as string", `{"labels":{"a":"b"},"annotations":"x"}`, "type", []string{"annotations: expected an object of strings, got JSON string"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events, err := ingest.DecodeEvents([]byte(tc.body))
			checkDecodeError(t, events, err, tc)
		})
	}
}

// TestUnknownFieldsOnlyForGenericEvents: the same extra field is an error in
// the generic format (ours, strict) and accepted in Alertmanager's formats
// (theirs, which grow).
func TestUnknownFieldsOnlyForGenericEvents(t *testing.T) {
	cases := []struct {
		name    string
		decode  func([]byte) ([]triage.Event, error)
		body    string
		wantErr bool
	}{
		{"webhook", ingest.DecodeWebhook, `{"version":"4","alerts":[{"status":"firing","labels":{"a":"b"},"extra":1}],"extra":2}`, false},
		{"postable alerts", ingest.DecodePostableAlerts, `[{"labels":{"a":"b"},"extra":1}]`, false},
		{"events", ingest.DecodeEvents, `[{"labels":{"a":"b"},"extra":1}]`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.decode([]byte(tc.body))
			var de *ingest.DecodeError
			switch {
			case !tc.wantErr && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr && (!errors.As(err, &de) || de.Reason != "unknown_field"):
				t.Fatalf("error = %v, want an unknown_field DecodeError", err)
			}
		})
	}
}

// TestDecodeThenNormalize covers what the HTTP handler rejects after decoding:
// payloads that are well-formed JSON but not valid events.
func TestDecodeThenNormalize(t *testing.T) {
	cases := []struct {
		name    string
		decode  func([]byte) ([]triage.Event, error)
		body    string
		wantErr string // substring of the Normalize error; empty for success
		status  triage.AlertStatus
	}{
		{"webhook alert without labels", ingest.DecodeWebhook, `{"alerts":[{"status":"firing"}]}`, "labels", ""},
		{"webhook pending status", ingest.DecodeWebhook, `{"alerts":[{"status":"pending","labels":{"a":"b"}}]}`, "status", ""},
		{"webhook firing with a past endsAt stays firing", ingest.DecodeWebhook,
			`{"alerts":[{"status":"firing","labels":{"a":"b"},"endsAt":"2026-11-24T00:00:00Z"}]}`, "", triage.AlertFiring},
		{"webhook resolved", ingest.DecodeWebhook,
			`{"alerts":[{"status":"resolved","labels":{"a":"b"},"startsAt":"2026-11-24T23:00:00Z","endsAt":"2026-11-24T23:10:00Z"}]}`, "", triage.AlertResolved},
		{"webhook resolved ending before it started", ingest.DecodeWebhook,
			`{"alerts":[{"status":"resolved","labels":{"a":"b"},"startsAt":"2026-11-24T23:10:00Z","endsAt":"2026-11-24T23:00:00Z"}]}`, "ends_at", ""},
		{"webhook bad label name", ingest.DecodeWebhook, `{"alerts":[{"status":"firing","labels":{"":"b"}}]}`, "label name", ""},
		{"webhook over-long fingerprint", ingest.DecodeWebhook,
			`{"alerts":[{"status":"firing","labels":{"a":"b"},"fingerprint":"` + strings.Repeat("f", 129) + `"}]}`, "fingerprint", ""},
		{"postable null alert", ingest.DecodePostableAlerts, `[null]`, "labels", ""},
		{"postable without endsAt fires", ingest.DecodePostableAlerts, `[{"labels":{"a":"b"}}]`, "", triage.AlertFiring},
		{"postable endsAt now is resolved", ingest.DecodePostableAlerts, `[{"labels":{"a":"b"},"endsAt":"2026-11-24T23:58:00Z"}]`, "", triage.AlertResolved},
		{"event empty labels", ingest.DecodeEvents, `{"labels":{}}`, "labels", ""},
		{"event unknown status", ingest.DecodeEvents, `{"status":"ok","labels":{"a":"b"}}`, "status", ""},
		{"event with an empty label name", ingest.DecodeEvents, `{"labels":{"":"x"}}`, "label name", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events, err := tc.decode([]byte(tc.body))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(events) != 1 {
				t.Fatalf("decoded %d events, want 1", len(events))
			}
			err = events[0].Normalize(now)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Normalize: %v", err)
				}
				if events[0].Status != tc.status {
					t.Errorf("status %s, want %s", events[0].Status, tc.status)
				}
				return
			}
			if !errors.Is(err, triage.ErrInvalidEvent) {
				t.Fatalf("Normalize error = %v, want ErrInvalidEvent", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not name %q", err, tc.wantErr)
			}
		})
	}
}
