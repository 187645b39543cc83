# destination-kinesis: build, test, demo, lint.
# Every target installs what it needs (the pinned kinesis-local emulator from npm).

SHELL := /bin/bash
KINESIS_LOCAL_VERSION := 0.6.2
KL_DIR := .cache/kinesis-local
KL_MAIN := $(KL_DIR)/node_modules/kinesis-local/main.js
BIN := target/release/destination-kinesis

.PHONY: build test demo lint kinesis-local

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
