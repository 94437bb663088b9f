//! The `vigil` client: reporter and NGO commands, the QUIC relay client, and local state.
#![forbid(unsafe_code)]

pub mod age_cmd;
pub mod age_parallel;
pub mod cli;
pub mod commands;
pub mod congestion;
pub mod exit;
pub mod home;
pub mod output;
pub mod relay;
pub mod retry;
pub mod state;

/// The exit code for an error: relay problems get their own codes so scripts can retry.
/// A relay that could not be reached, a connection lost mid-transfer and a relay that stopped
/// answering all leave the report in the outbox and are worth retrying later: code 3.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(r) = cause.downcast_ref::<relay::RelayError>() {
            return match r {
                relay::RelayError::Unreachable { .. }
                | relay::RelayError::ConnectionLost(_)
                | relay::RelayError::Timeout(_) => exit::RELAY_UNREACHABLE,
                relay::RelayError::FingerprintMismatch { .. } => exit::RELAY_IDENTITY_MISMATCH,
                _ => exit::FAILED,
            };
        }
    }
    exit::FAILED
}
