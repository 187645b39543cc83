//! Command-line entry: parses arguments, runs the command, maps errors to exit codes.

use argh::FromArgs;
use destination_kinesis::airbyte::catalog::Catalog;
use destination_kinesis::airbyte::check;
use destination_kinesis::airbyte::config::{Config, Overrides};
use destination_kinesis::airbyte::protocol::{connection_status, spec_message, Emitter};
use destination_kinesis::airbyte::spec;
use destination_kinesis::airbyte::write;
use destination_kinesis::args;
use destination_kinesis::engine::in_flight::InFlight;
use destination_kinesis::failure::{Failure, EXIT_CONFIG, EXIT_FAILURE};
use destination_kinesis::kinesis::stream::StreamRef;
use destination_kinesis::kinesis::StartPosition;
use destination_kinesis::pipeline::describe;
use destination_kinesis::pipeline::describe::{parse_timeout, DescribeOptions, DEFAULT_WAIT};
use destination_kinesis::pipeline::list;
use destination_kinesis::pipeline::output::{self, parse_format, OutputFormat};
use destination_kinesis::pipeline::put;
use destination_kinesis::pipeline::put::{KeySource, PutOptions};
use destination_kinesis::pipeline::put_input::{
    parse_delimiter, parse_hash_key, parse_input, parse_key_delimiter, HashKey, InputFormat,
    KeyDelimiter,
};
use destination_kinesis::pipeline::read;
use destination_kinesis::pipeline::read::{
    parse_from, parse_idle_timeout, parse_poll_interval, parse_until, ReadOptions,
    DEFAULT_POLL_INTERVAL,
};
use destination_kinesis::pipeline::shard_filter::{parse_key, parse_shard_id, ShardFilter};
use destination_kinesis::pipeline::Settings;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Airbyte destination and pipeline tool for Amazon Kinesis Data Streams.
#[derive(FromArgs)]
#[argh(
    example = "destination-kinesis put --stream events --endpoint http://localhost:4566 < events.jsonl\n\
               destination-kinesis read --stream events --endpoint http://localhost:4566 --format json\n\
               destination-kinesis list --endpoint http://localhost:4566\n\
               destination-kinesis describe --stream events --wait-active --timeout 60s\n\
               destination-kinesis --version",
    note = "Credentials, region and endpoint come from --config/flags, then the AWS environment variables and profile. \
            Messages go to stderr; stdout carries only Airbyte messages (spec, check, write) or data (read, list, describe). \
            Every command takes -h for --help, and --flag=value as --flag value.",
    error_code(0, "success"),
    error_code(
        1,
        "failure (AWS refused, unreachable, a record not accepted, bad input line)"
    ),
    error_code(2, "usage or configuration error")
)]
struct Cli {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Spec(SpecCmd),
    Check(CheckCmd),
    Write(WriteCmd),
    Put(PutCmd),
    Read(ReadCmd),
    List(ListCmd),
    Describe(DescribeCmd),
}

/// Print the connector specification (one SPEC message).
#[derive(FromArgs)]
#[argh(subcommand, name = "spec", example = "destination-kinesis spec")]
struct SpecCmd {}

/// Validate a config and make one harmless signed call (ListStreams).
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "check",
    example = "destination-kinesis check --config config.json"
)]
struct CheckCmd {
    /// path of the JSON config
    #[argh(option)]
    config: PathBuf,
    /// the AWS profile of ~/.aws/config and ~/.aws/credentials to use (in place of AWS_PROFILE)
    #[argh(option)]
    profile: Option<String>,
}

