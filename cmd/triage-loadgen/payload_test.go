package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/ingest"
)

var testBase = time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

// The webhook payload, field for field as Alertmanager's notify/webhook
// sends it; decoding disallows unknown fields so that a typo shows.
type amWebhook struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []amAlert         `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
}

type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// postable is the daemon's own shape of Alertmanager's posted alert.
type postable = ingest.PostableAlert

func strictDecode(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %.300s: %v", body, err)
	}
	if dec.More() {
		t.Fatalf("trailing data after the payload")
	}
}

func fingerprint(labels map[string]string) string {
	ls := model.LabelSet{}
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

// common returns the entries every map shares, as Alertmanager computes
// commonLabels and commonAnnotations.
func common(ms []map[string]string) map[string]string {
	c := maps.Clone(ms[0])
	for _, m := range ms[1:] {
		for k, v := range c {
			if m[k] != v {
				delete(c, k)
			}
		}
	}
	return c
}

var hex16 = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestWebhookPayload(t *testing.T) {
	for _, tc := range []struct {
		name     string
		perGroup int
	}{{"one alert", 1}, {"seven alerts", 7}, {"fifty alerts", 50}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPopulation(formatWebhook, tc.perGroup, 500, 42, testBase)
			for k := int64(0); k < 5; k++ {
				body, n := p.appendBody(nil, k)
				if n != tc.perGroup {
					t.Fatalf("request %d: %d alerts, want %d", k, n, tc.perGroup)
				}
				var m amWebhook
				strictDecode(t, body, &m)
				if m.Version != "4" || m.Status != "firing" || m.Receiver == "" || m.ExternalURL == "" {
					t.Errorf("envelope: version %q status %q receiver %q externalURL %q", m.Version, m.Status, m.Receiver, m.ExternalURL)
				}
				if len(m.Alerts) != tc.perGroup {
					t.Fatalf("%d alerts in the payload, want %d", len(m.Alerts), tc.perGroup)
				}
				name := m.Alerts[0].Labels["alertname"]
				if !maps.Equal(m.GroupLabels, map[string]string{"alertname": name}) {
					t.Errorf("groupLabels %v, want alertname=%s", m.GroupLabels, name)
				}
				if want := `{}:{alertname="` + name + `"}`; m.GroupKey != want {
					t.Errorf("groupKey %q, want %q", m.GroupKey, want)
				}
				var labels, anns []map[string]string
				for i, a := range m.Alerts {
					if a.Labels["alertname"] != name {
						t.Errorf("alert %d: alertname %q in a group of %q", i, a.Labels["alertname"], name)
					}
					if a.Status != "firing" || !a.EndsAt.IsZero() || a.StartsAt.IsZero() || a.StartsAt.After(testBase) {
						t.Errorf("alert %d: status %q startsAt %v endsAt %v", i, a.Status, a.StartsAt, a.EndsAt)
					}
					if !hex16.MatchString(a.Fingerprint) {
						t.Errorf("alert %d: fingerprint %q is not 16 hex digits", i, a.Fingerprint)
					}
					if want := fingerprint(a.Labels); a.Fingerprint != want {
						t.Errorf("alert %d: fingerprint %s, model.LabelSet gives %s", i, a.Fingerprint, want)
					}
					if want := triage.Fingerprint(a.Labels); a.Fingerprint != want {
						t.Errorf("alert %d: fingerprint %s, triage.Fingerprint gives %s", i, a.Fingerprint, want)
					}
					if !strings.HasPrefix(a.GeneratorURL, "http://") || !strings.Contains(a.GeneratorURL, "g0.expr=") {
						t.Errorf("alert %d: generatorURL %q", i, a.GeneratorURL)
					}
					labels = append(labels, a.Labels)
					anns = append(anns, a.Annotations)
				}
				if want := common(labels); !maps.Equal(m.CommonLabels, want) {
					t.Errorf("commonLabels %v, want %v", m.CommonLabels, want)
				}
				if want := common(anns); !maps.Equal(m.CommonAnnotations, want) {
					t.Errorf("commonAnnotations %v, want %v", m.CommonAnnotations, want)
				}

				// The daemon's own decoder takes it, and every event is valid.
				events, err := ingest.DecodeWebhook(body)
				if err != nil {
					t.Fatalf("ingest.DecodeWebhook: %v", err)
				}
				for i := range events {
					if err := events[i].Normalize(testBase); err != nil {
						t.Errorf("event %d: %v", i, err)
					}
				}
			}
		})
	}
}

func TestPostableAlertsPayload(t *testing.T) {
	p := newPopulation(formatV2, 10, 100, 7, testBase)
	body, n := p.appendBody(nil, 3)
	var alerts []postable
	strictDecode(t, body, &alerts)
	if len(alerts) != 10 || n != 10 {
		t.Fatalf("%d alerts in the body, %d reported, want 10", len(alerts), n)
	}
	for i, a := range alerts {
		if len(a.Labels) != numLabels || a.Annotations["summary"] == "" || a.GeneratorURL == "" {
			t.Errorf("alert %d: incomplete: %+v", i, a)
		}
		if !a.EndsAt.After(testBase.Add(time.Hour)) || !a.StartsAt.Before(a.EndsAt) {
			t.Errorf("alert %d: startsAt %v endsAt %v: want firing with an expiry in the future", i, a.StartsAt, a.EndsAt)
		}
	}
	events, err := ingest.DecodePostableAlerts(body)
	if err != nil {
		t.Fatalf("ingest.DecodePostableAlerts: %v", err)
	}
	for i := range events {
		if err := events[i].Normalize(testBase); err != nil {
			t.Errorf("event %d: %v", i, err)
		}
		if events[i].Status != triage.AlertFiring {
			t.Errorf("event %d: status %q, want firing", i, events[i].Status)
		}
	}
}

func TestEventsPayload(t *testing.T) {
	for _, tc := range []struct {
		name     string
		perGroup int
		prefix   byte
	}{{"one event is an object", 1, '{'}, {"several are an array", 4, '['}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPopulation(formatEvents, tc.perGroup, 100, 7, testBase)
			body, _ := p.appendBody(nil, 0)
			if body[0] != tc.prefix {
				t.Fatalf("body starts with %q, want %q", body[0], tc.prefix)
			}
			// DecodeEvents rejects unknown fields.
			events, err := ingest.DecodeEvents(body)
			if err != nil {
				t.Fatalf("ingest.DecodeEvents: %v", err)
			}
			if len(events) != tc.perGroup {
				t.Fatalf("%d events, want %d", len(events), tc.perGroup)
			}
			for i := range events {
				if err := events[i].Normalize(testBase); err != nil {
					t.Errorf("event %d: %v", i, err)
				}
				if events[i].Severity == "" || events[i].StartsAt.IsZero() {
					t.Errorf("event %d: severity %q startsAt %v", i, events[i].Severity, events[i].StartsAt)
				}
			}
		})
	}
}

func TestDuplicatesCycle(t *testing.T) {
	p := newPopulation(formatWebhook, 10, 100, 1, testBase)
	if p.groups != 10 || p.unique != 100 {
		t.Fatalf("groups %d unique %d, want 10 and 100", p.groups, p.unique)
	}
	// Request k and k+groups are the same payload, byte for byte.
	for k := int64(0); k < 10; k++ {
		a, _ := p.appendBody(nil, k)
		b, _ := p.appendBody(nil, k+10)
		c, _ := p.appendBody(nil, k+1)
		if !bytes.Equal(a, b) {
			t.Errorf("request %d and %d differ", k, k+10)
		}
		if bytes.Equal(a, c) {
			t.Errorf("request %d and %d are equal", k, k+1)
		}
	}
	// 1000 alerts sent over 100 requests: exactly 100 distinct fingerprints.
	seen := map[string]int{}
	for k := int64(0); k < 100; k++ {
		body, _ := p.appendBody(nil, k)
		var m amWebhook
		strictDecode(t, body, &m)
		for _, a := range m.Alerts {
			seen[a.Fingerprint]++
		}
	}
	if len(seen) != 100 {
		t.Fatalf("%d distinct fingerprints in 1000 alerts, want 100", len(seen))
	}
	for fp, n := range seen {
		if n != 10 {
			t.Errorf("fingerprint %s sent %d times, want 10", fp, n)
		}
	}
}

func TestPopulationIsDeterministicAndDistinct(t *testing.T) {
	a := newPopulation(formatWebhook, 1, 5000, 3, testBase)
	b := newPopulation(formatWebhook, 1, 5000, 3, testBase)
	other := newPopulation(formatWebhook, 1, 5000, 4, testBase)
	fps := map[string]int{}
	sameAsOther := 0
	for i := range a.unique {
		x, y := a.alert(i), b.alert(i)
		if x.fingerprint != y.fingerprint || x.labels != y.labels || !x.startsAt.Equal(y.startsAt) ||
			x.annotations[0] != y.annotations[0] {
			t.Fatalf("alert %d differs between two populations of one seed", i)
		}
		if j, dup := fps[x.fingerprint]; dup {
			t.Fatalf("alerts %d and %d share fingerprint %s: %v / %v", j, i, x.fingerprint, a.alert(j).labels, x.labels)
		}
		fps[x.fingerprint] = i
		if other.alert(i).fingerprint == x.fingerprint {
			sameAsOther++
		}
	}
	if sameAsOther > 0 {
		t.Errorf("%d alerts equal under another seed", sameAsOther)
	}
}

func TestUniqueRoundsUpToWholeGroups(t *testing.T) {
	p := newPopulation(formatV2, 7, 100, 1, testBase)
	if p.groups != 15 || p.unique != 105 {
		t.Errorf("groups %d unique %d, want 15 and 105", p.groups, p.unique)
	}
}

func TestLabelsLookReal(t *testing.T) {
	p := newPopulation(formatWebhook, 1, 5000, 1, testBase)
	seen := map[string]map[string]bool{}
	instance := regexp.MustCompile(`^[a-z0-9.-]+:[0-9]+$`)
	pod := regexp.MustCompile(`^[a-z-]+-[` + podAlphabet + `]{9}-[` + podAlphabet + `]{5}$`)
	for i := range p.unique {
		a := p.alert(i)
		for l, v := range a.labels {
			if seen[labelNames[l]] == nil {
				seen[labelNames[l]] = map[string]bool{}
			}
			seen[labelNames[l]][v] = true
			if v == "" {
				t.Fatalf("alert %d: empty label %s", i, labelNames[l])
			}
		}
		if !instance.MatchString(a.labels[lInstance]) {
			t.Errorf("alert %d: instance %q is not host:port", i, a.labels[lInstance])
		}
		if !pod.MatchString(a.labels[lPod]) || !strings.HasPrefix(a.labels[lPod], a.labels[lService]+"-") {
			t.Errorf("alert %d: pod %q of service %q", i, a.labels[lPod], a.labels[lService])
		}
		for _, an := range a.annotations {
			if strings.Contains(an.value, "{{") {
				t.Errorf("alert %d: %s not expanded: %q", i, an.name, an.value)
			}
			if an.name == "summary" && (len(an.value) < 15 || len(an.value) > 120) ||
				an.name == "description" && (len(an.value) < 40 || len(an.value) > 400) {
				t.Errorf("alert %d: %s of %d bytes: %q", i, an.name, len(an.value), an.value)
			}
		}
	}
	for _, tc := range []struct {
		label string
		min   int
	}{{"alertname", 28}, {"service", 50}, {"namespace", 5}, {"severity", 3}, {"job", 10}, {"pod", 5000}} {
		if n := len(seen[tc.label]); n < tc.min {
			t.Errorf("%d distinct %s values, want at least %d", n, tc.label, tc.min)
		}
	}
	for _, s := range []string{"critical", "warning", "info"} {
		if !seen["severity"][s] {
			t.Errorf("no %s alert", s)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quo"te`, `back\slash`, "line\nbreak\ttab\rcr", "\x00\x01\x1f\x7f",
		"<a href=\"x?a=1&b=2\">", "ünïcødé ✓ 🚨", "bad \xff utf-8 \xc3", "\u2028",
	} {
		got := appendString(nil, s)
		want, _ := json.Marshal(s)
		var a, b string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Errorf("%q: %s is not a JSON string: %v", s, got, err)
			continue
		}
		_ = json.Unmarshal(want, &b)
		if a != b {
			t.Errorf("%q: decodes to %q, encoding/json's to %q", s, a, b)
		}
	}
}
