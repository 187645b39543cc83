//! KPL aggregation end to end: what lands in kinesis-local is de-aggregated
//! (MD5 trailer checked on its own too) and compared with the input.

use crate::support::*;
use destination_kinesis::airbyte::config::{DataFormat, RecordFormat};
use destination_kinesis::airbyte::envelope::{Envelope, Fields};
use destination_kinesis::engine::outbox::AGGREGATE_MAX_BYTES;
use destination_kinesis::kinesis::aggregate::{deaggregate, AggregateError, UserRecord, MAGIC};
use destination_kinesis::pipeline::read::Record;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Each shard's hash key range in `stream`.
fn hash_ranges(kl: &KinesisLocal, stream: &str) -> HashMap<String, (u128, u128)> {
    kl.client()
        .list_shards(&stream.into())
        .expect("ListShards")
        .into_iter()
        .map(|s| {
            let r = s.hash_key_range.expect("a hash key range");
            let parse = |k: &str| k.parse::<u128>().expect("a 128-bit hash key");
            (
                s.shard_id,
                (parse(&r.starting_hash_key), parse(&r.ending_hash_key)),
            )
        })
        .collect()
}

/// The user records of an aggregated Kinesis record read from `shard`, after
/// checking its framing and MD5 trailer here, independently of `deaggregate`;
/// that the KCL keeps every one (a user record whose hash key, explicit else
/// the MD5 of its partition key, is outside the shard's range is dropped);
/// and that every user record's own partition key maps to this shard, as if
/// it had been sent alone.
fn unpack(ranges: &HashMap<String, (u128, u128)>, r: &Record) -> Vec<UserRecord> {
    let shard = &r.shard;
    let d = &r.data;
    assert_eq!(&d[..4], &MAGIC, "starts with the KPL magic");
    let (proto, digest) = d[4..].split_at(d.len() - 4 - 16);
    assert_eq!(Md5::digest(proto).as_slice(), digest, "MD5 trailer");
    let users = deaggregate(d).expect("a valid aggregate");
    assert_eq!(
        r.partition_key, users[0].partition_key,
        "an aggregate is keyed by its first record"
    );
    let (low, high) = ranges[shard.as_str()];
    for u in &users {
        let hash = match &u.explicit_hash_key {
            Some(h) => h.parse::<u128>().expect("a decimal hash key"),
            None => u128::from_be_bytes(Md5::digest(u.partition_key.as_bytes()).into()),
        };
        assert!(
            (low..=high).contains(&hash),
            "record keyed {} is outside {shard}: the KCL would drop it",
            u.partition_key
        );
        let own = u128::from_be_bytes(Md5::digest(u.partition_key.as_bytes()).into());
        assert!(
            (low..=high).contains(&own),
            "record keyed {} landed on {shard}, not on the shard its key maps to",
            u.partition_key
        );
    }
    users
}

/// (data text, ab_id) of a record envelope.
fn envelope_fields(bytes: &[u8]) -> (String, String) {
    let e: Value = serde_json::from_slice(bytes).expect("envelope JSON");
    (
        e["_airbyte_data"].as_str().unwrap().to_string(),
        e["_airbyte_ab_id"].as_str().unwrap().to_string(),
    )
}

#[test]
fn fixtures_come_back_exactly_from_aggregates() {
    let kl = KinesisLocal::start();
    let catalog: Value = serde_json::from_str(&fixture("catalog.json")).unwrap();
    let input = fixture("messages.jsonl");
    let run = run_write(
        &kl.config(json!({"aggregation": true})),
        &catalog,
        input.as_bytes(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.states().len(), 3);

    for (ns, stream) in [
        (Some("public"), "users"),
        (Some("archive"), "users"),
        (Some("Ventes-Été"), "Café Orders"),
        (None, "events"),
    ] {
        // The input records of this stream: raw data text, in order.
        let want: Vec<String> = input
            .lines()
            .filter_map(|line| {
                let v: Value = serde_json::from_str(line).ok()?;
                let r = &v["record"];
                (v["type"] == "RECORD" && r["namespace"].as_str() == ns && r["stream"] == stream)
                    .then(|| {
                        let start = line.find("\"data\":")? + 7;
                        let end = line.rfind(",\"emitted_at\"")?;
                        Some(line[start..end].to_string())
                    })?
            })
            .collect();
        let name = destination_kinesis::airbyte::naming::java_stream_name(ns, stream);
        let landed = kl.read_stored(&name);
        let ranges = hash_ranges(&kl, &name);
        assert!(
            (1..=ranges.len()).contains(&landed.len()),
            "at most one aggregate per shard for the few records of {name}"
        );
        let mut got: Vec<String> = Vec::new();
        for record in &landed {
            let data: Vec<String> = unpack(&ranges, record)
                .iter()
                .map(|u| {
                    let (data, id) = envelope_fields(&u.data);
                    assert_eq!(
                        u.partition_key, id,
                        "each record keeps its ab_id as its key"
                    );
                    legacy_emitted_at(&u.data);
                    data
                })
                .collect();
            let positions: Vec<usize> = data
                .iter()
                .map(|d| {
                    want.iter()
                        .position(|w| w == d)
                        .expect("a record of the input")
                })
                .collect();
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "{name}: in input order within an aggregate"
            );
            got.extend(data);
        }
        got.sort();
        let mut want = want;
        want.sort();
        assert_eq!(got, want, "{name}: byte for byte");
    }
}

