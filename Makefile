# destination-kinesis: build, test, demo, lint.
# Every target installs what it needs (the pinned kinesis-local emulator from npm).

SHELL := /bin/bash
KINESIS_LOCAL_VERSION := 0.6.2
KL_DIR := .cache/kinesis-local
KL_MAIN := $(KL_DIR)/node_modules/kinesis-local/main.js
BIN := target/release/destination-kinesis
# The static binaries, by Docker's platform names (`make image-<arch>` puts each in
# the image of its platform).
RUST_TARGET_amd64 := x86_64-unknown-linux-musl
RUST_TARGET_arm64 := aarch64-unknown-linux-musl
STATIC_BIN_amd64 := target/$(RUST_TARGET_amd64)/release/destination-kinesis
STATIC_BIN_arm64 := target/$(RUST_TARGET_arm64)/release/destination-kinesis
STATIC_MAX_BYTES := 6291456
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# Another build on the machine may be installing at the same moment: wait for dpkg's
# lock rather than fail.
APT_INSTALL := apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends

.PHONY: build test demo emulator pyairbyte lint kinesis-local static static-amd64 static-arm64 image image-amd64 image-arm64 \
	busybox-amd64 busybox-arm64 buildah dist qemu openssl bench bench-baseline soak

build:
	cargo build --release

# The emulator the end-to-end tests and the demo run against.
kinesis-local: $(KL_MAIN)
$(KL_MAIN):
	@command -v npm >/dev/null || { echo "npm is needed to install kinesis-local (apt-get install nodejs npm)"; exit 1; }
	mkdir -p $(KL_DIR)
	npm install --no-audit --no-fund --prefix $(KL_DIR) kinesis-local@$(KINESIS_LOCAL_VERSION)

# Static, stripped binaries that run alone (empty root, FROM scratch image), one per
# image platform. ring compiles C, so each needs a C compiler for its target.
static: static-amd64 static-arm64

# Fails when file $(1) is over $(2) bytes.
check_size = size=$$(stat -c %s $(1)); echo "$(1): $$size bytes"; \
	test $$size -le $(2) || { echo "$(1): over $(2) bytes"; exit 1; }

static-amd64:
	@rustup target list --installed | grep -qx $(RUST_TARGET_amd64) || rustup target add $(RUST_TARGET_amd64)
	@command -v musl-gcc >/dev/null || { apt-get update -qq && $(APT_INSTALL) musl-tools; }
	CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --target $(RUST_TARGET_amd64)
	@$(call check_size,$(STATIC_BIN_amd64),$(STATIC_MAX_BYTES))

# Debian's aarch64 cross gcc compiles ring's C and assembly and drives the link. Its
# glibc headers are enough for ring (string.h and the like; only a recommendation of
# the compiler's package, hence named); the musl C library and start files linked in
# are the ones rustup ships with the target.
static-arm64:
	@rustup target list --installed | grep -qx $(RUST_TARGET_arm64) || rustup target add $(RUST_TARGET_arm64)
	@{ command -v aarch64-linux-gnu-gcc && test -e /usr/aarch64-linux-gnu/include/string.h; } >/dev/null || \
	  { apt-get update -qq && $(APT_INSTALL) gcc-aarch64-linux-gnu libc6-dev-arm64-cross; }
	CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar \
	  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc \
	  cargo build --release --target $(RUST_TARGET_arm64)
	@$(call check_size,$(STATIC_BIN_arm64),$(STATIC_MAX_BYTES))

