//! Kinesis stream naming: the archived Java connector's rule, kept exactly so
//! existing users keep writing to the same streams.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Longest stream name Kinesis accepts.
pub const MAX_STREAM_NAME_LEN: usize = 128;

/// The Kinesis stream the Java connector wrote an Airbyte stream to:
/// `<namespace>_<stream>`, NFKD-normalised without combining marks, whitespace
/// runs and every other character outside `[A-Za-z0-9_]` turned into `_`,
/// cut to 128 characters.
pub fn java_stream_name(namespace: Option<&str>, stream: &str) -> String {
    let joined = format!("{}_{}", namespace.unwrap_or(""), stream);
    let mut out = String::with_capacity(joined.len());
    let mut in_whitespace = false;
    for c in joined.nfkd().filter(|c| !is_combining_mark(*c)) {
        // Java's `\s` (without UNICODE_CHARACTER_CLASS) is ASCII whitespace only.
        if matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r') {
            if !in_whitespace {
                out.push('_');
            }
            in_whitespace = true;
            continue;
        }
        in_whitespace = false;
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    // Every character is ASCII now, so a byte cut is a character cut.
    out.truncate(MAX_STREAM_NAME_LEN);
    out
}

/// The Kinesis stream for an Airbyte stream: the `streamName` template with
/// `{namespace}` and `{stream}` filled in, or the Java rule when there is none.
pub fn target_stream_name(
    template: Option<&str>,
    namespace: Option<&str>,
    stream: &str,
) -> Result<String, String> {
    let Some(template) = template else {
        return Ok(java_stream_name(namespace, stream));
    };
    let name = template
        .replace("{namespace}", namespace.unwrap_or(""))
        .replace("{stream}", stream);
    check_stream_name(&name)
        .map_err(|why| format!("`streamName` template `{template}` gives a bad name: {why}"))?;
    Ok(name)
}

/// Why a name cannot be a Kinesis stream name, if it cannot.
pub fn check_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a Kinesis stream name cannot be empty".into());
    }
    if name.chars().count() > MAX_STREAM_NAME_LEN {
        return Err(format!(
            "Kinesis stream name `{name}` is {} characters long; the limit is {MAX_STREAM_NAME_LEN}",
            name.chars().count()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "Kinesis stream name `{name}` contains `{bad}`; only A-Z, a-z, 0-9, `_`, `.` and `-` are allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_namespace_and_stream() {
        assert_eq!(java_stream_name(Some("public"), "users"), "public_users");
        assert_eq!(java_stream_name(None, "users"), "_users");
    }

    #[test]
    fn strips_accents_and_replaces_specials() {
        assert_eq!(
            java_stream_name(Some("café"), "naïve-users"),
            "cafe_naive_users"
        );
        assert_eq!(java_stream_name(None, "a  \t b"), "_a_b");
        assert_eq!(java_stream_name(None, "日本"), "___");
        assert_eq!(java_stream_name(None, "x😀y"), "_x_y");
        // NFKD turns the ligature into two letters and the full-width digit into a digit.
        assert_eq!(java_stream_name(None, "ﬁ１"), "_fi1");
    }

    #[test]
    fn keeps_non_ascii_whitespace_runs_apart() {
        // NBSP becomes a space under NFKD, so it joins the run.
        assert_eq!(java_stream_name(None, "a\u{a0} b"), "_a_b");
        // An ideographic space also decomposes to a plain space.
        assert_eq!(java_stream_name(None, "a\u{3000}b"), "_a_b");
        // An em space (U+2003) decomposes to a space too.
        assert_eq!(java_stream_name(None, "a\u{2003}b"), "_a_b");
        // A zero-width space is no whitespace to Java's `\s`.
        assert_eq!(java_stream_name(None, "a\u{200b}\u{200b}b"), "_a__b");
    }

    #[test]
    fn templates() {
        assert_eq!(target_stream_name(None, Some("a"), "b").unwrap(), "a_b");
        assert_eq!(
            target_stream_name(Some("all"), Some("a"), "b").unwrap(),
            "all"
        );
        assert_eq!(
            target_stream_name(Some("x-{namespace}.{stream}"), Some("a"), "b").unwrap(),
            "x-a.b"
        );
        assert_eq!(
            target_stream_name(Some("x-{namespace}{stream}"), None, "b").unwrap(),
            "x-b"
        );
        let e = target_stream_name(Some("{stream}"), None, "has space").unwrap_err();
        assert!(e.contains("streamName") && e.contains("has space"), "{e}");
    }

    #[test]
    fn cuts_to_128() {
        let long = "x".repeat(300);
        assert_eq!(java_stream_name(Some("n"), &long).len(), 128);
    }

    #[test]
    fn checks_kinesis_rules() {
        assert!(check_stream_name("ok.name-1_2").is_ok());
        assert!(check_stream_name("").is_err());
        assert!(check_stream_name("has space").unwrap_err().contains("` `"));
        assert!(check_stream_name(&"a".repeat(129)).is_err());
    }
}
