//! Issue 14's measuring side: the binary against shards with real limits
//! (`shard_sink`), in four scenarios, each run once per `shardRateLimit`
//! value (0: the limiter off, retry-only; 100: the limiter at the shards'
//! limits), with the targets marked met or not.
//!
//! Every record carries its number and the time it was written (`feed`'s
//! `id` and `at`); the sink notes when each was accepted and on which shard,
//! so the figures are: accepted records/s as a share of what the open shards
//! leave this producer (counted from when the shards' 1 s burst is spent to
//! the last acceptance), throttled entries and PutRecords calls per accepted
//! record, the slowest shard's p99 delay from write to acceptance, peak RSS,
//! records lost and accepted twice. The input is paced (record i due at i /
//! rate); when the writer reads more slowly, records wait in the feed, where
//! the delay, counted from the write, does not see them: scenario (b) also
//! gives the lag behind the input's schedule.

use super::feed::{Feed, AT_FIELD, ID_FIELD};
use super::shard_sink::{
    hash_of, quantile, shard_id, Limits, PlannedSplit, Report, ShardReport, ShardSink, Tracking,
};
use super::{env_list, env_u64, load, measure_within, sink_config, verdict, Build, Outcome, Setup};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The hot key of scenario (b): customer 0 as the feed writes it.
const HOT_KEY: &str = "00000000";

/// Distinct customers of scenario (b) besides the hot one.
const COLD_KEYS: u64 = 100_000;

/// One scenario: the sink's shards, the input, and what is asked of the writer.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: char,
    pub title: String,
    pub limits: Limits,
    pub feed: Feed,
    /// Extra config (e.g. partitionKey).
    pub config: Value,
    pub split: Option<PlannedSplit>,
}

/// What one run gave.
pub struct Figures {
    /// Accepted records a second from the end of the burst to the last acceptance.
    pub accepted_per_s: f64,
    /// That, as a share of the open shards' rate left to this producer.
    pub share: Option<f64>,
    pub throttled_per_accepted: f64,
    pub calls_per_accepted: f64,
    /// The slowest shard's p99 delay from write to acceptance.
    pub slowest_p99: Option<Duration>,
    pub lost: u64,
    pub duplicates: u64,
}

/// Records a second `shards` accepted from a second after their first
/// acceptance (when the saved second of burst is spent, if the writer keeps
/// them busy; what is left of it then can take the share over 100%) to their
/// last, and that as a share of the rate they leave this producer.
fn steady(shards: &[&ShardReport], limits: &Limits) -> (f64, Option<f64>) {
    let times = || {
        shards.iter().flat_map(|s| {
            s.accepted_at
                .first()
                .into_iter()
                .chain(s.accepted_at.last())
        })
    };
    let (Some(first), Some(end)) = (times().min().copied(), times().max().copied()) else {
        return (0.0, None);
    };
    let from = first + limits.burst;
    let (accepted, capacity) = shards.iter().fold((0u64, 0.0f64), |(a, c), s| {
        (
            a + s.accepted_between(from, end + Duration::from_nanos(1)),
            c + s.open_between(from, end).as_secs_f64() * limits.records_left(),
        )
    });
    let window = end.saturating_sub(from).as_secs_f64();
    if window <= 0.0 {
        return (0.0, None);
    }
    (
        accepted as f64 / window,
        (capacity > 0.0).then(|| accepted as f64 / capacity),
    )
}

impl Figures {
    pub fn of(report: &Report, limits: &Limits, records: u64) -> Figures {
        let shards: Vec<&ShardReport> = report.shards().collect();
        let (accepted_per_s, share) = steady(&shards, limits);
        let accepted_all = report.accepted.max(1) as f64;
        Figures {
            accepted_per_s,
            share,
            throttled_per_accepted: report.throttled as f64 / accepted_all,
            calls_per_accepted: report.put_calls as f64 / accepted_all,
            slowest_p99: report.shards().filter_map(|s| s.delay_quantile(0.99)).max(),
            lost: report.lost(records),
            duplicates: report.duplicates(),
        }
    }
}

