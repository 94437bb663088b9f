//! What a failed command tells the person or the script that ran it.
//!
//! One line on stderr, `error: WHAT HAPPENED; ADVICE`, and with `--json` one object on stdout:
//! `{"type":"error","error":...,"kind":...,"advice":...,"exit_code":...}` (`docs/cli.md`).
//!
//! Library errors say what happened in words that fit any command ([`RelayError`] does not
//! know whether a report or an inbox is at stake). The advice comes from the command family
//! that failed: a relay that cannot be reached means "the report stays in the outbox" to a
//! reporter and "the reports stay at the relay until fetched" to an NGO.

use crate::cli::Command;
use crate::exit;
use crate::i18n::{self, Lang, Localized};
use crate::relay::RelayError;
use serde_json::{json, Value};
use vigil_core::wire::ErrorCode;

/// Which group of commands failed; each gives its own advice for the same error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `report`, `outbox`: a report is on its way out.
    Reporter,
    /// `ngo`, `inbox`, `card`: an NGO's inbox.
    Ngo,
    /// `contact`: the reporter's address book.
    Contacts,
    /// `age`: file encryption.
    Age,
    /// `demo`: everything on this machine.
    Demo,
    /// `panic`: destroying this device's state.
    Device,
    /// `checkin`: keeping an alert sealed, or preparing or withdrawing it.
    Checkin,
}

impl Family {
    /// The family of a parsed command.
    pub fn of(command: &Command) -> Self {
        match command {
            Command::Report(_) | Command::Outbox(_) => Family::Reporter,
            Command::Checkin(_) => Family::Checkin,
            Command::Ngo(_) | Command::Inbox(_) | Command::Card(_) => Family::Ngo,
            Command::Contact(_) => Family::Contacts,
            Command::Age(_) => Family::Age,
            Command::Demo(_) => Family::Demo,
            Command::Panic
            | Command::Unlock(_)
            | Command::Lock
            | Command::Passphrase(_)
            | Command::AgentServe(_) => Family::Device,
        }
    }
}

/// Something the command needs is not there (a contact, a stored report, an NGO inbox). The
/// message says what is missing and how to get it. Kind `not_found`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

/// A failed command, as it is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What happened: the error and its causes on one line.
    pub message: String,
    /// A stable machine word for scripts (`docs/cli.md` lists them).
    pub kind: &'static str,
    /// What to do, from the command family, when the message alone does not say it.
    pub advice: Option<String>,
    /// The process exit code (`crate::exit`).
    pub exit_code: u8,
    /// What the person reads on stderr, after the `error: ` prefix: [`Failure::line`] in this
    /// run's language (`crate::i18n`). The JSON object keeps the English line.
    pub shown: String,
}

impl Failure {
    /// Describe `err`, raised by a command of `family`.
    pub fn from_error(err: &anyhow::Error, family: Family) -> Self {
        let message = one_line(&format!("{err:#}"));
        let (kind, exit_code, advice_id) = match relay_error(err) {
            Some(r) => (relay_kind(r), relay_exit_code(r), relay_advice(family, r)),
            None => {
                let kind = other_kind(err);
                // A command line clap accepts but the command cannot (flags that must come in
                // pairs) is a usage error like clap's own: code 2.
                let code = match kind {
                    "usage" => exit::USAGE,
                    _ => exit::FAILED,
                };
                (kind, code, other_advice(family, kind))
            }
        };
        let advice = advice_id.map(|id| i18n::by_id(Lang::En, id));
        let local_message = one_line(&localized_message(err));
        let shown = match advice_id {
            Some(id) => format!("{local_message}; {}", i18n::by_id(i18n::language(), id)),
            None => local_message,
        };
        Failure {
            message,
            kind,
            advice,
            exit_code,
            shown,
        }
    }

