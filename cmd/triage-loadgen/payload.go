package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"

	"github.com/triage-dev/triage"
)

// Payload formats and the endpoint each one is posted to.
const (
	formatWebhook = "webhook"
	formatV2      = "v2"
	formatEvents  = "events"
)

var formatPaths = map[string]string{
	formatWebhook: "/api/v1/alerts",
	formatV2:      "/api/v2/alerts",
	formatEvents:  "/api/v1/events",
}

// rule is an alerting rule of the kind found in kube-prometheus and
// awesome-prometheus-alerts. Every alert of a rule carries its severity; job
// is fixed by the rule when the rule watches an exporter, and is the alert's
// service otherwise. Templates may use {{service}}, {{namespace}}, {{pod}},
// {{instance}}, {{job}} and {{value}}.
type rule struct {
	name, severity, job string
	node                bool // instance is a node (host:port) rather than a pod IP
	port                int
	expr                string
	summary, desc       string
	runbook             string
}

var rules = []rule{
	{name: "HighErrorRate", severity: "critical", port: 8080,
		expr:    `sum by (service) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (service) (rate(http_requests_total[5m])) > 0.05`,
		summary: "High HTTP 5xx error rate on {{service}}",
		desc:    "{{value}}% of the requests served by {{service}} in namespace {{namespace}} failed with a 5xx status over the last 5 minutes (threshold 5%). Check the recent deploys of {{service}} and its dependencies."},
	{name: "HighRequestLatency", severity: "warning", port: 8080,
		expr:    `histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket[5m]))) > 0.5`,
		summary: "{{service}} p99 latency above 500ms",
		desc:    "The 99th percentile request latency of {{service}} on {{instance}} has been {{value}}ms for 10 minutes, above the 500ms objective."},
	{name: "KubePodCrashLooping", severity: "warning", job: "kube-state-metrics", port: 8443,
		expr:    `max_over_time(kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff", job="kube-state-metrics"}[5m]) >= 1`,
		summary: "Pod is crash looping.",
		desc:    `Pod {{namespace}}/{{pod}} (container {{service}}) is in waiting state (reason: "CrashLoopBackOff"); it restarted {{value}} times in the last 10 minutes.`,
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping"},
	{name: "KubePodNotReady", severity: "warning", job: "kube-state-metrics", port: 8443,
		expr:    `sum by (namespace, pod, cluster) (max by (namespace, pod, cluster) (kube_pod_status_phase{job="kube-state-metrics", phase=~"Pending|Unknown|Failed"})) > 0`,
		summary: "Pod has been in a non-ready state for more than 15 minutes.",
		desc:    "Pod {{namespace}}/{{pod}} has been in a non-ready state for longer than 15 minutes.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodnotready"},
	{name: "KubeDeploymentReplicasMismatch", severity: "warning", job: "kube-state-metrics", port: 8443,
		expr:    `kube_deployment_spec_replicas{job="kube-state-metrics"} > kube_deployment_status_replicas_available{job="kube-state-metrics"}`,
		summary: "Deployment has not matched the expected number of replicas.",
		desc:    "Deployment {{namespace}}/{{service}} has not matched the expected number of replicas for longer than 15 minutes ({{value}} available).",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubedeploymentreplicasmismatch"},
	{name: "KubeStatefulSetReplicasMismatch", severity: "warning", job: "kube-state-metrics", port: 8443,
		expr:    `kube_statefulset_status_replicas_ready{job="kube-state-metrics"} != kube_statefulset_status_replicas{job="kube-state-metrics"}`,
		summary: "StatefulSet has not matched the expected number of replicas.",
		desc:    "StatefulSet {{namespace}}/{{service}} has not matched the expected number of replicas for longer than 15 minutes.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubestatefulsetreplicasmismatch"},
	{name: "KubeContainerWaiting", severity: "warning", job: "kube-state-metrics", port: 8443,
		expr:    `sum by (namespace, pod, container, cluster) (kube_pod_container_status_waiting_reason{job="kube-state-metrics"}) > 0`,
		summary: "Pod container waiting longer than 1 hour",
		desc:    "Pod {{namespace}}/{{pod}} container {{service}} has been in waiting state for longer than 1 hour.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubecontainerwaiting"},
	{name: "KubeJobFailed", severity: "warning", job: "kube-state-metrics", port: 8443,
		expr:    `kube_job_failed{job="kube-state-metrics"} > 0`,
		summary: "Job failed to complete.",
		desc:    "Job {{namespace}}/{{service}}-migrate failed to complete. Removing the failed job after investigation should clear this alert.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubejobfailed"},
	{name: "KubeHpaMaxedOut", severity: "info", job: "kube-state-metrics", port: 8443,
		expr:    `kube_horizontalpodautoscaler_status_current_replicas{job="kube-state-metrics"} == kube_horizontalpodautoscaler_spec_max_replicas{job="kube-state-metrics"}`,
		summary: "HPA is running at max replicas",
		desc:    "HPA {{namespace}}/{{service}} has been running at max replicas for longer than 15 minutes.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubehpamaxedout"},
	{name: "KubeQuotaAlmostFull", severity: "info", job: "kube-state-metrics", port: 8443,
		expr:    `kube_resourcequota{job="kube-state-metrics", type="used"} / ignoring(instance, job, type) (kube_resourcequota{job="kube-state-metrics", type="hard"} > 0) > 0.9 < 1`,
		summary: "Namespace quota is going to be full.",
		desc:    "Namespace {{namespace}} is using {{value}}% of its cpu quota.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubequotaalmostfull"},
	{name: "KubePersistentVolumeFillingUp", severity: "critical", job: "kubelet", port: 10250,
		expr:    `kubelet_volume_stats_available_bytes{job="kubelet"} / kubelet_volume_stats_capacity_bytes{job="kubelet"} < 0.03`,
		summary: "PersistentVolume is filling up.",
		desc:    "The PersistentVolume claimed by data-{{pod}} in Namespace {{namespace}} is only {{value}}% free.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepersistentvolumefillingup"},
	{name: "KubeletTooManyPods", severity: "info", job: "kubelet", node: true, port: 10250,
		expr:    `count by (cluster, node) ((kube_pod_status_phase{job="kube-state-metrics", phase="Running"} == 1)) / max by (cluster, node) (kube_node_status_capacity{job="kube-state-metrics", resource="pods"} != 1) > 0.95`,
		summary: "Kubelet is running at capacity.",
		desc:    "Kubelet '{{instance}}' is running at {{value}}% of its Pod capacity.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubelettoomanypods"},
	{name: "CPUThrottlingHigh", severity: "info", job: "kubelet", port: 10250,
		expr:    `sum(increase(container_cpu_cfs_throttled_periods_total{container!=""}[5m])) by (cluster, container, pod, namespace) / sum(increase(container_cpu_cfs_periods_total{}[5m])) by (cluster, container, pod, namespace) > (25 / 100)`,
		summary: "Processes experience elevated CPU throttling.",
		desc:    "{{value}}% throttling of CPU in namespace {{namespace}} for container {{service}} in pod {{pod}}.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/cputhrottlinghigh"},
	{name: "KubeAPIErrorBudgetBurn", severity: "critical", job: "apiserver", node: true, port: 6443,
		expr:    `sum by (cluster) (apiserver_request:burnrate1h) > (14.40 * 0.01000) and on (cluster) sum by (cluster) (apiserver_request:burnrate5m) > (14.40 * 0.01000)`,
		summary: "The API server is burning too much error budget.",
		desc:    "The API server is burning too much error budget: {{value}}x the allowed rate over the last hour.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubeapierrorbudgetburn"},
	{name: "NodeFilesystemSpaceFillingUp", severity: "warning", job: "node-exporter", node: true, port: 9100,
		expr:    `(node_filesystem_avail_bytes{job="node-exporter",fstype!=""} / node_filesystem_size_bytes{job="node-exporter",fstype!=""} * 100 < 15 and predict_linear(node_filesystem_avail_bytes{job="node-exporter",fstype!=""}[6h], 24*60*60) < 0 and node_filesystem_readonly{job="node-exporter",fstype!=""} == 0)`,
		summary: "Filesystem is predicted to run out of space within the next 24 hours.",
		desc:    "Filesystem on /dev/nvme0n1p1, mounted on /var/lib/kubelet, at {{instance}} has only {{value}}% available space left and is filling up.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/node/nodefilesystemspacefillingup"},
	{name: "NodeFilesystemAlmostOutOfSpace", severity: "critical", job: "node-exporter", node: true, port: 9100,
		expr:    `(node_filesystem_avail_bytes{job="node-exporter",fstype!=""} / node_filesystem_size_bytes{job="node-exporter",fstype!=""} * 100 < 3 and node_filesystem_readonly{job="node-exporter",fstype!=""} == 0)`,
		summary: "Filesystem has less than 3% space left.",
		desc:    "Filesystem on /dev/nvme1n1, mounted on /var/lib/containerd, at {{instance}} has only {{value}}% available space left.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/node/nodefilesystemalmostoutofspace"},
	{name: "NodeMemoryHighUtilization", severity: "warning", job: "node-exporter", node: true, port: 9100,
		expr:    `100 - (node_memory_MemAvailable_bytes{job="node-exporter"} / node_memory_MemTotal_bytes{job="node-exporter"} * 100) > 90`,
		summary: "Host is running out of memory.",
		desc:    "Memory is filling up at {{instance}}, has been above 90% for the last 15 minutes, is currently at {{value}}%.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/node/nodememoryhighutilization"},
	{name: "NodeHighNumberConntrackEntriesUsed", severity: "warning", job: "node-exporter", node: true, port: 9100,
		expr:    `(node_nf_conntrack_entries{job="node-exporter"} / node_nf_conntrack_entries_limit) > 0.75`,
		summary: "Number of conntrack are getting close to the limit.",
		desc:    "{{value}}% of conntrack entries are used on {{instance}}.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/node/nodehighnumberconntrackentriesused"},
	{name: "NodeClockNotSynchronising", severity: "warning", job: "node-exporter", node: true, port: 9100,
		expr:    `min_over_time(node_timex_sync_status{job="node-exporter"}[5m]) == 0 and node_timex_maxerror_seconds{job="node-exporter"} >= 16`,
		summary: "Clock not synchronising.",
		desc:    "Clock at {{instance}} is not synchronising. Ensure NTP is configured on this host.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/node/nodeclocknotsynchronising"},
	{name: "NodeNetworkReceiveErrs", severity: "warning", job: "node-exporter", node: true, port: 9100,
		expr:    `rate(node_network_receive_errs_total{job="node-exporter"}[2m]) / rate(node_network_receive_packets_total{job="node-exporter"}[2m]) > 0.01`,
		summary: "Network interface is reporting many receive errors.",
		desc:    "{{instance}} interface eth0 has encountered {{value}} receive errors in the last two minutes.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/node/nodenetworkreceiveerrs"},
	{name: "TargetDown", severity: "warning", port: 8080,
		expr:    `100 * (count by (cluster, job, namespace, service) (up == 0) / count by (cluster, job, namespace, service) (up)) > 10`,
		summary: "One or more targets are unreachable.",
		desc:    "{{value}}% of the {{job}}/{{service}} targets in {{namespace}} namespace are down.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/general/targetdown"},
	{name: "InstanceDown", severity: "critical", port: 8080,
		expr:    `up == 0`,
		summary: "Instance {{instance}} down",
		desc:    "{{instance}} of job {{job}} has been down for more than 5 minutes."},
	{name: "PrometheusRuleFailures", severity: "critical", job: "prometheus-k8s", port: 9090,
		expr:    `increase(prometheus_rule_evaluation_failures_total{job="prometheus-k8s",namespace="monitoring"}[5m]) > 0`,
		summary: "Prometheus is failing rule evaluations.",
		desc:    "Prometheus monitoring/{{pod}} has failed to evaluate {{value}} rules in the last 5m.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/prometheus/prometheusrulefailures"},
	{name: "PrometheusNotConnectedToAlertmanagers", severity: "warning", job: "prometheus-k8s", port: 9090,
		expr:    `max_over_time(prometheus_notifications_alertmanagers_discovered{job="prometheus-k8s",namespace="monitoring"}[5m]) < 1`,
		summary: "Prometheus is not connected to any Alertmanagers.",
		desc:    "Prometheus monitoring/{{pod}} is not connected to any Alertmanagers.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/prometheus/prometheusnotconnectedtoalertmanagers"},
	{name: "AlertmanagerFailedToSendAlerts", severity: "warning", job: "alertmanager-main", port: 9093,
		expr:    `(rate(alertmanager_notifications_failed_total{job="alertmanager-main",namespace="monitoring"}[5m]) / ignoring (reason) group_left rate(alertmanager_notifications_total{job="alertmanager-main",namespace="monitoring"}[5m])) > 0.01`,
		summary: "An Alertmanager instance failed to send notifications.",
		desc:    "Alertmanager monitoring/{{pod}} failed to send {{value}}% of notifications to webhook.",
		runbook: "https://runbooks.prometheus-operator.dev/runbooks/alertmanager/alertmanagerfailedtosendalerts"},
	{name: "PostgresqlDown", severity: "critical", job: "postgres-exporter", port: 9187,
		expr:    `pg_up == 0`,
		summary: "Postgresql down (instance {{instance}})",
		desc:    "Postgresql instance {{service}}-db is down.\n  VALUE = 0\n  LABELS = namespace={{namespace}} pod={{pod}}"},
	{name: "PostgresqlTooManyConnections", severity: "warning", job: "postgres-exporter", port: 9187,
		expr:    `sum by (instance, job, server) (pg_stat_activity_count) > min by (instance, job, server) (pg_settings_max_connections * 0.8)`,
		summary: "Postgresql too many connections (instance {{instance}})",
		desc:    "PostgreSQL instance {{service}}-db has too many connections (> 80%).\n  VALUE = {{value}}\n  LABELS = namespace={{namespace}} pod={{pod}}"},
	{name: "RedisOutOfConfiguredMaxmemory", severity: "warning", job: "redis-exporter", port: 9121,
		expr:    `redis_memory_used_bytes / redis_memory_max_bytes * 100 > 90 and on(instance) redis_memory_max_bytes > 0`,
		summary: "Redis out of configured maxmemory (instance {{instance}})",
		desc:    "Redis {{service}}-cache is running out of configured maxmemory (> 90%).\n  VALUE = {{value}}\n  LABELS = namespace={{namespace}} pod={{pod}}"},
	{name: "BlackboxProbeFailed", severity: "critical", job: "blackbox-exporter", port: 9115,
		expr:    `probe_success == 0`,
		summary: "Blackbox probe failed (instance {{instance}})",
		desc:    "Probe of https://{{service}}.example.com/healthz failed.\n  VALUE = 0\n  LABELS = namespace={{namespace}} service={{service}}"},
	{name: "BlackboxSslCertificateWillExpireSoon", severity: "warning", job: "blackbox-exporter", port: 9115,
		expr:    `3 <= round((last_over_time(probe_ssl_earliest_cert_expiry[10m]) - time()) / 86400, 0.1) < 20`,
		summary: "Blackbox SSL certificate will expire soon (instance {{instance}})",
		desc:    "SSL certificate of https://{{service}}.example.com expires in {{value}} days.\n  LABELS = namespace={{namespace}} service={{service}}"},
	{name: "KafkaConsumerGroupLagHigh", severity: "info", job: "kafka-exporter", port: 9308,
		expr:    `sum by (consumergroup, topic) (kafka_consumergroup_lag) > 10000`,
		summary: "Kafka consumer group {{service}} is lagging",
		desc:    "Consumer group {{service}} in namespace {{namespace}} is {{value}} messages behind on its topics."},
}

var services = []string{
	"orders", "payments", "checkout", "cart", "catalog", "search", "recommendations", "inventory", "shipping", "billing",
	"invoicing", "accounts", "auth", "users", "profile", "notifications", "email-sender", "sms-gateway", "push", "api-gateway",
	"frontend", "web", "mobile-bff", "pricing", "promotions", "reviews", "ratings", "media", "image-resizer", "uploads",
	"reporting", "analytics", "event-collector", "audit", "ledger", "fraud-detection", "risk", "kyc", "loyalty", "subscriptions",
	"scheduler", "workflow", "geo", "maps", "chat", "support", "tickets", "config-server", "feature-flags", "session-store",
}

var namespaces = []string{"shop", "payments", "identity", "platform", "data", "comms", "backoffice"}

// Label names of every generated alert, sorted as Alertmanager and
// encoding/json order them.
var labelNames = [...]string{"alertname", "instance", "job", "namespace", "pod", "service", "severity"}

const (
	lAlertname = iota
	lInstance
	lJob
	lNamespace
	lPod
	lService
	lSeverity
	numLabels
)

type alert struct {
	labels      [numLabels]string // values, in labelNames order
	annotations []annotation      // sorted by name
	rule        int               // index in rules
	startsAt    time.Time
	fingerprint string
}

type annotation struct{ name, value string }

func (a *alert) labelSet() model.LabelSet {
	ls := make(model.LabelSet, numLabels)
	for i, v := range a.labels {
		ls[model.LabelName(labelNames[i])] = model.LabelValue(v)
	}
	return ls
}

// population is the set of alerts a run cycles through. Alert i belongs to
// group i/perGroup, and request k sends group k mod groups, whole: so every
// payload holds perGroup alerts of one alertname, as Alertmanager groups by
// alertname, and the alerts repeat identically (same labels, annotations,
// startsAt, fingerprint) once the population has been gone through.
type population struct {
	format   string
	perGroup int
	unique   int // a multiple of perGroup
	groups   int
	seed     uint64
	base     time.Time // alerts started up to 6h before base
	expires  time.Time // endsAt of firing v2 alerts, as Prometheus sets it
	urls     []string  // generatorURL of each rule
}

func newPopulation(format string, perGroup, unique int, seed uint64, base time.Time) *population {
	groups := (unique + perGroup - 1) / perGroup
	base = base.UTC().Truncate(time.Millisecond)
	urls := make([]string, len(rules))
	for i, r := range rules {
		urls[i] = "http://prometheus-k8s-0.prometheus-operated.monitoring.svc:9090/graph?g0.expr=" +
			url.QueryEscape(r.expr) + "&g0.tab=1"
	}
	return &population{format: format, perGroup: perGroup, unique: groups * perGroup, groups: groups,
		seed: seed, base: base, expires: base.Add(24 * time.Hour), urls: urls}
}

// mix is splitmix64's finaliser: a cheap, well-spread hash of seed, index and salt.
func mix(seed, i, salt uint64) uint64 {
	z := seed ^ (i+1)*0x9e3779b97f4a7c15 ^ salt*0xbf58476d1ce4e5b9
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

const (
	saltRule = iota + 1
	saltService
	saltNode
	saltIP
	saltValue
	saltStart
	saltPod
)

// podAlphabet is the alphabet Kubernetes uses for generated name suffixes.
const podAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// podSuffix encodes n in podAlphabet, at least width characters: distinct n
// give distinct suffixes, which makes every alert's label set unique.
func podSuffix(dst []byte, n uint64, width int) []byte {
	var buf [16]byte
	i := len(buf)
	for n > 0 || len(buf)-i < width {
		i--
		buf[i] = podAlphabet[n%uint64(len(podAlphabet))]
		n /= uint64(len(podAlphabet))
	}
	return append(dst, buf[i:]...)
}

// podID maps alert indexes one to one onto pod suffix numbers that look
// random: an affine permutation of [0, 27^5) (the multiplier is prime to 3),
// with higher digits for indexes beyond.
func (p *population) podID(i int) uint64 {
	const m = 27 * 27 * 27 * 27 * 27
	u := uint64(i)
	return u/m*m + (u%m*5000011+mix(p.seed, 0, saltPod)%m)%m
}

// alert returns alert i of the population; the same i always gives the same alert.
func (p *population) alert(i int) alert {
	g := i / p.perGroup
	ri := int(mix(p.seed, uint64(g), saltRule) % uint64(len(rules)))
	r := &rules[ri]
	svc := int(mix(p.seed, uint64(i), saltService) % uint64(len(services)))
	service := services[svc]
	namespace := namespaces[svc%len(namespaces)]

	var a alert
	a.rule = ri
	a.labels[lAlertname] = r.name
	a.labels[lSeverity] = r.severity
	a.labels[lService] = service
	a.labels[lNamespace] = namespace
	a.labels[lJob] = r.job
	if r.job == "" {
		a.labels[lJob] = service
	}
	if r.node {
		n := mix(p.seed, uint64(i), saltNode) % 200
		a.labels[lInstance] = fmt.Sprintf("node-%03d.prod.internal:%d", n, r.port)
	} else {
		ip := mix(p.seed, uint64(i), saltIP)
		a.labels[lInstance] = fmt.Sprintf("10.%d.%d.%d:%d", 32+ip%32, (ip>>8)&0xff, 1+(ip>>16)%254, r.port)
	}
	// <service>-<replicaset hash>-<suffix>, like a Deployment's pod.
	pod := make([]byte, 0, len(service)+20)
	pod = append(pod, service...)
	pod = append(pod, '-')
	pod = podSuffix(pod, mix(p.seed, uint64(svc), saltService)%1e12, 9)
	pod = append(pod, '-')
	pod = podSuffix(pod, p.podID(i), 5)
	a.labels[lPod] = string(pod)

	v := mix(p.seed, uint64(i), saltValue)
	value := strconv.FormatFloat(float64(v%100000)/1000+1, 'f', 2, 64)
	a.annotations = make([]annotation, 0, 3)
	a.annotations = append(a.annotations, annotation{"description", expand(r.desc, &a, value)})
	if r.runbook != "" {
		a.annotations = append(a.annotations, annotation{"runbook_url", r.runbook})
	}
	a.annotations = append(a.annotations, annotation{"summary", expand(r.summary, &a, value)})

	ago := time.Duration(mix(p.seed, uint64(i), saltStart)%(6*3600*1000)) * time.Millisecond
	a.startsAt = p.base.Add(-ago)
	if p.format == formatWebhook {
		a.fingerprint = a.labelSet().Fingerprint().String()
	}
	return a
}

// expand fills a rule's annotation template.
func expand(tpl string, a *alert, value string) string {
	if !strings.Contains(tpl, "{{") {
		return tpl
	}
	var b strings.Builder
	b.Grow(len(tpl) + 64)
	for {
		i := strings.Index(tpl, "{{")
		if i < 0 {
			b.WriteString(tpl)
			return b.String()
		}
		j := strings.Index(tpl[i:], "}}")
		if j < 0 {
			b.WriteString(tpl)
			return b.String()
		}
		b.WriteString(tpl[:i])
		switch tpl[i+2 : i+j] {
		case "service":
			b.WriteString(a.labels[lService])
		case "namespace":
			b.WriteString(a.labels[lNamespace])
		case "pod":
			b.WriteString(a.labels[lPod])
		case "instance":
			b.WriteString(a.labels[lInstance])
		case "job":
			b.WriteString(a.labels[lJob])
		case "value":
			b.WriteString(value)
		default:
			b.WriteString(tpl[i : i+j+2])
		}
		tpl = tpl[i+j+2:]
	}
}

// appendBody appends the body of request k, and returns it with the number
// of alerts it holds.
func (p *population) appendBody(dst []byte, k int64) ([]byte, int) {
	g := int(k % int64(p.groups))
	alerts := make([]alert, p.perGroup)
	for j := range alerts {
		alerts[j] = p.alert(g*p.perGroup + j)
	}
	switch p.format {
	case formatWebhook:
		dst = p.appendWebhook(dst, alerts)
	case formatV2:
		dst = appendArray(dst, alerts, p.appendPostable)
	case formatEvents:
		if len(alerts) == 1 {
			dst = p.appendEvent(dst, &alerts[0])
			break
		}
		dst = appendArray(dst, alerts, p.appendEvent)
	}
	return dst, len(alerts)
}

// appendArray appends a JSON array of the alerts, each written by one.
func appendArray[A any](dst []byte, alerts []A, one func([]byte, *A) []byte) []byte {
	dst = append(dst, '[')
	for j := range alerts {
		if j > 0 {
			dst = append(dst, ',')
		}
		dst = one(dst, &alerts[j])
	}
	return append(dst, ']')
}

const (
	webhookReceiver = "triage"
	externalURL     = "http://alertmanager-main-0.alertmanager-operated.monitoring.svc:9093"
)

// appendWebhook appends an Alertmanager webhook payload (version 4) for one
// aggregation group, grouped by alertname.
func (p *population) appendWebhook(dst []byte, alerts []alert) []byte {
	name := alerts[0].labels[lAlertname]
	dst = append(dst, `{"receiver":`...)
	dst = appendString(dst, webhookReceiver)
	dst = append(dst, `,"status":"firing","alerts":[`...)
	for j := range alerts {
		a := &alerts[j]
		if j > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"status":"firing","labels":`...)
		dst = appendLabels(dst, a, nil)
		dst = append(dst, `,"annotations":`...)
		dst = appendAnnotations(dst, a.annotations, nil)
		dst = append(dst, `,"startsAt":`...)
		dst = appendTime(dst, a.startsAt)
		dst = append(dst, `,"endsAt":"0001-01-01T00:00:00Z","generatorURL":`...)
		dst = appendString(dst, p.urls[a.rule])
		dst = append(dst, `,"fingerprint":`...)
		dst = appendString(dst, a.fingerprint)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"groupLabels":{"alertname":`...)
	dst = appendString(dst, name)
	dst = append(dst, `},"commonLabels":`...)
	var common [numLabels]bool
	for l := range common {
		common[l] = true
		for j := 1; j < len(alerts); j++ {
			if alerts[j].labels[l] != alerts[0].labels[l] {
				common[l] = false
				break
			}
		}
	}
	dst = appendLabels(dst, &alerts[0], common[:])
	dst = append(dst, `,"commonAnnotations":`...)
	commonAnn := make([]bool, len(alerts[0].annotations))
	for n, an := range alerts[0].annotations {
		commonAnn[n] = true
		for j := 1; j < len(alerts) && commonAnn[n]; j++ {
			commonAnn[n] = false
			for _, other := range alerts[j].annotations {
				if other == an {
					commonAnn[n] = true
					break
				}
			}
		}
	}
	dst = appendAnnotations(dst, alerts[0].annotations, commonAnn)
	dst = append(dst, `,"externalURL":`...)
	dst = appendString(dst, externalURL)
	dst = append(dst, `,"version":"4","groupKey":`...)
	dst = appendString(dst, `{}:{alertname="`+name+`"}`)
	dst = append(dst, `,"truncatedAlerts":0}`...)
	return dst
}

// appendPostable appends one alert of Alertmanager's POST /api/v2/alerts
// body, as Prometheus sends it: a firing alert's endsAt is its expiry.
func (p *population) appendPostable(dst []byte, a *alert) []byte {
	dst = append(dst, `{"labels":`...)
	dst = appendLabels(dst, a, nil)
	dst = append(dst, `,"annotations":`...)
	dst = appendAnnotations(dst, a.annotations, nil)
	dst = append(dst, `,"startsAt":`...)
	dst = appendTime(dst, a.startsAt)
	dst = append(dst, `,"endsAt":`...)
	dst = appendTime(dst, p.expires)
	dst = append(dst, `,"generatorURL":`...)
	dst = appendString(dst, p.urls[a.rule])
	return append(dst, '}')
}

// appendEvent appends one generic event; the daemon computes its fingerprint.
func (p *population) appendEvent(dst []byte, a *alert) []byte {
	dst = append(dst, `{"source":"loadgen","status":"firing","labels":`...)
	dst = appendLabels(dst, a, nil)
	dst = append(dst, `,"annotations":`...)
	dst = appendAnnotations(dst, a.annotations, nil)
	dst = append(dst, `,"starts_at":`...)
	dst = appendTime(dst, a.startsAt)
	dst = append(dst, `,"generator_url":`...)
	dst = appendString(dst, p.urls[a.rule])
	return append(dst, '}')
}

// appendLabels appends a's labels as a JSON object, only those with keep[l]
// when keep is not nil.
func appendLabels(dst []byte, a *alert, keep []bool) []byte {
	dst = append(dst, '{')
	first := true
	for l, v := range a.labels {
		if keep != nil && !keep[l] {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, labelNames[l])
		dst = append(dst, ':')
		dst = appendString(dst, v)
	}
	return append(dst, '}')
}

func appendAnnotations(dst []byte, anns []annotation, keep []bool) []byte {
	dst = append(dst, '{')
	first := true
	for n, an := range anns {
		if keep != nil && !keep[n] {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, an.name)
		dst = append(dst, ':')
		dst = appendString(dst, an.value)
	}
	return append(dst, '}')
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// jsonEscape marks the ASCII bytes appendString escapes.
var jsonEscape = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&'
	}
	return t
}()

// appendString appends s as a JSON string, escaped as encoding/json does
// (generator URLs carry <, > and &).
func appendString(dst []byte, s string) []byte { return triage.AppendJSONString(dst, s) }
