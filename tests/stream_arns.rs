//! Streams named by ARN: `put`, `read` and `describe --stream <arn>` and a
//! `streamName` ARN end to end through kinesis-local (which takes StreamARN
//! on every call, and keeps each account's and region's streams apart), and
//! through the stand-in, which checks the signing region and refuses ARNs of
//! other accounts and regions: the region comes from the ARN, a region that
//! contradicts it is a config error, and no stream named by ARN is created.

use crate::support::cli::{cli, run_cli, run_on_stream};
use crate::support::standin::{self, StandIn};
use crate::support::*;
use destination_kinesis::kinesis::StreamMode;
use serde_json::{json, Value};

/// One emulator for the whole file; each test uses its own streams.
fn kl() -> &'static KinesisLocal {
    shared_kinesis_local(&[])
}

/// Another account, and a region that is not the default.
const OWNER: &str = "222222222222";
const OWNER_REGION: &str = "eu-west-1";

fn arn(account: &str, region: &str, name: &str) -> String {
    format!("arn:aws:kinesis:{region}:{account}:stream/{name}")
}

/// A pipeline command with a config file (the stand-in's keys) and `args`.
fn with_config(config: &Value, args: &[&str], stdin: &[u8]) -> Run {
    let dir = TempDir::new("arn-config");
    let file = dir.file("config.json", config.to_string().as_bytes());
    let mut all = args.to_vec();
    all.extend(["--config", file.to_str().unwrap()]);
    run_cli(&all, stdin)
}

/// The stand-in's config without its region: the region must come from the ARN.
fn regionless(s: &StandIn, extra: Value) -> Value {
    let mut config = s.config(extra);
    config.as_object_mut().unwrap().remove("region");
    config
}

#[test]
fn another_accounts_stream_by_arn_through_kinesis_local() {
    // The stream lives in account 222222222222 in eu-west-1; the commands run
    // with the harness's credentials (account 000000000000) and no region.
    let owner = client_as(&kl().endpoint(), OWNER, OWNER_REGION);
    create_active(&owner, "shared", StreamMode::Provisioned, 1);
    let stream = arn(OWNER, OWNER_REGION, "shared");
    let endpoint = kl().endpoint();

    let run = run_on_stream("put", &stream, &endpoint, &[], b"a\nb\nc\n");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(
            "put 3 of 3 lines into Kinesis stream `shared` in account 222222222222 (eu-west-1)"
        ),
        "messages name the stream and its account: {}",
        run.stderr
    );
    // The records are in the owner's stream.
    let stored: Vec<Vec<u8>> = read_back(&owner, "shared")
        .into_iter()
        .map(|r| r.data)
        .collect();
    assert_eq!(stored, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);

    let read = run_on_stream("read", &stream, &endpoint, &["--format", "json"], b"");
    assert_eq!(read.code, 0, "{read:?}");
    let data: Vec<Value> = read.json().iter().map(|r| r["data"].clone()).collect();
    assert_eq!(data, [json!("a"), json!("b"), json!("c")]);

    let described = run_on_stream("describe", &stream, &endpoint, &["--format", "json"], b"");
    assert_eq!(described.code, 0, "{described:?}");
    let d = &described.json()[0];
    assert_eq!(d["arn"], json!(stream));
    assert_eq!(d["stream"], "shared");
    assert_eq!(d["shards"].as_array().map(Vec::len), Some(1));

    // By name, the same command looks in its own account, where there is no such stream.
    let by_name = run_cli(
        &[
            "describe",
            "--stream",
            "shared",
            "--endpoint",
            &endpoint,
            "--region",
            OWNER_REGION,
        ],
        b"",
    );
    assert_eq!(by_name.code, 1, "{by_name:?}");
    assert!(
        by_name.stderr.contains("`shared` does not exist"),
        "{}",
        by_name.stderr
    );
}

