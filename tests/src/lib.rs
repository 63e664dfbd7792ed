//! End-to-end tests across the webhook crates live in `tests/tests/`.
