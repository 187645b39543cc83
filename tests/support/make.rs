//! Running the crate's Makefile from a test, for what it builds (static binaries,
//! images) and installs (emulators, buildah), and saying why a test did nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The crate's directory, where the Makefile is.
pub fn root_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Says why a test did nothing, past the test harness's capture of `eprintln!`, so
/// the line shows in `make test`'s output.
pub fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// One make at a time: the tests run in parallel, apt-get update fails rather than
/// wait while another holds its lock, and two image builds share a staging folder.
static MAKE: Mutex<()> = Mutex::new(());

/// Runs `make -s <args>` in the crate.
pub fn make(args: &[&str]) -> Output {
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
pub fn make_var(name: &str) -> String {
    let out = make(&["--eval", "print-%: ; @echo $($*)", &format!("print-{name}")]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The full path of a program on PATH.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// make's output, for a failure's message.
pub fn shown(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
