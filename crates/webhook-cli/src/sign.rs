//! `webhook sign`: sign a body read on stdin and print the headers to send.
//!
//! Output: one `Name: value` line per header. For the domain style the input is the
//! resource JSON; the envelope built around it is the body to send, printed after the
//! headers and one blank line. A body that receivers would refuse (a domain resource that
//! is not a JSON object of its domain's type, an event that is not an event object) is
//! refused with exit code 2 rather than signed.

use std::io::Read as _;
use std::time::Duration;

use http::HeaderMap;
use webhook_core::domain::Domain;
use webhook_core::{Outgoing, SignedRequest, SigningKeys, Style, VerifyError};

use crate::Failure;
use crate::keys::SigningArgs;

/// Sign a body read on stdin and print the headers to send.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    keys: SigningArgs,
    /// Domain of the resource (domain style): TRANSACTION, WALLET or APPROVAL.
    #[arg(long, value_name = "D")]
    domain: Option<String>,
    /// Unix time to sign at. Default is now.
    #[arg(long, value_name = "T")]
    timestamp: Option<i64>,
    /// Message id (`webhook-id`, standard style). Default is a new `msg_` id.
    #[arg(long)]
    id: Option<String>,
}

pub(crate) fn run(args: &Args) -> Result<(), Failure> {
    let keys = args.keys.keys()?;
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .map_err(|e| Failure::usage(format!("cannot read stdin: {e}")))?;
    let at = match args.timestamp {
        Some(unix) => time::OffsetDateTime::from_unix_timestamp(unix)
            .map_err(|_| Failure::usage("--timestamp is out of range"))?,
        None => time::OffsetDateTime::now_utc(),
    };
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("msg_{}", uuid::Uuid::now_v7().simple()));
    let domain = match (args.keys.style, &args.domain) {
        (Style::Domain, Some(domain)) => Some(Domain::from(domain.as_str())),
        (Style::Domain, None) => return Err(Failure::usage("--style domain needs --domain")),
        (_, Some(_)) => return Err(Failure::usage("--domain applies to --style domain only")),
        (_, None) => None,
    };
    let mut message = Outgoing::new(&id, &body);
    if let Some(domain) = &domain {
        message = message.with_domain(domain);
    }
    let request = keys.sign(&message, at).map_err(Failure::usage)?;
    receivable(&keys, &request, at.unix_timestamp())?;
    for (name, value) in &request.headers {
        let value = value.to_str().map_err(Failure::failed)?;
        println!("{}: {value}", canonical_name(name.as_str()));
    }
    if args.keys.style == Style::Domain {
        println!();
        println!("{}", String::from_utf8_lossy(&request.body));
    }
    Ok(())
}

/// Refuses to print a request that a receiver holding these keys would reject: the same
/// verification a receiver runs (`TrustedKeys::verify`), at the signing time. So every
/// style's body rule applies exactly as receivers apply it: an event object with its
/// fields (event style), any JSON (Standard Webhooks), and for the domain style a JSON
/// object (core refuses anything else when signing) of the domain's resource type with a
/// string `id` and `updatedAt` (the receiver's dedup key). A `--timestamp` receivers
/// cannot parse (negative, or past year 9999 for the envelope) is refused too.
fn receivable(keys: &SigningKeys, request: &SignedRequest, at: i64) -> Result<(), Failure> {
    let headers: HeaderMap = request.headers.iter().cloned().collect();
    keys.trusted_keys()
        .verify(&headers, &request.body, at, Duration::ZERO)
        .map(drop)
        .map_err(|e| {
            if e == VerifyError::MalformedTimestamp {
                return Failure::usage(format!(
                    "--timestamp {at}: receivers cannot read this time (Unix seconds 0 to \
                     999999999999; domain style: years 0000 to 9999)"
                ));
            }
            let what = match keys.style() {
                Style::Domain => "the resource JSON of --domain",
                Style::Event => "an event-style event",
                Style::Standard => "a JSON body",
            };
            Failure::usage(format!(
                "stdin is not {what}, receivers would refuse it: {e}"
            ))
        })
}

/// `x-webhook-signature` → `X-Webhook-Signature`, as the spec writes header names.
/// Standard Webhooks names stay lowercase, as that spec writes them.
fn canonical_name(name: &str) -> String {
    if name.starts_with("webhook-") {
        return name.to_owned();
    }
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}
