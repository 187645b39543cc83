//! Issue 18's measuring side: what the defaults (only `bufferSize: 100` set)
//! do where users meet Kinesis. Shards with real limits (`shard_sink`) behind
//! a simulated round trip; shards that refuse a share of entries at random
//! whatever the rate, in a PROVISIONED and an ON_DEMAND stream; three streams
//! without ListShards through random refusals; and aggregation beside plain
//! records, with and without another producer. Each run by this build and by
//! the baseline (`BENCH_BASELINE`) in the same run, with the targets
//! marked met or not.

use super::feed::Feed;
use super::shard_scenarios::{percent, run_scenario, secs, Figures, Scenario};
use super::shard_sink::{Limits, Report, ShardSink};
use super::{env_u64, load, verdict, Build, Outcome};
use serde_json::{json, Value};
use std::time::Duration;

/// The only setting the defaults' runs change: the Java connector's batch size.
const DEFAULT_CONFIG: fn() -> Value = || json!({"bufferSize": 100});

/// One run's row.
struct Row {
    run: Outcome,
    report: Report,
    figures: Figures,
}

impl Row {
    fn entries_per_call(&self) -> f64 {
        self.report.entries as f64 / self.report.put_calls.max(1) as f64
    }

    fn line(&self, what: &str) -> String {
        format!(
            "| {what} | {:.0} | {} | {:.3} | {:.1} | {:.1} | {} | {} | {:.1} | {} |",
            self.figures.accepted_per_s,
            percent(self.figures.share),
            self.figures.throttled_per_accepted,
            self.entries_per_call(),
            self.run.rss_mb(),
            secs(self.figures.slowest_p99),
            self.figures.lost,
            self.run.wall.as_secs_f64(),
            if self.run.ok {
                "ok".to_string()
            } else {
                format!("FAILED: {}", self.run.note)
            }
        )
    }

    /// Whether it exited 0 with every state echoed and no record lost.
    fn complete(&self) -> bool {
        self.run.ok && self.figures.lost == 0
    }
}

/// Runs `build` on `scenario` with `config`, killed after `within`.
fn run(
    sink: &ShardSink,
    scenario: &Scenario,
    config: Value,
    build: &Build,
    within: Duration,
) -> Row {
    let label = format!("latency ({}), {}", scenario.name, build.label);
    let (run, report) = run_scenario(sink, scenario, config, &label, build, Some(within));
    let figures = Figures::of(&report, &scenario.limits, scenario.feed.records);
    Row {
        run,
        report,
        figures,
    }
}

/// The builds to run: this one, then the baseline when there is one.
fn builds(baseline: Option<&Build>) -> Vec<Build> {
    std::iter::once(Build::current())
        .chain(baseline.cloned())
        .collect()
}

