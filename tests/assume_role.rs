//! Assumed roles and `credential_process` end to end: the config's `roleArn`,
//! profile role chains, `credential_source`, and credential processes, against
//! an STS stand-in that checks each AssumeRole's SigV4 signature (service `sts`)
//! and its trust and external id, and a Kinesis stand-in that accepts only the
//! keys STS (or the process) issued. No secret may appear in any output.

use crate::support;
use crate::support::http_server::Request;
use crate::support::services::{
    self, credentials_document, imds, in_secs, role_arn, Issued, StandIn, Sts, TrustedRole,
};
use crate::support::standin::{self, StandIn as Kinesis};
use crate::support::{
    assert_failed, assert_succeeded, catalog, command, record_line, run_command, state_line, Run,
    TempDir,
};
use destination_kinesis::aws::credentials::REFRESH_WINDOW;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// The long-term key of the principal that assumes roles.
const BASE_KEY: &str = "AKIABASEPRINCIPAL001";
const BASE_SECRET: &str = "base/Secret+Key/never-printed-7Qx2";
const EXTERNAL_ID: &str = "airbyte-ext-5521";
const HOUR: Duration = Duration::from_secs(3600);

/// A Kinesis stand-in that knows no key until STS (or a test) gives it one.
fn kinesis() -> Arc<Kinesis> {
    let k = Arc::new(Kinesis::start());
    k.forget_key(standin::ACCESS_KEY);
    k
}

/// STS knowing the base key, whose keys issued for role `accepted` the Kinesis
/// stand-in then accepts (and no others).
fn sts_for(
    kinesis: &Arc<Kinesis>,
    roles: Vec<TrustedRole>,
    accepted: &str,
    lifetime: Duration,
) -> Sts {
    let (k, accepted) = (kinesis.clone(), role_arn(accepted));
    Sts::start(
        &[(BASE_KEY, BASE_SECRET)],
        roles,
        lifetime,
        move |i: &Issued| {
            if i.role == accepted {
                k.add_session_key(&i.access_key, &i.secret, &i.token);
            }
        },
    )
}

/// A config for the Kinesis stand-in with the base keys, merged with `extra`.
fn config(kinesis: &Kinesis, extra: Value) -> Value {
    let mut c = json!({
        "endpoint": kinesis.endpoint(), "region": standin::REGION,
        "accessKey": BASE_KEY, "privateKey": BASE_SECRET,
        "requestTimeoutSeconds": 5, "retryTimeoutSeconds": 5
    });
    for (k, v) in extra.as_object().expect("extra is an object") {
        c[k] = v.clone();
    }
    c
}

/// `check` with `config` and the environment `env`.
fn check(dir: &TempDir, config: &Value, env: &[(&str, &str)]) -> Run {
    let path = dir.file("config.json", config.to_string().as_bytes());
    let mut c = command(&["check", "--config", path.to_str().unwrap()]);
    c.envs(env.iter().copied());
    run_command(c, b"")
}

/// `write` of `input` with `config` and `env`, to stream `events`.
fn write(config: &Value, env: &[(&str, &str)], input: &str) -> Run {
    let mut config = config.clone();
    config["streamName"] = json!("events");
    let (mut c, _files) = support::write_command(&config, &catalog(&[(None, "s")]));
    c.envs(env.iter().copied());
    run_command(c, input.as_bytes())
}

