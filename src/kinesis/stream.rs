//! Kinesis stream naming: streams named by name or by ARN, the config's
//! `streamName`, and the archived Java connector's rule, kept exactly so
//! existing users keep writing to the same streams.

use crate::aws::region::is_region_name;
use std::fmt;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Longest stream name Kinesis accepts.
pub const MAX_STREAM_NAME_LEN: usize = 128;

/// How every ARN starts; no stream name can (`:` is not allowed in names).
const ARN_PREFIX: &str = "arn:";

/// The partitions whose ARNs this program takes, with how their regions start
/// (`aws` takes every region the other two do not).
const PARTITIONS: [(&str, &str); 3] = [("aws-cn", "cn-"), ("aws-us-gov", "us-gov-"), ("aws", "")];

/// The form a stream ARN takes, for messages.
const ARN_FORM: &str = "arn:aws:kinesis:<region>:<12-digit account>:stream/<name>";

/// A Kinesis stream ARN, checked: `arn:<partition>:kinesis:<region>:<account>:stream/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamArn {
    text: String,
    region: String,
    account: String,
    name: String,
}

impl StreamArn {
    /// Reads an ARN, saying what is wrong with it if it is not a Kinesis stream's.
    pub fn parse(value: &str) -> Result<StreamArn, String> {
        let bad =
            |why: String| format!("`{value}` is not a Kinesis stream ARN ({ARN_FORM}): {why}");
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return Err(bad("it has fewer than six `:`-separated parts".into()));
        };
        if arn != "arn" {
            return Err(bad("it does not start with `arn:`".into()));
        }
        let Some((_, region_start)) = PARTITIONS.iter().find(|(p, _)| *p == partition) else {
            return Err(bad(format!(
                "the partition `{partition}` is not aws, aws-cn or aws-us-gov"
            )));
        };
        if service != "kinesis" {
            return Err(bad(format!(
                "it is an ARN of `{service}`, not of `kinesis`"
            )));
        }
        if !is_region_name(region) {
            return Err(bad(format!(
                "`{region}` is not a region name (lower-case letters, digits and dashes, e.g. eu-west-1)"
            )));
        }
        let region_partition = PARTITIONS
            .iter()
            .find(|(_, start)| region.starts_with(start))
            .map_or("aws", |(p, _)| *p);
        if region_partition != partition {
            let expected = if region_start.is_empty() {
                "neither cn- nor us-gov-".to_string()
            } else {
                format!("`{region_start}`")
            };
            return Err(bad(format!(
                "the region `{region}` is not in the partition `{partition}`, whose regions start with {expected}"
            )));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("the account `{account}` is not 12 digits")));
        }
        let Some(name) = resource.strip_prefix("stream/") else {
            return Err(bad(format!(
                "its resource `{resource}` is not `stream/<name>`"
            )));
        };
        if name.contains("/consumer/") {
            return Err(bad(
                "it is a stream consumer's ARN: give the stream's, which ends at stream/<name>"
                    .into(),
            ));
        }
        check_stream_name(name).map_err(bad)?;
        Ok(StreamArn {
            text: value.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            name: name.to_string(),
        })
    }

    /// The ARN as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The region the stream is in.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The account that owns the stream.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A Kinesis stream as a command names it: by name, in the account of the
/// credentials and the region of the session, or by ARN, in any account
/// (another account's stream, shared through its resource policy).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamRef {
    /// By name.
    Name(String),
    /// By ARN.
    Arn(StreamArn),
}

impl StreamRef {
    /// Reads a stream given by the user: a value starting with `arn:` is an
    /// ARN, anything else a name; either is checked.
    pub fn parse(value: &str) -> Result<StreamRef, String> {
        if value.starts_with(ARN_PREFIX) {
            StreamArn::parse(value).map(StreamRef::Arn)
        } else {
            check_stream_name(value).map(|()| StreamRef::Name(value.to_string()))
        }
    }

    /// The stream as requests carry it, a name or an ARN, read back where
    /// only that text travels (request bodies and their errors). Meant for
    /// values checked before; an ARN that does not parse is kept as a name.
    pub fn from_wire(wire: &str) -> StreamRef {
        match StreamArn::parse(wire) {
            Ok(arn) => StreamRef::Arn(arn),
            Err(_) => StreamRef::Name(wire.to_string()),
        }
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        match self {
            StreamRef::Name(name) => name,
            StreamRef::Arn(arn) => arn.name(),
        }
    }