pub fn secs(d: Option<Duration>) -> String {
    d.map_or("-".to_string(), |d| format!("{:.2}", d.as_secs_f64()))
}

pub fn percent(x: Option<f64>) -> String {
    x.map_or("-".to_string(), |x| format!("{:.0}%", x * 100.0))
}

/// The scenarios, sized so that each run takes about `seconds`.
fn scenarios(seconds: u64, size: usize) -> Vec<Scenario> {
    let shards = env_u64("BENCH_SHARDS", 4) as usize;
    let rate = env_u64("BENCH_SHARD_RATE", 1000) as f64;
    let limits = Limits {
        shards,
        records_per_s: rate,
        ..Limits::default()
    };
    let capacity = shards as u64 * rate as u64;
    let feed = Feed {
        size,
        streams: 1,
        state_every: 500,
        ..Feed::default()
    };
    let uuid_keys = json!({});
    let half = Limits {
        other_producer: 0.5,
        ..limits
    };
    vec![
        Scenario {
            name: 'a',
            title: format!("uniform random keys offered at 3x the capacity of {shards} shards"),
            limits,
            feed: Feed {
                records: capacity * seconds,
                rate: 3 * capacity,
                ..feed
            },
            config: uuid_keys.clone(),
            split: None,
        },
        Scenario {
            name: 'b',
            title: format!(
                "one key (`{HOT_KEY}`) carries 30% of the records, partitionKey `/customer`, offered at 1x the capacity"
            ),
            limits,
            feed: Feed {
                // The hot shard takes 47.5% of the records at a quarter of
                // the capacity: it drains for about twice the input's time.
                records: capacity * seconds / 2,
                rate: capacity,
                keys: COLD_KEYS,
                hot_percent: 30,
                ..feed
            },
            config: json!({"partitionKey": "/customer"}),
            split: None,
        },
        Scenario {
            name: 'c',
            title: "another producer uses half of every shard; offered at 3x what is left".to_string(),
            limits: half,
            feed: Feed {
                records: capacity / 2 * seconds,
                rate: 3 * capacity / 2,
                ..feed
            },
            config: uuid_keys.clone(),
            split: None,
        },
        Scenario {
            name: 'd',
            title: format!(
                "{} splits at {:.1} s; uniform keys offered at 3x the capacity",
                shard_id(0),
                seconds as f64 / 2.0
            ),
            limits,
            feed: Feed {
                records: capacity * seconds,
                rate: 3 * capacity,
                ..feed
            },
            config: uuid_keys,
            split: Some(PlannedSplit {
                shard: 0,
                at: Duration::from_secs_f64(seconds as f64 / 2.0),
            }),
        },
    ]
}

