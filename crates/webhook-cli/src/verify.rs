//! `webhook verify`: check a captured request offline and say why it fails.
//!
//! The headers file holds `Name: value` lines (the output of `webhook sign`, or headers
//! copied from a log); blank lines and lines starting with `#` are skipped. A header that
//! appears twice is kept twice, so duplicate-header requests are judged as a server would.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::Failure;
use crate::keys::TrustArgs;

/// Check a captured request (headers file + body file) offline and say why it fails.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    keys: TrustArgs,
    /// File with the request's headers, one `Name: value` per line.
    #[arg(long, value_name = "FILE")]
    headers: std::path::PathBuf,
    /// File with the request's raw body.
    #[arg(long, value_name = "FILE")]
    body: std::path::PathBuf,
    /// Accepted distance between the signed timestamp and now, in seconds. Default is 300.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    tolerance: u64,
    /// Judge the timestamp against this Unix time instead of now (for old captures).
    #[arg(long, value_name = "T")]
    now: Option<i64>,
}

pub(crate) fn run(args: &Args) -> Result<(), Failure> {
    let keys = args.keys.keys()?;
    let header_text = std::fs::read_to_string(&args.headers)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", args.headers.display())))?;
    let headers = parse_headers(&header_text)?;
    let body = std::fs::read(&args.body)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", args.body.display())))?;
    let now = args
        .now
        .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp());
    match keys.verify(&headers, &body, now, Duration::from_secs(args.tolerance)) {
        Ok(verified) => {
            let output = serde_json::json!({
                "valid": true,
                "style": verified.style.as_str(),
                "kind": verified.message.kind(),
                "dedup_key": verified.dedup_key,
                "timestamp": verified.timestamp,
            });
            println!("{output}");
            Ok(())
        }
        Err(error) => {
            let output = serde_json::json!({
                "valid": false,
                "status": error.status().as_u16(),
                "reason": error.code(),
                "message": error.to_string(),
            });
            println!("{output}");
            Err(Failure::failed(format!(
                "refused ({}): {error}",
                error.status()
            )))
        }
    }
}

/// Parses `Name: value` lines into a header map.
fn parse_headers(text: &str) -> Result<HeaderMap, Failure> {
    let mut headers = HeaderMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| {
            Failure::usage(format!(
                "headers line {}: expected `Name: value`",
                number + 1
            ))
        })?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| Failure::usage(format!("headers line {}: bad header name", number + 1)))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| {
            Failure::usage(format!("headers line {}: bad header value", number + 1))
        })?;
        headers.append(name, value);
    }
    Ok(headers)
}
