//! The [`Sender`] handle: publish events, manage endpoints, watch outcomes, redrive
//! failures, shut down.
//!
//! ```no_run
//! # async fn demo(sender: webhook_sender::Sender) -> Result<(), webhook_sender::Error> {
//! use webhook_sender::OutcomeStatus;
//!
//! let mut outcomes = sender.outcomes();
//! while let Ok(outcome) = outcomes.recv().await {
//!     if outcome.status == OutcomeStatus::Failed {
//!         let delivery = sender.delivery(&outcome.organization, outcome.delivery).await?
//!             .expect("stored");
//!         eprintln!("{} failed after {} attempts", delivery.id, delivery.attempts.len());
//!         sender.redrive(&outcome.organization, outcome.delivery).await?; // try again
//!     }
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use webhook_core::redaction::Redactor;

use crate::builder::Builder;
use crate::config::lock;
use crate::delivery::{Delivery, to_millis};
use crate::dispatch::Engine;
use crate::error::Error;
use crate::history::{self, DeliveryFilter, MessageFilter, Page, PageRequest};
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};
use crate::manage::{Endpoints, Organizations};
use crate::message::{Message, MessageWithDeliveries};
use crate::outcome::Outcome;

/// The webhook sender: a cheap-to-clone handle on a running engine.
///
/// Build one with [`Sender::builder`]. The engine runs on the tokio runtime it was built
/// on until [`Sender::shutdown`] is called. Dropping every handle without shutting down
/// stops the engine abruptly, as a crash would: attempts in flight are abandoned and their
/// deliveries are claimed again once their leases run out.
///
/// Every call that names a delivery, message or endpoint takes its organization: an id of
/// another organization answers not-found, exactly as one that does not exist.
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<Engine>,
    redactor: Redactor,
    tasks: Mutex<Tasks>,
}

/// The scheduler and retention tasks; aborted when the last handle goes.
#[derive(Default)]
struct Tasks {
    scheduler: Option<JoinHandle<Result<(), Error>>>,
    retention: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let mut tasks = lock(&self.tasks);
        if let Some(task) = tasks.scheduler.take() {
            task.abort();
        }
        if let Some(task) = tasks.retention.take() {
            task.abort();
        }
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("engine", &self.inner.engine)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// A builder with every setting at its default; [`Builder::store`] is required.
    #[must_use]
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn start(engine: Arc<Engine>, redactor: Redactor) -> Self {
        let tasks = Tasks {
            scheduler: Some(tokio::spawn(crate::dispatch::run(engine.clone()))),
            retention: Some(tokio::spawn(crate::retention::run(
                engine.store.clone(),
                engine.clock.clone(),
                engine.settings.retention,
                engine.settings.idle_poll,
                engine.stopping(),
            ))),
        };
        Self {
            inner: Arc::new(Inner {
                engine,
                redactor,
                tasks: Mutex::new(tasks),
            }),
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn redactor(&self) -> &Redactor {
        &self.inner.redactor
    }

    /// Creates, reads, updates, pauses and deletes endpoints.
    #[must_use]
    pub fn endpoints(&self) -> Endpoints<'_> {
        let engine = self.engine();
        Endpoints {
            store: engine.store.as_ref(),
            config: &engine.config,
            client: &engine.client,
            engine,
        }
    }

    /// Sets and rotates organizations' webhook secrets.
    #[must_use]
    pub fn organizations(&self) -> Organizations<'_> {
        let engine = self.engine();
        Organizations {
            store: engine.store.as_ref(),
            config: &engine.config,
            engine,
        }
    }

    /// A stream of delivered and failed outcomes, from now on. A receiver that falls more
    /// than the channel's capacity behind loses the oldest outcomes (and is told so by
    /// `RecvError::Lagged`); the store keeps the truth either way.
    #[must_use]
    pub fn outcomes(&self) -> broadcast::Receiver<Outcome> {
        self.engine().subscribe()
    }

    /// One delivery of the organization, with its whole attempt history.
    ///
    /// # Errors
    /// [`Error::is_store`] when the store fails.
    pub async fn delivery(
        &self,
        organization: &OrganizationId,
        id: DeliveryId,
    ) -> Result<Option<Delivery>, Error> {
        let record = self.engine().store.delivery(id).await?;
        Ok(record
            .filter(|record| record.organization == *organization)
            .map(Delivery::from))
    }

    /// The organization's message with this event id, with its deliveries and their
    /// statuses.
    ///
    /// # Errors
    /// [`Error::is_store`] when the store fails.
    pub async fn message(
        &self,
        organization: &OrganizationId,
        event: EventId,
    ) -> Result<Option<MessageWithDeliveries>, Error> {
        let store = &self.engine().store;
        let Some(record) = store.message(organization.clone(), event).await? else {
            return Ok(None);
        };
        let deliveries = store
            .deliveries(record.deliveries.clone())
            .await?
            .into_iter()
            .filter(|d| d.organization == *organization)
            .map(Delivery::from)
            .collect();
        Ok(Some(MessageWithDeliveries {
            message: Message::from(record),
            deliveries,
        }))
    }

