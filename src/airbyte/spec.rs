//! `spec`: the connector's specification, a superset of the Java connector's.

use serde_json::{json, Value};

/// The SPEC object: connectionSpecification and supported modes.
pub fn spec() -> Value {
    json!({
        "documentationUrl": "https://docs.airbyte.com/integrations/destinations/kinesis",
        "supportsIncremental": true,
        "supportsNormalization": false,
        "supportsDBT": false,
        "supported_destination_sync_modes": ["append"],
        "connectionSpecification": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Kinesis Destination Spec",
            "type": "object",
            "required": ["shardCount", "bufferSize"],
            "additionalProperties": true,
            "groups": [
                {"id": "connection", "title": "Connection"},
                {"id": "credentials", "title": "AWS Credentials"},
                {"id": "streams", "title": "Streams and Records"},
                {"id": "advanced", "title": "Throughput and Advanced"}
            ],
            "properties": {
                "endpoint": {
                    "title": "Endpoint",
                    "description": "Kinesis endpoint URL. Empty means AWS_ENDPOINT_URL_KINESIS, then AWS_ENDPOINT_URL (both ignored when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), then https://kinesis.<region>.amazonaws.com (.amazonaws.com.cn in China). A bare host name means https://. For LocalStack: http://localhost:4566.",
                    "type": "string",
                    "examples": ["https://kinesis.us-west-1.amazonaws.com", "http://localhost:4566"],
                    "group": "connection",
                    "order": 0
                },
                "region": {
                    "title": "Region",
                    "description": "AWS region requests are signed for. Empty means AWS_REGION, then AWS_DEFAULT_REGION, then the AWS profile's region (AWS_PROFILE, else default), then the region of a stream ARN given as Stream Name, then us-east-1. A region other than such an ARN's is refused.",
                    "type": "string",
                    "examples": ["us-west-1"],
                    "group": "connection",
                    "order": 1
                },
                "accessKey": {
                    "title": "Access Key",
                    "description": "AWS access key ID, with Private Key. Empty means the AWS CLI's credential chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the AWS profile's role_arn, web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN), the profile's keys or credential_process, ECS or EKS container credentials, then EC2 instance metadata.",
                    "type": "string",
                    "airbyte_secret": true,
                    "group": "credentials",
                    "order": 2
                },
                "privateKey": {
                    "title": "Private Key",
                    "description": "AWS secret access key, with Access Key. Empty means the AWS credential chain (see Access Key).",
                    "type": "string",
                    "airbyte_secret": true,
                    "group": "credentials",
                    "order": 3
                },
                "sessionToken": {
                    "title": "Session Token",
                    "description": "Session token of temporary credentials, with Access Key and Private Key. Empty means none; without Access Key, the credential chain brings its own (AWS_SESSION_TOKEN with the environment's keys).",
                    "type": "string",
                    "airbyte_secret": true,
                    "group": "credentials",
                    "order": 4
                },
                "roleArn": {
                    "title": "Role ARN",
                    "description": "IAM role to assume with STS AssumeRole, e.g. to write to a stream in another account. The role is assumed with the access key above, or else with the credentials the AWS credential chain finds; its credentials are renewed before they expire. Empty: no role is assumed.",
                    "type": "string",
                    "pattern": "^(arn:aws(-[a-z-]+)?:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+)?$",
                    "examples": ["arn:aws:iam::123456789012:role/airbyte-kinesis-writer"],
                    "group": "credentials",
                    "order": 5
                },
                "externalId": {
                    "title": "External ID",
                    "description": "External ID the role's trust policy asks for (its sts:ExternalId condition). Only with Role ARN.",
                    "type": "string",
                    "airbyte_secret": true,
                    "group": "credentials",
                    "order": 6
                },
                "roleSessionName": {
                    "title": "Role Session Name",
                    "description": "Session name of the assumed role, shown in CloudTrail: 2 to 64 letters, digits or _+=,.@-. Empty means destination-kinesis-<unix time>. Only with Role ARN.",
                    "type": "string",
                    "pattern": "^([A-Za-z0-9_+=,.@-]{2,64})?$",
                    "group": "credentials",
                    "order": 7
                },
                "stsEndpoint": {
                    "title": "STS Endpoint",
                    "description": "STS endpoint URL for assuming roles (Role ARN, profile roles, web identity). Empty means AWS_ENDPOINT_URL_STS, then AWS_ENDPOINT_URL (both ignored when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), then https://sts.<region>.amazonaws.com.",
                    "type": "string",
                    "examples": ["https://sts.eu-west-1.amazonaws.com"],
                    "group": "credentials",
                    "order": 8
                },
                "streamName": {
                    "title": "Stream Name Template",
                    "description": "Target Kinesis stream: a name with {namespace} and {stream} placeholders, or one stream's ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME; no placeholders), e.g. another account's stream shared through its resource policy; a stream named by ARN is never created, and its region is used when none is set. Empty keeps the Java connector's <namespace>_<stream> naming.",
                    "type": "string",
                    "examples": ["airbyte-events", "{namespace}.{stream}", "arn:aws:kinesis:eu-west-1:222222222222:stream/airbyte-events"],
                    "group": "streams",
                    "order": 9
                },
                "createStreams": {
                    "title": "Create Missing Streams",
                    "description": "Create missing Kinesis streams. When false a missing stream fails the sync at start.",
                    "type": "boolean",
                    "default": true,
                    "group": "streams",
                    "order": 10
                },
                "shardCount": {
                    "title": "Shard Count",
                    "description": "Shards of each stream the connector creates in PROVISIONED mode; existing streams keep theirs.",
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100000,
                    "default": 5,
                    "group": "streams",
                    "order": 11
                },
                "streamMode": {
                    "title": "Stream Mode",
                    "description": "Capacity mode of the streams the connector creates; existing streams keep theirs.",
                    "type": "string",
                    "enum": ["PROVISIONED", "ON_DEMAND"],
                    "default": "PROVISIONED",
                    "group": "streams",
                    "order": 12
                },
                "maxRecordSizeKiB": {
                    "title": "Maximum Record Size of Created Streams (KiB)",
                    "description": "MaxRecordSizeInKiB of the streams the connector creates, 1024 to 10240. Unset, AWS's default (1024). Existing streams keep theirs; the connector reads each stream's own limit.",
                    "type": "integer",
                    "minimum": 1024,
                    "maximum": 10240,
                    "group": "streams",
                    "order": 13
                },
                "partitionKey": {
                    "title": "Partition Key",
                    "description": "`uuid` (a random key per record, the default), `primary_key` (the stream's primary key values, joined with |), or a JSON Pointer into the record such as /customer/id. A record without the value gets a random key.",
                    "type": "string",
                    "default": "uuid",
                    "examples": ["uuid", "primary_key", "/customer/id"],
                    "group": "streams",
                    "order": 14
                },
                "recordFormat": {
                    "title": "Record Format",
                    "description": "`legacy`: the Java connector's records (_airbyte_ab_id, _airbyte_emitted_at in decimal epoch seconds when the destination read the record, _airbyte_data). `v2`: the fields of Airbyte's current destinations (_airbyte_raw_id, _airbyte_extracted_at in epoch ms, _airbyte_generation_id, _airbyte_meta with sync_id and changes, _airbyte_data).",
                    "type": "string",
                    "enum": ["legacy", "v2"],
                    "default": "legacy",
                    "group": "streams",
                    "order": 15
                },
                "dataFormat": {
                    "title": "Data Format",
                    "description": "`string`: _airbyte_data is the record's JSON as text (the Java connector's format). `object`: _airbyte_data is a JSON object.",
                    "type": "string",
                    "enum": ["string", "object"],
                    "default": "string",
                    "group": "streams",
                    "order": 16
                },
                "oversizeRecords": {
                    "title": "Records Too Large for the Stream",
                    "description": "`fail`: the sync fails, naming the record. `skip`: the record is not sent; it is counted in a WARN log, the final log and the states' destinationStats.rejectedRecordCount (recordCount counts the records sent).",
                    "type": "string",
                    "enum": ["fail", "skip"],
                    "default": "fail",
                    "group": "streams",
                    "order": 17
                },
                "bufferSize": {
                    "title": "Buffer Size",
                    "description": "Records per PutRecords call (Kinesis allows at most 500).",
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 500,
                    "default": 100,
                    "group": "advanced",
                    "order": 18
                },
                "maxInFlight": {
                    "title": "Requests In Flight",
                    "description": "PutRecords calls sent at once. \"auto\" (the default) starts at one and adds calls while answers come back as fast and Kinesis accepts, up to 64, and takes them away when round trips grow or Kinesis pushes back; a partition key's records still land in input order (but for entries resent after a partial failure). A number from 1 to 64 keeps it fixed: 1 sends one call at a time; more lets records of a stream land out of input order (keepKeyOrder keeps each key's order at any setting).",
                    "type": "string",
                    "pattern": "^(auto|[1-9]|[1-5][0-9]|6[0-4])$",
                    "examples": ["auto", "1", "8"],
                    "default": "auto",
                    "group": "advanced",
                    "order": 19
                },
                "lingerMs": {
                    "title": "Linger (ms)",
                    "description": "Longest a record waits for others to share its PutRecords call.",
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 60000,
                    "default": 200,
                    "group": "advanced",
                    "order": 20
                },
                "shardRateLimit": {
                    "title": "Shard Rate Limit (%)",
                    "description": "Pace records to each shard at this share of its write limits (1,000 records/s and 1 MiB/s), lowered while shards throttle and raised again when they stop; 0 turns pacing off (throttled records are then resent with backoff).",
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 1000,
                    "default": 100,
                    "group": "advanced",
                    "order": 21
                },
                "aggregation": {
                    "title": "KPL Aggregation",
                    "description": "Pack many records into each Kinesis record (aggregates of up to 51,200 bytes, as the KPL's) in the KPL aggregated format: far fewer Kinesis records per shard. Consumers must de-aggregate (KCL, Firehose, Lambda with the de-aggregation library). Each aggregate goes to the shard of its first record's partition key, so a partition key from the data no longer picks the shard; every record keeps its own key inside it.",
                    "type": "boolean",
                    "default": false,
                    "group": "advanced",
                    "order": 22
                },
                "keepKeyOrder": {
                    "title": "Keep Key Order",
                    "description": "Keep each partition key's records in input order even through partial failures and retries, at a cost in throughput.",
                    "type": "boolean",
                    "default": false,
                    "group": "advanced",
                    "order": 23
                },
                "retryTimeoutSeconds": {
                    "title": "Retry Timeout (seconds)",
                    "description": "How long a record may be sent again (throttling, failed entries, 5xx, network errors), from its first send, before the sync fails.",
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 86400,
                    "default": 300,
                    "group": "advanced",
                    "order": 24
                },
                "requestTimeoutSeconds": {
                    "title": "Request Timeout (seconds)",
                    "description": "How long one HTTP request may take before it counts as failed and is retried.",
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 600,
                    "default": 30,
                    "group": "advanced",
                    "order": 25
                },
                "progressIntervalSeconds": {
                    "title": "Progress Interval (seconds)",
                    "description": "How often a sync logs its progress: records and MB read and accepted, records/s, throttled and retried entries, states echoed and held back, and how long the oldest held-back state has waited. 0: no progress lines.",
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 86400,
                    "default": 60,
                    "group": "advanced",
                    "order": 26
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_java_fields() {
        let s = spec();
        let p = &s["connectionSpecification"]["properties"];
        assert_eq!(p["shardCount"]["default"], 5);
        assert_eq!(p["bufferSize"]["default"], 100);
        assert_eq!(p["bufferSize"]["minimum"], 1);
        assert_eq!(p["bufferSize"]["maximum"], 500);
        for secret in ["accessKey", "privateKey", "sessionToken", "externalId"] {
            assert_eq!(p[secret]["airbyte_secret"], true, "{secret}");
        }
        assert_eq!(p["retryTimeoutSeconds"]["default"], 300);
        assert_eq!(s["supported_destination_sync_modes"], json!(["append"]));
    }

    #[test]
    fn role_fields_are_described_examples_pass_and_orders_are_distinct() {
        use crate::airbyte::config::Config;
        let s = spec();
        let p = &s["connectionSpecification"]["properties"];
        for field in ["roleArn", "externalId", "roleSessionName", "stsEndpoint"] {
            assert!(p[field]["description"].is_string(), "{field}");
        }
        // Every example the spec gives is accepted by the config's checks.
        let role = p["roleArn"]["examples"][0].as_str().unwrap();
        let sts = p["stsEndpoint"]["examples"][0].as_str().unwrap();
        let mut map = serde_json::Map::new();
        map.insert("roleArn".into(), json!(role));
        map.insert("stsEndpoint".into(), json!(sts));
        assert!(Config::from_map(&map).is_ok());
        // The order numbers are distinct.
        let mut orders: Vec<u64> = p
            .as_object()
            .unwrap()
            .values()
            .map(|v| v["order"].as_u64().unwrap())
            .collect();
        let n = orders.len();
        orders.sort_unstable();
        orders.dedup();
        assert_eq!(orders.len(), n);
    }

    #[test]
    fn every_field_has_a_title_a_description_and_a_place_in_a_known_group() {
        let s = spec();
        let c = &s["connectionSpecification"];
        let groups: Vec<&str> = c["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                assert!(g["title"].is_string(), "{g}");
                g["id"].as_str().unwrap()
            })
            .collect();
        assert_eq!(groups, ["connection", "credentials", "streams", "advanced"]);
        let mut orders: Vec<(&str, u64)> = Vec::new();
        for (name, field) in c["properties"].as_object().unwrap() {
            for key in ["title", "description"] {
                assert!(
                    field[key].as_str().is_some_and(|t| !t.is_empty()),
                    "{name}: {key}"
                );
            }
            let group = field["group"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no group"));
            assert!(groups.contains(&group), "{name}: unknown group {group}");
            let order = field["order"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: no order"));
            assert!(
                !orders.contains(&(group, order)),
                "{name}: order {order} taken twice in group {group}"
            );
            orders.push((group, order));
        }
        assert_eq!(orders.len(), 27);
        // Every group holds a field.
        for g in &groups {
            assert!(orders.iter().any(|(group, _)| group == g), "{g} is empty");
        }
    }

    #[test]
    fn descriptions_name_every_fallback() {
        let s = spec();
        let p = &s["connectionSpecification"]["properties"];
        let description = |field: &str| p[field]["description"].as_str().unwrap().to_string();
        for (field, fallbacks) in [
            (
                "endpoint",
                &[
                    "AWS_ENDPOINT_URL_KINESIS",
                    "AWS_ENDPOINT_URL",
                    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                    "https://kinesis.<region>.amazonaws.com",
                ][..],
            ),
            (
                "region",
                &[
                    "AWS_REGION",
                    "AWS_DEFAULT_REGION",
                    "profile's region",
                    "stream ARN",
                    "us-east-1",
                ][..],
            ),
            (
                "stsEndpoint",
                &[
                    "AWS_ENDPOINT_URL_STS",
                    "AWS_ENDPOINT_URL",
                    "https://sts.<region>.amazonaws.com",
                ][..],
            ),
            (
                "accessKey",
                &[
                    "AWS_ACCESS_KEY_ID",
                    "profile",
                    "web identity",
                    "container",
                    "instance metadata",
                ][..],
            ),
        ] {
            let text = description(field);
            let mut at = 0;
            for fallback in fallbacks {
                let found = text[at..].find(fallback).unwrap_or_else(|| {
                    panic!("{field} names {fallback} after the ones before it: {text}")
                });
                at += found + fallback.len();
            }
        }
    }

    #[test]
    fn defaults_match_config_defaults() {
        use crate::airbyte::config::Config;
        let s = spec();
        let p = s["connectionSpecification"]["properties"]
            .as_object()
            .unwrap();
        let mut defaults = serde_json::Map::new();
        for (k, v) in p {
            if let Some(d) = v.get("default") {
                defaults.insert(k.clone(), d.clone());
            }
        }
        assert_eq!(Config::from_map(&defaults).unwrap(), Config::default());
    }

    #[test]
    fn progress_interval_is_declared_as_the_config_reads_it() {
        use crate::airbyte::config::{Config, PROGRESS_INTERVAL_SECONDS};
        let s = spec();
        let field = &s["connectionSpecification"]["properties"]["progressIntervalSeconds"];
        assert_eq!(field["type"], "integer");
        assert_eq!(field["minimum"], PROGRESS_INTERVAL_SECONDS.min);
        assert_eq!(field["maximum"], PROGRESS_INTERVAL_SECONDS.max);
        assert_eq!(
            field["default"],
            Config::default().progress_interval.as_secs()
        );
        // Both ends of the range are taken, one past either is refused.
        let config = |n: i64| {
            let mut map = serde_json::Map::new();
            map.insert("progressIntervalSeconds".into(), json!(n));
            Config::from_map(&map)
        };
        let (min, max) = (
            PROGRESS_INTERVAL_SECONDS.min as i64,
            PROGRESS_INTERVAL_SECONDS.max as i64,
        );
        assert!(config(min).is_ok() && config(max).is_ok());
        assert!(config(min - 1).is_err() && config(max + 1).is_err());
    }

    #[test]
    fn ranges_shared_with_flags_match_the_config() {
        use crate::airbyte::config::{Bounds, LINGER_MS, SHARD_COUNT};
        use crate::engine::in_flight::{InFlight, CEILING};
        let s = spec();
        let p = &s["connectionSpecification"]["properties"];
        // maxInFlight's pattern: "auto", or 1 to 9, 10 to 59, 60 to 64.
        let pattern = p["maxInFlight"]["pattern"].as_str().unwrap();
        assert_eq!(pattern, "^(auto|[1-9]|[1-5][0-9]|6[0-4])$");
        assert_eq!(CEILING, 64, "the pattern's last range ends at the ceiling");
        assert_eq!(InFlight::parse("auto"), Ok(InFlight::Auto));
        assert!(InFlight::parse("65").is_err() && InFlight::parse("0").is_err());
        for (field, bounds) in [("shardCount", SHARD_COUNT), ("lingerMs", LINGER_MS)] {
            let in_spec = Bounds {
                min: p[field]["minimum"].as_u64().unwrap(),
                max: p[field]["maximum"].as_u64().unwrap(),
            };
            assert_eq!(in_spec, bounds, "{field}");
        }
    }
}
