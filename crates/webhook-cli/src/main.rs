//! The `webhook` command (work in progress).

fn main() {}
