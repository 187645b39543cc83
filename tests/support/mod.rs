//! Test harness shared by the end-to-end tests: a kinesis-local emulator on a
//! free loopback port, a runner for the built binary, and a read-back helper.
#![allow(dead_code)]

pub mod http_server;
pub mod live;
pub mod standin;

use destination_kinesis::config::{Secret, StreamMode};
use destination_kinesis::credentials::Credentials;
use destination_kinesis::http::{Client, Timeouts};
use destination_kinesis::kinesis::{Kinesis, ReadRecord, StreamStatus};
use destination_kinesis::naming::StreamRef;
use destination_kinesis::read::{Aggregates, Record};
use serde_json::Value;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The pinned emulator version.
pub const KINESIS_LOCAL_VERSION: &str = "0.6.2";

/// The built binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_destination-kinesis")
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    l.local_addr().expect("local addr").port()
}

static INSTALL: Mutex<()> = Mutex::new(());

/// The emulator's `main.js`, installed with npm on first use.
pub fn kinesis_local_main() -> PathBuf {
    if let Ok(p) = std::env::var("KINESIS_LOCAL_MAIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/kinesis-local");
    let main = root.join("node_modules/kinesis-local/main.js");
    let _guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if !main.exists() {
        std::fs::create_dir_all(&root).expect("create .cache/kinesis-local");
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&root)
            .arg(format!("kinesis-local@{KINESIS_LOCAL_VERSION}"))
            .status()
            .expect("run npm (is Node.js installed?)");
        assert!(status.success(), "npm install kinesis-local failed");
    }
    main
}

/// A running kinesis-local, stopped when dropped.
pub struct KinesisLocal {
    child: Child,
    /// Plain HTTP port.
    pub port: u16,
    /// TLS port (self-signed certificate from the package's server.json).
    pub tls_port: u16,
    _dir: TempDir,
}

impl KinesisLocal {
    /// Starts an emulator on free loopback ports and waits until it answers.
    pub fn start() -> KinesisLocal {
        KinesisLocal::start_with_cert(None)
    }

    /// Starts one whose TLS port serves the key and certificate in `server_json`
    /// (kinesis-mock's `{"server":{"key","cert"}}` file); None keeps the package's own.
    pub fn start_with_cert(server_json: Option<&Path>) -> KinesisLocal {
        KinesisLocal::start_with(server_json, &[])
    }

    /// Starts one with emulator settings changed from the harness's, e.g.
    /// `("CREATE_STREAM_DURATION", "3s")`.
    pub fn start_with_env(env: &[(&str, &str)]) -> KinesisLocal {
        KinesisLocal::start_with(None, env)
    }

    fn start_with(server_json: Option<&Path>, env: &[(&str, &str)]) -> KinesisLocal {
        let main = kinesis_local_main();
        let cert = server_json
            .map(Path::to_path_buf)
            .unwrap_or_else(|| main.with_file_name("server.json"));
        let dir = TempDir::new("kinesis-local");
        let (port, tls_port) = (free_port(), free_port());
        // The wrapper exits when its stdin closes, so the emulator dies with the test process.
        let child = Command::new("node")
            .arg("-e")
            .arg("process.stdin.on('end',()=>process.exit(0));process.stdin.on('data',()=>{});require(process.argv[1])")
            .arg(&main)
            .current_dir(&dir.path)
            .env("KINESIS_MOCK_PLAIN_PORT", port.to_string())
            .env("KINESIS_MOCK_TLS_PORT", tls_port.to_string())
            .env("KINESIS_MOCK_CERT_PATH", cert)
            .env("CREATE_STREAM_DURATION", "100ms")
            .env("DELETE_STREAM_DURATION", "100ms")
            .env("SHOULD_PERSIST_DATA", "false")
            .env("LOAD_DATA_IF_EXISTS", "false")
            .env("LOG_LEVEL", "ERROR")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "kinesis-local did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        KinesisLocal {
            child,
            port,
            tls_port,
            _dir: dir,
        }
    }

    /// Its working directory (removed on drop).
    pub fn dir(&self) -> &Path {
        &self._dir.path
    }

    /// Its plain HTTP endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A config pointing at it, merged with `extra`.
    pub fn config(&self, extra: Value) -> Value {
        let mut c = serde_json::json!({
            "endpoint": self.endpoint(),
            "region": "us-east-1",
            "accessKey": "000000000000",
            "privateKey": "local-secret-key",
            "shardCount": 2,
            "bufferSize": 100
        });
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    }

    /// A Kinesis client for it, for setting up and reading back.
    pub fn client(&self) -> Kinesis {
        client_for(&self.endpoint())
    }

    /// Every record of `stream` as `read` gives it (see `read_back`).
    pub fn read_back(&self, stream: &str) -> Vec<Record> {
        read_back(&self.client(), stream)
    }

    /// Every Kinesis record of `stream` as stored, aggregates whole (see `read_stored`).
    pub fn read_stored(&self, stream: &str) -> Vec<Record> {
        read_stored(&self.client(), stream)
    }

    /// `read_stored` as (shard id, Kinesis record) pairs, the shape tests/bench reads.
    pub fn read_stream(&self, stream: &str) -> Vec<(String, ReadRecord)> {
        self.read_stored(stream)
            .into_iter()
            .map(|r| {
                let record = ReadRecord {
                    data: r.data,
                    partition_key: r.partition_key,
                    sequence_number: r.sequence_number,
                    arrival: r.arrival,
                };
                (r.shard, record)
            })
            .collect()
    }
}

