//! The command line, as clap types. Command and flag names are a contract with scripts and the
//! acceptance tests: add freely, never rename.

use crate::relay::LinkOptions;
use crate::retry::{parse_duration, RetryPolicy, DEFAULT_RETRY_FOR};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Vigil: send incident reports, end-to-end encrypted, to the NGOs that can act on them.
#[derive(Parser, Debug)]
#[command(name = "vigil", version, propagate_version = true, after_help = AFTER_HELP)]
pub struct Cli {
    /// State directory (keys, contacts, outbox, inbox).
    #[arg(long, global = true, env = "VIGIL_HOME", value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub home: Option<PathBuf>,
    /// Machine-readable output: one JSON object per line on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Language of messages and help: en or ru. Without it, VIGIL_LANG, then LC_ALL,
    /// LC_MESSAGES and LANG decide; anything else is English. JSON output is the same in every
    /// language.
    #[arg(long, global = true, value_name = "LANG")]
    pub lang: Option<String>,
    /// How to reach relays: auto (QUIC, then TLS over TCP if QUIC does not connect within a
    /// few seconds; what worked is remembered per relay), quic, or tcp.
    #[arg(
        long,
        global = true,
        env = "VIGIL_TRANSPORT",
        value_name = "auto|quic|tcp",
        default_value = "auto"
    )]
    pub transport: crate::relay::Transport,
    /// Send every connection through this SOCKS5 proxy, e.g. socks5h://127.0.0.1:9050 for Tor
    /// or Orbot, over TLS on TCP; never connect directly while it is set.
    #[arg(
        long,
        global = true,
        env = "VIGIL_PROXY",
        value_name = "socks5h://HOST:PORT"
    )]
    pub proxy: Option<crate::relay::Proxy>,
    /// Say on stderr how each relay connection was made (QUIC or TCP, and how long it took).
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const AFTER_HELP: &str = "\
Reporter:  vigil contact add ngo.card
           vigil report send --to \"Memorial Caucasus desk\" --file report.json
NGO:       vigil ngo init --name \"Memorial Caucasus desk\" --relay HOST:PORT \\
                 --relay-fingerprint FP --card-out ngo.card
           vigil inbox fetch && vigil inbox list
Try it:    vigil demo
Scripts give passphrases through VIGIL_PASSPHRASE_FILE.";

impl Cli {
    /// Parse `args` with the help text in this run's language (`crate::i18n`; choose it first).
    ///
    /// A command line that parses needs no help text, so the catalogue is not touched then:
    /// `vigil panic` starts destroying keys without waiting for it. Help, version and errors
    /// parse again with the translated command tree.
    pub fn parse_localized(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
        use clap::{CommandFactory, FromArgMatches};
        if let Ok(cli) = Cli::try_parse_from(&args) {
            return Ok(cli);
        }
        let mut cmd = crate::help::localize(Cli::command());
        let matches = cmd.try_get_matches_from_mut(args)?;
        Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
    }
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Set up and manage an NGO inbox.
    #[command(subcommand)]
    Ngo(NgoCmd),
    /// Show a recipient card (yours, or one in a file).
    #[command(subcommand)]
    Card(CardCmd),
    /// Manage the NGOs you can send reports to.
    #[command(subcommand)]
    Contact(ContactCmd),
    /// Write and send incident reports.
    #[command(subcommand)]
    Report(ReportCmd),
    /// Reports waiting to be sent.
    #[command(subcommand)]
    Outbox(OutboxCmd),
    /// Reports received by this NGO.
    #[command(subcommand)]
    Inbox(InboxCmd),
    /// Encrypt and decrypt files in the age format (compatible with age and rage).
    Age(crate::age_cmd::AgeArgs),
    /// Run the whole flow on this machine with a temporary relay and say what happens.
    Demo(DemoArgs),
    /// Destroy this device's Vigil state now: keys first (so nothing left can be decrypted),
    /// then every file of the home. Asks nothing and needs no passphrase; cannot be undone.
    Panic,
    /// Unlock this home for a working session: commands need no passphrase until the time is
    /// up or `vigil lock` (the key is held in memory by a small background process, never in a
    /// file).
    Unlock(UnlockArgs),
    /// End the unlock session: the next command asks for the passphrase.
    Lock,
    /// Change the passphrase of this home.
    #[command(subcommand)]
    Passphrase(PassphraseCmd),
    /// Check in, so that your prepared alert stays sealed; `vigil checkin arm` prepares it.
    #[command(args_conflicts_with_subcommands = true, after_help = CHECKIN_HELP)]
    Checkin(CheckinArgs),
    /// The unlock session's background process (started by `vigil unlock`).
    #[command(hide = true)]
    AgentServe(AgentServeArgs),
}

