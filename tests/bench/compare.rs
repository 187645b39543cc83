//! Before and after in the same run: the baseline build and this one on the
//! same inputs, alternating, for both record formats. The machine is shared,
//! so each figure is the best of `BENCH_COMPARE_REPEAT` runs (records/s and
//! CPU separately; peak RSS the highest), and runs of the two builds and two
//! formats take turns so that a busy moment hits them alike. The baseline
//! ignores `recordFormat` (it writes its own format both times): its two rows
//! differ only by noise, which gives the noise floor of the comparison.

use super::feed::Feed;
use super::sink::Sink;
use super::{env_u64, load, run_build, Build, Outcome};
use serde_json::Value;
use std::time::Duration;

/// The record formats compared.
const FORMATS: [&str; 2] = ["legacy", "v2"];

/// Best figures of one build and format over the repeats.
#[derive(Debug, Clone, Copy, Default)]
struct Best {
    records_per_s: f64,
    cpu_per_million: f64,
    rss_mb: f64,
}

impl Best {
    fn take(&mut self, run: &Outcome) {
        self.records_per_s = self.records_per_s.max(run.records_per_s());
        let cpu = run.cpu_per_million();
        if self.cpu_per_million == 0.0 || cpu < self.cpu_per_million {
            self.cpu_per_million = cpu;
        }
        self.rss_mb = self.rss_mb.max(run.rss_mb());
    }
}

/// Runs each scenario (label, input, simulated round trip in ms, extra
/// config) with `old` and the current build; prints the before/after table
/// and the record formats' costs; gives the runs.
pub fn section(sink: &Sink, old: &Build, scenarios: &[(String, Feed, u64, Value)]) -> Vec<Outcome> {
    let repeat = env_u64("BENCH_COMPARE_REPEAT", 5).max(1);
    let new = Build::current();
    println!("\n## Before and after: {} against this build\n", old.label);
    println!(
        "Same inputs, same sink, alternating; best of {repeat} runs each. `bufferSize` 500. The old binary ignores `recordFormat`.\n"
    );
    println!("| scenario | recordFormat | records/s old | records/s new | new/old | CPU s per 1M old | CPU s per 1M new | new/old | peak RSS MiB old | peak RSS MiB new | new/old |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut runs = Vec::new();
    let mut formats_rows = Vec::new();
    let mut every_run = Vec::new();
    for (label, feed, delay, extra) in scenarios {
        sink.set_delay(Duration::from_millis(*delay));
        // [format][build]: 0 old, 1 new.
        let mut best = [[Best::default(); 2]; 2];
        let mut in_order = Vec::new();
        for r in 0..repeat {
            // Reverse the order every other round, so neither build nor
            // format always goes first.
            let mut order: Vec<(usize, usize)> =
                (0..2).flat_map(|f| (0..2).map(move |b| (f, b))).collect();
            if r % 2 == 1 {
                order.reverse();
            }
            for (f, b) in order {
                let build = if b == 0 { old } else { &new };
                let mut config = extra.clone();
                config["recordFormat"] = Value::from(FORMATS[f]);
                let run = run_build(
                    &format!("{label}, {}, {}", FORMATS[f], build.label),
                    build,
                    sink,
                    *feed,
                    config,
                );
                best[f][b].take(&run);
                in_order.push(format!(
                    "{} {} {:.0}k",
                    FORMATS[f],
                    if b == 0 { "old" } else { "new" },
                    run.records_per_s() / 1000.0
                ));
                runs.push(run);
            }
        }
        for (f, format) in FORMATS.iter().enumerate() {
            let [o, n] = best[f];
            println!(
                "| {label} | {format} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {:.2} |",
                o.records_per_s,
                n.records_per_s,
                n.records_per_s / o.records_per_s,
                o.cpu_per_million,
                n.cpu_per_million,
                n.cpu_per_million / o.cpu_per_million,
                o.rss_mb,
                n.rss_mb,
                n.rss_mb / o.rss_mb,
            );
        }
        let ratio = |b: usize| {
            let (l, v) = (best[0][b], best[1][b]);
            (
                l.records_per_s / v.records_per_s,
                l.cpu_per_million / v.cpu_per_million,
            )
        };
        let (new_speed, new_cpu) = ratio(1);
        let (old_speed, old_cpu) = ratio(0);
        formats_rows.push(format!(
            "| {label} | {new_speed:.3} | {new_cpu:.3} | {old_speed:.3} | {old_cpu:.3} |"
        ));
        every_run.push(format!("- {label}: {}", in_order.join(", ")));
    }
    sink.set_delay(Duration::ZERO);
    println!("\nlegacy against v2 (legacy formats every record's `_airbyte_emitted_at` as epoch seconds, v2 carries a larger envelope; the old build's two columns do the same work twice, so they show the noise):\n");
    println!("| scenario | new: records/s legacy/v2 | new: CPU legacy/v2 | old (same work): records/s | old: CPU |\n|---|---:|---:|---:|---:|");
    for row in formats_rows {
        println!("{row}");
    }
    println!("\nrecords/s of every run, in the order they ran:\n");
    for line in every_run {
        println!("{line}");
    }
    println!("\n{} at the end of the before/after runs", load());
    if let Some(failed) = runs.iter().find(|r| !r.ok) {
        println!("FAILED: {}: {}", failed.label, failed.note);
    }
    runs
}
