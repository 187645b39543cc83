//! The static musl binary (`make static`) alone in an empty root: no libraries,
//! no /etc, no /dev, no certificates on disk. It prints its spec, and `check`,
//! `write`, `put` and `read` reach kinesis-local on loopback; then, with the
//! image's static busybox as `/bin/sh`, Airbyte's launcher command
//! (`sh -c 'eval "$AIRBYTE_ENTRYPOINT ..."'`) works too. Also checks the Dockerfile.

mod support;

use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{run_command, KinesisLocal, Run, TempDir};

const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

fn root_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `make -s <target>` in the crate, reporting whether it succeeded.
fn make(target: &str) -> std::process::Output {
    let mut make = Command::new("make");
    make.args(["-s", target]).current_dir(root_dir());
    // The variables cargo sets for tests would look like a changed build
    // environment to the nested cargo and make it rebuild everything.
    for (k, _) in std::env::vars() {
        if (k.starts_with("CARGO") && k != "CARGO_HOME") || k == "LD_LIBRARY_PATH" || k == "OUT_DIR"
        {
            make.env_remove(k);
        }
    }
    make.output().expect("run make")
}

fn make_target(target: &str) -> bool {
    make(target).status.success()
}

/// Builds (or finds up to date) the static binary with `make static`; None when the
/// musl target cannot be installed here.
fn static_binary() -> Option<PathBuf> {
    let out = make("static");
    if !out.status.success() {
        let installed = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l == MUSL_TARGET)
            })
            .unwrap_or(false);
        if !installed {
            eprintln!(
                "SKIPPED: the {MUSL_TARGET} target cannot be installed here (rustup target add failed): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        panic!(
            "make static failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(root_dir().join(format!("target/{MUSL_TARGET}/release/destination-kinesis")))
}

/// Runs `command` (a program inside `root` and its arguments) in `root`; see `in_root`.
fn run_in_root(root: &Path, command: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Run {
    run_command(in_root(root, command, env), stdin)
}

/// `command` (a program inside `root` and its arguments) with `root` as its `/` and
/// an empty environment but for `env`: plain chroot as root, else in a user namespace.
fn in_root(root: &Path, command: &[&str], env: &[(&str, &str)]) -> Command {
    let as_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    // chroot lives in /usr/sbin, which a user's PATH may lack.
    let chroot = ["/usr/sbin/chroot", "/sbin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("chroot");
    let mut c = if as_root {
        Command::new(chroot)
    } else {
        let mut c = Command::new("unshare");
        c.args(["--user", "--map-root-user", chroot]);
        c
    };
    c.arg(root).args(command).env_clear();
    c.envs(env.iter().copied());
    c
}

#[test]
fn runs_alone_in_an_empty_root() {
    let Some(binary) = static_binary() else {
        return;
    };
    let size = std::fs::metadata(&binary).expect("static binary").len();
    assert!(size <= 6 * 1024 * 1024, "{size} bytes");

    let root = TempDir::new("static-root");
    std::fs::copy(&binary, root.path.join("destination-kinesis")).expect("copy binary");

    let out = run_in_root(&root.path, &["/destination-kinesis", "spec"], &[], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let spec = &out.messages;
    assert_eq!(spec.len(), 1);
    assert_eq!(spec[0]["type"], "SPEC");
    assert!(spec[0]["spec"]["connectionSpecification"]["properties"]["endpoint"].is_object());

    let local = KinesisLocal::start();
    let config = json!({"endpoint": local.endpoint(), "region": "us-east-1",
        "accessKey": "000000000000", "privateKey": "local-secret-key", "shardCount": 1});
    root.file("config.json", config.to_string().as_bytes());
    root.file(
        "catalog.json",
        support::catalog(&[(Some("shop"), "orders")])
            .to_string()
            .as_bytes(),
    );
    // Nothing but what the test put there: no libraries, /etc or /dev.
    let mut entries: Vec<String> = std::fs::read_dir(&root.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        ["catalog.json", "config.json", "destination-kinesis"]
    );
    let env = [("AWS_EC2_METADATA_DISABLED", "true")];

    let out = run_in_root(
        &root.path,
        &["/destination-kinesis", "check", "--config", "/config.json"],
        &env,
        b"",
    );
    let (status, message) = out.connection_status();
    assert_eq!(status, "SUCCEEDED", "{message}");

    let input = support::record_line(Some("shop"), "orders", "{\"id\":1}", 1)
        + &support::record_line(Some("shop"), "orders", "{\"id\":2}", 2)
        + &support::state_line(1);
    let out = run_in_root(
        &root.path,
        &[
            "/destination-kinesis",
            "write",
            "--config",
            "/config.json",
            "--catalog",
            "/catalog.json",
        ],
        &env,
        input.as_bytes(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.states().len(), 1);
    assert_eq!(local.read_stream("shop_orders").len(), 2);

    // The pipeline commands, with credentials and region from the environment.
    let endpoint = local.endpoint();
    let pipeline_env = [
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ACCESS_KEY_ID", "000000000000"),
        ("AWS_SECRET_ACCESS_KEY", "local-secret-key"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL_KINESIS", endpoint.as_str()),
    ];
    let out = run_in_root(
        &root.path,
        &[
            "/destination-kinesis",
            "put",
            "--stream",
            "alone",
            "--create",
            "--shards",
            "1",
        ],
        &pipeline_env,
        b"first line\n{\"second\":2}\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = support::output_with_stdin(
        in_root(
            &root.path,
            &["/destination-kinesis", "read", "--stream", "alone"],
            &pipeline_env,
        ),
        b"",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "first line\n{\"second\":2}\n"
    );

    // As Airbyte's launcher runs it in the image: through `sh -c 'eval ...'` with
    // the image's AIRBYTE_ENTRYPOINT, the shell being the image's static busybox.
    let busybox = make_target("busybox").then_some(Path::new("/bin/busybox"));
    let busybox = busybox.expect("make busybox installs the static shell the image carries");
    std::fs::create_dir(root.path.join("bin")).unwrap();
    std::fs::copy(busybox, root.path.join("bin/sh")).unwrap();
    let airbyte = [
        ("AIRBYTE_ENTRYPOINT", "/destination-kinesis"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let out = run_in_root(
        &root.path,
        &[
            "/bin/sh",
            "-c",
            r#"eval "$AIRBYTE_ENTRYPOINT check --config /config.json" 2> /stderr"#,
        ],
        &airbyte,
        b"",
    );
    let (status, message) = out.connection_status();
    assert_eq!(status, "SUCCEEDED", "{message} {}", out.stderr);
}

#[test]
fn dockerfile_is_a_scratch_image_with_airbyte_labels() {
    let text = std::fs::read_to_string(root_dir().join("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    assert_eq!(lines[last_from], "FROM scratch");
    let image = &lines[last_from..];
    for expected in [
        "COPY --from=shell /bin/busybox /bin/sh".to_string(),
        format!("COPY target/{MUSL_TARGET}/release/destination-kinesis /destination-kinesis"),
        "ENV AIRBYTE_ENTRYPOINT=\"/destination-kinesis\"".to_string(),
        "ENTRYPOINT [\"/destination-kinesis\"]".to_string(),
        "LABEL io.airbyte.name=\"airbyte/destination-kinesis\"".to_string(),
        format!("LABEL io.airbyte.version=\"{}\"", env!("CARGO_PKG_VERSION")),
    ] {
        assert!(
            image.contains(&expected.as_str()),
            "Dockerfile lacks `{expected}`"
        );
    }
}
