//! Runnable examples for the webhook toolkit, and the demo behind `cargo xtask demo`.
//!
//! - `cargo run -p webhook-examples --example receiver_axum` / `receiver_hyper`: a receiver.
//! - `cargo run -p webhook-examples --example sender`: publish one event to a local receiver.
//! - `cargo xtask demo [--scale N]`: [`demo`], the whole product in under a minute.
//! - `cargo run -p webhook-examples --example transactions`: [`transactions`], a status
//!   update and its webhook committed in one Postgres transaction.
//!
//! The README's code blocks are compiled as doc tests of this crate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use webhook_examples::demo::{Options, run};
//!
//! let summary = run(Options { scale: 1, progress: false }).await?;
//! assert!(summary.adds_up()); // sender and receiver counts agree, per endpoint
//! println!("{}", summary.table());
//! # Ok(()) }
//! ```

pub mod demo;
pub mod transactions;

#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
