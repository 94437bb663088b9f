//! `vigil inbox watch`: stay connected to every relay of this NGO's card, and fetch, store and
//! show each new report within moments of its deposit.
//!
//! Per relay, one task keeps a connection (the ordinary one: `RelayClient::connect_pinned_with`,
//! so the QUIC/TCP fallback and `--proxy` apply) and sends one Wait after another. The relay
//! answers a Wait as soon as a deposit into the mailbox is stored (no polling: see
//! `docs/protocol.md`, "Wait"); then the task runs what `inbox fetch` runs for one relay
//! ([`super::drain`]: download, verify, store, acknowledge) over the same connection, and shows
//! what it stored, urgent reports first. On connecting (and on every reconnection) it first
//! fetches what arrived while it was away. A relay that cannot be reached, restarts or drops the
//! link is said in one line, and tried again after a pause that doubles up to [`BACKOFF_MAX`];
//! the other relays go on meanwhile. A relay that predates the live inbox (it answers Wait with
//! UnknownRequest) is said once, in one line, and not tried again in this watch; if no relay of
//! the card knows Wait, the watch ends with that error (`inbox fetch` works with them all).
//!
//! The home: the watch holds the home's lock only while it stores what a relay had, a moment per
//! wake, so `inbox list`, `show` and `export` work beside it (they wait at most that moment).
//! Between wakes the vault is closed and the watch keeps only what it needs to open it again
//! (the vault key, in memory, wiped on exit) and the mailbox key for Wait's proofs; each store
//! opens the vault afresh under the lock, so it sees what other commands wrote meanwhile.

use super::{drain, is_relay_error, register_if_pending, FetchSummary, Keys};
use crate::cli::InboxWatchArgs;
use crate::commands::Ctx;
use crate::display;
use crate::home::Home;
use crate::output::Output;
use crate::relay::{LinkOptions, RelayClient};
use crate::state::prekeys::PrekeyState;
use crate::state::Ngo;
use crate::vault::Vault;
use anyhow::Result;
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use vigil_core::card::CardRelay;
use vigil_core::envelope::Opened;
use vigil_core::report::{ReportKind, Urgency};
use vigil_core::vault::VaultKey;
use vigil_core::wire::limits::MAX_WAIT_SECS;
use zeroize::Zeroizing;

/// The first pause after a relay could not be reached or the link dropped.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest pause between two attempts: a relay back after a restart is found within this.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// After a wake whose fetch stored nothing (the items were someone else's to fetch, or cannot be
/// acknowledged), wait this long before waiting again: a Wait on a mailbox that keeps items is
/// answered at once, and this keeps that from becoming a loop of fetches.
const EMPTY_WAKE_PAUSE: Duration = Duration::from_secs(2);
/// At shutdown, how long a fetch in progress may take to finish before the watch ends anyway
/// (what it fetched and did not acknowledge stays at the relay, for the next fetch).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One report stored by a fetch, as `inbox watch` shows it.
#[derive(Clone, Debug)]
pub struct NewReport {
    /// Its id in this inbox.
    pub id: String,
    /// How urgent the reporter said it is.
    pub urgency: Urgency,
    /// What happened.
    pub kind: ReportKind,
    /// Its title, as written (shown through [`display::line`]).
    pub title: String,
    /// When it was signed (Unix seconds, the reporter's clock).
    pub created: u64,
    /// When this inbox stored it (Unix seconds).
    pub received_at: u64,
    /// The relay it came from (`None`: taken again from `inbox/rejected/`).
    pub relay: Option<String>,
    /// Released by the relay from a check-in alert: as urgent as it gets.
    pub alert: bool,
}

impl NewReport {
    /// The report `opened`, stored under `id` at `now`.
    pub(super) fn of(
        id: &str,
        opened: &Opened,
        now: u64,
        relay: Option<&str>,
        alert: bool,
    ) -> Self {
        let r = &opened.report;
        Self {
            id: id.to_string(),
            urgency: r.urgency,
            kind: r.kind,
            title: r.title.clone(),
            created: opened.created,
            received_at: now,
            relay: relay.map(str::to_string),
            alert,
        }
    }

    /// Urgent: rings the bell and runs `--exec`.
    pub fn urgent(&self) -> bool {
        self.alert || self.urgency >= Urgency::Urgent
    }
}