    /// A command line that does not parse (clap's error, first line only).
    pub fn usage(clap_message: &str) -> Self {
        let first = clap_message.lines().next().unwrap_or_default();
        let message = one_line(first.strip_prefix("error: ").unwrap_or(first));
        Failure {
            shown: format!("{message}; {}", crate::t!("advice-usage")),
            message,
            kind: "usage",
            advice: Some(i18n::by_id(Lang::En, "advice-usage")),
            exit_code: exit::USAGE,
        }
    }

    /// The one line for stderr, without the `error: ` prefix: what happened, then the advice.
    pub fn line(&self) -> String {
        match &self.advice {
            Some(a) => format!("{}; {a}", self.message),
            None => self.message.clone(),
        }
    }

    /// The `--json` error object. `error` is the same line as on stderr; `advice` repeats the
    /// advice alone (null when the message already says what to do).
    pub fn to_json(&self) -> Value {
        json!({
            "type": "error",
            "error": self.line(),
            "kind": self.kind,
            "advice": self.advice,
            "exit_code": self.exit_code,
        })
    }
}

/// `err` and its causes as `{err:#}` writes them, each cause Vigil has words for in this run's
/// language: catalogue errors ([`Localized`]), the relay's, an invalid report, an expired card,
/// a file that is not there. Others (rare, technical) stay as they are.
pub fn localized_message(err: &anyhow::Error) -> String {
    if i18n::language() == Lang::En {
        // The library errors' own words, exactly.
        return format!("{err:#}");
    }
    let mut parts = Vec::new();
    // A catalogue message given as context (`e.context(t_err!(..))`) is the outermost cause; a
    // plain `downcast_ref` on the chain does not see through anyhow's context wrapper.
    let outer = err
        .downcast_ref::<Localized>()
        .filter(|l| l.en == err.to_string());
    for (i, cause) in err.chain().enumerate() {
        if let (0, Some(l)) = (i, outer) {
            parts.push(l.local.clone());
            if l.complete || cause.source().is_none() {
                break;
            }
            continue;
        }
        match localized_cause(cause) {
            Some(text) => {
                // The translation covers what lies beneath (a serde error under an invalid
                // report, an I/O error under a missing file).
                parts.push(text);
                break;
            }
            None => parts.push(cause.to_string()),
        }
    }
    parts.join(": ")
}

/// One cause in this run's language, if Vigil has words for it; a [`Localized`] that is not
/// the last cause is a context and the chain goes on below it.
fn localized_cause(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(l) = cause.downcast_ref::<Localized>() {
        return Some(l.local.clone());
    }
    if let Some(r) = cause.downcast_ref::<RelayError>() {
        return Some(localized_relay_error(r));
    }
    if let Some(r) = cause.downcast_ref::<vigil_core::report::ReportError>() {
        return Some(crate::i18n_errors::report_error(r));
    }
    if let Some(c) = cause.downcast_ref::<vigil_core::card::CardError>() {
        return crate::i18n_errors::card_error(c);
    }
    if let Some(f) = cause.downcast_ref::<vigil_fs::FsError>() {
        return crate::i18n_errors::fs_error(f);
    }
    None
}

/// A relay error in this run's language.
pub fn localized_relay_error(e: &RelayError) -> String {
    crate::i18n_errors::relay_error(e)
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn relay_error(err: &anyhow::Error) -> Option<&RelayError> {
    err.chain().find_map(|c| c.downcast_ref::<RelayError>())
}

/// The exit code for an error: relay problems get their own codes so scripts can retry.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    relay_error(err).map_or(exit::FAILED, relay_exit_code)
}

/// A relay that could not be reached, a connection lost mid-transfer and a relay that stopped
/// answering are all worth retrying later: code 3. A relay with the wrong certificate: code 4.
fn relay_exit_code(e: &RelayError) -> u8 {
    match e {
        RelayError::Unreachable { .. } | RelayError::ConnectionLost(_) | RelayError::Timeout(_) => {
            exit::RELAY_UNREACHABLE
        }
        RelayError::FingerprintMismatch { .. } => exit::RELAY_IDENTITY_MISMATCH,
        _ => exit::FAILED,
    }
}

