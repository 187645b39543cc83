//! libFuzzer target: every input is one stdin line for `write`. The properties
//! (no panic, records exact through envelope and PutRecords body, states echoed
//! intact) are the property test's, shared in `tests/support/roundtrip.rs`.
#![no_main]

#[path = "../../support/roundtrip.rs"]
mod roundtrip;

libfuzzer_sys::fuzz_target!(|line: &[u8]| {
    roundtrip::check_line(line);
});
