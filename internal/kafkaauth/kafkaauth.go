// Package kafkaauth builds the Kafka client's dialer (TLS, SASL) from the
// configuration.
package kafkaauth

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/triage-dev/triage/internal/config"
)

// Dialer returns nil when neither TLS nor SASL is configured (the client's
// defaults apply), else a dialer with both set up. getenv reads
// TRIAGE_KAFKA_PASSWORD when no password_file is set. Secrets are never
// part of an error.
func Dialer(k config.Kafka, getenv func(string) string) (*kafka.Dialer, error) {
	if !k.TLS.Enabled && k.SASL.Mechanism == "" {
		return nil, nil
	}
	d := &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true}
	if k.TLS.Enabled {
		c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: k.TLS.ServerName,
			InsecureSkipVerify: k.TLS.InsecureSkipVerify} // #nosec G402: an explicit opt-in for test clusters
		if k.TLS.CAFile != "" {
			pem, err := os.ReadFile(k.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka.tls.ca_file %s: no PEM certificate in it", k.TLS.CAFile)
			}
			c.RootCAs = pool
		}
		if k.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(k.TLS.CertFile, k.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.tls client certificate: %w", err)
			}
			c.Certificates = []tls.Certificate{cert}
		}
		d.TLS = c
	}
	if k.SASL.Mechanism != "" {
		password, err := config.ReadSecret(k.SASL.PasswordFile, "TRIAGE_KAFKA_PASSWORD", getenv)
		if err != nil {
			return nil, fmt.Errorf("kafka.sasl.password_file: %w", err)
		}
		if password == "" {
			return nil, fmt.Errorf("kafka.sasl: no password (password_file or TRIAGE_KAFKA_PASSWORD)")
		}
		var m sasl.Mechanism
		switch strings.ToUpper(k.SASL.Mechanism) {
		case "PLAIN":
			m = plain.Mechanism{Username: k.SASL.Username, Password: password}
		case "SCRAM-SHA-256":
			m, err = scram.Mechanism(scram.SHA256, k.SASL.Username, password)
		case "SCRAM-SHA-512":
			m, err = scram.Mechanism(scram.SHA512, k.SASL.Username, password)
		default:
			err = fmt.Errorf("unknown mechanism %q", k.SASL.Mechanism)
		}
		if err != nil {
			return nil, fmt.Errorf("kafka.sasl: %w", err)
		}
		d.SASLMechanism = m
	}
	return d, nil
}
