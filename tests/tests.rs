//! The integration tests, one crate and one test binary (`cargo test --test
//! integration`): a module per file of tests/, grouped by area below, and the
//! harness they share, `support` (tests/support/), compiled once. Each runs the built
//! binary against kinesis-local, the fault-injecting stand-in or the
//! benchmark's shard sink. `cargo test --test integration faults::` runs one
//! file's tests. The ignored tests are the long runs: `soak::soak` (`make
//! soak`), `bench::benchmark` (`make bench`) and `roundtrip_props::long_run`.

mod support;

// `write`, `check` and `spec`: what Airbyte sends and what lands.
mod aggregation;
mod airbyte_platform;
mod bad_input;
mod large_records;
mod roundtrip_props;
mod routing;
mod write_e2e;

// The engine under faults, signals, slow answers and shards with real limits.
mod engine_edges;
mod faults;
mod hardening;
mod in_flight;
mod shard_aware;
mod soak;

// The pipeline commands: `put`, `read`, `list`, `describe`.
mod cli_e2e;
mod cli_habits;
mod list_describe;
mod put_input;
mod read_flags;
mod stream_arns;

// AWS: credentials, roles, signatures, TLS and proxies.
mod assume_role;
mod credentials;
mod network;
mod sigv4;

// What ships: the static binaries, the image, the release files.
mod image;
mod release_files;
mod static_binary;

// The benchmark (`make bench`) and its smoke run; its shard sink serves tests too.
mod bench;