#[test]
fn write_sends_every_stream_to_a_stream_arn() {
    let owner = client_as(&kl().endpoint(), OWNER, OWNER_REGION);
    create_active(&owner, "airbyte-all", StreamMode::Provisioned, 1);
    let stream = arn(OWNER, OWNER_REGION, "airbyte-all");
    let mut config = kl().config(json!({ "streamName": stream }));
    config.as_object_mut().unwrap().remove("region");
    let input = format!(
        "{}{}",
        record_line(Some("public"), "users", r#"{"id":1}"#, 1),
        record_line(Some("public"), "orders", r#"{"id":2}"#, 2)
    );
    let run = run_write(
        &config,
        &catalog(&[(Some("public"), "users"), (Some("public"), "orders")]),
        input.as_bytes(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let start = run
        .of_type("LOG")
        .into_iter()
        .find_map(|m| {
            m["log"]["message"]
                .as_str()
                .filter(|t| t.starts_with("writing to"))
        })
        .unwrap_or_default()
        .to_string();
    assert!(
        start.contains("(eu-west-1)") && start.contains(&format!("public.users -> {stream}")),
        "the region came from the ARN: {start}"
    );
    let stored = read_back(&owner, "airbyte-all");
    assert_eq!(stored.len(), 2);
    let first = envelope(&stored[0]);
    assert_eq!(
        first["_airbyte_stream"], "users",
        "streams merged on purpose are told apart"
    );
}

#[test]
fn the_region_comes_from_the_arn_and_calls_carry_it() {
    // The stand-in serves eu-west-1 only: a request signed for another region
    // is refused, so a put without any region set works only if it took the ARN's.
    let s = StandIn::start();
    s.set_region(OWNER_REGION);
    s.add_stream("orders", 1);
    let stream = arn(standin::ACCOUNT, OWNER_REGION, "orders");
    let config = regionless(&s, json!({}));
    let run = with_config(&config, &["put", "--stream", &stream], b"one\ntwo\n");
    assert_eq!(run.code, 0, "{run:?}");
    let stored: Vec<Vec<u8>> = s.stored().into_iter().map(|r| r.data).collect();
    assert_eq!(stored, [b"one".to_vec(), b"two".to_vec()]);
    let calls = s.seen();
    assert!(
        calls.iter().any(|c| c.op == "PutRecords")
            && calls.iter().any(|c| c.op == "DescribeStreamSummary"),
        "{calls:?}"
    );
    for call in &calls {
        assert_eq!(call.error, None, "{call:?}");
        assert_eq!(
            call.stream_field,
            Some("StreamARN"),
            "every call names the stream by ARN: {call:?}"
        );
    }

    // The same stream by name: the default region, us-east-1, which this stand-in refuses.
    let by_name = with_config(&config, &["put", "--stream", "orders"], b"three\n");
    assert_eq!(by_name.code, 1, "{by_name:?}");
    assert!(s.errors("InvalidSignatureException") > 0, "{:?}", s.seen());
    assert_eq!(s.stored_len(), 2);

    // write with the ARN as streamName: the same.
    let written = run_write(
        &regionless(&s, json!({ "streamName": stream })),
        &catalog(&[(None, "users")]),
        record_line(None, "users", r#"{"id":1}"#, 1).as_bytes(),
    );
    assert_eq!(written.code, 0, "{}", written.stderr);
    assert_eq!(s.stored_len(), 3);
}

#[test]
fn a_region_that_contradicts_the_arn_is_a_config_error() {
    let stream = arn(OWNER, OWNER_REGION, "orders");
    // Nothing listens there: the error comes before any call.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    for command in ["put", "read", "describe"] {
        let run = run_on_stream(
            command,
            &stream,
            &endpoint,
            &["--region", "us-east-1"],
            b"x\n",
        );
        assert_eq!(run.code, 2, "{command}: {run:?}");
        assert!(
            run.stderr.contains("is in region `eu-west-1`")
                && run
                    .stderr
                    .contains("`region` (config or --region) sets the region `us-east-1`"),
            "{command}: {}",
            run.stderr
        );
    }
    let mut from_env = cli(&["put", "--stream", &stream, "--endpoint", &endpoint]);
    from_env.env("AWS_REGION", "us-west-2");
    let out = output_with_stdin(from_env, b"x\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("AWS_REGION sets the region `us-west-2`"),
        "{stderr}"
    );

    // The connector: check answers FAILED, write fails with a config_error, both naming the two regions.
    let config = json!({"endpoint": endpoint, "region": "us-east-1", "accessKey": "a", "privateKey": "b",
                        "streamName": stream});
    let check = run_check(&config);
    let message = assert_failed(&check);
    assert!(
        message.contains("`eu-west-1`") && message.contains("`us-east-1`"),
        "{message}"
    );
    let run = run_write(&config, &catalog(&[(None, "users")]), b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.failure_type(), "config_error");
    assert!(
        run.error_message().contains("is in region `eu-west-1`"),
        "{}",
        run.error_message()
    );
}

#[test]
fn a_stream_named_by_arn_is_never_created() {
    let s = StandIn::start();
    let missing = arn(standin::ACCOUNT, standin::REGION, "not-there");
    let config = s.config(json!({}));
    let run = with_config(&config, &["put", "--stream", &missing, "--create"], b"x\n");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "Kinesis stream `not-there` in account 123456789012 (us-east-1) does not exist"
        ) && run.stderr.contains("never created"),
        "{}",
        run.stderr
    );
    // createStreams (true by default) does not create it either.
    let written = run_write(
        &s.config(json!({ "streamName": missing })),
        &catalog(&[(None, "users")]),
        record_line(None, "users", "{}", 1).as_bytes(),
    );
    assert_eq!(written.code, 2, "{}", written.stderr);
    assert_eq!(written.failure_type(), "config_error");
    assert!(
        written.error_message().contains("never created"),
        "{}",
        written.error_message()
    );
    assert!(
        s.seen().iter().all(|c| c.op != "CreateStream"),
        "no CreateStream: {:?}",
        s.seen()
    );
    assert!(s.streams().is_empty());

    // Another account's stream that does not share itself: AWS refuses, and
    // the message says whose stream it was.
    let foreign = arn("999999999999", standin::REGION, "theirs");
    let refused = with_config(&config, &["put", "--stream", &foreign], b"x\n");
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("`theirs` in account 999999999999 (us-east-1)")
            && refused.stderr.contains("AccessDeniedException"),
        "{}",
        refused.stderr
    );
}

#[test]
fn bad_arns_are_usage_errors() {
    for (bad, why) in [
        ("arn:aws:kinesis:eu-west-1:2222:stream/s", "12 digits"),
        ("arn:aws:sqs:eu-west-1:222222222222:q", "not of `kinesis`"),
        (
            "arn:aws:kinesis:eu-west-1:222222222222:stream/s/consumer/c:1",
            "consumer",
        ),
        (
            "arn:aws-cn:kinesis:eu-west-1:222222222222:stream/s",
            "partition `aws-cn`",
        ),
    ] {
        for command in ["put", "read", "describe"] {
            let run = run_cli(&[command, "--stream", bad], b"");
            assert_eq!(run.code, 2, "{command} {bad}: {run:?}");
            assert!(
                run.stderr.contains("--stream") && run.stderr.contains(why),
                "{command} {bad}: {}",
                run.stderr
            );
        }
    }
    // streamName: an ARN is the whole value, without placeholders.
    let config = json!({"endpoint": "http://127.0.0.1:1", "accessKey": "a", "privateKey": "b",
                        "streamName": arn(OWNER, OWNER_REGION, "{stream}")});
    let message = assert_failed(&run_check(&config));
    assert!(
        message.contains("`streamName`") && message.contains("placeholders"),
        "{message}"
    );
}
