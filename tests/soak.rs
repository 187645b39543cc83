//! `make soak` (not part of `make test`): a long `write` at a steady input rate
//! into shards with real limits (`bench/shard_sink.rs`: per-shard throttling,
//! another producer using a quarter of each shard, a shard split half-way)
//! behind the fault proxy (`support/fault_proxy.rs`: failed entries, 5xx,
//! error answers, dropped connections, answers lost or held back). It watches
//! the run (peak RSS and CPU time each second, when each state comes back),
//! prints a table of figures, then checks: nothing lost, duplicates only where
//! answers were lost, states in order and never early, peak RSS and CPU per
//! record flat (the last third of the run within 10% of the first, after
//! warm-up), progress lines at their interval. `SOAK_SECONDS` (1800) and
//! `SOAK_RATE` (records a second, 1000) size it; `SOAK_OTHER_PRODUCER` (the
//! other producer's share of each shard in percent, 25) sets the headroom.

use crate::bench::shard_sink::{quantile, Limits, PlannedSplit, Report, ShardSink, Tracking};
use crate::support;
use crate::support::fault_proxy::{FaultProxy, Injected};
use crate::support::standin::{mix, Call, Fault};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::ChildStdin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records between two states.
const STATE_EVERY: u64 = 500;
/// Bytes of padding in each record's data (about 200 bytes of data in all).
const PAD: usize = 160;
/// The growth from the first third to the last that the soak allows.
const FLAT: f64 = 0.10;
/// How long the program may take to finish once its input ends.
const DRAIN: Duration = Duration::from_secs(300);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The soak's faults, per PutRecords call: about one call in thirteen, the
/// same ones (a slow answer among them) in every thousand calls (about 90 s),
/// so that each third of the run meets the same: where faults cluster by
/// chance (three answers lost within 15 s), the backlog they leave fills the
/// memory budget in one third and not the others.
fn faults(c: &Call) -> Fault {
    if c.op != "PutRecords" {
        return Fault::None;
    }
    match mix(c.n % 1000, 7) % 1000 {
        0..=29 => Fault::FailEntries {
            code: "InternalFailure",
            per_mille: 200,
        },
        30..=39 => Fault::FailEntries {
            code: "ProvisionedThroughputExceededException",
            per_mille: 300,
        },
        40..=49 => Fault::server_error(500),
        50..=54 => Fault::server_error(503),
        55..=64 => Fault::throttle(),
        65..=69 => Fault::CloseBeforeStore,
        70..=74 => Fault::CloseAfterStore,
        75..=77 => Fault::EmptySequenceNumbers { every: 7 },
        // Longer than the request timeout: the answer is lost.
        78 => Fault::SlowAnswer(Duration::from_secs(12)),
        _ => Fault::None,
    }
}

/// What the feeder wrote.
#[derive(Debug, Default)]
struct Fed {
    records: u64,
    /// When each state was written, from the epoch.
    states_at: Vec<Duration>,
}

/// Writes records at `rate` a second until `until` (from `epoch`), a state
/// every `STATE_EVERY` records; each record carries its number and the time
/// it was written (nanoseconds from `epoch`), for the sink.
fn feed(mut stdin: ChildStdin, epoch: Instant, rate: u64, until: Duration) -> Fed {
    let mut fed = Fed::default();
    let pad = "p".repeat(PAD);
    let mut buf = Vec::with_capacity(64 * 1024);
    let tick = Duration::from_millis(10);
    loop {
        let now = epoch.elapsed();
        if now >= until {
            break;
        }
        let due = (rate as f64 * now.as_secs_f64()) as u64;
        while fed.records < due {
            let i = fed.records;
            let at = epoch.elapsed().as_nanos();
            let data = format!(r#"{{"i":{i},"at":{at},"pad":"{pad}"}}"#);
            buf.extend_from_slice(
                support::record_line(None, "soak", &data, 1_700_000_000_000).as_bytes(),
            );
            fed.records += 1;
            if fed.records % STATE_EVERY == 0 {
                buf.extend_from_slice(support::state_line(fed.states_at.len() as u64).as_bytes());
                fed.states_at.push(epoch.elapsed());
            }
        }
        if stdin.write_all(&buf).is_err() {
            break;
        }
        buf.clear();
        let next = now + tick;
        std::thread::sleep(next.saturating_sub(epoch.elapsed()));
    }
    fed
}

/// What the program printed, as it came.
#[derive(Debug, Default)]
struct Printed {
    /// For each state echoed, its number and when it came, from the epoch.
    states: Vec<(u64, Duration)>,
    /// Every other line, and when it came.
    other: Vec<(Duration, Value)>,
}

/// Reads the program's stdout to its end; `covered` follows the records the
/// echoed states vouch for.
fn read_stdout(out: impl Read, epoch: Instant, covered: &AtomicU64) -> Printed {
    let mut printed = Printed::default();
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        let at = epoch.elapsed();
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["type"] == "STATE" {
            let n = v["state"]["data"]["n"].as_u64().expect("state n");
            covered.store((n + 1) * STATE_EVERY, Ordering::SeqCst);
            printed.states.push((n, at));
        } else {
            printed.other.push((at, v));
        }
    }
    printed
}

