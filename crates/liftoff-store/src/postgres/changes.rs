//! The change feed on PostgreSQL: `LISTEN liftoff_changes` on a connection of its own (a pooled
//! connection would lose its LISTEN when recycled), reconnecting with backoff.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use liftoff_core::changes::{CHANNEL, ChangeFeed, Topic};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::PgState;

/// Notifications waiting for the consumer; more are dropped, which loses nothing: a topic is a
/// reason to reread, and one pending reread covers any number of changes.
const PENDING: usize = 256;
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(10);

/// `NOTIFY` for `topic`, to run inside the transaction that makes the change.
pub(crate) fn notify(topic: Topic) -> String {
    format!("SELECT pg_notify('{CHANNEL}', '{}')", topic.as_str())
}

#[async_trait]
impl ChangeFeed for PgState {
    async fn follow_changes(&self, tx: mpsc::Sender<Topic>) {
        let mut retry = FIRST_RETRY;
        while !tx.is_closed() {
            match self.config.connect(NoTls).await {
                Ok((client, mut connection)) => {
                    let (heard, mut payloads) = mpsc::channel::<String>(PENDING);
                    let driver = tokio::spawn(async move {
                        let mut messages =
                            futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                        while let Some(message) = messages.next().await {
                            match message {
                                Ok(AsyncMessage::Notification(n)) => {
                                    if let Err(mpsc::error::TrySendError::Closed(_)) =
                                        heard.try_send(n.payload().to_owned())
                                    {
                                        break;
                                    }
                                }
                                Ok(_) => {}
                                Err(e) => {
                                    tracing::warn!(error = %e, "The change feed's connection failed.");
                                    break;
                                }
                            }
                        }
                    });
                    if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                        tracing::warn!(error = %e, "Could not LISTEN for changes; retrying.");
                        driver.abort();
                    } else {
                        retry = FIRST_RETRY;
                        // What changed while no one listened is reread once.
                        for topic in Topic::ALL {
                            if tx.send(topic).await.is_err() {
                                driver.abort();
                                return;
                            }
                        }
                        loop {
                            tokio::select! {
                                payload = payloads.recv() => match payload {
                                    Some(p) => {
                                        if let Some(topic) = Topic::parse(&p)
                                            && tx.send(topic).await.is_err()
                                        {
                                            driver.abort();
                                            return;
                                        }
                                    }
                                    None => break,
                                },
                                () = tx.closed() => {
                                    driver.abort();
                                    return;
                                }
                            }
                        }
                        tracing::warn!(
                            "The change feed's connection to PostgreSQL ended; reconnecting."
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "The change feed cannot reach PostgreSQL; flag changes from other replicas arrive by the 1 s poll meanwhile.");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(retry) => {}
                () = tx.closed() => return,
            }
            retry = (retry * 2).min(LAST_RETRY);
        }
    }
}
