package scenario

import (
	"fmt"
	"math/rand/v2"
)

// alertDef is one kind of alert a CI can raise.
type alertDef struct {
	name, severity string
	// extra adds a label that tells this alert from others of its name
	// (an interface, a mount point, a topic), or nothing when nil.
	extra func(r *rand.Rand) (label, value string)
}

func oneOf(label string, values ...string) func(r *rand.Rand) (string, string) {
	return func(r *rand.Rand) (string, string) { return label, values[r.IntN(len(values))] }
}

func numbered(label, format string, n int) func(r *rand.Rand) (string, string) {
	return func(r *rand.Rand) (string, string) { return label, fmt.Sprintf(format, r.IntN(n)+1) }
}

var (
	ifaces    = numbered("interface", "Ethernet1/%d", 48)
	nics      = oneOf("interface", "eth0", "eth1", "bond0", "ens3")
	mounts    = oneOf("mountpoint", "/", "/var", "/var/lib", "/data", "/srv", "/tmp")
	topics    = oneOf("topic", "orders-events", "payments-events", "audit-log", "clickstream", "notifications", "cdc.public")
	groups    = oneOf("consumergroup", "indexer", "billing-worker", "mailer", "etl", "fraud-scorer")
	routes    = oneOf("route", "/api/v1/orders", "/api/v1/users", "/api/v1/search", "/healthz", "/api/v2/checkout", "/graphql")
	replicas  = oneOf("replica", "replica-1", "replica-2", "standby")
	databases = oneOf("datname", "app", "reporting", "events")
)

// failures are the alerts each kind of CI raises when it or something it
// depends on fails. The first one is the kind's own outage.
var failures = [numKinds][]alertDef{
	kindCore: {
		{"SwitchDown", "critical", nil},
		{"InterfaceErrors", "warning", ifaces},
		{"InterfaceDown", "critical", ifaces},
		{"BGPSessionDown", "critical", numbered("peer", "10.254.0.%d", 16)},
	},
	kindAccess: {
		{"SwitchDown", "critical", nil},
		{"InterfaceErrors", "warning", ifaces},
		{"InterfaceDown", "critical", ifaces},
		{"HighPacketLoss", "warning", nil},
	},
	kindHost: {
		{"HostDown", "critical", nil},
		{"NodeFilesystemFull", "warning", mounts},
		{"NodeNetworkErrors", "warning", nics},
		{"NodeHighCPU", "warning", nil},
		{"NodeMemoryPressure", "warning", nil},
	},
	kindDB: {
		{"PostgresDown", "critical", nil},
		{"ReplicationLag", "warning", replicas},
		{"PostgresTooManyConnections", "warning", databases},
		{"PostgresSlowQueries", "warning", databases},
	},
	kindCache: {
		{"RedisDown", "critical", nil},
		{"RedisRejectedConnections", "warning", nil},
		{"RedisReplicationBroken", "warning", nil},
		{"RedisLatencyHigh", "warning", nil},
	},
	kindQueue: {
		{"KafkaBrokerDown", "critical", nil},
		{"KafkaUnderReplicated", "warning", topics},
		{"KafkaOfflinePartitions", "critical", topics},
		{"KafkaConsumerLag", "warning", groups},
	},
	kindService: {
		{"ServiceDown", "critical", nil},
		{"HighErrorRate", "critical", routes},
		{"HighLatency", "warning", routes},
		{"CircuitBreakerOpen", "warning", nil},
		{"ContainerRestarting", "warning", oneOf("container", "app", "sidecar", "worker")},
	},
}

// nuisances are the alerts of noise and flapping on a CI: real but
// unrelated to any fault.
var nuisances = [numKinds][]alertDef{
	kindCore:    {{"InterfaceErrors", "warning", ifaces}, {"FanSpeedLow", "warning", numbered("fan", "%d", 6)}, {"ConfigDrift", "info", nil}},
	kindAccess:  {{"InterfaceErrors", "warning", ifaces}, {"PowerSupplyDegraded", "warning", numbered("psu", "%d", 2)}, {"ConfigDrift", "info", nil}},
	kindHost:    {{"NodeClockSkew", "warning", nil}, {"NodeSwapUsage", "info", nil}, {"DiskSMARTWarning", "warning", oneOf("disk", "sda", "sdb", "nvme0n1")}, {"NodeFilesystemFull", "warning", mounts}},
	kindDB:      {{"PostgresVacuumBehind", "warning", databases}, {"PostgresLongTransaction", "warning", databases}, {"ReplicationLag", "warning", replicas}},
	kindCache:   {{"RedisKeyEvictions", "info", nil}, {"RedisMemoryHigh", "warning", nil}},
	kindQueue:   {{"KafkaConsumerLag", "warning", groups}, {"KafkaLogSizeHigh", "info", topics}},
	kindService: {{"HighLatency", "warning", routes}, {"SlowStartup", "info", nil}, {"ContainerRestarting", "warning", oneOf("container", "app", "sidecar", "worker")}},
}

// detached are noise alerts that name no CI at all.
var detached = []alertDef{
	{"CertificateExpiringSoon", "warning", site("domain", "%s.example.com")},
	{"BlackboxProbeFailed", "warning", site("target", "https://%s.example.com/health")},
	{"BackupJobFailed", "warning", site("backup", "%s-nightly")},
	{"LicenseExpiring", "info", numbered("contract", "C-%05d", 99999)},
	{"DNSResolutionSlow", "warning", site("zone", "%s.internal.example.com")},
}

// site names one of a thousand sites in format.
func site(label, format string) func(r *rand.Rand) (string, string) {
	return func(r *rand.Rand) (string, string) { return label, fmt.Sprintf(format, word(r.IntN(25*len(words)))) }
}
