//! Fuzz target `event_json`: see `webhook_e2e::fuzzing::event_json` (tests/src/fuzzing.rs), which the
//! corpus replay test (tests/tests/fuzz_corpus.rs) also runs on every committed input.

#![no_main]

#[path = "../../tests/src/fuzzing.rs"]
#[allow(dead_code)]
mod fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::event_json(data);
});
