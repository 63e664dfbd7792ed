//! Publishing inside the caller's own Postgres transaction (feature `postgres`): the
//! message and its deliveries commit with the caller's write, or not at all.

use sqlx::{Connection as _, PgConnection};

use super::{Publish, PublishReceipt};
use crate::error::Error;
use crate::sender::Sender;
use crate::store::Enqueued;

impl Sender {
    /// Publishes an event inside the transaction open on `transaction` (yours: pass
    /// `&mut *tx` for an [`sqlx::Transaction`]), on a sender whose store is a
    /// [`PostgresStore`](crate::store::PostgresStore) on the same database.
    ///
    /// Everything a [`publish`](Sender::publish) does happens the same way (validation,
    /// redaction, the idempotency key, fan-out, an existing event id returning the first
    /// receipt), except where the message and its deliveries go: they are inserted in
    /// your transaction. Nothing is sent unless it commits; dispatch sees them once it
    /// has (the wake-up `NOTIFY` is delivered at commit), on this node or any other, also
    /// when this sender stopped meanwhile. A rollback, or your own statement failing
    /// later in the transaction, leaves nothing to send. The transaction runs with
    /// `synchronous_commit = on` from here on: your commit returning is the
    /// acknowledgement. It must be `read committed` (Postgres's default isolation), and on
    /// the database of the sender's store.
    ///
    /// Deliveries about one resource keep the order of their commits: a publish holds a
    /// lock on each (endpoint, resource) it fans out to until your transaction ends, so a
    /// concurrent publish about the same resource waits for your commit or rollback. Keep
    /// transactions that publish short.
    ///
    /// ```no_run
    /// # async fn run(pool: sqlx::PgPool, sender: webhook_sender::Sender) -> Result<(), Box<dyn std::error::Error>> {
    /// use serde_json::json;
    /// use webhook_core::event::EventType;
    /// use webhook_sender::Publish;
    ///
    /// let mut tx = pool.begin().await?;
    /// sqlx::query("UPDATE transactions SET status = 'CONFIRMED' WHERE id = $1")
    ///     .bind("tx-1")
    ///     .execute(&mut *tx)
    ///     .await?;
    /// let event = Publish::event("org-1", EventType::TransactionConfirmed, "tx-1",
    ///     json!({"id": "tx-1", "status": "CONFIRMED"}));
    /// sender.publish_in(&mut tx, event).await?;
    /// tx.commit().await?; // the status and its webhook, together
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`publish`](Sender::publish); [`Error::is_invalid`] when the sender's store is
    /// not a Postgres store, no transaction is open on `transaction`, or it is not read
    /// committed; [`Error::is_store`]
    /// when a statement failed (your transaction is then aborted: roll it back).
    pub async fn publish_in(
        &self,
        transaction: &mut PgConnection,
        publish: Publish,
    ) -> Result<PublishReceipt, Error> {
        let Some(store) = self.engine().postgres.clone() else {
            return Err(Error::config(
                "publish_in needs a sender whose store is a PostgresStore",
            ));
        };
        if !transaction.is_in_transaction() {
            return Err(Error::config(
                "publish_in needs a transaction open on the connection (begin one with \
                 sqlx's `begin`): outside one, the publish would commit on its own",
            ));
        }
        if let Some(isolation) = store.ready_transaction(transaction).await? {
            return Err(Error::config(format!(
                "publish_in needs a read committed transaction (Postgres's default), not \
                 {isolation}: the order of a resource's deliveries relies on it"
            )));
        }
        let prepared = self.prepare(publish).await?;
        let (message, deliveries, pending) = prepared.into_parts();
        // The other nodes hear of it when the caller commits.
        let existing = match store
            .enqueue_in(transaction, message, deliveries, true)
            .await?
        {
            Enqueued::Stored => None,
            Enqueued::Existing(existing) => {
                let deliveries = store
                    .deliveries_in(transaction, &existing.deliveries)
                    .await?;
                Some((existing, deliveries))
            }
        };
        Ok(self.published(pending, existing))
    }
}