const CHECKIN_HELP: &str = "\
Prepare an alert for the NGOs in case you go silent (abducted, detained, phone taken):
  vigil checkin arm --to \"Memorial Caucasus desk\" --every 6h --grace 1h --alert alert.json
Then check in at least every 6 hours:
  vigil checkin
If no check-in comes by the deadline plus the grace, the relay releases the alert to the NGOs,
marked urgent, with the time of your last check-in. At arming you also choose a duress
passphrase: a check-in with it looks exactly like a normal one on this device, and releases the
alert at once. `vigil checkin disarm` withdraws the alert; `vigil checkin status` shows the
next deadline.";

/// `vigil checkin`
#[derive(Args, Debug)]
pub struct CheckinArgs {
    /// Prepare, inspect or withdraw the alert; without a subcommand, check in.
    #[command(subcommand)]
    pub cmd: Option<CheckinCmd>,
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// `vigil checkin ...`
#[derive(Subcommand, Debug)]
pub enum CheckinCmd {
    /// Prepare the alert and leave it sealed at the NGOs' relays until you stop checking in.
    Arm(CheckinArmArgs),
    /// When the next check-in is due, and when the alert would be released.
    Status,
    /// Withdraw the alert (with your normal passphrase).
    Disarm(CheckinDisarmArgs),
}

/// `vigil checkin arm`
#[derive(Args, Debug)]
pub struct CheckinArmArgs {
    /// NGO to alert (a contact's name); repeat for several.
    #[arg(long, required = true, value_name = "NGO")]
    pub to: Vec<String>,
    /// How often you will check in (e.g. 6h, 30m; 1s to 30d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub every: Duration,
    /// Slack after a missed check-in before the alert goes out (e.g. 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub grace: Duration,
    /// The alert: a report file (JSON, as for `report send`), e.g. kind "disappearance".
    #[arg(long, value_name = "FILE")]
    pub alert: PathBuf,
    /// Read the duress passphrase from this file (for scripts; asked on a terminal otherwise).
    #[arg(long, value_name = "FILE")]
    pub duress_passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// `vigil checkin disarm`
#[derive(Args, Debug)]
pub struct CheckinDisarmArgs {
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// `vigil unlock`
#[derive(Args, Debug)]
pub struct UnlockArgs {
    /// How long the session lasts (e.g. 15m, 2h; at most 12h).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration, default_value = "15m")]
    pub for_: Duration,
}

/// `vigil passphrase ...`
#[derive(Subcommand, Debug)]
pub enum PassphraseCmd {
    /// Choose a new passphrase (asked twice on a terminal; scripts give the current one in
    /// VIGIL_PASSPHRASE_FILE and the new one with --new-passphrase-file).
    Change(PassphraseChangeArgs),
}

/// `vigil passphrase change`
#[derive(Args, Debug)]
pub struct PassphraseChangeArgs {
    /// Read the new passphrase from this file (for scripts).
    #[arg(long, value_name = "FILE")]
    pub new_passphrase_file: Option<PathBuf>,
}

/// `vigil agent-serve`
#[derive(Args, Debug)]
pub struct AgentServeArgs {
    /// Seconds the session lasts.
    #[arg(long)]
    pub for_secs: u64,
}

/// `vigil ngo ...`
#[derive(Subcommand, Debug)]
pub enum NgoCmd {
    /// Create the NGO's keys, register its mailbox at the relay and write its recipient card.
    Init(NgoInitArgs),
    /// Add a staff key: every later report is readable by each staff key on the card.
    AddStaff(AddStaffArgs),
    /// Remove a staff key from the card and re-issue it; the key is deleted from this home if
    /// it is here. Reports already sealed to the key stay readable by it.
    #[command(after_help = REMOVE_STAFF_HELP)]
    RemoveStaff(RemoveStaffArgs),
    /// Re-issue the card unchanged but with a new expiry; hand it to reporters before the old
    /// one expires.
    RenewCard(RenewCardArgs),
    /// Change the relay address or certificate fingerprints and re-issue the card, e.g. to
    /// announce a relay certificate rotation (see docs/operations.md).
    #[command(after_help = SET_RELAY_HELP)]
    SetRelay(SetRelayArgs),
    /// Write a copy of a staff key held in this home to a file, as an age identity file (for
    /// moving it to another machine or a safe; the file is as secret as the key).
    ExportStaffKey(ExportStaffKeyArgs),
    /// Replace every staff key on the card by a new post-quantum key and re-issue the card. The
    /// old keys are kept only as long as reports sealed to them may still arrive, then
    /// destroyed.
    #[command(after_help = ROTATE_KEYS_HELP)]
    RotateKeys(RotateKeysArgs),
    /// Show the NGO's prekeys (short-lived keys reporters seal each report to, for forward
    /// secrecy) and their policy, or change it.
    Prekeys(NgoPrekeysArgs),
}

/// `vigil ngo prekeys`
#[derive(Args, Debug)]
pub struct NgoPrekeysArgs {
    /// How long each new prekey is valid, e.g. 7d (at most 31d). A shorter lifetime than the
    /// newest prekey's makes and publishes a new one now.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lifetime: Option<Duration>,
    /// How long an expired prekey is kept for reports sealed to it that are still on their way,
    /// e.g. 7d; after that, the next fetch that empties every relay destroys it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub grace: Option<Duration>,
    /// Make and publish a new prekey now.
    #[arg(long)]
    pub renew: bool,
    /// Stop making and publishing prekeys (reports then have the long-term keys' protection
    /// only).
    #[arg(long, conflicts_with = "on")]
    pub off: bool,
    /// Make and publish prekeys again (the default).
    #[arg(long)]
    pub on: bool,
}

/// `vigil ngo rotate-keys`
#[derive(Args, Debug)]
pub struct RotateKeysArgs {
    /// The new post-quantum recipient of a staff member whose key is not on this machine, as
    /// NAME=age1pq1... (they make it with `vigil age keygen --pq`); repeat for each.
    #[arg(long, value_name = "NAME=RECIPIENT")]
    pub staff_recipient: Vec<String>,
    /// How long after the old card's expiry the old keys are kept, for reports sealed to it
    /// that are still in reporters' outboxes or at the relay, e.g. 60d.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60d")]
    pub keep_old_keys: Duration,
    /// Write the re-issued card here too.
    #[arg(long, value_name = "FILE")]
    pub card_out: Option<PathBuf>,
    /// How long the re-issued card is valid.
    #[command(flatten)]
    pub validity: ValidityArgs,
}

const ROTATE_KEYS_HELP: &str = "\
Hand the re-issued card to every reporter (`--card-out FILE`, or `vigil card show`). Until a
reporter imports it, their reports are still sealed to the old keys, which this home keeps until
the old card's expiry plus --keep-old-keys; `vigil inbox fetch` destroys them after that date.";

/// `vigil ngo export-staff-key`
#[derive(Args, Debug)]
pub struct ExportStaffKeyArgs {
    /// The staff member's name.
    pub name: String,
    /// Where to write the key (created 0600; refuses to overwrite).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

const SET_RELAY_HELP: &str = "\
Certificate rotation (the operator runs `vigil-relay cert rotate`, then gives you the fingerprint):
  vigil ngo set-relay --next-fingerprint NEXT_FP --card-out ngo.card   # hand the card to reporters
  ... the operator runs `vigil-relay cert promote` and restarts the relay ...
  vigil ngo set-relay --relay-fingerprint NEXT_FP --card-out ngo.card  # ends the overlap
With several relays, add --which HOST:PORT to change another than the first. More relays:
  vigil ngo set-relay --add-relay HOST:PORT --relay-fingerprint FP --card-out ngo.card
  vigil ngo set-relay --remove-relay HOST:PORT --card-out ngo.card";

const REMOVE_STAFF_HELP: &str = "\
Removing a key changes the card: give every reporter the re-issued card (`--card-out FILE`, or
`vigil card show --qr`). Until a reporter imports it, their reports are still sealed to the
removed key too. Reports sealed before the removal stay readable by the removed key. If reports
already fetched into this home can only be opened with the key, the removal is refused unless
--force (they would become unreadable here). The relay mailbox and its key do not change.";

/// One year, written as `--valid-for` takes it.
pub const DEFAULT_VALID_FOR: &str = "365d";

/// `--valid-for`, on every command that issues a card.
#[derive(Args, Debug, Clone)]
pub struct ValidityArgs {
    /// How long the issued card is valid, e.g. 365d, 52w, 12h (at least 1s). Reporters are
    /// warned 30 days before it expires and cannot send with an expired card; renew it with
    /// `vigil ngo renew-card`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = DEFAULT_VALID_FOR)]
    pub valid_for: Duration,
}

impl Default for ValidityArgs {
    /// What the flag defaults to: one year.
    fn default() -> Self {
        Self {
            valid_for: Duration::from_secs(365 * 86_400),
        }
    }
}

/// `vigil ngo remove-staff`
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["staff", "name"])))]
pub struct RemoveStaffArgs {
    /// Staff member's name as given to `add-staff` (case does not matter), or their key (age1...).
    #[arg(value_name = "NAME")]
    pub staff: Option<String>,
    /// The same as NAME, as a flag (like `add-staff --name`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Delete the key from this home even if reports already fetched here can only be opened
    /// with it (they become unreadable on this machine). Without it, that case is refused.
    #[arg(long)]
    pub force: bool,
    /// Write the re-issued card here too.
    #[arg(long, value_name = "FILE")]
    pub card_out: Option<PathBuf>,
    /// How long the re-issued card is valid.
    #[command(flatten)]
    pub validity: ValidityArgs,
}