/// One look at the running program.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kb: u64,
    cpu: Duration,
    covered: u64,
}

/// Looks at process `pid` every second until it is gone.
fn sample(pid: u32, epoch: Instant, covered: &AtomicU64, stop: &AtomicBool) -> Vec<Sample> {
    let tick: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    let mut samples = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok());
        // utime and stime are the 12th and 13th fields after the name.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        let (Some(rss_kb), Some(utime), Some(stime)) = (rss, ticks(11), ticks(12)) else {
            break;
        };
        samples.push(Sample {
            at: epoch.elapsed(),
            rss_kb,
            cpu: Duration::from_secs_f64((utime + stime) / tick),
            covered: covered.load(Ordering::SeqCst),
        });
        std::thread::sleep(Duration::from_secs(1));
    }
    samples
}

/// One stretch of the run, as the samples saw it.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    peak_rss_kb: u64,
    cpu: Duration,
    records: u64,
}

impl Stretch {
    fn of(samples: &[Sample], from: Duration, to: Duration) -> Stretch {
        let inside: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at >= from && s.at <= to)
            .collect();
        let (first, last) = (
            inside.first().expect("samples"),
            inside.last().expect("samples"),
        );
        Stretch {
            peak_rss_kb: inside.iter().map(|s| s.rss_kb).max().unwrap_or(0),
            cpu: last.cpu.saturating_sub(first.cpu),
            records: last.covered.saturating_sub(first.covered),
        }
    }

    /// CPU milliseconds per thousand records.
    fn cpu_per_1k(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.records.max(1) as f64
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    })
}

fn percentiles(values: &[Duration]) -> String {
    let q = |p| ms(quantile(values.to_vec(), p));
    format!(
        "p50 {}, p90 {}, p99 {}, max {}",
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    )
}

/// For each record number below `records`, when the sink first accepted it.
fn first_accepted(report: &Report, records: u64) -> Vec<Option<Duration>> {
    let mut first = vec![None; records as usize];
    for shard in report.shards() {
        for (id, at) in shard.accepted_ids.iter().zip(&shard.accepted_at) {
            if let Some(slot) = id.and_then(|i| first.get_mut(i as usize)) {
                let earlier = slot.map_or(*at, |seen: Duration| seen.min(*at));
                *slot = Some(earlier);
            }
        }
    }
    first
}

/// The states that came back before a record they vouch for was accepted.
fn early_states(printed: &Printed, first: &[Option<Duration>]) -> Vec<u64> {
    let mut latest = Duration::ZERO;
    let mut upto = 0usize;
    let mut early = Vec::new();
    for &(n, at) in &printed.states {
        let boundary = ((n + 1) * STATE_EVERY) as usize;
        while upto < boundary.min(first.len()) {
            latest = latest.max(first[upto].unwrap_or(Duration::MAX));
            upto += 1;
        }
        if latest > at || boundary > first.len() {
            early.push(n);
        }
    }
    early
}

/// The `prefix` LOG lines' JSON, and when each came.
fn logged(printed: &Printed, prefix: &str) -> Vec<(Duration, Value)> {
    printed
        .other
        .iter()
        .filter_map(|(at, m)| Some((*at, m["log"]["message"].as_str()?.strip_prefix(prefix)?)))
        .map(|(at, json)| {
            (
                at,
                serde_json::from_str(json).expect("logged figures are JSON"),
            )
        })
        .collect()
}

