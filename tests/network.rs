//! How connections are made: `AWS_CA_BUNDLE` against kinesis-local's TLS port
//! (a private CA, a self-signed certificate made here with openssl), and
//! `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` through a loopback CONNECT proxy or
//! a dead one; passwords in URLs never printed.

use crate::support;
use crate::support::cli::cli;
use crate::support::services::ConnectProxy;
use crate::support::{command, free_port, output_with_stdin, run_command, KinesisLocal, TempDir};
use base64::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The test CA and the emulator serving a certificate it signed for 127.0.0.1 and localhost.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/tls")
        .join(name)
}

/// One emulator with the test CA's certificate, shared by the tests of this file.
fn private_ca_kinesis() -> &'static KinesisLocal {
    static LOCAL: OnceLock<KinesisLocal> = OnceLock::new();
    LOCAL.get_or_init(|| KinesisLocal::start_with_cert(Some(&fixture("server.json"))))
}

/// `check` against `endpoint` with harness credentials and `env`.
fn check(endpoint: &str, env: &[(&str, &str)]) -> (String, String) {
    let dir = TempDir::new("net-check");
    let config = json!({"endpoint": endpoint, "region": "us-east-1",
        "accessKey": "000000000000", "privateKey": "local-secret-key"});
    let path = dir.file("config.json", config.to_string().as_bytes());
    let mut c = command(&["check", "--config", path.to_str().unwrap()]);
    for (k, v) in env {
        c.env(k, v);
    }
    run_command(c, b"").connection_status()
}

#[test]
fn ca_bundle_trusts_a_private_ca() {
    let local = private_ca_kinesis();
    let endpoint = format!("https://127.0.0.1:{}", local.tls_port);
    let (state, message) = check(&endpoint, &[]);
    assert_eq!(state, "FAILED");
    assert!(
        message.contains("TLS")
            && message.contains("AWS_CA_BUNDLE")
            && message.contains("UnknownIssuer"),
        "{message}"
    );
    let ca = fixture("ca.pem");
    let (state, message) = check(&endpoint, &[("AWS_CA_BUNDLE", ca.to_str().unwrap())]);
    assert_eq!(state, "SUCCEEDED", "{message}");
    // The bundled roots stay trusted too: the bundle adds, it does not replace.
    let (state, message) = check(
        &format!("https://localhost:{}", local.tls_port),
        &[("AWS_CA_BUNDLE", ca.to_str().unwrap())],
    );
    assert_eq!(state, "SUCCEEDED", "{message}");
    let (state, message) = check(&endpoint, &[("AWS_CA_BUNDLE", "/nonexistent/ca.pem")]);
    assert_eq!(state, "FAILED");
    assert!(
        message.contains("AWS_CA_BUNDLE") && message.contains("/nonexistent/ca.pem"),
        "{message}"
    );
}

/// kinesis-local's own certificate is self-signed and names no host (CN=Unknown, no
/// subjectAltName), so no client can verify it for 127.0.0.1: with it as the CA
/// bundle, the chain is trusted and only the host-name check fails.
#[test]
fn kinesis_local_certificate_is_trusted_but_names_no_host() {
    let local = KinesisLocal::start();
    let server_json = support::kinesis_local_main().with_file_name("server.json");
    let package: Value = serde_json::from_slice(&std::fs::read(server_json).unwrap()).unwrap();
    let dir = TempDir::new("net-kl-cert");
    let pem = dir.file(
        "kinesis-local.pem",
        package["server"]["cert"].as_str().unwrap().as_bytes(),
    );
    let endpoint = format!("https://127.0.0.1:{}", local.tls_port);
    let (state, without) = check(&endpoint, &[]);
    assert_eq!(state, "FAILED");
    assert!(without.contains("UnknownIssuer"), "{without}");
    let (state, with) = check(&endpoint, &[("AWS_CA_BUNDLE", pem.to_str().unwrap())]);
    assert_eq!(state, "FAILED");
    assert!(
        !with.contains("UnknownIssuer") && with.contains("not valid for name"),
        "{with}"
    );
}

