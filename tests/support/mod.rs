//! Test harness shared by the end-to-end tests: a kinesis-local emulator on a
//! free loopback port, reading its streams back through `read`'s own code,
//! inputs and catalogs; running the binary is in `run` (the pipeline commands
//! in `cli`, a watched `write` in `live`), the stand-ins in `standin` (Kinesis)
//! and `services`, the proxies in `delay_proxy` and `fault_proxy`, all served
//! by `http_server`; running the Makefile is in `make`; the property of the
//! round-trip test and the fuzz target in `roundtrip`.

pub mod cli;
pub mod delay_proxy;
pub mod fault_proxy;
pub mod http_server;
pub mod live;
pub mod make;
pub mod roundtrip;
pub mod run;
pub mod services;
pub mod standin;

pub use run::*;

use destination_kinesis::aws::credentials::Credentials;
use destination_kinesis::aws::http::{Client, Timeouts};
use destination_kinesis::aws::secret::Secret;
use destination_kinesis::kinesis::stream::StreamRef;
use destination_kinesis::kinesis::StreamMode;
use destination_kinesis::kinesis::{Kinesis, ReadRecord, StreamStatus};
use destination_kinesis::pipeline::read::{Aggregates, Record};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The pinned emulator version.
pub const KINESIS_LOCAL_VERSION: &str = "0.6.2";

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
        // A free port can be taken again before the emulator binds it (other
        // test runs share this machine): then the emulator exits at once, and
        // the port may even answer for someone else. So the emulator counts as
        // started only if it is still running once both its ports answer, and
        // a start that lost its ports is tried again on new ones.
        let mut failures = Vec::new();
        for _ in 0..3 {
            let dir = TempDir::new("kinesis-local");
            let (port, tls_port) = (free_port(), free_port());
            let log = dir.path.join("kinesis-local.log");
            let stderr = std::fs::File::create(&log).expect("create the emulator's log");
            // The wrapper exits when its stdin closes, so the emulator dies with the test process.
            let child = Command::new("node")
                .arg("-e")
                .arg("process.stdin.on('end',()=>process.exit(0));process.stdin.on('data',()=>{});require(process.argv[1])")
                .arg(&main)
                .current_dir(&dir.path)
                .env("KINESIS_MOCK_PLAIN_PORT", port.to_string())
                .env("KINESIS_MOCK_TLS_PORT", tls_port.to_string())
                .env("KINESIS_MOCK_CERT_PATH", &cert)
                .env("CREATE_STREAM_DURATION", "100ms")
                .env("DELETE_STREAM_DURATION", "100ms")
                .env("SHOULD_PERSIST_DATA", "false")
                .env("LOAD_DATA_IF_EXISTS", "false")
                .env("LOG_LEVEL", "ERROR")
                .envs(env.iter().copied())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("start node");
            let mut local = KinesisLocal {
                child,
                port,
                tls_port,
                _dir: dir,
            };
            match local.wait_until_serving() {
                Ok(()) => return local,
                Err(why) => {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    failures.push(format!("ports {port}/{tls_port}: {why}\n{log}"));
                }
            }
        }
        panic!("kinesis-local did not start:\n{}", failures.join("\n"));
    }

    /// Waits until both ports answer and the emulator is still running after.
    fn wait_until_serving(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let answers = |port: u16| TcpStream::connect(("127.0.0.1", port)).is_ok();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("it exited ({status})"));
            }
            if answers(self.port) && answers(self.tls_port) {
                break;
            }
            if Instant::now() > deadline {
                return Err("its ports did not answer within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        // An emulator that found its port taken exits within moments of trying.
        std::thread::sleep(Duration::from_millis(200));
        match self.child.try_wait() {
            Ok(None) if answers(self.port) => Ok(()),
            Ok(Some(status)) => Err(format!("it exited ({status}) after its ports answered")),
            _ => Err("its port stopped answering".into()),
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
/// started with `env` on the file's first call; its later calls get the same
/// one. The files share a test binary, but not their emulators: each file's
/// tests see only the streams they made.
#[track_caller]
pub fn shared_kinesis_local(env: &[(&str, &str)]) -> &'static KinesisLocal {
    type PerFile = BTreeMap<&'static str, &'static OnceLock<KinesisLocal>>;
    static STARTED: Mutex<PerFile> = Mutex::new(BTreeMap::new());
    let file = std::panic::Location::caller().file();
    let cell: &'static OnceLock<KinesisLocal> = STARTED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(file)
        .or_insert_with(|| Box::leak(Box::default()));
    cell.get_or_init(|| {
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
    destination_kinesis::pipeline::read::records(k, &stream, aggregates, Duration::from_secs(30))
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