/// The run in tenths, one row each: what the samples, the states echoed and
/// the progress lines of that stretch say.
fn tenths(
    samples: &[Sample],
    printed: &Printed,
    fed: &Fed,
    progress: &[(Duration, Value)],
    duration: Duration,
) {
    println!(
        "\n| stretch | peak RSS MiB | CPU ms per 1,000 records | states echoed | state delay p50 / max | \
         accepted (progress lines) | throttled | most states held back | oldest waiting |\n\
         |---|---:|---:|---:|---|---:|---:|---:|---:|"
    );
    for k in 0..10u32 {
        let (from, to) = (duration * k / 10, duration * (k + 1) / 10);
        let stretch = Stretch::of(samples, from, to);
        let delays: Vec<Duration> = printed
            .states
            .iter()
            .filter(|(_, at)| *at >= from && *at < to)
            .filter_map(|&(n, at)| Some(at.saturating_sub(*fed.states_at.get(n as usize)?)))
            .collect();
        let lines: Vec<&Value> = progress
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, v)| v)
            .collect();
        let sum = |key: &str| lines.iter().filter_map(|l| l[key].as_u64()).sum::<u64>();
        let most = |key: &str| {
            lines
                .iter()
                .filter_map(|l| l[key].as_f64())
                .fold(0.0, f64::max)
        };
        println!(
            "| {}-{} s | {:.1} | {:.1} | {} | {} / {} | {} | {} | {} | {:.1} s |",
            from.as_secs(),
            to.as_secs(),
            stretch.peak_rss_kb as f64 / 1024.0,
            stretch.cpu_per_1k(),
            delays.len(),
            ms(quantile(delays.clone(), 0.5)),
            ms(quantile(delays, 1.0)),
            sum("accepted"),
            sum("throttledEntries"),
            most("statesHeldBack"),
            most("oldestStateWaitingSeconds"),
        );
    }
}