impl Drop for KinesisLocal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One emulator for a whole test file (each test using its own streams),
/// started with `env` on first use; later calls get the same one.
pub fn shared_kinesis_local(env: &[(&str, &str)]) -> &'static KinesisLocal {
    static KL: std::sync::OnceLock<KinesisLocal> = std::sync::OnceLock::new();
    KL.get_or_init(|| {
        let kl = KinesisLocal::start_with_env(env);
        // A static is never dropped: remove its (unused) working directory now.
        let _ = std::fs::remove_dir_all(kl.dir());
        kl
    })
}

/// Waits until `stream` is ACTIVE (after creating or resharding it).
pub fn wait_active(k: &Kinesis, stream: &str) {
    let stream = &StreamRef::from(stream);
    let deadline = Instant::now() + Duration::from_secs(30);
    while k.stream_status(stream).expect("DescribeStreamSummary") != Some(StreamStatus::Active) {
        assert!(Instant::now() < deadline, "{stream} did not become ACTIVE");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Creates a stream and waits until it is ACTIVE.
pub fn create_active(k: &Kinesis, stream: &str, mode: StreamMode, shards: u32) {
    let shape = destination_kinesis::kinesis::NewStream {
        mode,
        shards,
        max_record_size_kib: None,
    };
    assert!(k.create_stream(stream, &shape).expect("CreateStream"));
    wait_active(k, stream);
}

/// Reshards a stream to `target` shards (UNIFORM_SCALING) and waits until it is ACTIVE again.
pub fn reshard(k: &Kinesis, stream: &str, target: u32) {
    let body = serde_json::json!({"StreamName": stream, "TargetShardCount": target, "ScalingType": "UNIFORM_SCALING"});
    k.call(
        "UpdateShardCount",
        Some(stream),
        body.to_string().as_bytes(),
    )
    .expect("UpdateShardCount");
    // The stream turns UPDATING a moment after the call.
    std::thread::sleep(Duration::from_millis(200));
    wait_active(k, stream);
}

/// A Kinesis client for a loopback endpoint with the harness's credentials.
pub fn client_for(endpoint: &str) -> Kinesis {
    client_as(endpoint, "000000000000", "us-east-1")
}

/// A Kinesis client signing with `access_key` for `region`. kinesis-local
/// takes a 12-digit access key as the account it serves, and the signing
/// region as the region: so this is a client of another account or region.
pub fn client_as(endpoint: &str, access_key: &str, region: &str) -> Kinesis {
    let creds = Credentials {
        access_key_id: access_key.into(),
        secret_access_key: Secret::new("local-secret-key"),
        session_token: None,
        source: "test",
    };
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(30),
    };
    Kinesis::new(
        Client::new(endpoint, region, "kinesis", &creds, timeouts),
        Box::new(|_| {}),
    )
}

/// Every record of `stream`, read by the product's own `read` code: parents
/// before their children, oldest first per shard, KPL aggregates unpacked.
pub fn read_back(k: &Kinesis, stream: &str) -> Vec<Record> {
    read_with(k, stream, Aggregates::Unpack)
}

/// Every Kinesis record of `stream` in `read`'s order, aggregates whole: for
/// tests of what was sent.
pub fn read_stored(k: &Kinesis, stream: &str) -> Vec<Record> {
    read_with(k, stream, Aggregates::Keep)
}

fn read_with(k: &Kinesis, stream: &str, aggregates: Aggregates) -> Vec<Record> {
    let stream = StreamRef::from(stream);
    destination_kinesis::read::records(k, &stream, aggregates, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("reading {stream} back: {}", e.message))
}

/// A temporary directory, removed when dropped.
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
}