fn relay_kind(e: &RelayError) -> &'static str {
    match e {
        RelayError::BadAddress(_) => "bad_relay_address",
        RelayError::Unreachable { .. } => "relay_unreachable",
        RelayError::ConnectionLost(_) => "connection_lost",
        RelayError::Timeout(_) => "relay_timeout",
        RelayError::FingerprintMismatch { .. } => "identity_mismatch",
        RelayError::Refused { .. } => "relay_refused",
        RelayError::Protocol(_) => "relay_protocol",
        RelayError::NothingPinned => "nothing_pinned",
        RelayError::TooLarge { .. } => "too_large",
    }
}

/// Kinds of errors that did not come from the relay.
fn other_kind(err: &anyhow::Error) -> &'static str {
    use vigil_core::{card::CardError, envelope::EnvelopeError, report::ReportError};
    for cause in err.chain() {
        if let Some(CardError::Expired { .. }) = cause.downcast_ref::<CardError>() {
            return "card_expired";
        }
        if cause.is::<NotFound>() {
            return "not_found";
        }
        if cause.is::<crate::vault::WrongPassphrase>() {
            return "wrong_passphrase";
        }
        if let Some(kind) = cause.downcast_ref::<Localized>().and_then(|l| l.kind) {
            return kind;
        }
        if let Some(e) = cause.downcast_ref::<vigil_fs::FsError>() {
            return match e {
                vigil_fs::FsError::Exists(_) => "exists",
                vigil_fs::FsError::TooLarge { .. } => "file_too_large",
                _ if e
                    .io_error()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
                {
                    "not_found"
                }
                _ => "io",
            };
        }
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            return match e.kind() {
                std::io::ErrorKind::NotFound => "not_found",
                _ => "io",
            };
        }
        if cause.is::<ReportError>() {
            return "invalid_report";
        }
        if cause.is::<CardError>() {
            return "invalid_card";
        }
        if cause.is::<EnvelopeError>() {
            return "envelope";
        }
    }
    "failed"
}

/// What a command of `family` did not do because of an error of `kind` that did not come from
/// the relay, when the message alone cannot say it.
fn other_advice(family: Family, kind: &str) -> Option<&'static str> {
    match (family, kind) {
        (Family::Reporter, "card_expired") => Some("advice-reporter-card-expired"),
        (Family::Contacts, "card_expired") => Some("advice-contacts-card-expired"),
        _ => None,
    }
}