/// Write Airbyte messages from stdin to Kinesis, echoing STATE messages once safe.
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "write",
    example = "destination-kinesis write --config config.json --catalog catalog.json < messages.jsonl"
)]
struct WriteCmd {
    /// path of the JSON config
    #[argh(option)]
    config: PathBuf,
    /// path of the configured catalog
    #[argh(option)]
    catalog: PathBuf,
    /// how many PutRecords calls may be in flight at once: "auto" (grows while Kinesis keeps up, up to 64) or 1 to 64 (default: the config's maxInFlight, auto)
    #[argh(option, from_str_fn(in_flight))]
    max_in_flight: Option<InFlight>,
    /// the AWS profile of ~/.aws/config and ~/.aws/credentials to use (in place of AWS_PROFILE)
    #[argh(option)]
    profile: Option<String>,
}

/// Send each stdin line to a Kinesis stream as one record.
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "put",
    example = "jq -c '.items[]' dump.json | destination-kinesis put --stream items --partition-key-field /id\n\
               destination-kinesis put --stream logs --create --shards 2 --endpoint http://localhost:4566 < app.log\n\
               find . -name '*.log' -print0 | destination-kinesis put --stream paths --delimiter '\\0'\n\
               printf 'customer-42:{{\"total\":3}}\\n' | destination-kinesis put --stream orders --key-delimiter :\n\
               for f in *.png; do base64 -w0 \"$f\"; echo; done | destination-kinesis put --stream images --input base64\n\
               destination-kinesis put --stream events --explicit-hash-key 0 < events.jsonl\n\
               destination-kinesis put --stream arn:aws:kinesis:eu-west-1:222222222222:stream/shared < events.jsonl",
    note = "Records are sent in PutRecords batches (bufferSize, default 100), paced per shard and retried like write; \
            empty lines are skipped (an empty value after a key is sent). \
            A record over the stream's limit (1 MiB unless it says more) stops the run, and so does a line without the \
            --key-delimiter or, with --input base64, one that is not base64. \
            Progress is shown when stderr is a terminal, a summary at the end.",
    error_code(0, "every line was accepted by Kinesis"),
    error_code(
        1,
        "a line was not accepted, the stream is missing, or Kinesis is unreachable"
    ),
    error_code(2, "usage or configuration error")
)]
struct PutCmd {
    /// the Kinesis stream to write to: its name, or its ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME), e.g. another account's
    #[argh(option, from_str_fn(stream_ref))]
    stream: StreamRef,
    /// take each partition key from this JSON Pointer into the record (e.g. /customer/id); records without it get a random key
    #[argh(option)]
    partition_key_field: Option<String>,
    /// use this partition key for every record (all on one shard)
    #[argh(option)]
    partition_key: Option<String>,
    /// each line is KEY<D>VALUE (kcat -K): the partition key is what comes before the first D, the record the rest; D is one or more characters or escapes (\t, \xHH)
    #[argh(option, from_str_fn(parse_key_delimiter))]
    key_delimiter: Option<KeyDelimiter>,
    /// the byte that ends each record: a character, or \n (the default, \r\n also taken), \0 (NUL), \t, \r, \\\\ or \xHH
    #[argh(option, from_str_fn(parse_delimiter))]
    delimiter: Option<u8>,
    /// text (each line is a record, the default) or base64 (each line is the base64 of a record's bytes: binary data, newlines included)
    #[argh(option, from_str_fn(parse_input), default = "InputFormat::Text")]
    input: InputFormat,
    /// send every record with this hash key, a decimal from 0 to 2^128-1, which picks the shard in place of the partition key's MD5
    #[argh(option, from_str_fn(parse_hash_key))]
    explicit_hash_key: Option<HashKey>,
    /// create the stream when it does not exist (also when the --config file's createStreams allows it)
    #[argh(switch)]
    create: bool,
    /// shards of a stream created here (default: the config's shardCount, 5)
    #[argh(option)]
    shards: Option<u32>,
    /// the Kinesis endpoint URL, e.g. http://localhost:4566 (default: AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL, AWS's for the region); --endpoint-url works too
    #[argh(option)]
    endpoint: Option<String>,
    /// AWS region (default: the config's, AWS_REGION, AWS_DEFAULT_REGION, the profile's, a stream ARN's, us-east-1)
    #[argh(option)]
    region: Option<String>,
    /// JSON config file, the same as write's; flags override it
    #[argh(option)]
    config: Option<PathBuf>,
    /// the AWS profile of ~/.aws/config and ~/.aws/credentials to use (in place of AWS_PROFILE)
    #[argh(option)]
    profile: Option<String>,
    /// how many PutRecords calls may be in flight at once: "auto" (grows while Kinesis keeps up, up to 64) or 1 to 64 (default: the config's maxInFlight, auto)
    #[argh(option, from_str_fn(in_flight))]
    max_in_flight: Option<InFlight>,
    /// send buffered lines at the latest this many ms after the first of them was read (default: the config's lingerMs, 200)
    #[argh(option)]
    linger_ms: Option<u64>,
}

