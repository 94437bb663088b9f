//! Live-inbox wake-ups across relays: `LISTEN`/`NOTIFY`.
//!
//! A deposit's transaction sends `NOTIFY vigil_deposits, '<mailbox id in hex>'` (an alert's
//! release sends an empty payload: any mailbox may have gained an item), which PostgreSQL
//! delivers to every listening relay only once the transaction commits, so a wake never runs
//! ahead of the durable deposit. Each relay keeps one connection of its own (outside the pool)
//! listening, and hands each notification to the hook the relay set (`Store::on_deposits`),
//! which wakes its waiters. A wake is a hint: a waiter always asks the store before it answers,
//! so a lost notification costs at most the rest of a wait; after the listening connection is
//! lost and made again, the hook hears `None` (wake everyone) for what may have been missed.

use super::describe;
use crate::store::DepositHook;
use std::time::Duration;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;
use vigil_core::ids::MailboxId;

/// The channel deposits are announced on.
pub(crate) const CHANNEL: &str = "vigil_deposits";

/// The payload announcing a deposit into `mailbox`.
pub(crate) fn payload(mailbox: &MailboxId) -> String {
    hex::encode(mailbox.as_bytes())
}

/// The mailbox a payload names; `None` for "any" (an empty or unexpected payload).
fn mailbox_of(payload: &str) -> Option<MailboxId> {
    let mut id = [0u8; 32];
    hex::decode_to_slice(payload, &mut id).ok()?;
    Some(MailboxId(id))
}

/// Listen until `cancel`, reconnecting (with a growing pause, at most 30 s) when the
/// connection is lost.
pub(crate) async fn listen(
    config: tokio_postgres::Config,
    hook: DepositHook,
    cancel: CancellationToken,
) {
    let mut pause = Duration::from_secs(1);
    let mut warned = false;
    loop {
        let lost = tokio::select! {
            _ = cancel.cancelled() => return,
            lost = listen_once(&config, &hook) => lost,
        };
        if !warned {
            // Once per outage: a database that is down says so in the other errors too.
            tracing::warn!(
                "lost the database connection that hears other relays' deposits ({lost}); \
                 live inbox watchers may see them up to a wait later until it is back"
            );
            warned = true;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(30));
        if pause == Duration::from_secs(30) {
            warned = false;
        }
    }
}

/// One listening connection, until it is lost; why it was.
async fn listen_once(config: &tokio_postgres::Config, hook: &DepositHook) -> String {
    let (client, mut conn) = match config.connect(NoTls).await {
        Ok(c) => c,
        Err(e) => return describe(&e),
    };
    let driver = async {
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => hook(mailbox_of(n.payload())),
                Some(Ok(_)) => {}
                Some(Err(e)) => return describe(&e),
                None => return "closed by the server".to_string(),
            }
        }
    };
    tokio::pin!(driver);
    let statement = format!("LISTEN {CHANNEL}");
    tokio::select! {
        listening = client.batch_execute(&statement) => {
            if let Err(e) = listening {
                return describe(&e);
            }
        }
        lost = &mut driver => return lost,
    }
    // Listening from here on; whatever came before was not heard.
    hook(None);
    driver.await
}

#[test]
fn payloads_name_mailboxes() {
    let m = MailboxId([7; 32]);
    assert_eq!(mailbox_of(&payload(&m)), Some(m));
    assert_eq!(mailbox_of(""), None);
    assert_eq!(mailbox_of("zz"), None);
}
