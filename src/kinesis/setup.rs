//! Stream setup: making sure a Kinesis stream exists and is writable before
//! the first record, creating it when allowed (never a stream named by ARN).

use crate::aws::retry::Backoff;
use crate::failure::Failure;
use crate::failure::Kind;
use crate::kinesis::put_records::Limits;
use crate::kinesis::retry::{first_contact, is_refused};
use crate::kinesis::shards::ShardMap;
use crate::kinesis::stream::StreamRef;
use crate::kinesis::{Kinesis, NewStream, StreamStatus, StreamSummary};
use crate::text::show;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often a stream's status is polled while it is being created.
const POLL: Duration = Duration::from_millis(500);

/// Streams set up at once: AWS allows 5 CreateStream and 20 DescribeStreamSummary
/// calls a second per account, and four pollers stay well within both.
const SETUP_THREADS: usize = 4;

/// A stream ready to be written, as set-up found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// Whether this program created it.
    pub created: bool,
    /// What its PutRecords calls may carry.
    pub limits: Limits,
    /// Whether it is in on-demand mode.
    pub on_demand: bool,
    /// Its open shards, when they were asked for and could be listed.
    pub shards: Option<ShardMap>,
    /// Why its shards could not be listed, when they were asked for.
    pub shards_unknown: Option<String>,
}

/// How a missing stream is handled.
#[derive(Debug, Clone, Copy)]
pub struct Creation {
    /// Whether a missing stream may be created.
    pub allowed: bool,
    /// How it is made.
    pub shape: NewStream,
    /// What follows "stream `x` does not exist" when creation is not allowed:
    /// how this command's user allows it.
    pub when_missing: &'static str,
    /// Whether the stream's shards are listed once it is ready (for pacing
    /// and aggregation by shard).
    pub list_shards: bool,
}

/// Why records are paced by what their streams accept alone, when the shards
/// of some of `streams` (with what set-up found of them) could not be listed:
/// one message for them all, naming the first few.
pub fn unlisted_shards_note<'a>(
    streams: impl IntoIterator<Item = (&'a str, &'a Ready)>,
) -> Option<String> {
    const NAMED: usize = 3;
    let unlisted: Vec<(&str, &str)> = streams
        .into_iter()
        .filter_map(|(name, r)| Some((name, r.shards_unknown.as_deref()?)))
        .collect();
    let (first, why) = unlisted.first()?;
    let mut names: Vec<String> = unlisted
        .iter()
        .take(NAMED)
        .map(|(n, _)| format!("`{n}`"))
        .collect();
    if unlisted.len() > NAMED {
        names.push(format!("and {} more", unlisted.len() - NAMED));
    }
    Some(format!(
        "cannot list the shards of Kinesis stream {} ({first}: {why}): records to {} are paced and aggregated \
         without knowing the shards; allow kinesis:ListShards for pacing per shard",
        names.join(", "),
        if unlisted.len() == 1 { "it" } else { "them" }
    ))
}

/// Waits until `stream` is ACTIVE or UPDATING, creating it first when it is
/// missing and creation is allowed; gives up after `timeout`. A stream named
/// by ARN is never created: it may be another account's, which is not ours
/// to create, and CreateStream takes no ARN.
pub fn ensure_stream(
    kinesis: &Kinesis,
    stream: &StreamRef,
    creation: Creation,
    timeout: Duration,
) -> Result<Ready, Failure> {
    ensure_one(kinesis, stream, creation, timeout, &AtomicBool::new(false))
}

/// `ensure_stream` for each of `streams`, `SETUP_THREADS` at a time, so that
/// new streams are created side by side rather than one wait after another.
/// The first failure (in `streams` order) stops the others.
pub fn ensure_streams(
    kinesis: &Kinesis,
    streams: &[&StreamRef],
    creation: Creation,
    timeout: Duration,
) -> Result<Vec<Ready>, Failure> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<Ready, Failure>>>> =
        Mutex::new(streams.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..SETUP_THREADS.min(streams.len()) {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(stream) = streams.get(i) else {
                        return;
                    };
                    let result = ensure_one(kinesis, stream, creation, timeout, &stop);
                    if result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    results.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(result);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
    // A stream stopped because another failed has no result, or a `Stopped` one:
    // report the real failure, the first in catalog order.
    if let Some(failure) = results
        .iter()
        .flatten()
        .filter_map(|r| r.as_ref().err())
        .find(|f| f.message != STOPPED)
    {
        return Err(failure.clone());
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Failure::new(Kind::System, STOPPED))))
        .collect()
}

