//! The command line's habits, through the binary: `-h` wherever `--help` works,
//! `--flag=value` wherever `--flag value` does, `--endpoint-url` for `--endpoint`,
//! `--profile` on every command that talks to AWS (in place of `AWS_PROFILE`,
//! through the same credential chain and region lookup), and messages that tell
//! the cause before the summary, in the terms of the flags given, with plurals
//! and sizes as people write them, and every field `read --format json` prints
//! documented.

use crate::support;
use crate::support::cli::{cli, run_cli};
use crate::support::standin::StandIn;
use crate::support::{
    catalog, command, record_line, run_as, run_command, shared_kinesis_local, state_line,
    KinesisLocal, Stdout, TempDir,
};
use serde_json::json;
use std::collections::BTreeSet;

fn kl() -> &'static KinesisLocal {
    shared_kinesis_local(&[])
}

/// The commands and what each talks to: every one but `spec` talks to AWS.
const COMMANDS: [&str; 7] = ["spec", "check", "write", "put", "read", "list", "describe"];

#[test]
fn h_is_help_everywhere() {
    let mut all: Vec<Vec<&str>> = vec![vec![]];
    all.extend(COMMANDS.iter().map(|c| vec![*c]));
    for words in all {
        let with = |flag: &str| {
            let mut args = words.clone();
            args.push(flag);
            command(&args).output().expect("run the binary")
        };
        let (long, short) = (with("--help"), with("-h"));
        assert!(short.status.success(), "{words:?} -h: {short:?}");
        assert_eq!(short.stdout, long.stdout, "{words:?}: -h is --help");
        let usage = String::from_utf8_lossy(&short.stdout);
        let expected = ["Usage: destination-kinesis"]
            .into_iter()
            .chain(words.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(usage.starts_with(&expected), "{usage}");
        // Every command that talks to AWS takes --profile.
        if !words.is_empty() && words != ["spec"] {
            assert!(usage.contains("--profile <profile>"), "{words:?}: {usage}");
        }
        // The flags that take no value are the ones the argument pass leaves
        // without one: a value after any other flag is the flag's.
        let first = usage.lines().next().unwrap_or_default();
        let tokens: Vec<&str> = first.split_whitespace().collect();
        let mut switches: Vec<&str> = tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let flag = t.trim_start_matches('[').trim_end_matches(']');
                let takes_value = tokens.get(i + 1).is_some_and(|n| n.starts_with('<'));
                (flag.starts_with("--") && !takes_value).then_some(flag)
            })
            .collect();
        switches.push("--help");
        switches.sort_unstable();
        let mut known = destination_kinesis::args::switches(words.first().copied());
        known.sort_unstable();
        if !words.is_empty() {
            assert_eq!(switches, known, "{words:?}: {first}");
        }
    }
}

