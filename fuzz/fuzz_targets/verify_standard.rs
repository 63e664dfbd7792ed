//! Fuzz target `verify_standard`: see `webhook_e2e::fuzzing::verify_standard` (tests/src/fuzzing.rs), which the
//! corpus replay test (tests/tests/fuzz_corpus.rs) also runs on every committed input.

#![no_main]

#[path = "../../tests/src/fuzzing.rs"]
#[allow(dead_code)]
mod fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::verify_standard(data);
});