impl RemoveStaffArgs {
    /// The staff member named, positionally or with `--name`.
    pub fn who(&self) -> &str {
        self.staff
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or_default()
    }
}

/// `vigil ngo renew-card`
#[derive(Args, Debug)]
pub struct RenewCardArgs {
    /// Write the renewed card here too.
    #[arg(long, value_name = "FILE")]
    pub card_out: Option<PathBuf>,
    /// How long the renewed card is valid.
    #[command(flatten)]
    pub validity: ValidityArgs,
}

/// `vigil ngo set-relay`
#[derive(Args, Debug)]
pub struct SetRelayArgs {
    /// New relay address, HOST:PORT (the mailbox is registered there before the card changes).
    #[arg(long, value_name = "HOST:PORT")]
    pub relay: Option<String>,
    /// New current relay certificate fingerprint. If it equals the announced next one, the next
    /// one is cleared: the rotation is complete. With --add-relay: the added relay's fingerprint.
    #[arg(long, value_name = "FP")]
    pub relay_fingerprint: Option<String>,
    /// Announce the relay's next certificate (`vigil-relay fingerprint --next`): reporters with
    /// the new card accept both until you issue a card without it.
    #[arg(long, value_name = "FP", conflicts_with = "clear_next")]
    pub next_fingerprint: Option<String>,
    /// Remove the announced next certificate from the card.
    #[arg(long)]
    pub clear_next: bool,
    /// Which of the card's relays --relay, --relay-fingerprint, --next-fingerprint and
    /// --clear-next change, by its address (default: the first).
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["add_relay", "remove_relay"])]
    pub which: Option<String>,
    /// Add a relay to the card (at most 4 in all), its fingerprint given with
    /// --relay-fingerprint; the mailbox is registered there before the card changes.
    #[arg(
        long,
        value_name = "HOST:PORT",
        requires = "relay_fingerprint",
        conflicts_with_all = ["relay", "next_fingerprint", "clear_next", "remove_relay"]
    )]
    pub add_relay: Option<String>,
    /// Take a relay off the card (the last one stays). Fetch first: this inbox no longer
    /// fetches from it.
    #[arg(
        long,
        value_name = "HOST:PORT",
        conflicts_with_all = ["relay", "relay_fingerprint", "next_fingerprint", "clear_next"]
    )]
    pub remove_relay: Option<String>,
    /// Write the re-issued card here too.
    #[arg(long, value_name = "FILE")]
    pub card_out: Option<PathBuf>,
    /// How long the re-issued card is valid.
    #[command(flatten)]
    pub validity: ValidityArgs,
}

