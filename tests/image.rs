//! The Airbyte image as Airbyte runs it, on a machine with no Docker daemon and no
//! registry: `make image-amd64` writes the image archive (FROM scratch, nothing
//! pulled), a buildah with a storage of the test's own loads it, the image's
//! configuration is checked (numeric non-root user, working directory, entrypoint,
//! AIRBYTE_ENTRYPOINT, labels, size), and `spec`, `check` and `write` run in it as
//! Airbyte's launcher runs connectors: `sh -c 'eval "$AIRBYTE_ENTRYPOINT ..."'` under
//! the image's user, the config files mounted read-only, against the Kinesis
//! stand-in on loopback. `make dist` writes both platforms' archives and the static
//! binaries' tarballs, with SHA256SUMS over all of them.

use crate::support::make::{make, make_var, on_path, root_dir, shown, skip};
use crate::support::standin::StandIn;
use crate::support::{catalog, record_line, run_command, state_line, Run, TempDir};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The most an image archive may hold.
const MAX_BYTES: u64 = 10_000_000;

/// The user the image runs as, uid:gid.
const IMAGE_USER: &str = "1000:1000";

/// One test at a time: both write the archives in dist/, and a rebuilt archive
/// differs from the one before (its files' times), so one test's build would
/// change what the other checks.
static DIST: Mutex<()> = Mutex::new(());

fn dist_lock() -> MutexGuard<'static, ()> {
    DIST.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a docker daemon answers here (`make image` then builds with it).
