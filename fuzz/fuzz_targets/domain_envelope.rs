//! Fuzz target `domain_envelope`: see `webhook_e2e::fuzzing::domain_envelope` (tests/src/fuzzing.rs), which the
//! corpus replay test (tests/tests/fuzz_corpus.rs) also runs on every committed input.

#![no_main]

#[path = "../../tests/src/fuzzing.rs"]
#[allow(dead_code)]
mod fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::domain_envelope(data);
});
