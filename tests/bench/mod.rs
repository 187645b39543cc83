//! `make bench`: throughput, CPU and memory of the release binary against a
//! loopback Kinesis sink owned by the benchmark, next to a Python boto3 peer
//! doing the same job in the same run; latency hiding with a simulated round
//! trip; the cost of `keepKeyOrder`; KPL aggregation into kinesis-local; the
//! release binary against a baseline build in the same run (`compare`); many
//! streams and large catalogs (`many_streams`); shards with real limits
//! (`shard_scenarios`).
//!
//! The benchmark is the ignored test `bench::benchmark`, which `make bench`
//! runs in a release build; sizes come from the environment (see the
//! Makefile's `bench` target), and `BENCH_ONLY` picks sections. `make test`
//! runs `bench::smoke`, a small run that checks the figures add up.

mod compare;
mod feed;
mod loopback;
mod many_streams;
mod real_latency;
mod shard_scenarios;
pub mod shard_sink;
mod sink;

use crate::support;
use destination_kinesis::kinesis::aggregate::deaggregate;
use destination_kinesis::kinesis::NewStream;
use feed::Feed;
use serde_json::{json, Value};
use sink::{Seen, Sink};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{KinesisLocal, TempDir};

/// What one run of a writer took.
#[derive(Debug, Clone)]
struct Outcome {
    label: String,
    feed: Feed,
    input_bytes: u64,
    wall: Duration,
    cpu: Duration,
    max_rss_kb: u64,
    seen: Seen,
    states: u64,
    ok: bool,
    note: String,
}

impl Outcome {
    fn records_per_s(&self) -> f64 {
        self.feed.records as f64 / self.wall.as_secs_f64()
    }
    fn mb_per_s(&self) -> f64 {
        self.input_bytes as f64 / 1e6 / self.wall.as_secs_f64()
    }
    fn cpu_per_million(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.feed.records as f64
    }
    fn rss_mb(&self) -> f64 {
        self.max_rss_kb as f64 / 1024.0
    }
    fn entries_per_call(&self) -> f64 {
        self.seen.entries as f64 / self.seen.calls.max(1) as f64
    }

    fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {:.0} | {:.1} | {:.2} | {:.1} | {} | {:.1} |{}",
            self.label,
            self.feed.records,
            self.feed.size,
            self.records_per_s(),
            self.mb_per_s(),
            self.cpu_per_million(),
            self.rss_mb(),
            self.seen.calls,
            self.entries_per_call(),
            if self.ok {
                String::new()
            } else {
                format!(" FAILED: {}", self.note)
            }
        )
    }
}

const HEADER: &str = "| run | records | data bytes | records/s | input MB/s | CPU s per 1M records | peak RSS MiB | PutRecords calls | entries/call |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A comma-separated list of numbers from the environment, or `default`.
fn env_list(name: &str, default: &[u64]) -> Vec<u64> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|n| {
                n.trim()
                    .replace('_', "")
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: comma-separated numbers, got `{v}`"))
            })
            .collect(),
        _ => default.to_vec(),
    }
}

/// Whether `BENCH_ONLY` (a comma-separated list of section names; unset:
/// all) asks for the section.
fn section(name: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| {
        only.trim().is_empty() || only.split(',').any(|s| s.trim() == name)
    })
}

/// A build of the program the benchmark runs.
#[derive(Debug, Clone)]
struct Build {
    /// How tables name it.
    label: String,
    /// Its binary.
    path: String,
}

impl Build {
    /// This worktree's release binary.
    fn current() -> Build {
        Build {
            label: "new".to_string(),
            path: support::binary().to_string(),
        }
    }

    /// The baseline `make bench` built (`BENCH_BASELINE`), if any.
    fn baseline() -> Option<Build> {
        let path = std::env::var("BENCH_BASELINE_BIN").ok()?;
        if path.trim().is_empty() {
            return None;
        }
        assert!(
            std::path::Path::new(&path).exists(),
            "BENCH_BASELINE_BIN={path} does not exist"
        );
        let rev = std::env::var("BENCH_BASELINE_REV").unwrap_or_default();
        Some(Build {
            label: if rev.is_empty() {
                "old".to_string()
            } else {
                format!("old ({rev})")
            },
            path,
        })
    }