/// Fails if stdout or stderr shows any of `secrets`, or the base secret.
fn assert_hidden<S: AsRef<str>>(run: &Run, secrets: &[S]) {
    let all = secrets.iter().map(AsRef::as_ref).chain([BASE_SECRET]);
    for secret in all {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "output shows the secret {secret}:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

/// No secret besides the base secret.
const NONE: &[&str] = &[];

/// The secrets and tokens STS issued, and `more`.
fn issued_secrets(sts: &Sts, more: &[&str]) -> Vec<String> {
    sts.issued()
        .iter()
        .flat_map(|i| [i.secret.clone(), i.token.clone()])
        .chain(more.iter().map(|s| s.to_string()))
        .collect()
}

/// The access keys that signed the Kinesis stand-in's requests of `op`, that it accepted.
fn kinesis_keys(kinesis: &Kinesis, op: &str) -> Vec<String> {
    kinesis
        .seen()
        .iter()
        .filter(|s| s.op == op && s.status == 200)
        .map(|s| s.access_key.clone().unwrap_or_default())
        .collect()
}

fn writer_role(external_id: Option<&str>) -> Vec<TrustedRole> {
    vec![TrustedRole::new("writer", &[BASE_KEY], external_id)]
}

#[test]
fn the_config_role_is_assumed_with_the_config_keys() {
    let kinesis = kinesis();
    let sts = sts_for(&kinesis, writer_role(Some(EXTERNAL_ID)), "writer", HOUR);
    let dir = TempDir::new("role-config");
    // The Kinesis stand-in refuses the base keys themselves.
    let plain = config(&kinesis, json!({}));
    let message = assert_failed(&check(&dir, &plain, &[]));
    assert!(
        message.contains("does not know this access key"),
        "{message}"
    );

    let with_role = config(
        &kinesis,
        json!({"roleArn": role_arn("writer"), "externalId": EXTERNAL_ID, "stsEndpoint": sts.url()}),
    );
    let run = check(&dir, &with_role, &[]);
    let message = assert_succeeded(&run);
    assert!(
        message.contains(&format!("assumed role {}", role_arn("writer")))
            && message.contains("credentials from the config"),
        "{message}"
    );
    let issued = sts.issued();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].signed_by, BASE_KEY);
    let form = &issued[0].form;
    assert_eq!(form["Action"], "AssumeRole");
    assert_eq!(form["Version"], "2011-06-15");
    assert_eq!(form["DurationSeconds"], "3600");
    assert_eq!(form["ExternalId"], EXTERNAL_ID);
    let session = &form["RoleSessionName"];
    assert!(
        session.starts_with("destination-kinesis-")
            && session["destination-kinesis-".len()..]
                .bytes()
                .all(|b| b.is_ascii_digit()),
        "{session}"
    );
    let call = &sts.calls()[0];
    assert_eq!(call.method, "POST");
    assert!(call
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/x-www-form-urlencoded"));
    let auth = call.header("authorization").unwrap_or_default();
    assert!(auth.contains("/us-east-1/sts/aws4_request"), "{auth}");
    assert_eq!(
        kinesis_keys(&kinesis, "ListStreams"),
        vec![issued[0].access_key.clone()]
    );
    assert_hidden(&run, &issued_secrets(&sts, &[EXTERNAL_ID]));
}

/// Credentials that expire within the refresh window's reach during the sync
/// are renewed by assuming the role again with the base keys; later
/// PutRecords are signed with the new keys.
#[test]
fn a_long_sync_renews_the_assumed_role() {
    let kinesis = kinesis();
    // Each issued key is due for renewal 2 s after it is issued.
    let lifetime = REFRESH_WINDOW + Duration::from_secs(2);
    let sts = sts_for(&kinesis, writer_role(None), "writer", lifetime);
    let config = config(
        &kinesis,
        json!({"roleArn": role_arn("writer"), "stsEndpoint": sts.url(), "bufferSize": 1,
               "streamName": "events"}),
    );
    let mut started = support::live::start(&config, &catalog(&[(None, "s")]));
    let mut stdin = started.stdin.take().expect("stdin");
    // Six records 0.7 s apart: the sync lasts longer than the first key's 2 s.
    let feeder = std::thread::spawn(move || {
        for i in 0..6 {
            let line = record_line(None, "s", &format!("{{\"i\":{i}}}"), 1);
            let _ = stdin.write_all(line.as_bytes());
            let _ = stdin.flush();
            std::thread::sleep(Duration::from_millis(700));
        }
        let _ = stdin.write_all(state_line(1).as_bytes());
    });
    let live = started.watch(&kinesis);
    feeder.join().expect("feeder");
    assert_eq!(live.code, 0, "{}\n{}", live.stdout, live.stderr);
    assert_eq!(live.states().len(), 1);
    assert_eq!(kinesis.stored_len(), 6);

    let issued = sts.issued();
    assert!(issued.len() >= 2, "the role was never renewed: {issued:?}");
    assert!(issued.iter().all(|i| i.signed_by == BASE_KEY));
    let order: Vec<&str> = issued.iter().map(|i| i.access_key.as_str()).collect();
    let puts = kinesis_keys(&kinesis, "PutRecords");
    assert_eq!(puts.len(), 6, "{puts:?}");
    let rank = |key: &String| order.iter().position(|k| k == key).expect("an issued key");
    let ranks: Vec<usize> = puts.iter().map(rank).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
    assert!(
        *ranks.last().unwrap() > 0,
        "the last PutRecords was signed with the first key: {ranks:?}"
    );
    for secret in issued_secrets(&sts, &[]) {
        assert!(!live.stdout.contains(&secret) && !live.stderr.contains(&secret));
    }
    assert!(!live.stdout.contains(BASE_SECRET) && !live.stderr.contains(BASE_SECRET));
}

#[test]
fn refusals_say_what_to_fix() {
    let kinesis = kinesis();
    let dir = TempDir::new("role-refused");
    let role = json!(role_arn("writer"));

    // A wrong external id: a config error that names externalId, not its value.
    let sts = sts_for(&kinesis, writer_role(Some(EXTERNAL_ID)), "writer", HOUR);
    let wrong = config(
        &kinesis,
        json!({"roleArn": role, "externalId": "wrong-ext-000", "stsEndpoint": sts.url()}),
    );
    let run = check(&dir, &wrong, &[]);
    let message = assert_failed(&run);
    for part in [
        "`externalId`",
        "sts:ExternalId",
        "trust policy",
        BASE_KEY,
        "AccessDenied",
    ] {
        assert!(message.contains(part), "{part} not in: {message}");
    }
    assert_hidden(&run, &["wrong-ext-000"]);
    let run = write(&wrong, &[], &record_line(None, "s", "{}", 1));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.failure_type(), "config_error");
    assert!(run.error_message().contains("`externalId`"));
    assert_eq!(kinesis.stored_len(), 0);

    // A principal the trust policy does not name.
    let other = sts_for(
        &kinesis,
        vec![TrustedRole::new("writer", &["AKIAOTHERPRINCIPAL01"], None)],
        "writer",
        HOUR,
    );
    let untrusted = config(
        &kinesis,
        json!({"roleArn": role, "stsEndpoint": other.url()}),
    );
    let run = check(&dir, &untrusted, &[]);
    let message = assert_failed(&run);
    assert!(
        message.contains(&format!(
            "trust policy must allow this principal (access key {BASE_KEY})"
        )) && message.contains("sts:AssumeRole")
            && message.contains("set `externalId`"),
        "{message}"
    );
    assert_hidden(&run, NONE);

    // A base key STS does not know.
    let unknown = config(
        &kinesis,
        json!({"roleArn": role, "stsEndpoint": sts.url(), "accessKey": "AKIAUNKNOWNKEY000001"}),
    );
    let message = assert_failed(&check(&dir, &unknown, &[]));
    assert!(
        message.contains("AWS does not know access key AKIAUNKNOWNKEY000001"),
        "{message}"
    );

    // A role ARN of the wrong shape is refused before any call.
    let calls = sts.calls().len();
    let bad = config(
        &kinesis,
        json!({"roleArn": "writer", "stsEndpoint": sts.url()}),
    );
    let message = assert_failed(&check(&dir, &bad, &[]));
    assert!(message.starts_with("config field `roleArn`"), "{message}");
    assert_eq!(sts.calls().len(), calls);
}