/// Why a stream's set-up ended early: another stream's failed.
const STOPPED: &str = "stream set-up stopped because another stream's failed";

/// `ensure_stream`, giving up early once `stop` is set.
fn ensure_one(
    kinesis: &Kinesis,
    stream: &StreamRef,
    creation: Creation,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<Ready, Failure> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut backoff = Backoff::until(deadline);
    let mut created = false;
    let mut last_status = String::from("unknown");
    let mut answer = first_contact(|| kinesis.describe_stream_by(stream, Some(deadline)));
    if let Err(e) = &answer {
        if is_refused(e) {
            return Err(Failure::from_kinesis(
                &format!("cannot check Kinesis stream {stream}"),
                e,
            ));
        }
    }
    loop {
        let wait = match answer {
            Ok(Some(summary)) if summary.status().is_writable() => {
                return Ok(ready(kinesis, stream, &summary, created, creation.list_shards))
            }
            Ok(Some(summary)) if summary.status() == StreamStatus::Deleting => {
                return Err(Failure::new(
                    Kind::Config,
                    format!("Kinesis stream {stream} is being deleted; wait until it is gone, then run again"),
                ))
            }
            Ok(Some(summary)) => {
                last_status = summary.stream_status;
                POLL
            }
            Ok(None) => {
                let name = creatable(stream, &creation)?;
                match kinesis.create_stream_by(name, &creation.shape, Some(deadline)) {
                Ok(made) => {
                    created |= made;
                    last_status = "CREATING".into();
                    POLL
                }
                Err(e) if e.is_retryable() => backoff_delay(&mut backoff, started, stream, &e.to_string())?,
                Err(e) => return Err(Failure::from_kinesis(&format!("cannot create Kinesis stream {stream}"), &e)),
                }
            }
            Err(e) if e.is_retryable() => backoff_delay(&mut backoff, started, stream, &e.to_string())?,
            Err(e) => return Err(Failure::from_kinesis(&format!("cannot check Kinesis stream {stream}"), &e)),
        };
        if stop.load(Ordering::Relaxed) {
            return Err(Failure::new(Kind::System, STOPPED));
        }
        if !sleep_before(wait, deadline) {
            return Err(Failure::new(
                Kind::Transient,
                format!(
                    "Kinesis stream {stream} is still not writable after {} (status {last_status}); \
                     raise retryTimeoutSeconds or check the stream in the AWS console",
                    waited(started)
                ),
            ));
        }
        answer = kinesis.describe_stream_by(stream, Some(deadline));
    }
}

/// Sleeps `wait`, or until `deadline` when that comes first; whether time
/// is left for another look.
fn sleep_before(wait: Duration, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    std::thread::sleep(wait.min(left));
    Instant::now() < deadline
}

/// How long a wait that began at `started` has lasted, as messages say it:
/// to a tenth of a second, as `--timeout` is written (`3s`, `2.5s`).
fn waited(started: Instant) -> String {
    let tenths = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    show(Duration::from_secs_f64(tenths))
}

/// What set-up found of a writable stream: its limits and mode from its
/// summary, and its shards when they are wanted.
fn ready(
    kinesis: &Kinesis,
    stream: &StreamRef,
    summary: &StreamSummary,
    created: bool,
    list_shards: bool,
) -> Ready {
    let (shards, shards_unknown) = if list_shards {
        match read_shard_map(kinesis, stream) {
            Ok(map) => (Some(map), None),
            Err(why) => (None, Some(why)),
        }
    } else {
        (None, None)
    };
    Ready {
        created,
        limits: limits_of(summary),
        on_demand: summary.mode() == Some("ON_DEMAND"),
        shards,
        shards_unknown,
    }
}