/// `vigil ngo init`
#[derive(Args, Debug)]
pub struct NgoInitArgs {
    /// The NGO's name as reporters will see and address it.
    #[arg(long)]
    pub name: String,
    /// Relay address, HOST:PORT. Repeat for more relays (at most 4), each with its own
    /// --relay-fingerprint, in the same order: reports are deposited at every one.
    #[arg(long, value_name = "HOST:PORT", required = true)]
    pub relay: Vec<String>,
    /// The relay certificate's SHA-256 fingerprint (from `vigil-relay fingerprint`); one per
    /// --relay.
    #[arg(long, value_name = "FP", required = true)]
    pub relay_fingerprint: Vec<String>,
    /// Where to write the recipient card to hand to reporters.
    #[arg(long, value_name = "FILE")]
    pub card_out: Option<PathBuf>,
    /// Name of the first staff member, whose key is created on this machine.
    #[arg(long, default_value = "desk")]
    pub staff: String,
    /// Make classic X25519 staff keys (age1...) instead of post-quantum ones (age1pq1...), for
    /// reporters whose Vigil predates post-quantum keys. Reports to them could be opened by a
    /// future quantum computer; move later with `vigil ngo rotate-keys`.
    #[arg(long)]
    pub classic_keys: bool,
    /// How long the card is valid.
    #[command(flatten)]
    pub validity: ValidityArgs,
}

