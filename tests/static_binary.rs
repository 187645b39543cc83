//! The static musl binaries (`make static`, one per image platform) alone in an empty
//! root: no libraries, no /etc, no /dev, no certificates on disk. Each prints its spec,
//! and `check`, `write`, `put` and `read` reach kinesis-local on loopback, first as
//! root, then as the image's non-root user with its config in /airbyte. The arm64
//! binary runs under qemu's user-mode emulator, copied into the root beside it.
//! (tests/image.rs runs them in the image, as Airbyte's launcher does.)

use crate::support;
use crate::support::make::{make, make_var, on_path, root_dir, skip};
use crate::support::{run_command, KinesisLocal, TempDir};
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The size limit of either binary (the Makefile's STATIC_MAX_BYTES).
const STATIC_MAX_BYTES: u64 = 6 * 1024 * 1024;

/// The user the image runs as (the Dockerfile's USER, as uid:gid).
const IMAGE_USER: u32 = 1000;

/// An image platform: Docker's name for it (TARGETARCH, `make static-<arch>`), its
/// Rust target, the C toolchain its build needs (programs on PATH, or absolute
/// paths), and the emulator that runs it here.
struct Platform {
    arch: &'static str,
    rust_target: &'static str,
    c_toolchain: &'static [&'static str],
    emulator: Option<&'static str>,
}

const AMD64: Platform = Platform {
    arch: "amd64",
    rust_target: "x86_64-unknown-linux-musl",
    c_toolchain: &["musl-gcc"],
    emulator: None,
};

const ARM64: Platform = Platform {
    arch: "arm64",
    rust_target: "aarch64-unknown-linux-musl",
    c_toolchain: &[
        "aarch64-linux-gnu-gcc",
        "/usr/aarch64-linux-gnu/include/string.h",
    ],
    emulator: Some("qemu-aarch64-static"),
};

fn rust_target_installed(target: &str) -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == target)
        })
        .unwrap_or(false)
}