    /// A page of the organization's deliveries, newest first (see [`history`]).
    ///
    /// # Errors
    /// [`Error::is_not_found`] when the filter names an endpoint the organization does not
    /// have; [`Error::is_store`].
    pub async fn deliveries(
        &self,
        organization: &OrganizationId,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, Error> {
        if let Some(endpoint) = filter.endpoint_id() {
            self.own_endpoint(organization, endpoint)?;
        }
        history::deliveries(self.engine().store.as_ref(), organization, filter, page).await
    }

    /// A page of the organization's messages, newest first (see [`history`]).
    ///
    /// # Errors
    /// [`Error::is_store`].
    pub async fn messages(
        &self,
        organization: &OrganizationId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> Result<Page<Message>, Error> {
        history::messages(self.engine().store.as_ref(), organization, filter, page).await
    }

    /// A page of the deliveries of the organization (or of one of its endpoints) that
    /// failed at or after `since`, oldest first: what a redrive would send again.
    ///
    /// # Errors
    /// [`Error::is_not_found`] for an endpoint the organization does not have;
    /// [`Error::is_store`].
    pub async fn failed_since(
        &self,
        organization: &OrganizationId,
        endpoint: Option<EndpointId>,
        since: OffsetDateTime,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, Error> {
        if let Some(endpoint) = endpoint {
            self.own_endpoint(organization, endpoint)?;
        }
        let store = self.engine().store.as_ref();
        history::failed_since(store, organization, endpoint, to_millis(since), page).await
    }

    /// Puts a failed delivery back in the queue with a fresh retry round (its history is
    /// kept and its attempt numbers continue). It goes after any deliveries about the same
    /// resource that are still queued.
    ///
    /// # Errors
    /// [`Error::is_not_found`] when the organization has no such delivery or it has not
    /// failed; [`Error::is_shutdown`], [`Error::is_store`].
    pub async fn redrive(
        &self,
        organization: &OrganizationId,
        id: DeliveryId,
    ) -> Result<(), Error> {
        let engine = self.engine();
        engine.check_open()?;
        if self.delivery(organization, id).await?.is_none()
            || !engine.store.redrive(id, engine.now_ms()).await?
        {
            return Err(Error::not_found("failed delivery"));
        }
        metrics::counter!(crate::metrics::REDRIVEN).increment(1);
        engine.wake();
        Ok(())
    }

    /// Redrives every delivery of the organization (or of one of its endpoints) that
    /// failed at or after `since`; returns them, oldest first.
    ///
    /// # Errors
    /// [`Error::is_not_found`] for an endpoint the organization does not have;
    /// [`Error::is_shutdown`], [`Error::is_store`].
    pub async fn redrive_failed_since(
        &self,
        organization: &OrganizationId,
        endpoint: Option<EndpointId>,
        since: OffsetDateTime,
    ) -> Result<Vec<DeliveryId>, Error> {
        let engine = self.engine();
        engine.check_open()?;
        let mut page = PageRequest::new(history::MAX_LIMIT)?;
        let mut redriven = Vec::new();
        loop {
            let failed = self
                .failed_since(organization, endpoint, since, &page)
                .await?;
            for delivery in &failed.items {
                if engine.store.redrive(delivery.id, engine.now_ms()).await? {
                    redriven.push(delivery.id);
                }
            }
            match failed.next_cursor {
                Some(cursor) => page = page.after(cursor),
                None => break,
            }
        }
        metrics::counter!(crate::metrics::REDRIVEN)
            .increment(u64::try_from(redriven.len()).unwrap_or(u64::MAX));
        engine.wake();
        Ok(redriven)
    }

    /// Whether the sender is running and its store answers (one cheap read): what a
    /// readiness probe asks.
    ///
    /// # Errors
    /// [`Error::is_shutdown`], or [`Error::is_store`] when the store does not answer.
    pub async fn check_ready(&self) -> Result<(), Error> {
        let engine = self.engine();
        engine.check_open()?;
        engine.store.config_version().await?;
        Ok(())
    }

    /// Stops gracefully: no new publishes or claims; attempts in flight get up to the
    /// shutdown timeout to finish, the rest are abandoned and their deliveries released
    /// (due again at once, no attempt counted); then the store is flushed and closed.
    /// Later calls on any clone fail with [`Error::is_shutdown`].
    ///
    /// # Errors
    /// [`Error::is_store`] when the store fails to close.
    pub async fn shutdown(&self) -> Result<(), Error> {
        let engine = self.engine();
        engine.begin_shutdown();
        let (scheduler, retention) = {
            let mut tasks = lock(&self.inner.tasks);
            (tasks.scheduler.take(), tasks.retention.take())
        };
        if let Some(retention) = retention {
            let _ = retention.await;
        }
        let result = match scheduler {
            Some(task) => match task.await {
                Ok(result) => result,
                Err(join) if join.is_cancelled() => Ok(()),
                Err(_) => Err(Error::internal("the scheduler task panicked")),
            },
            None => Ok(()),
        };
        engine.mark_closed();
        result
    }

    fn own_endpoint(&self, organization: &OrganizationId, id: EndpointId) -> Result<(), Error> {
        self.engine()
            .config
            .endpoint_of(organization, id)
            .map(|_| ())
            .ok_or_else(|| Error::not_found("endpoint"))
    }
}
