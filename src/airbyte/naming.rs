//! Where the connector sends an Airbyte stream's records: the config's
//! `streamName` (a template, or one stream's ARN), or else the archived Java
//! connector's rule, kept exactly so existing users keep writing to the same
//! streams.

use crate::kinesis::stream::{
    check_stream_name, StreamArn, StreamRef, ARN_PREFIX, MAX_STREAM_NAME_LEN,
};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Where the config's `streamName` sends records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamNaming {
    /// A template with `{namespace}` and `{stream}` (or none: one stream for all).
    Template(String),
    /// One stream, by ARN, for every Airbyte stream.
    Arn(StreamArn),
}

impl StreamNaming {
    /// Reads `streamName`. A value starting with `arn:` is an ARN as a whole:
    /// it names one stream and may hold no placeholders, since a template
    /// whose result is an ARN could not be checked until the first record.
    pub fn parse(value: &str) -> Result<StreamNaming, String> {
        if value.starts_with(ARN_PREFIX) {
            if value.contains('{') || value.contains('}') {
                return Err(format!(
                    "`{value}` starts like a stream ARN, and an ARN names one stream: it cannot hold placeholders \
                     such as {{stream}}; give a whole ARN, or a template of stream names such as `{{namespace}}.{{stream}}`"
                ));
            }
            return StreamArn::parse(value).map(StreamNaming::Arn);
        }
        check_template(value)?;
        Ok(StreamNaming::Template(value.to_string()))
    }

    /// The ARN, when `streamName` is one.
    pub fn arn(&self) -> Option<&StreamArn> {
        match self {
            StreamNaming::Template(_) => None,
            StreamNaming::Arn(arn) => Some(arn),
        }
    }

    /// Whether every Airbyte stream goes to one Kinesis stream on purpose
    /// (an ARN, or a template without `{stream}`).
    pub fn merges_on_purpose(&self) -> bool {
        match self {
            StreamNaming::Template(t) => !t.contains("{stream}"),
            StreamNaming::Arn(_) => true,
        }
    }
}

/// Checks a stream name template: known placeholders only, balanced braces.
fn check_template(template: &str) -> Result<(), String> {
    let stripped = template.replace("{namespace}", "").replace("{stream}", "");
    if stripped.contains('{') || stripped.contains('}') {
        return Err(format!(
            "`{template}` has an unknown placeholder; use {{namespace}} and {{stream}}"
        ));
    }
    Ok(())
}

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

/// The Kinesis stream for an Airbyte stream: the `streamName` ARN, its
/// template with `{namespace}` and `{stream}` filled in, or the Java rule
/// when there is none. A template gives names only: a result that is no
/// valid name (an ARN among them) is refused.
pub fn target_stream(
    naming: Option<&StreamNaming>,
    namespace: Option<&str>,
    stream: &str,
) -> Result<StreamRef, String> {
    let template = match naming {
        None => return Ok(StreamRef::Name(java_stream_name(namespace, stream))),
        Some(StreamNaming::Arn(arn)) => return Ok(StreamRef::Arn(arn.clone())),
        Some(StreamNaming::Template(template)) => template,
    };
    let name = template
        .replace("{namespace}", namespace.unwrap_or(""))
        .replace("{stream}", stream);
    check_stream_name(&name)
        .map_err(|why| format!("`streamName` template `{template}` gives a bad name: {why}"))?;
    Ok(StreamRef::Name(name))
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

    fn target(
        template: Option<&str>,
        namespace: Option<&str>,
        stream: &str,
    ) -> Result<String, String> {
        let naming = template.map(|t| StreamNaming::parse(t).unwrap());
        target_stream(naming.as_ref(), namespace, stream).map(|s| s.wire().to_string())
    }

    #[test]
    fn templates() {
        assert_eq!(target(None, Some("a"), "b").unwrap(), "a_b");
        assert_eq!(target(Some("all"), Some("a"), "b").unwrap(), "all");
        assert_eq!(
            target(Some("x-{namespace}.{stream}"), Some("a"), "b").unwrap(),
            "x-a.b"
        );
        assert_eq!(
            target(Some("x-{namespace}{stream}"), None, "b").unwrap(),
            "x-b"
        );
        let e = target(Some("{stream}"), None, "has space").unwrap_err();
        assert!(e.contains("streamName") && e.contains("has space"), "{e}");
        // A template whose result is an ARN is a bad name, not an ARN.
        let e = target(
            Some("{namespace}"),
            Some("arn:aws:kinesis:us-east-1:123456789012:stream/s"),
            "b",
        )
        .unwrap_err();
        assert!(e.contains("contains `:`"), "{e}");
        assert!(StreamNaming::parse("{oops}")
            .unwrap_err()
            .contains("unknown placeholder"));
    }

    const ARN: &str = "arn:aws:kinesis:eu-west-1:222222222222:stream/orders";

    #[test]
    fn stream_naming_takes_a_whole_arn_only() {
        let naming = StreamNaming::parse(ARN).unwrap();
        assert!(naming.merges_on_purpose());
        assert_eq!(naming.arn().map(StreamArn::region), Some("eu-west-1"));
        let to = target_stream(Some(&naming), Some("ns"), "users").unwrap();
        assert_eq!(to.wire(), ARN);
        assert_eq!(to.field(), "StreamARN");
        let e = StreamNaming::parse("arn:aws:kinesis:eu-west-1:222222222222:stream/{stream}")
            .unwrap_err();
        assert!(e.contains("cannot hold placeholders"), "{e}");
        assert!(StreamNaming::parse("arn:aws:kinesis:eu-west-1:2222:stream/x").is_err());
        assert!(StreamNaming::parse("{namespace}-all")
            .unwrap()
            .merges_on_purpose());
        assert!(!StreamNaming::parse("x-{stream}")
            .unwrap()
            .merges_on_purpose());
    }

    #[test]
    fn cuts_to_128() {
        let long = "x".repeat(300);
        assert_eq!(java_stream_name(Some("n"), &long).len(), 128);
    }
}