#[test]
fn proxies_by_scheme_and_no_proxy() {
    let local = private_ca_kinesis();
    let proxy = ConnectProxy::start();
    let ca = fixture("ca.pem");
    let ca = ca.to_str().unwrap();
    let https = format!("https://127.0.0.1:{}", local.tls_port);

    let (state, message) = check(
        &https,
        &[("AWS_CA_BUNDLE", ca), ("HTTPS_PROXY", &proxy.url())],
    );
    assert_eq!(state, "SUCCEEDED", "{message}");
    assert_eq!(
        proxy.targets(),
        vec![format!("127.0.0.1:{}", local.tls_port)]
    );

    // NO_PROXY exempts the host; HTTP_PROXY is not for https URLs.
    for env in [
        vec![
            ("AWS_CA_BUNDLE", ca),
            ("HTTPS_PROXY", proxy.url().as_str()),
            ("NO_PROXY", "localhost, 127.0.0.1"),
        ],
        vec![("AWS_CA_BUNDLE", ca), ("HTTP_PROXY", proxy.url().as_str())],
    ] {
        let (state, message) = check(&https, &env);
        assert_eq!(state, "SUCCEEDED", "{message}");
        assert_eq!(proxy.tunnels(), 1, "{env:?}");
    }

    // Plain http goes through HTTP_PROXY (lower case works too).
    let (state, message) = check(&local.endpoint(), &[("http_proxy", proxy.url().as_str())]);
    assert_eq!(state, "SUCCEEDED", "{message}");
    assert_eq!(proxy.tunnels(), 2);

    let (state, message) = check(&https, &[("HTTPS_PROXY", "ftp://proxy.example")]);
    assert_eq!(state, "FAILED");
    assert!(message.contains("HTTPS_PROXY"), "{message}");
}