#[test]
#[ignore = "a long run (SOAK_SECONDS, 30 minutes by default): make soak"]
fn soak() {
    let seconds = env_u64("SOAK_SECONDS", 1800);
    let rate = env_u64("SOAK_RATE", 1000);
    let duration = Duration::from_secs(seconds);
    // Another producer takes a share of each shard (SOAK_OTHER_PRODUCER
    // percent, 25 by default): 1,500 records/s are left for 1,000 (2,250
    // after the split), which pacing must find by throttling.
    let limits = Limits {
        shards: 2,
        other_producer: env_u64("SOAK_OTHER_PRODUCER", 25) as f64 / 100.0,
        ..Limits::default()
    };
    let sink = ShardSink::start(limits).expect("start the shard sink");
    let epoch = Instant::now();
    sink.reset(limits, epoch);
    sink.track(Some(Tracking {
        id_field: "i".into(),
        sent_field: Some("at".into()),
    }));
    let split_at = duration / 2;
    sink.plan_split(PlannedSplit {
        shard: 0,
        at: split_at,
    });
    let proxy = FaultProxy::start(&sink.endpoint(), faults);
    let config = json!({
        "endpoint": proxy.endpoint(),
        "region": "us-east-1",
        "accessKey": "AKIASOAKEXAMPLE00001",
        "privateKey": "soak-secret",
        "requestTimeoutSeconds": 10
    });
    let (mut command, _dir) = support::write_command(&config, &support::catalog(&[(None, "soak")]));
    let mut child = command.spawn().expect("start the writer");
    let pid = child.id();
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let covered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = std::thread::spawn(move || feed(stdin, epoch, rate, duration));
    let reader = {
        let covered = Arc::clone(&covered);
        std::thread::spawn(move || read_stdout(stdout, epoch, &covered))
    };
    let sampler = {
        let (covered, stop) = (Arc::clone(&covered), Arc::clone(&stop));
        std::thread::spawn(move || sample(pid, epoch, &covered, &stop))
    };
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let fed = feeder.join().expect("feeder");
    let deadline = Instant::now() + DRAIN;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the writer did not end within {DRAIN:?} of the end of its input");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let ended = epoch.elapsed();
    stop.store(true, Ordering::SeqCst);
    let printed = reader.join().expect("reader");
    let samples = sampler.join().expect("sampler");
    let stderr = errors.join().unwrap_or_default();
    let report = sink.report();
    let injected = proxy.injected();

    // The figures.
    let first = first_accepted(&report, fed.records);
    let lost = first.iter().filter(|f| f.is_none()).count();
    let early = early_states(&printed, &first);
    let in_order = printed
        .states
        .iter()
        .enumerate()
        .all(|(k, (n, _))| *n == k as u64);
    let state_delays: Vec<Duration> = printed
        .states
        .iter()
        .filter_map(|&(n, at)| Some(at.saturating_sub(*fed.states_at.get(n as usize)?)))
        .collect();
    let record_delays: Vec<Duration> = report
        .shards()
        .flat_map(|s| s.delays.iter().copied())
        .collect();
    let warm_up = (duration / 10).min(Duration::from_secs(60));
    let third = duration.saturating_sub(warm_up) / 3;
    let first_third = Stretch::of(&samples, warm_up, warm_up + third);
    let last_third = Stretch::of(&samples, duration - third, duration);
    let rss_growth = last_third.peak_rss_kb as f64 / first_third.peak_rss_kb.max(1) as f64 - 1.0;
    let cpu_growth = last_third.cpu_per_1k() / first_third.cpu_per_1k() - 1.0;
    let progress = logged(
        &printed,
        destination_kinesis::airbyte::progress_log::PROGRESS_PREFIX,
    );
    let figures = logged(
        &printed,
        destination_kinesis::airbyte::write::FIGURES_PREFIX,
    );
    let final_figures = figures.last().map_or(Value::Null, |(_, f)| f.clone());
    let shards: Vec<String> = report
        .shards()
        .map(|s| {
            format!(
                "{} {} accepted, {} throttled",
                s.id, s.accepted, s.throttled
            )
        })
        .collect();
    let faults: Vec<String> = injected
        .faults
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    let Injected {
        calls,
        refused_entries,
        unacknowledged_entries,
        ..
    } = injected;

    println!("\n## Soak: {seconds} s at {rate} records/s\n");
    println!("| figure | value |\n|---|---|");
    let row = |k: &str, v: String| println!("| {k} | {v} |");
    row(
        "machine",
        format!(
            "{} CPUs; load average {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    row(
        "run",
        format!(
            "input for {seconds} s, exit status {:?} after {:.0} s",
            status.code(),
            ended.as_secs_f64()
        ),
    );
    row("records", format!("{} written, {} lost, {} duplicates (entries whose acknowledgement was lost: {unacknowledged_entries})", fed.records, lost, report.duplicates()));
    row(
        "states",
        format!(
            "{} of {} echoed, {}, {} early",
            printed.states.len(),
            fed.states_at.len(),
            if in_order { "in order" } else { "OUT OF ORDER" },
            early.len()
        ),
    );
    row(
        "state delay (written to echoed)",
        percentiles(&state_delays),
    );
    row(
        "record delay (written to accepted)",
        percentiles(&record_delays),
    );
    row(
        "PutRecords calls",
        format!(
            "{calls} through the proxy; faults: {}; {refused_entries} entries refused by the proxy",
            faults.join(", ")
        ),
    );
    row(
        "shards",
        format!(
            "{} throttled entries in all; split of shardId-000000000000 at {} s; {}",
            report.throttled,
            split_at.as_secs(),
            shards.join("; ")
        ),
    );
    row(
        "peak RSS, first / last third",
        format!(
            "{:.1} / {:.1} MiB ({:+.1}%)",
            first_third.peak_rss_kb as f64 / 1024.0,
            last_third.peak_rss_kb as f64 / 1024.0,
            rss_growth * 100.0
        ),
    );
    row(
        "CPU per 1,000 records, first / last third",
        format!(
            "{:.1} / {:.1} ms ({:+.1}%)",
            first_third.cpu_per_1k(),
            last_third.cpu_per_1k(),
            cpu_growth * 100.0
        ),
    );
    row(
        "thirds",
        format!(
            "after {} s of warm-up, {} s each",
            warm_up.as_secs(),
            third.as_secs()
        ),
    );
    row(
        "progress lines",
        format!("{} (one a minute)", progress.len()),
    );
    row("final figures", final_figures.to_string());
    tenths(&samples, &printed, &fed, &progress, duration);

    assert_eq!(
        status.code(),
        Some(0),
        "the writer failed: {stderr}\n{:?}",
        printed.other.last().map(|(_, line)| line)
    );
    assert_eq!(lost, 0, "records lost");
    assert!(
        report.duplicates() <= unacknowledged_entries,
        "duplicates beyond lost acknowledgements"
    );
    assert!(in_order, "states out of order");
    assert!(early.is_empty(), "states echoed early: {early:?}");
    assert_eq!(
        printed.states.len(),
        fed.states_at.len(),
        "every state echoed"
    );
    assert!(
        rss_growth <= FLAT,
        "peak RSS grew {:.1}%",
        rss_growth * 100.0
    );
    assert!(
        cpu_growth <= FLAT,
        "CPU per record grew {:.1}%",
        cpu_growth * 100.0
    );
    assert!(
        progress.len() as u64 + 1 >= seconds / 60,
        "{} progress lines in {seconds} s",
        progress.len()
    );
    let progressed: u64 = progress
        .iter()
        .filter_map(|(_, p)| p["records"].as_u64())
        .sum();
    assert!(
        final_figures["records"]
            .as_u64()
            .is_some_and(|read| progressed <= read),
        "progress lines count more records than were read"
    );
}
