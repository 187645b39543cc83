//! Each credential source of the chain, against loopback stand-ins reached
//! through the endpoint overrides the AWS tools honour; the chain's order; and
//! temporary credentials renewed during a sync.

use crate::support;
use crate::support::http_server::Request;
use crate::support::services::{credentials_document, imds, in_secs, Relay, StandIn};
use crate::support::standin::signer;
use crate::support::{assert_failed, assert_succeeded, command, run_command, Run, TempDir};
use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A Kinesis stand-in that answers ListStreams and records who signed.
fn fake_kinesis() -> StandIn {
    StandIn::start(|seen: &Request| match seen.header("x-amz-target") {
        Some("Kinesis_20131202.ListStreams") => {
            (200, r#"{"StreamNames":[],"HasMoreStreams":false}"#.into())
        }
        _ => (400, r#"{"__type":"UnknownOperationException"}"#.into()),
    })
}

/// A credentials document as the container endpoint and IMDS give it.
fn document(key: &str, expires_in: u64) -> String {
    credentials_document(
        key,
        &format!("secret-of-{key}"),
        &format!("token-of-{key}"),
        expires_in,
    )
}

/// `check` with a config holding no keys, an endpoint only when given, and `env`.
fn check(dir: &TempDir, endpoint: Option<&str>, env: &[(&str, &str)]) -> Run {
    let mut config = json!({"region": "us-east-1"});
    if let Some(e) = endpoint {
        config["endpoint"] = json!(e);
    }
    let path = dir.file("config.json", config.to_string().as_bytes());
    let mut c = command(&["check", "--config", path.to_str().unwrap()]);
    apply(&mut c, env);
    run_command(c, b"")
}

/// Sets `env`; a value of "-" removes the variable.
fn apply(c: &mut Command, env: &[(&str, &str)]) {
    for (k, v) in env {
        if *v == "-" {
            c.env_remove(k);
        } else {
            c.env(k, v);
        }
    }
}

/// The Kinesis requests' access keys and session tokens.
fn signers(kinesis: &StandIn) -> Vec<(String, String)> {
    kinesis
        .seen()
        .iter()
        .map(|s| {
            (
                signer(s).unwrap_or_default(),
                s.header("x-amz-security-token").unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn environment_keys_and_endpoint_variable() {
    let kinesis = fake_kinesis();
    let dir = TempDir::new("cred-env");
    let run = check(
        &dir,
        None,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
            ("AWS_SESSION_TOKEN", "env-token"),
            ("AWS_ENDPOINT_URL_KINESIS", &kinesis.url()),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ],
    );
    let message = assert_succeeded(&run);
    assert!(
        message.contains("credentials from the environment"),
        "{message}"
    );
    assert_eq!(
        signers(&kinesis),
        vec![("AKIAENV".into(), "env-token".into())]
    );
    assert!(!run.stdout.contains("env-secret") && !run.stderr.contains("env-secret"));
}

#[test]
fn shared_files_profile_and_its_region() {
    let kinesis = fake_kinesis();
    let dir = TempDir::new("cred-files");
    let creds = dir.file(
        "credentials",
        b"[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n[ci]\naws_access_key_id = AKIACI\naws_secret_access_key = ci-secret\n",
    );
    let config = dir.file("config", b"[profile ci]\nregion = ap-south-1\n");
    let cfg = dir.file("config.json", b"{}");
    let mut c = command(&["check", "--config", cfg.to_str().unwrap()]);
    apply(
        &mut c,
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_PROFILE", "ci"),
            ("AWS_ENDPOINT_URL", &kinesis.url()),
        ],
    );
    let message = assert_succeeded(&run_command(c, b""));
    assert!(
        message.contains("in ap-south-1") && message.contains("shared files"),
        "{message}"
    );
    let seen = kinesis.seen();
    let auth = seen[0].header("authorization").unwrap();
    assert!(
        auth.contains("Credential=AKIACI/") && auth.contains("/ap-south-1/kinesis/"),
        "{auth}"
    );

    // A profile that is in neither file is an error, not a silent fallback.
    let mut c = command(&["check", "--config", cfg.to_str().unwrap()]);
    apply(
        &mut c,
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_PROFILE", "missing"),
        ],
    );
    let message = assert_failed(&run_command(c, b""));
    assert!(message.contains("`missing`"), "{message}");
}

#[test]
fn web_identity_through_sts() {
    let kinesis = fake_kinesis();
    let sts = StandIn::start(|seen: &Request| {
        if !seen.text().contains("WebIdentityToken=eks-jwt-token") {
            return (
                400,
                "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad &amp; wrong</Message></Error></ErrorResponse>".into(),
            );
        }
        let xml = format!(
            "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>web-secret</SecretAccessKey><SessionToken>web-token</SessionToken><Expiration>{}</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
            in_secs(3600)
        );
        (200, xml)
    });
    let dir = TempDir::new("cred-web");
    let token = dir.file("token", b"eks-jwt-token\n");
    let env = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/writer"),
        ("AWS_ROLE_SESSION_NAME", "pod-1"),
        ("AWS_ENDPOINT_URL_STS", &sts.url()),
    ];
    let message = assert_succeeded(&check(&dir, Some(&kinesis.url()), &env));
    assert!(message.contains("web identity"), "{message}");
    assert_eq!(
        signers(&kinesis),
        vec![("ASIAWEB".into(), "web-token".into())]
    );
    let call = &sts.seen()[0];
    assert_eq!(call.method, "POST");
    assert!(
        call.header("authorization").is_none(),
        "the STS call is unsigned"
    );
    for part in [
        "Action=AssumeRoleWithWebIdentity",
        "Version=2011-06-15",
        "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fwriter",
        "RoleSessionName=pod-1",
    ] {
        assert!(
            call.text().split('&').any(|p| p == part),
            "{part} not in {}",
            call.text()
        );
    }

    // STS refusing the token: the error names the source and STS's code.
    std::fs::write(&token, "expired-token").unwrap();
    let message = assert_failed(&check(&dir, Some(&kinesis.url()), &env));
    assert!(
        message.contains("web identity")
            && message.contains("InvalidIdentityToken")
            && message.contains("bad & wrong"),
        "{message}"
    );
}

#[test]
fn ecs_container_endpoint_with_token_file() {
    let kinesis = fake_kinesis();
    let ecs = StandIn::start(|seen: &Request| match seen.header("authorization") {
        Some("Bearer pod-identity") => (200, document("ASIAECS", 3600)),
        _ => (401, "{\"message\":\"no token\"}".into()),
    });
    let dir = TempDir::new("cred-ecs");
    let token = dir.file("token", b"Bearer pod-identity\n");
    let full_uri = format!("{}/v2/credentials/abc", ecs.url());
    let message = assert_succeeded(&check(
        &dir,
        Some(&kinesis.url()),
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token.to_str().unwrap(),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                "ignored-when-the-file-is-set",
            ),
        ],
    ));
    assert!(message.contains("ECS container endpoint"), "{message}");
    assert_eq!(
        signers(&kinesis),
        vec![("ASIAECS".into(), "token-of-ASIAECS".into())]
    );
    assert_eq!(ecs.seen()[0].target, "/v2/credentials/abc");

    // A wrong token: the error says which source failed and how.
    let message = assert_failed(&check(
        &dir,
        Some(&kinesis.url()),
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong"),
        ],
    ));
    assert!(
        message.contains("ECS container endpoint") && message.contains("401"),
        "{message}"
    );
}