/// `vigil ngo add-staff`
#[derive(Args, Debug)]
pub struct AddStaffArgs {
    /// Staff member's name (kept on this machine only, never on the card).
    #[arg(long)]
    pub name: String,
    /// Their existing age recipient (age1pq1..., or age1... on a card of classic keys). Without
    /// it a new key of the card's kind is made on this machine.
    #[arg(long, value_name = "RECIPIENT")]
    pub recipient: Option<String>,
    /// Write the updated card here too.
    #[arg(long, value_name = "FILE")]
    pub card_out: Option<PathBuf>,
    /// How long the re-issued card is valid.
    #[command(flatten)]
    pub validity: ValidityArgs,
}

/// `vigil card ...`
#[derive(Subcommand, Debug)]
pub enum CardCmd {
    /// Print a card with its safety number; `--qr` draws it as a QR code for a phone to scan.
    Show(CardShowArgs),
}

/// `vigil card show`
#[derive(Args, Debug)]
pub struct CardShowArgs {
    /// A card file; without it, this home's NGO card.
    pub file: Option<PathBuf>,
    /// Draw the card as a QR code in the terminal.
    #[arg(long)]
    pub qr: bool,
}

/// `vigil contact ...`
#[derive(Subcommand, Debug)]
pub enum ContactCmd {
    /// Import an NGO's recipient card (a file, or - for stdin) and show its safety number.
    Add(ContactAddArgs),
    /// List the NGOs you can send to.
    List,
    /// Remove an NGO from your contacts. Refused while reports for it wait in the outbox,
    /// unless --force, which deletes those reports too.
    Remove(ContactRemoveArgs),
    /// Show an NGO's safety number, how to compare it with the NGO out of band, and record
    /// that you did (asks on a terminal; --clear forgets it).
    Verify(ContactVerifyArgs),
}

