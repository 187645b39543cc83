//! Command-line habits argh does not have, rewritten into what it takes before it
//! parses: `-h` for `--help`, `--flag=value` for `--flag value`, and the AWS
//! CLI's `--endpoint-url` for `--endpoint`. A flag's value is never rewritten:
//! `--partition-key -h` keeps its key `-h`.

/// The commands, as the first argument names them.
pub const COMMANDS: [&str; 7] = ["spec", "check", "write", "put", "read", "list", "describe"];

/// Each command's flags that take no value; every other `--flag` takes one.
const SWITCHES: [(&str, &[&str]); 3] = [
    ("put", &["--create"]),
    ("read", &["--follow"]),
    ("describe", &["--wait-active"]),
];

/// The commands that take `--endpoint`, and so `--endpoint-url`.
const WITH_ENDPOINT: [&str; 4] = ["put", "read", "list", "describe"];

/// The command the arguments name (`args` without the program's name), when
/// it is one of ours.
pub fn command(args: &[String]) -> Option<&'static str> {
    let first = args.first()?;
    COMMANDS.into_iter().find(|c| c == first)
}

/// The flags of `command` that take no value, `--help` included.
pub fn switches(command: Option<&str>) -> Vec<&'static str> {
    let mut found = vec!["--help"];
    if let Some((_, own)) = SWITCHES.iter().find(|(c, _)| Some(*c) == command) {
        found.extend_from_slice(own);
    }
    found
}

/// The arguments as argh takes them.
pub fn normalize(args: &[String]) -> Vec<String> {
    let command = command(args);
    let switches = switches(command);
    let rename = |flag: &str| -> String {
        if flag == "--endpoint-url" && command.is_some_and(|c| WITH_ENDPOINT.contains(&c)) {
            "--endpoint".to_string()
        } else {
            flag.to_string()
        }
    };
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut value_next = false;
    for arg in args {
        if value_next {
            out.push(arg.clone());
            value_next = false;
        } else if arg == "-h" {
            out.push("--help".to_string());
        } else if let Some((flag, value)) = arg
            .split_once('=')
            .filter(|(f, _)| f.starts_with("--") && f.len() > 2 && !switches.contains(f))
        {
            out.push(rename(flag));
            out.push(value.to_string());
        } else if arg.starts_with("--") {
            value_next = !switches.contains(&arg.as_str());
            out.push(rename(arg));
        } else {
            out.push(arg.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        normalize(&args)
    }

    #[test]
    fn help_flags_and_values_become_what_argh_takes() {
        assert_eq!(norm(&["-h"]), ["--help"]);
        assert_eq!(norm(&["read", "-h"]), ["read", "--help"]);
        assert_eq!(
            norm(&["read", "--stream=s", "--from=-10m", "--follow"]),
            ["read", "--stream", "s", "--from", "-10m", "--follow"]
        );
        // Split at the first `=`: the value may hold more.
        assert_eq!(
            norm(&["put", "--stream", "s", "--partition-key=a=b"]),
            ["put", "--stream", "s", "--partition-key", "a=b"]
        );
        assert_eq!(
            norm(&["list", "--endpoint-url=http://localhost:4566"]),
            ["list", "--endpoint", "http://localhost:4566"]
        );
        assert_eq!(
            norm(&["describe", "--endpoint-url", "http://x", "--wait-active"]),
            ["describe", "--endpoint", "http://x", "--wait-active"]
        );
    }

    #[test]
    fn values_stay_as_given() {
        // A value that looks like a flag is the flag's value.
        assert_eq!(
            norm(&["put", "--stream", "s", "--partition-key", "-h"]),
            ["put", "--stream", "s", "--partition-key", "-h"]
        );
        assert_eq!(
            norm(&["put", "--key-delimiter", "--a=b", "--stream", "s"]),
            ["put", "--key-delimiter", "--a=b", "--stream", "s"]
        );
        // After a switch comes a flag, not its value.
        assert_eq!(
            norm(&["read", "--follow", "-h"]),
            ["read", "--follow", "--help"]
        );
        assert_eq!(
            norm(&["put", "--create", "--stream=s"]),
            ["put", "--create", "--stream", "s"]
        );
    }

    #[test]
    fn what_argh_should_refuse_reaches_it_unchanged() {
        // A switch takes no value; a command without --endpoint keeps the name
        // it was given, so argh names the flag the user typed.
        assert_eq!(norm(&["read", "--follow=yes"]), ["read", "--follow=yes"]);
        assert_eq!(
            norm(&["check", "--endpoint-url", "x"]),
            ["check", "--endpoint-url", "x"]
        );
        assert_eq!(norm(&["read", "--=x"]), ["read", "--=x"]);
        assert_eq!(norm(&["frobnicate", "-x"]), ["frobnicate", "-x"]);
    }
}
