package ingest_test

import (
	"testing"

	"github.com/triage-dev/triage"
	"github.com/triage-dev/triage/ingest"
)

// The bodies are the load generator's (cmd/triage-loadgen): 10 alerts of 7
// labels and 2 or 3 annotations each, with startsAt, endsAt or status, and
// generatorURL. Fast is what the HTTP handlers run: the public decoder
// with an interner, warm after the first iteration as in a live daemon
// that receives the same alerts again and again.

func benchDecode(b *testing.B, fixture string, decode func([]byte) ([]triage.Event, error)) {
	body := readFixture(b, fixture)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePostableAlertsStrict(b *testing.B) {
	benchDecode(b, "loadgen-v2.json", ingest.Paths["postable"].Strict)
}

func BenchmarkDecodePostableAlertsFast(b *testing.B) {
	benchDecode(b, "loadgen-v2.json", ingest.NewDecoder(ingest.NewInterner(0)).PostableAlerts)
}

func BenchmarkDecodePostableAlertsFastNoInterner(b *testing.B) {
	benchDecode(b, "loadgen-v2.json", ingest.DecodePostableAlerts)
}

func BenchmarkDecodeWebhookStrict(b *testing.B) {
	benchDecode(b, "loadgen-webhook.json", ingest.Paths["webhook"].Strict)
}

func BenchmarkDecodeWebhookFast(b *testing.B) {
	benchDecode(b, "loadgen-webhook.json", ingest.NewDecoder(ingest.NewInterner(0)).Webhook)
}

func BenchmarkDecodeKafkaWebhookStrict(b *testing.B) {
	benchDecode(b, "loadgen-webhook.json", ingest.Paths["kafka"].Strict)
}

func BenchmarkDecodeKafkaWebhookFast(b *testing.B) {
	benchDecode(b, "loadgen-webhook.json", ingest.NewDecoder(ingest.NewInterner(0)).KafkaAlert)
}

func BenchmarkDecodeEventsStrict(b *testing.B) {
	benchDecode(b, "loadgen-events.json", ingest.Paths["events"].Strict)
}

func BenchmarkDecodeEventsFast(b *testing.B) {
	benchDecode(b, "loadgen-events.json", ingest.NewDecoder(ingest.NewInterner(0)).Events)
}
