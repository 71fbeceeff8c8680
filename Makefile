# Triage developer tasks. `make test` is the test command CI runs.
GO ?= go

.PHONY: test vet fmt-check unit fuzz-smoke build services bench

## test: everything CI runs: services, format, vet, race tests, a short fuzz of each decoder
test: services fmt-check vet unit fuzz-smoke

build:
	$(GO) build -o bin/triage ./cmd/triage

## services: build or start what the integration tests need (cached between runs).
## Without TRIAGE_REQUIRE_SERVICES=1 a service that cannot start only makes its tests skip.
services:
	@deploy/dev/alertmanager.sh build || [ "$$TRIAGE_REQUIRE_SERVICES" != 1 ]
	@deploy/dev/kafka.sh start || [ "$$TRIAGE_REQUIRE_SERVICES" != 1 ]
	@deploy/dev/clickhouse.sh start || [ "$$TRIAGE_REQUIRE_SERVICES" != 1 ]
	@# chdb (a current ClickHouse engine) checks the schema and dashboard queries too; best effort.
	@python3 -c 'import chdb' 2>/dev/null || timeout 600 python3 -m pip install -q chdb >/dev/null 2>&1 || echo "chdb not installed: its checks skip"

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	if deploy/dev/kafka.sh status >/dev/null 2>&1; then eval "$$(deploy/dev/kafka.sh env)"; fi; \
	if deploy/dev/clickhouse.sh status >/dev/null 2>&1; then eval "$$(deploy/dev/clickhouse.sh env)"; fi; \
	ALERTMANAGER_BIN=$$(deploy/dev/alertmanager.sh path) $(GO) test -race -count=1 ./...

# Budgets are execution counts, about 10 s of fuzzing each on the quiet 2-core dev machine: with a
# duration, Go 1.26's fuzz coordinator can report "context deadline exceeded" as a failure when
# the time runs out mid-input (golang/go#75804, fixed in Go 1.27).
fuzz-smoke:
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeWebhook$$' -fuzztime=180000x ./ingest
	$(GO) test -run='^$$' -fuzz='^FuzzDecodePostableAlerts$$' -fuzztime=30000x ./ingest
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeEvents$$' -fuzztime=36000x ./ingest
	$(GO) test -run='^$$' -fuzz='^FuzzFastPathMatchesStrict$$' -fuzztime=18000x ./ingest
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeRecord$$' -fuzztime=180000x ./correlate
	$(GO) test -run='^$$' -fuzz='^FuzzAppendJSONMatchesMarshal$$' -fuzztime=18000x .
	$(GO) test -run='^$$' -fuzz='^FuzzParseTopology$$' -fuzztime=24000x ./correlate
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=200x ./rules
	$(GO) test -run='^$$' -fuzz='^FuzzMine$$' -fuzztime=150000x ./ingest/logs
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=120000x ./ingest/logs
	$(GO) test -run='^$$' -fuzz='^FuzzCalendar$$' -fuzztime=60000x ./metrics/sla

## bench: Triage side by side with a real Alertmanager, a load sweep and plot, Kafka and
## correlation-core benchmarks; results in bench-results/<date> (see BENCHMARKS.md). Not part of test.
bench:
	deploy/bench/run.sh