/// What every relay's task shares.
struct Watcher {
    /// The home's directory.
    root: PathBuf,
    out: Output,
    /// The vault key, to open the vault afresh for each store.
    vault_key: Zeroizing<String>,
    /// The mailbox key, for Wait's proofs.
    mailbox_key: ed25519_dalek::SigningKey,
    /// One store at a time (the relays' tasks take turns; the home lock is per process too).
    turn: tokio::sync::Mutex<()>,
    exec: Option<String>,
    shown: AtomicUsize,
    /// Relays of the card, and how many of them turned out not to know Wait.
    relays: usize,
    without_wait: AtomicUsize,
}

/// Whether `e` is a relay's refusal of Wait as an unknown request: a relay that predates the
/// live inbox, which no retry will change.
fn knows_no_wait(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<crate::relay::RelayError>(),
            Some(crate::relay::RelayError::Refused {
                code: vigil_core::wire::ErrorCode::UnknownRequest,
                ..
            })
        )
    })
}

/// `vigil inbox watch`, with `ctx` holding no lock on the home (see the module docs).
pub async fn watch(ctx: &Ctx, args: InboxWatchArgs) -> Result<()> {
    // Once, under the lock: the NGO, its relays and the keys. A home of its own, so that the
    // vault opened here is closed again when it is dropped.
    let (relays, mailbox_key, vault_key) = {
        let mut home = Home::open(ctx.home.root())?;
        if let Some(p) = ctx.home.given_passphrase() {
            home = home.with_passphrase(p.clone());
        }
        let home = home.lock(|| ctx.out.say(crate::t!("home-busy")))?;
        let ngo = Ngo::load(&home)?;
        if ngo.local_identities(&home)?.is_empty() {
            anyhow::bail!(crate::t_err!("inbox-no-staff-key"));
        }
        let vault_key = home.vault()?.key().to_secret_text();
        (
            ngo.config.relays(),
            ngo.mailbox_key.as_dalek().clone(),
            vault_key,
        )
    };
    let w = Arc::new(Watcher {
        root: ctx.home.root().to_path_buf(),
        out: ctx.out,
        vault_key,
        mailbox_key,
        turn: tokio::sync::Mutex::new(()),
        exec: args.exec,
        shown: AtomicUsize::new(0),
        relays: relays.len(),
        without_wait: AtomicUsize::new(0),
    });
    ctx.out
        .say(crate::t!("inbox-watch-started", count = relays.len()));
    let addrs: Vec<&str> = relays.iter().map(|r| r.addr.as_str()).collect();
    ctx.out
        .emit(json!({"type": "watch_started", "relays": addrs}));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for relay in relays {
        tasks.spawn(w.clone().relay_loop(relay, stopped.clone()));
    }
    let until = async {
        match args.for_ {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let result = tokio::select! {
        () = until => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = term.recv() => Ok(()),
        // A task ends before the stop only on an error of this machine (the vault cannot be
        // written): watching on would lose reports, so the watch ends with it.
        Some(ended) = tasks.join_next() => match ended {
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("a relay's watch failed: {e}")),
        },
    };
    let _ = stop.send(true);
    let _ = tokio::time::timeout(STOP_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    let shown = w.shown.load(Ordering::Relaxed);
    ctx.out.say(crate::t!("inbox-watch-stopped", count = shown));
    ctx.out
        .emit(json!({"type": "watch_stopped", "shown": shown}));
    result
}

/// Whether the stop was given.
fn stopping(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// Completes when the stop is given.
async fn stop_given(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: that is a stop too.
    let _ = stop.wait_for(|s| *s).await;
}

impl Watcher {
    /// Watch one relay until the stop: connect, catch up, wait and fetch; reconnect after a
    /// pause when anything on the way fails. Ends early only on an error of this machine.
    async fn relay_loop(
        self: Arc<Self>,
        relay: CardRelay,
        mut stop: watch::Receiver<bool>,
    ) -> Result<()> {
        let mut backoff = BACKOFF_FIRST;
        let mut lost = false;
        while !stopping(&stop) {
            let e = match self
                .session(&relay, &mut stop, &mut lost, &mut backoff)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if knows_no_wait(&e) => {
                    self.out.say(format!(
                        "{}: {}",
                        crate::t!("warning-prefix"),
                        crate::t!("inbox-watch-no-wait", relay = relay.addr.as_str())
                    ));
                    self.out
                        .emit(json!({"type": "relay_without_wait", "relay": relay.addr}));
                    let n = self.without_wait.fetch_add(1, Ordering::Relaxed) + 1;
                    if n >= self.relays {
                        anyhow::bail!(crate::t_err!("inbox-watch-no-relay-waits"));
                    }
                    // Said once; the other relays are watched on.
                    stop_given(&mut stop).await;
                    return Ok(());
                }
                Err(e) if is_relay_error(&e) => e,
                Err(e) => return Err(e),
            };
            let shown = display::line(&crate::failure::localized_message(&e));
            self.out.say(format!(
                "{}: {}",
                crate::t!("warning-prefix"),
                crate::t!(
                    "inbox-watch-lost",
                    relay = relay.addr.as_str(),
                    error = shown,
                    secs = backoff.as_secs()
                )
            ));
            self.out.emit(json!({
                "type": "relay_lost", "relay": relay.addr, "error": display::line(&format!("{e:#}")),
                "retry_in_secs": backoff.as_secs(),
            }));
            lost = true;
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = stop_given(&mut stop) => return Ok(()),
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        Ok(())
    }

    /// One connection to `relay`: catch up, then Wait and fetch until the stop (`Ok`) or a
    /// failure (`Err`, the caller pauses and comes back).
    async fn session(
        &self,
        relay: &CardRelay,
        stop: &mut watch::Receiver<bool>,
        lost: &mut bool,
        backoff: &mut Duration,
    ) -> Result<()> {
        let (pins, link) = (relay.accepted_fingerprints(), LinkOptions::default());
        let client = tokio::select! {
            c = RelayClient::connect_pinned_with(&relay.addr, &pins, &link) => c?,
            () = stop_given(stop) => return Ok(()),
        };
        // What arrived while nobody waited (before the watch, or while the link was down).
        let caught_up = self.store_from(relay, &client).await;
        if caught_up.is_ok() {
            *backoff = BACKOFF_FIRST;
            if std::mem::take(lost) {
                self.out
                    .say(crate::t!("inbox-watch-back", relay = relay.addr.as_str()));
                self.out
                    .emit(json!({"type": "relay_back", "relay": relay.addr}));
            }
        }
        caught_up?;
        // Scripts (and tests) know from this line that deposits from now on are waited for.
        self.out
            .emit(json!({"type": "watching", "relay": relay.addr}));
        loop {
            let pending = tokio::select! {
                r = client.wait(&self.mailbox_key, MAX_WAIT_SECS) => r?,
                () = stop_given(stop) => {
                    client.close().await;
                    return Ok(());
                }
            };
            if pending > 0 && self.store_from(relay, &client).await? == 0 {
                tokio::select! {
                    () = tokio::time::sleep(EMPTY_WAKE_PAUSE) => {}
                    () = stop_given(stop) => return Ok(()),
                }
            }
        }
    }

    /// Under the home's lock: fetch, store and acknowledge what `relay` holds (registering the
    /// mailbox first if `ngo init` could not), then show what was stored. How many reports were
    /// stored.
    async fn store_from(&self, relay: &CardRelay, client: &RelayClient) -> Result<usize> {
        let _turn = self.turn.lock().await;
        let (root, out) = (self.root.clone(), self.out);
        // The lock may have to wait for another command: not on the runtime's threads, where
        // the other relays' connections are kept.
        let home = tokio::task::spawn_blocking(move || {
            Home::open(root)?.lock(|| out.say(crate::t!("home-busy")))
        })
        .await??;
        let key = VaultKey::from_secret_text(&self.vault_key)?;
        home.set_vault(Vault::with_key(home.root(), key)?)?;
        // Which transport reached each relay, learnt while the vault was closed, as every
        // other command saves it (`net/transports`).
        home.save_net_memory()?;
        let ctx = Ctx { home, out };
        let mut summary = FetchSummary {
            shown_by_caller: true,
            ..FetchSummary::default()
        };
        let done = async {
            let mut ngo = Ngo::load(&ctx.home)?;
            let ids = ngo.local_identities(&ctx.home)?;
            // The prekeys held, for reports sealed to one; the watch also keeps the current
            // prekey published (making a new one when it is due), as a fetch does.
            let mut prekeys = PrekeyState::load(&ctx.home)?;
            crate::commands::prekeys::renew_if_due(
                &ctx,
                &ngo,
                &mut prekeys,
                crate::home::now_unix(),
            )?;
            let prekey_ids = prekeys.identities(&ctx.home)?;
            register_if_pending(&ctx, &mut ngo, relay, client).await?;
            let keys = Keys {
                staff: &ids,
                prekeys: &prekey_ids,
            };
            drain(&ctx, &ngo, client, relay, keys, &mut summary).await?;
            crate::commands::prekeys::publish_at(&ctx, &ngo, &mut prekeys, relay, client).await?;
            // Receipts for what this wake stored, as `inbox fetch` sends them (a relay's
            // failure there is a warning, never the watch's).
            super::reply::after_fetch(&ctx, &ngo, &summary.stored).await
        }
        .await;
        // The lock and the vault go here, before anything is shown or run.
        drop(ctx);
        let stored = summary.new.len();
        self.show(summary.new);
        done.map(|()| stored)
    }

    /// Show each stored report, urgent ones first: one line on stderr (with a bell for an
    /// urgent one on a terminal), or one JSON object on stdout; `--exec` for each urgent one.
    fn show(&self, mut new: Vec<NewReport>) {
        // Stable: reports of the same urgency keep the order they were stored in.
        new.sort_by_key(|r| std::cmp::Reverse((r.urgent(), r.urgency)));
        for r in &new {
            self.shown.fetch_add(1, Ordering::Relaxed);
            let urgent = r.urgent();
            self.out.emit(json!({
                "type": "new_report", "id": r.id, "urgency": r.urgency.as_str(),
                "kind": r.kind.as_str(), "title": r.title, "created": r.created,
                "received_at": r.received_at, "relay": r.relay, "alert": r.alert,
            }));
            if !self.out.json {
                let bell = if urgent && std::io::stderr().is_terminal() {
                    "\x07"
                } else {
                    ""
                };
                let line = crate::t!(
                    "inbox-watch-report",
                    flag = if urgent { "!! " } else { "   " },
                    id = r.id.as_str(),
                    urgency = crate::commands::report::urgency_word(r.urgency),
                    kind = crate::commands::report::kind_word(r.kind),
                    title = display::line(&r.title),
                    relay = r.relay.as_deref().unwrap_or("-")
                );
                self.out.say(format!("{line}{bell}"));
            }
            if urgent {
                if let Some(cmd) = &self.exec {
                    self.run_hook(cmd, r);
                }
            }
        }
    }

    /// Run `--exec` for `r`: `sh -c CMD`, the report only in the environment (never in the
    /// command line, where a shell would read it as code), its output on our stderr (stdout is
    /// for `--json`). Not waited for: a slow hook does not hold up the next report; how it
    /// ended is said if it failed.
    fn run_hook(&self, cmd: &str, r: &NewReport) {
        let out = self.out;
        let id = r.id.clone();
        let hook_failed = move |error: String| {
            out.say(format!(
                "{}: {}",
                crate::t!("warning-prefix"),
                crate::t!("inbox-watch-exec-failed", id = id.as_str(), error = error)
            ));
        };
        let stdout = match stderr_stdio() {
            Ok(s) => s,
            Err(e) => return hook_failed(e.to_string()),
        };
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("VIGIL_REPORT_ID", &r.id)
            .env("VIGIL_REPORT_URGENCY", r.urgency.as_str())
            .env("VIGIL_REPORT_KIND", r.kind.as_str())
            .env("VIGIL_REPORT_TITLE", display::line(&r.title))
            .env("VIGIL_RELAY", r.relay.as_deref().unwrap_or(""))
            .stdin(std::process::Stdio::null())
            .stdout(stdout)
            .spawn();
        match child {
            Ok(mut child) => {
                tokio::spawn(async move {
                    match child.wait().await {
                        Ok(s) if s.success() => {}
                        Ok(s) => hook_failed(s.to_string()),
                        Err(e) => hook_failed(e.to_string()),
                    }
                });
            }
            Err(e) => hook_failed(e.to_string()),
        }
    }
}

/// Our stderr, as a child's output.
fn stderr_stdio() -> std::io::Result<std::process::Stdio> {
    use std::os::fd::AsFd;
    Ok(std::io::stderr().as_fd().try_clone_to_owned()?.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::RelayError;
    use vigil_core::wire::ErrorCode;

    #[test]
    fn only_a_relay_that_does_not_know_wait_is_given_up() {
        let refused = |code, retryable| {
            anyhow::Error::from(RelayError::Refused {
                code,
                message: "m".into(),
                retryable,
            })
        };
        assert!(knows_no_wait(&refused(ErrorCode::UnknownRequest, false)));
        assert!(knows_no_wait(
            &refused(ErrorCode::UnknownRequest, false).context("waiting")
        ));
        assert!(!knows_no_wait(&refused(ErrorCode::Busy, true)));
        assert!(!knows_no_wait(&anyhow::Error::from(RelayError::Timeout(5))));
        assert!(!knows_no_wait(&anyhow::anyhow!("the vault")));
    }
}
