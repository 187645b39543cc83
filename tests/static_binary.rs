//! The static musl binaries (`make static`, one per image platform) alone in an empty
//! root: no libraries, no /etc, no /dev, no certificates on disk. Each prints its spec,
//! and `check`, `write`, `put` and `read` reach kinesis-local on loopback, first as
//! root, then as the image's non-root user with its config in /airbyte. The arm64
//! binary runs under qemu's user-mode emulator, copied into the root beside it. With
//! the image's static busybox as `/bin/sh`, Airbyte's launcher command
//! (`sh -c 'eval "$AIRBYTE_ENTRYPOINT ..."'`) works too, as the image's user in its
//! working directory. Also checks that the Dockerfile agrees with the Makefile.

mod support;

use serde_json::json;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use support::{run_command, KinesisLocal, TempDir};

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

fn root_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Says why a test did nothing, past the test harness's capture of `eprintln!`, so
/// the line shows in `make test`'s output.
fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// One make at a time: the tests run in parallel, and apt-get update fails rather
/// than wait while another holds its lock (two cargo builds would only wait).
static MAKE: Mutex<()> = Mutex::new(());

/// Runs `make -s <args>` in the crate.
fn make(args: &[&str]) -> std::process::Output {
    let _guard = MAKE.lock().unwrap_or_else(|p| p.into_inner());
    let mut make = Command::new("make");
    make.arg("-s")
        .arg("--no-print-directory")
        .args(args)
        .current_dir(root_dir());
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

/// The value of a Makefile variable, as make expands it.
fn make_var(name: &str) -> String {
    let out = make(&["--eval", "print-%: ; @echo $($*)", &format!("print-{name}")]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The full path of a program on PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

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
    let Some((root, _local)) = runs_alone(&AMD64) else {
        return;
    };

    // As Airbyte's launcher runs it in the image: through `sh -c 'eval ...'` with
    // the image's AIRBYTE_ENTRYPOINT, the shell being the image's static busybox,
    // as the image's user in its working directory.
    let out = make(&["busybox"]);
    assert!(
        out.status.success(),
        "make busybox installs the static shell the image carries: {out:?}"
    );
    std::fs::create_dir(root.path.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.path.join("bin/sh")).unwrap();
    let env = [
        ("AIRBYTE_ENTRYPOINT", "/destination-kinesis"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let out = run_command(
        in_root(
            &root.path,
            Some(IMAGE_USER),
            &[
                "/bin/sh",
                "-c",
                r#"cd /airbyte && eval "$AIRBYTE_ENTRYPOINT check --config config.json" 2> stderr"#,
            ],
            &env,
        ),
        b"",
    );
    let (status, message) = out.connection_status();
    assert_eq!(status, "SUCCEEDED", "{message} {}", out.stderr);
    // The shell wrote its stderr file in /airbyte as the image's user: it did not
    // run as root, and the working directory is writable for it.
    let stderr = std::fs::metadata(root.path.join("airbyte/stderr")).expect("stderr file");
    if is_root() {
        assert_eq!((stderr.uid(), stderr.gid()), (IMAGE_USER, IMAGE_USER));
    }
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
fn dockerfile_builds_each_platform_from_the_makefile_outputs() {
    let text = std::fs::read_to_string(root_dir().join("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // The instructions of each stage, by the stage's name ("" for the last, the image).
    let mut stages: Vec<(String, Vec<&str>)> = Vec::new();
    for line in &lines {
        if let Some(from) = line.strip_prefix("FROM ") {
            let name = from.split_once(" AS ").map(|(_, n)| n.trim()).unwrap_or("");
            stages.push((name.to_string(), vec![line]));
        } else if let Some((_, stage)) = stages.last_mut() {
            stage.push(line);
        }
    }
    let stage = |name: &str| -> &Vec<&str> {
        &stages
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("Dockerfile has no stage {name:?}"))
            .1
    };

    // One stage per platform, copying the very file `make static-<arch>` writes, and
    // TARGETARCH choosing between them.
    let binary_stages: Vec<&str> = stages
        .iter()
        .filter_map(|(n, _)| n.strip_prefix("binary-"))
        .collect();
    assert_eq!(binary_stages, [AMD64.arch, ARM64.arch]);
    let dockerignore =
        std::fs::read_to_string(root_dir().join(".dockerignore")).expect(".dockerignore");
    for p in [&AMD64, &ARM64] {
        let path = make_var(&format!("STATIC_BIN_{}", p.arch));
        assert_eq!(
            path,
            format!("target/{}/release/destination-kinesis", p.rust_target)
        );
        let name = format!("binary-{}", p.arch);
        assert_eq!(
            stage(&name),
            &[
                format!("FROM scratch AS {name}").as_str(),
                format!("COPY {path} /destination-kinesis").as_str(),
            ]
        );
        // The build context holds only what .dockerignore lets through.
        assert!(
            dockerignore.lines().any(|l| l == format!("!{path}")),
            ".dockerignore keeps out {path}"
        );
    }
    assert_eq!(stage("binary"), &["FROM binary-${TARGETARCH} AS binary"]);
    assert_eq!(
        make_var("STATIC_MAX_BYTES"),
        STATIC_MAX_BYTES.to_string(),
        "the Makefile's size limit"
    );

    // The shell is the target platform's busybox-static, unpacked without emulation.
    let shell = stage("shell");
    assert_eq!(
        shell[0],
        "FROM --platform=$BUILDPLATFORM debian:bookworm-slim AS shell"
    );
    assert!(shell.contains(&"ARG TARGETARCH"));
    assert!(
        shell
            .iter()
            .any(|l| l.contains("\"busybox-static:$TARGETARCH\"")),
        "the shell stage downloads busybox-static for TARGETARCH"
    );

    let image = stage("");
    assert_eq!(image[0], "FROM scratch");
    let user = format!("{IMAGE_USER}:{IMAGE_USER}");
    for expected in [
        "ARG VERSION".to_string(),
        "COPY --from=shell /rootfs/bin/sh /bin/sh".to_string(),
        "COPY --from=binary /destination-kinesis /destination-kinesis".to_string(),
        format!("COPY --from=shell --chown={user} /rootfs/airbyte /airbyte"),
        "WORKDIR /airbyte".to_string(),
        format!("USER {user}"),
        "ENV AIRBYTE_ENTRYPOINT=\"/destination-kinesis\"".to_string(),
        "ENTRYPOINT [\"/destination-kinesis\"]".to_string(),
        "LABEL io.airbyte.name=\"airbyte/destination-kinesis\"".to_string(),
        "LABEL io.airbyte.version=\"${VERSION}\"".to_string(),
    ] {
        assert!(
            image.contains(&expected.as_str()),
            "Dockerfile's image lacks `{expected}`"
        );
    }
    // Nothing after USER switches back to root.
    let user_at = image.iter().position(|l| l.starts_with("USER ")).unwrap();
    assert!(!image[user_at + 1..].iter().any(|l| l.starts_with("USER ")));

    // `make image` passes Cargo.toml's version as the VERSION build argument.
    assert_eq!(make_var("VERSION"), env!("CARGO_PKG_VERSION"));
    let out = make(&["-n", "image"]);
    assert!(out.status.success(), "{out:?}");
    let recipe = String::from_utf8_lossy(&out.stdout);
    let docker = recipe
        .lines()
        .find(|l| l.starts_with("docker build"))
        .unwrap_or_else(|| panic!("make image runs no docker build:\n{recipe}"));
    assert!(
        docker.contains(&format!(
            "--build-arg VERSION={}",
            env!("CARGO_PKG_VERSION")
        )),
        "{docker}"
    );
}