impl TempDir {
    /// A new empty directory under the system temp dir.
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("dk-{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    /// Writes a file in it and returns its path.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let p = self.path.join(name);
        std::fs::write(&p, contents).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What a run of the binary printed and how it ended.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Raw stdout.
    pub stdout: String,
    /// Raw stderr.
    pub stderr: String,
    /// stdout lines as JSON; a test fails if any line is not an AirbyteMessage.
    pub messages: Vec<Value>,
}

/// The final LOG's figures (the machine-readable DEBUG line `write` ends with).
pub fn figures_of(messages: &[Value]) -> Value {
    let prefix = destination_kinesis::write::FIGURES_PREFIX;
    messages
        .iter()
        .rev()
        .filter(|m| m["type"] == "LOG")
        .find_map(|m| m["log"]["message"].as_str()?.strip_prefix(prefix))
        .map(|json| serde_json::from_str(json).expect("figures are JSON"))
        .unwrap_or_else(|| panic!("no `{prefix}` LOG line in {messages:?}"))
}

impl Run {
    /// The final LOG's figures.
    pub fn figures(&self) -> Value {
        figures_of(&self.messages)
    }

    /// Messages of a given `type`.
    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.messages.iter().filter(|m| m["type"] == kind).collect()
    }

    /// The TRACE error, if any.
    pub fn error(&self) -> Option<&Value> {
        self.messages
            .iter()
            .find(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
    }

    /// The TRACE error's message, or "" when there is none.
    pub fn error_message(&self) -> String {
        self.error()
            .and_then(|e| e["trace"]["error"]["message"].as_str())
            .unwrap_or("")
            .to_string()
    }

    /// The TRACE error's failure type, or "" when there is none.
    pub fn failure_type(&self) -> String {
        self.error()
            .and_then(|e| e["trace"]["error"]["failure_type"].as_str())
            .unwrap_or("")
            .to_string()
    }

    /// The echoed states.
    pub fn states(&self) -> Vec<&Value> {
        self.of_type("STATE")
    }

    /// The CONNECTION_STATUS's status and message ("" when absent).
    pub fn connection_status(&self) -> (String, String) {
        let s = self
            .of_type("CONNECTION_STATUS")
            .first()
            .map(|m| m["connectionStatus"].clone())
            .unwrap_or(Value::Null);
        let field = |k: &str| s[k].as_str().unwrap_or("").to_string();
        (field("status"), field("message"))
    }
}

/// The message of `check`'s CONNECTION_STATUS, which must be SUCCEEDED.
pub fn assert_succeeded(run: &Run) -> String {
    let (state, message) = run.connection_status();
    assert_eq!(state, "SUCCEEDED", "{message}\n{}", run.stderr);
    message
}

/// The message of `check`'s CONNECTION_STATUS, which must be FAILED.
pub fn assert_failed(run: &Run) -> String {
    let (state, message) = run.connection_status();
    assert_eq!(state, "FAILED", "{message}");
    message
}

/// Checks that every stdout line is a JSON AirbyteMessage with a known type.
pub fn parse_messages(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            let kind = v["type"]
                .as_str()
                .unwrap_or_else(|| panic!("stdout line without type: {line}"));
            assert!(
                ["SPEC", "CONNECTION_STATUS", "LOG", "TRACE", "STATE"].contains(&kind),
                "unexpected message type on stdout: {line}"
            );
            v
        })
        .collect()
}

/// A command for the binary with a clean AWS environment (no ambient credentials,
/// no instance metadata).
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(binary());
    c.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.ends_with("_PROXY") || k.ends_with("_proxy") {
            c.env_remove(k);
        }
    }
    c.env("AWS_EC2_METADATA_DISABLED", "true");
    c.env("AWS_CONFIG_FILE", "/nonexistent/aws-config");
    c.env(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/aws-credentials",
    );
    c
}

/// Runs a prepared command with `stdin`, fails the test if it panicked, and
/// returns its output.
pub fn output_with_stdin(mut c: Command, stdin: &[u8]) -> std::process::Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn the binary");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The program may stop reading early (on an error): a broken pipe is fine.
        let _ = input.write_all(&data);
    });
    let output = child.wait_with_output().expect("wait for the binary");
    let _ = writer.join();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked"),
        "the program panicked: {stderr}"
    );
    output
}

/// Runs a prepared command with `stdin` and collects its output.
pub fn run_command(c: Command, stdin: &[u8]) -> Run {
    let output = output_with_stdin(c, stdin);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    Run {
        code: output.status.code().unwrap_or(-1),
        messages: parse_messages(&stdout),
        stdout,
        stderr,
    }
}