fn docker_answers() -> bool {
    on_path("docker").is_some()
        && Command::new("docker")
            .arg("info")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Runs `make <target>`, which builds an image archive: true when it did, false
/// (and says why) when this machine cannot build it: a static binary it needs
/// cannot be built (tests/static_binary.rs says why), or there is neither a
/// docker daemon nor buildah and buildah cannot be installed. Any other failure
/// fails the test.
fn built(target: &str, arches: &[&str]) -> bool {
    for arch in arches {
        if !make(&[&format!("static-{arch}")]).status.success() {
            skip(&format!(
                "make {target}: the {arch} static binary cannot be built here"
            ));
            return false;
        }
    }
    let out = make(&[target]);
    if out.status.success() {
        return true;
    }
    if !docker_answers() && on_path("buildah").is_none() {
        skip(&format!(
            "make {target}: no docker daemon answers and buildah cannot be installed here: {}",
            shown(&out)
        ));
        return false;
    }
    panic!("make {target} failed:\n{}", shown(&out));
}

/// buildah with a storage of its own (vfs) in a temporary directory, so the test
/// sees only what it loads from an archive.
struct Buildah {
    dir: TempDir,
}

impl Buildah {
    /// None (said why) when buildah is not here and cannot be installed.
    fn new() -> Option<Buildah> {
        let out = make(&["buildah"]);
        if on_path("buildah").is_none() {
            skip(&format!(
                "buildah is needed to load the image archive: {}",
                shown(&out)
            ));
            return None;
        }
        Some(Buildah {
            dir: TempDir::new("buildah"),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(self.dir.path.join("root"))
            .arg("--runroot")
            .arg(self.dir.path.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        c
    }

    /// stdout of a buildah command, which must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let out: Output = self.command(args).output().expect("run buildah");
        assert!(out.status.success(), "buildah {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Loads an image archive (as `docker load` and `podman load` would); its ID.
    fn load(&self, archive: &Path) -> String {
        let source = format!("docker-archive:{}", archive.display());
        let out = self.ok(&["pull", "-q", &source]);
        out.lines().last().expect("an image ID").trim().to_string()
    }

    /// The image's OCI configuration and platform.
    fn inspect(&self, image: &str) -> Value {
        let out = self.ok(&["inspect", "--type", "image", image]);
        let all: Value = serde_json::from_str(&out).expect("buildah inspect's JSON");
        all["OCIv1"].clone()
    }

    /// A working container of the image.
    fn container(&self, image: &str) -> String {
        self.ok(&["from", "--pull-never", "--quiet", image])
            .trim()
            .to_string()
    }

    /// `script` run in the container by the image's shell, as Airbyte's launcher
    /// runs connectors: the image's user, environment and working directory, the
    /// files of `config` mounted read-only on /config, the host's network.
    fn launch(&self, container: &str, config: &Path, script: &str) -> Command {
        let mount = format!("{}:/config:ro", config.display());
        self.command(&[
            "run",
            "--isolation",
            "chroot",
            "--network",
            "host",
            "--env",
            "AWS_EC2_METADATA_DISABLED=true",
            "--volume",
            &mount,
            container,
            "--",
            "sh",
            "-c",
            script,
        ])
    }
}

/// The archive `make image-<arch>` writes.
fn archive(arch: &str) -> PathBuf {
    let path = format!("dist/destination-kinesis-{VERSION}-linux-{arch}.tar");
    assert_eq!(make_var(&format!("IMAGE_ARCHIVE_{arch}")), path);
    root_dir().join(path)
}

/// Checks the image of `arch`: small, the platform's, and configured as
/// Airbyte runs connectors.
fn assert_airbyte_image(buildah: &Buildah, archive: &Path, arch: &str) -> String {
    let size = std::fs::metadata(archive)
        .unwrap_or_else(|e| panic!("{}: {e}", archive.display()))
        .len();
    assert!(size <= MAX_BYTES, "{}: {size} bytes", archive.display());
    let id = buildah.load(archive);
    let image = buildah.inspect(&id);
    assert_eq!(image["architecture"], arch);
    assert_eq!(image["os"], "linux");
    let config = &image["config"];
    let user = config["User"].as_str().expect("a USER");
    assert_eq!(user, IMAGE_USER);
    let uid: u32 = user.split(':').next().unwrap().parse().expect("numeric");
    assert_ne!(uid, 0, "not root");
    assert_eq!(config["WorkingDir"], "/airbyte");
    assert_eq!(config["Entrypoint"], json!(["/destination-kinesis"]));
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        env.contains(&"AIRBYTE_ENTRYPOINT=/destination-kinesis"),
        "{env:?}"
    );
    let labels = &config["Labels"];
    assert_eq!(labels["io.airbyte.name"], "airbyte/destination-kinesis");
    assert_eq!(labels["io.airbyte.version"], VERSION);
    id
}

#[test]
fn the_image_runs_spec_check_and_write_as_airbytes_launcher_does() {
    let _dist = dist_lock();
    if !built("image-amd64", &["amd64"]) {
        return;
    }
    let Some(buildah) = Buildah::new() else {
        return;
    };
    let image = assert_airbyte_image(&buildah, &archive("amd64"), "amd64");
    let container = buildah.container(&image);

    let s = StandIn::start();
    s.add_stream("_orders", 1);
    let config = TempDir::new("image-config");
    config.file(
        "connectionConfiguration.json",
        s.config(json!({})).to_string().as_bytes(),
    );
    config.file(
        "catalog.json",
        catalog(&[(None, "orders")]).to_string().as_bytes(),
    );
    let launch = |command: &str, stdin: &[u8]| -> Run {
        let script = format!(r#"eval "$AIRBYTE_ENTRYPOINT {command}""#);
        run_command(buildah.launch(&container, &config.path, &script), stdin)
    };

    let run = launch("spec", b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.messages.len(), 1, "{}", run.stdout);
    assert_eq!(run.messages[0]["type"], "SPEC");

    let run = launch("check --config /config/connectionConfiguration.json", b"");
    let (status, message) = run.connection_status();
    assert_eq!(status, "SUCCEEDED", "{message}\n{}", run.stderr);

    let input = record_line(None, "orders", r#"{"id":1}"#, 1)
        + &record_line(None, "orders", r#"{"id":2}"#, 2)
        + &state_line(7);
    let run = launch(
        "write --config /config/connectionConfiguration.json --catalog /config/catalog.json",
        input.as_bytes(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.states().len(), 1, "{}", run.stdout);
    assert_eq!(run.states()[0]["state"]["data"]["n"], 7);
    assert_eq!(s.stored_len(), 2, "both records in the stand-in");

    // Who the launcher's shell runs as, where, and what it may write: the image's
    // user in its working directory, which that user owns; /config is read-only.
    let who = r#"while read -r key value _; do [ "$key" = Uid: ] && echo "uid $value"; done < /proc/self/status
echo "pwd $(pwd)"
: > probe && echo "workdir writable"
(: > /config/probe) 2>/dev/null || echo "config read-only""#;
    let out = buildah
        .launch(&container, &config.path, who)
        .output()
        .expect("run buildah");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "uid 1000\npwd /airbyte\nworkdir writable\nconfig read-only\n",
        "{out:?}"
    );
}

#[test]
fn dist_holds_both_images_the_static_binaries_and_their_checksums() {
    let _dist = dist_lock();
    if !built("dist", &["amd64", "arm64"]) {
        return;
    }
    let Some(buildah) = Buildah::new() else {
        return;
    };
    for arch in ["amd64", "arm64"] {
        assert_airbyte_image(&buildah, &archive(arch), arch);
    }
    let dist = root_dir().join("dist");
    let mut tarballs = Vec::new();
    for arch in ["amd64", "arm64"] {
        let name = format!(
            "destination-kinesis-{VERSION}-{}",
            make_var(&format!("RUST_TARGET_{arch}"))
        );
        let tarball = format!("{name}.tar.gz");
        let out = Command::new("tar")
            .arg("-tzf")
            .arg(dist.join(&tarball))
            .output()
            .expect("run tar");
        assert!(out.status.success(), "{tarball}: {out:?}");
        let mut listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        listed.sort();
        let expected: Vec<String> = [
            "",
            "CHANGELOG.md",
            "LICENSE",
            "README.md",
            "destination-kinesis",
        ]
        .iter()
        .map(|f| format!("{name}/{f}"))
        .collect();
        assert_eq!(listed, expected, "{tarball}");
        tarballs.push(tarball);
    }
    // SHA256SUMS names every archive and tarball, and their sums hold.
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).expect("dist/SHA256SUMS");
    let mut named: Vec<&str> = sums
        .lines()
        .map(|l| l.split_whitespace().nth(1).expect("sum and name"))
        .collect();
    named.sort();
    let mut expected: Vec<String> = tarballs;
    expected
        .extend(["amd64", "arm64"].map(|a| format!("destination-kinesis-{VERSION}-linux-{a}.tar")));
    expected.sort();
    assert_eq!(named, expected);
    let out = Command::new("sha256sum")
        .args(["--check", "--quiet", "SHA256SUMS"])
        .current_dir(&dist)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "{out:?}");
}