/// STS failing on its side, or not there, fails a sync as transient.
#[test]
fn sts_down_is_transient() {
    let kinesis = kinesis();
    let failing = services::StandIn::start(|_: &Request| {
        (503, services::sts_error("ServiceUnavailable", "try later"))
    });
    // Nothing listens on the discard port.
    let gone = "http://127.0.0.1:9".to_string();
    for (url, expected) in [(failing.url(), "HTTP 503"), (gone, "did not answer")] {
        let c = config(
            &kinesis,
            json!({"roleArn": role_arn("writer"), "stsEndpoint": url}),
        );
        let run = write(&c, &[], &record_line(None, "s", "{}", 1));
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_eq!(run.failure_type(), "transient_error");
        assert!(
            run.error_message().contains(expected),
            "{}",
            run.error_message()
        );
        assert_hidden(&run, NONE);
    }
    assert!(
        failing.seen().len() >= 2,
        "STS is asked once more after a 5xx"
    );
}

/// The shared files, as the profile `top` of a two-hop chain uses them.
fn chain_files(dir: &TempDir, config_text: &str) -> Vec<(String, String)> {
    let creds = dir.file(
        "credentials",
        format!("[base]\naws_access_key_id = {BASE_KEY}\naws_secret_access_key = {BASE_SECRET}\n")
            .as_bytes(),
    );
    let config = dir.file("config", config_text.as_bytes());
    vec![
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            creds.to_str().unwrap().into(),
        ),
        ("AWS_CONFIG_FILE".into(), config.to_str().unwrap().into()),
    ]
}

