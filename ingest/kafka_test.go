package ingest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/triage-dev/triage/ingest"
)

func TestDecodeKafkaAlertTellsShapesApart(t *testing.T) {
	tests := []struct {
		name, msg  string
		n          int
		source     string
		errReason  string
		errContain string
	}{
		{"generic event", `{"labels":{"alertname":"A"},"severity":"critical"}`, 1, "kafka", "", ""},
		{"generic event naming its source", `{"source":"zabbix","labels":{"alertname":"A"}}`, 1, "zabbix", "", ""},
		{"webhook payload", `{"receiver":"r","status":"firing","alerts":[{"status":"firing","labels":{"a":"1"}},{"status":"firing","labels":{"a":"2"}}],"version":"4"}`, 2, "alertmanager", "", ""},
		{"webhook payload with alerts first", `{"alerts":[{"status":"firing","labels":{"a":"1"}}]}`, 1, "alertmanager", "", ""},
		{"event with an unknown field", `{"labels":{"a":"b"},"colour":"red"}`, 0, "", "unknown_field", "colour"},
		{"wrong type in an event", `{"labels":{"a":5}}`, 0, "", "type", "labels.a"},
		{"trailing data", `{"labels":{"a":"b"}} {"labels":{}}`, 0, "", "syntax", "after the JSON value"},
		{"an array", `[{"labels":{"a":"b"}}]`, 0, "", "type", "JSON object"},
		{"not JSON", `alertname=A`, 0, "", "type", "JSON object"},
		{"empty", ``, 0, "", "empty", "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := ingest.DecodeKafkaAlert([]byte(tc.msg))
			if tc.errReason != "" {
				var de *ingest.DecodeError
				if !errors.As(err, &de) || de.Reason != tc.errReason || !strings.Contains(de.Msg, tc.errContain) {
					t.Fatalf("error %v, want reason %s mentioning %q", err, tc.errReason, tc.errContain)
				}
				return
			}
			if err != nil || len(evs) != tc.n || evs[0].Source != tc.source {
				t.Fatalf("events %+v, err %v; want %d from %s", evs, err, tc.n, tc.source)
			}
		})
	}
}
