//! `webhook send`: deliver one event through the real sender, with its retry policy.
//!
//! `--data` is the entity: the event's `data` (event and standard styles) or the domain
//! resource. The sender wraps it into the event or the envelope itself, applying
//! redaction and the idempotency key. stdout gets one JSON line per attempt and a final
//! line with the result; the exit code is 0 when delivered, 1 when the delivery failed
//! for good.

use std::io::Read as _;
use std::time::Duration;

use serde_json::{Value, json};
use webhook_core::domain::Domain;
use webhook_core::event::EventType;
use webhook_core::{SigningKeys, Style};
use webhook_sender::store::MemoryStore;
use webhook_sender::{
    AllowList, AttemptRecord, AttemptResult, DeliveryStatus, EndpointConfig, Publish, RetryPolicy,
    Sender,
};

use crate::Failure;
use crate::keys::SigningArgs;

/// Deliver one event through the real sender, printing each attempt.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The endpoint URL to deliver to.
    #[arg(long)]
    url: String,
    #[command(flatten)]
    keys: SigningArgs,
    /// Event type (event and standard styles), e.g. `transaction.confirmed`.
    #[arg(long = "type", value_name = "T", conflicts_with = "domain")]
    event_type: Option<String>,
    /// Domain (domain style): TRANSACTION, WALLET or APPROVAL.
    #[arg(long, value_name = "D")]
    domain: Option<String>,
    /// The entity as JSON: a file, or `-` for stdin.
    #[arg(long, value_name = "FILE|-")]
    data: String,
    /// Organization id. Default is `cli`.
    #[arg(long, value_name = "ORG", default_value = "cli")]
    org: String,
    /// Delays in seconds before each attempt, e.g. `0,5,30` (replaces the style's default
    /// policy: seed 001's schedule for domain, exponential backoff otherwise). Each wait at
    /// most 604800 s (7 days), all of them at most 30 days.
    #[arg(long, value_name = "SECS,…", conflicts_with = "max_attempts")]
    schedule: Option<String>,
    /// Keep the style's default policy but stop after this many attempts (at least 1; the
    /// waits may add up to 30 days at most; the domain style has seed 001's 10 at most).
    #[arg(long, value_name = "N")]
    max_attempts: Option<u32>,
    /// Per-attempt timeout in seconds (at least 1; the sender caps it at half its lease).
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    timeout: u64,
    /// Allow loopback and private targets (local testing only; refused by default).
    #[arg(long)]
    allow_private: bool,
}

pub(crate) fn run(args: &Args) -> Result<(), Failure> {
    let keys = args.keys.keys()?;
    let data = read_data(&args.data)?;
    let policy = retry_policy(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::failed)?;
    runtime.block_on(send(args, keys, data, policy))
}

fn read_data(source: &str) -> Result<Value, Failure> {
    let mut text = Vec::new();
    let read = if source == "-" {
        std::io::stdin().read_to_end(&mut text).map(drop)
    } else {
        std::fs::read(source).map(|bytes| text = bytes)
    };
    read.map_err(|e| Failure::usage(format!("cannot read --data {source}: {e}")))?;
    serde_json::from_slice(&text).map_err(|e| Failure::usage(format!("--data is not JSON: {e}")))
}

/// The policy from `--schedule` or `--max-attempts`, checked against the sender's limits
/// (`RetryPolicy::validate`: no wait over 7 days, 30 days in all, 1 to 100,000 attempts),
/// so that a wait that would never end is refused at once instead of hanging silently.
fn retry_policy(args: &Args) -> Result<RetryPolicy, Failure> {
    let default = match args.keys.style {
        Style::Domain => RetryPolicy::domain_default(),
        Style::Event | Style::Standard => RetryPolicy::event_default(),
    };
    if let Some(schedule) = &args.schedule {
        let delays = schedule
            .split(',')
            .map(|part| part.trim().parse::<u64>().map(Duration::from_secs))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Failure::usage("--schedule takes whole seconds, e.g. 0,5,30"))?;
        return RetryPolicy::try_schedule(delays)
            .map_err(|e| Failure::usage(format!("--schedule {schedule}: {e}")));
    }
    let Some(attempts) = args.max_attempts else {
        return Ok(default);
    };
    let policy = default.with_max_attempts(attempts);
    policy
        .validate()
        .map_err(|e| Failure::usage(format!("--max-attempts {attempts}: {e}")))?;
    if policy.max_attempts() != attempts {
        return Err(Failure::usage(format!(
            "--max-attempts {attempts}: the default policy of --style {} makes {} attempts at \
             most; give the waits with --schedule",
            args.keys.style,
            policy.max_attempts()
        )));
    }
    Ok(policy)
}