/// `vigil contact remove`
#[derive(Args, Debug)]
pub struct ContactRemoveArgs {
    /// The NGO's name as on its card (case does not matter).
    pub name: String,
    /// Also delete report copies for this NGO still waiting in the outbox (they are never
    /// sent). Without it, the contact is kept while any wait: deliver them first with
    /// `vigil outbox flush`.
    #[arg(long)]
    pub force: bool,
}

/// `vigil contact verify`
#[derive(Args, Debug)]
pub struct ContactVerifyArgs {
    /// The NGO's name as on its card (case does not matter).
    pub name: String,
    /// Record the comparison without asking (on a terminal, the default is to ask).
    #[arg(long, conflicts_with = "clear")]
    pub yes: bool,
    /// Forget an earlier verification, e.g. after a number was read out wrong.
    #[arg(long)]
    pub clear: bool,
}

/// `vigil contact add`
#[derive(Args, Debug)]
pub struct ContactAddArgs {
    /// The card file, or - to read it from stdin.
    pub card: PathBuf,
    /// Replace an existing contact of the same name that has a different key.
    #[arg(long)]
    pub replace: bool,
}

/// `vigil report ...`
#[derive(Subcommand, Debug)]
pub enum ReportCmd {
    /// Encrypt a report for one or more NGOs and send it (queued in the outbox until stored).
    Send(ReportSendArgs),
    /// Check a report file without sending it.
    Check(ReportCheckArgs),
    /// Show what became of each report sent from here, per NGO: queued, stored at the relay,
    /// or delivered (the NGO's signed receipt), and the NGO's replies, each verified against
    /// its card.
    Status(ReportStatusArgs),
    /// Answer the NGO in a report's thread (after a reply, or to add something).
    Reply(ReportReplyArgs),
}

/// How long a reply mailbox is polled after a thread's last message, as `--replies-for` takes
/// it: 90 days.
pub const DEFAULT_REPLIES_FOR: &str = "90d";

/// `vigil report status`
#[derive(Args, Debug)]
pub struct ReportStatusArgs {
    /// Show what is known on this device without contacting any relay.
    #[arg(long)]
    pub offline: bool,
    /// Write the attachments of the NGO's replies, decrypted and verified, into this directory
    /// (plaintext: choose a place you can protect). Without it they stay encrypted on this
    /// device.
    #[arg(long, value_name = "DIR")]
    pub save_to: Option<PathBuf>,
}

