//! How the writer scales with the number of streams (issue 11): peak memory
//! with many streams of large records, and CPU with large catalogs, for this
//! build and the baseline, in the same run.

use super::feed::Feed;
use super::sink::Sink;
use super::{env_list, env_u64, load, run_build, verdict, Build, Outcome};
use serde_json::{json, Value};

/// The memory target for 100 streams of 101 records of 20 KB.
const RSS_TARGET_MB: f64 = 40.0;

/// How much more than in proportion to the streams the CPU of the largest
/// catalog may grow over the smallest's: "about ten times" for 10x the streams.
const CATALOG_GROWTH_SLACK: f64 = 1.2;

/// Peak RSS of streams × 101 records of 20 KB, each stream's in a row (so
/// each fills one batch and leaves one record in the next), and of the
/// 100-stream input sent to one stream for reference.
pub fn memory_section(sink: &Sink, baseline: Option<&Build>) -> Vec<Outcome> {
    let counts = env_list("BENCH_MANY_STREAMS", &[100, 500]);
    let per_stream = env_u64("BENCH_MANY_RECORDS", 101);
    let size = env_u64("BENCH_MANY_SIZE", 20_480) as usize;
    if counts.is_empty() || per_stream == 0 {
        return Vec::new();
    }
    // The connector's default bufferSize (100), as in the issue: 101
    // records a stream make one full batch and one more record.
    let config = json!({"bufferSize": 100});
    println!(
        "\n## Many streams: {per_stream} records of {size} B per stream, each stream's in a row, default config (bufferSize 100)\n"
    );
    println!("| streams | records | peak RSS MiB old | peak RSS MiB new | new/old | records/s old | records/s new | CPU s old | CPU s new |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let reference = counts.first().copied().unwrap_or(100) * per_stream;
    let mut shapes = vec![(1u64, reference)];
    shapes.extend(counts.iter().map(|&k| (k, k * per_stream)));
    let mut runs = Vec::new();
    let mut checks = Vec::new();
    for (streams, records) in shapes {
        let feed = Feed {
            records,
            size,
            streams: streams as usize,
            in_a_row: per_stream,
            state_every: per_stream,
            ..Feed::default()
        };
        let (old, new) = old_and_new(sink, baseline, &format!("{streams} streams"), feed, &config);
        println!(
            "| {streams} | {records} | {} | {:.1} | {} | {} | {:.0} | {} | {:.2} |",
            old.as_ref()
                .map_or("-".into(), |o| format!("{:.1}", o.rss_mb())),
            new.rss_mb(),
            old.as_ref()
                .map_or("-".into(), |o| format!("{:.2}", new.rss_mb() / o.rss_mb())),
            old.as_ref()
                .map_or("-".into(), |o| format!("{:.0}", o.records_per_s())),
            new.records_per_s(),
            old.as_ref()
                .map_or("-".into(), |o| format!("{:.2}", o.cpu.as_secs_f64())),
            new.cpu.as_secs_f64(),
        );
        if streams == 100 {
            checks.push(format!(
                "- {}: peak RSS < {RSS_TARGET_MB} MB with 100 streams: {:.1} MiB",
                verdict(new.ok && new.rss_mb() * 1.048_576 < RSS_TARGET_MB),
                new.rss_mb()
            ));
        }
        runs.extend(old);
        runs.push(new);
    }
    for c in checks {
        println!("{c}");
    }
    println!("\n{} at the end of the many-streams runs", load());
    runs
}

/// CPU (user + system, the whole process) for catalogs of many streams: a
/// table for each number of records per stream in `BENCH_CATALOG_RECORDS`
/// (0: set-up alone).
pub fn catalog_section(sink: &Sink, baseline: Option<&Build>) -> Vec<Outcome> {
    let counts = env_list("BENCH_CATALOG_STREAMS", &[10_000, 30_000, 100_000]);
    let mut runs = Vec::new();
    if counts.is_empty() {
        return runs;
    }
    for per_stream in env_list("BENCH_CATALOG_RECORDS", &[0, 1]) {
        runs.extend(catalog_table(sink, baseline, &counts, per_stream));
    }
    runs
}

/// One table of `catalog_section`.
fn catalog_table(
    sink: &Sink,
    baseline: Option<&Build>,
    counts: &[u64],
    per_stream: u64,
) -> Vec<Outcome> {
    println!(
        "\n## Large catalogs: set-up (DescribeStreamSummary of every stream){}\n",
        if per_stream == 0 {
            " alone, no records".to_string()
        } else {
            format!(" and {per_stream} record(s) of 200 B per stream, one PutRecords call each")
        }
    );
    println!("| catalog streams | records | CPU s old | CPU s new | wall s old | wall s new | peak RSS MiB old | peak RSS MiB new |\n|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut runs = Vec::new();
    let mut cpu: Vec<(u64, Option<f64>, f64)> = Vec::new();
    for &streams in counts {
        let feed = Feed {
            records: streams * per_stream,
            size: 200,
            streams: streams as usize,
            state_every: streams,
            ..Feed::default()
        };
        let (old, new) = old_and_new(
            sink,
            baseline,
            &format!("catalog of {streams}"),
            feed,
            &json!({}),
        );
        let cell = |f: &dyn Fn(&Outcome) -> String| old.as_ref().map_or("-".into(), f);
        println!(
            "| {streams} | {} | {} | {:.2} | {} | {:.2} | {} | {:.1} |",
            feed.records,
            cell(&|o| format!("{:.2}", o.cpu.as_secs_f64())),
            new.cpu.as_secs_f64(),
            cell(&|o| format!("{:.2}", o.wall.as_secs_f64())),
            new.wall.as_secs_f64(),
            cell(&|o| format!("{:.1}", o.rss_mb())),
            new.rss_mb(),
        );
        cpu.push((
            streams,
            old.as_ref().map(|o| o.cpu.as_secs_f64()),
            new.cpu.as_secs_f64(),
        ));
        runs.extend(old);
        runs.push(new);
    }
    if let (Some(first), Some(last)) = (cpu.first(), cpu.last()) {
        if last.0 > first.0 {
            let growth = |a: f64, b: f64| b / a.max(1e-9);
            let new_growth = growth(first.2, last.2);
            let old_growth = match (first.1, last.1) {
                (Some(a), Some(b)) => format!("{:.1}x", growth(a, b)),
                _ => "-".to_string(),
            };
            println!(
                "\nCPU for {} streams over {}: new {new_growth:.1}x, old {old_growth} ({}x the streams)",
                last.0,
                first.0,
                last.0 / first.0
            );
            let proportional = last.0 as f64 / first.0 as f64;
            println!(
                "- {}: {} streams cost at most about {proportional:.0}x the CPU of {} (<= {:.0}x): {new_growth:.1}x",
                verdict(new_growth <= proportional * CATALOG_GROWTH_SLACK),
                last.0,
                first.0,
                proportional * CATALOG_GROWTH_SLACK,
            );
        }
    }
    println!("\n{} at the end of the catalog runs", load());
    runs
}

/// Runs `feed` with the baseline (if any), then this build.
fn old_and_new(
    sink: &Sink,
    baseline: Option<&Build>,
    label: &str,
    feed: Feed,
    config: &Value,
) -> (Option<Outcome>, Outcome) {
    let run = |b: &Build| {
        run_build(
            &format!("{label}, {}", b.label),
            b,
            sink,
            feed,
            config.clone(),
        )
    };
    let old = baseline.map(run);
    (old, run(&Build::current()))
}