# The static shell the image of each platform carries for Airbyte's launcher: busybox
# from Debian's busybox-static package of that architecture, downloaded and unpacked
# (not installed) with package lists of its own in .cache/busybox/<arch>/, so the
# machine's apt set-up stays as it is and no emulator runs for arm64.
BUSYBOX_amd64 := .cache/busybox/amd64/busybox
BUSYBOX_arm64 := .cache/busybox/arm64/busybox
busybox-amd64 busybox-arm64: busybox-%: .cache/busybox/%/busybox
.cache/busybox/%/busybox:
	@{ command -v apt-get && command -v dpkg-deb; } >/dev/null || { echo "apt-get and dpkg-deb fetch Debian's busybox-static"; exit 1; }
	@set -euo pipefail; dir=$(abspath $(@D)); rm -rf $$dir; mkdir -p $$dir/lists/partial $$dir/cache; \
	apt="apt-get -qq -o Dir::State::Lists=$$dir/lists -o Dir::Cache=$$dir/cache -o APT::Sandbox::User=root \
	  -o APT::Architecture=$* -o APT::Architectures::=$*"; \
	$$apt update; (cd $$dir && $$apt download busybox-static:$*); \
	dpkg-deb -x $$dir/busybox-static_*_$*.deb $$dir/unpacked; \
	cp $$dir/unpacked/bin/busybox $@; rm -rf $$dir/lists $$dir/cache $$dir/unpacked $$dir/*.deb

# tests/network.rs makes self-signed certificates with it.
openssl:
	@command -v openssl >/dev/null || { apt-get update -qq && $(APT_INSTALL) openssl; }

# A static user-mode emulator, so the empty-root test runs the arm64 binary on x86-64:
# being static, it is copied into the empty root next to the binary.
qemu:
	@command -v qemu-aarch64-static >/dev/null || { apt-get update -qq && $(APT_INSTALL) qemu-user-static; }

# The FROM scratch image for Airbyte, one archive per platform that `docker load` and
# `podman load` take: dist/destination-kinesis-<version>-linux-<arch>.tar, tagged
# airbyte/destination-kinesis:<version> (its io.airbyte.version label). The Dockerfile
# builds it from the context staged in .cache/image/<arch>/: the static binary, busybox
# as /bin/sh, an empty /airbyte. With docker where a daemon answers (BuildKit), else
# with buildah (rootless-capable, chroot isolation, vfs storage of its own in
# .cache/buildah; installed from Debian when missing). Nothing is pulled.
IMAGE := airbyte/destination-kinesis:$(VERSION)
IMAGE_ARCHIVE_amd64 := dist/destination-kinesis-$(VERSION)-linux-amd64.tar
IMAGE_ARCHIVE_arm64 := dist/destination-kinesis-$(VERSION)-linux-arm64.tar
IMAGE_MAX_BYTES := 10000000
IMAGE_CONTEXT := .cache/image
BUILDAH := buildah --root $(abspath .cache/buildah)/root --runroot $(abspath .cache/buildah)/run --storage-driver vfs

buildah:
	@command -v buildah >/dev/null || { apt-get update -qq && $(APT_INSTALL) buildah; }

image: image-amd64 image-arm64

image-amd64 image-arm64: image-%: static-% busybox-%
	@set -euo pipefail; ctx=$(IMAGE_CONTEXT)/$*; archive=$(IMAGE_ARCHIVE_$*); \
	rm -rf $$ctx $$archive; mkdir -p $$ctx/airbyte dist; \
	cp $(STATIC_BIN_$*) $$ctx/destination-kinesis; cp $(BUSYBOX_$*) $$ctx/sh; \
	if command -v docker >/dev/null && docker info >/dev/null 2>&1; then \
	  echo "== docker build, linux/$*"; \
	  docker build -q --platform linux/$* --build-arg VERSION=$(VERSION) -t $(IMAGE) -f Dockerfile $(IMAGE_CONTEXT); \
	  docker save -o $$archive $(IMAGE); \
	else \
	  echo "== buildah build (no docker daemon answers), linux/$*"; \
	  $(MAKE) -s buildah; \
	  $(BUILDAH) bud -q --isolation chroot --platform linux/$* --build-arg VERSION=$(VERSION) \
	    -t docker.io/$(IMAGE) -f Dockerfile $(IMAGE_CONTEXT) >/dev/null; \
	  $(BUILDAH) push -q docker.io/$(IMAGE) docker-archive:$$archive:$(IMAGE); \
	  $(BUILDAH) rmi -f docker.io/$(IMAGE) >/dev/null; \
	fi; \
	$(call check_size,$$archive,$(IMAGE_MAX_BYTES))

# Both images, and beside them the static binaries as tarballs (with the README,
# LICENSE and CHANGELOG.md, as Rust projects ship them) and SHA256SUMS of it all.
dist_tarball = name=destination-kinesis-$(VERSION)-$(RUST_TARGET_$(1)); rm -rf dist/$$name; mkdir -p dist/$$name; \
	cp $(STATIC_BIN_$(1)) README.md LICENSE CHANGELOG.md dist/$$name/; \
	tar -czf dist/$$name.tar.gz --owner=0 --group=0 --numeric-owner --sort=name -C dist $$name; rm -rf dist/$$name;
dist: image
	@set -euo pipefail; $(foreach arch,amd64 arm64,$(call dist_tarball,$(arch))) \
	cd dist && sha256sum destination-kinesis-$(VERSION)-*.tar destination-kinesis-$(VERSION)-*.tar.gz > SHA256SUMS; \
	ls -l; cat SHA256SUMS

# The integration tests are one binary (tests/tests.rs); among them the benchmark's
# smoke run (bench::smoke: its sink, feed and checks agree), not the benchmark itself.
# The static binaries are built first (-k: one platform's failure does not stop the
# other's build): tests/static_binary.rs runs each in an empty root, arm64 under qemu.
# Where a platform's Rust target, cross compiler or qemu cannot be installed, its test
# says so (SKIPPED) and passes; any other failure of `make static` fails it.
test: $(KL_MAIN) openssl
	@$(MAKE) -s -k static qemu || echo "make static or qemu failed; tests/static_binary.rs reports why"
	mkdir -p .cache
	cargo test --all-targets 2>&1 | tee .cache/test.log; test $${PIPESTATUS[0]} -eq 0

# kinesis-local's settings, its plain (http) port $(1) and TLS port $(2).
kinesis_local_env = KINESIS_MOCK_PLAIN_PORT=$(1) KINESIS_MOCK_TLS_PORT=$(2) \
  KINESIS_MOCK_CERT_PATH=$(abspath $(KL_DIR))/node_modules/kinesis-local/server.json \
  CREATE_STREAM_DURATION=100ms SHOULD_PERSIST_DATA=false LOG_LEVEL=ERROR

# Starts kinesis-local in the background on a free loopback port, in a recipe's
# shell: sets $$port and $$tmp (a temporary directory with its log), and stops it
# and removes $$tmp when the shell exits.
define start_kinesis_local
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }; \
port=$$(free_port); tls_port=$$(free_port); tmp=$$(mktemp -d); \
$(call kinesis_local_env,$$port,$$tls_port) node $(KL_MAIN) > $$tmp/kinesis-local.log 2>&1 & pid=$$!; \
trap 'kill $$pid 2>/dev/null; rm -rf $$tmp' EXIT; \
for i in $$(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/$$port) 2>/dev/null && break; sleep 0.1; done
endef

# The README's quick start: kinesis-local in the foreground on http://localhost:4566
# (LocalStack's port; https on 4567), until interrupted.
EMULATOR_PORT ?= 4566
EMULATOR_TLS_PORT ?= 4567
emulator: $(KL_MAIN)
	@echo "kinesis-local on http://localhost:$(EMULATOR_PORT) (Ctrl-C stops it)"
	@$(call kinesis_local_env,$(EMULATOR_PORT),$(EMULATOR_TLS_PORT)) exec node $(KL_MAIN)

# The fixtures end to end: kinesis-local on a free loopback port, fixtures/messages.jsonl
# written with `write` (fixtures/config.json pointed at it), every Kinesis stream read back.
DEMO_STREAMS := public_users archive_users Ventes_Ete_Cafe_Orders _events
demo: build $(KL_MAIN)
	@set -euo pipefail; \
	$(start_kinesis_local); \
	sed "s#http://localhost:4566#http://127.0.0.1:$$port#" fixtures/config.json > $$tmp/config.json; \
	export AWS_EC2_METADATA_DISABLED=true; \
	echo "== kinesis-local on http://127.0.0.1:$$port; write fixtures/messages.jsonl (stdout: Airbyte messages)"; \
	$(BIN) write --config $$tmp/config.json --catalog fixtures/catalog.json < fixtures/messages.jsonl; \
	for s in $(DEMO_STREAMS); do \
	  echo "== read --stream $$s"; \
	  $(BIN) read --config $$tmp/config.json --stream $$s; \
	done

# A real client end to end (not part of `make test`: it installs from PyPI and takes
# minutes cold): PyAirbyte drives source-faker into the release binary against
# kinesis-local, with PyAirbyte's defaults and with write_strategy="replace", each in
# its own project directory; tests/pyairbyte/run.py reads the streams back with `read`.
# PyAirbyte and source-faker pin conflicting airbyte-cdk versions: one virtualenv each.
PYAIRBYTE_VERSION := 0.71.3
SOURCE_FAKER_VERSION := 7.2.1
PYAIRBYTE_VENV := .cache/pyairbyte-venv
FAKER_VENV := .cache/source-faker-venv
PYAIRBYTE_STAMP := $(PYAIRBYTE_VENV)/airbyte-$(PYAIRBYTE_VERSION)
FAKER_STAMP := $(FAKER_VENV)/airbyte-source-faker-$(SOURCE_FAKER_VERSION)
# A virtualenv ($(1)) with one pinned package ($(2)); python3-venv comes from Debian when missing.
define make_venv
@command -v python3 >/dev/null || { echo "python3 is needed for $(2)"; exit 1; }
python3 -m venv $(1) || { apt-get update -qq && $(APT_INSTALL) python3-venv && python3 -m venv $(1); }
$(1)/bin/pip install --quiet --disable-pip-version-check $(2)
touch $@
endef
$(PYAIRBYTE_STAMP):
	$(call make_venv,$(PYAIRBYTE_VENV),airbyte==$(PYAIRBYTE_VERSION))
$(FAKER_STAMP):
	$(call make_venv,$(FAKER_VENV),airbyte-source-faker==$(SOURCE_FAKER_VERSION))

pyairbyte: build $(KL_MAIN) $(PYAIRBYTE_STAMP) $(FAKER_STAMP)
	@set -euo pipefail; \
	$(start_kinesis_local); \
	export DO_NOT_TRACK=1 AIRBYTE_OFFLINE_MODE=1 NO_LIVE_PROGRESS=1 AWS_EC2_METADATA_DISABLED=true \
	  KINESIS_ENDPOINT=http://127.0.0.1:$$port DEST_BIN=$(abspath $(BIN)) \
	  SOURCE_FAKER=$(abspath $(FAKER_VENV))/bin/source-faker; \
	for scenario in defaults replace; do \
	  mkdir -p $$tmp/$$scenario; \
	  (cd $$tmp/$$scenario && AIRBYTE_PROJECT_DIR=$$tmp/$$scenario \
	    $(abspath $(PYAIRBYTE_VENV))/bin/python $(abspath tests/pyairbyte/run.py) $$scenario); \
	done; \
	echo "pyairbyte: OK"

# A long write of the release binary into shards with real limits behind the
# fault proxy (tests/soak.rs; not part of `make test`): SOAK_SECONDS of input
# (30 minutes) at SOAK_RATE records a second into shards another producer
# takes SOAK_OTHER_PRODUCER percent of, then its checks and figures.
SOAK_SECONDS ?= 1800
SOAK_RATE ?= 1000
SOAK_OTHER_PRODUCER ?= 25
export SOAK_SECONDS SOAK_RATE SOAK_OTHER_PRODUCER
soak:
	cargo test --release --test integration -- --ignored --exact --nocapture soak::soak

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

# Benchmark sizes: `make bench BENCH_RECORDS=200000`. BENCH_RSS_RECORDS=0 skips the
# 10-million-record memory run; BENCH_KL_RECORDS=0 skips kinesis-local. The other
# sections' knobs (BENCH_COMPARE_REPEAT, BENCH_MANY_*, BENCH_CATALOG_*, BENCH_SHARD_*,
# BENCH_KKO_*) are environment variables listed in docs/development.md; make passes them on.
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
	$(call make_venv,$(BENCH_VENV),boto3==$(BOTO3_VERSION))

# The release to compare with in the same run (before/after tables); empty skips them.
# Its release binary is built once, from `git archive` of that commit (no worktree is
# registered in the shared repository) with its own target dir, and only the binary is
# kept: .cache/baseline/<commit>/destination-kinesis.
BENCH_BASELINE ?= 08e31a7
BASELINE_ROOT := .cache/baseline

# The baseline binary's path (bench-baseline builds it), or nothing.
baseline_bin = $(if $(strip $(BENCH_BASELINE)),$(abspath $(BASELINE_ROOT))/$(shell \
	git rev-parse --verify --quiet '$(BENCH_BASELINE)^{commit}')/destination-kinesis)

bench-baseline:
	@set -euo pipefail; test -n "$(strip $(BENCH_BASELINE))" || exit 0; \
	rev=$$(git rev-parse --verify --quiet '$(BENCH_BASELINE)^{commit}') || { echo "BENCH_BASELINE=$(BENCH_BASELINE) is no commit"; exit 1; }; \
	dir=$(BASELINE_ROOT)/$$rev; test -x $$dir/destination-kinesis && exit 0; \
	echo "== building the baseline $$rev into $$dir (once)"; \
	rm -rf $$dir/src $$dir/target; mkdir -p $$dir/src; \
	git archive $$rev | tar -x -C $$dir/src; \
	cargo build --release --locked --bin destination-kinesis \
	  --manifest-path $$dir/src/Cargo.toml --target-dir $$dir/target; \
	cp $$dir/target/release/destination-kinesis $$dir/destination-kinesis; \
	rm -rf $$dir/src $$dir/target

# Release binary against the benchmark's loopback Kinesis sink, next to the boto3 peer
# and the baseline: the ignored test bench::benchmark (tests/bench/), in a release build
# of the tests. The output is also kept in .cache/bench.md. BENCH_ONLY=shards (or a
# comma-separated list of sections, see docs/development.md) runs only those.
bench: $(KL_MAIN) $(BENCH_BOTO3) bench-baseline
	mkdir -p .cache
	BENCH_PYTHON=$(abspath $(BENCH_VENV))/bin/python BENCH_BASELINE_BIN=$(baseline_bin) \
	  BENCH_BASELINE_REV=$(BENCH_BASELINE) \
	  cargo test --release --test integration -- --ignored --exact --nocapture bench::benchmark 2>&1 \
	  | tee .cache/bench.md; test $${PIPESTATUS[0]} -eq 0
