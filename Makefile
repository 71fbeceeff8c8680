# Triage developer tasks. `make test` is the test command CI runs.
GO ?= go
FUZZTIME ?= 10s

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

fuzz-smoke:
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeWebhook$$' -fuzztime=$(FUZZTIME) ./ingest
	$(GO) test -run='^$$' -fuzz='^FuzzDecodePostableAlerts$$' -fuzztime=$(FUZZTIME) ./ingest
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeEvents$$' -fuzztime=$(FUZZTIME) ./ingest
	$(GO) test -run='^$$' -fuzz='^FuzzFastPathMatchesStrict$$' -fuzztime=$(FUZZTIME) ./ingest
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeRecord$$' -fuzztime=5s ./correlate
	$(GO) test -run='^$$' -fuzz='^FuzzAppendJSONMatchesMarshal$$' -fuzztime=5s .
	$(GO) test -run='^$$' -fuzz='^FuzzParseTopology$$' -fuzztime=$(FUZZTIME) ./correlate
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./rules
	$(GO) test -run='^$$' -fuzz='^FuzzMine$$' -fuzztime=$(FUZZTIME) ./ingest/logs
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=5s ./ingest/logs
	$(GO) test -run='^$$' -fuzz='^FuzzCalendar$$' -fuzztime=5s ./metrics/sla

## bench: Triage side by side with a real Alertmanager, a load sweep and plot, Kafka and
## correlation-core benchmarks; results in bench-results/<date> (see BENCHMARKS.md). Not part of test.
bench:
	deploy/bench/run.sh