/// Runs `put` or `read` (harness credentials) with `env`: (exit code, stdout, stderr).
fn pipeline(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> (i32, String, String) {
    let mut c = cli(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = output_with_stdin(c, stdin);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `put` of `lines` to a new one-shard stream at `endpoint`, with `env`; it must succeed.
fn put_new(stream: &str, endpoint: &str, env: &[(&str, &str)], lines: &[u8]) {
    let args = [
        "put",
        "--stream",
        stream,
        "--create",
        "--shards",
        "1",
        "--endpoint",
        endpoint,
    ];
    let (code, _, stderr) = pipeline(&args, env, lines);
    assert_eq!(code, 0, "{stderr}");
}

/// Runs `write` of one record to stream `s` with `config` and `env`.
fn write(config: &Value, env: &[(&str, &str)]) -> support::Run {
    let (mut c, _dir) = support::write_command(config, &support::catalog(&[(None, "s")]));
    for (k, v) in env {
        c.env(k, v);
    }
    run_command(c, support::record_line(None, "s", "{}", 1).as_bytes())
}

/// A self-signed certificate for `san` made the way most guides say
/// (`openssl req -x509`, so it is marked as a CA), and kinesis-mock's
/// server.json serving it: (certificate PEM, server.json).
fn self_signed(dir: &TempDir, name: &str, san: &str) -> (PathBuf, PathBuf) {
    let key = dir.path.join(format!("{name}.key"));
    let cert = dir.path.join(format!("{name}.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7",
        ])
        .args(["-subj", "/CN=localhost", "-addext"])
        .arg(format!("subjectAltName={san}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (`make test` installs it)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &Path| std::fs::read_to_string(p).expect("openssl wrote it");
    let server = json!({"server": {"key": read(&key), "cert": read(&cert)}});
    let server_json = dir.file(&format!("{name}.json"), server.to_string().as_bytes());
    (cert, server_json)
}

/// The AWS CLI trusts a server whose self-signed certificate is in
/// AWS_CA_BUNDLE; so does this program, for that certificate's names only,
/// while a different self-signed certificate in the bundle vouches for nothing.
#[test]
fn a_self_signed_certificate_in_the_bundle_is_trusted_as_itself() {
    let dir = TempDir::new("net-self-signed");
    let (served, server_json) = self_signed(&dir, "served", "IP:127.0.0.1");
    let (other, _) = self_signed(&dir, "other", "IP:127.0.0.1");
    let local = KinesisLocal::start_with_cert(Some(&server_json));
    let https = format!("https://127.0.0.1:{}", local.tls_port);
    let bundle = [("AWS_CA_BUNDLE", served.to_str().unwrap())];

    let (state, message) = check(&https, &[]);
    assert_eq!(state, "FAILED");
    assert!(message.contains("TLS"), "{message}");
    let (state, message) = check(&https, &bundle);
    assert_eq!(state, "SUCCEEDED", "{message}");
    put_new("selfsigned", &https, &bundle, b"one\ntwo\n");
    let (code, stdout, stderr) = pipeline(
        &["read", "--stream", "selfsigned", "--endpoint", &https],
        &bundle,
        b"",
    );
    assert_eq!((code, stdout.as_str()), (0, "one\ntwo\n"), "{stderr}");

    let (state, message) = check(&https, &[("AWS_CA_BUNDLE", other.to_str().unwrap())]);
    assert_eq!(state, "FAILED", "another self-signed certificate is no CA");
    assert!(message.contains("TLS"), "{message}");
    // The certificate names 127.0.0.1 only.
    let (state, message) = check(&format!("https://localhost:{}", local.tls_port), &bundle);
    assert_eq!(state, "FAILED");
    assert!(message.contains("not valid for name"), "{message}");
}

/// A proxy that refuses connections is named with the variable it came from,
/// not blamed on the endpoint; one whose host does not resolve likewise.
#[test]
fn a_dead_proxy_is_named() {
    let local = KinesisLocal::start();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let env = [("HTTP_PROXY", dead.as_str())];
    let named = format!("cannot connect to the proxy {dead} (from HTTP_PROXY)");
    let (state, message) = check(&local.endpoint(), &env);
    assert_eq!(state, "FAILED");
    assert!(message.contains(&named), "{message}");
    let (code, _, stderr) = pipeline(
        &["put", "--stream", "p", "--endpoint", &local.endpoint()],
        &env,
        b"x\n",
    );
    assert_eq!(code, 1);
    assert!(stderr.contains(&named), "{stderr}");
    let (_, message) = check(
        &local.endpoint(),
        &[("http_proxy", "http://no-such-proxy.invalid:3128")],
    );
    assert!(
        message.contains(
            "cannot resolve the host of the proxy http://no-such-proxy.invalid:3128 (from http_proxy)"
        ),
        "{message}"
    );
}

const PASSWORD: &str = "pr0xy-Pa55w0rd";

/// Fails the test if `text` shows the password.
fn hidden(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "{what} shows the password: {text}"
    );
}

/// An endpoint with a user name and password is refused, naming it without
/// the password; a proxy's user name and password are sent to the proxy
/// (`Proxy-Authorization`) and never printed, not even when it is dead.
#[test]
fn passwords_in_urls_are_never_printed() {
    let local = KinesisLocal::start();
    let with_password = format!("http://user:{PASSWORD}@127.0.0.1:{}", local.port);
    let refused = "must not hold a user name or password (`http://***@127.0.0.1:";

    let (state, message) = check(&with_password, &[]);
    assert_eq!(state, "FAILED");
    assert!(
        message.contains("config field `endpoint`") && message.contains(refused),
        "{message}"
    );
    hidden("check", &message);
    let run = write(&local.config(json!({"endpoint": with_password})), &[]);
    assert_eq!(
        (run.code, run.failure_type()),
        (2, "config_error"),
        "{}",
        run.stdout
    );
    assert!(run.error_message().contains(refused), "{}", run.stdout);
    hidden("write stdout", &run.stdout);
    hidden("write stderr", &run.stderr);
    for (args, env) in [
        (
            vec!["put", "--stream", "pw", "--endpoint", &with_password],
            vec![],
        ),
        (
            vec!["read", "--stream", "pw", "--endpoint", &with_password],
            vec![],
        ),
        (
            vec!["read", "--stream", "pw"],
            vec![("AWS_ENDPOINT_URL", with_password.as_str())],
        ),
    ] {
        let (code, stdout, stderr) = pipeline(&args, &env, b"x\n");
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(refused), "{stderr}");
        hidden("stdout", &stdout);
        hidden("stderr", &stderr);
    }

    // A live proxy gets the credentials; nothing shows them.
    let proxy = ConnectProxy::start();
    let proxy_url = format!("http://user:{PASSWORD}@127.0.0.1:{}", proxy.port);
    let env = [("HTTP_PROXY", proxy_url.as_str())];
    let (state, message) = check(&local.endpoint(), &env);
    assert_eq!(state, "SUCCEEDED", "{message}");
    put_new("pw", &local.endpoint(), &env, b"x\n");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("user:{PASSWORD}"))
    );
    assert!(proxy.tunnels() >= 2);
    assert!(
        proxy.authorizations().iter().all(|a| *a == basic)
            && proxy.authorizations().len() == proxy.tunnels(),
        "{:?}",
        proxy.authorizations()
    );

    // A dead proxy is named, without its password, by every command.
    let dead = format!("http://user:{PASSWORD}@127.0.0.1:{}", free_port());
    let env = [("HTTP_PROXY", dead.as_str())];
    let shown = "the proxy http://***@127.0.0.1:";
    let (state, message) = check(&local.endpoint(), &env);
    assert_eq!(state, "FAILED");
    assert!(message.contains(shown), "{message}");
    hidden("check", &message);
    let run = write(&local.config(json!({})), &env);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.error_message().contains(shown), "{}", run.stdout);
    hidden("write stdout", &run.stdout);
    hidden("write stderr", &run.stderr);
    for args in [
        vec!["put", "--stream", "pw", "--endpoint", &local.endpoint()],
        vec!["read", "--stream", "pw", "--endpoint", &local.endpoint()],
    ] {
        let (code, stdout, stderr) = pipeline(&args, &env, b"x\n");
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains(shown), "{stderr}");
        hidden("stdout", &stdout);
        hidden("stderr", &stderr);
    }
}
