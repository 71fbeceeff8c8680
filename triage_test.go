package triage

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

var now = time.Date(2026, 11, 24, 23, 58, 0, 0, time.UTC)

func TestFingerprintMatchesAlertmanager(t *testing.T) {
	cases := []struct {
		name   string
		labels map[string]string
	}{
		{"alertname and service", map[string]string{"alertname": "HighErrorRate", "service": "orders"}},
		{"one label", map[string]string{"alertname": "Watchdog"}},
		{"many labels", map[string]string{"alertname": "HighErrorRate", "instance": "orders-1:8080", "job": "orders",
			"service": "orders", "severity": "critical", "prometheus": "monitoring/k8s"}},
		{"unicode and separators in values", map[string]string{"alertname": "Überlast", "path": "/a,b=c\xff", "region": "東京"}},
		{"empty value", map[string]string{"alertname": "A", "team": ""}},
		{"no labels", map[string]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ls := make(model.LabelSet, len(tc.labels))
			for k, v := range tc.labels {
				ls[model.LabelName(k)] = model.LabelValue(v)
			}
			want := ls.Fingerprint().String()
			got := Fingerprint(tc.labels)
			if got != want {
				t.Fatalf("Fingerprint = %s, Alertmanager computes %s", got, want)
			}
			if len(got) != 16 {
				t.Errorf("Fingerprint %q is not 16 hex digits", got)
			}
		})
	}
	// A value Alertmanager v0.31.1 sent in a webhook for these labels.
	if got := Fingerprint(map[string]string{"alertname": "DiskFull", "instance": "db-billing-1:9100",
		"service": "billing", "severity": "warning"}); got != "2f08ef1aec098508" {
		t.Errorf("Fingerprint = %s, Alertmanager sent 2f08ef1aec098508", got)
	}
	// Order-independent and label-sensitive.
	a := Fingerprint(map[string]string{"alertname": "A", "service": "x"})
	if b := Fingerprint(map[string]string{"service": "x", "alertname": "A"}); a != b {
		t.Errorf("fingerprint depends on map order: %s != %s", a, b)
	}
	if b := Fingerprint(map[string]string{"alertname": "A", "service": "y"}); a == b {
		t.Errorf("different labels share fingerprint %s", a)
	}
}

func TestNormalize(t *testing.T) {
	labels := func() map[string]string { return map[string]string{"alertname": "HighErrorRate", "service": "orders"} }
	fp := Fingerprint(labels())
	past, future := now.Add(-time.Minute), now.Add(time.Minute)
	sent := now.Add(-30 * time.Second)
	cases := []struct {
		name string
		in   Event
		want Event // fields compared: Fingerprint, Status, Severity, Time, EndsAt
	}{
		{
			name: "defaults",
			in:   Event{Labels: labels()},
			want: Event{Fingerprint: fp, Status: AlertFiring, Time: now},
		},
		{
			name: "ends_at in the past resolves",
			in:   Event{Labels: labels(), StartsAt: past.Add(-time.Hour), EndsAt: past},
			want: Event{Fingerprint: fp, Status: AlertResolved, Time: now, EndsAt: past},
		},
		{
			name: "ends_at now resolves",
			in:   Event{Labels: labels(), EndsAt: now},
			want: Event{Fingerprint: fp, Status: AlertResolved, Time: now, EndsAt: now},
		},
		{
			name: "ends_at in the future is an expiry: firing",
			in:   Event{Labels: labels(), EndsAt: future},
			want: Event{Fingerprint: fp, Status: AlertFiring, Time: now, EndsAt: future},
		},
		{
			name: "an explicit status wins over ends_at",
			in:   Event{Labels: labels(), Status: AlertFiring, EndsAt: past},
			want: Event{Fingerprint: fp, Status: AlertFiring, Time: now, EndsAt: past},
		},
		{
			name: "resolved without ends_at",
			in:   Event{Labels: labels(), Status: AlertResolved},
			want: Event{Fingerprint: fp, Status: AlertResolved, Time: now},
		},
		{
			name: "sender's fingerprint and time are kept",
			in:   Event{Labels: labels(), Fingerprint: "zbx-48213", Time: sent},
			want: Event{Fingerprint: "zbx-48213", Status: AlertFiring, Time: sent},
		},
		{
			name: "severity from the severity label, normalised",
			in:   Event{Labels: map[string]string{"alertname": "A", "severity": "Page"}},
			want: Event{Fingerprint: Fingerprint(map[string]string{"alertname": "A", "severity": "Page"}), Status: AlertFiring,
				Severity: SeverityCritical, Time: now},
		},
		{
			name: "explicit severity wins over the label",
			in:   Event{Labels: map[string]string{"alertname": "A", "severity": "critical"}, Severity: "info"},
			want: Event{Fingerprint: Fingerprint(map[string]string{"alertname": "A", "severity": "critical"}), Status: AlertFiring,
				Severity: SeverityInfo, Time: now},
		},
		{
			name: "64 labels",
			in:   Event{Labels: nLabels(MaxLabels)},
			want: Event{Fingerprint: Fingerprint(nLabels(MaxLabels)), Status: AlertFiring, Time: now},
		},
		{
			name: "a value of the maximum size",
			in:   Event{Labels: map[string]string{"a": strings.Repeat("x", MaxLabelBytes)}},
			want: Event{Fingerprint: Fingerprint(map[string]string{"a": strings.Repeat("x", MaxLabelBytes)}), Status: AlertFiring, Time: now},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.in
			if err := ev.Normalize(now); err != nil {
				t.Fatal(err)
			}
			if ev.Fingerprint != tc.want.Fingerprint || ev.Status != tc.want.Status || ev.Severity != tc.want.Severity ||
				!ev.Time.Equal(tc.want.Time) || !ev.EndsAt.Equal(tc.want.EndsAt) {
				t.Errorf("got  fingerprint=%s status=%s severity=%q time=%s ends_at=%s\nwant fingerprint=%s status=%s severity=%q time=%s ends_at=%s",
					ev.Fingerprint, ev.Status, ev.Severity, ev.Time, ev.EndsAt,
					tc.want.Fingerprint, tc.want.Status, tc.want.Severity, tc.want.Time, tc.want.EndsAt)
			}
		})
	}
}

