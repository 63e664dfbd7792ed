//! Metrics: every metric named in `webhook_sender::metrics` is recorded.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Reply, TestServer, builder, outcomes};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_sender::{EndpointConfig, Publish, RetryPolicy, metrics as names};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let server =
        TestServer::sequence(vec![Reply::status(503), Reply::ok(), Reply::status(400)]).await;
    let sender = builder().build().await.unwrap();
    let policy = RetryPolicy::schedule([Duration::ZERO, Duration::from_millis(10)]);
    sender
        .endpoints()
        .create(
            EndpointConfig::event("org", server.url("/"), [EventType::WalletCreated])
                .secret(HmacSecret::from_utf8("s").unwrap())
                .retry(policy),
        )
        .await
        .unwrap();
    let mut watch = sender.outcomes();
    for entity in ["w1", "w2"] {
        sender
            .publish(Publish::event(
                "org",
                EventType::WalletCreated,
                entity,
                json!({}),
            ))
            .await
            .unwrap();
        outcomes(&mut watch, 1).await;
    }
    sender.shutdown().await.unwrap();

    let mut counters: HashMap<String, u64> = HashMap::new();
    let mut histograms: HashMap<String, usize> = HashMap::new();
    let mut gauges = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = if labels.is_empty() {
            key.name().to_owned()
        } else {
            format!("{}{{{}}}", key.name(), labels.join(","))
        };
        match value {
            DebugValue::Counter(n) => {
                counters.insert(name, n);
            }
            DebugValue::Histogram(values) => {
                histograms.insert(name, values.len());
            }
            DebugValue::Gauge(_) => gauges.push(name),
        }
    }
    let counter = |name: &str| counters.get(name).copied().unwrap_or(0);
    assert_eq!(
        counter(&format!("{}{{style_family=event}}", names::PUBLISHED)),
        2
    );
    assert_eq!(counter(&format!("{}{{result=retry}}", names::ATTEMPTS)), 1);
    assert_eq!(
        counter(&format!("{}{{result=delivered}}", names::ATTEMPTS)),
        1
    );
    assert_eq!(counter(&format!("{}{{result=failed}}", names::ATTEMPTS)), 1);
    assert_eq!(counter(names::DELIVERED), 1);
    assert_eq!(counter(names::FAILED), 1);
    assert_eq!(histograms.get(names::ATTEMPT_LATENCY), Some(&3));
    assert_eq!(histograms.get(names::RETRY_DELAY), Some(&1));
    assert!(gauges.iter().any(|g| g == names::QUEUE_DEPTH));
}