#[test]
fn flag_equals_value_and_endpoint_url_work_like_the_spaced_forms() {
    let endpoint = kl().endpoint();
    let endpoint_url = format!("--endpoint-url={endpoint}");
    let run = run_cli(
        &[
            "put",
            "--stream=habits-eq",
            "--create",
            "--shards=1",
            &endpoint_url,
        ],
        b"a\nb\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("created Kinesis stream `habits-eq` (1 shard)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("put 2 of 2 lines into Kinesis stream `habits-eq` (2 bytes)"),
        "{}",
        run.stderr
    );

    // A value that starts with `-` is the flag's value, after `=` or a space.
    for from in [["--from=-1h"].as_slice(), ["--from", "-1h"].as_slice()] {
        let mut args = vec!["read", "--stream", "habits-eq", "--endpoint", &endpoint];
        args.extend_from_slice(from);
        let run = run_cli(&args, b"");
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "a\nb\n", "{args:?}");
    }

    let run = run_cli(
        &[
            "read",
            "--stream=habits-eq",
            &endpoint_url,
            "--format=json",
            "--limit=1",
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json().len(), 1);
    assert_eq!(run.json()[0]["data"], "a");

    let run = run_cli(
        &[
            "describe",
            "--stream",
            "habits-eq",
            "--endpoint-url",
            &endpoint,
            "--format=json",
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()[0]["stream"], "habits-eq");

    let run = run_cli(&["list", &endpoint_url, "--format=json"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.json().iter().any(|s| s["stream"] == "habits-eq"));

    // A command without --endpoint keeps the name it was given in its refusal.
    let dir = TempDir::new("habits-check");
    let config = dir.file("config.json", b"{}");
    let out = command(&[
        "check",
        "--config",
        config.to_str().unwrap(),
        "--endpoint-url=http://127.0.0.1:1",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("Unrecognized argument: --endpoint-url"),
        "{stderr}"
    );
    assert!(stderr.contains("Run `destination-kinesis check --help` for usage."));
}

/// Shared AWS files with one profile, `ci`: the stand-in's key and token, and
/// its region in the config file.
fn profile_files(dir: &TempDir, region: &str) -> [(String, String); 2] {
    let credentials = dir.file(
        "credentials",
        format!(
            "[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\naws_session_token = {}\n",
            support::standin::ACCESS_KEY,
            support::standin::SECRET_KEY,
            support::standin::SESSION_TOKEN
        )
        .as_bytes(),
    );
    let config = dir.file(
        "config",
        format!("[profile ci]\nregion = {region}\n").as_bytes(),
    );
    [
        (
            "AWS_SHARED_CREDENTIALS_FILE".to_string(),
            credentials.display().to_string(),
        ),
        ("AWS_CONFIG_FILE".to_string(), config.display().to_string()),
    ]
}

#[test]
fn profile_selects_credentials_and_region_in_place_of_aws_profile() {
    let s = StandIn::start();
    // Requests must be signed for the profile's region: it reached the region lookup.
    s.set_region("eu-west-3");
    s.add_stream("_orders", 1);
    let dir = TempDir::new("habits-profile");
    let files = profile_files(&dir, "eu-west-3");
    let endpoint = s.endpoint();
    let with_files = |args: &[&str], aws_profile: Option<&str>| {
        let mut c = command(args);
        c.envs(files.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(p) = aws_profile {
            c.env("AWS_PROFILE", p);
        }
        c
    };

    // --profile wins over AWS_PROFILE, whose profile does not exist.
    let run = run_as(
        Stdout::Data,
        with_files(
            &["list", "--endpoint", &endpoint, "--profile", "ci"],
            Some("nosuch"),
        ),
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("_orders"), "{}", run.stdout);

    let run = run_as(
        Stdout::Data,
        with_files(
            &[
                "put",
                "--stream",
                "_orders",
                "--endpoint",
                &endpoint,
                "--profile=ci",
            ],
            None,
        ),
        b"one line\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(s.stored_len(), 1);

    // A profile neither file has is named as the user named it, and blamed on the
    // shared files, not on a role.
    for (args, aws_profile, named) in [
        (
            vec!["--profile", "nosuch"],
            None,
            "--profile names profile `nosuch`",
        ),
        (vec![], Some("nosuch"), "AWS_PROFILE names profile `nosuch`"),
    ] {
        let mut all = vec!["list", "--endpoint", &endpoint];
        all.extend(args);
        let run = run_as(Stdout::Data, with_files(&all, aws_profile), b"");
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains(named), "{}", run.stderr);
        assert!(
            run.stderr
                .contains("AWS credentials from the shared files failed"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("role_arn"), "{}", run.stderr);
    }

    // check and write take it too: a config without keys or region.
    let config = json!({"endpoint": endpoint, "shardRateLimit": 0});
    let config_file = dir.file("connector.json", config.to_string().as_bytes());
    let config_path = config_file.to_str().unwrap();
    let run = run_command(
        with_files(&["check", "--config", config_path, "--profile", "ci"], None),
        b"",
    );
    let (status, message) = run.connection_status();
    assert_eq!(status, "SUCCEEDED", "{message}");
    assert!(message.contains("eu-west-3"), "{message}");
    let run = run_command(with_files(&["check", "--config", config_path], None), b"");
    assert_eq!(
        run.connection_status().0,
        "FAILED",
        "no profile, no credentials"
    );

    let catalog_file = dir.file(
        "catalog.json",
        catalog(&[(None, "orders")]).to_string().as_bytes(),
    );
    let input = record_line(None, "orders", r#"{"id":1}"#, 1) + &state_line(1);
    let run = run_command(
        with_files(
            &[
                "write",
                "--config",
                config_path,
                "--catalog",
                catalog_file.to_str().unwrap(),
                "--profile=ci",
            ],
            None,
        ),
        input.as_bytes(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.states().len(), 1);
    assert_eq!(s.stored_len(), 2);
}

#[test]
fn messages_tell_the_cause_first_in_the_flags_terms() {
    let endpoint = kl().endpoint();
    // A bad line: the cause, then what was done before it.
    let run = run_cli(
        &[
            "put",
            "--stream",
            "habits-bad-line",
            "--create",
            "--shards",
            "1",
            "--endpoint",
            &endpoint,
            "--key-delimiter",
            ":",
        ],
        b"k:v\nno delimiter here\n",
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines = run.stderr_lines();
    let cause = lines
        .iter()
        .position(|l| l.contains("input line 2 has no key delimiter"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    let summary = lines
        .iter()
        .position(|l| l.contains("put 1 of 1 line into"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(cause < summary, "the cause comes first: {lines:?}");
    // The record is `v`: one byte of data.
    assert!(lines[summary].contains("(1 byte)"), "{lines:?}");

    // A bad flag value: what the flag takes, not the parser's words, and the
    // command's own help.
    for (args, name) in [
        (
            vec!["read", "--stream", "s", "--from", "2024-13-01T00:00:00Z"],
            "read",
        ),
        (vec!["read", "--stream=s", "--until=yesterday"], "read"),
        (
            vec![
                "describe",
                "--stream",
                "s",
                "--wait-active",
                "--timeout",
                "5x",
            ],
            "describe",
        ),
        (vec!["put", "--stream", "s", "--frobnicate"], "put"),
    ] {
        let out = command(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for internals in ["component", "invalid date-time", "not in range", "RFC-3339"] {
            assert!(!stderr.contains(internals), "{args:?}: {stderr}");
        }
        assert!(
            stderr.ends_with(&format!(
                "Run `destination-kinesis {name} --help` for usage.\n"
            )),
            "{args:?}: {stderr}"
        );
    }
    let out = command(&["read", "--stream", "s", "--from", "2024-05-01"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("2024-05-01T00:00:00Z"));

    // A host that does not resolve: the flags to check, for the flags' user.
    let run = run_cli(&["list", "--endpoint", "http://no-such-host.invalid"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("check --endpoint and --region"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("`endpoint`"), "{}", run.stderr);
}

#[test]
fn every_field_read_prints_as_json_is_documented() {
    let endpoint = kl().endpoint();
    let dir = TempDir::new("habits-fields");
    let config = dir.file(
        "config.json",
        json!({"endpoint": endpoint, "aggregation": true})
            .to_string()
            .as_bytes(),
    );
    let config = config.to_str().unwrap();
    // Plain records, binary data, and records of a KPL aggregate.
    for (args, stdin) in [
        (vec!["--input", "base64"], &b"/wA=\n"[..]),
        (vec!["--config", config], &b"one\ntwo\n"[..]),
        (vec![], &b"text\n"[..]),
    ] {
        let mut all = vec![
            "put",
            "--stream",
            "habits-fields",
            "--create",
            "--shards",
            "1",
            "--endpoint",
            &endpoint,
        ];
        all.extend(args);
        let run = run_cli(&all, stdin);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let run = run_cli(
        &[
            "read",
            "--stream",
            "habits-fields",
            "--endpoint",
            &endpoint,
            "--format",
            "json",
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let fields: BTreeSet<String> = run
        .json()
        .iter()
        .flat_map(|r| r.as_object().unwrap().keys().cloned().collect::<Vec<_>>())
        .collect();
    for expected in [
        "dataBase64",
        "subSequenceNumber",
        "explicitHashKey",
        "arrivalTime",
    ] {
        assert!(fields.contains(expected), "{expected} printed: {fields:?}");
    }
    let help =
        String::from_utf8_lossy(&cli(&["read", "--help"]).output().unwrap().stdout).to_string();
    let reference = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/commands.md"),
    )
    .unwrap();
    for field in &fields {
        assert!(help.contains(field.as_str()), "read --help names {field}");
        assert!(
            reference.contains(&format!("| `{field}` |")),
            "docs/commands.md describes {field}"
        );
    }
}