func nLabels(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m["l"+strconv.Itoa(i)] = "v"
	}
	return m
}

func TestNormalizeErrors(t *testing.T) {
	ok := map[string]string{"alertname": "A"}
	cases := []struct {
		name  string
		in    Event
		field string // the message names it
	}{
		{"nil labels", Event{}, "labels: at least one label"},
		{"empty labels", Event{Labels: map[string]string{}}, "labels: at least one label"},
		{"too many labels", Event{Labels: nLabels(MaxLabels + 1)}, "labels: 65 labels, at most 64"},
		{"empty label name", Event{Labels: map[string]string{"": "x"}}, `invalid label name ""`},
		{"empty label name", Event{Labels: map[string]string{"": "x"}}, `invalid label name ""`},
		{"label name not UTF-8", Event{Labels: map[string]string{"a\xffb": "x"}}, `invalid label name "a\xffb"`},
		{"label name over 256 bytes", Event{Labels: map[string]string{strings.Repeat("n", 257): "x"}}, `invalid label name`},
		{"annotations too large", Event{Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"d": strings.Repeat("x", 70000)}}, "annotations:"},
		{"generator URL too long", Event{Labels: map[string]string{"a": "b"}, GeneratorURL: strings.Repeat("u", 5000)}, "generator_url"},
		{"label name too long", Event{Labels: map[string]string{strings.Repeat("a", 257): "x"}}, "invalid label name"},
		{"label value too long", Event{Labels: map[string]string{"a": strings.Repeat("x", MaxLabelBytes+1)}}, `value of "a"`},
		{"label value not UTF-8", Event{Labels: map[string]string{"a": "\xff"}}, `value of "a" is not valid UTF-8`},
		{"unknown status", Event{Labels: ok, Status: "pending"}, `status: "pending"`},
		{"status in capitals", Event{Labels: ok, Status: "FIRING"}, `status: "FIRING"`},
		{"fingerprint too long", Event{Labels: ok, Fingerprint: strings.Repeat("f", 129)}, "fingerprint"},
		{"fingerprint not UTF-8", Event{Labels: ok, Fingerprint: "\xc3("}, "fingerprint"},
		{"ends before it starts", Event{Labels: ok, StartsAt: now, EndsAt: now.Add(-time.Second)}, "ends_at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.in
			err := ev.Normalize(now)
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("error = %v, want ErrInvalidEvent", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not contain %q", err, tc.field)
			}
		})
	}
}

func TestNormalizeSeverity(t *testing.T) {
	cases := map[string]string{
		"":              "",
		"  ":            "",
		"critical":      SeverityCritical,
		" CRITICAL ":    SeverityCritical,
		"page":          SeverityCritical,
		"P1":            SeverityCritical,
		"high":          SeverityCritical,
		"error":         SeverityError,
		"major":         SeverityError,
		"warning":       SeverityWarning,
		"warn":          SeverityWarning,
		"something":     SeverityWarning,
		"info":          SeverityInfo,
		"none":          SeverityInfo,
		"p5":            SeverityInfo,
		"informational": SeverityInfo,
	}
	for in, want := range cases {
		if got := NormalizeSeverity(in); got != want {
			t.Errorf("NormalizeSeverity(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseIncidentRef(t *testing.T) {
	cases := []struct {
		in   string
		want uint64 // 0: an error
	}{
		{"42", 42},
		{"INC-42", 42},
		{"inc-7", 7},
		{"18446744073709551615", 1<<64 - 1},
		{"0", 0},
		{"INC-0", 0},
		{"", 0},
		{"INC-", 0},
		{"-1", 0},
		{"+1", 0},
		{"4 2", 0},
		{"18446744073709551616", 0},
		{"INC-INC-1", 0},
		{"PRB-1", 0},
	}
	for _, tc := range cases {
		got, err := ParseIncidentRef(tc.in)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("ParseIncidentRef(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseIncidentRef(%q) = %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
	if k := IncidentKey(42); k != "INC-42" {
		t.Errorf("IncidentKey(42) = %q", k)
	}
}

func TestFingerprintMatchesAlertmanagerOnRandomLabels(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		labels := map[string]string{}
		for range r.IntN(40) { // past the 32 names kept on the stack too
			k := make([]byte, 1+r.IntN(12))
			v := make([]byte, r.IntN(30))
			for j := range k {
				k[j] = byte('a' + r.IntN(26))
			}
			for j := range v {
				v[j] = byte(r.IntN(256))
			}
			labels[string(k)] = string(v)
		}
		ls := make(model.LabelSet, len(labels))
		for k, v := range labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		if got, want := Fingerprint(labels), ls.Fingerprint().String(); got != want {
			t.Fatalf("case %d %q: Fingerprint = %s, Alertmanager computes %s", i, labels, got, want)
		}
	}
}