fn table_head() {
    println!("| build | accepted/s | share of capacity | throttled per accepted | entries per call | peak RSS MiB | slowest shard p99 delay s | lost | wall s | outcome |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
}

/// Runs the section; gives the runs of this build (the baseline's may fail
/// to keep up, which is what the section shows, not a failure of the run).
pub fn section(baseline: Option<&Build>) -> Vec<Outcome> {
    let seconds = env_u64("BENCH_LATENCY_SECONDS", 8).max(3);
    let rtt = Duration::from_millis(env_u64("BENCH_LATENCY_RTT_MS", 20));
    // A build that keeps up finishes in about `seconds`; one that does not
    // is stopped after this and shown as such.
    let within = Duration::from_secs(env_u64("BENCH_LATENCY_LIMIT_S", 90));
    let sink = ShardSink::start(Limits::default()).expect("start the shard sink");
    println!(
        "\n## Real latency: the defaults (only bufferSize 100 set) against shards with limits\n"
    );
    println!("Each shard: 1,000 records/s and 1 MiB/s, 1 s of burst. Share of capacity: accepted records/s from 1 s after the first acceptance to the last, over what the open shards leave this producer. A run that does not finish within {} s is stopped (SIGKILL) and marked.\n", within.as_secs());
    let wanted = std::env::var("BENCH_LATENCY_SCENARIOS").unwrap_or_else(|_| "1234567".to_string());
    let runs_scenario = |name: char| wanted.contains(name);
    let mut runs = Vec::new();
    let feed = Feed {
        size: 200,
        streams: 1,
        state_every: 500,
        ..Feed::default()
    };
    let uniform = |shards: u64, offered_x10: u64, limits: Limits| Scenario {
        name: 'x',
        title: String::new(),
        limits: Limits {
            shards: shards as usize,
            ..limits
        },
        feed: Feed {
            records: shards * 1000 * seconds * offered_x10.min(10) / 10,
            rate: shards * 1000 * offered_x10 / 10,
            ..feed
        },
        config: json!({}),
        split: None,
    };
    let with_rtt = Limits {
        round_trip: rtt,
        ..Limits::default()
    };

    // (1) The defaults at a real round trip.
    for (shards, least) in [(16, 0.90), (64, 0.85)] {
        if !runs_scenario(if shards == 16 { '1' } else { '2' }) {
            continue;
        }
        let s = Scenario {
            name: if shards == 16 { '1' } else { '2' },
            ..uniform(shards, 15, with_rtt)
        };
        println!(
            "### ({}) {shards} shards, {} ms round trip, uniform keys offered at 1.5x the capacity: {} records at {}/s\n",
            s.name,
            rtt.as_millis(),
            s.feed.records,
            s.feed.rate
        );
        table_head();
        let mut notes = Vec::new();
        for build in builds(baseline) {
            let row = run(&sink, &s, DEFAULT_CONFIG(), &build, within);
            println!("{}", row.line(&build.label));
            if build.label == "new" {
                let share = row.figures.share.unwrap_or(0.0);
                notes.push(format!(
                    "- {}: exit 0, every state, nothing lost; {}: >= {:.0}% of capacity ({:.0}%); {}: <= 0.05 throttled per accepted ({:.3}); {}: peak RSS <= 64 MiB ({:.1})",
                    verdict(row.complete()),
                    verdict(share >= least),
                    least * 100.0,
                    share * 100.0,
                    verdict(row.figures.throttled_per_accepted <= 0.05),
                    row.figures.throttled_per_accepted,
                    verdict(row.run.rss_mb() <= 64.0),
                    row.run.rss_mb()
                ));
                runs.push(row.run);
            }
        }
        print_notes(&notes);
    }

    // (3) The storm: four shards offered three times what they take.
    for _ in (0..1).filter(|_| runs_scenario('3')) {
        let storm = Scenario {
            name: '3',
            ..uniform(4, 30, with_rtt)
        };
        println!(
        "### (3) 4 shards, {} ms round trip, uniform keys offered at 3x the capacity: {} records at {}/s\n",
        rtt.as_millis(),
        storm.feed.records,
        storm.feed.rate
    );
        table_head();
        let mut notes = Vec::new();
        for build in builds(baseline) {
            let row = run(&sink, &storm, DEFAULT_CONFIG(), &build, within);
            println!("{}", row.line(&build.label));
            if build.label == "new" {
                notes.push(format!(
                "- {}: exit 0, every state, nothing lost; {}: <= 0.05 throttled per accepted ({:.3})",
                verdict(row.complete()),
                verdict(row.figures.throttled_per_accepted <= 0.05),
                row.figures.throttled_per_accepted
            ));
                runs.push(row.run);
            }
        }
        print_notes(&notes);
    }

    // (4, 5) Refusals that come whatever the rate.
    for on_demand in [false, true] {
        if !runs_scenario(if on_demand { '5' } else { '4' }) {
            continue;
        }
        let limits = Limits {
            random_refusals: 0.03,
            on_demand,
            ..Limits::default()
        };
        let s = Scenario {
            name: if on_demand { '5' } else { '4' },
            ..uniform(4, 7, limits)
        };
        println!(
            "### ({}) 4 shards of a{} stream refuse 3% of the entries that fit, at random; no added latency; offered at 0.7x: {} records at {}/s\n",
            s.name,
            if on_demand { "n ON_DEMAND" } else { " PROVISIONED" },
            s.feed.records,
            s.feed.rate
        );
        table_head();
        let mut notes = Vec::new();
        for build in builds(baseline) {
            let row = run(&sink, &s, DEFAULT_CONFIG(), &build, within);
            println!("{}", row.line(&build.label));
            if build.label == "new" {
                let share = row.figures.share.unwrap_or(0.0);
                notes.push(format!(
                    "- {}: exit 0, every state, nothing lost; {}: >= 66% of capacity ({:.0}%)",
                    verdict(row.complete()),
                    verdict(share >= 0.66),
                    share * 100.0
                ));
                runs.push(row.run);
            }
        }
        print_notes(&notes);
    }

    // (6) Three streams, no ListShards, 5% refused at random.
    for _ in (0..1).filter(|_| runs_scenario('6')) {
        let records = env_u64("BENCH_LATENCY_UNLISTED_RECORDS", 6000);
        let unlisted = Scenario {
            name: '6',
            title: String::new(),
            limits: Limits {
                // The shards' own limits play no part here.
                records_per_s: 1e6,
                bytes_per_s: 1e9,
                random_refusals: 0.05,
                list_shards: false,
                round_trip: rtt,
                ..Limits::default()
            },
            feed: Feed {
                records,
                streams: 3,
                state_every: 100,
                rate: 0,
                ..feed
            },
            config: json!({}),
            split: None,
        };
        println!(
        "### (6) {records} records into three streams whose shards cannot be listed (ListShards refused), 5% of entries refused at random, {} ms round trip, input as fast as it is read\n",
        rtt.as_millis()
    );
        table_head();
        let mut paced_off = None;
        let mut paced = None;
        for build in builds(baseline) {
            let row = run(&sink, &unlisted, DEFAULT_CONFIG(), &build, within);
            println!("{}", row.line(&build.label));
            if build.label == "new" {
                paced = Some((row.run.wall, row.entries_per_call(), row.complete()));
                runs.push(row.run);
                let mut off = DEFAULT_CONFIG();
                off["shardRateLimit"] = json!(0);
                let row = run(&sink, &unlisted, off, &build, within);
                println!("{}", row.line("new, shardRateLimit 0"));
                paced_off = Some(row.run.wall);
                runs.push(row.run);
            }
        }
        if let (Some((wall, per_call, complete)), Some(off)) = (paced, paced_off) {
            print_notes(&[format!(
            "- {}: exit 0, every state, nothing lost; {}: >= 60 entries per call ({per_call:.1}); {}: at most twice the time with pacing off ({:.2} s against {:.2} s: {:.2}x)",
            verdict(complete),
            verdict(per_call >= 60.0),
            verdict(wall.as_secs_f64() <= 2.0 * off.as_secs_f64()),
            wall.as_secs_f64(),
            off.as_secs_f64(),
            wall.as_secs_f64() / off.as_secs_f64()
        )]);
        }
    }

    // (7) Aggregation against plain records, alone and beside another producer.
    let records = env_u64("BENCH_LATENCY_AGGREGATION_RECORDS", 30_000);
    for other in [0.0, 0.2].into_iter().filter(|_| runs_scenario('7')) {
        let s = Scenario {
            name: '7',
            title: String::new(),
            limits: Limits {
                shards: 2,
                other_producer: other,
                ..Limits::default()
            },
            feed: Feed {
                records,
                rate: 0,
                ..feed
            },
            config: json!({}),
            split: None,
        };
        println!(
            "### (7) {records} records of {} B into 2 shards{}, input as fast as it is read: aggregated and plain\n",
            feed.size,
            if other > 0.0 {
                format!(", another producer using {:.0}% of each shard", other * 100.0)
            } else {
                String::new()
            }
        );
        table_head();
        let mut times = Vec::new();
        for build in builds(baseline) {
            for aggregation in [true, false] {
                let mut config = DEFAULT_CONFIG();
                config["aggregation"] = json!(aggregation);
                let row = run(&sink, &s, config, &build, within);
                let what = format!(
                    "{}, {}",
                    build.label,
                    if aggregation { "aggregated" } else { "plain" }
                );
                println!("{}", row.line(&what));
                if build.label == "new" {
                    times.push((row.run.wall, row.complete()));
                    runs.push(row.run);
                }
            }
        }
        if let [(aggregated, a_ok), (plain, p_ok)] = times[..] {
            let ratio = aggregated.as_secs_f64() / plain.as_secs_f64();
            print_notes(&[format!(
                "- {}: both exit 0, every state, nothing lost; {}: aggregated in at most 0.67 of the plain run's time ({ratio:.2})",
                verdict(a_ok && p_ok),
                verdict(ratio <= 0.67)
            )]);
        }
    }
    println!("{}\n", load());
    runs
}

fn print_notes(notes: &[String]) {
    println!();
    for n in notes {
        println!("{n}");
    }
    println!();
}