/// `vigil report reply`
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("text").required(true).args(["message", "file"])))]
pub struct ReportReplyArgs {
    /// Report id from `vigil report status` (a unique prefix is enough).
    pub id: String,
    /// The answer's text.
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,
    /// Read the answer's text from this file (UTF-8).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The NGO to answer, by the name on its card; needed when the report went to several.
    #[arg(long = "to", value_name = "NGO")]
    pub to: Option<String>,
    /// Attach a file (repeat for more, at most 16); its metadata is removed first, as for a
    /// report's attachments.
    #[arg(long = "attach", value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Send attachments exactly as they are, metadata included.
    #[arg(long)]
    pub keep_metadata: bool,
    /// How hard to try.
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// `vigil report send`
#[derive(Args, Debug)]
pub struct ReportSendArgs {
    /// NGO to send to, by the name on its card; repeat for several.
    #[arg(long = "to", required = true, value_name = "NGO")]
    pub to: Vec<String>,
    /// Report JSON file (- for stdin). Without it, and on a terminal, you are asked field by field.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Only queue the report in the outbox; send later with `vigil outbox flush`.
    #[arg(long)]
    pub queue_only: bool,
    /// Attach a file (photo, video, document, audio) or every file of a directory; repeat for
    /// more. Identifying metadata (GPS position, device, owner, times) is removed from photos
    /// and videos first where Vigil can, and you are told what was removed or could not be.
    #[arg(long = "attach", value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Send attachments exactly as they are, metadata included (an NGO sometimes needs it to
    /// verify where and when a photo was taken); their SHA-256 is signed with the report.
    #[arg(long)]
    pub keep_metadata: bool,
    /// How long to look for the NGO's receipt and replies after the thread's last message
    /// (`vigil report status`), e.g. 30d; the reply mailbox made for the report is given up
    /// after it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = DEFAULT_REPLIES_FOR)]
    pub replies_for: Duration,
    /// Ask for no receipt and no replies: the report carries no reply mailbox.
    #[arg(long, conflicts_with = "replies_for")]
    pub no_replies: bool,
    /// How hard to try.
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// How `report send` and `outbox flush` deal with a bad link.
#[derive(Args, Debug, Clone)]
pub struct RetryArgs {
    /// Keep retrying what fails for a passing reason (link lost, relay unreachable or busy) for
    /// this long, e.g. 90s, 5m, 1h; 0 tries once. Default: 2m on a terminal; once otherwise, so
    /// scripts get exit code 3 quickly and retry on their own schedule.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retry_for: Option<Duration>,
    /// Try once and stop (same as --retry-for 0).
    #[arg(long, conflicts_with = "retry_for")]
    pub no_retry: bool,
    /// Give up on a connection that hears nothing from the relay for this long, then reconnect.
    /// Raise it where the network drops out for long stretches. The relay may close sooner.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "20s")]
    pub stall_timeout: Duration,
    /// Send queued reports one right after another, without the random pause between them that
    /// keeps the relay from linking them by time (for emergencies and tests).
    #[arg(long, env = "VIGIL_NO_DELAY", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_delay: bool,
}

impl Default for RetryArgs {
    /// What the flags default to.
    fn default() -> Self {
        Self {
            retry_for: None,
            no_retry: false,
            stall_timeout: crate::relay::IDLE_TIMEOUT,
            no_delay: false,
        }
    }
}

impl RetryArgs {
    /// The retry schedule these flags ask for; `interactive` picks the default.
    pub fn policy(&self, interactive: bool) -> RetryPolicy {
        match (self.no_retry, self.retry_for) {
            (true, _) => RetryPolicy::once(),
            (false, Some(d)) => RetryPolicy::for_duration(d),
            (false, None) if interactive => RetryPolicy::for_duration(DEFAULT_RETRY_FOR),
            (false, None) => RetryPolicy::once(),
        }
    }