/// Print the records of a Kinesis stream on stdout, one a line.
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "read",
    example = "destination-kinesis read --stream events --limit 10\n\
               destination-kinesis read --stream events --from 2024-05-01T12:00:00Z --until 2024-05-01T13:00:00Z --format json\n\
               destination-kinesis read --stream events --from -10m --until -5m\n\
               destination-kinesis read --stream events --from latest --follow | grep ERROR\n\
               destination-kinesis read --stream events --follow --poll-interval 5s\n\
               destination-kinesis read --stream events --follow --idle-timeout 10s > seen.txt\n\
               destination-kinesis read --stream events --shard shardId-000000000001 --from after:49590338271490256608559692538361571095921575989136588898\n\
               destination-kinesis read --stream events --shard 0 --shard 1\n\
               destination-kinesis read --stream events --key customer-42 --format json | jq 'select(.partitionKey == \"customer-42\")'\n\
               destination-kinesis read --stream arn:aws:kinesis:eu-west-1:222222222222:stream/shared --format json",
    note = "Reads every shard, parents of split or merged shards before their children, oldest first per shard; \
            KPL aggregated records are unpacked. Without --follow it stops at the end of the data. \
            --format json prints shard, sequenceNumber, subSequenceNumber (a record of a KPL aggregate: its place in it, from 0), \
            partitionKey, explicitHashKey (a record of a KPL aggregate that has one), arrivalTime (when Kinesis took it, \
            left out when the service gives none) and data (or dataBase64 when not UTF-8). \
            A shard is polled about once a second once it has caught up (--poll-interval), up to 5 times a second while behind. \
            When stderr is a terminal, a status line shows the records read and the lag (MillisBehindLatest of the shard furthest behind).",
    error_code(
        0,
        "read to the end, to --until, --limit or --idle-timeout, or until stdout closed"
    ),
    error_code(1, "the stream is missing, Kinesis refused or is unreachable"),
    error_code(2, "usage or configuration error")
)]
struct ReadCmd {
    /// the Kinesis stream to read: its name, or its ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)
    #[argh(option, from_str_fn(stream_ref))]
    stream: StreamRef,
    /// where to start: trim-horizon (oldest kept, the default), latest, a time (RFC 3339 or -10m, that long ago), or at:SEQ / after:SEQ in the one shard given with --shard
    #[argh(
        option,
        from_str_fn(parse_from),
        default = "StartPosition::TrimHorizon"
    )]
    from: StartPosition,
    /// stop each shard at its first record that arrived after this time (RFC 3339 or -10m); with --follow, end once every shard is past it
    #[argh(option, from_str_fn(parse_until))]
    until: Option<f64>,
    /// stop after this many records
    #[argh(option)]
    limit: Option<u64>,
    /// keep polling for new records and new shards until interrupted
    #[argh(switch)]
    follow: bool,
    /// pause between calls to a shard that has caught up, 200ms to 5m (default 1s)
    #[argh(option, from_str_fn(parse_poll_interval))]
    poll_interval: Option<Duration>,
    /// end (exit 0) once no record came for this long, e.g. 10s
    #[argh(option, from_str_fn(parse_idle_timeout))]
    idle_timeout: Option<Duration>,
    /// read only this shard (an ID such as shardId-000000000001, or its number); repeat for more; its children after a reshard are not read
    #[argh(option, from_str_fn(parse_shard_id))]
    shard: Vec<String>,
    /// read only the shard this partition key's records go to (all its records, other keys' too), and its children that take the key after a reshard; repeat for more
    #[argh(option, from_str_fn(parse_key))]
    key: Vec<String>,
    /// text (each record's bytes and a newline, the default) or json (one object a record, with metadata; safe for binary data and newlines)
    #[argh(option, from_str_fn(parse_format), default = "OutputFormat::Text")]
    format: OutputFormat,
    /// the Kinesis endpoint URL, e.g. http://localhost:4566 (default: AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL, AWS's for the region); --endpoint-url works too
    #[argh(option)]
    endpoint: Option<String>,
    /// AWS region (default: the config's, AWS_REGION, AWS_DEFAULT_REGION, the profile's, a stream ARN's, us-east-1)
    #[argh(option)]
    region: Option<String>,
    /// JSON config file, the same as write's; flags override it
    #[argh(option)]
    config: Option<PathBuf>,
    /// the AWS profile of ~/.aws/config and ~/.aws/credentials to use (in place of AWS_PROFILE)
    #[argh(option)]
    profile: Option<String>,
}

