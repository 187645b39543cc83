# destination-kinesis: build, test, demo, lint.
# Every target installs what it needs (the pinned kinesis-local emulator from npm).

SHELL := /bin/bash
KINESIS_LOCAL_VERSION := 0.6.2
KL_DIR := .cache/kinesis-local
KL_MAIN := $(KL_DIR)/node_modules/kinesis-local/main.js
BIN := target/release/destination-kinesis

.PHONY: build test demo lint kinesis-local bench

build:
	cargo build --release

# The emulator the end-to-end tests and the demo run against.
kinesis-local: $(KL_MAIN)
$(KL_MAIN):
	@command -v npm >/dev/null || { echo "npm is needed to install kinesis-local (apt-get install nodejs npm)"; exit 1; }
	mkdir -p $(KL_DIR)
	npm install --no-audit --no-fund --prefix $(KL_DIR) kinesis-local@$(KINESIS_LOCAL_VERSION)

test: $(KL_MAIN)
	mkdir -p .cache
	cargo test 2>&1 | tee .cache/test.log; test $${PIPESTATUS[0]} -eq 0

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
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check boto3==$(BOTO3_VERSION)
	touch $@

# Release binary against the benchmark's loopback Kinesis sink, next to the boto3 peer;
# the table is also kept in .cache/bench.md.
bench: $(KL_MAIN) $(BENCH_BOTO3)
	mkdir -p .cache
	BENCH_PYTHON=$(abspath $(BENCH_VENV))/bin/python cargo bench --bench throughput 2>&1 | tee .cache/bench.md; test $${PIPESTATUS[0]} -eq 0