/// `chain_files` with `config_text`, `AWS_PROFILE` set to `profile`, and STS
/// at `sts`.
fn profile_env(
    dir: &TempDir,
    config_text: &str,
    profile: &str,
    sts: &Sts,
) -> Vec<(String, String)> {
    let mut env = chain_files(dir, config_text);
    env.push(("AWS_PROFILE".into(), profile.into()));
    env.push(("AWS_ENDPOINT_URL_STS".into(), sts.url()));
    env
}

/// `profile_env` for the profile `deploy`, which assumes the role `writer`
/// with the keys `source` gives (a `credential_source`).
fn credential_source_env(dir: &TempDir, source: &str, sts: &Sts) -> Vec<(String, String)> {
    let config = format!(
        "[profile deploy]\nrole_arn = {}\ncredential_source = {source}\n",
        role_arn("writer")
    );
    profile_env(dir, &config, "deploy", sts)
}

/// A config with the Kinesis stand-in and no keys: credentials come from the chain.
fn keyless(kinesis: &Kinesis) -> Value {
    json!({"endpoint": kinesis.endpoint(), "region": standin::REGION})
}

fn as_env(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn a_profile_chain_of_two_roles() {
    let kinesis = kinesis();
    let roles = vec![
        TrustedRole::new("middle", &[BASE_KEY], None),
        TrustedRole::new("top", &[&role_arn("middle")], Some(EXTERNAL_ID)),
    ];
    let sts = sts_for(&kinesis, roles, "top", HOUR);
    let dir = TempDir::new("role-chain");
    let env = profile_env(
        &dir,
        &format!(
            "[profile top]\nrole_arn = {}\nsource_profile = middle\nexternal_id = {EXTERNAL_ID}\n\
             role_session_name = ci-run\nduration_seconds = 900\n\
             [profile middle]\nrole_arn = {}\nsource_profile = base\n",
            role_arn("top"),
            role_arn("middle")
        ),
        "top",
        &sts,
    );
    let run = check(&dir, &keyless(&kinesis), &as_env(&env));
    let message = assert_succeeded(&run);
    assert!(
        message.contains(&format!(
            "assumed role {} of profile `top`",
            role_arn("top")
        )) && message.contains(&format!(
            "assumed role {} of profile `middle`",
            role_arn("middle")
        )) && message.contains("keys of profile `base`"),
        "{message}"
    );
    let issued = sts.issued();
    assert_eq!(issued.len(), 2, "{issued:?}");
    assert_eq!(
        (issued[0].role.as_str(), issued[0].signed_by.as_str()),
        (role_arn("middle").as_str(), BASE_KEY)
    );
    assert_eq!(issued[1].role, role_arn("top"));
    assert_eq!(issued[1].signed_by, issued[0].access_key);
    assert_eq!(issued[1].form["RoleSessionName"], "ci-run");
    assert_eq!(issued[1].form["DurationSeconds"], "900");
    assert_eq!(issued[1].form["ExternalId"], EXTERNAL_ID);
    assert_eq!(
        kinesis_keys(&kinesis, "ListStreams"),
        vec![issued[1].access_key.clone()]
    );
    assert_hidden(&run, &issued_secrets(&sts, &[EXTERNAL_ID]));
}

#[test]
fn a_cycle_of_source_profiles_is_refused() {
    let kinesis = kinesis();
    let sts = sts_for(&kinesis, writer_role(None), "writer", HOUR);
    let dir = TempDir::new("role-cycle");
    let env = profile_env(
        &dir,
        &format!(
            "[profile a]\nrole_arn = {0}\nsource_profile = b\n[profile b]\nrole_arn = {0}\nsource_profile = a\n",
            role_arn("writer")
        ),
        "a",
        &sts,
    );
    let run = check(&dir, &keyless(&kinesis), &as_env(&env));
    let message = assert_failed(&run);
    assert!(
        message.contains("profile role_arn") && message.contains("`a` → `b` → `a`"),
        "{message}"
    );
    assert_hidden(&run, NONE);
    assert!(sts.calls().is_empty());
    assert!(kinesis.seen().is_empty());
}

#[test]
fn credential_source_environment_assumes_the_role_with_the_environment_keys() {
    let kinesis = kinesis();
    let sts = sts_for(&kinesis, writer_role(None), "writer", HOUR);
    let dir = TempDir::new("role-env");
    let mut env = credential_source_env(&dir, "Environment", &sts);
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", BASE_KEY),
        ("AWS_SECRET_ACCESS_KEY", BASE_SECRET),
    ] {
        env.push((k.into(), v.into()));
    }
    let run = check(&dir, &keyless(&kinesis), &as_env(&env));
    let message = assert_succeeded(&run);
    assert!(
        message.contains("credentials from the environment"),
        "{message}"
    );
    assert_eq!(sts.issued()[0].signed_by, BASE_KEY);
    assert_hidden(&run, NONE);
}

