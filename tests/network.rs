//! How connections are made: `AWS_CA_BUNDLE` against kinesis-local's TLS port,
//! and `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` through a loopback CONNECT proxy.

#[path = "support/services.rs"]
mod services;
mod support;

use serde_json::{json, Value};
use services::ConnectProxy;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use support::{command, run_command, KinesisLocal, TempDir};

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