/// The endpoint for this delivery; every given secret signs, as during a rotation.
fn endpoint(args: &Args, keys: SigningKeys) -> Result<EndpointConfig, Failure> {
    if args.domain.is_some() && args.keys.style != Style::Domain {
        return Err(Failure::usage("--domain applies to --style domain only"));
    }
    let url = args.url.clone();
    let org = args.org.clone();
    let event_type = || {
        args.event_type
            .as_deref()
            .map(EventType::from)
            .ok_or_else(|| Failure::usage(format!("--style {} needs --type", args.keys.style)))
    };
    Ok(match keys {
        SigningKeys::Event(secrets) => {
            if secrets.is_empty() {
                return Err(Failure::usage("--secret is required"));
            }
            EndpointConfig::event(org, url, [event_type()?]).secrets(secrets)
        }
        SigningKeys::Domain(key) => {
            let domain = args
                .domain
                .as_deref()
                .map(Domain::from)
                .ok_or_else(|| Failure::usage("--style domain needs --domain"))?;
            EndpointConfig::domain(org, url, *key, [domain])
        }
        SigningKeys::Standard(keys) => {
            let first = keys
                .first()
                .cloned()
                .ok_or_else(|| Failure::usage("--secret is required"))?;
            EndpointConfig::standard(org, url, first, [event_type()?]).secrets(keys)
        }
    })
}

async fn send(
    args: &Args,
    keys: SigningKeys,
    data: Value,
    policy: RetryPolicy,
) -> Result<(), Failure> {
    let config = endpoint(args, keys)?;
    let config = config
        .retry(policy)
        .timeout(Duration::from_secs(args.timeout));
    let allow = if args.allow_private {
        AllowList::loopback()
    } else {
        AllowList::none()
    };
    let sender = Sender::builder()
        .store(MemoryStore::new())
        .allow_private_networks(allow)
        .build()
        .await
        .map_err(Failure::failed)?;
    let result = deliver(args, &sender, config, data).await;
    let _ = sender.shutdown().await;
    result
}

async fn deliver(
    args: &Args,
    sender: &Sender,
    config: EndpointConfig,
    data: Value,
) -> Result<(), Failure> {
    sender
        .endpoints()
        .create(config)
        .await
        .map_err(Failure::usage)?;
    let publish = match &args.domain {
        Some(domain) => Publish::domain(args.org.clone(), Domain::from(domain.as_str()), data),
        None => {
            let entity = data
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| "cli-entity".to_owned(), str::to_owned);
            let event_type = EventType::from(args.event_type.as_deref().unwrap_or_default());
            Publish::event(args.org.clone(), event_type, entity, data)
        }
    };
    let receipt = sender.publish(publish).await.map_err(Failure::usage)?;
    let Some(delivery_id) = receipt.deliveries.first().map(|d| d.id) else {
        return Err(Failure::failed("no delivery was queued"));
    };

    let mut printed = 0;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let Some(delivery) = sender
            .delivery(&args.org.as_str().into(), delivery_id)
            .await
            .map_err(Failure::failed)?
        else {
            return Err(Failure::failed("the delivery disappeared from the store"));
        };
        for attempt in delivery.attempts.iter().skip(printed) {
            println!("{}", attempt_line(attempt));
        }
        printed = delivery.attempts.len();
        let result = match delivery.status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed | DeliveryStatus::Cancelled => "failed",
            DeliveryStatus::Pending | DeliveryStatus::InFlight => continue,
        };
        println!(
            "{}",
            json!({
                "result": result,
                "attempts": delivery.attempts.len(),
                "event_id": receipt.event_id.to_string(),
                "idempotency_key": receipt.idempotency_key,
                "delivery_id": delivery_id.to_string(),
            })
        );
        return if delivery.status == DeliveryStatus::Delivered {
            Ok(())
        } else {
            Err(Failure::failed(format!(
                "delivery failed after {} attempts",
                delivery.attempts.len()
            )))
        };
    }
}

fn attempt_line(attempt: &AttemptRecord) -> Value {
    let mut line = json!({ "attempt": attempt.number, "latency_ms": attempt.latency_ms });
    match &attempt.result {
        AttemptResult::Response { status, .. } => line["status"] = json!(status),
        AttemptResult::Error { kind, message } => {
            line["error"] = json!(kind.as_str());
            line["message"] = json!(message);
        }
    }
    line
}