#[test]
fn credential_source_container_and_instance_metadata_assume_the_role_with_their_keys() {
    // Temporary keys, as both sources give them.
    let (key, secret, token) = (
        "ASIASOURCEBASE00001",
        "source/Secret+w9",
        "source-token-5Tq",
    );
    let document = credentials_document(key, secret, token, 3600);
    let container = StandIn::start({
        let document = document.clone();
        move |_: &Request| (200, document.clone())
    });
    let imds = imds(document);
    for (source, env_var, url, names) in [
        (
            "EcsContainer",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}/v2/credentials/base", container.url()),
            "ECS container endpoint",
        ),
        (
            "Ec2InstanceMetadata",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            imds.url(),
            "EC2 instance metadata",
        ),
    ] {
        let kinesis = kinesis();
        let trusting = vec![TrustedRole::new("writer", &[key], None)];
        let sts = sts_for(&kinesis, trusting, "writer", HOUR);
        sts.trust_key(key, secret, Some(token));
        let dir = TempDir::new("role-source");
        let mut env = credential_source_env(&dir, source, &sts);
        env.push((env_var.into(), url));
        env.push(("AWS_EC2_METADATA_DISABLED".into(), "false".into()));
        let run = check(&dir, &keyless(&kinesis), &as_env(&env));
        let message = assert_succeeded(&run);
        assert!(message.contains(names), "{source}: {message}");
        let issued = sts.issued();
        assert_eq!(issued.len(), 1, "{source}");
        assert_eq!(issued[0].signed_by, key, "{source}");
        assert_hidden(&run, &[secret, token]);
    }
    assert_eq!(
        container.seen().len(),
        1,
        "the container endpoint asked once"
    );
    assert_eq!(imds.seen().len(), 3, "token, role, credentials");
}

/// Writes a credential process script that prints `key` (numbered by run
/// when it holds `{n}`) with `secret`, expiring in `expires_in` seconds, and
/// appends a line to `runs` each time it runs.
fn process_script(dir: &TempDir, name: &str, key: &str, secret: &str, expires_in: u64) -> String {
    let runs = dir.path.join(format!("{name}.runs"));
    let script = format!(
        "echo run >> '{runs}'\nn=$(wc -l < '{runs}' | tr -d ' ')\n\
         printf '{{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": \"{secret}\", \
         \"SessionToken\": \"token-of-{secret}\", \"Expiration\": \"{}\"}}' \"$(echo '{key}' | sed \"s/{{n}}/$n/\")\"\n",
        in_secs(expires_in),
        runs = runs.display()
    );
    let path = dir.file(&format!("{name}.sh"), script.as_bytes());
    format!("sh '{}' --unused-arg", path.display())
}

