# destination-kinesis: build, test, demo, lint.
# Every target installs what it needs (the pinned kinesis-local emulator from npm).

SHELL := /bin/bash
KINESIS_LOCAL_VERSION := 0.6.2
KL_DIR := .cache/kinesis-local
KL_MAIN := $(KL_DIR)/node_modules/kinesis-local/main.js
BIN := target/release/destination-kinesis
MUSL_TARGET := x86_64-unknown-linux-musl
STATIC_BIN := target/$(MUSL_TARGET)/release/destination-kinesis
STATIC_MAX_BYTES := 6291456
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

.PHONY: build test demo lint kinesis-local static image busybox openssl bench

build:
	cargo build --release

# The emulator the end-to-end tests and the demo run against.
kinesis-local: $(KL_MAIN)
$(KL_MAIN):
	@command -v npm >/dev/null || { echo "npm is needed to install kinesis-local (apt-get install nodejs npm)"; exit 1; }
	mkdir -p $(KL_DIR)
	npm install --no-audit --no-fund --prefix $(KL_DIR) kinesis-local@$(KINESIS_LOCAL_VERSION)

# A static, stripped x86-64 binary that runs alone (empty root, FROM scratch image).
# ring compiles C, so the musl C compiler is needed too.
static:
	@rustup target list --installed | grep -qx $(MUSL_TARGET) || rustup target add $(MUSL_TARGET)
	@command -v musl-gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq musl-tools; }
	CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --target $(MUSL_TARGET)
	@size=$$(stat -c %s $(STATIC_BIN)); echo "$(STATIC_BIN): $$size bytes"; \
	  test $$size -le $(STATIC_MAX_BYTES) || { echo "static binary over $(STATIC_MAX_BYTES) bytes"; exit 1; }

# The static shell the image carries for Airbyte's launcher (the empty-root test uses it).
busybox:
	@test -x /bin/busybox || { apt-get update -qq && apt-get install -y -qq busybox-static; }

# tests/network.rs makes self-signed certificates with it.
openssl:
	@command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl; }

# The FROM scratch image for Airbyte (needs docker, which CI does not have).
image: static
	docker build -t airbyte/destination-kinesis:$(VERSION) .

# --all-targets also runs the benchmark's smoke run (tests/bench: its sink, feed and
# checks agree), not the benchmark itself.
# The static binary is built first: tests/static_binary.rs runs it in an empty root.
# Where the musl target cannot be installed (rustup cannot download), that test
# says so and is skipped; any other failure of `make static` fails it.
test: $(KL_MAIN) busybox openssl
	@$(MAKE) -s static || echo "make static failed; tests/static_binary.rs reports why"
	mkdir -p .cache
	cargo test --all-targets 2>&1 | tee .cache/test.log; test $${PIPESTATUS[0]} -eq 0

# The fixtures end to end: kinesis-local on a free loopback port, fixtures/messages.jsonl
# written with `write` (fixtures/config.json pointed at it), every Kinesis stream read back.
DEMO_STREAMS := public_users archive_users Ventes_Ete_Cafe_Orders _events
demo: build $(KL_MAIN)
	@set -euo pipefail; \
	free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }; \
	port=$$(free_port); tls_port=$$(free_port); tmp=$$(mktemp -d); \
	KINESIS_MOCK_PLAIN_PORT=$$port KINESIS_MOCK_TLS_PORT=$$tls_port \
	  KINESIS_MOCK_CERT_PATH=$(abspath $(KL_DIR))/node_modules/kinesis-local/server.json \
	  CREATE_STREAM_DURATION=100ms SHOULD_PERSIST_DATA=false LOG_LEVEL=ERROR \
	  node $(KL_MAIN) > $$tmp/kinesis-local.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; rm -rf $$tmp' EXIT; \
	for i in $$(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/$$port) 2>/dev/null && break; sleep 0.1; done; \
	sed "s#http://localhost:4566#http://127.0.0.1:$$port#" fixtures/config.json > $$tmp/config.json; \
	export AWS_EC2_METADATA_DISABLED=true; \
	echo "== kinesis-local on http://127.0.0.1:$$port; write fixtures/messages.jsonl (stdout: Airbyte messages)"; \
	$(BIN) write --config $$tmp/config.json --catalog fixtures/catalog.json < fixtures/messages.jsonl; \
	for s in $(DEMO_STREAMS); do \
	  echo "== read --stream $$s"; \
	  $(BIN) read --config $$tmp/config.json --stream $$s; \
	done

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

# Benchmark sizes: `make bench BENCH_RECORDS=200000`. BENCH_RSS_RECORDS=0 skips the
# 10-million-record memory run; BENCH_KL_RECORDS=0 skips kinesis-local.
BENCH_RECORDS ?= 1000000
BENCH_SIZE ?= 200
BENCH_STREAMS ?= 4
BENCH_STATE_EVERY ?= 10000
BENCH_PEER_RECORDS ?= $(BENCH_RECORDS)
BENCH_LARGE_RECORDS ?= 20000
BENCH_LARGE_SIZE ?= 51200
BENCH_RTT_MS ?= 20
BENCH_RTT_RECORDS ?= 200000
BENCH_IN_FLIGHT ?= 8
BENCH_RSS_RECORDS ?= 10000000
BENCH_KL_RECORDS ?= 5000
export BENCH_RECORDS BENCH_SIZE BENCH_STREAMS BENCH_STATE_EVERY BENCH_PEER_RECORDS \
	BENCH_LARGE_RECORDS BENCH_LARGE_SIZE BENCH_RTT_MS BENCH_RTT_RECORDS BENCH_IN_FLIGHT \
	BENCH_RSS_RECORDS BENCH_KL_RECORDS

# The Python peer the benchmark compares with, in its own virtualenv.
BOTO3_VERSION := 1.44.8
BENCH_VENV := .cache/bench-venv
BENCH_BOTO3 := $(BENCH_VENV)/boto3-$(BOTO3_VERSION)
$(BENCH_BOTO3):
	@command -v python3 >/dev/null || { echo "python3 is needed for the boto3 peer"; exit 1; }
	python3 -m venv $(BENCH_VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv $(BENCH_VENV); }
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check boto3==$(BOTO3_VERSION)
	touch $@

# Release binary against the benchmark's loopback Kinesis sink, next to the boto3 peer;
# the table is also kept in .cache/bench.md.
bench: $(KL_MAIN) $(BENCH_BOTO3)
	mkdir -p .cache
	BENCH_PYTHON=$(abspath $(BENCH_VENV))/bin/python cargo bench --bench throughput 2>&1 | tee .cache/bench.md; test $${PIPESTATUS[0]} -eq 0
