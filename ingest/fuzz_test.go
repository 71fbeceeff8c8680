package ingest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/ingest"
)

// tricky are inputs every decoder must survive, whatever it makes of them.
var tricky = []string{
	``,
	` `,
	"\xef\xbb\xbf{}",
	"\xff",
	`null`,
	`true`,
	`0`,
	`-0.0e-0`,
	`"\ud800"`,
	`{}`,
	`[]`,
	`[null]`,
	`[[]]`,
	`{"alerts":null}`,
	`{"alerts":[null]}`,
	`{"alerts":[{}]}`,
	`{"alerts":[{"labels":null}]}`,
	`{"alerts":[{"status":"resolved","labels":{"a":"b"},"startsAt":"2026-11-24T23:10:00Z","endsAt":"2026-11-24T23:00:00Z"}]}`,
	`{"alerts":[{"labels":{"a":"\u0000"}}]}`,
	`{"alerts":[{"labels":{"":""}}]}`,
	`{"Alerts":[{"LABELS":{"a":"b"}}],"VERSION":"4"}`,
	`{"alerts":[{"labels":{"a":"b"},"labels":{"c":1}}]}`,
	`{"version":"4","alerts":[{"startsAt":"9999-12-31T23:59:59.999999999+23:59"}]}`,
	`{"version":"4","alerts":[{"startsAt":"0000-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","status":"resolved","labels":{"a":"b"}}]}`,
	`{"truncatedAlerts":18446744073709551616,"alerts":[]}`,
	`{"truncatedAlerts":1e3,"alerts":[]}`,
	`[{"labels":{"a":"b"},"endsAt":"2026-11-24T23:58:00Z"}]`,
	`[{"labels":{"a":"b"}},{"labels":{"a":"b"}}]`,
	`{"labels":{"a":"b"},"status":"firing","fingerprint":""}`,
	`{"labels":{"a":"b"},"fingerprint":"` + strings.Repeat("f", 129) + `"}`,
	`{"labels":{"a":"b"},"unknown":{"deep":[[[[[[[[[[{}]]]]]]]]]]}}`,
	`[{"labels":{"a":"b"}}] [`,
	strings.Repeat("[", 20000),
	strings.Repeat(`{"a":`, 5000),
	`{"alerts":[` + strings.Repeat(`{"labels":{"a":"b"}},`, 100) + `{}]}`,
	`{"alerts":[{"labels":{"a":"b"}}]} {}`,
	`{"alerts":[{"labels":{"a":"b"},"startsAt":1e400}]}`,
	`{"labels":{"a":"b"},"time":"2026-11-24T23:58:00.123456789Z"}`,
}

func addSeeds(f *testing.F, fixtures ...string) {
	for _, name := range fixtures {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range tricky {
		f.Add([]byte(s))
	}
}

// checkDecoded is the property every decoder keeps: no panic; on success
// every event either fails Normalize with ErrInvalidEvent or comes out with
// a fingerprint and a firing or resolved status; on failure the error is a
// DecodeError with a reason for metrics and a message for the sender.
func checkDecoded(t *testing.T, body []byte, events []triage.Event, err error) {
	t.Helper()
	if err != nil {
		var de *ingest.DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("error %T %q is not a *ingest.DecodeError", err, err)
		}
		switch de.Reason {
		case "empty", "utf8", "syntax", "type", "unknown_field", "invalid":
		default:
			t.Fatalf("Reason %q is not one of the documented reasons (message %q)", de.Reason, de.Msg)
		}
		if de.Msg == "" {
			t.Fatalf("empty message for reason %q", de.Reason)
		}
		if len(de.Msg) > 1024 {
			t.Fatalf("message of %d bytes for a %d-byte body", len(de.Msg), len(body))
		}
		if events != nil {
			t.Fatalf("%d events alongside error %v", len(events), err)
		}
		return
	}
	if events == nil {
		t.Fatal("nil events and nil error")
	}
	for i := range events {
		ev := events[i]
		if ev.Source == "" {
			t.Fatalf("event %d has no source", i)
		}
		if err := ev.Normalize(now); err != nil {
			if !errors.Is(err, triage.ErrInvalidEvent) {
				t.Fatalf("event %d: Normalize error %v does not wrap ErrInvalidEvent", i, err)
			}
			continue
		}
		if ev.Fingerprint == "" {
			t.Fatalf("event %d: empty fingerprint after Normalize", i)
		}
		if ev.Status != triage.AlertFiring && ev.Status != triage.AlertResolved {
			t.Fatalf("event %d: status %q after Normalize", i, ev.Status)
		}
		if ev.Time.IsZero() {
			t.Fatalf("event %d: zero time after Normalize", i)
		}
	}
}

func FuzzDecodeWebhook(f *testing.F) {
	addSeeds(f, "alertmanager-webhook.json", "alertmanager-webhook-truncated.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := ingest.DecodeWebhook(body)
		checkDecoded(t, body, events, err)
	})
}

func FuzzDecodePostableAlerts(f *testing.F) {
	addSeeds(f, "prometheus-alerts.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := ingest.DecodePostableAlerts(body)
		checkDecoded(t, body, events, err)
	})
}

func FuzzDecodeEvents(f *testing.F) {
	addSeeds(f, "events.json", "event.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := ingest.DecodeEvents(body)
		checkDecoded(t, body, events, err)
		for _, ev := range events {
			if ev.Source == "" {
				t.Fatal("a generic event without source did not get the api source")
			}
		}
	})
}
