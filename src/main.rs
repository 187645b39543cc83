//! Command-line entry: parses arguments, runs the command, maps errors to exit codes.

use argh::FromArgs;
use destination_kinesis::catalog::Catalog;
use destination_kinesis::config::Config;
use destination_kinesis::failure::{Failure, EXIT_CONFIG, EXIT_FAILURE};
use destination_kinesis::protocol::{connection_status, spec_message, Emitter};
use destination_kinesis::{check, spec, write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Airbyte destination and pipeline tool for Amazon Kinesis Data Streams.
///
/// Exit codes: 0 success, 1 failure, 2 usage or configuration error.
#[derive(FromArgs)]
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
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if matches!(args.get(1).map(String::as_str), Some("--version" | "-V")) {
        println!("destination-kinesis {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let name = args
        .first()
        .map(String::as_str)
        .unwrap_or("destination-kinesis");
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let cli = match Cli::from_args(&[name], &rest) {
        Ok(cli) => cli,
        Err(early) => {
            return if early.status.is_ok() {
                print!("{}", early.output);
                ExitCode::SUCCESS
            } else {
                eprint!("{}", early.output);
                eprintln!("Run `destination-kinesis --help` for usage.");
                ExitCode::from(EXIT_CONFIG as u8)
            };
        }
    };
    let out = Emitter::stdout();
    let result = match cli.command {
        Command::Spec(_) => {
            out.emit(&spec_message(spec::spec()));
            Ok(())
        }
        Command::Check(c) => {
            // A failed check is an answer, not an error: Airbyte expects exit 0.
            let line = match check::run(&c.config) {
                Ok(summary) => connection_status(true, &summary),
                Err(why) => connection_status(false, &why),
            };
            out.emit(&line);
            Ok(())
        }
        Command::Write(w) => run_write(&w, &out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            f.emit(&out);
            eprintln!("destination-kinesis: {}", f.message);
            ExitCode::from(if f.exit_code == EXIT_CONFIG {
                EXIT_CONFIG as u8
            } else {
                EXIT_FAILURE as u8
            })
        }
    }
}

fn run_write(w: &WriteCmd, out: &Emitter) -> Result<(), Failure> {
    let config = Config::from_file(&w.config)?;
    let catalog = Catalog::from_file(&w.catalog)?;
    write::run(&config, &catalog, std::io::stdin(), out).map(|_| ())
}