/// List the Kinesis streams of the account in the region, with status and capacity mode.
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "list",
    example = "destination-kinesis list\n\
               destination-kinesis list --endpoint http://localhost:4566 --format json | jq -r 'select(.status == \"ACTIVE\") | .stream'",
    note = "Text: one stream a line, its name, status (CREATING, ACTIVE, UPDATING, DELETING) and mode (PROVISIONED, ON_DEMAND). \
            --format json prints one object a stream: stream, status, mode, arn.",
    error_code(0, "listed (possibly no stream)"),
    error_code(1, "Kinesis refused or is unreachable"),
    error_code(2, "usage or configuration error")
)]
struct ListCmd {
    /// text (the default) or json (one object a stream)
    #[argh(option, from_str_fn(parse_format), default = "OutputFormat::Text")]
    format: OutputFormat,
    /// the Kinesis endpoint URL, e.g. http://localhost:4566 (default: AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL, AWS's for the region); --endpoint-url works too
    #[argh(option)]
    endpoint: Option<String>,
    /// AWS region (default: the config's, AWS_REGION, AWS_DEFAULT_REGION, the profile's, a stream ARN's, us-east-1)
    #[argh(option)]
    region: Option<String>,
    /// JSON config file, the same as write's; flags override it
    #[argh(option)]
    config: Option<PathBuf>,
    /// the AWS profile of ~/.aws/config and ~/.aws/credentials to use (in place of AWS_PROFILE)
    #[argh(option)]
    profile: Option<String>,
}

