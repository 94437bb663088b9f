//! One module per command group; `run` dispatches.

pub mod card;
pub mod checkin;
pub mod contact;
pub mod demo;
pub mod inbox;
pub mod ngo;
pub mod outbox;
pub mod panic;
pub mod prekeys;
pub mod report;
pub mod report_status;
pub mod rotate_keys;
pub mod session;

use crate::cli::{
    CardCmd, CheckinCmd, Cli, Command, ContactCmd, InboxCmd, NgoCmd, OutboxCmd, PassphraseCmd,
    RejectedCmd, ReportCmd,
};
use crate::home::Home;
use crate::output::Output;
use anyhow::Result;

/// What every command gets: where state lives and how to print.
pub struct Ctx {
    /// State directory.
    pub home: Home,
    /// Printing mode.
    pub out: Output,
}

/// Run a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    run_with(cli, Unlocking::default()).await
}

/// How a command run in-process gets the home's passphrase, instead of the environment or a
/// prompt (tests that drive the commands as a library; the `vigil` program uses [`run`]).
#[derive(Clone, Default)]
pub struct Unlocking {
    /// The passphrase of the home.
    pub passphrase: Option<secrecy::SecretString>,
    /// The scrypt work factor of a vault made now.
    pub work_factor: Option<u8>,
}

/// [`run`], with the passphrase given.
pub async fn run_with(cli: Cli, unlocking: Unlocking) -> Result<()> {
    let out = Output { json: cli.json };
    crate::relay::transport::set_settings(crate::relay::NetSettings {
        transport: cli.transport,
        proxy: cli.proxy.clone(),
        verbose: cli.verbose,
    });
    let ctx = || -> Result<Ctx> {
        let mut home = Home::resolve(cli.home.clone())?;
        if let Some(p) = &unlocking.passphrase {
            home = home.with_passphrase(p.clone());
        }
        if let Some(wf) = unlocking.work_factor {
            home = home.with_work_factor(wf);
        }
        Ok(Ctx {
            home: home.lock(|| out.say(crate::t!("home-busy")))?,
            out,
        })
    };
    let unlocked_ctx = || -> Result<Ctx> {
        let mut home = Home::resolve(cli.home.clone())?;
        if let Some(p) = &unlocking.passphrase {
            home = home.with_passphrase(p.clone());
        }
        Ok(Ctx { home, out })
    };
    match cli.command {
        Command::Age(args) => {
            tokio::task::spawn_blocking(move || crate::age_cmd::run(args, out.json)).await?
        }
        Command::Demo(args) => demo::run(args, out).await,
        // No home lock and no passphrase: it must not wait for anything.
        Command::Panic => panic::run(&crate::home::root_of(cli.home.clone())?, out),
        Command::Ngo(NgoCmd::Init(a)) => ngo::init(&ctx()?, a).await,
        Command::Ngo(NgoCmd::AddStaff(a)) => ngo::add_staff(&ctx()?, a),
        Command::Ngo(NgoCmd::RemoveStaff(a)) => ngo::remove_staff(&ctx()?, a),
        Command::Ngo(NgoCmd::RenewCard(a)) => ngo::renew_card(&ctx()?, a),
        Command::Ngo(NgoCmd::SetRelay(a)) => ngo::set_relay(&ctx()?, a).await,
        Command::Ngo(NgoCmd::ExportStaffKey(a)) => ngo::export_staff_key(&ctx()?, a),
        Command::Ngo(NgoCmd::RotateKeys(a)) => rotate_keys::rotate_keys(&ctx()?, a),
        Command::Ngo(NgoCmd::Prekeys(a)) => prekeys::command(&ctx()?, a).await,
        Command::Unlock(a) => session::unlock(&ctx()?, a),
        Command::Checkin(a) => match a.cmd {
            // A check-in must not wait behind a long upload in the same home: it takes no
            // home lock (it touches only its own files, each written atomically).
            None => checkin::check_in(&unlocked_ctx()?, a).await,
            Some(CheckinCmd::Disarm(d)) => checkin::disarm(&unlocked_ctx()?, d).await,
            Some(CheckinCmd::Arm(arm)) => checkin::arm(&ctx()?, arm).await,
            Some(CheckinCmd::Status) => checkin::status(&ctx()?),
        },
        // No home lock: ending a session must not wait for a long command.
        Command::Lock => session::lock(&crate::home::root_of(cli.home.clone())?, out),
        Command::Passphrase(PassphraseCmd::Change(a)) => session::change(&ctx()?, a),
        Command::AgentServe(a) => crate::agent::serve(
            &crate::home::root_of(cli.home.clone())?,
            std::time::Duration::from_secs(a.for_secs),
        ),
        Command::Card(CardCmd::Show(a)) => card::show(&ctx()?, a),
        Command::Contact(ContactCmd::Add(a)) => contact::add(&ctx()?, a),
        Command::Contact(ContactCmd::List) => contact::list(&ctx()?),
        Command::Contact(ContactCmd::Remove(a)) => contact::remove(&ctx()?, a),
        Command::Contact(ContactCmd::Verify(a)) => contact::verify(&ctx()?, a),
        Command::Report(ReportCmd::Send(a)) => report::send(&ctx()?, a).await,
        Command::Report(ReportCmd::Check(a)) => report::check(&ctx()?, a),
        Command::Report(ReportCmd::Status(a)) => report_status::status(&ctx()?, a).await,
        Command::Report(ReportCmd::Reply(a)) => report_status::reply(&ctx()?, a).await,
        Command::Outbox(OutboxCmd::List) => outbox::list(&ctx()?),
        Command::Outbox(OutboxCmd::Cancel(a)) => outbox::cancel(&ctx()?, &a.id),
        Command::Outbox(OutboxCmd::Flush(a)) => {
            outbox::flush_all(&ctx()?, &a.retry).await.map(|_| ())
        }
        Command::Inbox(InboxCmd::Fetch) => inbox::fetch(&ctx()?).await.map(|_| ()),
        Command::Inbox(InboxCmd::List) => inbox::list(&ctx()?).map(|_| ()),
        Command::Inbox(InboxCmd::Show(a)) => inbox::show(&ctx()?, &a.id),
        Command::Inbox(InboxCmd::Reply(a)) => inbox::reply(&ctx()?, a).await,
        Command::Inbox(InboxCmd::Export(a)) => inbox::export(&ctx()?, &a.id, &a.out),
        Command::Inbox(InboxCmd::Status) => inbox::status(&ctx()?).await,
        // Holds the home only while it stores what a relay had (see `inbox::watch`), so `inbox
        // list` and `show` work beside it.
        Command::Inbox(InboxCmd::Watch(a)) => inbox::watch(&unlocked_ctx()?, a).await,
        Command::Inbox(InboxCmd::Rejected(RejectedCmd::List)) => inbox::rejected_list(&ctx()?),
        Command::Inbox(InboxCmd::Rejected(RejectedCmd::Clear(a))) => {
            inbox::rejected_clear(&ctx()?, a)
        }
    }
}