    /// The ARN, when the stream was named by one.
    pub fn arn(&self) -> Option<&StreamArn> {
        match self {
            StreamRef::Name(_) => None,
            StreamRef::Arn(arn) => Some(arn),
        }
    }

    /// The value requests carry: the name, or the ARN.
    pub fn wire(&self) -> &str {
        match self {
            StreamRef::Name(name) => name,
            StreamRef::Arn(arn) => arn.as_str(),
        }
    }

    /// The request field that names the stream: `StreamName` or `StreamARN`.
    pub fn field(&self) -> &'static str {
        request_field(self.wire())
    }
}

/// The request field for a stream as requests carry it (`StreamRef::wire`):
/// an ARN goes in `StreamARN`, a name in `StreamName`.
pub fn request_field(wire: &str) -> &'static str {
    if wire.starts_with(ARN_PREFIX) {
        "StreamARN"
    } else {
        "StreamName"
    }
}

/// For messages: `` `orders` ``, or `` `orders` in account 222222222222 (eu-west-1) ``.
impl fmt::Display for StreamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamRef::Name(name) => write!(f, "`{name}`"),
            StreamRef::Arn(arn) => write!(
                f,
                "`{}` in account {} ({})",
                arn.name(),
                arn.account(),
                arn.region()
            ),
        }
    }
}

/// For tests and set-up code holding names they know to be valid.
impl From<&str> for StreamRef {
    fn from(wire: &str) -> StreamRef {
        StreamRef::from_wire(wire)
    }
}

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
    fn stream_arns_are_checked_part_by_part() {
        let arn = StreamArn::parse(ARN).unwrap();
        assert_eq!(
            (arn.region(), arn.account(), arn.name()),
            ("eu-west-1", "222222222222", "orders")
        );
        assert!(StreamArn::parse("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s").is_ok());
        assert!(
            StreamArn::parse("arn:aws-us-gov:kinesis:us-gov-west-1:123456789012:stream/s").is_ok()
        );
        for (bad, why) in [
            ("arn:aws:kinesis:eu-west-1:222222222222", "six"),
            (
                "arn:aws-iso:kinesis:us-iso-east-1:123456789012:stream/s",
                "partition `aws-iso`",
            ),
            (
                "arn:aws:firehose:eu-west-1:222222222222:deliverystream/s",
                "of `firehose`",
            ),
            (
                "arn:aws:kinesis:EU-WEST-1:222222222222:stream/s",
                "region name",
            ),
            ("arn:aws:kinesis::222222222222:stream/s", "region name"),
            (
                "arn:aws:kinesis:cn-north-1:222222222222:stream/s",
                "not in the partition `aws`",
            ),
            (
                "arn:aws-cn:kinesis:us-east-1:222222222222:stream/s",
                "start with `cn-`",
            ),
            (
                "arn:aws:kinesis:eu-west-1:22222222222:stream/s",
                "12 digits",
            ),
            (
                "arn:aws:kinesis:eu-west-1:22222222222a:stream/s",
                "12 digits",
            ),
            (
                "arn:aws:kinesis:eu-west-1:222222222222:table/s",
                "stream/<name>",
            ),
            (
                "arn:aws:kinesis:eu-west-1:222222222222:stream/",
                "cannot be empty",
            ),
            (
                "arn:aws:kinesis:eu-west-1:222222222222:stream/a b",
                "contains ` `",
            ),
            (
                "arn:aws:kinesis:eu-west-1:222222222222:stream/s/consumer/c:1",
                "consumer",
            ),
        ] {
            let e = StreamArn::parse(bad).unwrap_err();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn stream_refs_name_or_arn() {
        let by_name = StreamRef::parse("orders").unwrap();
        assert_eq!(
            (by_name.field(), by_name.wire(), by_name.name()),
            ("StreamName", "orders", "orders")
        );
        assert_eq!(by_name.to_string(), "`orders`");
        assert!(by_name.arn().is_none());
        let by_arn = StreamRef::parse(ARN).unwrap();
        assert_eq!(
            (by_arn.field(), by_arn.wire(), by_arn.name()),
            ("StreamARN", ARN, "orders")
        );
        assert_eq!(
            by_arn.to_string(),
            "`orders` in account 222222222222 (eu-west-1)"
        );
        assert_eq!(StreamRef::from_wire(ARN), by_arn);
        assert_eq!(StreamRef::from("orders"), by_name);
        assert!(StreamRef::parse("arn:nope")
            .unwrap_err()
            .contains("not a Kinesis stream ARN"));
        assert!(StreamRef::parse("a:b")
            .unwrap_err()
            .contains("contains `:`"));
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
