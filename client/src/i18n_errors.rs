//! Library errors in the user's language.
//!
//! The core crate, vigil-fs and the relay client speak English (their messages are part of
//! logs, tests and the `--json` error object). The person at the terminal gets these
//! renderings instead, built from each error's variant and fields rather than its English text,
//! so nothing English leaks into a Russian sentence.

use crate::relay::RelayError;
use crate::t;
use vigil_core::card::CardError;
use vigil_core::report::ReportError;
use vigil_fs::FsError;

/// A relay error in this run's language.
pub fn relay_error(e: &RelayError) -> String {
    if crate::i18n::language() == crate::i18n::Lang::En {
        return e.to_string();
    }
    match e {
        RelayError::BadAddress(addr) => t!("relay-bad-address", addr = format!("{addr:?}")),
        RelayError::Unreachable { addr, reason } => t!(
            "relay-unreachable",
            addr = addr.as_str(),
            reason = unreachable_reason(reason)
        ),
        RelayError::FingerprintMismatch {
            expected,
            got: Some(got),
        } => t!(
            "relay-mismatch",
            expected = expected.to_string(),
            got = got.to_string()
        ),
        RelayError::FingerprintMismatch {
            expected,
            got: None,
        } => t!("relay-not-recognised", expected = expected.to_string()),
        RelayError::Refused {
            code,
            message,
            retryable,
        } => t!(
            "relay-refused",
            code = code.to_string(),
            message = message.as_str(),
            temporary = if *retryable { "yes" } else { "no" }
        ),
        RelayError::Protocol(detail) => t!("relay-protocol", detail = detail.as_str()),
        RelayError::ConnectionLost(detail) => {
            t!("relay-connection-lost", detail = detail.as_str())
        }
        RelayError::Timeout(secs) => t!("relay-timeout", secs = (*secs)),
        RelayError::NothingPinned => t!("relay-nothing-pinned"),
        RelayError::TooLarge { len, max } => t!("relay-too-large", len = (*len), max = (*max)),
    }
}

/// The reasons `crate::relay` gives for an unreachable relay that have words in the catalogue;
/// a reason from the network stack itself stays as it is.
fn unreachable_reason(reason: &str) -> String {
    // `auto` joins the reasons of both transports.
    if reason.contains("; ") {
        return reason
            .split("; ")
            .map(unreachable_reason)
            .collect::<Vec<_>>()
            .join("; ");
    }
    if let Some((transport, secs)) = reason
        .strip_prefix("no answer over ")
        .and_then(|r| r.strip_suffix(" seconds"))
        .and_then(|r| r.split_once(" within "))
    {
        return t!(
            "relay-reason-no-answer-over",
            transport = transport,
            secs = secs
        );
    }
    if reason == "TCP: connection refused" {
        return t!("relay-reason-tcp-refused");
    }
    if reason == "timed out" {
        return t!("relay-reason-timed-out");
    }
    if let Some(secs) = reason
        .strip_prefix("no answer within ")
        .and_then(|r| r.strip_suffix(" seconds"))
    {
        return t!("relay-reason-no-answer", secs = secs);
    }
    if reason.starts_with("the relay is refusing new connections") {
        return t!("relay-reason-full");
    }
    reason.to_string()
}

/// An invalid report in this run's language, by the field at fault and the kind of problem.
pub fn report_error(e: &ReportError) -> String {
    match e {
        ReportError::TooLarge { len, max } => t!("report-too-large", len = (*len), max = (*max)),
        ReportError::Json(j) => t!(
            "report-not-json",
            detail = j.to_string(),
            line = j.line(),
            column = j.column()
        ),
        ReportError::Field { field, problem } => report_field(field, problem),
        _ => e.to_string(),
    }
}

/// `field` and the core's English `problem`, recognised by its opening words.
fn report_field(field: &str, problem: &str) -> String {
    let field = field.to_string();
    if problem == "is missing" {
        return t!("report-field-missing", field = field);
    }
    if problem.starts_with("is empty") {
        return t!("report-field-empty", field = field);
    }
    if problem.starts_with("is longer than") {
        let max: String = problem
            .trim_start_matches("is longer than ")
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        return t!("report-field-too-long", field = field, max = max);
    }
    if let Some(rest) = problem.strip_prefix("must be one of ") {
        let (allowed, got) = rest.split_once(", got ").unwrap_or((rest, ""));
        return t!(
            "report-field-one-of",
            field = field,
            allowed = allowed,
            got = got
        );
    }
    if problem.starts_with("must be a date") {
        return t!("report-field-date", field = field);
    }
    if let Some(rest) = problem.strip_prefix("contains the control character ") {
        let ch: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
        return t!("report-field-control", field = field, char = ch);
    }
    if problem.starts_with("must be between") {
        let range = problem
            .trim_start_matches("must be between ")
            .replace(" and ", "…");
        return t!("report-field-range", field = field, range = range);
    }
    if problem.starts_with("has ") {
        return t!("report-field-too-many", field = field);
    }
    if problem.starts_with("must be a JSON object") {
        return t!("report-not-object");
    }
    t!("report-field-other", field = field, problem = problem)
}

/// A card error in this run's language, for the ones a reporter meets; `None` for the rest.
pub fn card_error(e: &CardError) -> Option<String> {
    Some(match e {
        CardError::Expired { name, when } => {
            t!("card-expired", name = name.as_str(), when = when.as_str())
        }
        CardError::NotACard => t!("card-not-a-card"),
        CardError::Damaged(_) => t!("card-damaged"),
        CardError::Incomplete => t!("card-incomplete"),
        CardError::BadSignature => t!("card-bad-signature"),
        CardError::TooLarge { .. } => t!("card-too-large"),
        CardError::Field { field, .. } => t!("card-field", field = field.to_string()),
        _ => return None,
    })
}

/// A file error in this run's language; `None` for the operating system's rarer complaints.
pub fn fs_error(e: &FsError) -> Option<String> {
    match e {
        FsError::Exists(path) => Some(t!("fs-exists", path = path.display().to_string())),
        FsError::TooLarge { path, max } => Some(t!(
            "fs-too-large",
            path = path.display().to_string(),
            max = (*max)
        )),
        FsError::Io { path, source, .. } => {
            let path = path.display().to_string();
            match source.kind() {
                std::io::ErrorKind::NotFound => Some(t!("fs-not-found", path = path)),
                std::io::ErrorKind::PermissionDenied => {
                    Some(t!("fs-permission-denied", path = path))
                }
                _ => None,
            }
        }
        _ => None,
    }
}
