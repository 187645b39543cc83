//! `list`: the streams of the account in the region, with status and capacity mode.

use crate::failure::Failure;
use crate::kinesis::retry::retrying;
use crate::kinesis::stream::StreamRef;
use crate::kinesis::{Kinesis, PageStart, StreamSummary};
use crate::pipeline::output::{print_all, OutputFormat};
use crate::pipeline::Settings;
use serde_json::json;

/// Streams asked for per ListStreams call (AWS's default page).
const PAGE: u32 = 100;

/// Runs `list`: every stream, one a line, in the service's order. Returns how many.
pub fn run(
    config: &Settings,
    format: OutputFormat,
    mut out: impl std::io::Write,
) -> Result<usize, Failure> {
    let kinesis = crate::pipeline::open_session(&config.access, None)?.kinesis;
    let streams = list_all(&kinesis, config)?;
    let mut text = String::new();
    match format {
        OutputFormat::Text => {
            let width = streams
                .iter()
                .map(|s| s.stream_name.len())
                .max()
                .unwrap_or(0);
            for s in &streams {
                text.push_str(&format!(
                    "{:width$}  {:8}  {}\n",
                    s.stream_name,
                    s.stream_status,
                    s.mode().unwrap_or("-")
                ));
            }
        }
        OutputFormat::Json => {
            for s in &streams {
                let line = json!({
                    "stream": s.stream_name,
                    "status": s.stream_status,
                    "mode": s.mode(),
                    "arn": s.stream_arn,
                });
                text.push_str(&line.to_string());
                text.push('\n');
            }
        }
    }
    print_all(&mut out, text.as_bytes())?;
    Ok(streams.len())
}

/// Every stream, following pagination (`NextToken`, or `HasMoreStreams` with
/// the last name where the service gives no token). Status and mode come
/// from the page's StreamSummaries, else from DescribeStreamSummary per stream.
fn list_all(kinesis: &Kinesis, config: &Settings) -> Result<Vec<StreamSummary>, Failure> {
    let budget = config.sending.retry_timeout;
    let failed = |e| Failure::from_kinesis("cannot list Kinesis streams", &e);
    let mut streams = Vec::new();
    let mut from = PageStart::First;
    loop {
        let page = retrying(budget, || kinesis.list_streams_page(PAGE, &from)).map_err(failed)?;
        match &page.summaries {
            Some(summaries) => streams.extend(summaries.iter().cloned()),
            None => {
                for name in &page.names {
                    let stream = StreamRef::Name(name.clone());
                    let summary = retrying(budget, || kinesis.describe_stream(&stream))
                        .map_err(|e| crate::kinesis::stream_call_failed("describe", &stream, &e))?;
                    // A stream deleted since the listing is no longer one to show.
                    streams.extend(summary);
                }
            }
        }
        match page.next() {
            Some(next) => from = next,
            None => return Ok(streams),
        }
    }
}