/// Builds (or finds up to date) the platform's static binary with `make
/// static-<arch>`; None when its Rust target or C toolchain cannot be installed here.
fn static_binary(p: &Platform) -> Option<PathBuf> {
    let out = make(&[&format!("static-{}", p.arch)]);
    if !out.status.success() {
        let missing = if !rust_target_installed(p.rust_target) {
            Some(format!(
                "the {} Rust target (rustup target add)",
                p.rust_target
            ))
        } else {
            let absent = |f: &&&str| {
                if f.starts_with('/') {
                    !Path::new(f).exists()
                } else {
                    on_path(f).is_none()
                }
            };
            p.c_toolchain
                .iter()
                .find(absent)
                .map(|f| format!("its C toolchain's {f} (apt-get)"))
        };
        if let Some(missing) = missing {
            skip(&format!(
                "the {} static binary: {missing} cannot be installed here: {}",
                p.arch,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        panic!(
            "make static-{} failed:\n{}\n{}",
            p.arch,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(root_dir().join(format!(
        "target/{}/release/destination-kinesis",
        p.rust_target
    )))
}

/// The platform's emulator (installed with `make qemu` when missing); Some(None) when
/// the binary runs natively, None when the emulator cannot be installed here.
fn emulator(p: &Platform) -> Option<Option<PathBuf>> {
    let Some(program) = p.emulator else {
        return Some(None);
    };
    let out = make(&["qemu"]);
    match on_path(program) {
        Some(path) => Some(Some(path)),
        None => {
            skip(&format!(
                "the {} static binary: the emulator {program} cannot be installed here (make qemu): {}",
                p.arch,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            None
        }
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `command` (a program inside `root` and its arguments) with `root` as its `/` and
/// an empty environment but for `env`; as uid:gid `user` (no other groups) when given.
/// As root this is chroot, which drops to `user` itself. Otherwise it is a user
/// namespace, which maps only the caller, so everything runs as the caller: an
/// unprivileged user already.
fn in_root(root: &Path, user: Option<u32>, command: &[&str], env: &[(&str, &str)]) -> Command {
    // chroot lives in /usr/sbin, which a user's PATH may lack.
    let chroot = ["/usr/sbin/chroot", "/sbin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("chroot");
    let mut c = if is_root() {
        let mut c = Command::new(chroot);
        if let Some(id) = user {
            c.arg(format!("--userspec={id}:{id}"))
                .arg(format!("--groups={id}"));
        }
        c
    } else {
        let mut c = Command::new("unshare");
        c.args(["--user", "--map-root-user", chroot]);
        c
    };
    c.arg(root).args(command).env_clear();
    c.envs(env.iter().copied());
    c
}

/// The platform's binary in an empty root, run as root and as the image's user: its
/// spec, then check, write, put and read against kinesis-local. Returns the root and
/// the emulator its config points at, for more runs.
fn runs_alone(p: &Platform) -> Option<(TempDir, KinesisLocal)> {
    let binary = static_binary(p)?;
    let emulator = emulator(p)?;
    let size = std::fs::metadata(&binary).expect("static binary").len();
    assert!(size <= STATIC_MAX_BYTES, "{}: {size} bytes", p.arch);

    let root = TempDir::new(&format!("static-root-{}", p.arch));
    std::fs::copy(&binary, root.path.join("destination-kinesis")).expect("copy binary");
    // The emulator is static too, so it needs nothing else in the root; the kernel
    // cannot start an aarch64 binary by itself here (no binfmt_misc).
    let mut launch: Vec<&str> = Vec::new();
    if let Some(emulator) = &emulator {
        std::fs::copy(emulator, root.path.join("emulator")).expect("copy the emulator");
        launch.push("/emulator");
    }
    launch.push("/destination-kinesis");
    let airbyte = root.path.join("airbyte");
    std::fs::create_dir(&airbyte).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&airbyte, Some(IMAGE_USER), Some(IMAGE_USER)).unwrap();
    }

    let local = KinesisLocal::start();
    let config = json!({"endpoint": local.endpoint(), "region": "us-east-1",
        "accessKey": "000000000000", "privateKey": "local-secret-key", "shardCount": 1});
    std::fs::write(airbyte.join("config.json"), config.to_string()).unwrap();
    let runs = [("root", None), ("user", Some(IMAGE_USER))];
    let catalog = support::catalog(&runs.map(|(name, _)| (Some(name), "orders")));
    std::fs::write(airbyte.join("catalog.json"), catalog.to_string()).unwrap();
    // Nothing but what the test put there: no libraries, /etc or /dev.
    let list = |dir: &Path| {
        let mut entries: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        entries.sort();
        entries
    };
    let expected: &[&str] = match emulator {
        Some(_) => &["airbyte", "destination-kinesis", "emulator"],
        None => &["airbyte", "destination-kinesis"],
    };
    assert_eq!(list(&root.path), expected);
    assert_eq!(list(&airbyte), ["catalog.json", "config.json"]);

    for (name, user) in runs {
        let what = format!("{} as {name}", p.arch);
        let run = |args: &[&str], env: &[(&str, &str)]| {
            in_root(&root.path, user, &[launch.as_slice(), args].concat(), env)
        };
        let env = [("AWS_EC2_METADATA_DISABLED", "true")];

        let out = run_command(run(&["spec"], &[]), b"");
        assert_eq!(out.code, 0, "{what}: {}", out.stderr);
        let spec = &out.messages;
        assert_eq!(spec.len(), 1, "{what}");
        assert_eq!(spec[0]["type"], "SPEC", "{what}");
        assert!(spec[0]["spec"]["connectionSpecification"]["properties"]["endpoint"].is_object());

        let out = run_command(
            run(&["check", "--config", "/airbyte/config.json"], &env),
            b"",
        );
        let (status, message) = out.connection_status();
        assert_eq!(status, "SUCCEEDED", "{what}: {message}");

        let input = support::record_line(Some(name), "orders", "{\"id\":1}", 1)
            + &support::record_line(Some(name), "orders", "{\"id\":2}", 2)
            + &support::state_line(1);
        let write = [
            "write",
            "--config",
            "/airbyte/config.json",
            "--catalog",
            "/airbyte/catalog.json",
        ];
        let out = run_command(run(&write, &env), input.as_bytes());
        assert_eq!(out.code, 0, "{what}: {}", out.stderr);
        assert_eq!(out.states().len(), 1, "{what}");
        assert_eq!(
            local.read_back(&format!("{name}_orders")).len(),
            2,
            "{what}"
        );

        // The pipeline commands, with credentials and region from the environment.
        let endpoint = local.endpoint();
        let pipeline_env = [
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_ACCESS_KEY_ID", "000000000000"),
            ("AWS_SECRET_ACCESS_KEY", "local-secret-key"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL_KINESIS", endpoint.as_str()),
        ];
        let stream = format!("alone-{name}");
        let put = ["put", "--stream", &stream, "--create", "--shards", "1"];
        let out = run_command(run(&put, &pipeline_env), b"first line\n{\"second\":2}\n");
        assert_eq!(out.code, 0, "{what}: {}", out.stderr);
        let out =
            support::output_with_stdin(run(&["read", "--stream", &stream], &pipeline_env), b"");
        assert!(out.status.success(), "{what}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "first line\n{\"second\":2}\n",
            "{what}"
        );
    }
    Some((root, local))
}

#[test]
fn amd64_runs_alone_in_an_empty_root() {
    runs_alone(&AMD64);
}

#[test]
fn arm64_runs_alone_in_an_empty_root_under_qemu() {
    if let Some((root, _)) = runs_alone(&ARM64) {
        // The binary that ran is the aarch64 one (ELF machine 183), not a copy of
        // the host's: the emulator would refuse to start it otherwise, but say so.
        let elf = std::fs::read(root.path.join("destination-kinesis")).unwrap();
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183);
    }
}

#[test]
fn the_makefile_builds_the_binaries_this_test_runs() {
    for p in [&AMD64, &ARM64] {
        assert_eq!(make_var(&format!("RUST_TARGET_{}", p.arch)), p.rust_target);
        assert_eq!(
            make_var(&format!("STATIC_BIN_{}", p.arch)),
            format!("target/{}/release/destination-kinesis", p.rust_target)
        );
    }
    assert_eq!(
        make_var("STATIC_MAX_BYTES"),
        STATIC_MAX_BYTES.to_string(),
        "the Makefile's size limit"
    );
}
