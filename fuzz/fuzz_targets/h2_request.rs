#![no_main]
// The property is percore::fuzzing's (replayed on stable by tests/fuzz_corpus.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| percore::fuzzing::run("h2_request", data));
