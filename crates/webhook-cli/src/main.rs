//! The `webhook` command: generate keys, sign and verify requests offline, listen for
//! deliveries like `stripe listen`, and send one event through the real sender.
//!
//! ```text
//! webhook keygen
//! webhook sign   --style event --secret S < body.json
//! webhook verify --style event --secret S --headers headers.txt --body body.json
//! webhook listen --addr 127.0.0.1:8080 --style domain --public-key MFkw…
//! webhook send   --url http://127.0.0.1:8080/ --style event --secret S --type wallet.created --data wallet.json
//! WEBHOOK_ADMIN_TOKEN=… webhook serve --addr 127.0.0.1:8000 --store webhook.redb
//! ```
//!
//! Exit codes: 0 success, 1 the operation failed (verification refused, delivery failed),
//! 2 usage or input errors.

mod keygen;
mod keys;
mod listen;
mod send;
mod serve;
mod sign;
mod signal;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sign, send, receive and check webhooks.
#[derive(Debug, Parser)]
#[command(name = "webhook", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a new ECDSA P-256 key pair for a domain-style endpoint as JSON.
    Keygen(keygen::Args),
    /// Sign a body read on stdin and print the headers to send.
    Sign(sign::Args),
    /// Check a captured request (headers file + body file) offline and say why it fails.
    Verify(verify::Args),
    /// Receive webhooks: verify, dedup and print each delivery as a JSON line.
    Listen(listen::Args),
    /// Deliver one event through the real sender with its retry policy.
    Send(send::Args),
    /// Run the dispatcher as an HTTP service (REST API, OpenAPI at /openapi.json).
    Serve(serve::Args),
}

/// A failure to report: the message, and whether it was the input's fault (exit 2) or
/// the operation's (exit 1).
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    usage: bool,
}

impl Failure {
    /// The input or the flags were wrong (exit 2).
    pub(crate) fn usage(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            usage: true,
        }
    }

    /// The operation was refused or failed (exit 1).
    pub(crate) fn failed(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            usage: false,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen(args) => keygen::run(&args),
        Command::Sign(args) => sign::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Listen(args) => listen::run(&args),
        Command::Send(args) => send::run(&args),
        Command::Serve(args) => serve::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("webhook: {}", failure.message);
            ExitCode::from(if failure.usage { 2 } else { 1 })
        }
    }
}
