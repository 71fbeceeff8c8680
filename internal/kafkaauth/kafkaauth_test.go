package kafkaauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triage-dev/triage/internal/config"
)

func TestDialer(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) string { return "" }
	tests := []struct {
		name    string
		k       config.Kafka
		env     func(string) string
		wantNil bool
		mech    string
		tls     bool
		errHas  string
	}{
		{name: "plain text", wantNil: true},
		{name: "TLS", k: config.Kafka{TLS: config.KafkaTLS{Enabled: true, ServerName: "kafka"}}, tls: true},
		{name: "SCRAM from file", k: config.Kafka{SASL: config.KafkaSASL{Mechanism: "SCRAM-SHA-512", Username: "u", PasswordFile: pw}}, mech: "SCRAM-SHA-512"},
		{name: "PLAIN from env", k: config.Kafka{SASL: config.KafkaSASL{Mechanism: "plain", Username: "u"}},
			env: func(k string) string { return map[string]string{"TRIAGE_KAFKA_PASSWORD": "x"}[k] }, mech: "PLAIN"},
		{name: "no password", k: config.Kafka{SASL: config.KafkaSASL{Mechanism: "PLAIN", Username: "u"}}, errHas: "no password"},
		{name: "bad CA file", k: config.Kafka{TLS: config.KafkaTLS{Enabled: true, CAFile: pw}}, errHas: "no PEM certificate"},
		{name: "missing CA file", k: config.Kafka{TLS: config.KafkaTLS{Enabled: true, CAFile: filepath.Join(dir, "nope")}}, errHas: "ca_file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if env == nil {
				env = noEnv
			}
			d, err := Dialer(tc.k, env)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error %v, want one mentioning %q and no secret", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantNil {
				if d != nil {
					t.Fatal("a dialer without TLS or SASL")
				}
				return
			}
			if (d.TLS != nil) != tc.tls {
				t.Fatalf("TLS set = %v, want %v", d.TLS != nil, tc.tls)
			}
			if tc.mech != "" && (d.SASLMechanism == nil || d.SASLMechanism.Name() != tc.mech) {
				t.Fatalf("SASL mechanism %v, want %s", d.SASLMechanism, tc.mech)
			}
		})
	}
}
