//! A Kinesis stream's identity: named by name (in the account and region of
//! the session) or by ARN (in any), how requests carry it, and the names
//! Kinesis takes.

use crate::aws::region::is_region_name;
use std::fmt;

/// Longest stream name Kinesis accepts.
pub const MAX_STREAM_NAME_LEN: usize = 128;

/// How every ARN starts; no stream name can (`:` is not allowed in names).
pub const ARN_PREFIX: &str = "arn:";

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

    const ARN: &str = "arn:aws:kinesis:eu-west-1:222222222222:stream/orders";

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
    fn checks_kinesis_rules() {
        assert!(check_stream_name("ok.name-1_2").is_ok());
        assert!(check_stream_name("").is_err());
        assert!(check_stream_name("has space").unwrap_err().contains("` `"));
        assert!(check_stream_name(&"a".repeat(129)).is_err());
    }
}
