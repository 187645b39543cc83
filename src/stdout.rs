//! Standard output as every command meets it: whether it was closed when
//! the program started, which the connector's messages and the pipeline
//! commands' data alike would vanish into without an error.

/// Whether standard output was closed when the program started (`>&-`).
/// The Rust runtime then puts /dev/null in its place, opened read-write, so
/// every message would vanish without an error; a shell's `> /dev/null`
/// opens it write-only. Linux only (it reads /proc); elsewhere false.
pub fn stdout_was_closed() -> bool {
    const O_ACCMODE: u32 = 0o3;
    const O_RDWR: u32 = 0o2;
    let is_null = std::fs::read_link("/proc/self/fd/1")
        .is_ok_and(|target| target == std::path::Path::new("/dev/null"));
    is_null
        && std::fs::read_to_string("/proc/self/fdinfo/1").is_ok_and(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                .is_some_and(|flags| flags & O_ACCMODE == O_RDWR)
        })
}