/// Runs the scenarios `BENCH_SHARD_SCENARIOS` names (default `abcd`), each
/// with every `shardRateLimit` of `BENCH_SHARD_LIMITS` (default 0,100), by
/// this build and the baseline's; prints a table per scenario; gives this
/// build's runs.
pub fn section(baseline: Option<&Build>) -> Vec<Outcome> {
    let seconds = env_u64("BENCH_SHARD_SECONDS", 8).max(2);
    let size = env_u64("BENCH_SHARD_SIZE", 200) as usize;
    let wanted = std::env::var("BENCH_SHARD_SCENARIOS").unwrap_or_else(|_| "abcd".to_string());
    let settings = env_list("BENCH_SHARD_LIMITS", &[0, 100]);
    let extra: Value = std::env::var("BENCH_SHARD_CONFIG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| serde_json::from_str(&v).expect("BENCH_SHARD_CONFIG: a JSON object"))
        .unwrap_or_else(|| json!({}));
    let sink = ShardSink::start(Limits::default()).expect("start the shard sink");
    println!(
        "\n## Shards with real limits (issue 14): {size} B records, one stream, bufferSize 500{}\n",
        if extra.as_object().is_some_and(|o| !o.is_empty()) {
            format!(", extra config {extra}")
        } else {
            String::new()
        }
    );
    println!("Each shard: token buckets of its records/s and 1 MiB/s holding 1 s of each, full at the start; entries over them get ProvisionedThroughputExceededException. Accepted records/s and the share are counted from 1 s after the first acceptance (the burst spent, if the writer kept the shards busy) to the last acceptance; the share is of the rate the open shards leave this producer. Delay: from the record's write into stdin to its acceptance.\n");
    let mut runs = Vec::new();
    for s in scenarios(seconds, size)
        .into_iter()
        .filter(|s| wanted.contains(s.name))
    {
        println!(
            "### ({}) {}: {} records at {}/s\n",
            s.name, s.title, s.feed.records, s.feed.rate
        );
        println!("| build | shardRateLimit | accepted/s | share of capacity | throttled per accepted | calls per accepted | slowest shard p99 delay s | peak RSS MiB | lost | duplicates | wall s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut notes = Vec::new();
        let builds: Vec<Build> = std::iter::once(Build::current())
            .chain(baseline.cloned())
            .collect();
        for (&limit, build) in settings
            .iter()
            .flat_map(|l| builds.iter().map(move |b| (l, b)))
        {
            let mut config = s.config.clone();
            config["shardRateLimit"] = json!(limit);
            if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
                c.extend(e.clone());
            }
            let label = format!(
                "shards ({}), shardRateLimit {limit}, {}",
                s.name, build.label
            );
            let (run, report) = run_scenario(&sink, &s, config, &label, build, None);
            let f = Figures::of(&report, &s.limits, s.feed.records);
            println!(
                "| {} | {limit} | {:.0} | {} | {:.3} | {:.4} | {} | {:.1} | {} | {} | {:.1} |{}",
                build.label,
                f.accepted_per_s,
                percent(f.share),
                f.throttled_per_accepted,
                f.calls_per_accepted,
                secs(f.slowest_p99),
                run.rss_mb(),
                f.lost,
                f.duplicates,
                run.wall.as_secs_f64(),
                if run.ok {
                    String::new()
                } else {
                    format!(" FAILED: {}", run.note)
                }
            );
            notes.push(format!(
                "- {}, shardRateLimit {limit}: {}",
                build.label,
                targets(&s, &run, &report, &f).join("; ")
            ));
            notes.push(format!("  shards: {}", shard_lines(&report)));
            if build.label == Build::current().label {
                runs.push(run);
            }
        }
        println!();
        for n in notes {
            println!("{n}");
        }
        println!("\n{}\n", load());
    }
    runs
}

/// Runs `build` on scenario `s` with `config`, killing it after `within`;
/// gives its outcome and what the sink saw.
pub fn run_scenario(
    sink: &ShardSink,
    s: &Scenario,
    config: Value,
    label: &str,
    build: &Build,
    within: Option<Duration>,
) -> (Outcome, Report) {
    let epoch = Instant::now();
    sink.reset(s.limits, epoch);
    sink.track(Some(Tracking {
        id_field: ID_FIELD.to_string(),
        sent_field: Some(AT_FIELD.to_string()),
    }));
    if let Some(split) = s.split {
        sink.plan_split(split);
    }
    let feed = Feed {
        stamped: Some(epoch),
        ..s.feed
    };
    let setup = Setup::new(sink_config(&sink.endpoint(), config), &feed);
    let run = measure_within(label, setup.command(build), feed, within);
    (run, sink.report())
}

/// The targets for the scenario, each marked.
fn targets(s: &Scenario, run: &Outcome, report: &Report, f: &Figures) -> Vec<String> {
    let ok = run.ok && f.lost == 0;
    let mark = |met: bool| verdict(ok && met);
    let share = f.share.unwrap_or(0.0);
    let mut t = vec![format!(
        "{}: exit 0, every state echoed, no record lost ({} lost, {} duplicates)",
        mark(true),
        f.lost,
        f.duplicates
    )];
    // The share of capacity at least `least`, and at most `most` of the
    // entries throttled.
    let rate_targets = |least: f64, of: &str, most: f64| {
        [
            format!(
                "{}: >= {:.0}% of {of} ({:.0}%)",
                mark(share >= least),
                least * 100.0,
                share * 100.0
            ),
            format!(
                "{}: <= {:.0}% of entries throttled ({:.1}%)",
                mark(f.throttled_per_accepted <= most),
                most * 100.0,
                f.throttled_per_accepted * 100.0
            ),
        ]
    };
    match s.name {
        'a' => t.extend(rate_targets(0.95, "capacity", 0.05)),
        'b' => {
            let hot = hash_of(HOT_KEY);
            let duration = s.feed.records as f64 / s.feed.rate as f64;
            let cold: Vec<&ShardReport> = report
                .shards()
                .filter(|x| !(x.range.0 <= hot && hot <= x.range.1))
                .collect();
            // A cold shard keeps its rate when its records are accepted
            // over as long as they took to write.
            let kept = cold
                .iter()
                .map(|x| match (x.accepted_at.first(), x.accepted_at.last()) {
                    (Some(a), Some(b)) => (duration / (*b - *a).as_secs_f64().max(1e-3)).min(1.0),
                    _ => 0.0,
                })
                .fold(f64::INFINITY, f64::min);
            let cold_p99 = cold.iter().filter_map(|x| x.delay_quantile(0.99)).max();
            // Backpressure keeps records out of the writer, where the delay
            // above does not see them: how late they were against the input's
            // schedule (record i offered at i / rate) does.
            let lag = cold
                .iter()
                .filter_map(|x| {
                    let lags: Vec<Duration> = x
                        .accepted_at
                        .iter()
                        .zip(&x.accepted_ids)
                        .filter_map(|(at, id)| {
                            let offered =
                                Duration::from_secs_f64((*id)? as f64 / s.feed.rate as f64);
                            Some(at.saturating_sub(offered))
                        })
                        .collect();
                    quantile(lags, 0.99)
                })
                .max();
            let hot_shard = report
                .shards()
                .find(|x| x.range.0 <= hot && hot <= x.range.1);
            let hot_share = hot_shard.and_then(|x| steady(&[x], &s.limits).1);
            t.push(format!(
                "{}: cold shards keep their full rate (slowest accepts its records over {:.0}% of the time they took to write: >= 95%)",
                mark(kept >= 0.95),
                kept * 100.0
            ));
            t.push(format!(
                "{}: cold shards' p99 delay < 2 s ({} s; hot shard {} s, at {} of its capacity; cold shards' p99 lag behind the input's schedule {} s)",
                mark(cold_p99.is_some_and(|d| d < Duration::from_secs(2))),
                secs(cold_p99),
                secs(hot_shard.and_then(|x| x.delay_quantile(0.99))),
                percent(hot_share),
                secs(lag)
            ));
        }
        'c' => t.extend(rate_targets(0.90, "what is left", 0.10)),
        'd' => {
            let split_at = s.split.map(|p| p.at).unwrap_or_default();
            let children: Vec<&ShardReport> =
                report.shards().filter(|x| x.parent.is_some()).collect();
            let first_use = children
                .iter()
                .map(|x| x.accepted_at.first().map(|t| t.saturating_sub(split_at)))
                .collect::<Option<Vec<Duration>>>()
                .and_then(|v| v.into_iter().max());
            t.push(format!(
                "{}: both new shards used within 2 s of the split ({} s; {} children)",
                mark(children.len() == 2 && first_use.is_some_and(|d| d <= Duration::from_secs(2))),
                secs(first_use),
                children.len()
            ));
        }
        _ => {}
    }
    t
}

/// One line per scenario run: each shard's accepted and throttled entries,
/// share of its capacity while it had work, and p99 delay.
pub fn shard_lines(report: &Report) -> String {
    report
        .shards()
        .map(|x| {
            let busy = match (x.accepted_at.first(), x.accepted_at.last()) {
                (Some(a), Some(b)) if b > a => {
                    let window = x.open_between(*a, *b).as_secs_f64();
                    format!("{:.0}/s", x.accepted as f64 / window.max(1e-3))
                }
                _ => "-".to_string(),
            };
            format!(
                "shard {}{}: {} accepted at {busy}, {} throttled, p99 {} s",
                &x.id[x.id.len() - 2..],
                x.closed_at.map_or(String::new(), |t| format!(
                    " (closed at {:.1} s)",
                    t.as_secs_f64()
                )),
                x.accepted,
                x.throttled,
                secs(x.delay_quantile(0.99))
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The smoke run's checks of the shard sink: per-entry throttling on an
/// exact count (manual clock), the byte limit, MD5 and explicit-hash-key
/// routing, a split seen through ListShards and DescribeStreamSummary, and
/// the binary end to end against small real-time limits.
pub fn smoke() {
    use crate::support;
    let sink = ShardSink::start_manual(Limits::default()).expect("start the shard sink");
    let k = support::client_for(&sink.endpoint());
    let put = |stream: &str, entries: &[(&str, Option<&str>, usize)]| -> Value {
        let records: Vec<Value> = entries
            .iter()
            .map(|(key, hash, size)| {
                let data = base64_of(&vec![b'x'; *size]);
                let mut e = json!({"Data": data, "PartitionKey": key});
                if let Some(h) = hash {
                    e["ExplicitHashKey"] = json!(h);
                }
                e
            })
            .collect();
        let body = json!({"StreamName": stream, "Records": records}).to_string();
        let answer = k
            .call("PutRecords", Some(stream), body.as_bytes())
            .expect("PutRecords");
        serde_json::from_slice(&answer).expect("a JSON answer")
    };
    let shard_of =
        |answer: &Value, i: usize| answer["Records"][i]["ShardId"].as_str().map(str::to_string);
    let summary = k
        .describe_stream(&"s".into())
        .expect("DescribeStreamSummary")
        .expect("made on first use");
    assert_eq!(
        (summary.open_shard_count, summary.mode()),
        (Some(4), Some("PROVISIONED"))
    );

    // Records limit: 1,000 a second with 1 s of burst, the clock standing still.
    let a = vec![("a", None, 10); 500];
    for _ in 0..2 {
        let answer = put("s", &a);
        assert_eq!(answer["FailedRecordCount"], 0);
        assert_eq!(
            shard_of(&answer, 499).as_deref(),
            Some("shardId-000000000000")
        );
    }
    let answer = put("s", &a);
    assert_eq!(answer["FailedRecordCount"], 500, "the bucket is empty");
    assert_eq!(
        answer["Records"][0]["ErrorCode"],
        "ProvisionedThroughputExceededException"
    );
    assert!(answer["Records"][0]["ErrorMessage"]
        .as_str()
        .is_some_and(|m| m.contains("shardId-000000000000")));
    assert!(answer["Records"][0].get("SequenceNumber").is_none());
    sink.advance(Duration::from_millis(250));
    let answer = put("s", &a);
    assert_eq!(
        answer["FailedRecordCount"], 250,
        "a quarter second refills 250"
    );
    assert!(answer["Records"][249]["SequenceNumber"].is_string());
    assert!(answer["Records"][250]["ErrorCode"].is_string());
    // Routing: MD5 of the key (RFC 1321's test strings), or the explicit hash key.
    let long = "1234567890".repeat(8);
    let answer = put(
        "s",
        &[
            ("abc", None, 1),
            ("message digest", None, 1),
            (&long, None, 1),
            ("a", Some("340282366920938463463374607431768211455"), 1),
            ("abc", Some("170141183460469231731687303715884105728"), 1),
        ],
    );
    let shards: Vec<Option<String>> = (0..5).map(|i| shard_of(&answer, i)).collect();
    let expect = [2, 3, 1, 3, 2].map(|i| Some(shard_id(i)));
    assert_eq!(
        shards, expect,
        "routed by MD5 (or ExplicitHashKey) over even ranges"
    );
    // Bytes limit: 1 MiB a second, data plus key.
    let answer = put("bytes", &[("message digest", None, 300 * 1024); 4]);
    assert_eq!(
        answer["FailedRecordCount"], 1,
        "the fourth 300 KiB record is over 1 MiB"
    );
    assert!(answer["Records"][3]["ErrorCode"].is_string());

    // A split: the parent closes, two children take its halves.
    let (low, high) = sink.split("s", "shardId-000000000000").expect("split");
    let listed = k.list_shards(&"s".into()).expect("ListShards");
    assert_eq!(listed.len(), 6);
    assert!(listed[0].is_closed() && !listed[1].is_closed());
    let children: Vec<_> = listed
        .iter()
        .filter(|x| x.parent_shard_id.as_deref() == Some("shardId-000000000000"))
        .collect();
    assert_eq!(
        children
            .iter()
            .map(|x| x.shard_id.clone())
            .collect::<Vec<_>>(),
        [low.clone(), high]
    );
    let range = |i: usize| {
        children[i]
            .hash_key_range
            .clone()
            .expect("a hash key range")
    };
    assert_eq!(range(0).starting_hash_key, "0");
    assert_eq!(
        range(1).ending_hash_key,
        listed[0]
            .hash_key_range
            .clone()
            .expect("range")
            .ending_hash_key
    );
    let summary = k
        .describe_stream(&"s".into())
        .expect("DescribeStreamSummary")
        .expect("exists");
    assert_eq!(summary.open_shard_count, Some(5));
    let answer = put("s", &[("a", None, 1)]);
    assert_eq!(
        shard_of(&answer, 0),
        Some(low),
        "the parent's keys go to its children"
    );
    let seen = sink.report();
    assert_eq!(seen.put_calls, 7);
    assert_eq!(
        (seen.accepted, seen.throttled),
        (1000 + 250 + 5 + 3 + 1, 500 + 250 + 1)
    );

    // The binary end to end with small limits in real time: everything
    // lands once, some of it after throttling, on every shard. Within 1 s of
    // the first acceptance the shards take at most 2,100 records (2 full
    // buckets of 300, 2 children born full, 3 open shards refilling at
    // 300/s), so 3,000 always leave a steady window after the burst, however
    // slowly the binary starts.
    const RECORDS: u64 = 3000;
    let limits = Limits {
        shards: 2,
        records_per_s: 300.0,
        ..Limits::default()
    };
    let sink = ShardSink::start(limits).expect("start the shard sink");
    let scenario = Scenario {
        name: 'a',
        title: "smoke".to_string(),
        limits,
        feed: Feed {
            records: RECORDS,
            size: 200,
            streams: 1,
            state_every: 100,
            rate: RECORDS,
            ..Feed::default()
        },
        config: json!({}),
        split: Some(PlannedSplit {
            shard: 1,
            at: Duration::from_millis(500),
        }),
    };
    let (run, report) = run_scenario(
        &sink,
        &scenario,
        json!({"shardRateLimit": 0}),
        "smoke",
        &Build::current(),
        None,
    );
    assert!(run.ok, "{}", run.note);
    let f = Figures::of(&report, &limits, RECORDS);
    assert_eq!(
        (f.lost, report.untracked),
        (0, 0),
        "every record accepted, each with its number"
    );
    assert_eq!(report.accepted, RECORDS + f.duplicates);
    assert!(
        report.throttled > 0,
        "3,000 records in 1 s are over 1,200 of burst and 900/s"
    );
    assert_eq!(report.shards().count(), 4, "the planned split happened");
    assert!(report.shards().all(|x| x.delays.len() as u64 == x.accepted));
    assert!(
        report
            .shards()
            .all(|x| x.closed_at.is_some() || x.accepted > 0),
        "every open shard takes records: {}",
        shard_lines(&report)
    );
    assert!(
        f.share.is_some(),
        "acceptances after the burst give a share: {}",
        shard_lines(&report)
    );
    assert!(f.slowest_p99.is_some(), "every acceptance has a delay");
    println!(
        "shard sink smoke run: {} accepted, {} throttled, {} calls; {}",
        report.accepted,
        report.throttled,
        report.put_calls,
        shard_lines(&report)
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