#[test]
fn keys_from_data_are_kept_per_record() {
    let kl = KinesisLocal::start();
    let mut input = String::new();
    for i in 0..30 {
        // Ten customers, and every seventh record without one (a random key).
        let data = if i % 7 == 6 {
            format!("{{\"i\":{i}}}")
        } else {
            format!("{{\"i\":{i},\"customer\":\"c-{}\"}}", i % 10)
        };
        input.push_str(&record_line(None, "orders", &data, i));
    }
    input.push_str(&state_line(1));
    // Four shards: aggregates are filled per shard, so each record stays on
    // the shard its own key maps to (`unpack` checks it).
    let config =
        kl.config(json!({"aggregation": true, "partitionKey": "/customer", "shardCount": 4}));
    let run = run_write(&config, &catalog(&[(None, "orders")]), input.as_bytes());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.states().len(), 1);
    let landed = kl.read_stored("_orders");
    let ranges = hash_ranges(&kl, "_orders");
    assert!(
        landed.len() > 1 && landed.len() <= 4,
        "{} aggregates",
        landed.len()
    );
    let mut users: Vec<UserRecord> = landed.iter().flat_map(|r| unpack(&ranges, r)).collect();
    assert_eq!(users.len(), 30);
    // `read` unpacks the same user records, in the same order, on their shards.
    let read: Vec<(String, String, Vec<u8>)> = kl
        .read_back("_orders")
        .into_iter()
        .map(|r| (r.shard, r.partition_key, r.data))
        .collect();
    let unpacked: Vec<(String, String, Vec<u8>)> = landed
        .iter()
        .flat_map(|r| {
            deaggregate(&r.data)
                .unwrap()
                .into_iter()
                .map(|u| (r.shard.clone(), u.partition_key, u.data))
        })
        .collect();
    assert_eq!(read, unpacked);
    users.sort_by_key(|u| {
        let (data, _) = envelope_fields(&u.data);
        serde_json::from_str::<Value>(&data).unwrap()["i"]
            .as_u64()
            .unwrap()
    });
    for (i, u) in users.iter().enumerate() {
        let (data, id) = envelope_fields(&u.data);
        let data: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(data["i"], i);
        match data["customer"].as_str() {
            Some(customer) => assert_eq!(u.partition_key, customer),
            None => assert_eq!(u.partition_key, id, "no customer: the random ab_id"),
        }
    }
}

#[test]
fn aggregates_stay_within_51200_bytes_and_a_record_too_big_for_one_goes_alone() {
    let kl = KinesisLocal::start();
    // The envelope of a record of `pad` bytes of padding, plus its 36-byte key.
    let kinesis_size = |pad: usize| {
        let data: Box<serde_json::value::RawValue> =
            serde_json::from_str(&format!("{{\"i\":99,\"pad\":\"{}\"}}", "p".repeat(pad))).unwrap();
        let mut out = Vec::new();
        let envelope = Envelope {
            format: RecordFormat::Legacy,
            data: DataFormat::String,
            with_stream: false,
        };
        let id = "0".repeat(36);
        envelope.encode(
            &mut out,
            &Fields {
                id: &id,
                // Epoch seconds take as many characters as at any time this century.
                received_at: std::time::SystemTime::now(),
                emitted_at: 1_700_000_000_000,
                data: &data,
                changes: None,
                namespace: None,
                stream: "big",
                generation_id: None,
                sync_id: None,
            },
        );
        out.len() + 36
    };
    // As large as an aggregate may be, less 4 bytes: too large to go inside
    // one (magic, MD5, key table), so it goes plain.
    let alone = AGGREGATE_MAX_BYTES - 4 - kinesis_size(0);
    assert_eq!(kinesis_size(alone), AGGREGATE_MAX_BYTES - 4);
    let pads: Vec<usize> = (0..12)
        .map(|i| if i == 7 { alone } else { 12_000 })
        .collect();
    let mut input = String::new();
    for (i, pad) in pads.iter().enumerate() {
        let data = format!("{{\"i\":{i},\"pad\":\"{}\"}}", "p".repeat(*pad));
        input.push_str(&record_line(None, "big", &data, 1_700_000_000_000));
        if i % 4 == 3 {
            input.push_str(&state_line(i as u64));
        }
    }
    // One shard, so that reading back gives the records in the order they
    // landed; a long linger, so that only sizes close batches.
    let config = kl.config(json!({"aggregation": true, "shardCount": 1, "lingerMs": 10000}));
    let run = run_write(&config, &catalog(&[(None, "big")]), input.as_bytes());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.states().len(), 3);

    let landed = kl.read_stored("_big");
    let ranges = hash_ranges(&kl, "_big");
    let mut order = Vec::new();
    let mut plain = 0;
    for landed_record in &landed {
        let r = landed_record;
        assert!(
            r.data.len() + r.partition_key.len() <= AGGREGATE_MAX_BYTES,
            "{} bytes",
            r.data.len() + r.partition_key.len()
        );
        let envelopes = match deaggregate(&r.data) {
            Err(AggregateError::NotAggregated) => {
                plain += 1;
                vec![r.data.clone()]
            }
            _ => unpack(&ranges, landed_record)
                .into_iter()
                .map(|u| u.data)
                .collect(),
        };
        for e in envelopes {
            let (data, _) = envelope_fields(&e);
            let data: Value = serde_json::from_str(&data).unwrap();
            assert_eq!(data["pad"].as_str().unwrap().len(), pads[order.len()]);
            order.push(data["i"].as_u64().unwrap());
        }
    }
    assert_eq!(
        order,
        (0..12).collect::<Vec<_>>(),
        "all records, in input order"
    );
    assert_eq!(plain, 1, "only the largest record goes unaggregated");
    // Seven records of 12 KB before it: 4 fit in 51,200 bytes, then 3; four after it.
    assert_eq!(
        landed.len(),
        4,
        "2 aggregates, the plain record, 1 aggregate"
    );
}