/// Describe a Kinesis stream: status, mode, retention, encryption, max record size, shards.
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "describe",
    example = "destination-kinesis describe --stream events\n\
               destination-kinesis describe --stream events --format json | jq '.shards[] | select(.open) | .shard'\n\
               destination-kinesis describe --stream events --wait-active --timeout 60s > /dev/null\n\
               destination-kinesis describe --stream arn:aws:kinesis:eu-west-1:222222222222:stream/shared",
    note = "Shards are listed with their hash key ranges, whether they are open, and the shards they were split or merged from. \
            --wait-active first waits until the stream is ACTIVE (as `aws kinesis wait stream-exists` does, a stream that does not \
            exist yet, and an endpoint that does not answer yet, are waited for too), then describes it.",
    error_code(0, "described (after --wait-active: the stream is ACTIVE)"),
    error_code(
        1,
        "the stream does not exist, is not ACTIVE within --timeout, or Kinesis refused or is unreachable"
    ),
    error_code(2, "usage or configuration error")
)]
struct DescribeCmd {
    /// the Kinesis stream to describe: its name, or its ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)
    #[argh(option, from_str_fn(stream_ref))]
    stream: StreamRef,
    /// wait until the stream is ACTIVE before describing it (for CI scripts)
    #[argh(switch)]
    wait_active: bool,
    /// how long --wait-active waits, 1s to 7d (default 180s, as aws kinesis wait stream-exists)
    #[argh(option, from_str_fn(parse_timeout))]
    timeout: Option<Duration>,
    /// text (the default) or json (one object)
    #[argh(option, from_str_fn(parse_format), default = "OutputFormat::Text")]
    format: OutputFormat,
    /// the Kinesis endpoint URL, e.g. http://localhost:4566 (default: AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL, AWS's for the region); --endpoint-url works too
    #[argh(option)]
    endpoint: Option<String>,
    /// AWS region (default: the config's, AWS_REGION, AWS_DEFAULT_REGION, the profile's, a stream ARN's, us-east-1)
    #[argh(option)]
    region: Option<String>,
    /// JSON config file, the same as write's; flags override it
    #[argh(option)]
    config: Option<PathBuf>,
    /// the AWS profile of ~/.aws/config and ~/.aws/credentials to use (in place of AWS_PROFILE)
    #[argh(option)]
    profile: Option<String>,
}

/// A `--stream` value: a name checked against Kinesis's naming rule, or a stream ARN.
fn stream_ref(value: &str) -> Result<StreamRef, String> {
    StreamRef::parse(value)
}

fn in_flight(value: &str) -> Result<InFlight, String> {
    InFlight::parse(value)
}

