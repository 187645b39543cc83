//! Property test over message parsing and record encoding: deterministic
//! generated lines (valid messages with awkward content, then mutated) go
//! through `protocol::parse_line`, `envelope::Envelope::encode` and
//! `batch::Batch`; see `support/roundtrip.rs` for the properties. The
//! `cargo fuzz` target in `tests/fuzz/` checks the same properties on libFuzzer's input.
//!
//! `ROUNDTRIP_SECONDS=600 cargo test --release --test integration roundtrip_props::long_run -- --ignored`
//! runs the long mode.

use crate::support::roundtrip::{check_line, Kind};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const STRINGS: &[&str] = &[
    "",
    "plain",
    "quote \\\" inside",
    "back\\\\slash",
    "line\\nbreak\\r\\ttab",
    "\\u0000 nul",
    "\\ud83d\\ude00 escaped emoji",
    "😀 🚀 ✨",
    "Иван Петров",
    "東京",
    "مرحبا",
    "e\u{301}\u{308}",
    "\\u2028\\u2029",
    "</script>",
    "{\\\"not\\\":\\\"an object\\\"}",
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1.10",
    "9007199254740993",
    "18446744073709551616",
    "12345678901234567890.123456789012345",
    "-0.000000000000000001",
    "1e308",
    "1E-7",
    "-12",
];

fn value(rng: &mut Rng, depth: usize) -> String {
    match rng.below(if depth > 4 { 4 } else { 7 }) {
        0 => format!("\"{}\"", rng.pick(STRINGS)),
        1 => rng.pick(NUMBERS).to_string(),
        2 => rng.pick(&["true", "false", "null"]).to_string(),
        3 => format!("\"{}\"", "x".repeat(rng.below(300))),
        4 => object(rng, depth + 1),
        5 => {
            let items: Vec<String> = (0..rng.below(4)).map(|_| value(rng, depth + 1)).collect();
            format!(
                "[{}]",
                items.join(if rng.below(2) == 0 { "," } else { " , " })
            )
        }
        _ => "{}".to_string(),
    }
}

fn object(rng: &mut Rng, depth: usize) -> String {
    let fields: Vec<String> = (0..rng.below(5))
        .map(|_| format!("\"{}\":{}", rng.pick(STRINGS), value(rng, depth + 1)))
        .collect();
    let sep = if rng.below(3) == 0 { ", " } else { "," };
    format!("{{{}}}", fields.join(sep))
}

fn message(rng: &mut Rng) -> String {
    let stream = rng.pick(&["users", "Café Orders", "a\\\"b", "😀", "x y", ""]);
    let ns = match rng.below(4) {
        0 => String::new(),
        1 => ",\"namespace\":null".into(),
        _ => format!(",\"namespace\":\"{}\"", rng.pick(STRINGS)),
    };
    match rng.below(6) {
        0..=2 => format!(
            "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"{stream}\"{ns},\"data\":{},\"emitted_at\":{}}}{}}}",
            object(rng, 0),
            rng.pick(&["1732500000001", "0", "-5", "1.5e3", "9223372036854775807"]),
            if rng.below(3) == 0 { ",\"extra\":[1,{\"x\":null}]" } else { "" }
        ),
        3 => format!(
            "{{\"type\":\"STATE\",\"state\":{{\"type\":\"STREAM\",\"stream\":{{\"stream_descriptor\":{{\"name\":\"{stream}\"{ns}}},\"stream_state\":{}}},\"sourceStats\":{{\"recordCount\":{}}}}}}}",
            object(rng, 0),
            rng.pick(NUMBERS)
        ),
        4 => format!(
            "{{\"type\":\"STATE\",\"state\":{{\"type\":\"{}\",\"global\":{},\"data\":{},\"destinationStats\":{{\"recordCount\":1.0}}}}}}",
            rng.pick(&["GLOBAL", "LEGACY"]),
            object(rng, 0),
            object(rng, 0)
        ),
        _ => format!(
            "{{\"type\":\"{}\",\"log\":{}}}",
            rng.pick(&["LOG", "TRACE", "CONTROL", "FOO", "record"]),
            object(rng, 0)
        ),
    }
}

/// A generated line, sometimes damaged.
fn line(rng: &mut Rng) -> Vec<u8> {
    let mut bytes = message(rng).into_bytes();
    match rng.below(10) {
        0 => bytes.truncate(rng.below(bytes.len() + 1)),
        1 => {
            let at = rng.below(bytes.len());
            bytes[at] = (rng.next() & 0xff) as u8;
        }
        2 => {
            let at = rng.below(bytes.len());
            bytes.insert(
                at,
                rng.pick(&["{", "}", "\"", "\\", ",", ":", "[", "\u{0}"])
                    .as_bytes()[0],
            );
        }
        3 => {
            let at = rng.below(bytes.len());
            bytes.remove(at);
        }
        4 => {
            let at = rng.below(bytes.len());
            let junk: &[u8] =
                [&b"\xff"[..], b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"][rng.below(4)];
            bytes.splice(at..at, junk.iter().copied());
        }
        _ => {}
    }
    bytes
}

fn run_for(iterations: u64, budget: Duration, seed: u64) -> (u64, HashMap<Kind, u64>) {
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut kinds: HashMap<Kind, u64> = HashMap::new();
    let mut n = 0;
    while n < iterations && started.elapsed() < budget {
        *kinds.entry(check_line(&line(&mut rng))).or_default() += 1;
        n += 1;
    }
    (n, kinds)
}

#[test]
fn generated_lines_keep_the_properties() {
    let (n, kinds) = run_for(20_000, Duration::from_secs(60), 0x9E37_79B9_7F4A_7C15);
    assert_eq!(n, 20_000);
    // The generator reaches every outcome, so the properties were really exercised.
    for kind in [Kind::Refused, Kind::Record, Kind::State, Kind::Other] {
        assert!(
            kinds.get(&kind).copied().unwrap_or(0) > 500,
            "{kind:?}: {kinds:?}"
        );
    }
}

#[test]
fn fixture_lines_keep_the_properties() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/messages.jsonl"),
    )
    .unwrap();
    let kinds: Vec<Kind> = text.lines().map(|l| check_line(l.as_bytes())).collect();
    assert_eq!(kinds.iter().filter(|k| **k == Kind::Record).count(), 9);
    assert_eq!(kinds.iter().filter(|k| **k == Kind::State).count(), 3);
}

/// The long mode: `ROUNDTRIP_SECONDS` of generated lines (default 600).
#[test]
#[ignore]
fn long_run() {
    let seconds = std::env::var("ROUNDTRIP_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let seed = std::env::var("ROUNDTRIP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5DEE_CE66_D1CE_F00D);
    let (n, kinds) = run_for(u64::MAX, Duration::from_secs(seconds), seed);
    eprintln!("long run: {n} lines in {seconds} s: {kinds:?}");
}