/// Runs `write` with a config and catalog given as JSON, feeding `stdin`.
pub fn run_write(config: &Value, catalog: &Value, stdin: &[u8]) -> Run {
    let dir = TempDir::new("write");
    let cfg = dir.file("config.json", config.to_string().as_bytes());
    let cat = dir.file("catalog.json", catalog.to_string().as_bytes());
    let c = command(&[
        "write",
        "--config",
        cfg.to_str().unwrap_or_default(),
        "--catalog",
        cat.to_str().unwrap_or_default(),
    ]);
    run_command(c, stdin)
}

/// Runs `check` with a config given as JSON.
pub fn run_check(config: &Value) -> Run {
    let dir = TempDir::new("check");
    let cfg = dir.file("config.json", config.to_string().as_bytes());
    run_command(
        command(&["check", "--config", cfg.to_str().unwrap_or_default()]),
        b"",
    )
}

/// A catalog of append streams: (namespace, name) pairs.
pub fn catalog(streams: &[(Option<&str>, &str)]) -> Value {
    let list: Vec<Value> = streams
        .iter()
        .map(|(ns, name)| {
            let mut stream = serde_json::json!({"name": name, "json_schema": {"type": "object"}, "supported_sync_modes": ["full_refresh"]});
            if let Some(ns) = ns {
                stream["namespace"] = serde_json::json!(ns);
            }
            serde_json::json!({"stream": stream, "sync_mode": "full_refresh", "destination_sync_mode": "append"})
        })
        .collect();
    serde_json::json!({ "streams": list })
}

/// The text of a file in `fixtures/`.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name),
    )
    .expect("fixture exists")
}

/// A RECORD line.
pub fn record_line(namespace: Option<&str>, stream: &str, data: &str, emitted_at: i64) -> String {
    let ns = namespace
        .map(|n| format!(",\"namespace\":{}", Value::String(n.into())))
        .unwrap_or_default();
    format!(
        "{{\"type\":\"RECORD\",\"record\":{{\"stream\":{}{ns},\"data\":{data},\"emitted_at\":{emitted_at}}}}}\n",
        Value::String(stream.into())
    )
}

/// The catalog of one append stream, `s` (whose Kinesis stream is `_s`).
pub fn catalog_s() -> Value {
    catalog(&[(None, "s")])
}

/// Record `i` of stream `s`: data `{"i":i}` (`live::record_number` reads `i` back).
pub fn record_s(i: usize) -> String {
    record_line(None, "s", &format!("{{\"i\":{i}}}"), 1_700_000_000_000)
}

/// A LEGACY STATE line carrying `n`.
pub fn state_line(n: u64) -> String {
    format!("{{\"type\":\"STATE\",\"state\":{{\"data\":{{\"n\":{n}}}}}}}\n")
}

/// Decodes a record written by the connector into its envelope.
pub fn envelope(r: &Record) -> Value {
    serde_json::from_slice(&r.data).expect("record data is the JSON envelope")
}

/// `_airbyte_emitted_at` of a legacy envelope, read as Jackson reads an
/// `Instant` from a number (epoch seconds, the fraction as nanoseconds),
/// after checking it is written as the Java connector wrote it: a plain
/// decimal with exactly nine fraction digits.
pub fn legacy_emitted_at(envelope: &[u8]) -> std::time::SystemTime {
    #[derive(serde::Deserialize)]
    struct Legacy<'a> {
        #[serde(borrow, rename = "_airbyte_emitted_at")]
        emitted_at: &'a serde_json::value::RawValue,
    }
    let e: Legacy<'_> = serde_json::from_slice(envelope).expect("a legacy envelope");
    let text = e.emitted_at.get();
    let (secs, nanos) = text
        .split_once('.')
        .unwrap_or_else(|| panic!("`{text}` has no fraction"));
    assert_eq!(nanos.len(), 9, "`{text}` has nine fraction digits");
    assert!(
        secs.bytes()
            .chain(nanos.bytes())
            .all(|b| b.is_ascii_digit()),
        "{text}"
    );
    std::time::UNIX_EPOCH
        + Duration::new(
            secs.parse().expect("seconds"),
            nanos.parse().expect("nanoseconds"),
        )
}

/// Asserts that a legacy envelope's `_airbyte_emitted_at` falls in the run's
/// time window: it is when the destination read the record.
pub fn assert_read_between(
    envelope: &[u8],
    from: std::time::SystemTime,
    to: std::time::SystemTime,
) {
    let at = legacy_emitted_at(envelope);
    assert!(
        from <= at && at <= to,
        "emitted_at {at:?} outside the run's window {from:?}..{to:?}"
    );
}
