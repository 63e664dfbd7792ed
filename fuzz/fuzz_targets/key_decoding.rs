//! Fuzz target `key_decoding`: see `webhook_e2e::fuzzing::key_decoding` (tests/src/fuzzing.rs), which the
//! corpus replay test (tests/tests/fuzz_corpus.rs) also runs on every committed input.

#![no_main]

#[path = "../../tests/src/fuzzing.rs"]
#[allow(dead_code)]
mod fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::key_decoding(data);
});