#[test]
fn ec2_instance_metadata_v2() {
    let kinesis = fake_kinesis();
    let imds = imds(document("ASIAIMDS", 3600));
    let dir = TempDir::new("cred-imds");
    let message = assert_succeeded(&check(
        &dir,
        Some(&kinesis.url()),
        &[
            ("AWS_EC2_METADATA_DISABLED", "-"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url()),
        ],
    ));
    assert!(message.contains("EC2 instance metadata"), "{message}");
    assert_eq!(
        signers(&kinesis),
        vec![("ASIAIMDS".into(), "token-of-ASIAIMDS".into())]
    );
    let calls: Vec<(String, String)> = imds
        .seen()
        .iter()
        .map(|s| (s.method.clone(), s.target.clone()))
        .collect();
    assert_eq!(calls.len(), 3, "{calls:?}");

    // Disabled, the stand-in is not asked and the error lists every source tried.
    let before = imds.seen().len();
    let message = assert_failed(&check(
        &dir,
        Some(&kinesis.url()),
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url())],
    ));
    assert_eq!(imds.seen().len(), before);
    for source in [
        "config",
        "environment",
        "web identity",
        "shared files",
        "ECS container endpoint",
        "EC2 instance metadata (disabled",
    ] {
        assert!(message.contains(source), "{source} not in: {message}");
    }
}

#[test]
fn the_chain_keeps_the_aws_cli_order() {
    let kinesis = fake_kinesis();
    let ecs = StandIn::start(|_: &Request| (200, document("ASIAECS", 3600)));
    let dir = TempDir::new("cred-order");
    let creds = dir.file(
        "credentials",
        b"[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = f\n",
    );
    let full_uri = format!("{}/creds", ecs.url());
    let mut env = vec![
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri.as_str()),
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ("AWS_ACCESS_KEY_ID", "AKIAENV"),
        ("AWS_SECRET_ACCESS_KEY", "e"),
    ];
    let expect = ["AKIAENV", "AKIAFILE", "ASIAECS"];
    for (round, key) in expect.iter().enumerate() {
        assert_succeeded(&check(&dir, Some(&kinesis.url()), &env));
        assert_eq!(signers(&kinesis)[round].0, *key, "round {round}");
        // Take away the source that won, so the next one in order answers.
        match round {
            0 => env.truncate(2),
            1 => {
                env.remove(1);
            }
            _ => {}
        }
    }
    assert_eq!(
        ecs.seen().len(),
        1,
        "the container endpoint is asked only when reached"
    );
}