/// The name to create a missing stream by, or why it must not be created:
/// creation is not allowed, or the stream is named by an ARN (it may be
/// another account's).
fn creatable<'a>(stream: &'a StreamRef, creation: &Creation) -> Result<&'a str, Failure> {
    match stream {
        StreamRef::Name(name) if creation.allowed => Ok(name),
        StreamRef::Name(_) => Err(Failure::new(
            Kind::Config,
            format!("Kinesis stream {stream} does not exist{}", creation.when_missing),
        )),
        StreamRef::Arn(arn) => Err(Failure::new(
            Kind::Config,
            format!(
                "Kinesis stream {stream} does not exist (ARN {}); a stream named by its ARN is never \
                 created here, whatever createStreams or --create say, as it may belong to another \
                 account: create it in account {}, or name a stream of your own account by its name",
                arn.as_str(),
                arn.account()
            ),
        )),
    }
}

/// The stream's open shards as a map; why not, when they cannot be listed
/// or their ranges do not make a map.
pub fn read_shard_map(kinesis: &Kinesis, stream: &StreamRef) -> Result<ShardMap, String> {
    let listed = kinesis.list_shards(stream).map_err(|e| e.to_string())?;
    ShardMap::from_listed(&listed)
        .ok_or_else(|| "its open shards' hash key ranges do not cover every key once".to_string())
}

/// What the stream's PutRecords calls may carry, from its summary.
fn limits_of(summary: &StreamSummary) -> Limits {
    Limits::for_stream(summary.max_record_size_kib)
}

/// Waits until `stream` is ACTIVE, for at most `timeout`, as `aws kinesis
/// wait stream-exists` does, and gives the summary that said so: a stream
/// that does not exist yet, or an endpoint that does not accept connections
/// yet (an emulator starting), is waited for too.
pub fn wait_active(
    kinesis: &Kinesis,
    stream: &StreamRef,
    timeout: Duration,
) -> Result<StreamSummary, Failure> {
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        let state = match kinesis.describe_stream_by(stream, Some(deadline)) {
            Ok(Some(summary)) if summary.status() == StreamStatus::Active => return Ok(summary),
            Ok(Some(summary)) => format!("it is {}", summary.status().as_str()),
            Ok(None) => "it does not exist".to_string(),
            Err(e) if e.is_retryable() => format!("the last look failed: {e}"),
            Err(e) => {
                return Err(Failure::from_kinesis(
                    &format!("cannot check Kinesis stream {stream}"),
                    &e,
                ))
            }
        };
        if Instant::now() >= deadline || !sleep_before(POLL, deadline) {
            return Err(Failure::new(
                Kind::Transient,
                format!(
                    "Kinesis stream {stream} is not ACTIVE after {}: {state}",
                    waited(started)
                ),
            ));
        }
    }
}

fn backoff_delay(
    backoff: &mut Backoff,
    started: Instant,
    stream: &StreamRef,
    last: &str,
) -> Result<Duration, Failure> {
    backoff.next_delay().ok_or_else(|| {
        Failure::new(
            Kind::Transient,
            format!(
                "gave up preparing Kinesis stream {stream} after {}: {last}",
                waited(started)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(unlisted: Option<&str>) -> Ready {
        Ready {
            created: false,
            limits: Limits::CLASSIC,
            on_demand: false,
            shards: None,
            shards_unknown: unlisted.map(str::to_string),
        }
    }

    #[test]
    fn one_note_for_every_stream_whose_shards_are_unknown() {
        let (ok, denied) = (ready(None), ready(Some("AccessDeniedException")));
        assert_eq!(unlisted_shards_note([("a", &ok)]), None);
        let note = unlisted_shards_note([("a", &ok), ("b", &denied)]).unwrap();
        assert!(
            note.contains("stream `b` (b: AccessDeniedException): records to it"),
            "{note}"
        );
        let many: Vec<(String, Ready)> = (0..5)
            .map(|i| (format!("s{i}"), ready(Some("x"))))
            .collect();
        let note = unlisted_shards_note(many.iter().map(|(n, r)| (n.as_str(), r))).unwrap();
        assert!(note.contains("`s0`, `s1`, `s2`, and 2 more"), "{note}");
        assert!(note.contains("records to them"));
    }
}
