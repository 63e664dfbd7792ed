//! Benchmarks for the webhook toolkit; see `benches/` and `BENCHMARKS.md`.