/// Temporary credentials that expire within the refresh window are fetched again
/// before the next request; long-lived ones are fetched once.
#[test]
fn temporary_credentials_are_renewed_during_a_sync() {
    let local = support::KinesisLocal::start();
    let relay = Relay::start(local.port);
    for (lifetime, short) in [(120u64, true), (3600, false)] {
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = fetches.clone();
        let ecs = StandIn::start(move |_: &Request| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            (200, document(&format!("ASIAROTATING{n}"), lifetime))
        });
        let stream = if short { "renewed" } else { "cached" };
        let config = json!({
            "endpoint": relay.url(), "region": "us-east-1", "shardCount": 1, "bufferSize": 1,
            "streamName": stream
        });
        let catalog = support::catalog(&[(None, "s")]);
        let input: String = (0..4)
            .map(|i| support::record_line(None, "s", &format!("{{\"i\":{i}}}"), 1))
            .collect::<String>()
            + &support::state_line(1);
        let before = relay.keys().len();
        let run = write_with_ecs(&ecs, &config, &catalog, input.as_bytes());
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        assert_eq!(run.states().len(), 1);
        assert_eq!(local.read_back(stream).len(), 4);
        let keys: Vec<String> = relay.keys()[before..].to_vec();
        let requests = keys.len();
        assert!(
            requests >= 5,
            "expected stream set-up plus 4 PutRecords, saw {keys:?}"
        );
        let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
        if short {
            // The first fetch finds the source; each request then renews.
            assert_eq!(fetches.load(Ordering::SeqCst), requests + 1, "{keys:?}");
            assert_eq!(
                distinct.len(),
                requests,
                "each request signed with new keys: {keys:?}"
            );
        } else {
            assert_eq!(fetches.load(Ordering::SeqCst), 1);
            assert_eq!(distinct.len(), 1);
        }
    }
}

/// Runs `write` with the credentials the ECS stand-in `ecs` hands out.
fn write_with_ecs(ecs: &StandIn, config: &Value, catalog: &Value, input: &[u8]) -> Run {
    let (mut c, _files) = support::write_command(config, catalog);
    let uri = format!("{}/creds", ecs.url());
    apply(&mut c, &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri)]);
    run_command(c, input)
}

/// A credential service that fails on its side (5xx) fails a sync as a
/// transient error (exit 1, Airbyte may retry); one that refuses (4xx) as a
/// configuration error (exit 2).
#[test]
fn a_failing_credential_service_is_transient_a_refusing_one_is_config() {
    let kinesis = fake_kinesis();
    let config = json!({"endpoint": kinesis.url(), "region": "us-east-1"});
    let catalog = support::catalog(&[(None, "s")]);
    for (status, failure_type, code) in [(503, "transient_error", 1), (403, "config_error", 2)] {
        let ecs = StandIn::start(move |_: &Request| (status, "{\"message\":\"no\"}".into()));
        let input = support::record_line(None, "s", "{}", 1);
        let run = write_with_ecs(&ecs, &config, &catalog, input.as_bytes());
        assert_eq!(run.code, code, "HTTP {status}: {}", run.stderr);
        let error = &run.of_type("TRACE")[0]["trace"]["error"];
        assert_eq!(error["failure_type"], failure_type, "{error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("HTTP {status}")), "{message}");
    }
}

/// The container endpoint's errors show neither a token in its URI nor its
/// answer (which may echo the token): the status and a short reason instead.
#[test]
fn container_endpoint_errors_show_no_token() {
    const TOKEN: &str = "tok3n-in-the-query";
    let kinesis = fake_kinesis();
    let ecs = StandIn::start(|seen: &Request| {
        (403, format!("{{\"message\":\"echoed {}\"}}", seen.target))
    });
    let dir = TempDir::new("cred-ecs-token");
    let full_uri = format!("{}/v2/credentials?token={TOKEN}", ecs.url());
    let run = check(
        &dir,
        Some(&kinesis.url()),
        &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri)],
    );
    let message = assert_failed(&run);
    assert!(
        message.contains(&format!("{}/v2/credentials answered HTTP 403", ecs.url())),
        "{message}"
    );
    assert!(
        !message.contains(TOKEN) && !message.contains("echoed"),
        "{message}"
    );
    assert!(!run.stderr.contains(TOKEN), "{}", run.stderr);
    assert_eq!(ecs.seen().len(), 1, "the token went to the endpoint");

    let with_user = format!("http://user:{TOKEN}@127.0.0.1:{}/creds", ecs.port);
    let message = assert_failed(&check(
        &dir,
        Some(&kinesis.url()),
        &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &with_user)],
    ));
    assert!(
        message.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            && message.contains("must not hold a user name or password"),
        "{message}"
    );
    assert!(!message.contains(TOKEN), "{message}");
}