fn runs(dir: &TempDir, name: &str) -> usize {
    std::fs::read_to_string(dir.path.join(format!("{name}.runs")))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn credential_process_is_run_and_run_again_when_its_keys_expire() {
    let kinesis = kinesis();
    let secret = "proc/secret+never-printed-31";
    for n in 1..=50 {
        kinesis.add_session_key(
            &format!("ASIAPROCESS{n}"),
            secret,
            &format!("token-of-{secret}"),
        );
    }
    let dir = TempDir::new("process");
    // Expiring within the refresh window: every request runs the process again.
    let command = process_script(&dir, "short", "ASIAPROCESS{n}", secret, 120);
    let files = chain_files(
        &dir,
        &format!("[profile proc]\ncredential_process = {command}\n"),
    );
    let mut env = as_env(&files);
    env.push(("AWS_PROFILE", "proc"));
    let keyless =
        json!({"endpoint": kinesis.endpoint(), "region": standin::REGION, "bufferSize": 1});
    let run = check(&dir, &keyless, &env);
    let message = assert_succeeded(&run);
    assert!(
        message.contains("credential_process `sh ...` of profile `proc`"),
        "{message}"
    );
    assert_hidden(&run, &[secret]);
    let input: String = (0..3)
        .map(|i| record_line(None, "s", &format!("{{\"i\":{i}}}"), 1))
        .collect::<String>()
        + &state_line(1);
    let before = runs(&dir, "short");
    let run = write(&keyless, &env, &input);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(kinesis.stored_len(), 3);
    let puts = kinesis_keys(&kinesis, "PutRecords");
    let distinct: std::collections::BTreeSet<&String> = puts.iter().collect();
    assert_eq!(
        distinct.len(),
        3,
        "each PutRecords signed with new keys: {puts:?}"
    );
    assert!(
        runs(&dir, "short") - before >= 4,
        "one run to start and one per request"
    );
    assert_hidden(&run, &[secret]);
}

#[test]
fn a_role_assumed_with_credential_process_keys() {
    let kinesis = kinesis();
    let sts = sts_for(
        &kinesis,
        vec![TrustedRole::new("writer", &["ASIAPROCBASE00000001"], None)],
        "writer",
        HOUR,
    );
    let secret = "proc/base+secret-never-printed-77";
    sts.trust_key(
        "ASIAPROCBASE00000001",
        secret,
        Some(&format!("token-of-{secret}")),
    );
    let dir = TempDir::new("process-role");
    let good = process_script(&dir, "good", "ASIAPROCBASE00000001", secret, 3600);
    // The selected profile's role_arn wins over its own credential_process, as in the AWS CLI.
    let env = profile_env(
        &dir,
        &format!(
            "[profile top]\nrole_arn = {}\nsource_profile = proc\ncredential_process = sh -c 'exit 9'\n\
             [profile proc]\ncredential_process = {good}\n",
            role_arn("writer")
        ),
        "top",
        &sts,
    );
    let run = check(&dir, &keyless(&kinesis), &as_env(&env));
    let message = assert_succeeded(&run);
    assert!(
        message.contains("assumed role")
            && message.contains("credential_process `sh ...` of profile `proc`"),
        "{message}"
    );
    assert_eq!(sts.issued()[0].signed_by, "ASIAPROCBASE00000001");
    assert_eq!(runs(&dir, "good"), 1);
    assert_hidden(&run, &issued_secrets(&sts, &[secret]));
}

#[test]
fn a_failing_or_garbled_credential_process_is_a_config_error() {
    let kinesis = kinesis();
    let dir = TempDir::new("process-bad");
    let secret = "garbled/secret+never-printed-55";
    let failing = dir.file(
        "fail.sh",
        format!("echo '{{\"SecretAccessKey\": \"{secret}\"}}'\necho 'login expired: run corp-login' >&2\nexit 3\n").as_bytes(),
    );
    let garbled = dir.file(
        "garbled.sh",
        format!("printf '{{\"Version\": 1, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"{secret}\"'\n").as_bytes(),
    );
    let keyless = keyless(&kinesis);
    for (script, expected) in [
        (
            failing,
            vec!["exited with status 3", "login expired: run corp-login"],
        ),
        (garbled, vec!["not JSON", "Version"]),
    ] {
        let files = chain_files(
            &dir,
            &format!(
                "[default]\ncredential_process = sh {} --token {secret}\n",
                script.display()
            ),
        );
        let env = as_env(&files);
        let run = check(&dir, &keyless, &env);
        let message = assert_failed(&run);
        for part in expected
            .iter()
            .chain(&["credential_process `sh ...` of profile `default`"])
        {
            assert!(message.contains(part), "{part} not in: {message}");
        }
        assert_hidden(&run, &[secret]);
        let run = write(&keyless, &env, &record_line(None, "s", "{}", 1));
        assert_eq!((run.code, run.failure_type()), (2, "config_error"));
        assert_hidden(&run, &[secret]);
    }
    assert!(kinesis.seen().is_empty());
}