fn main() -> ExitCode {
    // std::env::args() would panic on an argument that is not UTF-8 (a raw
    // byte given as --delimiter, say): say which one instead.
    let args: Vec<String> = match std::env::args_os().map(|a| a.into_string()).collect() {
        Ok(args) => args,
        Err(bad) => {
            eprintln!(
                "destination-kinesis: the argument {} is not UTF-8 text; give bytes as escapes such as \\xff",
                bad.to_string_lossy()
            );
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    if matches!(args.get(1).map(String::as_str), Some("--version" | "-V")) {
        println!("destination-kinesis {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let given = args.get(1..).unwrap_or_default();
    let rest = args::normalize(given);
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let cli = match Cli::from_args(&["destination-kinesis"], &rest) {
        Ok(cli) => cli,
        Err(early) => {
            return if early.status.is_ok() {
                print!("{}", early.output);
                ExitCode::SUCCESS
            } else {
                eprint!("{}", early.output);
                let help = match args::command(given) {
                    Some(command) => format!("destination-kinesis {command} --help"),
                    None => "destination-kinesis --help".to_string(),
                };
                eprintln!("Run `{help}` for usage.");
                ExitCode::from(EXIT_CONFIG as u8)
            };
        }
    };
    let out = Emitter::stdout();
    let result = match cli.command {
        Command::Spec(_) => out.emit(&spec_message(spec::spec())).map_err(Failure::from),
        Command::Check(c) => {
            let flags = Overrides {
                profile: c.profile,
                ..Overrides::default()
            };
            // A failed check is an answer, not an error: Airbyte expects exit 0.
            let line = match check::run(&c.config, &flags) {
                Ok(summary) => connection_status(true, &summary),
                Err(why) => connection_status(false, &why),
            };
            out.emit(&line).map_err(Failure::from)
        }
        // Airbyte reads a failed write's reason from a TRACE message on stdout.
        Command::Write(w) => run_write(&w, &out).inspect_err(|f| f.emit(&out)),
        // The pipeline commands keep stdout for data: failures go to stderr only.
        Command::Put(p) => run_put(p).map(|_| ()),
        Command::Read(r) => run_read(r).map(|_| ()),
        Command::List(l) => run_list(l).map(|_| ()),
        Command::Describe(d) => run_describe(d),
    };
    exit(result)
}

fn run_write(w: &WriteCmd, out: &Emitter) -> Result<(), Failure> {
    let flags = Overrides {
        max_in_flight: w.max_in_flight,
        profile: w.profile.clone(),
        ..Overrides::default()
    };
    let config = Config::load(Some(&w.config), &flags)?;
    let catalog = Catalog::from_file(&w.catalog)?;
    write::run(&config, &catalog, std::io::stdin(), out).map(|_| ())
}

/// The exit code of a command, its failure told on stderr.
fn exit(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("destination-kinesis: {}", f.message);
            if let Some(done) = &f.done {
                eprintln!("destination-kinesis: {done}");
            }
            ExitCode::from(if f.exit_code == EXIT_CONFIG {
                EXIT_CONFIG as u8
            } else {
                EXIT_FAILURE as u8
            })
        }
    }
}

fn run_put(p: PutCmd) -> Result<put::PutSummary, Failure> {
    let keys = KeySource::from_flags(p.partition_key_field, p.partition_key, p.key_delimiter)?;
    let flags = Overrides {
        endpoint: p.endpoint,
        region: p.region,
        profile: p.profile,
        max_in_flight: p.max_in_flight,
        shards: p.shards,
        linger_ms: p.linger_ms,
    };
    let config = Config::load(p.config.as_deref(), &flags)?;
    let options = PutOptions {
        stream: p.stream,
        keys,
        delimiter: p.delimiter.unwrap_or(b'\n'),
        input: p.input,
        explicit_hash_key: p.explicit_hash_key,
        create: p.create || (p.config.is_some() && config.create_streams),
        progress: std::io::stderr().is_terminal(),
    };
    put::run(&pipeline_settings(config), &options, std::io::stdin())
}

/// The config of a pipeline command from its `--config`, `--endpoint`, `--region` and `--profile`.
fn pipeline_config(
    file: Option<&std::path::Path>,
    endpoint: Option<String>,
    region: Option<String>,
    profile: Option<String>,
) -> Result<Settings, Failure> {
    let flags = Overrides {
        endpoint,
        region,
        profile,
        ..Overrides::default()
    };
    Ok(pipeline_settings(Config::load(file, &flags)?))
}

/// What a pipeline command takes of a config.
fn pipeline_settings(config: Config) -> Settings {
    Settings {
        access: config.access,
        sending: config.sending,
        create_streams: config.create_streams,
        new_streams: config.new_streams,
    }
}

fn run_read(r: ReadCmd) -> Result<read::ReadSummary, Failure> {
    let config = pipeline_config(r.config.as_deref(), r.endpoint, r.region, r.profile)?;
    let options = ReadOptions {
        stream: r.stream,
        from: r.from,
        until: r.until,
        limit: r.limit,
        follow: r.follow,
        format: r.format,
        poll_interval: r.poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL),
        idle_timeout: r.idle_timeout,
        shards: ShardFilter::new(r.shard, r.key),
        progress: std::io::stderr().is_terminal(),
    };
    // Flushed after every page, so --follow shows records as they come.
    let out = std::io::BufWriter::with_capacity(64 * 1024, output::stdout()?);
    read::run(&config, &options, out)
}

fn run_list(l: ListCmd) -> Result<usize, Failure> {
    let config = pipeline_config(l.config.as_deref(), l.endpoint, l.region, l.profile)?;
    list::run(&config, l.format, output::stdout()?)
}

fn run_describe(d: DescribeCmd) -> Result<(), Failure> {
    if d.timeout.is_some() && !d.wait_active {
        return Err(Failure::usage(
            "--timeout is how long --wait-active waits: give both",
        ));
    }
    let config = pipeline_config(d.config.as_deref(), d.endpoint, d.region, d.profile)?;
    let options = DescribeOptions {
        stream: d.stream,
        format: d.format,
        wait_active: d.wait_active.then(|| d.timeout.unwrap_or(DEFAULT_WAIT)),
    };
    describe::run(&config, &options, output::stdout()?)
}