    /// The link options these flags ask for.
    pub fn link(&self) -> LinkOptions {
        LinkOptions::with_idle_timeout(self.stall_timeout.max(Duration::from_secs(1)))
    }
}

/// `vigil report check`
#[derive(Args, Debug)]
pub struct ReportCheckArgs {
    /// Report JSON file.
    pub file: PathBuf,
}

/// `vigil outbox ...`
#[derive(Subcommand, Debug)]
pub enum OutboxCmd {
    /// List queued reports (destination and age only; contents are sealed).
    List,
    /// Try to send every queued report now, retrying on a bad link (see --retry-for).
    Flush(OutboxFlushArgs),
    /// Remove one queued report without sending it (its encrypted copy is deleted).
    Cancel(OutboxCancelArgs),
}

/// `vigil outbox cancel`
#[derive(Args, Debug)]
pub struct OutboxCancelArgs {
    /// The item's id from `vigil outbox list` (`id` or `deposit_id` in its JSON; a unique prefix
    /// of at least 4 characters is enough).
    pub id: String,
}

/// `vigil outbox flush`
#[derive(Args, Debug)]
pub struct OutboxFlushArgs {
    /// How hard to try.
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// `vigil inbox ...`
#[derive(Subcommand, Debug)]
pub enum InboxCmd {
    /// Download new reports, decrypt and verify them, store them here, then acknowledge them.
    Fetch,
    /// List received reports, most urgent first.
    List,
    /// Show one report, with its thread (receipt, replies, the reporter's answers).
    Show(InboxShowArgs),
    /// Reply to the reporter of one report, signed by this NGO's identity key and encrypted to
    /// the reply key the report carries.
    Reply(InboxReplyArgs),
    /// Write one report (JSON) and its attachments, decrypted and verified, into a directory.
    Export(InboxExportArgs),
    /// Show how full this NGO's mailbox at the relay is, and whether reports were refused
    /// because it was full.
    Status,
    /// Stay connected to every relay of this NGO's card and fetch, store and show each new
    /// report as it arrives, urgent ones first; until Ctrl-C or SIGTERM.
    Watch(InboxWatchArgs),
    /// List or delete the envelopes kept under inbox/rejected/ (invalid, replayed, or sealed
    /// for a staff key this inbox does not hold).
    #[command(subcommand)]
    Rejected(RejectedCmd),
}

/// `vigil inbox rejected ...`
#[derive(Subcommand, Debug)]
pub enum RejectedCmd {
    /// List the kept envelopes, oldest first, with why each was kept.
    List,
    /// Delete kept envelopes: by default the invalid and replayed ones (evidence you have
    /// looked at), with --all also those sealed for a missing staff key (which a returning
    /// key would still open).
    Clear(RejectedClearArgs),
}

/// `vigil inbox rejected clear`
#[derive(Args, Debug)]
pub struct RejectedClearArgs {
    /// Also delete envelopes sealed for a staff key this inbox does not hold.
    #[arg(long)]
    pub all: bool,
    /// Delete only envelopes received longer ago than this (e.g. 30d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub older_than: Option<Duration>,
}

/// `vigil inbox watch`
#[derive(Args, Debug)]
pub struct InboxWatchArgs {
    /// Stop after this long (e.g. 30s, 8h) instead of running until stopped.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub for_: Option<Duration>,
    /// Run this command (with sh -c) for each new urgent report; the report is in the
    /// environment: VIGIL_REPORT_ID, VIGIL_REPORT_URGENCY, VIGIL_REPORT_KIND,
    /// VIGIL_REPORT_TITLE, VIGIL_RELAY. Quote them, e.g. notify-send "$VIGIL_REPORT_TITLE".
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
}

/// `vigil inbox export`
#[derive(Args, Debug)]
pub struct InboxExportArgs {
    /// Report id from `vigil inbox list` (a unique prefix is enough).
    pub id: String,
    /// The directory to write into (made if missing). What lands there is plaintext: choose an
    /// encrypted disk.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `vigil inbox reply`
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("text").required(true).args(["message", "file"])))]
pub struct InboxReplyArgs {
    /// Report id from `vigil inbox list` (a unique prefix is enough).
    pub id: String,
    /// The reply's text.
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,
    /// Read the reply's text from this file (UTF-8).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Attach a file (repeat for more, at most 16); its metadata is removed first, as for a
    /// report's attachments.
    #[arg(long = "attach", value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Send attachments exactly as they are, metadata included.
    #[arg(long)]
    pub keep_metadata: bool,
    /// How hard to try.
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// `vigil inbox show`
#[derive(Args, Debug)]
pub struct InboxShowArgs {
    /// Report id from `vigil inbox list` (a unique prefix is enough).
    pub id: String,
}

/// `vigil demo`
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Fixture report to send (default: one of ../shared/fixtures/reports, or a built-in sample).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Keep the demo's temporary directory and print where it is.
    #[arg(long)]
    pub keep: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_validity_is_one_year_both_ways() {
        assert_eq!(
            parse_duration(DEFAULT_VALID_FOR),
            Ok(ValidityArgs::default().valid_for)
        );
        assert_eq!(
            ValidityArgs::default().valid_for,
            Duration::from_secs(365 * 86_400)
        );
    }
}