/// The catalogue id of one line of advice for `e` in a command of `family`. `None` where the
/// message already says everything (`BadAddress` for the age commands, say, cannot happen at
/// all).
fn relay_advice(family: Family, e: &RelayError) -> Option<&'static str> {
    use RelayError as E;
    Some(match (family, e) {
        (Family::Reporter, E::Unreachable { .. } | E::ConnectionLost(_) | E::Timeout(_)) => {
            "advice-reporter-unreachable"
        }
        (Family::Reporter, E::FingerprintMismatch { .. }) => "advice-reporter-mismatch",
        (
            Family::Reporter,
            E::Refused {
                code: ErrorCode::QuotaExceeded,
                ..
            },
        ) => "advice-reporter-quota",
        (
            Family::Reporter,
            E::Refused {
                retryable: true, ..
            },
        ) => "advice-reporter-refused-retry",
        (Family::Reporter, E::Refused { .. }) => "advice-reporter-refused",
        (Family::Reporter, E::Protocol(_)) => "advice-reporter-protocol",
        (Family::Reporter, E::BadAddress(_)) => "advice-reporter-bad-address",
        (Family::Reporter, E::NothingPinned) => "advice-reporter-nothing-pinned",
        (Family::Reporter, E::TooLarge { .. }) => "advice-reporter-too-large",
        (
            Family::Ngo,
            E::Unreachable { .. }
            | E::ConnectionLost(_)
            | E::Timeout(_)
            | E::Refused {
                retryable: true, ..
            },
        ) => "advice-ngo-unreachable",
        (Family::Ngo, E::FingerprintMismatch { .. }) => "advice-ngo-mismatch",
        (Family::Ngo, E::Protocol(_)) => "advice-ngo-protocol",
        (Family::Ngo, E::Refused { .. }) => "advice-ngo-refused",
        (Family::Ngo, E::BadAddress(_)) => "advice-ngo-bad-address",
        (Family::Ngo, E::NothingPinned) => "advice-ngo-nothing-pinned",
        (Family::Demo, _) => "advice-demo",
        (Family::Checkin, E::Unreachable { .. } | E::ConnectionLost(_) | E::Timeout(_)) => {
            "advice-checkin-unreachable"
        }
        (
            Family::Checkin,
            E::Refused {
                code: ErrorCode::BadProof,
                ..
            },
        ) => "advice-checkin-gone",
        (Family::Checkin, E::FingerprintMismatch { .. }) => "advice-reporter-mismatch",
        (_, _) if e.is_retryable() => "advice-try-later",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::ids::CertFingerprint;

    fn unreachable() -> anyhow::Error {
        RelayError::Unreachable {
            addr: "127.0.0.1:9".into(),
            reason: "timed out".into(),
        }
        .into()
    }

    /// One error of every kind the relay client gives, refusals both temporary and final.
    fn every_relay_error() -> Vec<RelayError> {
        let refused = |code, retryable| RelayError::Refused {
            code,
            message: "slow down".into(),
            retryable,
        };
        vec![
            RelayError::BadAddress("nowhere".into()),
            RelayError::Unreachable {
                addr: "a".into(),
                reason: "r".into(),
            },
            RelayError::FingerprintMismatch {
                expected: CertFingerprint([1; 32]),
                got: Some(CertFingerprint([2; 32])),
            },
            refused(ErrorCode::QuotaExceeded, true),
            refused(ErrorCode::RateLimited, true),
            refused(ErrorCode::Malformed, false),
            RelayError::Protocol("p".into()),
            RelayError::ConnectionLost("l".into()),
            RelayError::Timeout(5),
            RelayError::NothingPinned,
            RelayError::TooLarge { len: 2, max: 1 },
        ]
    }

    #[test]
    fn relay_errors_say_only_what_happened() {
        let errors = every_relay_error();
        for e in errors {
            let text = e.to_string();
            assert!(!text.contains("outbox"), "{text}");
            assert!(!text.contains("report stays"), "{text}");
        }
    }

    #[test]
    fn an_ngo_command_gets_ngo_advice_and_a_reporter_command_outbox_advice() {
        let err = unreachable();
        let ngo = Failure::from_error(&err, Family::Ngo);
        assert_eq!(ngo.kind, "relay_unreachable");
        assert_eq!(ngo.exit_code, exit::RELAY_UNREACHABLE);
        let advice = ngo.advice.as_deref().expect("advice");
        assert!(
            advice.contains("stay at the relay until fetched"),
            "{advice}"
        );
        assert!(!ngo.line().contains("outbox"), "{}", ngo.line());

        let rep = Failure::from_error(
            &err.context("1 report copy not delivered yet"),
            Family::Reporter,
        );
        assert_eq!(rep.kind, "relay_unreachable");
        assert!(rep.line().contains("stays in the outbox"), "{}", rep.line());
        assert!(rep
            .line()
            .starts_with("1 report copy not delivered yet: cannot reach"));
    }

    #[test]
    fn identity_mismatch_keeps_its_exit_code_and_warning_in_every_family() {
        let err: anyhow::Error = RelayError::FingerprintMismatch {
            expected: CertFingerprint([1; 32]),
            got: Some(CertFingerprint([2; 32])),
        }
        .into();
        for family in [Family::Reporter, Family::Ngo, Family::Demo] {
            let f = Failure::from_error(&err, family);
            assert_eq!(f.exit_code, exit::RELAY_IDENTITY_MISMATCH);
            assert_eq!(f.kind, "identity_mismatch");
            assert!(f.line().contains("possible interception"), "{}", f.line());
        }
        assert!(Failure::from_error(&err, Family::Reporter)
            .line()
            .contains("stays in the outbox"));
        assert!(!Failure::from_error(&err, Family::Ngo)
            .line()
            .contains("outbox"));
    }

    #[test]
    fn the_json_error_has_one_shape() {
        let f = Failure::from_error(&unreachable(), Family::Ngo);
        assert!(f.advice.is_some());
        assert_eq!(
            f.to_json(),
            json!({"type": "error", "error": f.line(), "kind": "relay_unreachable",
                   "advice": f.advice, "exit_code": 3})
        );

        let plain = Failure::from_error(
            &anyhow::Error::from(NotFound("no contact named \"X\"".into())),
            Family::Reporter,
        );
        let v = plain.to_json();
        assert_eq!(v["kind"], "not_found");
        assert!(v["advice"].is_null());
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["error"], "no contact named \"X\"");
    }

    #[test]
    fn an_expired_card_has_its_own_kind_and_each_family_says_what_was_not_done() {
        let err: anyhow::Error = vigil_core::card::CardError::Expired {
            name: "Desk".into(),
            when: "2026-01-01 00:00 UTC".into(),
        }
        .into();
        let rep = Failure::from_error(&err, Family::Reporter);
        assert_eq!((rep.kind, rep.exit_code), ("card_expired", exit::FAILED));
        assert!(
            rep.line().contains("ask Desk for a renewed card"),
            "{}",
            rep.line()
        );
        assert!(
            rep.line().ends_with("; the report was not sent or queued"),
            "{}",
            rep.line()
        );
        let contacts = Failure::from_error(&err, Family::Contacts);
        assert_eq!(contacts.kind, "card_expired");
        assert_eq!(
            contacts.advice.as_deref(),
            Some("the card was not imported")
        );
        // Other card errors keep their kind.
        let damaged: anyhow::Error = vigil_core::card::CardError::NotACard.into();
        assert_eq!(
            Failure::from_error(&damaged, Family::Contacts).kind,
            "invalid_card"
        );
    }

    #[test]
    fn file_errors_are_told_apart() {
        let missing = vigil_fs::read_limited(std::path::Path::new("/nonexistent/vigil/x"), 10)
            .map_err(anyhow::Error::from)
            .expect_err("missing");
        assert_eq!(
            Failure::from_error(&missing, Family::Reporter).kind,
            "not_found"
        );
        let usage = Failure::usage("error: unexpected argument 'x' found\n\nUsage: vigil ...");
        assert_eq!(usage.kind, "usage");
        assert_eq!(usage.exit_code, exit::USAGE);
        assert_eq!(usage.message, "unexpected argument 'x' found");
    }

    /// Advice is chosen by catalogue id at run time, so the compiler cannot check the ids:
    /// every one a family can give is in every language.
    #[test]
    fn every_advice_exists_in_every_language() {
        let errors = every_relay_error();
        let families = [
            Family::Reporter,
            Family::Ngo,
            Family::Contacts,
            Family::Age,
            Family::Demo,
            Family::Device,
            Family::Checkin,
        ];
        let mut ids: Vec<&str> = vec!["advice-usage"];
        for f in families {
            ids.extend(errors.iter().filter_map(|e| relay_advice(f, e)));
            ids.extend(other_advice(f, "card_expired"));
        }
        for id in ids {
            for lang in Lang::ALL {
                let text = i18n::by_id(lang, id);
                assert!(!text.starts_with("No localization"), "{id} in {lang:?}");
            }
            assert_ne!(i18n::by_id(Lang::En, id), i18n::by_id(Lang::Ru, id), "{id}");
        }
    }
}