    /// A command running this build with `args`, in the tests' environment.
    fn command(&self, args: &[&str]) -> Command {
        // support::command sets the environment every test run gets; the
        // same for another binary.
        let template = support::command(args);
        let mut c = Command::new(&self.path);
        c.args(template.get_args());
        for (k, v) in template.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }
}

/// Runs `cmd` with `feed` streamed into its stdin; measures it with wait4.
/// The caller resets the sink before and reads it after.
// wait4 reaps the child (it gives its rusage, which Child::wait does not).
#[allow(clippy::zombie_processes)]
fn measure(label: &str, cmd: Command, feed: Feed) -> Outcome {
    measure_within(label, cmd, feed, None)
}

/// `measure`, killing the writer (SIGKILL) if it runs longer than `limit`:
/// a build that cannot keep up is reported as such rather than waited for.
#[allow(clippy::zombie_processes)]
fn measure_within(label: &str, mut cmd: Command, feed: Feed, limit: Option<Duration>) -> Outcome {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start the writer");
    let pid = child.id() as libc::pid_t;
    let stdin = child.stdin.take().expect("stdin");
    if feed.rate > 0 {
        // A paced feed's records should reach the reader when written, not
        // wait in a 64 KiB pipe: one page is the smallest pipe.
        // SAFETY: a valid pipe descriptor we own; failure only leaves the size.
        unsafe {
            libc::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(&stdin),
                libc::F_SETPIPE_SZ,
                4096,
            );
        }
    }
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let feeder = std::thread::spawn(move || feed.write_to(stdin).unwrap_or(0));
    let reader = std::thread::spawn(move || {
        let mut states = 0u64;
        let mut last = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("{\"type\":\"STATE\"") {
                states += 1;
            } else {
                last = line;
            }
        }
        (states, last)
    });
    let sampler = std::thread::spawn(move || peak_rss_kb(pid));
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let reaped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = limit.map(|limit| {
        let (reaped, killed) = (
            std::sync::Arc::clone(&reaped),
            std::sync::Arc::clone(&killed),
        );
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::SeqCst;
            while started.elapsed() < limit {
                if reaped.load(SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !reaped.load(SeqCst) {
                killed.store(true, SeqCst);
                // SAFETY: pid is our child, not reaped yet (checked just above).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        })
    });
    let mut status = 0;
    // SAFETY: rusage is plain data, zeroed is a valid value; pid is our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    reaped.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(w) = watchdog {
        let _ = w.join();
    }
    assert_eq!(waited, pid, "wait4 on the writer");
    let input_bytes = feeder.join().unwrap_or(0);
    let (states, last) = reader.join().unwrap_or_default();
    let stderr_text = errors.join().unwrap_or_default();
    let max_rss_kb = sampler.join().unwrap_or(0);
    let cpu = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let ok = exited_ok && states == feed.states();
    Outcome {
        label: label.to_string(),
        feed,
        input_bytes,
        wall,
        cpu: cpu(usage.ru_utime) + cpu(usage.ru_stime),
        max_rss_kb,
        seen: Seen::default(),
        states,
        ok,
        note: if killed.load(std::sync::atomic::Ordering::SeqCst) {
            format!(
                "did not finish within {} s (killed); {states} of {} states echoed",
                limit.unwrap_or_default().as_secs(),
                feed.states()
            )
        } else {
            format!(
                "exit status {status}, {states} of {} states echoed; last line: {last}; stderr: {}",
                feed.states(),
                stderr_text.trim()
            )
        },
    }
}

/// The child's peak resident memory (VmHWM), sampled until it exits. Not
/// `ru_maxrss`: after a fork that counts the parent's memory at the fork, and
/// the benchmark process is not small. Samples taken before the exec (while
/// the child still has the name of the thread that started it, the test's)
/// are left out.
fn peak_rss_kb(pid: libc::pid_t) -> u64 {
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let own = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    let parent_name = field(&own, "Name:");
    let path = format!("/proc/{pid}/status");
    let mut peak = 0;
    // The file goes when the child is reaped; a zombie has no VmHWM.
    while let Ok(text) = std::fs::read_to_string(&path) {
        let Some(hwm) = field(&text, "VmHWM:") else {
            break;
        };
        if field(&text, "Name:") != parent_name {
            let kb = hwm.split_whitespace().next().and_then(|v| v.parse().ok());
            peak = peak.max(kb.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    peak
}

/// Config and catalog files for the binary.
struct Setup {
    dir: TempDir,
}

impl Setup {
    fn new(config: Value, feed: &Feed) -> Setup {
        let dir = TempDir::new("bench");
        let names = feed.stream_names();
        let streams: Vec<(Option<&str>, &str)> = names.iter().map(|n| (None, n.as_str())).collect();
        dir.file("config.json", config.to_string().as_bytes());
        dir.file(
            "catalog.json",
            support::catalog(&streams).to_string().as_bytes(),
        );
        Setup { dir }
    }

    fn command(&self, build: &Build) -> Command {
        let path = |name: &str| self.dir.path.join(name).display().to_string();
        build.command(&[
            "write",
            "--config",
            &path("config.json"),
            "--catalog",
            &path("catalog.json"),
        ])
    }
}

fn sink_config(endpoint: &str, extra: Value) -> Value {
    let mut c = json!({
        "endpoint": endpoint,
        "region": "us-east-1",
        "accessKey": "AKIDBENCHMARK",
        "privateKey": "bench-secret-key",
        "bufferSize": BUFFER_SIZE,
    });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

/// Runs the binary against the sink.
fn ours(label: &str, sink: &Sink, feed: Feed, extra: Value) -> Outcome {
    run_build(label, &Build::current(), sink, feed, extra)
}

/// Runs `build` against the sink.
fn run_build(label: &str, build: &Build, sink: &Sink, feed: Feed, extra: Value) -> Outcome {
    let setup = Setup::new(sink_config(&sink.endpoint(), extra), &feed);
    sink.reset();
    let mut run = measure(label, setup.command(build), feed);
    run.seen = sink.seen();
    run
}

/// Runs the boto3 peer against the sink.
fn peer(python: &str, sink: &Sink, feed: Feed) -> Outcome {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bench/peer_boto3.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(sink.endpoint()).arg("500");
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "AKIDBENCHMARK")
        .env("AWS_SECRET_ACCESS_KEY", "bench-secret-key")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    sink.reset();
    let mut run = measure("boto3 peer", cmd, feed);
    run.seen = sink.seen();
    run
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn machine() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']))
        .unwrap_or("unknown CPU");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    format!(
        "{nproc} CPUs ({model}), {:.1} GiB memory; {}",
        mem_kb as f64 / 1048576.0,
        load()
    )
}

/// The load average now: other work on the machine shares its CPUs.
fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let figures: Vec<&str> = text.split_whitespace().take(3).collect();
    format!("load average {}", figures.join(" "))
}

/// `make bench`: the sections `BENCH_ONLY` names (all when unset), with the
/// sizes of the `BENCH_*` variables; fails when a run failed. With
/// `BENCH_SERVE` set, only the sink, with that many milliseconds of round
/// trip, until killed: for profiling the binary by hand (see docs/development.md).
#[test]
#[ignore = "the benchmark (minutes, a release build): make bench"]
fn benchmark() {
    if let Ok(ms) = std::env::var("BENCH_SERVE") {
        let sink = Sink::start().expect("start the loopback sink");
        sink.set_delay(Duration::from_millis(ms.parse().unwrap_or(0)));
        println!("{}", sink.endpoint());
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    let sink = Sink::start().expect("start the loopback sink");
    println!("# destination-kinesis benchmark\n");
    println!("machine: {}", machine());
    println!("binary: {}", support::binary());
    match Build::baseline() {
        Some(b) => println!("baseline: {} ({})\n", b.path, b.label),
        None => println!("baseline: none\n"),
    }

    let small = Feed {
        records: env_u64("BENCH_RECORDS", 1_000_000),
        size: env_u64("BENCH_SIZE", 200) as usize,
        streams: env_u64("BENCH_STREAMS", 4) as usize,
        state_every: env_u64("BENCH_STATE_EVERY", 10_000),
        ..Feed::default()
    };
    let large = Feed {
        records: env_u64("BENCH_LARGE_RECORDS", 20_000),
        size: env_u64("BENCH_LARGE_SIZE", 51_200) as usize,
        state_every: 1_000,
        ..small
    };
    let rtt = env_u64("BENCH_RTT_MS", 20);
    let in_flight = env_u64("BENCH_IN_FLIGHT", 8);
    let slow = Feed {
        records: env_u64("BENCH_RTT_RECORDS", 200_000),
        ..small
    };
    let baseline = Build::baseline();
    let mut rows: Vec<Outcome> = Vec::new();
    if section("main") {
        rows.extend(main_section(&sink, small, large, slow, rtt, in_flight));
    }
    if section("compare") {
        match &baseline {
            Some(old) => rows.extend(compare::section(
                &sink,
                old,
                &[
                    (
                        format!("{} B records, the defaults", small.size),
                        small,
                        0,
                        json!({}),
                    ),
                    (
                        format!("{} KB records", large.size / 1024),
                        large,
                        0,
                        json!({}),
                    ),
                    (
                        format!("{rtt} ms round trip, maxInFlight {in_flight}"),
                        slow,
                        rtt,
                        json!({ "maxInFlight": in_flight }),
                    ),
                ],
            )),
            None => println!(
                "\n(before/after skipped: no baseline; `make bench` builds BENCH_BASELINE)"
            ),
        }
    }
    if section("streams") {
        rows.extend(many_streams::memory_section(&sink, baseline.as_ref()));
    }
    if section("catalog") {
        rows.extend(many_streams::catalog_section(&sink, baseline.as_ref()));
    }
    if section("kko") {
        rows.extend(key_order_section(&sink, small, rtt, in_flight));
    }
    let kl_records = env_u64("BENCH_KL_RECORDS", 5_000);
    if kl_records > 0 && section("kl") {
        println!(
            "\n## Aggregation into kinesis-local ({kl_records} records of {} B, 2 shards)\n",
            small.size
        );
        println!("| aggregation | user records/s | Kinesis records | per shard | user records per Kinesis record |\n|---|---:|---:|---|---:|");
        for aggregation in [false, true] {
            println!(
                "{}",
                into_kinesis_local(kl_records, small.size, aggregation)
            );
        }
    }
    if section("shards") {
        rows.extend(shard_scenarios::section(baseline.as_ref()));
    }
    if section("latency") {
        rows.extend(real_latency::section(baseline.as_ref()));
    }
    println!("\n{} at the end", load());
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| !r.ok)
        .map(|r| format!("run `{}` failed: {}", r.label, r.note))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The first table: the binary against the sink and the boto3 peer, large
/// records, aggregation, the memory run and latency hiding, with targets.
fn main_section(
    sink: &Sink,
    small: Feed,
    large: Feed,
    slow: Feed,
    rtt: u64,
    in_flight: u64,
) -> Vec<Outcome> {
    let mut rows: Vec<Outcome> = Vec::new();
    let mut checks: Vec<(String, bool)> = Vec::new();

    let base = ours("destination-kinesis", sink, small, json!({}));
    println!("{HEADER}\n{}", base.row());
    let python = std::env::var("BENCH_PYTHON").ok();
    let peer_feed = Feed {
        records: env_u64("BENCH_PEER_RECORDS", small.records),
        ..small
    };
    let peer_run = python
        .as_deref()
        .filter(|p| std::path::Path::new(p).exists())
        .map(|p| peer(p, sink, peer_feed));
    if let Some(p) = &peer_run {
        println!("{}", p.row());
    }
    let big = ours("destination-kinesis, 50 KB records", sink, large, json!({}));
    println!("{}", big.row());
    let agg = ours(
        "destination-kinesis, aggregation",
        sink,
        small,
        json!({"aggregation": true}),
    );
    println!("{}", agg.row());

    checks.push((
        format!(
            ">= 300,000 records/s of {} B records: {:.0}",
            small.size,
            base.records_per_s()
        ),
        base.ok && base.records_per_s() >= 300_000.0,
    ));
    if let Some(p) = &peer_run {
        let ratio = base.records_per_s() / p.records_per_s();
        checks.push((
            format!(
                ">= 10x the boto3 peer's records/s: {ratio:.1}x (CPU per record {:.1}x less, peak RSS {:.1}x less)",
                p.cpu_per_million() / base.cpu_per_million(),
                p.rss_mb() / base.rss_mb()
            ),
            base.ok && p.ok && ratio >= 10.0,
        ));
    } else {
        println!(
            "(boto3 peer skipped: set BENCH_PYTHON to a python with boto3, as `make bench` does)"
        );
    }
    checks.push((
        format!(
            ">= 200 MB/s of input with {} B records: {:.1} MB/s",
            large.size,
            big.mb_per_s()
        ),
        big.ok && big.mb_per_s() >= 200.0,
    ));
    checks.push((
        format!(
            "peak RSS <= 30 MiB: {:.1} MiB ({} records), {:.1} MiB (50 KB records)",
            base.rss_mb(),
            small.records,
            big.rss_mb()
        ),
        base.rss_mb() <= 30.0 && big.rss_mb() <= 30.0,
    ));
    rows.extend([base.clone(), big, agg]);

    let rss_records = env_u64("BENCH_RSS_RECORDS", 0);
    if rss_records > 0 {
        let huge = ours(
            "destination-kinesis, memory run",
            sink,
            Feed {
                records: rss_records,
                ..small
            },
            json!({}),
        );
        println!("{}", huge.row());
        checks.push((
            format!(
                "peak RSS <= 30 MiB for {rss_records} records: {:.1} MiB",
                huge.rss_mb()
            ),
            huge.ok && huge.rss_mb() <= 30.0,
        ));
        rows.push(huge);
    }

    // Latency hiding: the same job with a simulated round trip.
    sink.set_delay(Duration::from_millis(rtt));
    let one = ours(
        &format!("{rtt} ms round trip, maxInFlight 1"),
        sink,
        slow,
        json!({"maxInFlight": 1}),
    );
    println!("{}", one.row());
    let many = ours(
        &format!("{rtt} ms round trip, maxInFlight {in_flight}"),
        sink,
        slow,
        json!({ "maxInFlight": in_flight }),
    );
    println!("{}", many.row());
    let auto = ours(
        &format!("{rtt} ms round trip, maxInFlight auto (the default)"),
        sink,
        slow,
        json!({}),
    );
    println!("{}", auto.row());
    sink.set_delay(Duration::ZERO);
    let auto_gain = auto.records_per_s() / one.records_per_s();
    checks.push((
        format!(">= 5x records/s with maxInFlight auto over 1 at {rtt} ms: {auto_gain:.1}x"),
        one.ok && auto.ok && auto_gain >= 5.0,
    ));
    rows.push(auto);
    let gain = many.records_per_s() / one.records_per_s();
    checks.push((
        format!(">= 5x records/s with maxInFlight {in_flight} over 1 at {rtt} ms: {gain:.1}x"),
        one.ok && many.ok && gain >= 5.0,
    ));

    println!("\n{} at the end of these runs", load());
    println!("\n## Targets\n");
    for (what, met) in &checks {
        println!("- {}: {what}", verdict(*met));
    }
    rows.extend([one, many]);
    rows.extend(peer_run);
    rows
}

/// The bufferSize every run uses (see `sink_config`).
const BUFFER_SIZE: usize = 500;

/// The PutRecords calls `keepKeyOrder` makes for `feed`, by the rule in
/// `src/write.rs`: a stream's open batch is sent when it is full or when the
/// next record repeats one of its keys (and each stream's last batch at the
/// end). Stops once `max_calls` batches are complete; returns the calls and
/// the records they carry. Lets the benchmark size runs before making them,
/// and the smoke run check that the writer batches as described.
fn key_order_batches(feed: &Feed, max_calls: u64) -> (u64, u64) {
    let mut open: Vec<HashSet<u64>> = vec![HashSet::new(); feed.streams];
    let mut calls = 0u64;
    let open_calls = |open: &[HashSet<u64>]| open.iter().filter(|b| !b.is_empty()).count() as u64;
    for i in 0..feed.records {
        let batch = &mut open[feed.stream_of(i)];
        let key = feed.key_of(i);
        if batch.contains(&key) {
            batch.clear();
            calls += 1;
            if calls >= max_calls {
                return (calls + open_calls(&open), i);
            }
        }
        let batch = &mut open[feed.stream_of(i)];
        batch.insert(key);
        if batch.len() >= BUFFER_SIZE {
            batch.clear();
            calls += 1;
            if calls >= max_calls {
                return (calls + open_calls(&open), i + 1);
            }
        }
    }
    (calls + open_calls(&open), feed.records)
}

/// `keepKeyOrder` false against true on the same input, partition keys taken
/// from the data (`/customer`), for a few key cardinalities, with no latency
/// and one request in flight, then with the simulated round trip and
/// `in_flight` requests. Prints its table; gives its runs.
fn key_order_section(sink: &Sink, small: Feed, rtt: u64, in_flight: u64) -> Vec<Outcome> {
    let records = env_u64("BENCH_KKO_RECORDS", 200_000);
    if records == 0 {
        return Vec::new();
    }
    let cardinalities: Vec<u64> = std::env::var("BENCH_KKO_KEYS")
        .unwrap_or_else(|_| "10,1000,100000".to_string())
        .split(',')
        .map(|k| {
            k.trim()
                .replace('_', "")
                .parse()
                .ok()
                .filter(|&n: &u64| n > 0)
                .expect("BENCH_KKO_KEYS: comma-separated numbers (> 0) of distinct keys")
        })
        .collect();
    // keepKeyOrder sends one batch per stream at a time, and with few keys
    // batches are tiny (10 keys: ~4 records): with the round trip its run
    // would take minutes (~4 records per 20 ms), and ~10 s even with no
    // latency. Its input is then the first records of the same input that
    // fill this many calls (a few seconds each).
    let calls = env_u64("BENCH_KKO_CALLS", 20_000);
    let rtt_calls = env_u64("BENCH_KKO_RTT_CALLS", 150);
    let streams = env_u64("BENCH_KKO_STREAMS", 1).max(1) as usize;
    // With no latency a run is CPU-bound and takes about half a second, so on
    // a shared machine one busy moment halves it: those rows keep the fastest
    // of a few alternating runs. Round-trip rows are bound by the sink's
    // delay and repeat to about 1%, so they run once.
    let repeat = env_u64("BENCH_KKO_REPEAT", 3).max(1);
    println!(
        "\n## keepKeyOrder ({} B records, partitionKey `/customer`, {streams} stream{}, bufferSize {BUFFER_SIZE})\n",
        small.size,
        if streams == 1 { "" } else { "s" }
    );
    println!(
        "Same input for both; a keepKeyOrder run takes its first records, as many as fill {calls} PutRecords calls ({rtt_calls} with the round trip). With no latency, the fastest of {repeat} alternating runs of each.\n"
    );
    println!("| distinct keys | round trip | maxInFlight | records false / true | records/s false | records/s true | true / false | entries/call false / true | CPU s per 1M records false / true |\n|---:|---:|---:|---|---:|---:|---:|---|---|");
    let started = Instant::now();
    let mut runs = Vec::new();
    for (delay, max_in_flight) in [(0, 1), (rtt, in_flight)] {
        sink.set_delay(Duration::from_millis(delay));
        for &keys in &cardinalities {
            let feed = Feed {
                records,
                streams,
                keys,
                ..small
            };
            let budget = if delay > 0 { rtt_calls } else { calls };
            let ordered = Feed {
                records: key_order_batches(&feed, budget).1,
                ..feed
            };
            let run = |keep: bool, feed: Feed| {
                ours(
                    &format!(
                        "keepKeyOrder {keep}, {keys} keys, {delay} ms, maxInFlight {max_in_flight}"
                    ),
                    sink,
                    feed,
                    json!({
                        "partitionKey": "/customer",
                        "keepKeyOrder": keep,
                        "maxInFlight": max_in_flight,
                    }),
                )
            };
            let (mut off, mut on) = (run(false, feed), run(true, ordered));
            for _ in 1..if delay > 0 { 1 } else { repeat } {
                off = faster(off, run(false, feed));
                on = faster(on, run(true, ordered));
            }
            let ratio = on.records_per_s() / off.records_per_s();
            println!(
                "| {keys} | {delay} ms | {max_in_flight} | {} / {} | {:.0} | {:.0} | {} | {:.1} / {:.1} | {:.2} / {:.2} |{}",
                off.feed.records,
                on.feed.records,
                off.records_per_s(),
                on.records_per_s(),
                // Small ratios are easier to read as 1/n.
                if ratio >= 0.1 {
                    format!("{ratio:.2}")
                } else {
                    format!("{ratio:.4} (1/{:.0})", 1.0 / ratio)
                },
                off.entries_per_call(),
                on.entries_per_call(),
                off.cpu_per_million(),
                on.cpu_per_million(),
                if off.ok && on.ok { "" } else { " FAILED" }
            );
            runs.extend([off, on]);
        }
    }
    sink.set_delay(Duration::ZERO);
    println!(
        "\n{} at the end of the keepKeyOrder runs ({:.0} s for them all)",
        load(),
        started.elapsed().as_secs_f64()
    );
    runs
}

/// The faster of two runs of the same job; a failed one wins, to be reported.
fn faster(a: Outcome, b: Outcome) -> Outcome {
    if !a.ok || (b.ok && a.records_per_s() >= b.records_per_s()) {
        a
    } else {
        b
    }
}

/// Writes `records` records into a fresh kinesis-local with or without
/// aggregation; reads them back and gives the table row.
fn into_kinesis_local(records: u64, size: usize, aggregation: bool) -> String {
    let kl = KinesisLocal::start();
    let feed = Feed {
        records,
        size,
        streams: 1,
        state_every: 1_000,
        ..Feed::default()
    };
    let k = kl.client();
    let stream = "_bench_0";
    k.create_stream(stream, &NewStream::provisioned(2))
        .expect("CreateStream");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(k.stream_status(&stream.into()), Ok(Some(s)) if s.is_writable()) {
        assert!(Instant::now() < deadline, "stream never became ACTIVE");
        std::thread::sleep(Duration::from_millis(50));
    }
    let config = kl.config(json!({"bufferSize": 500, "aggregation": aggregation}));
    let setup = Setup::new(config, &feed);
    let run = measure("kinesis-local", setup.command(&Build::current()), feed);
    assert!(run.ok, "{}", run.note);
    let landed = kl.read_stream(stream);
    let mut per_shard: std::collections::BTreeMap<String, u64> = Default::default();
    let mut user_records = 0u64;
    for (shard, r) in &landed {
        *per_shard.entry(shard.clone()).or_default() += 1;
        user_records += if aggregation {
            deaggregate(&r.data).map_or(1, |u| u.len() as u64)
        } else {
            1
        };
    }
    assert_eq!(user_records, records, "every record landed");
    let shards: Vec<String> = per_shard.values().map(u64::to_string).collect();
    format!(
        "| {} | {:.0} | {} | {} | {:.0} |",
        if aggregation { "on" } else { "off" },
        run.records_per_s(),
        landed.len(),
        shards.join(" + "),
        records as f64 / landed.len() as f64
    )
}

/// The first line `feed` generates, parsed.
fn first_line(feed: Feed) -> Value {
    let mut sample = Vec::new();
    Feed { records: 1, ..feed }
        .write_to(&mut sample)
        .expect("write to memory");
    serde_json::from_slice(&sample).expect("a RECORD line")
}

/// The small run `make test` makes: the benchmark's parts work and agree.
#[test]
fn smoke() {
    let sink = Sink::start().expect("start the loopback sink");
    let feed = Feed {
        records: 2_000,
        size: 200,
        streams: 2,
        state_every: 100,
        ..Feed::default()
    };
    let line = first_line(feed);
    assert_eq!(
        line["record"]["data"].to_string().len(),
        200,
        "data of the size asked"
    );
    let plain = ours("smoke", &sink, feed, json!({}));
    assert!(plain.ok, "{}", plain.note);
    assert_eq!(plain.seen.entries, feed.records);
    assert_eq!(plain.states, 20);
    assert!(plain.max_rss_kb > 0 && plain.cpu > Duration::ZERO);
    let packed = ours("smoke", &sink, feed, json!({"aggregation": true}));
    assert!(packed.ok, "{}", packed.note);
    assert!(
        packed.seen.entries < feed.records / 10,
        "aggregation packs records: {} entries",
        packed.seen.entries
    );
    // keepKeyOrder: keys from the data; the writer batches as the model says.
    let keyed = Feed { keys: 10, ..feed };
    let line = first_line(keyed);
    assert_eq!(
        line["record"]["data"].to_string().len(),
        200,
        "data of the size asked, with a customer"
    );
    assert!(line["record"]["data"]["customer"].is_string());
    let ordered = ours(
        "smoke",
        &sink,
        keyed,
        json!({"partitionKey": "/customer", "keepKeyOrder": true}),
    );
    assert!(ordered.ok, "{}", ordered.note);
    assert_eq!(ordered.seen.entries, keyed.records);
    assert_eq!(
        ordered.seen.calls,
        key_order_batches(&keyed, u64::MAX).0,
        "one call per batch of distinct keys"
    );
    assert!(ordered.entries_per_call() <= 10.0);
    shard_scenarios::smoke();
    println!("benchmark smoke run: ok (run `make bench` for figures)");
}
