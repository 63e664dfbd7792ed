//! Senders for the tests: [`loopback_sender`] builds one that may deliver to 127.0.0.1 and
//! knows an organization's secret; [`wait_finished`] (and [`wait_one_finished`]) waits,
//! bounded, until deliveries are finished.
//!
//! ```no_run
//! # async fn demo(id: webhook_sender::DeliveryId) {
//! use std::time::Duration;
//! use webhook_e2e::sender::{loopback_sender, wait_finished, wait_one_finished};
//!
//! let sender = loopback_sender("org-demo", "org-secret", |builder| builder.workers(8)).await;
//! // … create an endpoint, publish …
//! let org = "org-demo".into();
//! let deliveries = wait_finished(&sender, &org, &[id], Duration::from_secs(20)).await;
//! println!("{:?}", deliveries[0].status);
//! let delivery = wait_one_finished(&sender, &org, id, Duration::from_secs(20)).await;
//! # }
//! ```

use std::time::{Duration, Instant};

use webhook_core::keys::HmacSecret;
use webhook_sender::{AllowList, Builder, Delivery, DeliveryId, OrganizationId, Sender};

/// A sender on its default (memory) store that may deliver to loopback addresses, polls its
/// store every 20 ms, waits at most 2 s for attempts in flight when shut down, and holds
/// `secret` as `organization`'s secret. `configure` changes the builder further (a store, a
/// resolver, another allow list…) before it is built.
///
/// # Panics
/// When the sender cannot be built or the secret not stored. Its store is a
/// [`MemoryStore`](webhook_sender::store::MemoryStore) unless `configure` sets another.
pub async fn loopback_sender(
    organization: &str,
    secret: &str,
    configure: impl FnOnce(Builder) -> Builder,
) -> Sender {
    let builder = Sender::builder()
        .store(webhook_sender::store::MemoryStore::new())
        .allow_private_networks(AllowList::loopback())
        .idle_poll(Duration::from_millis(20))
        .shutdown_timeout(Duration::from_secs(2));
    let sender = configure(builder).build().await.expect("build the sender");
    sender
        .organizations()
        .set_secret(
            organization,
            HmacSecret::from_utf8(secret).expect("a valid secret"),
        )
        .await
        .expect("store the organization secret");
    sender
}

/// Waits until every delivery of `ids` (of `organization`) is finished, polling every
/// 20 ms; returns them in the order of `ids`.
///
/// # Panics
/// When one is still unfinished after `limit` (or cannot be read).
pub async fn wait_finished(
    sender: &Sender,
    organization: &OrganizationId,
    ids: &[DeliveryId],
    limit: Duration,
) -> Vec<Delivery> {
    let deadline = Instant::now() + limit;
    loop {
        let mut finished = Vec::with_capacity(ids.len());
        let mut open = None;
        for id in ids {
            let delivery = sender
                .delivery(organization, *id)
                .await
                .expect("read the delivery")
                .expect("the delivery exists");
            if delivery.status.is_terminal() {
                finished.push(delivery);
            } else {
                open.get_or_insert(delivery);
            }
        }
        let Some(open) = open else {
            return finished;
        };
        assert!(
            Instant::now() < deadline,
            "{} of {} deliveries not finished after {limit:?}, such as {open:?}",
            ids.len() - finished.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`wait_finished`] for one delivery.
///
/// # Panics
/// When it is still unfinished after `limit` (or cannot be read).
pub async fn wait_one_finished(
    sender: &Sender,
    organization: &OrganizationId,
    id: DeliveryId,
    limit: Duration,
) -> Delivery {
    let mut finished = wait_finished(sender, organization, &[id], limit).await;
    finished.pop().expect("one delivery for one id")
}
